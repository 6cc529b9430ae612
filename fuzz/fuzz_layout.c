/* libFuzzer target: the layout-box JSON parser, the conversion to pixels and the drawing.
 * Input: byte 0 and 1 choose a small target size (multiples of 32), bytes 2.. are the JSON.
 * When the JSON does not parse, the same bytes are read as a rectangle (x0, y0, x1, y1, width
 * as int32) for hd_draw_rectangle, to exercise extreme coordinates and widths. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "image/layout.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 2) return 0;
    int w = 32 * (1 + data[0] % 8), h = 32 * (1 + data[1] % 8);
    hd_layout l;
    hd_error e;
    hd_image im = {0};
    int rc = hd_layout_parse((const char *)data + 2, size - 2, "fuzz", &l, &e);
    if (rc == 0) {
        hd_layout_rect *r = calloc(l.n ? (size_t)l.n : 1, sizeof *r);
        uint8_t(*col)[3] = calloc(l.n ? (size_t)l.n : 1, sizeof *col);
        int *drawn = calloc(l.n ? (size_t)l.n : 1, sizeof *drawn);
        if (r && col && drawn && hd_layout_to_pixels(&l, w, h, r, &e) == 0) {
            for (int i = 0; i < l.n; i++)
                if (r[i].x1 < 0 || r[i].x2 >= w || r[i].y1 < 0 || r[i].y2 >= h ||
                    r[i].x1 >= r[i].x2 || r[i].y1 >= r[i].y2)
                    abort();
            if (hd_layout_draw(r, l.n, w, h, &im, col, drawn, &e) == 0) hd_image_free(&im);
        }
        free(r);
        free(col);
        free(drawn);
        hd_layout_free(&l);
    } else if (size >= 22 && hd_image_alloc(&im, w, h, &e) == 0) {
        int32_t v[5];
        memcpy(v, data + 2, sizeof v);
        const uint8_t rgb[3] = {255, 0, 0};
        hd_draw_rectangle(&im, v[0], v[1], v[2], v[3], rgb, v[4]);
        hd_draw_border(&im, rgb, v[4]);
        hd_image_free(&im);
    }
    return 0;
}
