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

/* Files larger than this are refused before reading (a compressed 2^28-pixel picture is far
 * smaller). */
#define HD_IMAGE_MAX_FILE_BYTES ((int64_t)1 << 30)

/* hd_image_format, hd_image_sniff, hd_image_format_from_name, hd_image_load/decode/save/encode,
 * hd_text_kv, hd_save_opts and hd_png_text are public: include/hidream.h. */

#endif
