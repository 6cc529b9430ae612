#include "image/image.h"

#include <stdlib.h>
#include <string.h>

#include "core/error.h"

int hd_image_alloc(hd_image *im, int w, int h, hd_error *e) {
    im->w = im->h = 0;
    im->px = NULL;
    if (w < 1 || h < 1)
        return hd_fail(e, HD_EINVAL, "image: size %dx%d: both sides must be at least 1", w, h);
    if ((int64_t)w * h > HD_IMAGE_MAX_PIXELS)
        return hd_fail(e, HD_ENOMEM, "image: size %dx%d: %lld pixels exceed the limit of %lld",
                       w, h, (long long)w * h, (long long)HD_IMAGE_MAX_PIXELS);
    im->px = calloc((size_t)w * (size_t)h, 3);
    if (!im->px) return hd_fail(e, HD_ENOMEM, "image: out of memory for %dx%d pixels", w, h);
    im->w = w;
    im->h = h;
    return 0;
}

void hd_image_free(hd_image *im) {
    if (!im) return;
    free(im->px);
    im->px = NULL;
    im->w = im->h = 0;
}

int hd_image_copy(hd_image *dst, const hd_image *src, hd_error *e) {
    HD_TRY(hd_image_alloc(dst, src->w, src->h, e));
    memcpy(dst->px, src->px, (size_t)src->w * (size_t)src->h * 3);
    return 0;
}

int hd_image_crop(hd_image *dst, const hd_image *src, int left, int top, int right, int bottom,
                  hd_error *e) {
    if (right <= left || bottom <= top)
        return hd_fail(e, HD_EINVAL, "image crop: empty box (%d, %d, %d, %d)", left, top, right,
                       bottom);
    int64_t cw = (int64_t)right - left, ch = (int64_t)bottom - top;
    if (cw > INT32_MAX || ch > INT32_MAX)
        return hd_fail(e, HD_EINVAL, "image crop: box (%d, %d, %d, %d) too large", left, top,
                       right, bottom);
    HD_TRY(hd_image_alloc(dst, (int)cw, (int)ch, e));
    /* the part of the box that lies inside src; the rest stays black, as in Pillow */
    int x0 = left > 0 ? left : 0, x1 = right < src->w ? right : src->w;
    int y0 = top > 0 ? top : 0, y1 = bottom < src->h ? bottom : src->h;
    if (x0 >= x1 || y0 >= y1) return 0;
    for (int y = y0; y < y1; y++)
        memcpy(hd_image_at(dst, x0 - left, y - top), hd_image_at(src, x0, y), (size_t)(x1 - x0) * 3);
    return 0;
}
