/* Reading and writing picture files: PNG (libpng), JPEG (libjpeg), WebP (libwebp).
 *
 * Loading behaves like Pillow's Image.open(path).convert("RGB"): palette and grey images are
 * expanded, an alpha channel is dropped without compositing, 16-bit samples are reduced the way
 * Pillow does (RGB/RGBA/grey+alpha keep the high byte; 16-bit grey, which Pillow opens as mode
 * "I", is clipped to 255), CMYK JPEGs are converted with Pillow's formula, and EXIF orientation
 * is not applied. The format is found from the magic bytes, not the file name. Corrupt,
 * truncated, zero-sized and oversized pictures give an error naming the file; nothing is
 * printed.
 *
 * Saving picks the format from the extension (.png, .jpg/.jpeg, .webp, any case) and writes
 * to a temporary name in the same directory that is renamed over the target at the end, so a
 * failed save never leaves a half-written file. PNG files can carry text chunks (tEXt for ASCII
 * values, iTXt for other UTF-8 values), read back with hd_png_read_text. */
#ifndef HD_IMAGE_CODEC_H
#define HD_IMAGE_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include "image/image.h"

typedef enum hd_image_format {
    HD_FMT_UNKNOWN = 0,
    HD_FMT_PNG,
    HD_FMT_JPEG,
    HD_FMT_WEBP,
} hd_image_format;

/* Files larger than this are refused before reading (a compressed 2^28-pixel picture is far
 * smaller). */
#define HD_IMAGE_MAX_FILE_BYTES ((int64_t)1 << 30)

/* Format from the first bytes of a file; HD_FMT_UNKNOWN if not one we decode. */
hd_image_format hd_image_sniff(const void *buf, size_t len);
/* Format from a file name's extension; HD_FMT_UNKNOWN if none matches. */
hd_image_format hd_image_format_from_name(const char *path);

/* Loads a PNG/JPEG/WebP file as RGB (pixel limit HD_IMAGE_MAX_PIXELS). */
int hd_image_load(const char *path, hd_image *out, hd_error *e);

/* Decodes a complete file image already in memory; `what` names it in messages. Pictures with
 * more than max_pixels pixels (or zero) are refused before any pixel memory is allocated. */
int hd_image_decode(const void *buf, size_t len, const char *what, int64_t max_pixels,
                    hd_image *out, hd_error *e);

typedef struct hd_text_kv {
    const char *key;   /* 1..79 printable ASCII characters, no leading/trailing/double spaces */
    const char *value; /* UTF-8 */
} hd_text_kv;

typedef struct hd_save_opts {
    int quality;         /* JPEG and lossy WebP quality 1..100; 0 = default (95) */
    int webp_lossless;   /* WebP: lossless instead of lossy */
    const hd_text_kv *text; /* PNG only: text chunks, written in this order */
    int n_text;
} hd_save_opts;

/* Writes im to path (format from the extension). opts may be NULL (defaults, no text). */
int hd_image_save(const char *path, const hd_image *im, const hd_save_opts *opts, hd_error *e);

/* Text chunks of a PNG file (tEXt, zTXt and iTXt, before and after the image data), in file
 * order, all converted to UTF-8 (tEXt/zTXt are Latin-1). */
typedef struct hd_png_text {
    int n;
    char **keys;
    char **values;
} hd_png_text;

int hd_png_read_text(const char *path, hd_png_text *out, hd_error *e);
int hd_png_read_text_buffer(const void *buf, size_t len, const char *what, hd_png_text *out,
                            hd_error *e);
void hd_png_text_free(hd_png_text *t);
/* Value of the first chunk with that key, or NULL. */
const char *hd_png_text_get(const hd_png_text *t, const char *key);

#endif
