/* Pillow-exact resizing of 8-bit RGB images (Image.resize with BOX, BILINEAR, BICUBIC, LANCZOS;
 * spec 06 §7). Reproduces Pillow 9-11's ImagingResample byte for byte: a separable convolution,
 * horizontal pass first, with per-output-pixel windows whose support grows with the reduction
 * factor, coefficients normalised in double and quantised to 22-bit fixed point, integer
 * accumulation with a rounding bias, and clamping to 0..255 after each pass. */
#ifndef HD_IMAGE_RESAMPLE_H
#define HD_IMAGE_RESAMPLE_H

#include "image/image.h"

typedef enum hd_filter {
    HD_FILTER_BOX = 0,  /* support 0.5 (Pillow Image.BOX) */
    HD_FILTER_BILINEAR, /* support 1 */
    HD_FILTER_BICUBIC,  /* support 2, a = -0.5 */
    HD_FILTER_LANCZOS,  /* support 3, sinc(x) sinc(x/3) */
    HD_FILTER_COUNT
} hd_filter;

/* "box", "bilinear", "bicubic", "lanczos" -> filter; -1 if unknown. */
int hd_filter_parse(const char *name);
const char *hd_filter_name(hd_filter f);

/* dst = src resized to w x h (Pillow: a plain copy when the size is unchanged). dst must not
 * alias src. */
int hd_image_resize(const hd_image *src, int w, int h, hd_filter f, hd_image *dst, hd_error *e);

#endif
