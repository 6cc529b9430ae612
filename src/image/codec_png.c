/* PNG through libpng, converted to RGB the way Pillow's PngImagePlugin + convert("RGB") does.
 *
 * libpng reports errors by longjmp. Everything that must survive the jump lives in a
 * png_state owned by the caller of the function that calls setjmp, so no local of the jumping
 * function is relied upon afterwards. Samples are unpacked to one byte (png_set_packing) but not
 * rescaled by libpng; the conversion to 8-bit RGB is done here, following Pillow's rules. */
#include <errno.h>
#include <png.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "image/codec_formats.h"

#define MAX_CHUNK_BYTES (16u << 20)
/* libpng's ancillary-chunk handlers allocate a chunk's declared length before reading it, so a
 * hostile 2 GB length would reserve 2 GB. No legitimate allocation of libpng's is near this
 * (its largest is a row: at most 8 MB at the 1,000,000-pixel width limit); refusing larger ones
 * makes libpng fail cleanly instead. Our own pixel buffers do not go through here. */
#define MAX_LIBPNG_ALLOC ((size_t)64 << 20)
/* Text chunks are read only for metadata (--from-png). Their sizes are capped so that a small
 * file of highly compressed zTXt cannot expand to gigabytes: each chunk at most 256 KiB
 * decompressed (a recipe's largest value, the prompt, is at most 64 KiB), at most 256 chunks.
 * A text chunk over the cap is an error, not a silently missing key. Decoding pixels skips text
 * chunks altogether. */
#define MAX_TEXT_CHUNK_BYTES ((size_t)256 << 10)
#define MAX_TEXT_CHUNKS 256

/* Where libpng's error message lands before the longjmp. The reader and the writer each keep
 * one and hand libpng a pointer to it (not to their whole state), so the error handler never
 * has to know which of the two states it is looking at. */
typedef struct png_err {
    char msg[256];
    char text_dropped[128]; /* libpng's warning when it skipped a text chunk (reading) */
} png_err;

typedef struct png_state {
    const char *what;
    const uint8_t *buf;
    size_t len, pos;
    png_err err;
    png_structp png;
    png_infop info;
    uint8_t *raw;    /* one decoded row, or the whole raw picture when interlaced */
    hd_image img;
    hd_png_text text;
} png_state;

static void on_png_error(png_structp png, png_const_charp msg) {
    png_err *err = png_get_error_ptr(png);
    snprintf(err->msg, sizeof err->msg, "%s", msg && *msg ? msg : "libpng error");
    png_longjmp(png, 1);
}

/* Library code never prints; warnings do not change the pixels. A warning about a text chunk
 * means libpng skipped it (too large, damaged): remembered, so a recipe is not read without it. */
static void on_png_warning(png_structp png, png_const_charp msg) {
    png_err *err = png_get_error_ptr(png);
    if (err && msg && !err->text_dropped[0] &&
        (!strncmp(msg, "tEXt", 4) || !strncmp(msg, "zTXt", 4) || !strncmp(msg, "iTXt", 4)))
        snprintf(err->text_dropped, sizeof err->text_dropped, "%s", msg);
}

static png_voidp on_png_malloc(png_structp png, png_alloc_size_t n) {
    (void)png;
    return n <= MAX_LIBPNG_ALLOC ? malloc(n) : NULL;
}

static void on_png_free(png_structp png, png_voidp p) {
    (void)png;
    free(p);
}

static void on_png_read(png_structp png, png_bytep out, size_t n) {
    png_state *st = png_get_io_ptr(png);
    if (n > st->len - st->pos) png_error(png, "file is truncated");
    memcpy(out, st->buf + st->pos, n);
    st->pos += n;
}

/* Latin-1 (tEXt/zTXt) -> UTF-8, malloc'd. */
static char *latin1_to_utf8(const char *s) {
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) n += *p < 0x80 ? 1 : 2;
    char *out = malloc(n + 1), *o = out;
    if (!out) return NULL;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p < 0x80) {
            *o++ = (char)*p;
        } else {
            *o++ = (char)(0xC0 | (*p >> 6));
            *o++ = (char)(0x80 | (*p & 0x3F));
        }
    }
    *o = 0;
    return out;
}

static int collect_text(png_state *st, hd_error *e) {
    png_textp t = NULL;
    int n = png_get_text(st->png, st->info, &t, NULL);
    if (n <= 0) return 0;
    st->text.keys = calloc((size_t)n, sizeof(char *));
    st->text.values = calloc((size_t)n, sizeof(char *));
    if (!st->text.keys || !st->text.values)
        return hd_fail(e, HD_ENOMEM, "%s: PNG: out of memory for %d text chunks", st->what, n);
    for (int i = 0; i < n; i++) {
        int utf8 = t[i].compression == PNG_ITXT_COMPRESSION_NONE ||
                   t[i].compression == PNG_ITXT_COMPRESSION_zTXt;
        const char *v = t[i].text ? t[i].text : "";
        st->text.keys[i] = latin1_to_utf8(t[i].key ? t[i].key : "");
        st->text.values[i] = utf8 ? strdup(v) : latin1_to_utf8(v);
        st->text.n = i + 1;
        if (!st->text.keys[i] || !st->text.values[i])
            return hd_fail(e, HD_ENOMEM, "%s: PNG: out of memory for text chunk %d", st->what, i);
    }
    return 0;
}

static inline uint8_t hi_byte(const uint8_t *p) { return p[0]; } /* PNG is big-endian */

/* One raw row (after png_set_packing) -> RGB, following Pillow's mode and rawmode for each
 * colour type and depth. */
static void convert_row(const uint8_t *raw, uint8_t *rgb, int w, int color_type, int depth,
                        const uint8_t (*pal)[3]) {
    for (int x = 0; x < w; x++, rgb += 3) {
        switch (color_type) {
        case PNG_COLOR_TYPE_GRAY: {
            unsigned v;
            if (depth == 16) {
                /* Pillow opens 16-bit grey as mode "I"; I -> RGB clips to 255 */
                v = ((unsigned)raw[2 * x] << 8) | raw[2 * x + 1];
                if (v > 255) v = 255;
            } else {
                /* 1/2/4-bit grey is scaled to the full range ("1", "L;2", "L;4") */
                v = raw[x] * (depth == 1 ? 255u : depth == 2 ? 85u : depth == 4 ? 17u : 1u);
            }
            rgb[0] = rgb[1] = rgb[2] = (uint8_t)v;
            break;
        }
        case PNG_COLOR_TYPE_GRAY_ALPHA: {
            uint8_t v = depth == 16 ? hi_byte(raw + 4 * x) : raw[2 * x];
            rgb[0] = rgb[1] = rgb[2] = v;
            break;
        }
        case PNG_COLOR_TYPE_PALETTE:
            memcpy(rgb, pal[raw[x]], 3);
            break;
        case PNG_COLOR_TYPE_RGB:
            if (depth == 16) {
                for (int c = 0; c < 3; c++) rgb[c] = hi_byte(raw + 6 * x + 2 * c);
            } else {
                memcpy(rgb, raw + 3 * x, 3);
            }
            break;
        default: /* RGBA: alpha dropped without compositing */
            if (depth == 16) {
                for (int c = 0; c < 3; c++) rgb[c] = hi_byte(raw + 8 * x + 2 * c);
            } else {
                memcpy(rgb, raw + 4 * x, 3);
            }
            break;
        }
    }
}

/* Calls setjmp; touches only *st after it. */
static int png_decode_inner(png_state *st, int64_t max_pixels, int keep_pixels, int want_text,
                            hd_error *e) {
    st->png = png_create_read_struct_2(PNG_LIBPNG_VER_STRING, &st->err, on_png_error, on_png_warning,
                                       NULL, on_png_malloc, on_png_free);
    if (!st->png) return hd_fail(e, HD_ENOMEM, "%s: PNG: cannot create decoder", st->what);
    st->info = png_create_info_struct(st->png);
    if (!st->info) return hd_fail(e, HD_ENOMEM, "%s: PNG: cannot create decoder", st->what);
    if (setjmp(png_jmpbuf(st->png)))
        return hd_fail(e, HD_EFORMAT, "%s: PNG: %s", st->what, st->err.msg);

    png_set_read_fn(st->png, st, on_png_read);
    if (want_text) {
        png_set_chunk_malloc_max(st->png, MAX_TEXT_CHUNK_BYTES);
        png_set_chunk_cache_max(st->png, MAX_TEXT_CHUNKS);
    } else {
        static const png_byte text_chunks[] = "tEXt\0zTXt\0iTXt";
        png_set_keep_unknown_chunks(st->png, PNG_HANDLE_CHUNK_NEVER, text_chunks, 3);
        png_set_chunk_malloc_max(st->png, MAX_CHUNK_BYTES); /* iCCP */
    }
    png_read_info(st->png, st->info);
    png_uint_32 w32 = 0, h32 = 0;
    int depth = 0, color_type = 0, interlace = 0;
    png_get_IHDR(st->png, st->info, &w32, &h32, &depth, &color_type, &interlace, NULL, NULL);
    int rc = hd_codec_check_size(st->what, "PNG", w32, h32, max_pixels, e);
    if (rc < 0) return rc;
    if (depth < 8) png_set_packing(st->png);
    int passes = png_set_interlace_handling(st->png);
    png_read_update_info(st->png, st->info);
    size_t rowbytes = png_get_rowbytes(st->png, st->info);
    int w = (int)w32, h = (int)h32;

    /* Pillow's palette starts as a grey ramp; PLTE overwrites its first entries, so indices
     * past the end of a short palette come out grey. */
    uint8_t pal[256][3];
    for (int i = 0; i < 256; i++) pal[i][0] = pal[i][1] = pal[i][2] = (uint8_t)i;
    if (color_type == PNG_COLOR_TYPE_PALETTE) {
        png_colorp plte = NULL;
        int n_plte = 0;
        if (png_get_PLTE(st->png, st->info, &plte, &n_plte) & PNG_INFO_PLTE) {
            for (int i = 0; i < n_plte && i < 256; i++) {
                pal[i][0] = plte[i].red;
                pal[i][1] = plte[i].green;
                pal[i][2] = plte[i].blue;
            }
        }
    }

    int whole = passes > 1 && keep_pixels;
    size_t raw_bytes = whole ? rowbytes * (size_t)h : rowbytes;
    if (whole && raw_bytes / (size_t)h != rowbytes)
        return hd_fail(e, HD_ENOMEM, "%s: PNG: interlaced picture too large", st->what);
    st->raw = malloc(raw_bytes ? raw_bytes : 1);
    if (!st->raw) return hd_fail(e, HD_ENOMEM, "%s: PNG: out of memory", st->what);
    if (keep_pixels) {
        rc = hd_image_alloc(&st->img, w, h, e);
        if (rc < 0) return hd_error_prefix(e, "%s", st->what);
    }
    for (int pass = 0; pass < passes; pass++) {
        for (int y = 0; y < h; y++) {
            uint8_t *row = whole ? st->raw + (size_t)y * rowbytes : st->raw;
            png_read_row(st->png, row, NULL);
            if (keep_pixels && !whole)
                convert_row(row, hd_image_at(&st->img, 0, y), w, color_type, depth,
                            (const uint8_t(*)[3])pal);
        }
    }
    if (whole)
        for (int y = 0; y < h; y++)
            convert_row(st->raw + (size_t)y * rowbytes, hd_image_at(&st->img, 0, y), w,
                        color_type, depth, (const uint8_t(*)[3])pal);
    if (want_text) {
        /* chunks after the image data; like Pillow, a damaged tail does not spoil the pixels,
         * so only the text reader goes on to IEND */
        png_read_end(st->png, st->info);
        if (st->err.text_dropped[0])
            return hd_fail(e, HD_EFORMAT, "%s: PNG: a text chunk was skipped (%s); text chunks "
                           "are limited to %zu KiB", st->what, st->err.text_dropped,
                           MAX_TEXT_CHUNK_BYTES >> 10);
        rc = collect_text(st, e);
        if (rc < 0) return rc;
    }
    return 0;
}

int hd_png_decode(const uint8_t *buf, size_t len, const char *what, int64_t max_pixels,
                  hd_image *out, hd_png_text *text, hd_error *e) {
    png_state st;
    memset(&st, 0, sizeof st);
    st.what = what;
    st.buf = buf;
    st.len = len;
    if (out) memset(out, 0, sizeof *out);
    if (text) memset(text, 0, sizeof *text);
    int rc = png_decode_inner(&st, max_pixels, out != NULL, text != NULL, e);
    png_destroy_read_struct(st.png ? &st.png : NULL, st.info ? &st.info : NULL, NULL);
    free(st.raw);
    if (rc < 0) {
        hd_image_free(&st.img);
        hd_png_text_free(&st.text);
        return rc;
    }
    if (out) *out = st.img;
    if (text) *text = st.text;
    else hd_png_text_free(&st.text);
    return 0;
}

/* ---- writing ----------------------------------------------------------------------------- */

typedef struct png_wstate {
    const char *what;
    FILE *f;
    png_err err;
    png_structp png;
    png_infop info;
    png_text *texts;
} png_wstate;

/* Our own sink instead of png_init_io: libpng's stdio writer reports a failed fwrite as a bare
 * "Write Error"; this one says why (full disk, file size limit, ...). */
static void on_png_write(png_structp png, png_bytep data, size_t n) {
    png_wstate *st = png_get_io_ptr(png);
    if (fwrite(data, 1, n, st->f) != n) {
        char why[160];
        snprintf(why, sizeof why, "write failed: %s", strerror(errno ? errno : EIO));
        png_error(png, why);
    }
}

static void on_png_flush(png_structp png) {
    png_wstate *st = png_get_io_ptr(png);
    if (fflush(st->f) != 0) {
        char why[160];
        snprintf(why, sizeof why, "write failed: %s", strerror(errno ? errno : EIO));
        png_error(png, why);
    }
}

static int key_is_valid(const char *k) {
    size_t n = strlen(k);
    if (n < 1 || n > 79 || k[0] == ' ' || k[n - 1] == ' ') return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)k[i];
        if (c < 32 || c > 126) return 0;
        if (c == ' ' && k[i + 1] == ' ') return 0;
    }
    return 1;
}

static int is_ascii(const char *s) {
    for (; *s; s++)
        if ((unsigned char)*s >= 0x80) return 0;
    return 1;
}

static int png_encode_inner(png_wstate *st, FILE *f, const hd_image *im, const hd_text_kv *kv,
                            int n_text, hd_error *e) {
    st->png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &st->err, on_png_error,
                                      on_png_warning);
    if (!st->png) return hd_fail(e, HD_ENOMEM, "%s: PNG: cannot create encoder", st->what);
    st->info = png_create_info_struct(st->png);
    if (!st->info) return hd_fail(e, HD_ENOMEM, "%s: PNG: cannot create encoder", st->what);
    if (setjmp(png_jmpbuf(st->png)))
        return hd_fail(e, HD_EIO, "%s: PNG: %s", st->what, st->err.msg);
    st->f = f;
    errno = 0;
    png_set_write_fn(st->png, st, on_png_write, on_png_flush);
    png_set_IHDR(st->png, st->info, (png_uint_32)im->w, (png_uint_32)im->h, 8,
                 PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
                 PNG_FILTER_TYPE_DEFAULT);
    if (n_text > 0) {
        for (int i = 0; i < n_text; i++) {
            png_text *t = &st->texts[i];
            t->key = (png_charp)kv[i].key;
            t->text = (png_charp)kv[i].value;
            t->text_length = strlen(kv[i].value);
            if (is_ascii(kv[i].value)) {
                t->compression = PNG_TEXT_COMPRESSION_NONE;
            } else {
                t->compression = PNG_ITXT_COMPRESSION_NONE;
                t->itxt_length = t->text_length;
                t->lang = (png_charp) "";
                t->lang_key = (png_charp) "";
            }
        }
        png_set_text(st->png, st->info, st->texts, n_text);
    }
    png_write_info(st->png, st->info);
    for (int y = 0; y < im->h; y++) png_write_row(st->png, hd_image_at(im, 0, y));
    png_write_end(st->png, st->info);
    return 0;
}

int hd_png_encode(FILE *f, const char *what, const hd_image *im, const hd_text_kv *text,
                  int n_text, hd_error *e) {
    for (int i = 0; i < n_text; i++) {
        if (!text[i].key || !key_is_valid(text[i].key))
            return hd_fail(e, HD_EINVAL,
                           "%s: PNG text chunk %d: key '%.80s' must be 1-79 printable ASCII "
                           "characters without leading, trailing or double spaces",
                           what, i, text[i].key ? text[i].key : "(null)");
        if (!text[i].value)
            return hd_fail(e, HD_EINVAL, "%s: PNG text chunk '%s': no value", what, text[i].key);
    }
    png_wstate st;
    memset(&st, 0, sizeof st);
    st.what = what;
    if (n_text > 0) {
        st.texts = calloc((size_t)n_text, sizeof *st.texts);
        if (!st.texts) return hd_fail(e, HD_ENOMEM, "%s: PNG: out of memory", what);
    }
    int rc = png_encode_inner(&st, f, im, text, n_text, e);
    png_destroy_write_struct(st.png ? &st.png : NULL, st.info ? &st.info : NULL);
    free(st.texts);
    return rc;
}
