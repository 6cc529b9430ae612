/* Format dispatch, whole-file reading, and atomic saving (temporary file + rename). */
#include "image/codec.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/error.h"
#include "core/file.h"
#include "core/temp_guard.h"
#include "image/codec_formats.h"

hd_image_format hd_image_sniff(const void *buf, size_t len) {
    const uint8_t *p = buf;
    if (len >= 8 && memcmp(p, "\x89PNG\r\n\x1a\n", 8) == 0) return HD_FMT_PNG;
    if (len >= 3 && p[0] == 0xFF && p[1] == 0xD8 && p[2] == 0xFF) return HD_FMT_JPEG;
    if (len >= 12 && memcmp(p, "RIFF", 4) == 0 && memcmp(p + 8, "WEBP", 4) == 0)
        return HD_FMT_WEBP;
    return HD_FMT_UNKNOWN;
}

hd_image_format hd_image_format_from_name(const char *path) {
    const char *dot = strrchr(path, '.');
    const char *slash = strrchr(path, '/');
    if (!dot || (slash && dot < slash)) return HD_FMT_UNKNOWN;
    if (strcasecmp(dot, ".png") == 0) return HD_FMT_PNG;
    if (strcasecmp(dot, ".jpg") == 0 || strcasecmp(dot, ".jpeg") == 0) return HD_FMT_JPEG;
    if (strcasecmp(dot, ".webp") == 0) return HD_FMT_WEBP;
    return HD_FMT_UNKNOWN;
}

int hd_codec_check_size(const char *what, const char *fmt, int64_t w, int64_t h,
                        int64_t max_pixels, hd_error *e) {
    if (w <= 0 || h <= 0)
        return hd_fail(e, HD_EFORMAT, "%s: %s: zero-sized picture (%lldx%lld)", what, fmt,
                       (long long)w, (long long)h);
    if (max_pixels > HD_IMAGE_MAX_PIXELS) max_pixels = HD_IMAGE_MAX_PIXELS;
    if (w > INT32_MAX || h > INT32_MAX || w * h > max_pixels)
        return hd_fail(e, HD_ENOMEM,
                       "%s: %s: picture of %lldx%lld pixels exceeds the limit of %lld pixels",
                       what, fmt, (long long)w, (long long)h, (long long)max_pixels);
    return 0;
}

/* Whole file into memory (malloc'd). */
static int read_file(const char *path, uint8_t **buf, size_t *len, hd_error *e) {
    return hd_read_file(path, (size_t)HD_IMAGE_MAX_FILE_BYTES, (char **)buf, len, e);
}

int hd_image_decode(const void *buf, size_t len, const char *what, int64_t max_pixels,
                    hd_image *out, hd_error *e) {
    memset(out, 0, sizeof *out);
    if (len == 0) return hd_fail(e, HD_EFORMAT, "%s: empty file", what);
    switch (hd_image_sniff(buf, len)) {
    case HD_FMT_PNG: return hd_png_decode(buf, len, what, max_pixels, out, NULL, e);
    case HD_FMT_JPEG: return hd_jpeg_decode(buf, len, what, max_pixels, out, e);
    case HD_FMT_WEBP: return hd_webp_decode(buf, len, what, max_pixels, out, e);
    default: break;
    }
    const uint8_t *p = buf;
    const char *kind = NULL;
    if (len >= 6 && (memcmp(p, "GIF87a", 6) == 0 || memcmp(p, "GIF89a", 6) == 0)) kind = "GIF";
    else if (len >= 2 && memcmp(p, "BM", 2) == 0) kind = "BMP";
    else if (len >= 4 && (memcmp(p, "II*\0", 4) == 0 || memcmp(p, "MM\0*", 4) == 0)) kind = "TIFF";
    if (kind)
        return hd_fail(e, HD_EUNSUPPORTED, "%s: %s pictures are not supported (use PNG, JPEG or "
                       "WebP)", what, kind);
    return hd_fail(e, HD_EFORMAT, "%s: not a PNG, JPEG or WebP file", what);
}

int hd_image_load(const char *path, hd_image *out, hd_error *e) {
    memset(out, 0, sizeof *out);
    uint8_t *buf;
    size_t len;
    HD_TRY(read_file(path, &buf, &len, e));
    int rc = hd_image_decode(buf, len, path, HD_IMAGE_MAX_PIXELS, out, e);
    free(buf);
    return rc;
}

/* ---- saving ------------------------------------------------------------------------------ */

/* Creates a fresh file next to path; its name goes to tmp. */
static int open_temp(const char *path, char *tmp, size_t n, FILE **f, hd_error *e) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    for (int attempt = 0; attempt < 100; attempt++) {
        unsigned tag = (unsigned)ts.tv_nsec ^ ((unsigned)getpid() << 8) ^ (unsigned)attempt * 7919u;
        if ((size_t)snprintf(tmp, n, "%s.tmp-%08x", path, tag) >= n)
            return hd_fail(e, HD_EINVAL, "%s: path too long", path);
        int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (fd < 0) {
            if (errno == EEXIST) continue;
            return hd_fail(e, HD_EIO, "%s: cannot create %s: %s", path, tmp, strerror(errno));
        }
        *f = fdopen(fd, "wb");
        if (!*f) {
            close(fd);
            unlink(tmp);
            return hd_fail(e, HD_EIO, "%s: cannot open %s: %s", path, tmp, strerror(errno));
        }
        return 0;
    }
    return hd_fail(e, HD_EIO, "%s: cannot find a free temporary name", path);
}

/* Checks the options and writes im to f in fmt; `what` names the target in messages. */
static int encode_to(FILE *f, const char *what, const hd_image *im, hd_image_format fmt,
                     const hd_save_opts *opts, hd_error *e) {
    switch (fmt) {
    case HD_FMT_PNG: return hd_png_encode(f, what, im, opts->text, opts->n_text, e);
    case HD_FMT_JPEG: return hd_jpeg_encode(f, what, im, opts->quality ? opts->quality : 95, e);
    default:
        return hd_webp_encode(f, what, im, opts->quality ? opts->quality : 95, opts->webp_lossless,
                              e);
    }
}

static int check_save(const char *what, const hd_image *im, hd_image_format fmt,
                      const hd_save_opts *opts, hd_error *e) {
    if (!im || !im->px || im->w < 1 || im->h < 1)
        return hd_fail(e, HD_EINVAL, "%s: nothing to save (empty image)", what);
    if (fmt != HD_FMT_PNG && fmt != HD_FMT_JPEG && fmt != HD_FMT_WEBP)
        return hd_fail(e, HD_EINVAL, "%s: unknown picture format (use .png, .jpg, .jpeg or .webp)",
                       what);
    if (opts->quality < 0 || opts->quality > 100)
        return hd_fail(e, HD_EINVAL, "%s: quality %d outside 1..100", what, opts->quality);
    if (opts->n_text < 0 || (opts->n_text > 0 && !opts->text))
        return hd_fail(e, HD_EINVAL, "%s: bad text chunk list", what);
    return 0;
}

int hd_image_save(const char *path, const hd_image *im, const hd_save_opts *opts, hd_error *e) {
    static const hd_save_opts defaults = {0};
    if (!opts) opts = &defaults;
    hd_image_format fmt = hd_image_format_from_name(path);
    HD_TRY(check_save(path, im, fmt, opts, e));

    size_t n = strlen(path) + 32;
    char *tmp = malloc(n);
    if (!tmp) return hd_fail(e, HD_ENOMEM, "%s: out of memory", path);
    FILE *f = NULL;
    sigset_t mask;
    hd_temp_guard_block(&mask);
    int rc = open_temp(path, tmp, n, &f, e);
    int guard = rc == 0 ? hd_temp_guard_add(tmp) : -1; /* a SIGINT/SIGTERM now removes tmp */
    hd_temp_guard_unblock(&mask);
    if (rc < 0) {
        free(tmp);
        return rc;
    }
    rc = encode_to(f, path, im, fmt, opts, e);
    if (rc == 0 && (fflush(f) != 0 || fsync(fileno(f)) != 0))
        rc = hd_fail(e, HD_EIO, "%s: write failed: %s", path, strerror(errno));
    if (fclose(f) != 0 && rc == 0)
        rc = hd_fail(e, HD_EIO, "%s: write failed: %s", path, strerror(errno));
    if (rc == 0 && rename(tmp, path) != 0)
        rc = hd_fail(e, HD_EIO, "%s: cannot rename %s into place: %s", path, tmp, strerror(errno));
    if (rc < 0) unlink(tmp);
    hd_temp_guard_remove(guard); /* after the unlink: no window without a guard */
    free(tmp);
    return rc;
}

int hd_image_encode(const hd_image *im, hd_image_format fmt, const hd_save_opts *opts,
                    uint8_t **buf, size_t *len, hd_error *e) {
    static const hd_save_opts defaults = {0};
    if (!opts) opts = &defaults;
    *buf = NULL;
    *len = 0;
    HD_TRY(check_save("image", im, fmt, opts, e));
    char *mem = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&mem, &n);
    if (!f) return hd_fail(e, HD_ENOMEM, "image: out of memory");
    int rc = encode_to(f, "image", im, fmt, opts, e);
    if (fclose(f) != 0 && rc == 0) rc = hd_fail(e, HD_ENOMEM, "image: out of memory");
    if (rc < 0) {
        free(mem);
        return rc;
    }
    *buf = (uint8_t *)mem;
    *len = n;
    return 0;
}

/* ---- PNG text ---------------------------------------------------------------------------- */

int hd_png_read_text_buffer(const void *buf, size_t len, const char *what, hd_png_text *out,
                            hd_error *e) {
    memset(out, 0, sizeof *out);
    if (hd_image_sniff(buf, len) != HD_FMT_PNG)
        return hd_fail(e, HD_EFORMAT, "%s: not a PNG file", what);
    return hd_png_decode(buf, len, what, HD_IMAGE_MAX_PIXELS, NULL, out, e);
}

int hd_png_read_text(const char *path, hd_png_text *out, hd_error *e) {
    memset(out, 0, sizeof *out);
    uint8_t *buf;
    size_t len;
    HD_TRY(read_file(path, &buf, &len, e));
    int rc = hd_png_read_text_buffer(buf, len, path, out, e);
    free(buf);
    return rc;
}

void hd_png_text_free(hd_png_text *t) {
    if (!t) return;
    for (int i = 0; i < t->n; i++) {
        if (t->keys) free(t->keys[i]);
        if (t->values) free(t->values[i]);
    }
    free(t->keys);
    free(t->values);
    memset(t, 0, sizeof *t);
}

const char *hd_png_text_get(const hd_png_text *t, const char *key) {
    for (int i = 0; i < t->n; i++)
        if (strcmp(t->keys[i], key) == 0) return t->values[i];
    return NULL;
}
