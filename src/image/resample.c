/* Pillow's two-pass fixed-point resampler (src/libImaging/Resample.c), rewritten.
 *
 * Bit-exactness depends on doing the double-precision coefficient arithmetic in the same order
 * with the same roundings as Pillow; the expressions below are kept in Pillow's evaluation order
 * and never fused into FMAs (clang contracts a*b+c by default, hence the pragma; GCC does not
 * contract in ISO C mode and has no FMA in the x86-64 baseline). */
#include "image/resample.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"

#if defined(__clang__)
#pragma clang fp contract(off)
#endif

/* 8 bits of result, 2 bits of headroom for filters with negative lobes (Pillow's choice) */
#define PRECISION_BITS (32 - 8 - 2)

static double filter_box(double x) { return (x > -0.5 && x <= 0.5) ? 1.0 : 0.0; }

static double filter_bilinear(double x) {
    if (x < 0.0) x = -x;
    return x < 1.0 ? 1.0 - x : 0.0;
}

static double filter_bicubic(double x) {
    const double a = -0.5;
    if (x < 0.0) x = -x;
    if (x < 1.0) {
        double p = (a + 2.0) * x;
        p = p - (a + 3.0);
        p = p * x;
        p = p * x;
        return p + 1;
    }
    if (x < 2.0) {
        double p = (x - 5) * x;
        p = p + 8;
        p = p * x;
        p = p - 4;
        return p * a;
    }
    return 0.0;
}

static double sinc(double x) {
    if (x == 0.0) return 1.0;
    x = x * M_PI;
    return sin(x) / x;
}

static double filter_lanczos(double x) {
    if (-3.0 <= x && x < 3.0) return sinc(x) * sinc(x / 3);
    return 0.0;
}

typedef struct filter_def {
    double (*fn)(double);
    double support;
    const char *name;
} filter_def;

static const filter_def FILTERS[HD_FILTER_COUNT] = {
    [HD_FILTER_BOX] = {filter_box, 0.5, "box"},
    [HD_FILTER_BILINEAR] = {filter_bilinear, 1.0, "bilinear"},
    [HD_FILTER_BICUBIC] = {filter_bicubic, 2.0, "bicubic"},
    [HD_FILTER_LANCZOS] = {filter_lanczos, 3.0, "lanczos"},
};

int hd_filter_parse(const char *name) {
    for (int i = 0; i < HD_FILTER_COUNT; i++)
        if (strcmp(name, FILTERS[i].name) == 0) return i;
    return -1;
}

const char *hd_filter_name(hd_filter f) {
    return (f >= 0 && f < HD_FILTER_COUNT) ? FILTERS[f].name : "?";
}

/* Per output pixel along one axis: the first input index, the number of taps, and ksize
 * fixed-point coefficients (unused taps are zero). */
typedef struct axis_coeffs {
    int ksize;
    int *bounds; /* [out][2]: xmin, count */
    int32_t *k;  /* [out][ksize] */
} axis_coeffs;

static void axis_free(axis_coeffs *c) {
    free(c->bounds);
    free(c->k);
    c->bounds = NULL;
    c->k = NULL;
}

static int32_t quantise(double v) {
    /* Pillow rounds half away from zero by adding +-0.5 and truncating */
    double s = v * (1 << PRECISION_BITS);
    return (int32_t)(v < 0 ? -0.5 + s : 0.5 + s);
}

/* Pillow's precompute_coeffs + normalize_coeffs_8bpc for the whole input range [0, in_size). */
static int axis_prepare(axis_coeffs *c, int in_size, int out_size, const filter_def *f,
                        hd_error *e) {
    c->bounds = NULL;
    c->k = NULL;
    /* Pillow takes the input extent from a float box */
    double scale = (double)(float)in_size / out_size, filterscale = scale;
    if (filterscale < 1.0) filterscale = 1.0;
    double support = f->support * filterscale;
    c->ksize = (int)ceil(support) * 2 + 1;
    double *w = malloc((size_t)c->ksize * sizeof *w);
    c->bounds = malloc((size_t)out_size * 2 * sizeof *c->bounds);
    c->k = malloc((size_t)out_size * (size_t)c->ksize * sizeof *c->k);
    if (!w || !c->bounds || !c->k) {
        free(w);
        axis_free(c);
        return hd_fail(e, HD_ENOMEM, "image resize: out of memory for %d x %d coefficients",
                       out_size, c->ksize);
    }
    double ss = 1.0 / filterscale;
    for (int xx = 0; xx < out_size; xx++) {
        double t = (xx + 0.5) * scale;
        double center = 0.0 + t; /* Pillow: in0 + (xx + 0.5) * scale, in0 = 0 */
        int xmin = (int)(center - support + 0.5);
        if (xmin < 0) xmin = 0;
        int xmax = (int)(center + support + 0.5);
        if (xmax > in_size) xmax = in_size;
        xmax -= xmin;
        if (xmax > c->ksize) xmax = c->ksize; /* cannot happen; keeps the writes in bounds */
        double ww = 0.0;
        for (int x = 0; x < xmax; x++) {
            double arg = (x + xmin) - center;
            arg = arg + 0.5;
            double v = f->fn(arg * ss);
            w[x] = v;
            ww += v;
        }
        int32_t *k = c->k + (size_t)xx * c->ksize;
        int x = 0;
        for (; x < xmax; x++) k[x] = quantise(ww != 0.0 ? w[x] / ww : w[x]);
        for (; x < c->ksize; x++) k[x] = 0;
        c->bounds[xx * 2 + 0] = xmin;
        c->bounds[xx * 2 + 1] = xmax;
    }
    free(w);
    return 0;
}

static inline uint8_t clip8(int64_t v) {
    if (v < 0) return 0;
    v >>= PRECISION_BITS;
    return v > 255 ? 255 : (uint8_t)v;
}

/* out (out_w x rows) from in rows [row0, row0 + rows), convolving along x. */
static void pass_horizontal(const hd_image *in, int row0, hd_image *out, const axis_coeffs *c) {
    for (int yy = 0; yy < out->h; yy++) {
        const uint8_t *src = hd_image_at(in, 0, row0 + yy);
        uint8_t *dst = hd_image_at(out, 0, yy);
        for (int xx = 0; xx < out->w; xx++) {
            int xmin = c->bounds[xx * 2], n = c->bounds[xx * 2 + 1];
            const int32_t *k = c->k + (size_t)xx * c->ksize;
            int64_t s0 = 1 << (PRECISION_BITS - 1), s1 = s0, s2 = s0;
            const uint8_t *p = src + (size_t)xmin * 3;
            for (int x = 0; x < n; x++, p += 3) {
                s0 += (int64_t)p[0] * k[x];
                s1 += (int64_t)p[1] * k[x];
                s2 += (int64_t)p[2] * k[x];
            }
            dst[xx * 3 + 0] = clip8(s0);
            dst[xx * 3 + 1] = clip8(s1);
            dst[xx * 3 + 2] = clip8(s2);
        }
    }
}

/* out (in_w x out_h) convolving along y; bounds are relative to in's first row. */
static void pass_vertical(const hd_image *in, hd_image *out, const axis_coeffs *c) {
    size_t stride = (size_t)in->w * 3;
    for (int yy = 0; yy < out->h; yy++) {
        int ymin = c->bounds[yy * 2], n = c->bounds[yy * 2 + 1];
        const int32_t *k = c->k + (size_t)yy * c->ksize;
        uint8_t *dst = hd_image_at(out, 0, yy);
        for (size_t i = 0; i < stride; i++) {
            int64_t s = 1 << (PRECISION_BITS - 1);
            const uint8_t *p = in->px + (size_t)ymin * stride + i;
            for (int y = 0; y < n; y++, p += stride) s += (int64_t)*p * k[y];
            dst[i] = clip8(s);
        }
    }
}

int hd_image_resize(const hd_image *src, int w, int h, hd_filter f, hd_image *dst,
                    hd_error *e) {
    dst->w = dst->h = 0;
    dst->px = NULL;
    if (f < 0 || f >= HD_FILTER_COUNT)
        return hd_fail(e, HD_EINVAL, "image resize: unknown filter %d", (int)f);
    if (!src->px || src->w < 1 || src->h < 1)
        return hd_fail(e, HD_EINVAL, "image resize: empty source image");
    if (w < 1 || h < 1)
        return hd_fail(e, HD_EINVAL, "image resize: target size %dx%d: both sides must be >= 1",
                       w, h);
    if ((int64_t)w * h > HD_IMAGE_MAX_PIXELS)
        return hd_fail(e, HD_ENOMEM, "image resize: target size %dx%d exceeds %lld pixels", w, h,
                       (long long)HD_IMAGE_MAX_PIXELS);
    if (w == src->w && h == src->h) return hd_image_copy(dst, src, e);

    const filter_def *fd = &FILTERS[f];
    int need_h = w != src->w, need_v = h != src->h;
    axis_coeffs cv = {0}, ch = {0};
    hd_image tmp = {0};
    int rc = axis_prepare(&cv, src->h, h, fd, e);
    if (rc < 0) return rc;
    /* Only the input rows some output row reads are resampled horizontally (Pillow does the
     * same; it changes no value). */
    int first = cv.bounds[0];
    int last = cv.bounds[(h - 1) * 2] + cv.bounds[(h - 1) * 2 + 1];
    const hd_image *vin = src;
    if (need_h) {
        rc = axis_prepare(&ch, src->w, w, fd, e);
        if (rc < 0) goto done;
        if (need_v) {
            for (int i = 0; i < h; i++) cv.bounds[i * 2] -= first;
        } else {
            first = 0;
            last = src->h;
        }
        rc = hd_image_alloc(&tmp, w, last - first, e);
        if (rc < 0) goto done;
        pass_horizontal(src, first, &tmp, &ch);
        vin = &tmp;
    }
    if (need_v) {
        rc = hd_image_alloc(dst, w, h, e);
        if (rc < 0) goto done;
        pass_vertical(vin, dst, &cv);
    } else {
        *dst = tmp; /* ownership moves to the caller */
        tmp.px = NULL;
    }
done:
    hd_image_free(&tmp);
    axis_free(&cv);
    axis_free(&ch);
    return rc;
}
