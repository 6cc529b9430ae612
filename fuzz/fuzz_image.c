/* libFuzzer target: arbitrary bytes through the PNG/JPEG/WebP decoders (format by magic bytes,
 * pixel limit 2^22 so a hostile header cannot make one run slow) and through the PNG text
 * reader and the recipe parser (hd_recipe_parse). A successful decode must give a consistent
 * picture, a parsed recipe one that encodes again; nothing may crash or leak. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "image/codec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    hd_image im;
    hd_error e;
    if (hd_image_decode(data, size, "fuzz", (int64_t)1 << 22, &im, &e) == 0) {
        if (im.w < 1 || im.h < 1 || !im.px) abort();
        volatile uint8_t sink = im.px[(size_t)im.w * (size_t)im.h * 3 - 1];
        (void)sink;
        hd_image_free(&im);
    }
    hd_png_text t;
    if (hd_png_read_text_buffer(data, size, "fuzz", &t, &e) == 0) {
        for (int i = 0; i < t.n; i++)
            if (!t.keys[i] || !t.values[i]) abort();
        hd_recipe r;
        if (hd_recipe_parse(&t, "fuzz", &r, &e) == 0) {
            if (!r.prompt) abort();
            hd_text_kv *kv;
            int n;
            if (hd_recipe_to_text(&r, &kv, &n, &e) == 0) free(kv);
            hd_recipe_free(&r);
        }
        hd_png_text_free(&t);
    }
    return 0;
}
