/* WebP through libwebp (still pictures; an animation is refused). The colour channels are
 * decoded without premultiplication, so a transparent picture keeps its stored RGB, as Pillow's
 * convert("RGB") does. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <webp/decode.h>
#include <webp/encode.h>

#include "core/error.h"
#include "image/codec_formats.h"

int hd_webp_decode(const uint8_t *buf, size_t len, const char *what, int64_t max_pixels,
                   hd_image *out, hd_error *e) {
    memset(out, 0, sizeof *out);
    WebPBitstreamFeatures feat;
    VP8StatusCode st = WebPGetFeatures(buf, len, &feat);
    if (st == VP8_STATUS_NOT_ENOUGH_DATA)
        return hd_fail(e, HD_EFORMAT, "%s: WebP: file is truncated", what);
    if (st != VP8_STATUS_OK) return hd_fail(e, HD_EFORMAT, "%s: WebP: corrupt header", what);
    if (feat.has_animation)
        return hd_fail(e, HD_EUNSUPPORTED, "%s: WebP: animated pictures are not supported", what);
    HD_TRY(hd_codec_check_size(what, "WebP", feat.width, feat.height, max_pixels, e));
    hd_image img;
    int rc = hd_image_alloc(&img, feat.width, feat.height, e);
    if (rc < 0) return hd_error_prefix(e, "%s", what);
    size_t stride = (size_t)img.w * 3;
    if (!WebPDecodeRGBInto(buf, len, img.px, stride * (size_t)img.h, (int)stride)) {
        hd_image_free(&img);
        return hd_fail(e, HD_EFORMAT, "%s: WebP: corrupt or truncated picture data", what);
    }
    *out = img;
    return 0;
}

int hd_webp_encode(FILE *f, const char *what, const hd_image *im, int quality, int lossless,
                   hd_error *e) {
    if (im->w > WEBP_MAX_DIMENSION || im->h > WEBP_MAX_DIMENSION)
        return hd_fail(e, HD_EINVAL, "%s: WebP: %dx%d exceeds the format's %d-pixel limit", what,
                       im->w, im->h, WEBP_MAX_DIMENSION);
    uint8_t *data = NULL;
    int stride = im->w * 3;
    size_t n = lossless ? WebPEncodeLosslessRGB(im->px, im->w, im->h, stride, &data)
                        : WebPEncodeRGB(im->px, im->w, im->h, stride, (float)quality, &data);
    if (n == 0 || !data) {
        WebPFree(data);
        return hd_fail(e, HD_EIO, "%s: WebP: encoder failed", what);
    }
    errno = 0;
    int ok = fwrite(data, 1, n, f) == n;
    int err = errno ? errno : EIO;
    WebPFree(data);
    if (!ok) return hd_fail(e, HD_EIO, "%s: WebP: write failed: %s", what, strerror(err));
    return 0;
}
