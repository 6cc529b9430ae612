#include "image/patchify.h"

#include <stddef.h>
#include <string.h>

#include "core/error.h"

static int check_size(const char *what, int w, int h, hd_error *e) {
    if (w < HD_PATCH || h < HD_PATCH || w % HD_PATCH || h % HD_PATCH)
        return hd_fail(e, HD_EINVAL, "%s: size %dx%d is not a positive multiple of %d", what, w,
                       h, HD_PATCH);
    return 0;
}

int hd_patchify(const float *chw, int w, int h, float *rows, hd_error *e) {
    HD_TRY(check_size("patchify", w, h, e));
    int wp = w / HD_PATCH;
    for (int c = 0; c < 3; c++)
        for (int y = 0; y < h; y++) {
            const float *src = chw + ((size_t)c * h + y) * w;
            for (int px = 0; px < wp; px++) {
                size_t n = (size_t)(y / HD_PATCH) * wp + px;
                float *dst = rows + n * HD_PATCH_DIM + c * HD_PATCH * HD_PATCH +
                             (y % HD_PATCH) * HD_PATCH;
                memcpy(dst, src + px * HD_PATCH, HD_PATCH * sizeof(float));
            }
        }
    return 0;
}

int hd_unpatchify(const float *rows, int w, int h, float *chw, hd_error *e) {
    HD_TRY(check_size("unpatchify", w, h, e));
    int wp = w / HD_PATCH;
    for (int c = 0; c < 3; c++)
        for (int y = 0; y < h; y++) {
            float *dst = chw + ((size_t)c * h + y) * w;
            for (int px = 0; px < wp; px++) {
                size_t n = (size_t)(y / HD_PATCH) * wp + px;
                const float *src = rows + n * HD_PATCH_DIM + c * HD_PATCH * HD_PATCH +
                                   (y % HD_PATCH) * HD_PATCH;
                memcpy(dst + px * HD_PATCH, src, HD_PATCH * sizeof(float));
            }
        }
    return 0;
}
