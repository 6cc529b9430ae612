/* Image path: codecs, Pillow-exact resampling, reference preparation, layout boxes, the Qwen2-VL
 * processor, and the golden reference inputs (pixel_values, grids, reference patches) of every
 * golden case that has reference images. Byte parity with Pillow on random inputs is the
 * separate CTest image_pillow_parity (tests/pillow_parity.py). */
#include <dirent.h>
#include <ftw.h>
#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "image/codec.h"
#include "image/image.h"
#include "image/layout.h"
#include "image/patchify.h"
#include "image/processor.h"
#include "image/refs.h"
#include "image/resample.h"
#include "io/safetensors.h"
#include "testutil.h"

/* ---- helpers ----------------------------------------------------------------------------- */

static uint32_t rng_state = 12345;
static uint32_t rnd(void) {
    rng_state = rng_state * 1664525u + 1013904223u;
    return rng_state >> 8;
}

static hd_image make_image(int w, int h, int smooth) {
    hd_image im;
    hd_error e;
    if (hd_image_alloc(&im, w, h, &e) < 0) {
        fprintf(stderr, "alloc: %s\n", e.msg);
        exit(2);
    }
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int c = 0; c < 3; c++)
                hd_image_at(&im, x, y)[c] =
                    smooth ? (uint8_t)((x * 2 + y + c * 30) & 255) : (uint8_t)rnd();
    return im;
}

static int same_pixels(const hd_image *a, const hd_image *b) {
    return a->w == b->w && a->h == b->h &&
           memcmp(a->px, b->px, (size_t)a->w * (size_t)a->h * 3) == 0;
}

static char tmpdir[512];
static const char *tmp_path(char *buf, size_t n, const char *name) {
    snprintf(buf, n, "%s/%s", tmpdir, name);
    return buf;
}

static int count_dir_entries(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return -1;
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)))
        if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) n++;
    closedir(d);
    return n;
}

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb, (void)flag, (void)ftw;
    return remove(path);
}

static uint8_t *file_bytes(const char *path, size_t *len) {
    return (uint8_t *)hd_test_read_file(path, len);
}

/* A PNG built by hand (stored deflate blocks), so headers can be hostile and CRCs still right. */
static uint32_t crc32_of(const uint8_t *p, size_t n, uint32_t crc) {
    crc = ~crc;
    for (size_t i = 0; i < n; i++) {
        crc ^= p[i];
        for (int k = 0; k < 8; k++) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
    }
    return ~crc;
}

typedef struct bytes {
    uint8_t *p;
    size_t n, cap;
} bytes;

static void put(bytes *b, const void *src, size_t n) {
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 64;
        b->p = realloc(b->p, b->cap);
        if (!b->p) exit(2);
    }
    memcpy(b->p + b->n, src, n);
    b->n += n;
}

static void put32(bytes *b, uint32_t v) {
    uint8_t x[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
    put(b, x, 4);
}

static void chunk(bytes *b, const char *type, const uint8_t *data, size_t n) {
    put32(b, (uint32_t)n);
    size_t start = b->n;
    put(b, type, 4);
    if (n) put(b, data, n);
    put32(b, crc32_of(b->p + start, n + 4, 0));
}

/* raw: filtered scanlines (filter byte 0 + samples), stored as one zlib stream. */
static bytes make_png(uint32_t w, uint32_t h, int depth, int color_type, const uint8_t *raw,
                      size_t raw_n, const uint8_t *plte, size_t plte_n) {
    bytes b = {0};
    put(&b, "\x89PNG\r\n\x1a\n", 8);
    uint8_t ihdr[13];
    for (int i = 0; i < 4; i++) ihdr[i] = (uint8_t)(w >> (24 - 8 * i));
    for (int i = 0; i < 4; i++) ihdr[4 + i] = (uint8_t)(h >> (24 - 8 * i));
    ihdr[8] = (uint8_t)depth;
    ihdr[9] = (uint8_t)color_type;
    ihdr[10] = ihdr[11] = ihdr[12] = 0;
    chunk(&b, "IHDR", ihdr, 13);
    if (plte) chunk(&b, "PLTE", plte, plte_n);
    bytes z = {0};
    put(&z, "\x78\x01", 2);
    size_t off = 0;
    do {
        size_t n = raw_n - off > 65535 ? 65535 : raw_n - off;
        uint8_t hdr[5] = {(uint8_t)(off + n == raw_n), (uint8_t)n, (uint8_t)(n >> 8),
                          (uint8_t)~n, (uint8_t)(~n >> 8)};
        put(&z, hdr, 5);
        if (n) put(&z, raw + off, n);
        off += n;
    } while (off < raw_n);
    uint32_t a = 1, s = 0;
    for (size_t i = 0; i < raw_n; i++) {
        a = (a + raw[i]) % 65521;
        s = (s + a) % 65521;
    }
    put32(&z, (s << 16) | a);
    chunk(&b, "IDAT", z.p, z.n);
    free(z.p);
    chunk(&b, "IEND", NULL, 0);
    return b;
}

/* ---- codecs ------------------------------------------------------------------------------ */

static void test_png_roundtrip_keeps_pixels_and_text_chunks(void) {
    char path[600];
    hd_error e = {0};
    hd_image im = make_image(37, 21, 0), back = {0};
    hd_text_kv kv[3] = {{"prompt", "a red fox in snow"},
                        {"hidream.params", "{\"seed\": 42, \"steps\": 50}"},
                        {"Comment", "\xc3\xbcnic\xc3\xb8" "de \xe2\x9c\x93"}};
    hd_save_opts o = {0};
    o.text = kv;
    o.n_text = 3;
    CHECK(hd_image_save(tmp_path(path, sizeof path, "rt.png"), &im, &o, &e) == 0);
    CHECK(hd_image_load(path, &back, &e) == 0);
    CHECK(same_pixels(&im, &back));
    hd_png_text t;
    CHECKF(hd_png_read_text(path, &t, &e) == 0, "%s", e.msg);
    CHECK(t.n == 3);
    for (int i = 0; i < 3 && i < t.n; i++) {
        CHECK(strcmp(t.keys[i], kv[i].key) == 0);
        CHECK(strcmp(t.values[i], kv[i].value) == 0);
    }
    CHECK(hd_png_text_get(&t, "prompt") && strcmp(hd_png_text_get(&t, "prompt"), kv[0].value) == 0);
    CHECK(hd_png_text_get(&t, "absent") == NULL);
    hd_png_text_free(&t);
    hd_image_free(&back);
    hd_image_free(&im);
}

static void test_jpeg_and_webp_roundtrips(void) {
    char path[600];
    hd_error e = {0};
    hd_image im = make_image(64, 48, 1), back = {0};
    hd_save_opts o = {0};
    o.quality = 95;
    CHECK(hd_image_save(tmp_path(path, sizeof path, "rt.JPG"), &im, &o, &e) == 0);
    CHECK(hd_image_load(path, &back, &e) == 0);
    CHECK(back.w == 64 && back.h == 48);
    double err = 0;
    for (size_t i = 0; back.px && i < (size_t)64 * 48 * 3; i++) err += fabs((double)back.px[i] - im.px[i]);
    CHECKF(err / (64.0 * 48 * 3) < 2.0, "JPEG mean abs error %g", err / (64.0 * 48 * 3));
    hd_image_free(&back);
    o.webp_lossless = 1;
    CHECK(hd_image_save(tmp_path(path, sizeof path, "rt.webp"), &im, &o, &e) == 0);
    CHECK(hd_image_load(path, &back, &e) == 0);
    CHECK(same_pixels(&im, &back));
    hd_image_free(&back);
    hd_image_free(&im);
}

static void test_save_is_atomic_and_reports_bad_targets(void) {
    char dir[600], path[700];
    hd_error e = {0};
    hd_image im = make_image(8, 8, 0), back = {0};
    snprintf(dir, sizeof dir, "%s/atomic", tmpdir);
    mkdir(dir, 0700);
    snprintf(path, sizeof path, "%s/out.png", dir);
    CHECK(hd_image_save(path, &im, NULL, &e) == 0);
    hd_image im2 = make_image(5, 3, 1);
    CHECK(hd_image_save(path, &im2, NULL, &e) == 0); /* replaces the old file */
    CHECK(hd_image_load(path, &back, &e) == 0 && same_pixels(&back, &im2));
    CHECK(count_dir_entries(dir) == 1); /* no temporary file left behind */
    snprintf(path, sizeof path, "%s/missing-dir/out.png", dir);
    CHECK(hd_image_save(path, &im, NULL, &e) == HD_EIO);
    CHECK(strstr(e.msg, "missing-dir/out.png") != NULL);
    snprintf(path, sizeof path, "%s/out.bmp", dir);
    CHECK(hd_image_save(path, &im, NULL, &e) == HD_EINVAL);
    hd_text_kv bad[] = {{"", "v"}, {" lead", "v"}, {"tab\tkey", "v"}, {"two  spaces", "v"},
                        {"k123456789012345678901234567890123456789012345678901234567890123456789"
                         "01234567890", "v"}};
    snprintf(path, sizeof path, "%s/text.png", dir);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        hd_save_opts o = {0};
        o.text = &bad[i];
        o.n_text = 1;
        CHECKF(hd_image_save(path, &im, &o, &e) == HD_EINVAL, "key %zu", i);
    }
    CHECK(count_dir_entries(dir) == 1);
    hd_image_free(&back);
    hd_image_free(&im);
    hd_image_free(&im2);
}

/* Encodes a small picture in each format and returns the bytes. */
static uint8_t *encoded(const char *name, const hd_image *im, size_t *len) {
    char path[600];
    hd_error e = {0};
    if (hd_image_save(tmp_path(path, sizeof path, name), im, NULL, &e) < 0) {
        fprintf(stderr, "%s\n", e.msg);
        exit(2);
    }
    return file_bytes(path, len);
}

static void test_truncated_files_are_rejected(void) {
    hd_image im = make_image(24, 16, 0);
    const char *names[3] = {"trunc.png", "trunc.jpg", "trunc.webp"};
    /* bytes at the end a decoder may legitimately never read: PNG's IEND chunk (Pillow stops
     * at the image data too), JPEG's EOI marker */
    const size_t tail[3] = {12, 2, 0};
    for (int f = 0; f < 3; f++) {
        size_t len;
        uint8_t *buf = encoded(names[f], &im, &len);
        int refused = 0, total = 0;
        for (size_t n = 0; n + tail[f] < len; n++) {
            hd_image out;
            hd_error e = {0};
            uint8_t *copy = malloc(n ? n : 1); /* exact-size buffer: ASan sees overreads */
            memcpy(copy, buf, n);
            int rc = hd_image_decode(copy, n, names[f], HD_IMAGE_MAX_PIXELS, &out, &e);
            total++;
            if (rc < 0 && strstr(e.msg, names[f])) refused++;
            hd_image_free(&out);
            free(copy);
        }
        CHECKF(refused == total, "%s: %d of %d truncations refused", names[f], refused, total);
        free(buf);
    }
    hd_image_free(&im);
}

static void test_corrupted_files_never_crash(void) {
    hd_image im = make_image(24, 16, 1);
    const char *names[3] = {"fuzz.png", "fuzz.jpg", "fuzz.webp"};
    for (int f = 0; f < 3; f++) {
        size_t len;
        uint8_t *buf = encoded(names[f], &im, &len);
        int ok = 1;
        for (int iter = 0; iter < 300; iter++) {
            uint8_t *copy = malloc(len);
            memcpy(copy, buf, len);
            int flips = 1 + (int)(rnd() % 4);
            for (int k = 0; k < flips; k++) copy[8 + rnd() % (len - 8)] ^= (uint8_t)(1 + rnd() % 255);
            hd_image out;
            hd_error e = {0};
            int rc = hd_image_decode(copy, len, names[f], 1 << 20, &out, &e);
            if (rc == 0 && (out.w < 1 || out.h < 1 || !out.px)) ok = 0;
            if (rc < 0 && (out.px || e.msg[0] == 0)) ok = 0;
            hd_image_free(&out);
            free(copy);
        }
        CHECKF(ok, "%s: a corrupted file gave an inconsistent result", names[f]);
        free(buf);
    }
    hd_image_free(&im);
}

static void test_zero_sized_and_huge_pictures_are_refused(void) {
    hd_error e = {0};
    hd_image out;
    uint8_t raw[2] = {0, 0};
    bytes zero = make_png(0, 1, 8, 0, raw, 2, NULL, 0);
    CHECK(hd_image_decode(zero.p, zero.n, "zero.png", HD_IMAGE_MAX_PIXELS, &out, &e) < 0);
    CHECK(strstr(e.msg, "zero.png") != NULL);
    free(zero.p);
    /* a valid header announcing 30000 x 30000 pixels: refused before any pixel allocation */
    bytes huge = make_png(30000, 30000, 8, 2, raw, 2, NULL, 0);
    CHECK(hd_image_decode(huge.p, huge.n, "huge.png", HD_IMAGE_MAX_PIXELS, &out, &e) ==
          HD_ENOMEM);
    CHECKF(strstr(e.msg, "huge.png") && strstr(e.msg, "exceeds the limit"), "%s", e.msg);
    free(huge.p);
    /* the same through the caller's smaller limit, for every format */
    hd_image im = make_image(40, 30, 0);
    const char *names[3] = {"lim.png", "lim.jpg", "lim.webp"};
    for (int f = 0; f < 3; f++) {
        size_t len;
        uint8_t *buf = encoded(names[f], &im, &len);
        CHECKF(hd_image_decode(buf, len, names[f], 40 * 30 - 1, &out, &e) == HD_ENOMEM, "%s",
               names[f]);
        CHECK(out.px == NULL);
        CHECK(hd_image_decode(buf, len, names[f], 40 * 30, &out, &e) == 0);
        hd_image_free(&out);
        free(buf);
    }
    /* a JPEG whose frame header claims 60000 x 60000 */
    size_t len;
    uint8_t *jpg = encoded("sof.jpg", &im, &len);
    for (size_t i = 0; i + 9 < len; i++)
        if (jpg[i] == 0xFF && (jpg[i + 1] == 0xC0 || jpg[i + 1] == 0xC2)) {
            jpg[i + 5] = 0xEA, jpg[i + 6] = 0x60, jpg[i + 7] = 0xEA, jpg[i + 8] = 0x60;
            break;
        }
    CHECK(hd_image_decode(jpg, len, "sof.jpg", HD_IMAGE_MAX_PIXELS, &out, &e) == HD_ENOMEM);
    free(jpg);
    hd_image_free(&im);
}

static void test_unknown_formats_are_rejected_with_the_file_name(void) {
    hd_error e = {0};
    hd_image out;
    CHECK(hd_image_decode("GIF89a....", 10, "a.gif", HD_IMAGE_MAX_PIXELS, &out, &e) ==
          HD_EUNSUPPORTED);
    CHECK(strstr(e.msg, "a.gif") != NULL);
    CHECK(hd_image_decode("hello world", 11, "b.txt", HD_IMAGE_MAX_PIXELS, &out, &e) ==
          HD_EFORMAT);
    CHECK(hd_image_decode("", 0, "c.png", HD_IMAGE_MAX_PIXELS, &out, &e) == HD_EFORMAT);
    char path[600];
    CHECK(hd_image_load(tmp_path(path, sizeof path, "does-not-exist.png"), &out, &e) == HD_EIO);
    CHECK(strstr(e.msg, "does-not-exist.png") != NULL);
    hd_png_text t;
    hd_image im = make_image(8, 8, 0);
    size_t len;
    uint8_t *jpg = encoded("t.jpg", &im, &len);
    CHECK(hd_png_read_text_buffer(jpg, len, "t.jpg", &t, &e) == HD_EFORMAT);
    free(jpg);
    hd_image_free(&im);
}

static void decode_one(bytes b, hd_image *out) {
    hd_error e = {0};
    if (hd_image_decode(b.p, b.n, "made.png", HD_IMAGE_MAX_PIXELS, out, &e) < 0) {
        fprintf(stderr, "%s\n", e.msg);
        memset(out, 0, sizeof *out);
    }
    free(b.p);
}

static void test_png_colour_types_convert_like_pillow(void) {
    hd_image o;
    /* 16-bit grey: Pillow opens mode "I" and clips to 255 when converting to RGB */
    uint8_t g16[] = {0, 0x00, 200, 0x01, 0x00, 0xFF, 0xFF};
    decode_one(make_png(3, 1, 16, 0, g16, sizeof g16, NULL, 0), &o);
    CHECK(o.px && o.px[0] == 200 && o.px[3] == 255 && o.px[6] == 255 && o.px[7] == 255);
    hd_image_free(&o);
    /* 2-bit grey is scaled by 85 */
    uint8_t g2[] = {0, 0x1B}; /* 0, 1, 2, 3 */
    decode_one(make_png(4, 1, 2, 0, g2, sizeof g2, NULL, 0), &o);
    CHECK(o.px && o.px[0] == 0 && o.px[3] == 85 && o.px[6] == 170 && o.px[9] == 255);
    hd_image_free(&o);
    /* 16-bit RGB keeps the high byte */
    uint8_t rgb16[] = {0, 0x12, 0x34, 0xAB, 0xCD, 0x00, 0xFF};
    decode_one(make_png(1, 1, 16, 2, rgb16, sizeof rgb16, NULL, 0), &o);
    CHECK(o.px && o.px[0] == 0x12 && o.px[1] == 0xAB && o.px[2] == 0x00);
    hd_image_free(&o);
    /* RGBA: alpha dropped without compositing, fully transparent pixels keep their colour */
    uint8_t rgba[] = {0, 10, 20, 30, 0, 40, 50, 60, 128};
    decode_one(make_png(2, 1, 8, 6, rgba, sizeof rgba, NULL, 0), &o);
    CHECK(o.px && o.px[0] == 10 && o.px[1] == 20 && o.px[2] == 30 && o.px[3] == 40);
    hd_image_free(&o);
    /* grey + alpha, 16-bit: high byte of the grey sample */
    uint8_t ga16[] = {0, 0x80, 0x01, 0x00, 0x00};
    decode_one(make_png(1, 1, 16, 4, ga16, sizeof ga16, NULL, 0), &o);
    CHECK(o.px && o.px[0] == 0x80 && o.px[1] == 0x80 && o.px[2] == 0x80);
    hd_image_free(&o);
    /* a palette shorter than the indices used: Pillow's palette is a grey ramp past its end */
    uint8_t plte[] = {1, 2, 3, 4, 5, 6};
    uint8_t pal[] = {0, 1, 0, 7};
    decode_one(make_png(3, 1, 8, 3, pal, sizeof pal, plte, sizeof plte), &o);
    CHECK(o.px && o.px[0] == 4 && o.px[3] == 1 && o.px[6] == 7 && o.px[8] == 7);
    hd_image_free(&o);
}

/* ---- resampling -------------------------------------------------------------------------- */

/* Pillow 9.4 results for a fixed 5x3 picture (Image.resize). */
static const uint8_t PIL_3x2[4][18] = {
    {89, 126, 163, 127, 36, 73, 166, 139, 112, 153, 190, 99, 63, 100, 137, 102, 139, 176},
    {75, 112, 149, 139, 87, 124, 167, 149, 95, 129, 166, 134, 104, 141, 142, 130, 112, 149},
    {71, 108, 150, 140, 84, 130, 171, 150, 89, 131, 168, 131, 104, 150, 146, 127, 106, 154},
    {72, 107, 150, 139, 85, 139, 173, 147, 83, 132, 167, 126, 105, 161, 150, 125, 99, 159},
};
static const uint8_t PIL_8x5_LANCZOS[120] = {
    1,   29,  67,  34,  102, 135, 132, 154, 181, 253, 52,  77,  214, 8,   72,  89,  108, 159,
    131, 221, 82,  203, 255, 0,   10,  42,  75,  59,  115, 164, 139, 166, 229, 173, 61,  102,
    129, 31,  80,  94,  127, 171, 177, 164, 95,  251, 161, 9,   38,  75,  112, 111, 148, 185,
    163, 199, 236, 60,  89,  126, 20,  80,  117, 119, 168, 205, 213, 91,  128, 250, 5,   42,
    70,  108, 168, 147, 181, 138, 194, 232, 97,  66,  121, 98,  47,  116, 175, 159, 203, 241,
    142, 108, 158, 93,  9,   75,  85,  121, 196, 156, 194, 98,  209, 245, 0,   104, 136, 70,
    99,  125, 204, 179, 214, 255, 82,  142, 169, 0,   60,  88};

static void test_resize_matches_pillow_vectors(void) {
    hd_error e = {0};
    hd_image src, out;
    CHECK(hd_image_alloc(&src, 5, 3, &e) == 0);
    for (int i = 0; i < 45; i++) src.px[i] = (uint8_t)((i * 37 + 11) % 256);
    for (int f = 0; f < HD_FILTER_COUNT; f++) {
        CHECK(hd_image_resize(&src, 3, 2, (hd_filter)f, &out, &e) == 0);
        CHECKF(out.px && memcmp(out.px, PIL_3x2[f], 18) == 0, "filter %s", hd_filter_name(f));
        hd_image_free(&out);
    }
    CHECK(hd_image_resize(&src, 8, 5, HD_FILTER_LANCZOS, &out, &e) == 0);
    CHECK(out.px && memcmp(out.px, PIL_8x5_LANCZOS, 120) == 0);
    hd_image_free(&out);
    CHECK(hd_image_resize(&src, 5, 3, HD_FILTER_BICUBIC, &out, &e) == 0);
    CHECK(same_pixels(&src, &out)); /* same size: a copy */
    hd_image_free(&out);
    CHECK(hd_image_resize(&src, 0, 3, HD_FILTER_BOX, &out, &e) == HD_EINVAL);
    CHECK(hd_image_resize(&src, 3, 2, (hd_filter)99, &out, &e) == HD_EINVAL);
    CHECK(hd_filter_parse("lanczos") == HD_FILTER_LANCZOS && hd_filter_parse("nearest") < 0);
    hd_image_free(&src);
}

static void test_crop_fills_outside_with_black(void) {
    hd_error e = {0};
    hd_image src = make_image(4, 3, 0), out;
    CHECK(hd_image_crop(&out, &src, -1, 1, 3, 4, &e) == 0);
    CHECK(out.w == 4 && out.h == 3);
    CHECK(out.px[0] == 0 && out.px[1] == 0 && out.px[2] == 0);          /* x = -1 */
    CHECK(memcmp(hd_image_at(&out, 1, 0), hd_image_at(&src, 0, 1), 9) == 0);
    CHECK(hd_image_at(&out, 2, 2)[0] == 0);                              /* y = 3 */
    hd_image_free(&out);
    CHECK(hd_image_crop(&out, &src, 2, 0, 2, 3, &e) == HD_EINVAL);
    hd_image_free(&src);
}

/* ---- reference preparation --------------------------------------------------------------- */

static void test_size_tables_follow_the_spec(void) {
    const int max_size[10] = {2048, 1536, 1024, 1024, 768, 768, 768, 768, 512, 512};
    const int cond[10] = {384, 384, 384, 384, 288, 288, 288, 288, 192, 192};
    for (int k = 1; k <= 10; k++) {
        CHECKF(hd_refs_max_size(k, 2048) == max_size[k - 1], "K=%d", k);
        CHECKF(hd_refs_condition_size(k) == cond[k - 1], "K=%d", k);
    }
    CHECK(hd_refs_max_size(2, 2560) == 1920 && hd_refs_max_size(5, 3104) == 1164);
}

static void test_resize_pilimage_plan_matches_spec_examples(void) {
    hd_error e = {0};
    hd_pilimage_plan p;
    CHECK(hd_resize_pilimage_plan(3000, 2000, 2048, 32, &p, &e) == 0);
    CHECK(p.n_halvings == 0 && p.out_w == 2496 && p.out_h == 1664 && p.left == 0 && p.top == 0);
    CHECK(hd_resize_pilimage_plan(4032, 3024, 2048, 32, &p, &e) == 0);
    CHECK(p.resize_w == 2347 && p.resize_h == 1760 && p.left == 5 && p.out_w == 2336 &&
          p.out_h == 1760);
    CHECK(hd_resize_pilimage_plan(4000, 6000, 1024, 32, &p, &e) == 0);
    CHECK(p.n_halvings == 1 && p.half_w == 2000 && p.half_h == 3000 && p.out_w == 832 &&
          p.out_h == 1248);
    CHECK(hd_resize_pilimage_plan(5000, 5000, 1536, 32, &p, &e) == 0);
    CHECK(p.n_halvings == 1 && p.out_w == 1536 && p.out_h == 1536);
    /* a 1024x1024 reference is upscaled to a 2048 budget */
    CHECK(hd_resize_pilimage_plan(1024, 1024, 2048, 32, &p, &e) == 0);
    CHECK(p.out_w == 2048 && p.out_h == 2048);
    /* upstream divides by zero here */
    CHECK(hd_resize_pilimage_plan(20000, 10, 64, 32, &p, &e) == HD_EINVAL);
    /* the pixels follow the plan */
    hd_image src = make_image(150, 100, 0), out;
    CHECK(hd_resize_pilimage_plan(150, 100, 96, 32, &p, &e) == 0);
    CHECK(hd_resize_pilimage(&src, 96, 32, &out, &e) == 0);
    CHECK(out.w == p.out_w && out.h == p.out_h && out.w % 32 == 0 && out.h % 32 == 0);
    hd_image_free(&out);
    hd_image_free(&src);
}

static void test_calculate_dimensions_matches_spec_examples(void) {
    int w, h;
    hd_calculate_dimensions(384, 1.0, &w, &h);
    CHECK(w == 384 && h == 384);
    hd_calculate_dimensions(384, 2496.0 / 1664.0, &w, &h);
    CHECK(w == 448 && h == 288);
    hd_calculate_dimensions(384, 16.0 / 9.0, &w, &h);
    CHECK(w == 512 && h == 288);
    hd_calculate_dimensions(192, 1.5, &w, &h);
    CHECK(w == 224 && h == 128);
}

static void test_reference_patches_are_float32_exact(void) {
    hd_error e = {0};
    hd_image im = make_image(64, 32, 0);
    float *rows = malloc(sizeof(float) * 2 * HD_PATCH_DIM);
    CHECK(hd_refs_patches(&im, rows, &e) == 0);
    int ok = 1;
    for (int y = 0; y < 32; y++)
        for (int x = 0; x < 64; x++)
            for (int c = 0; c < 3; c++) {
                volatile float u = (float)hd_image_at(&im, x, y)[c] * (1.0f / 255.0f);
                volatile float d = u - 0.5f;
                float want = d / 0.5f;
                float got = rows[(x / 32) * HD_PATCH_DIM + c * 1024 + y * 32 + x % 32];
                if (memcmp(&want, &got, 4) != 0) ok = 0;
            }
    CHECK(ok);
    hd_image one;
    CHECK(hd_image_alloc(&one, 32, 32, &e) == 0);
    memset(one.px, 255, 32 * 32 * 3);
    CHECK(hd_refs_patches(&one, rows, &e) == 0 && rows[0] == 1.0f);
    memset(one.px, 0, 32 * 32 * 3);
    CHECK(hd_refs_patches(&one, rows, &e) == 0 && rows[0] == -1.0f);
    hd_image odd = make_image(40, 32, 0);
    CHECK(hd_refs_patches(&odd, rows, &e) == HD_EINVAL);
    hd_image_free(&odd);
    hd_image_free(&one);
    free(rows);
    hd_image_free(&im);
}

static void test_patchify_layout_and_roundtrip(void) {
    hd_error e = {0};
    const int w = 96, h = 64;
    float *img = malloc(sizeof(float) * 3 * w * h), *rows = malloc(sizeof(float) * 6 * 3072),
          *back = malloc(sizeof(float) * 3 * w * h);
    for (int i = 0; i < 3 * w * h; i++) img[i] = (float)i;
    CHECK(hd_patchify(img, w, h, 32, rows, &e) == 0);
    /* pixel (c=2, y=40, x=70): patch row 1, column 2 -> n = 1*3 + 2; f = 2*1024 + 8*32 + 6 */
    CHECK(rows[5 * 3072 + 2 * 1024 + 8 * 32 + 6] == (float)((2 * h + 40) * w + 70));
    CHECK(hd_unpatchify(rows, w, h, 32, back, &e) == 0);
    CHECK(memcmp(img, back, sizeof(float) * 3 * w * h) == 0);
    CHECK(hd_patchify(img, 100, 64, 32, rows, &e) == HD_EINVAL);
    free(img);
    free(rows);
    free(back);
}

static void test_keep_aspect_takes_the_target_from_the_reference(void) {
    hd_error e = {0};
    hd_image ref = make_image(300, 200, 1);
    hd_layout lay = {0};
    hd_refs r;
    CHECKF(hd_refs_prepare(&ref, 1, 2048, 2048, 1, &lay, NULL, &r, &e) == 0, "%s", e.msg);
    CHECK(r.keep_aspect && r.target_w == 2496 && r.target_h == 1664);
    CHECK(r.n == 1 && !r.has_layout); /* the layout is ignored in keep-aspect mode */
    CHECK(r.entries[0].image.w == 2496 && r.n_patch_rows == 78 * 52);
    CHECK(r.entries[0].cond.w == 448 && r.entries[0].cond.h == 288);
    CHECK(r.vlm.n_images == 1 && r.vlm.grid_thw[0][1] == 18 && r.vlm.grid_thw[0][2] == 28);
    CHECK(r.vlm.n_tokens[0] == 126 && r.vlm.n_rows == 504 && r.vlm.row_dim == 1536);
    hd_refs_free(&r);
    /* two references: keep-aspect does not apply, the target stays */
    hd_image two[2] = {ref, ref};
    CHECK(hd_refs_prepare(two, 2, 256, 128, 1, NULL, NULL, &r, &e) == 0);
    CHECK(!r.keep_aspect && r.target_w == 256 && r.max_size == 192 && r.n == 2);
    hd_refs_free(&r);
    CHECK(hd_refs_prepare(two, 2, 250, 128, 0, NULL, NULL, &r, &e) == HD_EINVAL);
    hd_image_free(&ref);
}

static void test_layout_adds_a_drawn_image_and_coloured_borders(void) {
    hd_error e = {0};
    hd_image refs[2] = {make_image(200, 150, 1), make_image(120, 160, 1)};
    hd_layout lay;
    const char *js = "[[0.55, 0.95, 0.1, 0.6], [0.1, 0.45, 0.2, 0.9]]";
    CHECK(hd_layout_parse(js, strlen(js), "test", &lay, &e) == 0);
    hd_refs r;
    CHECKF(hd_refs_prepare(refs, 2, 256, 192, 0, &lay, NULL, &r, &e) == 0, "%s", e.msg);
    CHECK(r.n == 3 && r.has_layout && r.max_size == 128 && r.cond_size == 384);
    /* box 1 is larger, so it is drawn first in red and reference 1 gets a red border */
    const uint8_t *p0 = hd_image_at(&r.entries[0].image, 0, 0);
    const uint8_t *p1 = hd_image_at(&r.entries[1].image, 0, 0);
    CHECK(p1[0] == 255 && p1[1] == 0 && p1[2] == 0);
    CHECK(p0[0] == 0 && p0[1] == 180 && p0[2] == 0);
    CHECK(r.entries[2].image.w * r.entries[2].image.h <= 128 * 128);
    hd_refs_free(&r);
    /* an invalid box stops everything */
    hd_layout_free(&lay);
    js = "[[0.5, 0.5, 0.1, 0.2]]";
    CHECK(hd_layout_parse(js, strlen(js), "test", &lay, &e) == 0);
    CHECK(hd_refs_prepare(refs, 2, 256, 192, 0, &lay, NULL, &r, &e) == HD_EINVAL);
    CHECK(strstr(e.msg, "layout box 0") != NULL);
    hd_layout_free(&lay);
    hd_image_free(&refs[0]);
    hd_image_free(&refs[1]);
}

/* ---- processor --------------------------------------------------------------------------- */

static void test_smart_resize_matches_spec_examples(void) {
    hd_error e = {0};
    int h, w;
    CHECK(hd_smart_resize(192, 192, 32, 65536, 16777216, &h, &w, &e) == 0 && h == 256 && w == 256);
    CHECK(hd_smart_resize(128, 224, 32, 65536, 16777216, &h, &w, &e) == 0 && h == 224 && w == 352);
    CHECK(hd_smart_resize(160, 224, 32, 65536, 16777216, &h, &w, &e) == 0 && h == 224 && w == 320);
    CHECK(hd_smart_resize(288, 448, 32, 65536, 16777216, &h, &w, &e) == 0 && h == 288 && w == 448);
    CHECK(hd_smart_resize(5000, 5000, 32, 65536, 16777216, &h, &w, &e) == 0 && h == 4096 &&
          w == 4096);
    CHECK(hd_smart_resize(32, 6432, 32, 65536, 16777216, &h, &w, &e) == HD_EINVAL);
}

static void test_processor_orders_patches_and_normalises(void) {
    hd_error e = {0};
    hd_image im;
    CHECK(hd_image_alloc(&im, 320, 224, &e) == 0); /* area 71680: no resize */
    for (int y = 0; y < im.h; y++)
        for (int x = 0; x < im.w; x++) {
            uint8_t *p = hd_image_at(&im, x, y);
            p[0] = (uint8_t)x, p[1] = (uint8_t)y, p[2] = (uint8_t)(x + 2 * y);
        }
    hd_processor_out o;
    CHECK(hd_processor_run(&im, 1, NULL, &o, &e) == 0);
    CHECK(o.grid_thw[0][0] == 1 && o.grid_thw[0][1] == 14 && o.grid_thw[0][2] == 20);
    CHECK(o.n_tokens[0] == 70 && o.n_rows == 280 && o.row_dim == 1536);
    /* token 23: block row 0, block column 5, inner (1, 1) -> patch row 1, column 11 */
    const float *row = o.pixel_values + 23 * 1536;
    int ok = 1;
    for (int c = 0; c < 3; c++)
        for (int f = 0; f < 2; f++)
            for (int py = 0; py < 16; py++)
                for (int px = 0; px < 16; px++) {
                    int x = 11 * 16 + px, y = 16 + py;
                    uint8_t v = c == 0 ? (uint8_t)x : c == 1 ? (uint8_t)y : (uint8_t)(x + 2 * y);
                    float want = ((float)v - 127.5f) / 127.5f;
                    if (row[((c * 2 + f) * 16 + py) * 16 + px] != want) ok = 0;
                }
    CHECK(ok);
    hd_processor_out_free(&o);
    /* small images are enlarged to the minimum pixel count */
    hd_image small;
    CHECK(hd_image_alloc(&small, 224, 128, &e) == 0);
    CHECK(hd_processor_run(&small, 1, NULL, &o, &e) == 0);
    CHECK(o.grid_thw[0][1] == 14 && o.grid_thw[0][2] == 22);
    hd_processor_out_free(&o);
    hd_image_free(&small);
    hd_image_free(&im);
}

/* ---- layout boxes ------------------------------------------------------------------------ */

static int parse(const char *js, hd_layout *l) {
    hd_error e = {0};
    return hd_layout_parse(js, strlen(js), "test", l, &e);
}

static void test_layout_accepts_every_input_shape(void) {
    const char *ok[] = {
        "[[0.1, 0.5, 0.2, 0.6]]",
        "{\"layout_bboxes\": [[0.1, 0.5, 0.2, 0.6]]}",
        "{\"bboxes\": [[0.1, 0.5, 0.2, 0.6]]}",
        "{\"boxes\": [[0.1, 0.5, 0.2, 0.6]]}",
        "{\"bbox_list\": [[0.1, 0.5, 0.2, 0.6]]}",
        "{\"bbox_list\": [], \"layout_bboxes\": [[0.1, 0.5, 0.2, 0.6]]}", /* key order of lookup */
        "[{\"bbox\": [0.1, 0.5, 0.2, 0.6], \"text\": \"a cat\"}]",
        "[{\"box\": [0.1, 0.5, 0.2, 0.6], \"label\": \"a cat\"}]",
        "[{\"bbox\": [], \"box\": [0.1, 0.5, 0.2, 0.6]}]", /* empty bbox falls back to box */
        "[[\"0.1\", 0.5, \" 0.2 \", 0.6]]",                 /* Python float() of strings */
        "[[false, 0.5, 0.2, true]]",
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        hd_layout l;
        CHECKF(parse(ok[i], &l) == 0 && l.n == 1, "%s", ok[i]);
        if (l.n == 1 && i < 6)
            CHECK(l.boxes[0].v[0] == 0.1 && l.boxes[0].v[1] == 0.5 && l.boxes[0].v[2] == 0.2 &&
                  l.boxes[0].v[3] == 0.6);
        if (i == 6 || i == 7) CHECK(l.boxes[0].label && strcmp(l.boxes[0].label, "a cat") == 0);
        hd_layout_free(&l);
    }
    hd_layout l;
    CHECK(parse("[]", &l) == 0 && l.n == 0);
    hd_layout_free(&l);
}

static void test_layout_syntax_errors_are_reported_as_skippable(void) {
    hd_layout l;
    hd_error e = {0};
    CHECK(parse("[[0.1, 0.5, 0.2, 0.6]", &l) == HD_EFORMAT);
    CHECK(parse("[[0.1, 0.5, 0.2, 0.6]] trailing", &l) == HD_EFORMAT);
    CHECK(parse("   ", &l) == HD_EFORMAT);
    CHECK(parse("{'boxes': []}", &l) == HD_EFORMAT);
    /* a file is read when one exists under that name; invalid content skips */
    char path[600];
    tmp_path(path, sizeof path, "layout.json");
    const char *js = "{\"boxes\": [{\"bbox\": [10, 50, 20, 80]}]}";
    CHECK(hd_test_write_file(path, js, strlen(js)) == 0);
    CHECK(hd_layout_load(path, &l, &e) == 0 && l.n == 1 && l.boxes[0].v[3] == 80);
    hd_layout_free(&l);
    CHECK(hd_test_write_file(path, "[[1, 2", 6) == 0);
    CHECK(hd_layout_load(path, &l, &e) == HD_EFORMAT && strstr(e.msg, "layout.json"));
    /* a path that cannot be read (a directory) or does not exist is an error, not skipped */
    CHECK(hd_layout_load(tmpdir, &l, &e) == HD_EIO);
    CHECK(hd_layout_load("no-such-layout.json", &l, &e) == HD_EIO &&
          strstr(e.msg, "no such layout file"));
    CHECK(hd_layout_load("[[0.1, 0.5, 0.2, 0.6]]", &l, &e) == 0 && l.n == 1);
    hd_layout_free(&l);
}

static void test_layout_rejects_malformed_boxes(void) {
    const char *bad[] = {
        "5",
        "\"boxes\"",
        "{\"foo\": [[0.1, 0.5, 0.2, 0.6]]}",
        "{\"boxes\": {\"a\": 1}}",
        "[[0.1, 0.5, 0.2]]",
        "[[0.1, 0.5, 0.2, 0.6, 0.7]]",
        "[0.1, 0.5, 0.2, 0.6]",
        "[{\"text\": \"no box\"}]",
        "[{\"bbox\": null}]",
        "[{\"bbox\": [0.1, 0.5, 0.2]}]",
        "[{\"bbox\": 5}]",
        "[[null, 0.5, 0.2, 0.6]]",
        "[[\"abc\", 0.5, 0.2, 0.6]]",
        "[[[0.1], 0.5, 0.2, 0.6]]",
        "[[\"inf\", 0.5, 0.2, 0.6]]",
        /* valid for Python's json.loads, then refused when rounding: upstream aborts */
        "[[1e999, 0.5, 0.2, 0.6]]",
        "[[NaN, 0.5, 0.2, 0.6]]",
        "[[0.1, -Infinity, 0.2, 0.6]]",
        "[[0.1, 0.5, 0.2, 1000000000000000000000000000000000000000000000000000000000000000000000"
        "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
        "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
        "00000000000000000000000000000000000000000000000000000000000000000000000000000000000]]",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        hd_layout l;
        int rc = parse(bad[i], &l);
        CHECKF(rc == HD_EINVAL, "%s -> %d", bad[i], rc);
        CHECK(l.n == 0 && l.boxes == NULL);
    }
    /* non-finite values where no coordinate is read are fine, as in Python */
    hd_layout l;
    CHECK(parse("{\"scale\": Infinity, \"boxes\": [{\"bbox\": [0.1, 0.5, 0.2, 0.6], "
                "\"text\": NaN}]}", &l) == 0 && l.n == 1);
    hd_layout_free(&l);
    /* ... but they do not hide a syntax error */
    CHECK(parse("[[NaN, 0.5, 0.2, 0.6]", &l) == HD_EFORMAT);
    CHECK(parse("[[nan, 0.5, 0.2, 0.6]]", &l) == HD_EFORMAT);
    CHECK(parse("[[\"NaN\", 0.5, 0.2, 0.6]]", &l) == HD_EINVAL); /* a string, for float() */
}

static void test_layout_boxes_are_scaled_sorted_rounded_and_clamped(void) {
    hd_layout l;
    hd_error e = {0};
    hd_layout_rect r[5];
    CHECK(parse("[[0.1, 0.45, 0.2, 0.9], [10, 50, 20, 80], [150, 120, 300, 50], "
                "[0.125, 0.375, 0.375, 0.125], [-0.5, 0.5, 0.2, 1.0]]", &l) == 0);
    CHECK(hd_layout_to_pixels(&l, 128, 96, r, &e) == 0);
    CHECK(r[0].x1 == 13 && r[0].x2 == 58 && r[0].y1 == 19 && r[0].y2 == 86);   /* fractions */
    CHECK(r[1].x1 == 13 && r[1].x2 == 64 && r[1].y1 == 19 && r[1].y2 == 77);   /* percent */
    CHECK(r[2].x1 == 120 && r[2].x2 == 127 && r[2].y1 == 50 && r[2].y2 == 95); /* pixels */
    /* 0.125*128 = 16, 0.375*96 = 36: exact; swapped corners are sorted */
    CHECK(r[3].x1 == 16 && r[3].x2 == 48 && r[3].y1 == 12 && r[3].y2 == 36);
    CHECK(r[4].x1 == 0 && r[4].x2 == 64 && r[4].y2 == 95);
    hd_layout_free(&l);
    /* round half to even: 2.5 -> 2, 7.5 -> 8 */
    CHECK(parse("[[0.125, 0.375, 0.0, 1.0]]", &l) == 0);
    CHECK(hd_layout_to_pixels(&l, 20, 20, r, &e) == 0 && r[0].x1 == 2 && r[0].x2 == 8);
    hd_layout_free(&l);
    CHECK(parse("[[0.1, 0.5, 0.2, 0.6], [0.3, 0.3, 0.2, 0.6]]", &l) == 0);
    CHECK(hd_layout_to_pixels(&l, 128, 96, r, &e) == HD_EINVAL);
    CHECK(strstr(e.msg, "layout box 1") != NULL);
    hd_layout_free(&l);
}

static void test_layout_drawing_widths_colours_and_top_five(void) {
    hd_error e = {0};
    /* 2048x2048: max line 102, gap 20 */
    hd_layout_rect big[2] = {{100, 100, 1000, 1000}, {1200, 1200, 1900, 1900}};
    hd_image im;
    uint8_t col[2][3];
    int drawn[2];
    CHECK(hd_layout_draw(big, 2, 2048, 2048, &im, col, drawn, &e) == 0);
    CHECK(hd_image_at(&im, 100 + 101, 500)[0] == 255 && hd_image_at(&im, 100 + 102, 500)[0] == 0);
    CHECK(hd_image_at(&im, 1200 + 81, 1500)[1] == 180 && hd_image_at(&im, 1200 + 82, 1500)[1] == 0);
    CHECK(hd_image_at(&im, 50, 50)[0] == 0);
    CHECK(drawn[0] && drawn[1] && col[1][1] == 180);
    hd_image_free(&im);
    /* 7 boxes: only the 5 largest are drawn; equal areas keep their input order */
    hd_layout_rect seven[7] = {{0, 0, 10, 10},  {0, 0, 30, 30}, {0, 0, 10, 10}, {0, 0, 50, 50},
                               {0, 0, 20, 20},  {0, 0, 5, 5},   {0, 0, 40, 40}};
    uint8_t c7[7][3];
    int d7[7];
    CHECK(hd_layout_draw(seven, 7, 320, 192, &im, c7, d7, &e) == 0);
    CHECK(d7[3] && d7[6] && d7[1] && d7[4] && d7[0] && !d7[2] && !d7[5]);
    CHECK(memcmp(c7[3], hd_layout_color(0), 3) == 0 && memcmp(c7[0], hd_layout_color(4), 3) == 0);
    hd_image_free(&im);
    CHECK(hd_layout_border_width(64, 32) == 1 && hd_layout_border_width(2048, 2048) == 81);
}

/* ---- golden reference inputs ------------------------------------------------------------- */

/* Tensor data of the wanted dtype, or NULL; shape into dims (up to 4). */
static const void *st_get(const hd_safetensors *s, const char *name, hd_dtype dtype,
                          int64_t *dims, int *ndim, int64_t *numel) {
    const hd_st_tensor *t = hd_st_find(s, name);
    if (!t || t->dtype != dtype || t->ndim > 4) return NULL;
    *ndim = t->ndim;
    for (int i = 0; i < t->ndim; i++) dims[i] = t->shape[i];
    *numel = t->numel;
    return t->data;
}

static int load_ref(const hd_safetensors *s, const char *name, hd_image *im) {
    int64_t d[4], n;
    int nd;
    const uint8_t *p = st_get(s, name, HD_U8, d, &nd, &n);
    hd_error e;
    if (!p || nd != 3 || d[2] != 3 || hd_image_alloc(im, (int)d[1], (int)d[0], &e) < 0) return -1;
    memcpy(im->px, p, (size_t)n);
    return 0;
}

/* Prepares the references of one pipeline case as the pipeline would. */
static int prepare_case(const hd_safetensors *pipe, json_t *c, hd_refs *r, int *n_refs) {
    json_t *refs = json_object_get(c, "refs");
    int k = (int)json_array_size(refs);
    *n_refs = k;
    if (k == 0) return 1;
    hd_image *imgs = calloc((size_t)k, sizeof *imgs);
    int rc = 0;
    for (int i = 0; i < k && rc == 0; i++)
        rc = load_ref(pipe, json_string_value(json_array_get(refs, (size_t)i)), &imgs[i]);
    hd_layout lay = {0};
    const char *ls = json_string_value(json_object_get(c, "layout"));
    int have_layout = 0;
    hd_error e = {0};
    if (rc == 0 && ls && ls[0]) {
        int lr = hd_layout_parse(ls, strlen(ls), "cases.json layout", &lay, &e);
        if (lr == 0) have_layout = 1;
        else if (lr != HD_EFORMAT) rc = -1;
    }
    int keep = json_is_true(json_object_get(c, "keep_original_aspect"));
    if (rc == 0) {
        rc = hd_refs_prepare(imgs, k, (int)json_integer_value(json_object_get(c, "W")),
                             (int)json_integer_value(json_object_get(c, "H")), keep,
                             have_layout ? &lay : NULL, NULL, r, &e);
        if (rc < 0) fprintf(stderr, "hd_refs_prepare: %s\n", e.msg);
    }
    hd_layout_free(&lay);
    for (int i = 0; i < k; i++) hd_image_free(&imgs[i]);
    free(imgs);
    return rc;
}

static int float_rows_equal(const float *got, const float *want, int64_t n) {
    return memcmp(got, want, (size_t)n * sizeof(float)) == 0;
}

static void test_golden_reference_inputs_are_reproduced(void) {
    char path[1024];
    hd_safetensors pipe = {0}, gold = {0};
    hd_error e = {0};
    json_t *cases = json_load_file(hd_test_shared(path, sizeof path,
                                                  "golden/model-tiny/cases.json"), 0, NULL);
    CHECKF(cases != NULL, "cannot read %s", path);
    CHECKF(hd_st_open(&pipe, hd_test_shared(path, sizeof path,
                                             "golden/model-tiny/pipeline.safetensors"), &e) == 0,
           "%s", e.msg);
    CHECKF(hd_st_open(&gold, hd_test_shared(path, sizeof path,
                                             "golden/model-tiny/golden.safetensors"), &e) == 0,
           "%s", e.msg);
    if (!cases || !pipe.n_tensors || !gold.n_tensors) goto out;
    json_t *pcases = json_object_get(cases, "pipeline");
    const char *name;
    json_t *c;
    int checked_grid = 0, checked_pv = 0, checked_len = 0;
    json_object_foreach(pcases, name, c) {
        hd_refs r;
        int k;
        int rc = prepare_case(&pipe, c, &r, &k);
        if (rc == 1) continue; /* text-to-image */
        CHECKF(rc == 0, "case %s: preparation failed", name);
        if (rc != 0) continue;
        char tn[256];
        int64_t d[4], n;
        int nd;
        snprintf(tn, sizeof tn, "%s.sample0.image_grid_thw", name);
        const int64_t *grid = st_get(&pipe, tn, HD_I64, d, &nd, &n);
        if (grid) {
            CHECKF(d[0] == r.vlm.n_images && memcmp(grid, r.vlm.grid_thw, (size_t)n * 8) == 0,
                   "case %s: image_grid_thw differs", name);
            checked_grid++;
        }
        snprintf(tn, sizeof tn, "%s.sample0.pixel_values", name);
        const float *pv = st_get(&pipe, tn, HD_F32, d, &nd, &n);
        if (pv) {
            CHECKF(d[0] == r.vlm.n_rows && d[1] == r.vlm.row_dim &&
                   float_rows_equal(r.vlm.pixel_values, pv, n),
                   "case %s: pixel_values differ", name);
            checked_pv++;
        }
        /* reference patch count = sequence length - text - target patches */
        int64_t di[4], dp[4], ni, np;
        int ndi, ndp;
        snprintf(tn, sizeof tn, "%s.sample0.input_ids", name);
        const void *ids = st_get(&pipe, tn, HD_I64, di, &ndi, &ni);
        snprintf(tn, sizeof tn, "%s.sample0.position_ids", name);
        const void *pos = st_get(&pipe, tn, HD_I64, dp, &ndp, &np);
        if (ids && pos) {
            int64_t L = (int64_t)(r.target_w / 32) * (r.target_h / 32);
            CHECKF(dp[ndp - 1] - di[ndi - 1] - L == r.n_patch_rows,
                   "case %s: %lld reference patches, the golden sequence has %lld", name,
                   (long long)r.n_patch_rows, (long long)(dp[ndp - 1] - di[ndi - 1] - L));
            checked_len++;
        }
        hd_refs_free(&r);
    }
    CHECKF(checked_grid > 0 && checked_len > 0, "no golden case with references was checked");

    /* forward cases taken from a pipeline case: pixel_values, grid and the reference rows of
     * vinputs */
    json_t *fcases = json_object_get(cases, "forward");
    int checked_fwd = 0;
    json_object_foreach(fcases, name, c) {
        const char *from = json_string_value(json_object_get(c, "from"));
        const char *sp = from ? strrchr(from, ' ') : NULL;
        json_t *pc = sp ? json_object_get(pcases, sp + 1) : NULL;
        char tn[256];
        int64_t d[4], n;
        int nd;
        snprintf(tn, sizeof tn, "forward.%s.pixel_values", name);
        const float *pv = st_get(&gold, tn, HD_F32, d, &nd, &n);
        if (!pc || !pv) continue;
        hd_refs r;
        int k;
        if (prepare_case(&pipe, pc, &r, &k) != 0) {
            CHECKF(0, "forward case %s: preparation failed", name);
            continue;
        }
        CHECKF(d[0] == r.vlm.n_rows && float_rows_equal(r.vlm.pixel_values, pv, n),
               "forward case %s: pixel_values differ", name);
        snprintf(tn, sizeof tn, "forward.%s.image_grid_thw", name);
        const int64_t *grid = st_get(&gold, tn, HD_I64, d, &nd, &n);
        CHECK(grid && memcmp(grid, r.vlm.grid_thw, (size_t)n * 8) == 0);
        snprintf(tn, sizeof tn, "forward.%s.vinputs", name);
        const double *vin = st_get(&gold, tn, HD_F64, d, &nd, &n);
        if (vin && nd == 3 && d[1] >= r.n_patch_rows && d[2] == HD_PATCH_DIM) {
            const double *ref_rows = vin + (size_t)(d[1] - r.n_patch_rows) * HD_PATCH_DIM;
            int64_t bad = 0;
            for (int64_t i = 0; i < r.n_patch_rows * HD_PATCH_DIM; i++) {
                double want; /* the tensor may sit at any offset in the file */
                memcpy(&want, ref_rows + i, sizeof want);
                if ((double)r.patches[i] != want) bad++;
            }
            CHECKF(bad == 0, "forward case %s: %lld reference patch values differ", name,
                   (long long)bad);
        }
        checked_fwd++;
        hd_refs_free(&r);
    }
    CHECKF(checked_fwd > 0, "no golden forward case with pixel_values was checked");
    printf("golden: %d grids, %d pixel_values, %d sequence lengths, %d forward cases\n",
           checked_grid, checked_pv, checked_len, checked_fwd);
out:
    json_decref(cases);
    hd_st_close(&pipe);
    hd_st_close(&gold);
}

int main(void) {
    hd_test_tmpdir(tmpdir, sizeof tmpdir);
    RUN_TEST(test_png_roundtrip_keeps_pixels_and_text_chunks);
    RUN_TEST(test_jpeg_and_webp_roundtrips);
    RUN_TEST(test_save_is_atomic_and_reports_bad_targets);
    RUN_TEST(test_truncated_files_are_rejected);
    RUN_TEST(test_corrupted_files_never_crash);
    RUN_TEST(test_zero_sized_and_huge_pictures_are_refused);
    RUN_TEST(test_unknown_formats_are_rejected_with_the_file_name);
    RUN_TEST(test_png_colour_types_convert_like_pillow);
    RUN_TEST(test_resize_matches_pillow_vectors);
    RUN_TEST(test_crop_fills_outside_with_black);
    RUN_TEST(test_size_tables_follow_the_spec);
    RUN_TEST(test_resize_pilimage_plan_matches_spec_examples);
    RUN_TEST(test_calculate_dimensions_matches_spec_examples);
    RUN_TEST(test_reference_patches_are_float32_exact);
    RUN_TEST(test_patchify_layout_and_roundtrip);
    RUN_TEST(test_keep_aspect_takes_the_target_from_the_reference);
    RUN_TEST(test_layout_adds_a_drawn_image_and_coloured_borders);
    RUN_TEST(test_smart_resize_matches_spec_examples);
    RUN_TEST(test_processor_orders_patches_and_normalises);
    RUN_TEST(test_layout_accepts_every_input_shape);
    RUN_TEST(test_layout_syntax_errors_are_reported_as_skippable);
    RUN_TEST(test_layout_rejects_malformed_boxes);
    RUN_TEST(test_layout_boxes_are_scaled_sorted_rounded_and_clamped);
    RUN_TEST(test_layout_drawing_widths_colours_and_top_five);
    RUN_TEST(test_golden_reference_inputs_are_reproduced);
    nftw(tmpdir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    return hd_test_finish();
}
