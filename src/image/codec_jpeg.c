/* JPEG through libjpeg, with Pillow's colour handling: grey and YCbCr come out as RGB, 4-channel
 * (CMYK/YCCK) files are read as Adobe-inverted CMYK and converted with Pillow's cmyk2rgb.
 *
 * libjpeg's default error handler exits the process; ours longjmps back instead, and its
 * message printer is silenced. Running out of data ("premature end of JPEG file"), which libjpeg
 * only warns about, is an error here as it is for Pillow. A cap on the number of progressive
 * scans keeps hostile files from taking unbounded time. */
#include <setjmp.h>
#include <stdio.h> /* before jpeglib.h, which uses FILE */
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>
#include <jerror.h>

#include "core/error.h"
#include "image/codec_formats.h"

#define MAX_SCANS 500 /* the limit libjpeg-turbo's TurboJPEG API applies */

typedef struct jpeg_state {
    struct jpeg_error_mgr err; /* first: libjpeg hands back a pointer to it */
    jmp_buf jump;
    char msg[JMSG_LENGTH_MAX];
    const char *what;
    struct jpeg_progress_mgr progress;
    uint8_t *row;
    hd_image img;
} jpeg_state;

static void on_jpeg_error(j_common_ptr cinfo) {
    jpeg_state *st = (jpeg_state *)cinfo->err;
    cinfo->err->format_message(cinfo, st->msg);
    longjmp(st->jump, 1);
}

static void on_jpeg_message(j_common_ptr cinfo, int level) {
    jpeg_state *st = (jpeg_state *)cinfo->err;
    if (level < 0 && cinfo->err->msg_code == JWRN_JPEG_EOF) {
        snprintf(st->msg, sizeof st->msg, "file is truncated");
        longjmp(st->jump, 1);
    }
    /* other warnings (corrupt data that libjpeg recovers from) are tolerated, as by Pillow */
}

static void on_jpeg_output(j_common_ptr cinfo) { (void)cinfo; }

static void on_jpeg_progress(j_common_ptr cinfo) {
    if (!cinfo->is_decompressor) return;
    j_decompress_ptr d = (j_decompress_ptr)cinfo;
    if (d->input_scan_number > MAX_SCANS) {
        jpeg_state *st = (jpeg_state *)cinfo->err;
        snprintf(st->msg, sizeof st->msg, "more than %d scans", MAX_SCANS);
        longjmp(st->jump, 1);
    }
}

/* Pillow: "CMYK;I" unpacking inverts, then cmyk2rgb computes nk - c*nk/255 with its MULDIV255
 * rounding. */
static inline uint8_t cmyk_channel(unsigned c, unsigned nk) {
    unsigned t = c * nk + 128;
    int v = (int)nk - (int)(((t >> 8) + t) >> 8);
    return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
}

static int jpeg_decode_inner(jpeg_state *st, struct jpeg_decompress_struct *cinfo,
                             const uint8_t *buf, size_t len, int64_t max_pixels, hd_error *e) {
    if (setjmp(st->jump)) return hd_fail(e, HD_EFORMAT, "%s: JPEG: %s", st->what, st->msg);
    jpeg_create_decompress(cinfo);
    cinfo->progress = &st->progress;
    jpeg_mem_src(cinfo, buf, (unsigned long)len);
    jpeg_read_header(cinfo, TRUE);
    int rc = hd_codec_check_size(st->what, "JPEG", cinfo->image_width, cinfo->image_height,
                                 max_pixels, e);
    if (rc < 0) return rc;
    int comps = cinfo->num_components;
    if (comps == 1) {
        cinfo->out_color_space = JCS_GRAYSCALE;
    } else if (comps == 3) {
        cinfo->out_color_space = JCS_RGB;
    } else if (comps == 4) {
        cinfo->out_color_space = JCS_CMYK; /* libjpeg turns YCCK into CMYK */
    } else {
        return hd_fail(e, HD_EUNSUPPORTED, "%s: JPEG: cannot handle %d-channel pictures",
                       st->what, comps);
    }
    jpeg_start_decompress(cinfo);
    int w = (int)cinfo->output_width, h = (int)cinfo->output_height;
    int oc = cinfo->output_components;
    rc = hd_codec_check_size(st->what, "JPEG", w, h, max_pixels, e);
    if (rc < 0) return rc;
    st->row = malloc((size_t)w * (size_t)oc);
    if (!st->row) return hd_fail(e, HD_ENOMEM, "%s: JPEG: out of memory", st->what);
    rc = hd_image_alloc(&st->img, w, h, e);
    if (rc < 0) return hd_error_prefix(e, "%s", st->what);
    while (cinfo->output_scanline < cinfo->output_height) {
        int y = (int)cinfo->output_scanline;
        JSAMPROW rows[1] = {st->row};
        if (jpeg_read_scanlines(cinfo, rows, 1) != 1)
            return hd_fail(e, HD_EFORMAT, "%s: JPEG: file is truncated", st->what);
        uint8_t *dst = hd_image_at(&st->img, 0, y);
        const uint8_t *src = st->row;
        for (int x = 0; x < w; x++, dst += 3, src += oc) {
            if (oc == 1) {
                dst[0] = dst[1] = dst[2] = src[0];
            } else if (oc == 3) {
                memcpy(dst, src, 3);
            } else {
                unsigned nk = src[3]; /* 255 - inverted k */
                for (int c = 0; c < 3; c++) dst[c] = cmyk_channel(255u - src[c], nk);
            }
        }
    }
    jpeg_finish_decompress(cinfo);
    return 0;
}

int hd_jpeg_decode(const uint8_t *buf, size_t len, const char *what, int64_t max_pixels,
                   hd_image *out, hd_error *e) {
    memset(out, 0, sizeof *out);
    jpeg_state st;
    memset(&st, 0, sizeof st);
    st.what = what;
    struct jpeg_decompress_struct cinfo;
    memset(&cinfo, 0, sizeof cinfo);
    cinfo.err = jpeg_std_error(&st.err);
    st.err.error_exit = on_jpeg_error;
    st.err.emit_message = on_jpeg_message;
    st.err.output_message = on_jpeg_output;
    st.progress.progress_monitor = on_jpeg_progress;
    int rc = jpeg_decode_inner(&st, &cinfo, buf, len, max_pixels, e);
    jpeg_destroy_decompress(&cinfo);
    free(st.row);
    if (rc < 0) {
        hd_image_free(&st.img);
        return rc;
    }
    *out = st.img;
    return 0;
}

static int jpeg_encode_inner(jpeg_state *st, struct jpeg_compress_struct *cinfo, FILE *f,
                             const hd_image *im, int quality, hd_error *e) {
    if (setjmp(st->jump)) return hd_fail(e, HD_EIO, "%s: JPEG: %s", st->what, st->msg);
    jpeg_create_compress(cinfo);
    jpeg_stdio_dest(cinfo, f);
    cinfo->image_width = (JDIMENSION)im->w;
    cinfo->image_height = (JDIMENSION)im->h;
    cinfo->input_components = 3;
    cinfo->in_color_space = JCS_RGB;
    jpeg_set_defaults(cinfo);
    jpeg_set_quality(cinfo, quality, TRUE);
    jpeg_start_compress(cinfo, TRUE);
    while (cinfo->next_scanline < cinfo->image_height) {
        JSAMPROW rows[1] = {hd_image_at(im, 0, (int)cinfo->next_scanline)};
        jpeg_write_scanlines(cinfo, rows, 1);
    }
    jpeg_finish_compress(cinfo);
    return 0;
}

int hd_jpeg_encode(FILE *f, const char *what, const hd_image *im, int quality, hd_error *e) {
    if (im->w > JPEG_MAX_DIMENSION || im->h > JPEG_MAX_DIMENSION)
        return hd_fail(e, HD_EINVAL, "%s: JPEG: %dx%d exceeds the format's %d-pixel limit", what,
                       im->w, im->h, (int)JPEG_MAX_DIMENSION);
    jpeg_state st;
    memset(&st, 0, sizeof st);
    st.what = what;
    struct jpeg_compress_struct cinfo;
    memset(&cinfo, 0, sizeof cinfo);
    cinfo.err = jpeg_std_error(&st.err);
    st.err.error_exit = on_jpeg_error;
    st.err.emit_message = on_jpeg_message;
    st.err.output_message = on_jpeg_output;
    int rc = jpeg_encode_inner(&st, &cinfo, f, im, quality, e);
    jpeg_destroy_compress(&cinfo);
    return rc;
}
