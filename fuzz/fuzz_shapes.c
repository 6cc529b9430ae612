/* libFuzzer target: the shapes-world prompt parser and the judge's object detection.
 * The input is read as a prompt: a string the parser accepts must be canonical (formatting the
 * parsed prompt gives the same bytes back). The same bytes, padded, are also judged as a small
 * picture (side 8..39 from byte 0) against a fixed prompt, to exercise the component search. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "data/shapes_prompt.h"
#include "data/shapes_score.h"
#include "image/image.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *text = malloc(size + 1);
    if (!text) return 0;
    memcpy(text, data, size);
    text[size] = 0;
    hd_shapes_prompt p;
    hd_error e;
    if (hd_shapes_prompt_parse(text, &p, &e) == 0) {
        char back[HD_SHAPES_PROMPT_MAX];
        hd_shapes_prompt_format(&p, back, sizeof back);
        if (strcmp(back, text) != 0) abort();
    } else if (strchr(e.msg, '\n')) {
        abort(); /* messages are one line */
    }
    free(text);
    if (size == 0) return 0;
    int side = 8 + data[0] % 32;
    hd_image im;
    if (hd_image_alloc(&im, side, side, &e) < 0) return 0;
    size_t n = (size_t)side * side * 3;
    const uint8_t *src = size > 1 ? data + 1 : data;
    size_t m = size > 1 ? size - 1 : 1;
    for (size_t i = 0; i < n; i++) im.px[i] = src[i % m];
    hd_shapes_verdict v;
    if (hd_shapes_judge(&im, "a red circle to the left of a small blue square", &v, &e) != 0) abort();
    hd_image_free(&im);
    return 0;
}
