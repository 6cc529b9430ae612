/* CUDA backend: every op against the CPU backend (the reference for the ops' semantics) on the
 * same random data, with odd shapes, strided views as inputs and outputs, BF16/F16/F32 weights,
 * every attention mask pattern, several GQA ratios and the aliasing the interface allows.
 * Each output is compared inside its view at 1e-4 relative (float32 path) and must be bitwise
 * untouched outside it.
 *
 * Without a CUDA device the test prints "SKIP: no CUDA device" and passes. Setting
 * HIDREAM_TEST_DEVICE=cpu runs the same comparisons against a second CPU backend (scalar
 * kernels, 3 threads) instead, which checks the test itself where there is no GPU. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "testutil.h"

#ifndef HIDREAM_HAVE_CUDA

int main(void) {
    printf("CUDA is not built (configure with -DHIDREAM_CUDA=ON where nvcc is available): "
           "nothing to test\n");
    return 0;
}

#else

/* ---- helpers ---- */

static uint64_t rng_state = 0x2545F4914F6CDD1Dull;
static double urand(void) { /* [0, 1) */
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (double)(rng_state >> 11) * (1.0 / 9007199254740992.0);
}
static float frand(float lo, float hi) { return lo + (hi - lo) * (float)urand(); }

typedef struct ctx {
    hd_backend *ref; /* CPU backend */
    hd_backend *dev; /* backend under test */
    int is_cuda;     /* dev is the CUDA backend (not the HIDREAM_TEST_DEVICE=cpu self-check) */
} ctx;

/* The same float32 matrix on both backends: a view (rows × cols) into a parent that is larger
 * when strided, so the view has stride > cols and does not start at the parent's origin. */
typedef struct mat {
    hd_tensor ref_parent, dev_parent;
    hd_tensor ref, dev;
    int64_t prows, pcols, r0, c0;
    float *host; /* the parent's initial contents */
} mat;

static void mat_make(ctx *c, mat *m, int64_t rows, int64_t cols, int strided, float lo,
                     float hi) {
    hd_error e = {0};
    memset(m, 0, sizeof *m);
    m->prows = rows + (strided ? 3 : 0);
    m->pcols = cols + (strided ? 5 : 0);
    m->r0 = strided ? 1 : 0;
    m->c0 = strided ? 3 : 0;
    int64_t n = m->prows * m->pcols;
    m->host = malloc((size_t)(n > 0 ? n : 1) * sizeof(float));
    if (!m->host) abort();
    for (int64_t i = 0; i < n; i++) m->host[i] = frand(lo, hi);
    if (c->ref->ops->alloc(c->ref, &m->ref_parent, HD_F32, m->prows, m->pcols, &e) != 0 ||
        c->dev->ops->alloc(c->dev, &m->dev_parent, HD_F32, m->prows, m->pcols, &e) != 0) {
        fprintf(stderr, "alloc %lld x %lld: %s\n", (long long)m->prows, (long long)m->pcols,
                e.msg);
        abort();
    }
    c->ref->ops->write(c->ref, &m->ref_parent, m->host);
    c->dev->ops->write(c->dev, &m->dev_parent, m->host);
    m->ref = hd_view_cols(&m->ref_parent, m->c0, cols);
    m->ref = hd_view_rows(&m->ref, m->r0, rows);
    m->dev = hd_view_cols(&m->dev_parent, m->c0, cols);
    m->dev = hd_view_rows(&m->dev, m->r0, rows);
}

static void mat_free(ctx *c, mat *m) {
    hd_tensor_free(c->ref, &m->ref_parent);
    hd_tensor_free(c->dev, &m->dev_parent);
    free(m->host);
    m->host = NULL;
}

/* The view's value (r, cc) as the test wrote it (before any op). */
static float mat_init(const mat *m, int64_t r, int64_t cc) {
    return m->host[(m->r0 + r) * m->pcols + m->c0 + cc];
}

static float *read_parent(hd_backend *be, const hd_tensor *parent, int64_t n) {
    float *p = malloc((size_t)(n > 0 ? n : 1) * sizeof(float));
    if (!p) abort();
    be->ops->read(be, parent, p);
    return p;
}

/* Compares the two results: inside the view |dev - ref| <= atol + rtol·|ref| (atol_rms != 0
 * adds rtol·rms(ref over the view) to atol, for sums whose terms cancel), NaN only where the
 * reference has NaN; outside the view the parents must still be bitwise equal. */
static int mat_check(ctx *c, const mat *m, double rtol, double atol, int atol_rms,
                     const char *what) {
    int64_t n = m->prows * m->pcols, rows = m->ref.rows, cols = m->ref.cols;
    float *r = read_parent(c->ref, &m->ref_parent, n), *d = read_parent(c->dev, &m->dev_parent, n);
    if (atol_rms && rows * cols > 0) {
        double ss = 0;
        for (int64_t i = 0; i < rows; i++)
            for (int64_t j = 0; j < cols; j++) {
                double v = r[(m->r0 + i) * m->pcols + m->c0 + j];
                ss += v * v;
            }
        atol += rtol * sqrt(ss / (double)(rows * cols));
    }
    double worst = 0;
    int64_t wi = -1, outside_bad = -1;
    for (int64_t i = 0; i < m->prows; i++)
        for (int64_t j = 0; j < m->pcols; j++) {
            int64_t k = i * m->pcols + j;
            int inside = i >= m->r0 && i < m->r0 + rows && j >= m->c0 && j < m->c0 + cols;
            if (!inside) {
                if (memcmp(&r[k], &d[k], sizeof(float)) != 0 && outside_bad < 0) outside_bad = k;
                continue;
            }
            double q = fabs((double)d[k] - (double)r[k]) / (atol + rtol * fabs((double)r[k]));
            if (isnan(r[k]) && isnan(d[k])) q = 0;
            else if (isnan(r[k]) || isnan(d[k]) || isnan(q)) q = INFINITY;
            if (wi < 0 || q > worst) {
                worst = q;
                wi = k;
            }
        }
    int ok = worst <= 1.0 && outside_bad < 0;
    CHECKF(worst <= 1.0, "%s: worst error %.3g of the tolerance at parent (%lld, %lld): device "
           "%.9g, cpu %.9g", what, worst, wi < 0 ? -1LL : (long long)(wi / m->pcols),
           wi < 0 ? -1LL : (long long)(wi % m->pcols), wi < 0 ? 0.0 : (double)d[wi],
           wi < 0 ? 0.0 : (double)r[wi]);
    CHECKF(outside_bad < 0, "%s: element (%lld, %lld) outside the view changed: device %.9g, "
           "cpu %.9g", what, (long long)(outside_bad / (m->pcols ? m->pcols : 1)),
           (long long)(outside_bad % (m->pcols ? m->pcols : 1)),
           outside_bad < 0 ? 0.0 : (double)d[outside_bad],
           outside_bad < 0 ? 0.0 : (double)r[outside_bad]);
    free(r);
    free(d);
    return ok;
}

#define EXACT 0.0, 1e-300, 0      /* bitwise (up to the sign of zero) */
#define F32_SUM 1e-4, 1e-30, 1    /* 1e-4 relative to max(|ref|, rms of the view) */
#define F32_ELT 1e-4, 1e-30, 0    /* 1e-4 relative to |ref| */

/* The same weight on both backends (the CPU wraps the host copy, so it lives until freed). */
typedef struct wpair {
    void *host;
    float *val; /* the value of each element */
    hd_tensor ref, dev;
} wpair;

static void w_make(ctx *c, wpair *w, hd_dtype dt, int64_t rows, int64_t cols, float lo,
                   float hi) {
    hd_error e = {0};
    int64_t n = rows * cols;
    memset(w, 0, sizeof *w);
    w->host = malloc((size_t)(n > 0 ? n : 1) * 4);
    w->val = malloc((size_t)(n > 0 ? n : 1) * sizeof(float));
    if (!w->host || !w->val) abort();
    for (int64_t i = 0; i < n; i++) {
        float f = frand(lo, hi);
        if (dt == HD_BF16) {
            ((uint16_t *)w->host)[i] = hd_f32_to_bf16(f);
            w->val[i] = hd_bf16_to_f32(((uint16_t *)w->host)[i]);
        } else if (dt == HD_F16) {
            ((uint16_t *)w->host)[i] = hd_f32_to_f16(f);
            w->val[i] = hd_f16_to_f32(((uint16_t *)w->host)[i]);
        } else {
            ((float *)w->host)[i] = f;
            w->val[i] = f;
        }
    }
    CHECKF(c->ref->ops->weight(c->ref, &w->ref, dt, rows, cols, w->host, &e) == 0, "%s", e.msg);
    CHECKF(c->dev->ops->weight(c->dev, &w->dev, dt, rows, cols, w->host, &e) == 0, "%s", e.msg);
}

static void w_free(ctx *c, wpair *w) {
    hd_tensor_free(c->ref, &w->ref);
    hd_tensor_free(c->dev, &w->dev);
    free(w->host);
    free(w->val);
}

static const hd_dtype all_dts[3] = {HD_BF16, HD_F16, HD_F32};

/* ---- memory ---- */

static void test_write_read_and_copy_respect_views(ctx *c) {
    /* write/read round trip through a strided view: exact, parent outside untouched */
    mat a;
    mat_make(c, &a, 9, 13, 1, -1, 1);
    float *src = malloc(9 * 13 * sizeof(float)), *got = malloc(9 * 13 * sizeof(float));
    for (int i = 0; i < 9 * 13; i++) src[i] = frand(-5, 5);
    c->ref->ops->write(c->ref, &a.ref, src);
    c->dev->ops->write(c->dev, &a.dev, src);
    c->dev->ops->read(c->dev, &a.dev, got);
    CHECK(memcmp(src, got, 9 * 13 * sizeof(float)) == 0);
    mat_check(c, &a, EXACT, "write/read strided view");

    /* copy between strided views, and onto itself (a no-op) */
    mat b;
    mat_make(c, &b, 9, 13, 1, -1, 1);
    c->ref->ops->copy(c->ref, &b.ref, &a.ref);
    c->dev->ops->copy(c->dev, &b.dev, &a.dev);
    mat_check(c, &b, EXACT, "copy strided -> strided");
    c->ref->ops->copy(c->ref, &b.ref, &b.ref);
    c->dev->ops->copy(c->dev, &b.dev, &b.dev);
    mat_check(c, &b, EXACT, "copy onto itself");

    /* every g-th row of a dense matrix (stride = g·cols), as the ViT's row grouping does */
    mat d, g;
    mat_make(c, &d, 12, 6, 0, -1, 1);
    mat_make(c, &g, 4, 18, 1, -1, 1);
    for (int q = 0; q < 3; q++) {
        hd_tensor sr = hd_view_rows(&d.ref, q, 1), sd = hd_view_rows(&d.dev, q, 1);
        sr.rows = sd.rows = 4;
        sr.stride = sd.stride = 3 * 6;
        hd_tensor dr = hd_view_cols(&g.ref, q * 6, 6), dd = hd_view_cols(&g.dev, q * 6, 6);
        c->ref->ops->copy(c->ref, &dr, &sr);
        c->dev->ops->copy(c->dev, &dd, &sd);
    }
    mat_check(c, &g, EXACT, "copy of row-strided source");

    /* fill a view */
    c->ref->ops->fill(c->ref, &b.ref, -2.5f);
    c->dev->ops->fill(c->dev, &b.dev, -2.5f);
    mat_check(c, &b, EXACT, "fill strided view");
    free(src);
    free(got);
    mat_free(c, &a);
    mat_free(c, &b);
    mat_free(c, &d);
    mat_free(c, &g);
}

static void test_copy_widens_weights_of_every_dtype(ctx *c) {
    for (int di = 0; di < 3; di++) {
        wpair w;
        mat y;
        w_make(c, &w, all_dts[di], 7, 45, -3, 3);
        mat_make(c, &y, 7, 45, di != 1, -1, 1);
        c->ref->ops->copy(c->ref, &y.ref, &w.ref);
        c->dev->ops->copy(c->dev, &y.dev, &w.dev);
        char what[64];
        snprintf(what, sizeof what, "copy from %s weight", hd_dtype_name(all_dts[di]));
        mat_check(c, &y, EXACT, what);
        w_free(c, &w);
        mat_free(c, &y);
    }
}

/* The device copy is independent of the host bytes after upload (unlike the CPU, which wraps
 * them): a device backend must upload, not keep a pointer to host memory. */
static void test_weight_upload_copies_host_data(ctx *c) {
    if (!c->is_cuda) return;
    hd_error e = {0};
    float host[6] = {1, 2, 3, 4, 5, 6}, got[6];
    hd_tensor w, y;
    CHECK(c->dev->ops->weight(c->dev, &w, HD_F32, 2, 3, host, &e) == 0);
    CHECK(c->dev->ops->alloc(c->dev, &y, HD_F32, 2, 3, &e) == 0);
    for (int i = 0; i < 6; i++) host[i] = -1;
    c->dev->ops->copy(c->dev, &y, &w);
    c->dev->ops->read(c->dev, &y, got);
    for (int i = 0; i < 6; i++) CHECK(got[i] == (float)(i + 1));
    hd_tensor_free(c->dev, &w);
    hd_tensor_free(c->dev, &y);
}

/* ---- linear ---- */

static void check_linear(ctx *c, int64_t M, int64_t N, int64_t K, hd_dtype dt, int bias,
                         int strided) {
    mat x, y;
    wpair w, b;
    mat_make(c, &x, M, K, strided, -1, 1);
    mat_make(c, &y, M, N, !strided, -1, 1);
    w_make(c, &w, dt, N, K, -1, 1);
    w_make(c, &b, dt, 1, N, -1, 1);
    c->ref->ops->linear(c->ref, &y.ref, &x.ref, &w.ref, bias ? &b.ref : NULL);
    c->dev->ops->linear(c->dev, &y.dev, &x.dev, &w.dev, bias ? &b.dev : NULL);
    char what[128];
    snprintf(what, sizeof what, "linear M=%lld N=%lld K=%lld %s bias=%d strided=%d",
             (long long)M, (long long)N, (long long)K, hd_dtype_name(dt), bias, strided);
    mat_check(c, &y, F32_SUM, what);
    mat_free(c, &x);
    mat_free(c, &y);
    w_free(c, &w);
    w_free(c, &b);
}

static void test_linear_matches_cpu(ctx *c) {
    static const struct { int64_t M, N, K; } shapes[] = {
        {1, 37, 64}, {1, 300, 3072}, {5, 33, 3}, {17, 100, 300}, {29, 65, 1}, {130, 530, 520},
        {64, 1030, 40}, {3, 7, 0}, {257, 96, 1152},
    };
    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++)
        for (int di = 0; di < 3; di++)
            check_linear(c, shapes[si].M, shapes[si].N, shapes[si].K, all_dts[di],
                         (int)(si + (size_t)di) % 2, (int)(si / 2 + (size_t)di) % 2);
}

/* gemm_bf16 on the device: a BF16 weight stays BF16 and the product equals the float32-
 * accumulated product of bf16-rounded operands; F16/F32 weights keep the float32 path. */
static void test_linear_bf16_option_rounds_operands(ctx *c) {
    if (!c->is_cuda) return;
    hd_error e = {0};
    hd_backend_options o = {0};
    o.gemm_bf16 = 1;
    ctx f = *c;
    CHECKF(hd_backend_create(&f.dev, "cuda", &o, &e) == 0, "%s", e.msg);
    if (!f.dev) return;
    static const struct { int64_t M, N, K; } shapes[] = {
        {1, 37, 64}, {5, 33, 3}, {17, 100, 301}, {130, 530, 520}, {29, 65, 1}, {3, 40, 3072}};
    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++)
        for (int di = 0; di < 3; di++) {
            int64_t M = shapes[si].M, N = shapes[si].N, K = shapes[si].K;
            int bias = (int)(si + (size_t)di) % 2, strided = (int)si % 2;
            mat x, y;
            wpair w, b;
            mat_make(&f, &x, M, K, strided, -1, 1);
            mat_make(&f, &y, M, N, !strided, -1, 1);
            w_make(&f, &w, all_dts[di], N, K, -1, 1);
            w_make(&f, &b, all_dts[di], 1, N, -1, 1);
            CHECK(w.dev.dtype == (all_dts[di] == HD_BF16 ? HD_BF16 : HD_F32));
            f.ref->ops->linear(f.ref, &y.ref, &x.ref, &w.ref, bias ? &b.ref : NULL);
            f.dev->ops->linear(f.dev, &y.dev, &x.dev, &w.dev, bias ? &b.dev : NULL);
            char what[128];
            snprintf(what, sizeof what, "linear (gemm_bf16) M=%lld N=%lld K=%lld %s bias=%d",
                     (long long)M, (long long)N, (long long)K, hd_dtype_name(all_dts[di]), bias);
            if (all_dts[di] != HD_BF16) {
                mat_check(&f, &y, F32_SUM, what);
            } else {
                float *got = malloc((size_t)(M * N) * sizeof(float));
                f.dev->ops->read(f.dev, &y.dev, got);
                double worst = 0;
                for (int64_t i = 0; i < M; i++)
                    for (int64_t j = 0; j < N; j++) {
                        double ref = bias ? b.val[j] : 0.0, mag = bias ? fabs(b.val[j]) : 0.0;
                        for (int64_t k = 0; k < K; k++) {
                            double p = (double)hd_round_bf16(mat_init(&x, i, k)) * w.val[j * K + k];
                            ref += p;
                            mag += fabs(p);
                        }
                        double q = fabs(got[i * N + j] - ref) / (3e-5 * mag + 1e-30);
                        if (!(q <= worst)) worst = isnan(q) ? INFINITY : q;
                    }
                CHECKF(worst <= 1.0, "%s: worst error %.3g of the tolerance", what, worst);
                free(got);
            }
            mat_free(&f, &x);
            mat_free(&f, &y);
            w_free(&f, &w);
            w_free(&f, &b);
        }
    CHECKF(hd_backend_status(f.dev, &e) == 0, "%s", e.msg);
    hd_backend_destroy(f.dev);
}

/* ---- attention ---- */

static void check_attention(ctx *c, int64_t Sq, int64_t Sk, int Hq, int Hkv, int hd,
                            hd_attn_mask mask, float qmag, int strided) {
    mat q, k, v, o;
    mat_make(c, &q, Sq, (int64_t)Hq * hd, strided, -qmag, qmag);
    mat_make(c, &k, Sk, (int64_t)Hkv * hd, !strided, -1, 1);
    mat_make(c, &v, Sk, (int64_t)Hkv * hd, strided, -1, 1);
    mat_make(c, &o, Sq, (int64_t)Hq * hd, !strided, -1, 1);
    float scale = 1.0f / sqrtf((float)hd);
    c->ref->ops->attention(c->ref, &o.ref, &q.ref, &k.ref, &v.ref, Hq, Hkv, hd, scale, mask);
    c->dev->ops->attention(c->dev, &o.dev, &q.dev, &k.dev, &v.dev, Hq, Hkv, hd, scale, mask);
    char what[160];
    snprintf(what, sizeof what, "attention Sq=%lld Sk=%lld Hq=%d Hkv=%d hd=%d q_offset=%lld "
             "n_causal=%lld", (long long)Sq, (long long)Sk, Hq, Hkv, hd, (long long)mask.q_offset,
             (long long)mask.n_causal);
    mat_check(c, &o, F32_SUM, what);
    mat_free(c, &q);
    mat_free(c, &k);
    mat_free(c, &v);
    mat_free(c, &o);
}

static void test_attention_matches_cpu_for_masks_gqa_and_head_dims(ctx *c) {
    hd_attn_mask full = {0, 0};
    check_attention(c, 1, 1, 1, 1, 8, full, 1, 0);                        /* smallest */
    check_attention(c, 7, 7, 4, 4, 16, (hd_attn_mask){0, 7}, 1, 1);       /* causal */
    check_attention(c, 65, 65, 4, 2, 64, (hd_attn_mask){0, 20}, 3, 0);    /* hybrid, GQA 2 */
    check_attention(c, 130, 130, 8, 2, 128, (hd_attn_mask){0, 77}, 3, 1); /* hybrid, GQA 4 */
    check_attention(c, 50, 120, 4, 1, 64, (hd_attn_mask){70, 100}, 2, 0); /* cached suffix */
    check_attention(c, 40, 190, 2, 1, 128, (hd_attn_mask){150, 150}, 1, 1); /* generation rows */
    check_attention(c, 100, 100, 16, 16, 72, full, 1, 0);                 /* ViT head dim */
    check_attention(c, 33, 33, 2, 2, 72, full, 4, 1);
    check_attention(c, 20, 20, 6, 3, 40, (hd_attn_mask){0, 20}, 1, 0);    /* odd head dim */
    check_attention(c, 9, 5, 2, 2, 2, (hd_attn_mask){0, 9}, 1, 1);        /* tiny head dim */
    check_attention(c, 10, 10, 2, 1, 256, (hd_attn_mask){0, 10}, 1, 0);   /* largest head dim */
    check_attention(c, 9, 12, 4, 2, 32, (hd_attn_mask){-3, 5}, 1, 1); /* rows that see nothing */
    check_attention(c, 5, 0, 2, 1, 16, full, 1, 0);                       /* no keys at all */
    check_attention(c, 70, 200, 32, 8, 128, (hd_attn_mask){0, 0}, 2, 1); /* Qwen3 GQA */
    check_attention(c, 300, 310, 2, 2, 16, (hd_attn_mask){0, 133}, 1, 0); /* many tiles */
    check_attention(c, 1, 67, 4, 2, 18, full, 1, 1);                      /* one query */
}

/* gemm_bf16 on the device also runs attention on the tensor cores (head dims 64 and 128):
 * q, k, v and the probabilities are rounded to bf16, scores, softmax and sums stay float32.
 * With inputs that are already bf16 values the only rounding left is that of the
 * probabilities (relative 2^-9 each, an error of about 1e-3 of the output's rms per element,
 * the largest of ~10^5 elements near 5e-3), so the result must match the float32 CPU
 * attention within 1.5e-2 of the output's rms (a wrong mask, scale or head mapping is off by
 * O(1)); other head dims keep the float32 kernel (1e-4). */
static void mat_round_to_bf16(ctx *c, mat *m) {
    for (int64_t i = 0; i < m->prows * m->pcols; i++) m->host[i] = hd_round_bf16(m->host[i]);
    c->ref->ops->write(c->ref, &m->ref_parent, m->host);
    c->dev->ops->write(c->dev, &m->dev_parent, m->host);
}

static void check_attention_bf16(ctx *c, int64_t Sq, int64_t Sk, int Hq, int Hkv, int hd,
                                 hd_attn_mask mask, int strided) {
    mat q, k, v, o;
    mat_make(c, &q, Sq, (int64_t)Hq * hd, strided, -2, 2);
    mat_make(c, &k, Sk, (int64_t)Hkv * hd, !strided, -2, 2);
    mat_make(c, &v, Sk, (int64_t)Hkv * hd, strided, -1, 1);
    mat_make(c, &o, Sq, (int64_t)Hq * hd, !strided, -1, 1);
    mat_round_to_bf16(c, &q);
    mat_round_to_bf16(c, &k);
    mat_round_to_bf16(c, &v);
    float scale = 1.0f / sqrtf((float)hd);
    c->ref->ops->attention(c->ref, &o.ref, &q.ref, &k.ref, &v.ref, Hq, Hkv, hd, scale, mask);
    c->dev->ops->attention(c->dev, &o.dev, &q.dev, &k.dev, &v.dev, Hq, Hkv, hd, scale, mask);
    char what[160];
    snprintf(what, sizeof what, "attention (gemm_bf16) Sq=%lld Sk=%lld Hq=%d Hkv=%d hd=%d "
             "q_offset=%lld n_causal=%lld", (long long)Sq, (long long)Sk, Hq, Hkv, hd,
             (long long)mask.q_offset, (long long)mask.n_causal);
    if (hd == 64 || hd == 128) mat_check(c, &o, 1.5e-2, 1e-30, 1, what);
    else mat_check(c, &o, F32_SUM, what);
    mat_free(c, &q);
    mat_free(c, &k);
    mat_free(c, &v);
    mat_free(c, &o);
}

static void test_attention_bf16_option_uses_tensor_cores_within_bf16_accuracy(ctx *c) {
    if (!c->is_cuda) return;
    hd_error e = {0};
    hd_backend_options opt = {0};
    opt.gemm_bf16 = 1;
    ctx f = *c;
    CHECKF(hd_backend_create(&f.dev, "cuda", &opt, &e) == 0, "%s", e.msg);
    if (!f.dev) return;
    hd_attn_mask full = {0, 0};
    check_attention_bf16(&f, 1, 1, 1, 1, 128, full, 0);                        /* smallest */
    check_attention_bf16(&f, 70, 200, 32, 8, 128, (hd_attn_mask){0, 0}, 1);    /* Qwen3 GQA */
    check_attention_bf16(&f, 300, 300, 8, 2, 128, (hd_attn_mask){0, 77}, 0);   /* hybrid */
    check_attention_bf16(&f, 130, 130, 4, 4, 64, (hd_attn_mask){0, 130}, 1);   /* causal */
    check_attention_bf16(&f, 50, 190, 4, 1, 128, (hd_attn_mask){140, 170}, 0); /* cached suffix */
    check_attention_bf16(&f, 9, 12, 4, 2, 64, (hd_attn_mask){-3, 5}, 1); /* rows see nothing */
    check_attention_bf16(&f, 5, 0, 2, 1, 128, full, 0);                        /* no keys */
    check_attention_bf16(&f, 333, 65, 2, 1, 64, full, 1);    /* partial tiles of rows, keys */
    check_attention_bf16(&f, 40, 40, 4, 2, 72, (hd_attn_mask){0, 10}, 0);  /* float32 kernel */
    CHECKF(hd_backend_status(f.dev, &e) == 0, "%s", e.msg);
    hd_backend_destroy(f.dev);
}

/* ---- norms ---- */

static void test_rmsnorm_matches_cpu_grouped_and_in_place(ctx *c) {
    static const struct { int64_t rows, cols, g; } cases[] = {
        {7, 4096, 4096}, {33, 512, 128}, {3, 90, 18}, {1, 1152, 1152}, {5, 576, 72},
        {4, 50, 16} /* 3 groups; the last 2 columns are not a group and stay untouched */};
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++)
        for (int di = 0; di < 3; di++)
            for (int inplace = 0; inplace < 2; inplace++) {
                int64_t R = cases[ci].rows, C = cases[ci].cols, g = cases[ci].g;
                mat x, y;
                wpair w;
                mat_make(c, &x, R, C, (int)(ci + (size_t)inplace) % 2, -3, 3);
                if (!inplace) mat_make(c, &y, R, C, (int)(ci + (size_t)inplace + 1) % 2, -1, 1);
                mat *out = inplace ? &x : &y;
                w_make(c, &w, all_dts[di], 1, g, 0.5f, 1.5f);
                c->ref->ops->rmsnorm(c->ref, &out->ref, &x.ref, &w.ref, 1e-6f);
                c->dev->ops->rmsnorm(c->dev, &out->dev, &x.dev, &w.dev, 1e-6f);
                char what[128];
                snprintf(what, sizeof what, "rmsnorm %lldx%lld g=%lld %s in_place=%d",
                         (long long)R, (long long)C, (long long)g, hd_dtype_name(all_dts[di]),
                         inplace);
                mat_check(c, out, F32_ELT, what);
                if (!inplace) mat_free(c, &y);
                mat_free(c, &x);
                w_free(c, &w);
            }
}

static void test_layernorm_matches_cpu_with_optional_weight_and_bias(ctx *c) {
    static const int64_t shapes[][2] = {{19, 1152}, {3, 4608}, {8, 64}, {2, 7}};
    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++)
        for (int variant = 0; variant < 4; variant++) { /* bit 0: weight, bit 1: bias */
            int64_t R = shapes[si][0], C = shapes[si][1];
            int inplace = (int)(si + (size_t)variant) % 2;
            hd_dtype dt = all_dts[(si + (size_t)variant) % 3];
            mat x, y;
            wpair w, b;
            mat_make(c, &x, R, C, 1, 2, 5); /* offset mean */
            if (!inplace) mat_make(c, &y, R, C, 0, -1, 1);
            mat *out = inplace ? &x : &y;
            w_make(c, &w, dt, 1, C, 0.5f, 1.5f);
            w_make(c, &b, dt, 1, C, -1, 1);
            const hd_tensor *wr = variant & 1 ? &w.ref : NULL, *wd = variant & 1 ? &w.dev : NULL;
            const hd_tensor *br = variant & 2 ? &b.ref : NULL, *bd = variant & 2 ? &b.dev : NULL;
            c->ref->ops->layernorm(c->ref, &out->ref, &x.ref, wr, br, 1e-6f);
            c->dev->ops->layernorm(c->dev, &out->dev, &x.dev, wd, bd, 1e-6f);
            char what[128];
            snprintf(what, sizeof what, "layernorm %lldx%lld %s weight=%d bias=%d in_place=%d",
                     (long long)R, (long long)C, hd_dtype_name(dt), variant & 1, variant >> 1,
                     inplace);
            /* with a bias, values near 0 come from cancellation: compare at the row scale */
            if (variant & 2) mat_check(c, out, F32_SUM, what);
            else mat_check(c, out, F32_ELT, what);
            if (!inplace) mat_free(c, &y);
            mat_free(c, &x);
            w_free(c, &w);
            w_free(c, &b);
        }
}

/* ---- rope ---- */

static void test_rope_matches_cpu_on_column_views(ctx *c) {
    static const struct { int hd, heads; int64_t rows; } cases[] = {
        {128, 3, 21}, {72, 16, 9}, {64, 4, 33}, {2, 5, 4}, {7, 2, 3}, {16, 1, 1}};
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
        int hd = cases[ci].hd, H = cases[ci].heads;
        int64_t S = cases[ci].rows;
        /* x is the middle third of a [S, 3·H·hd] matrix, like q/k/v inside the ViT's qkv */
        mat qkv, cs, sn;
        mat_make(c, &qkv, S, 3 * (int64_t)H * hd, (int)ci % 2, -2, 2);
        mat_make(c, &cs, S, hd, 1, -1, 1);
        mat_make(c, &sn, S, hd, (int)ci % 2, -1, 1);
        hd_tensor xr = hd_view_cols(&qkv.ref, (int64_t)H * hd, (int64_t)H * hd);
        hd_tensor xd = hd_view_cols(&qkv.dev, (int64_t)H * hd, (int64_t)H * hd);
        c->ref->ops->rope(c->ref, &xr, &cs.ref, &sn.ref, hd);
        c->dev->ops->rope(c->dev, &xd, &cs.dev, &sn.dev, hd);
        char what[64];
        snprintf(what, sizeof what, "rope hd=%d heads=%d rows=%lld", hd, H, (long long)S);
        mat_check(c, &qkv, F32_SUM, what);
        mat_free(c, &qkv);
        mat_free(c, &cs);
        mat_free(c, &sn);
    }
}

/* ---- element-wise ---- */

static void test_elementwise_ops_match_cpu_with_aliasing(ctx *c) {
    static const int64_t shapes[][2] = {{1, 1}, {3, 300}, {37, 1001}};
    static const char *names[] = {"add", "silu", "silu_mul", "gelu_tanh", "gelu_erf"};
    for (int op = 0; op < 5; op++)
        for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++)
            for (int alias = 0; alias < 3; alias++) { /* 0: y separate, 1: y = a, 2: y = b */
                if (alias == 2 && op != 0 && op != 2) continue;
                int64_t R = shapes[si][0], C = shapes[si][1];
                mat a, b, y;
                mat_make(c, &a, R, C, 1, -12, 12);
                mat_make(c, &b, R, C, (int)si % 2, -2, 2);
                if (alias == 0) mat_make(c, &y, R, C, (int)(si + 1) % 2, -1, 1);
                mat *out = alias == 0 ? &y : alias == 1 ? &a : &b;
                hd_backend *bes[2] = {c->ref, c->dev};
                for (int side = 0; side < 2; side++) {
                    hd_backend *be = bes[side];
                    hd_tensor *yt = side ? &out->dev : &out->ref;
                    const hd_tensor *at = side ? &a.dev : &a.ref, *bt = side ? &b.dev : &b.ref;
                    switch (op) {
                    case 0: be->ops->add(be, yt, at, bt); break;
                    case 1: be->ops->silu(be, yt, at); break;
                    case 2: be->ops->silu_mul(be, yt, at, bt); break;
                    case 3: be->ops->gelu_tanh(be, yt, at); break;
                    default: be->ops->gelu_erf(be, yt, at); break;
                    }
                }
                char what[96];
                snprintf(what, sizeof what, "%s %lldx%lld alias=%d", names[op], (long long)R,
                         (long long)C, alias);
                if (op == 0) mat_check(c, out, F32_SUM, what); /* a + b cancels near 0 */
                else mat_check(c, out, F32_ELT, what);
                if (alias == 0) mat_free(c, &y);
                mat_free(c, &a);
                mat_free(c, &b);
            }
}

/* ---- row movement ---- */

static void test_gather_rows_matches_cpu_including_bad_ids(ctx *c) {
    for (int di = 0; di < 3; di++)
        for (int big = 0; big < 2; big++) {
            int64_t V = 50, D = 70, n = big ? 300 : 7;
            wpair t;
            mat y;
            w_make(c, &t, all_dts[di], V, D, -2, 2);
            mat_make(c, &y, n, D, (di + big) % 2, -1, 1);
            int32_t *ids = malloc((size_t)n * sizeof *ids);
            for (int64_t i = 0; i < n; i++) ids[i] = (int32_t)(urand() * (double)V);
            ids[0] = (int32_t)V - 1;
            ids[n - 1] = -1;   /* out of range: zeros */
            if (n > 3) ids[2] = (int32_t)V;
            c->ref->ops->gather_rows(c->ref, &y.ref, &t.ref, ids, n);
            c->dev->ops->gather_rows(c->dev, &y.dev, &t.dev, ids, n);
            char what[64];
            snprintf(what, sizeof what, "gather_rows %s n=%lld", hd_dtype_name(all_dts[di]),
                     (long long)n);
            mat_check(c, &y, EXACT, what);
            free(ids);
            w_free(c, &t);
            mat_free(c, &y);
        }
}

static void test_set_and_add_rows_match_cpu_for_any_index_order(ctx *c) {
    static const int32_t increasing[] = {0, 3, 4, 9, 20, 39};
    static const int32_t unordered[] = {7, 2, 7, 39, 0, 2, 2, 15};
    static const int32_t bad[] = {-1, 5, 40, 6, 1000};
    const struct { const int32_t *idx; int64_t n; } lists[] = {
        {increasing, 6}, {unordered, 8}, {bad, 5}};
    for (int add = 0; add < 2; add++)
        for (size_t li = 0; li < 3; li++) {
            mat y, src;
            mat_make(c, &y, 40, 333, (int)li % 2, -1, 1);
            mat_make(c, &src, lists[li].n, 333, (int)(li + 1) % 2, -1, 1);
            if (add) {
                c->ref->ops->add_rows(c->ref, &y.ref, &src.ref, lists[li].idx, lists[li].n);
                c->dev->ops->add_rows(c->dev, &y.dev, &src.dev, lists[li].idx, lists[li].n);
            } else {
                c->ref->ops->set_rows(c->ref, &y.ref, &src.ref, lists[li].idx, lists[li].n);
                c->dev->ops->set_rows(c->dev, &y.dev, &src.dev, lists[li].idx, lists[li].n);
            }
            char what[64];
            snprintf(what, sizeof what, "%s list %zu", add ? "add_rows" : "set_rows", li);
            mat_check(c, &y, EXACT, what);
            mat_free(c, &y);
            mat_free(c, &src);
        }
    /* many increasing indices (the parallel path) */
    mat y, src;
    int64_t n = 1000;
    int32_t *idx = malloc((size_t)n * sizeof *idx);
    for (int64_t i = 0; i < n; i++) idx[i] = (int32_t)(2 * i + 1);
    mat_make(c, &y, 2 * n + 1, 17, 1, -1, 1);
    mat_make(c, &src, n, 17, 0, -1, 1);
    c->ref->ops->add_rows(c->ref, &y.ref, &src.ref, idx, n);
    c->dev->ops->add_rows(c->dev, &y.dev, &src.dev, idx, n);
    mat_check(c, &y, EXACT, "add_rows, 1000 increasing rows");
    free(idx);
    mat_free(c, &y);
    mat_free(c, &src);
}

/* ---- failures ---- */

/* A shape the device cannot run is recorded: status() names it, read() fills NaN, and later
 * ops do nothing. */
static void test_unsupported_head_dim_is_reported_by_status(ctx *c) {
    if (!c->is_cuda) return;
    hd_error e = {0};
    hd_backend *be = NULL;
    hd_backend_options o = {0};
    CHECKF(hd_backend_create(&be, "cuda", &o, &e) == 0, "%s", e.msg);
    if (!be) return;
    CHECK(hd_backend_status(be, &e) == 0);
    int hd = 264;
    hd_tensor q, out;
    CHECK(be->ops->alloc(be, &q, HD_F32, 4, hd, &e) == 0);
    CHECK(be->ops->alloc(be, &out, HD_F32, 4, hd, &e) == 0);
    be->ops->attention(be, &out, &q, &q, &q, 1, 1, hd, 0.1f, (hd_attn_mask){0, 0});
    memset(&e, 0, sizeof e);
    CHECK(hd_backend_status(be, &e) == HD_EUNSUPPORTED);
    CHECKF(strstr(e.msg, "head_dim") != NULL, "message: %s", e.msg);
    float got[4];
    hd_tensor one = hd_view_cols(&out, 0, 1);
    be->ops->fill(be, &one, 1.0f); /* ignored after the failure */
    be->ops->read(be, &one, got);
    for (int i = 0; i < 4; i++) CHECK(isnan(got[i]));
    hd_tensor_free(be, &q);
    hd_tensor_free(be, &out);
    hd_backend_destroy(be);
}

static void test_create_rejects_a_bad_device_index(ctx *c) {
    if (!c->is_cuda) return;
    hd_error e = {0};
    hd_backend *be = NULL;
    hd_backend_options o = {0};
    o.device = 1 << 20;
    CHECK(hd_backend_create(&be, "cuda", &o, &e) == HD_EINVAL);
    CHECK(be == NULL && strstr(e.msg, "device") != NULL);
    o.device = -1;
    CHECK(hd_backend_create(&be, "cuda", &o, &e) == HD_EINVAL);
}

static void test_status_is_clean_after_valid_ops(ctx *c) {
    hd_error e = {0};
    CHECKF(hd_backend_status(c->dev, &e) == 0, "%s", e.msg);
    CHECK(hd_backend_status(c->ref, &e) == 0); /* the CPU backend has no status op */
}

int main(void) {
    hd_error e = {0};
    ctx c = {0};
    hd_backend_options ro = {0};
    ro.n_threads = 2;
    if (hd_backend_create(&c.ref, "cpu", &ro, &e) != 0) {
        fprintf(stderr, "cpu backend: %s\n", e.msg);
        return 1;
    }
    const char *which = getenv("HIDREAM_TEST_DEVICE");
    if (which && strcmp(which, "cpu") == 0) {
        hd_backend_options o = {0};
        o.n_threads = 3;
        o.isa = 1; /* scalar kernels: a different code path from the reference */
        if (hd_backend_create(&c.dev, "cpu", &o, &e) != 0) {
            fprintf(stderr, "second cpu backend: %s\n", e.msg);
            return 1;
        }
        printf("HIDREAM_TEST_DEVICE=cpu: checking the test against a second CPU backend\n");
    } else {
        hd_backend_options o = {0};
        int rc = hd_backend_create(&c.dev, "cuda", &o, &e);
        if (rc == HD_EUNSUPPORTED) {
            printf("SKIP: no CUDA device (%s)\n", e.msg);
            hd_backend_destroy(c.ref);
            return 0;
        }
        if (rc != 0) {
            fprintf(stderr, "cuda backend: %s\n", e.msg);
            return 1;
        }
        c.is_cuda = 1;
    }
#define RUN_CTX(fn)                                                                \
    do {                                                                           \
        int before_ = hd_test_failures;                                            \
        fn(&c);                                                                    \
        printf("%s %s\n", hd_test_failures == before_ ? "ok  " : "FAIL", #fn);     \
        fflush(stdout);                                                            \
    } while (0)
    RUN_CTX(test_write_read_and_copy_respect_views);
    RUN_CTX(test_copy_widens_weights_of_every_dtype);
    RUN_CTX(test_weight_upload_copies_host_data);
    RUN_CTX(test_linear_matches_cpu);
    RUN_CTX(test_linear_bf16_option_rounds_operands);
    RUN_CTX(test_attention_matches_cpu_for_masks_gqa_and_head_dims);
    RUN_CTX(test_attention_bf16_option_uses_tensor_cores_within_bf16_accuracy);
    RUN_CTX(test_rmsnorm_matches_cpu_grouped_and_in_place);
    RUN_CTX(test_layernorm_matches_cpu_with_optional_weight_and_bias);
    RUN_CTX(test_rope_matches_cpu_on_column_views);
    RUN_CTX(test_elementwise_ops_match_cpu_with_aliasing);
    RUN_CTX(test_gather_rows_matches_cpu_including_bad_ids);
    RUN_CTX(test_set_and_add_rows_match_cpu_for_any_index_order);
    RUN_CTX(test_status_is_clean_after_valid_ops);
    RUN_CTX(test_create_rejects_a_bad_device_index);
    RUN_CTX(test_unsupported_head_dim_is_reported_by_status);
    hd_backend_destroy(c.dev);
    hd_backend_destroy(c.ref);
    return hd_test_finish();
}

#endif
