#include "image/patchify.h"

#include <stddef.h>
#include <string.h>

#include "core/error.h"

static int check_size(const char *what, int w, int h, int p, hd_error *e) {
    if (p < 1 || p > 64) return hd_fail(e, HD_EINVAL, "%s: patch size %d is outside 1..64", what, p);
    if (w < p || h < p || w % p || h % p)
        return hd_fail(e, HD_EINVAL, "%s: size %dx%d is not a positive multiple of %d", what, w,
                       h, p);
    return 0;
}

int hd_patchify(const float *chw, int w, int h, int p, float *rows, hd_error *e) {
    HD_TRY(check_size("patchify", w, h, p, e));
    const int wp = w / p;
    const size_t dim = (size_t)3 * p * p;
    for (int c = 0; c < 3; c++)
        for (int y = 0; y < h; y++) {
            const float *src = chw + ((size_t)c * h + y) * w;
            for (int px = 0; px < wp; px++) {
                size_t n = (size_t)(y / p) * wp + px;
                float *dst = rows + n * dim + (size_t)c * p * p + (size_t)(y % p) * p;
                memcpy(dst, src + (size_t)px * p, (size_t)p * sizeof(float));
            }
        }
    return 0;
}

int hd_unpatchify(const float *rows, int w, int h, int p, float *chw, hd_error *e) {
    HD_TRY(check_size("unpatchify", w, h, p, e));
    const int wp = w / p;
    const size_t dim = (size_t)3 * p * p;
    for (int c = 0; c < 3; c++)
        for (int y = 0; y < h; y++) {
            float *dst = chw + ((size_t)c * h + y) * w;
            for (int px = 0; px < wp; px++) {
                size_t n = (size_t)(y / p) * wp + px;
                const float *src = rows + n * dim + (size_t)c * p * p + (size_t)(y % p) * p;
                memcpy(dst + (size_t)px * p, src, (size_t)p * sizeof(float));
            }
        }
    return 0;
}
