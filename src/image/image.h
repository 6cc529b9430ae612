/* An 8-bit RGB picture in memory: the one image type every stage of the reference-image path
 * (decoding, Pillow-exact resampling, layout drawing, patchify) passes around.
 *
 * Pixels are packed row-major, 3 bytes per pixel (R, G, B), no row padding. The struct owns px;
 * hd_image_free releases it. A zeroed struct is the empty image (safe to free). */
#ifndef HD_IMAGE_IMAGE_H
#define HD_IMAGE_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#include "hidream.h"

/* Largest picture any decoder or resize will produce (2^28 pixels, 768 MiB of RGB): a guard
 * against decompression bombs and absurd sizes, checked before allocating. */
#define HD_IMAGE_MAX_PIXELS ((int64_t)1 << 28)

/* hd_image (w, h, px) is part of the public API: include/hidream.h. */

/* Allocates a w x h image filled with black. w, h >= 1 and w*h <= HD_IMAGE_MAX_PIXELS. */
int hd_image_alloc(hd_image *im, int w, int h, hd_error *e);

/* dst = deep copy of src (dst must not be src; any old dst content is not freed). */
int hd_image_copy(hd_image *dst, const hd_image *src, hd_error *e);

/* Pillow's Image.crop((left, top, right, bottom)): the result is (right-left) x (bottom-top);
 * parts of the box outside src are black. Requires right > left and bottom > top. */
int hd_image_crop(hd_image *dst, const hd_image *src, int left, int top, int right, int bottom,
                  hd_error *e);

/* Pointer to pixel (x, y); no bounds check. */
static inline uint8_t *hd_image_at(const hd_image *im, int x, int y) {
    return im->px + ((size_t)y * (size_t)im->w + (size_t)x) * 3;
}

#endif
