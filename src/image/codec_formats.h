/* Per-format decoders and encoders behind codec.h (one file each: codec_png.c, codec_jpeg.c,
 * codec_webp.c). Decoders take a complete file image; encoders write to an open stream. Every
 * message starts with `what` (the file name). */
#ifndef HD_IMAGE_CODEC_FORMATS_H
#define HD_IMAGE_CODEC_FORMATS_H

#include <stdint.h>
#include <stdio.h>

#include "image/codec.h"

/* out == NULL: decode without keeping pixels (used to reach text chunks after the image data).
 * text == NULL: text chunks are not collected. */
int hd_png_decode(const uint8_t *buf, size_t len, const char *what, int64_t max_pixels,
                  hd_image *out, hd_png_text *text, hd_error *e);
int hd_png_encode(FILE *f, const char *what, const hd_image *im, const hd_text_kv *text,
                  int n_text, hd_error *e);

int hd_jpeg_decode(const uint8_t *buf, size_t len, const char *what, int64_t max_pixels,
                   hd_image *out, hd_error *e);
int hd_jpeg_encode(FILE *f, const char *what, const hd_image *im, int quality, hd_error *e);

int hd_webp_decode(const uint8_t *buf, size_t len, const char *what, int64_t max_pixels,
                   hd_image *out, hd_error *e);
int hd_webp_encode(FILE *f, const char *what, const hd_image *im, int quality, int lossless,
                   hd_error *e);

/* Shared check of a header's size against the pixel limit; fills e naming `what`. */
int hd_codec_check_size(const char *what, const char *fmt, int64_t w, int64_t h,
                        int64_t max_pixels, hd_error *e);

#endif
