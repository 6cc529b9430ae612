/* CPU backend: every op against a naive double-precision reference on random data, for every
 * ISA level this CPU has (scalar, AVX2, AVX-512) and 1, 2 and 3 threads, with odd shapes,
 * strided views as inputs and outputs, BF16/F16/F32 weights and every attention mask pattern. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "backend/cpu/kernels.h"
#include "core/cpu_features.h"
#include "core/quant.h"
#include "testutil.h"

/* ---- helpers ---- */

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static double urand(void) { /* [0, 1) */
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (double)(rng_state >> 11) * (1.0 / 9007199254740992.0);
}
static float frand(float lo, float hi) { return lo + (hi - lo) * (float)urand(); }

typedef struct ctx {
    hd_backend *be;
    int isa, threads;
} ctx;

/* A float32 tensor that is a view into a larger padded parent (so stride > cols and the view
 * does not start at the parent's first element). The parent is returned for freeing. */
static hd_tensor make_view(hd_backend *be, hd_tensor *parent, int64_t rows, int64_t cols,
                           int strided) {
    hd_error e = {0};
    int64_t pr = rows + (strided ? 2 : 0), pc = cols + (strided ? 5 : 0);
    if (be->ops->alloc(be, parent, HD_F32, pr, pc, &e) != 0) abort();
    float *d = parent->data;
    for (int64_t i = 0; i < pr * pc; i++) d[i] = frand(-1, 1);
    hd_tensor v = *parent;
    if (strided) {
        v = hd_view_rows(parent, 1, rows);
        v = hd_view_cols(&v, 3, cols);
    }
    return v;
}

static float at(const hd_tensor *t, int64_t r, int64_t c) {
    return ((const float *)t->data)[r * t->stride + c];
}
static float *at_p(hd_tensor *t, int64_t r, int64_t c) {
    return (float *)t->data + r * t->stride + c;
}

/* Host-side weight storage of the given dtype with the float value each element represents. */
typedef struct wbuf {
    void *data;
    float *val;
} wbuf;

static wbuf make_weight(hd_dtype dt, int64_t n, float lo, float hi) {
    wbuf w = {malloc((size_t)(n > 0 ? n : 1) * 4), malloc((size_t)(n > 0 ? n : 1) * 4)};
    for (int64_t i = 0; i < n; i++) {
        float f = frand(lo, hi);
        if (dt == HD_BF16) {
            ((uint16_t *)w.data)[i] = hd_f32_to_bf16(f);
            w.val[i] = hd_bf16_to_f32(((uint16_t *)w.data)[i]);
        } else if (dt == HD_F16) {
            ((uint16_t *)w.data)[i] = hd_f32_to_f16(f);
            w.val[i] = hd_f16_to_f32(((uint16_t *)w.data)[i]);
        } else {
            ((float *)w.data)[i] = f;
            w.val[i] = f;
        }
    }
    return w;
}
static void free_weight(wbuf *w) {
    free(w->data);
    free(w->val);
}

/* Records the worst |got - ref| / (atol + rtol·|ref|) and fails if it exceeds 1. */
typedef struct errstat {
    double worst;
    int64_t at_r, at_c;
    double got, ref;
} errstat;

static void err_add(errstat *s, double got, double ref, double atol, double rtol, int64_t r,
                    int64_t c) {
    double q = fabs(got - ref) / (atol + rtol * fabs(ref));
    if (!(q <= s->worst) || isnan(got) != isnan(ref)) {
        if (!(q <= s->worst)) s->worst = isnan(q) ? INFINITY : q;
        s->at_r = r;
        s->at_c = c;
        s->got = got;
        s->ref = ref;
    }
}

#define CHECK_ERR(s, what, ...)                                                          \
    CHECKF((s).worst <= 1.0, what " [%s, %d threads]: worst %.3g at (%lld,%lld) got %.9g " \
                             "want %.9g",                                                 \
           __VA_ARGS__, hd_cpu_isa_name(c->isa), c->threads, (s).worst,                   \
           (long long)(s).at_r, (long long)(s).at_c, (s).got, (s).ref)

static const char *dt_name(hd_dtype dt) { return hd_dtype_name(dt); }

/* ---- linear ---- */

/* bf16 != 0: the reference rounds x and W to bf16 first (the gemm_bf16 option). */
static void check_linear_mode(ctx *c, int64_t M, int64_t N, int64_t K, hd_dtype dt, int with_bias,
                              int strided, int bf16) {
    hd_backend *be = c->be;
    hd_error e = {0};
    hd_tensor xp, yp, w, b;
    hd_tensor x = make_view(be, &xp, M, K, strided);
    hd_tensor y = make_view(be, &yp, M, N, strided);
    wbuf wb = make_weight(dt, N * K, -1, 1), bb = make_weight(dt, N, -1, 1);
    /* bound for products: with bf16 on AVX512-BF16 the weight is packed once (gemm_prepack.c) */
    CHECK(hd_backend_bind_weight(be, &w, bf16 ? HD_USE_LINEAR : HD_USE_LINEAR_ONCE, dt, N, K,
                                 wb.data, 1.0f, &e) == 0);
    CHECK(be->ops->weight(be, &b, dt, 1, N, bb.data, &e) == 0);
    /* canary: the parent outside the view must be untouched */
    float canary = strided ? *(float *)yp.data : 0.0f;
    be->ops->linear(be, &y, &x, &w, with_bias ? &b : NULL);
    errstat s = {0};
    for (int64_t i = 0; i < M; i++)
        for (int64_t j = 0; j < N; j++) {
            double ref = with_bias ? bb.val[j] : 0.0, mag = with_bias ? fabs(bb.val[j]) : 0.0;
            for (int64_t k = 0; k < K; k++) {
                float xv = at(&x, i, k), wv = wb.val[j * K + k];
                if (bf16) {
                    xv = hd_round_bf16(xv);
                    wv = hd_round_bf16(wv);
                }
                double p = (double)xv * wv;
                ref += p;
                mag += fabs(p);
            }
            err_add(&s, at(&y, i, j), ref, 1e-5 * mag + 1e-30, 0, i, j);
        }
    CHECK_ERR(s, "linear%s M=%lld N=%lld K=%lld %s bias=%d strided=%d", bf16 ? " (bf16)" : "",
              (long long)M, (long long)N, (long long)K, dt_name(dt), with_bias, strided);
    if (strided) CHECK(*(float *)yp.data == canary);
    hd_tensor_free(be, &w);
    hd_tensor_free(be, &xp);
    hd_tensor_free(be, &yp);
    free_weight(&wb);
    free_weight(&bb);
}

static void check_linear(ctx *c, int64_t M, int64_t N, int64_t K, hd_dtype dt, int with_bias,
                         int strided) {
    check_linear_mode(c, M, N, K, dt, with_bias, strided, 0);
}

static void test_linear_matches_double_reference(ctx *c) {
    static const struct { int64_t M, N, K; } shapes[] = {
        {1, 37, 64}, {1, 300, 3072}, {5, 33, 3}, {17, 100, 300}, {29, 65, 1},
        {130, 530, 520}, {14, 32, 256}, {15, 33, 257}, {64, 1030, 40},
    };
    hd_dtype dts[] = {HD_BF16, HD_F16, HD_F32};
    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++)
        for (int di = 0; di < 3; di++) {
            /* every shape with every dtype would be slow under sanitizers: rotate options */
            int strided = (int)((si + (size_t)di) % 2), bias = (int)((si + (size_t)di / 2) % 2);
            check_linear(c, shapes[si].M, shapes[si].N, shapes[si].K, dts[di], bias, strided);
        }
}

/* The optional bf16 GEMM equals a float32-accumulated product of bf16-rounded operands on every
 * ISA: with AMX tiles or AVX512-BF16 dot products, elsewhere by rounding the packed operands.
 * Shapes cover partial 32×32 AMX tiles, several K slices and a bias on whole tiles. */
static void test_linear_bf16_option_matches_bf16_rounded_reference(void) {
    static const struct { int64_t M, N, K; } shapes[] = {
        {1, 37, 64},      {5, 33, 3},      {17, 100, 301}, {130, 530, 520},
        {29, 65, 1},      {3, 40, 3072},   {64, 64, 2100}, {96, 288, 1030}};
    hd_dtype dts[] = {HD_BF16, HD_F16, HD_F32};
    hd_cpu_features f;
    hd_cpu_features_detect(&f);
    /* the last: AVX-512 without AMX where the CPU has AMX (the VDPBF16PS kernel) */
    int isas[] = {HD_ISA_SCALAR, HD_ISA_AVX2, HD_ISA_AVX512, HD_ISA_AVX512};
    for (int ii = 0; ii < 4; ii++) {
        if (!hd_cpu_isa_supported(isas[ii]) || (ii == 3 && !f.amx)) continue;
        for (int threads = 1; threads <= 2; threads++) {
            hd_backend_options o = {.n_threads = threads, .isa = isas[ii], .gemm_bf16 = 1,
                                    .no_amx = ii == 3};
            hd_error e = {0};
            ctx cx = {NULL, isas[ii], threads};
            CHECKF(hd_backend_create(&cx.be, "cpu", &o, &e) == 0, "%s", e.msg);
            if (!cx.be) return;
            for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++)
                for (int di = 0; di < 3; di++)
                    check_linear_mode(&cx, shapes[si].M, shapes[si].N, shapes[si].K, dts[di],
                                      (int)(si + (size_t)di) % 2, (int)si % 2, 1);
            hd_backend_destroy(cx.be);
        }
    }
}

typedef struct shape3 { int64_t M, N, K; } shape3;

static void bf16_packed_at_bind_as_per_call(int no_amx, const shape3 *shapes, size_t n_shapes,
                                            const hd_dtype *dts) {
    hd_backend_options o = {.n_threads = 2, .gemm_bf16 = 1, .no_amx = no_amx};
    hd_backend *be = NULL;
    hd_error e = {0};
    CHECKF(hd_backend_create(&be, "cpu", &o, &e) == 0, "%s", e.msg);
    if (!be) return;
    for (size_t si = 0; si < n_shapes; si++) {
        int64_t M = shapes[si].M, N = shapes[si].N, K = shapes[si].K;
        hd_dtype dt = dts[si % 3];
        wbuf wb = make_weight(dt, N * K, -1, 1);
        hd_tensor wp, wo, x, y1, y2;
        CHECK(hd_backend_bind_weight(be, &wp, HD_USE_LINEAR, dt, N, K, wb.data, 1.0f, &e) == 0);
        CHECK(hd_backend_bind_weight(be, &wo, HD_USE_LINEAR_ONCE, dt, N, K, wb.data, 1.0f, &e) == 0);
        CHECK(wp.packed != NULL && wo.packed == NULL);
        CHECK(be->ops->alloc(be, &x, HD_F32, M, K, &e) == 0);
        CHECK(be->ops->alloc(be, &y1, HD_F32, M, N, &e) == 0);
        CHECK(be->ops->alloc(be, &y2, HD_F32, M, N, &e) == 0);
        for (int64_t i = 0; i < M * K; i++) ((float *)x.data)[i] = frand(-2, 2);
        be->ops->linear(be, &y1, &x, &wp, NULL);
        be->ops->linear(be, &y2, &x, &wo, NULL);
        CHECKF(memcmp(y1.data, y2.data, (size_t)(M * N) * sizeof(float)) == 0,
               "M=%lld N=%lld K=%lld %s differ", (long long)M, (long long)N, (long long)K,
               dt_name(dt));
        hd_tensor_free(be, &wp);
        hd_tensor_free(be, &wo);
        hd_tensor_free(be, &x);
        hd_tensor_free(be, &y1);
        hd_tensor_free(be, &y2);
        free_weight(&wb);
    }
    hd_backend_destroy(be);
}

/* With AVX512-BF16 (and with AMX tiles) the bf16 option packs each product's weight once at
 * bind; the products then equal, bit for bit, those that pack the same weight on every call (a
 * weight bound for a product run once), over several K slices, partial panels and one-row
 * inputs. */
static void test_bf16_weights_packed_at_bind_multiply_as_packed_per_call(void) {
    hd_cpu_features f;
    hd_cpu_features_detect(&f);
    if (!f.avx512bf16 || !hd_cpu_isa_supported(HD_ISA_AVX512)) {
        printf("  (no AVX512-BF16 on this CPU: weights are never packed at bind)\n");
        return;
    }
    static const shape3 shapes[] = {
        {1, 70, 1600}, {20, 33, 769}, {45, 400, 2304}, {3, 32, 31}, {64, 96, 2048}};
    hd_dtype dts[] = {HD_BF16, HD_F16, HD_F32};
    for (int no_amx = 0; no_amx <= f.amx; no_amx++) /* AMX tiles, then VDPBF16PS */
        bf16_packed_at_bind_as_per_call(no_amx, shapes, sizeof shapes / sizeof *shapes, dts);
}


/* ---- block-quantized weights ---- */

/* Checks y = x · wᵀ against the double product with the weight values wv [N, K]. */
static void check_product(ctx *c, const hd_tensor *x, const hd_tensor *y, const float *wv,
                          const char *what) {
    int64_t M = y->rows, N = y->cols, K = x->cols;
    errstat st = {0};
    for (int64_t i = 0; i < M; i++)
        for (int64_t j = 0; j < N; j++) {
            double ref = 0, mag = 0;
            for (int64_t k = 0; k < K; k++) {
                double p = (double)at(x, i, k) * wv[j * K + k];
                ref += p;
                mag += fabs(p);
            }
            err_add(&st, at(y, i, j), ref, 1e-5 * mag + 1e-30, 0, i, j);
        }
    CHECK_ERR(st, "%s M=%lld N=%lld K=%lld", what, (long long)M, (long long)N, (long long)K);
}


/* A [rows, cols] weight quantized to dt; *val receives its dequantized values. */
static void *make_quantized(hd_dtype dt, int64_t rows, int64_t cols, float **val) {
    size_t rb = (size_t)hd_dtype_row_bytes(dt, cols);
    uint8_t *data = malloc(rb * (size_t)rows);
    float *src = malloc((size_t)(rows * cols) * sizeof *src);
    *val = malloc((size_t)(rows * cols) * sizeof **val);
    for (int64_t i = 0; i < rows * cols; i++) src[i] = frand(-1, 1);
    for (int64_t r = 0; r < rows; r++) hd_quant_fn_for(dt)(src + r * cols, data + (size_t)r * rb, cols);
    CHECK(hd_convert_to_f32(dt, data, *val, (size_t)(rows * cols)) == 0);
    free(src);
    return data;
}

/* linear with a quantized weight equals the double product with its dequantized values: the
 * kernels dequantize inside the packing, with K-slices cut to whole blocks (K beyond one slice
 * checks that), on every ISA; gather_rows reads quantized tables the same way. */
static void test_quantized_weights_multiply_as_their_dequantized_values(ctx *c) {
    static const struct { int64_t M, N, K; } shapes[] = {
        {1, 37, 256}, {17, 100, 512}, {130, 70, 768}, {5, 33, 1024}, {29, 65, 32}};
    hd_dtype dts[] = {HD_Q8_0, HD_Q4_0, HD_Q4_K, HD_Q5_K, HD_Q6_K};
    hd_backend *be = c->be;
    hd_error e = {0};
    for (size_t si = 0; si < sizeof shapes / sizeof *shapes; si++)
        for (int di = 0; di < 5; di++) {
            int64_t M = shapes[si].M, N = shapes[si].N, K = shapes[si].K;
            if (K % hd_dtype_block(dts[di])) continue;
            float *wv;
            void *wq = make_quantized(dts[di], N, K, &wv);
            hd_tensor w, xp, yp;
            CHECKF(hd_backend_bind_weight(be, &w, HD_USE_LINEAR, dts[di], N, K, wq, 1.0f, &e) == 0, "%s",
                   e.msg);
            hd_tensor x = make_view(be, &xp, M, K, (int)si % 2), y = make_view(be, &yp, M, N, 0);
            be->ops->linear(be, &y, &x, &w, NULL);
            char what[64];
            snprintf(what, sizeof what, "linear %s", hd_dtype_name(dts[di]));
            check_product(c, &x, &y, wv, what);
            /* the same weight as an embedding table: rows 3, 0 and N-1 */
            int32_t ids[3] = {3, 0, (int32_t)N - 1};
            hd_tensor gp, g = make_view(be, &gp, 3, K, 0);
            be->ops->gather_rows(be, &g, &w, ids, 3);
            int same = 1;
            for (int r = 0; r < 3; r++)
                for (int64_t k = 0; k < K; k++) same &= at(&g, r, k) == wv[ids[r] * K + k];
            CHECKF(same, "gather_rows %s K=%lld", hd_dtype_name(dts[di]), (long long)K);
            hd_tensor_free(be, &gp);
            hd_tensor_free(be, &xp);
            hd_tensor_free(be, &yp);
            free(wq);
            free(wv);
        }
}

/* An F8 weight bound with a scale multiplies as its decoded values × the scale; the scale is
 * refused for other formats and when not positive and finite. */
static void test_scaled_fp8_weights_multiply_as_scaled_values(ctx *c) {
    hd_backend *be = c->be;
    hd_error e = {0};
    const int64_t M = 9, N = 37, K = 300;
    const float scale = 0.0123f;
    uint8_t *wq = malloc((size_t)(N * K));
    float *wv = malloc((size_t)(N * K) * sizeof *wv);
    for (int64_t i = 0; i < N * K; i++) {
        do wq[i] = (uint8_t)(urand() * 256); while ((wq[i] & 0x7f) == 0x7f); /* no NaN codes */
        wv[i] = hd_f8e4m3_to_f32(wq[i]) * scale;
    }
    hd_tensor w, xp, yp;
    CHECKF(hd_backend_bind_weight(be, &w, HD_USE_LINEAR, HD_F8_E4M3, N, K, wq, scale, &e) == 0,
           "%s", e.msg);
    hd_tensor x = make_view(be, &xp, M, K, 1), y = make_view(be, &yp, M, N, 0);
    be->ops->linear(be, &y, &x, &w, NULL);
    check_product(c, &x, &y, wv, "linear F8_E4M3 x scale");
    hd_tensor t;
    CHECK(hd_backend_bind_weight(be, &t, HD_USE_LINEAR, HD_BF16, N, K, wq, 2.0f, &e) == HD_EFORMAT);
    CHECK(hd_backend_bind_weight(be, &t, HD_USE_LINEAR, HD_F8_E4M3, N, K, wq, -1.0f, &e) ==
          HD_EFORMAT);
    hd_tensor_free(be, &xp);
    hd_tensor_free(be, &yp);
    free(wq);
    free(wv);
}

/* Binding asks the backend first: formats it cannot use for a purpose, rows that are not whole
 * blocks and non-weight dtypes are refused with a line naming the format. */
static void test_bind_refuses_unsupported_formats_and_partial_blocks(void) {
    hd_backend *be = NULL;
    hd_error e = {0};
    hd_backend_options o = {.n_threads = 1};
    CHECK(hd_backend_create(&be, "cpu", &o, &e) == 0);
    if (!be) return;
    uint8_t buf[1024] = {0};
    hd_tensor t;
    CHECK(hd_backend_bind_weight(be, &t, HD_USE_VECTOR, HD_Q4_K, 1, 256, buf, 1.0f, &e) ==
          HD_EUNSUPPORTED);
    CHECKF(strstr(e.msg, "Q4_K") && strstr(e.msg, "vector"), "%s", e.msg);
    CHECK(hd_backend_bind_weight(be, &t, HD_USE_LINEAR, HD_Q8_0, 2, 48, buf, 1.0f, &e) == HD_EFORMAT);
    CHECKF(strstr(e.msg, "Q8_0") && strstr(e.msg, "48"), "%s", e.msg);
    CHECK(hd_backend_bind_weight(be, &t, HD_USE_LINEAR, HD_I8, 2, 4, buf, 1.0f, &e) == HD_EUNSUPPORTED);
    CHECKF(strstr(e.msg, "I8"), "%s", e.msg);
    CHECK(hd_backend_bind_weight(be, &t, HD_USE_LINEAR, HD_Q6_K, 2, 256, buf, 1.0f, &e) == 0);
    CHECK(hd_backend_bind_weight(be, &t, HD_USE_VECTOR, HD_BF16, 1, 8, buf, 1.0f, &e) == 0);
    hd_backend_destroy(be);
}

/* ---- attention ---- */

/* bf16 != 0: the backend runs attention in bf16 (AVX512-BF16); the reference then takes q, k, v
 * rounded to bf16, the bound allows the rounding of the probabilities, and the result must also
 * differ from the float32 one (the bf16 kernels ran). */
static void check_attention_mode(ctx *c, int64_t Sq, int64_t Sk, int Hq, int Hkv, int hd,
                                 hd_attn_mask mask, int strided, int bf16) {
    hd_backend *be = c->be;
    hd_tensor qp, kp, vp, op;
    hd_tensor q = make_view(be, &qp, Sq, (int64_t)Hq * hd, strided);
    hd_tensor k = make_view(be, &kp, Sk, (int64_t)Hkv * hd, strided);
    hd_tensor v = make_view(be, &vp, Sk, (int64_t)Hkv * hd, strided);
    hd_tensor o = make_view(be, &op, Sq, (int64_t)Hq * hd, strided);
    /* larger q magnitudes make the softmax peaky, exercising the running-max rescaling */
    for (int64_t i = 0; i < Sq; i++)
        for (int64_t j = 0; j < (int64_t)Hq * hd; j++) *at_p(&q, i, j) *= 3.0f;
    float scale = 1.0f / sqrtf((float)hd);
    be->ops->attention(be, &o, &q, &k, &v, Hq, Hkv, hd, scale, mask);
    errstat s = {0};
    double *sc = malloc((size_t)Sk * sizeof *sc), off_exact = 0;
#define RD(x) (bf16 ? (double)hd_round_bf16(x) : (double)(x))
    for (int h = 0; h < Hq; h++) {
        int kvh = h / (Hq / Hkv);
        for (int64_t i = 0; i < Sq; i++) {
            int64_t p = mask.q_offset + i, lim = p >= mask.n_causal ? Sk : (p + 1 < Sk ? p + 1 : Sk);
            double mx = -INFINITY, sum = 0;
            for (int64_t j = 0; j < lim; j++) {
                double d = 0;
                for (int t = 0; t < hd; t++)
                    d += RD(at(&q, i, (int64_t)h * hd + t)) * RD(at(&k, j, (int64_t)kvh * hd + t));
                sc[j] = d * scale;
                if (sc[j] > mx) mx = sc[j];
            }
            for (int64_t j = 0; j < lim; j++) sum += sc[j] = exp(sc[j] - mx);
            for (int t = 0; t < hd; t++) {
                double ref = 0;
                for (int64_t j = 0; j < lim; j++) ref += sc[j] * RD(at(&v, j, (int64_t)kvh * hd + t));
                ref = lim > 0 ? ref / sum : 0.0;
                double got = at(&o, i, (int64_t)h * hd + t);
                err_add(&s, got, ref, bf16 ? 1e-2 : 1e-5, bf16 ? 1e-2 : 1e-5, i, (int64_t)h * hd + t);
                if (fabs(got - ref) > off_exact) off_exact = fabs(got - ref);
            }
        }
    }
#undef RD
    free(sc);
    if (bf16) CHECKF(off_exact > 1e-5, "attention hd=%d: bf16 results are float32-exact", hd);
    CHECK_ERR(s, "attention%s Sq=%lld Sk=%lld Hq=%d Hkv=%d hd=%d q_offset=%lld n_causal=%lld",
              bf16 ? " (bf16)" : "", (long long)Sq, (long long)Sk, Hq, Hkv, hd,
              (long long)mask.q_offset, (long long)mask.n_causal);
    hd_tensor_free(be, &qp);
    hd_tensor_free(be, &kp);
    hd_tensor_free(be, &vp);
    hd_tensor_free(be, &op);
}

static void check_attention(ctx *c, int64_t Sq, int64_t Sk, int Hq, int Hkv, int hd,
                            hd_attn_mask mask, int strided) {
    check_attention_mode(c, Sq, Sk, Hq, Hkv, hd, mask, strided, 0);
}

/* With gemm_bf16 or gemm_int8 on AVX512-BF16 the forward attention runs in bf16: within bf16
 * rounding of the double reference for every mask, GQA, the ViT's head dim 72 and odd key
 * counts (a last half pair); an odd head dim keeps the float32 kernels. */
static void test_bf16_attention_matches_bf16_rounded_reference(void) {
    hd_cpu_features f;
    hd_cpu_features_detect(&f);
    if (!f.avx512bf16 || !hd_cpu_isa_supported(HD_ISA_AVX512)) {
        printf("  (no AVX512-BF16 on this CPU: attention stays float32)\n");
        return;
    }
    /* modes 0, 1: bf16 and int8 on VDPBF16PS (no_amx where the CPU has AMX); 2, 3: the same on
     * AMX tiles, where the CPU has them */
    for (int mode = 0; mode < (f.amx ? 4 : 2); mode++) {
        hd_backend_options o = {.n_threads = 2, .gemm_bf16 = mode % 2 == 0,
                                .gemm_int8 = mode % 2 == 1, .no_amx = mode < 2};
        hd_error e = {0};
        ctx cx = {NULL, HD_ISA_AVX512, 2};
        CHECKF(hd_backend_create(&cx.be, "cpu", &o, &e) == 0, "%s", e.msg);
        if (!cx.be) return;
        hd_attn_mask full = {0, 0};
        check_attention_mode(&cx, 70, 151, 4, 4, 64, full, 0, 1);
        check_attention_mode(&cx, 130, 130, 4, 2, 72, (hd_attn_mask){0, 130}, 1, 1);
        check_attention_mode(&cx, 200, 201, 8, 2, 128, (hd_attn_mask){0, 77}, 0, 1);
        check_attention_mode(&cx, 40, 190, 2, 1, 128, (hd_attn_mask){150, 150}, 1, 1);
        check_attention_mode(&cx, 1, 67, 4, 2, 18, full, 0, 1);
        check_attention_mode(&cx, 9, 5, 2, 2, 3, (hd_attn_mask){0, 9}, 1, 0); /* odd: float32 */
        hd_backend_destroy(cx.be);
    }
}

/* On a CPU with AMX the bf16 attention runs on tiles; it computes what the VDPBF16PS kernels
 * compute (the same bf16 roundings, float32 sums) up to the order of the sums — ten times closer
 * than float32 attention comes — for every mask, GQA, head dims 64, 72, 128 and 18. */
static void test_amx_attention_agrees_with_the_vdpbf16ps_kernels(void) {
    hd_cpu_features f;
    hd_cpu_features_detect(&f);
    if (!f.amx) {
        printf("  (no AMX on this CPU: its attention is not run)\n");
        return;
    }
    static const struct { int64_t Sq, Sk; int Hq, Hkv, hd; hd_attn_mask mask; } cases[] = {
        {70, 151, 4, 4, 64, {0, 0}}, {130, 130, 4, 2, 72, {0, 130}},
        {200, 201, 8, 2, 128, {0, 77}}, {40, 190, 2, 1, 128, {150, 150}}, {1, 67, 4, 2, 18, {0, 0}}};
    hd_backend *be[3] = {NULL, NULL, NULL}; /* VDPBF16PS, AMX, float32 */
    for (int i = 0; i < 3; i++) {
        hd_backend_options o = {.n_threads = 2, .gemm_bf16 = i < 2, .no_amx = i == 0};
        hd_error e = {0};
        CHECKF(hd_backend_create(&be[i], "cpu", &o, &e) == 0, "%s", e.msg);
        if (!be[i]) return;
    }
    for (size_t ci = 0; ci < sizeof cases / sizeof *cases; ci++) {
        int64_t Sq = cases[ci].Sq, Sk = cases[ci].Sk;
        int Hq = cases[ci].Hq, Hkv = cases[ci].Hkv, hd = cases[ci].hd;
        hd_tensor qp, kp, vp, op[3];
        hd_tensor q = make_view(be[0], &qp, Sq, (int64_t)Hq * hd, 0);
        hd_tensor k = make_view(be[0], &kp, Sk, (int64_t)Hkv * hd, 0);
        hd_tensor v = make_view(be[0], &vp, Sk, (int64_t)Hkv * hd, 0);
        for (int b = 0; b < 3; b++) {
            hd_tensor o = make_view(be[b], &op[b], Sq, (int64_t)Hq * hd, 0);
            be[b]->ops->attention(be[b], &o, &q, &k, &v, Hq, Hkv, hd, 1.0f / sqrtf((float)hd),
                                  cases[ci].mask);
        }
        double d_amx = 0, d_f32 = 0, mag = 0;
        for (int64_t i = 0; i < Sq * Hq * hd; i++) {
            double ref = ((float *)op[0].data)[i];
            mag = fmax(mag, fabs(ref));
            d_amx = fmax(d_amx, fabs(((float *)op[1].data)[i] - ref));
            d_f32 = fmax(d_f32, fabs(((float *)op[2].data)[i] - ref));
        }
        /* a score summed in another order can round a probability to the neighbouring bf16
         * value: 2e-4 allows a few such flips; float32 attention is ~1e-3 away */
        CHECKF(d_amx <= 2e-4 * mag && d_f32 > 10 * d_amx,
               "hd=%d Sq=%lld: AMX off by %.3g, float32 by %.3g (max |o| %.3g)", hd,
               (long long)Sq, d_amx, d_f32, mag);
        hd_tensor_free(be[0], &qp);
        hd_tensor_free(be[0], &kp);
        hd_tensor_free(be[0], &vp);
        for (int b = 0; b < 3; b++) hd_tensor_free(be[b], &op[b]);
    }
    for (int i = 0; i < 3; i++) hd_backend_destroy(be[i]);
}

static void test_attention_matches_double_reference_for_all_masks(ctx *c) {
    hd_attn_mask full = {0, 0};
    check_attention(c, 70, 150, 4, 4, 64, full, 0);             /* full, GQA 1 */
    check_attention(c, 130, 130, 4, 2, 72, (hd_attn_mask){0, 130}, 1); /* causal, GQA 2, ViT hd */
    check_attention(c, 200, 200, 8, 2, 128, (hd_attn_mask){0, 77}, 0); /* hybrid, GQA 4 */
    check_attention(c, 60, 160, 4, 1, 32, (hd_attn_mask){100, 130}, 1); /* offset, part causal */
    check_attention(c, 40, 190, 2, 1, 128, (hd_attn_mask){150, 150}, 0); /* generation rows */
    check_attention(c, 9, 5, 2, 2, 2, (hd_attn_mask){0, 9}, 1);  /* tiny head dim */
    check_attention(c, 1, 67, 4, 2, 18, full, 0);                /* one query */
    check_attention(c, 600, 610, 2, 2, 16, (hd_attn_mask){0, 333}, 1); /* several query tiles */
}

/* ---- norms ---- */

static void test_rmsnorm_grouped_and_in_place(ctx *c) {
    hd_backend *be = c->be;
    hd_error e = {0};
    static const struct { int64_t rows, cols, g; } cases[] = {
        {7, 4096, 4096}, {33, 512, 128}, {3, 90, 18}, {1, 1152, 1152}};
    hd_dtype dts[] = {HD_BF16, HD_F16, HD_F32};
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++)
        for (int di = 0; di < 3; di++)
            for (int inplace = 0; inplace < 2; inplace++) {
                int64_t R = cases[ci].rows, C = cases[ci].cols, g = cases[ci].g;
                int strided = (int)(ci + (size_t)inplace) % 2;
                hd_tensor xp, yp, w;
                hd_tensor x = make_view(be, &xp, R, C, strided);
                hd_tensor y = inplace ? x : make_view(be, &yp, R, C, !strided);
                for (int64_t i = 0; i < R; i++) /* varied row scales */
                    for (int64_t j = 0; j < C; j++) *at_p(&x, i, j) *= (float)(i + 1) * 0.7f;
                double *xs = malloc((size_t)(R * C) * sizeof *xs);
                for (int64_t i = 0; i < R; i++)
                    for (int64_t j = 0; j < C; j++) xs[i * C + j] = at(&x, i, j);
                wbuf wb = make_weight(dts[di], g, 0.5f, 1.5f);
                CHECK(be->ops->weight(be, &w, dts[di], 1, g, wb.data, &e) == 0);
                be->ops->rmsnorm(be, &y, &x, &w, 1e-6f);
                errstat s = {0};
                for (int64_t i = 0; i < R; i++)
                    for (int64_t c0 = 0; c0 < C; c0 += g) {
                        double ss = 0;
                        for (int64_t t = 0; t < g; t++) ss += xs[i * C + c0 + t] * xs[i * C + c0 + t];
                        double inv = 1.0 / sqrt(ss / (double)g + 1e-6);
                        for (int64_t t = 0; t < g; t++)
                            err_add(&s, at(&y, i, c0 + t), xs[i * C + c0 + t] * inv * wb.val[t],
                                    1e-6, 1e-5, i, c0 + t);
                    }
                CHECK_ERR(s, "rmsnorm %lldx%lld g=%lld %s inplace=%d", (long long)R, (long long)C,
                          (long long)g, dt_name(dts[di]), inplace);
                free(xs);
                free_weight(&wb);
                hd_tensor_free(be, &xp);
                if (!inplace) hd_tensor_free(be, &yp);
            }
}

static void test_layernorm_with_weight_and_bias(ctx *c) {
    hd_backend *be = c->be;
    hd_error e = {0};
    hd_dtype dts[] = {HD_BF16, HD_F32};
    for (int di = 0; di < 2; di++)
        for (int inplace = 0; inplace < 2; inplace++) {
            int64_t R = 19, C = 1152;
            hd_tensor xp, yp, w, b;
            hd_tensor x = make_view(be, &xp, R, C, 1);
            hd_tensor y = inplace ? x : make_view(be, &yp, R, C, 0);
            for (int64_t i = 0; i < R; i++)
                for (int64_t j = 0; j < C; j++) *at_p(&x, i, j) += 3.0f + (float)i; /* offset mean */
            double *xs = malloc((size_t)(R * C) * sizeof *xs);
            for (int64_t i = 0; i < R; i++)
                for (int64_t j = 0; j < C; j++) xs[i * C + j] = at(&x, i, j);
            wbuf wb = make_weight(dts[di], C, 0.5f, 1.5f), bb = make_weight(dts[di], C, -1, 1);
            CHECK(be->ops->weight(be, &w, dts[di], 1, C, wb.data, &e) == 0);
            CHECK(be->ops->weight(be, &b, dts[di], 1, C, bb.data, &e) == 0);
            be->ops->layernorm(be, &y, &x, &w, &b, 1e-6f);
            errstat s = {0};
            for (int64_t i = 0; i < R; i++) {
                double m = 0, var = 0;
                for (int64_t t = 0; t < C; t++) m += xs[i * C + t];
                m /= (double)C;
                for (int64_t t = 0; t < C; t++) var += (xs[i * C + t] - m) * (xs[i * C + t] - m);
                double inv = 1.0 / sqrt(var / (double)C + 1e-6);
                for (int64_t t = 0; t < C; t++)
                    err_add(&s, at(&y, i, t), (xs[i * C + t] - m) * inv * wb.val[t] + bb.val[t],
                            1e-5, 1e-5, i, t);
            }
            CHECK_ERR(s, "layernorm %s inplace=%d", dt_name(dts[di]), inplace);
            free(xs);
            free_weight(&wb);
            free_weight(&bb);
            hd_tensor_free(be, &xp);
            if (!inplace) hd_tensor_free(be, &yp);
        }
}

/* ---- rope ---- */

static void test_rope_rotates_half_pairs(ctx *c) {
    hd_backend *be = c->be;
    int hds[] = {128, 72, 2};
    for (int hi = 0; hi < 3; hi++) {
        int hd = hds[hi], H = 3;
        int64_t S = 21;
        hd_tensor xp, cp, sp;
        hd_tensor x = make_view(be, &xp, S, (int64_t)H * hd, hi % 2);
        hd_tensor cs = make_view(be, &cp, S, hd, 1);
        hd_tensor sn = make_view(be, &sp, S, hd, 0);
        double *x0 = malloc((size_t)(S * H * hd) * sizeof *x0);
        for (int64_t i = 0; i < S; i++)
            for (int64_t j = 0; j < (int64_t)H * hd; j++) x0[i * H * hd + j] = at(&x, i, j);
        be->ops->rope(be, &x, &cs, &sn, hd);
        errstat s = {0};
        for (int64_t i = 0; i < S; i++)
            for (int h = 0; h < H; h++)
                for (int d = 0; d < hd / 2; d++) {
                    const double *xh = x0 + i * H * hd + h * hd;
                    double cd = at(&cs, i, d), sd = at(&sn, i, d);
                    err_add(&s, at(&x, i, h * hd + d), xh[d] * cd - xh[d + hd / 2] * sd, 1e-6, 1e-6,
                            i, h * hd + d);
                    err_add(&s, at(&x, i, h * hd + d + hd / 2), xh[d + hd / 2] * cd + xh[d] * sd,
                            1e-6, 1e-6, i, h * hd + d + hd / 2);
                }
        CHECK_ERR(s, "rope hd=%d", hd);
        free(x0);
        hd_tensor_free(be, &xp);
        hd_tensor_free(be, &cp);
        hd_tensor_free(be, &sp);
    }
}

/* ---- element-wise ---- */

static double ref_silu(double x) { return x / (1 + exp(-x)); }
/* 0.5·(1 + tanh u) written as 1/(1 + e^(-2u)): the textbook form cancels to 0 even in double
 * for x < -6, where the float32 op still has a meaningful (tiny) value. */
static double ref_gelu_tanh(double x) {
    double u = sqrt(2 / M_PI) * (x + 0.044715 * x * x * x);
    if (x > -5) return 0.5 * x * (1 + tanh(u)); /* the PyTorch formula where it is accurate */
    return x / (1 + exp(-2 * u));
}
static double ref_gelu_erf(double x) { return 0.5 * x * erfc(-x / sqrt(2.0)); }

static void test_elementwise_ops_match_reference_with_aliasing(ctx *c) {
    hd_backend *be = c->be;
    int64_t R = 37, C = 1001;
    for (int op = 0; op < 5; op++)
        for (int alias = 0; alias < 2; alias++) {
            hd_tensor ap, bp, yp;
            hd_tensor a = make_view(be, &ap, R, C, 1), b = make_view(be, &bp, R, C, 0);
            for (int64_t i = 0; i < R; i++)
                for (int64_t j = 0; j < C; j++) {
                    *at_p(&a, i, j) = frand(-12, 12);
                    if (op == 3 && j % 7 == 0) *at_p(&a, i, j) = frand(-60, 60); /* wide range */
                }
            double *as = malloc((size_t)(R * C) * sizeof *as), *bs = malloc((size_t)(R * C) * sizeof *bs);
            for (int64_t i = 0; i < R; i++)
                for (int64_t j = 0; j < C; j++) {
                    as[i * C + j] = at(&a, i, j);
                    bs[i * C + j] = at(&b, i, j);
                }
            hd_tensor y = alias ? a : make_view(be, &yp, R, C, 1);
            const char *name = "?";
            switch (op) {
            case 0: be->ops->add(be, &y, &a, &b); name = "add"; break;
            case 1: be->ops->silu(be, &y, &a); name = "silu"; break;
            case 2: be->ops->silu_mul(be, &y, &a, &b); name = "silu_mul"; break;
            case 3: be->ops->gelu_tanh(be, &y, &a); name = "gelu_tanh"; break;
            default: be->ops->gelu_erf(be, &y, &a); name = "gelu_erf"; break;
            }
            errstat s = {0};
            for (int64_t i = 0; i < R; i++)
                for (int64_t j = 0; j < C; j++) {
                    double x = as[i * C + j], u = bs[i * C + j], ref;
                    switch (op) {
                    case 0: ref = x + u; break;
                    case 1: ref = ref_silu(x); break;
                    case 2: ref = ref_silu(x) * u; break;
                    case 3: ref = ref_gelu_tanh(x); break;
                    default: ref = ref_gelu_erf(x); break;
                    }
                    err_add(&s, at(&y, i, j), ref, 1e-30, 1e-5, i, j);
                }
            CHECK_ERR(s, "%s alias=%d", name, alias);
            free(as);
            free(bs);
            hd_tensor_free(be, &ap);
            hd_tensor_free(be, &bp);
            if (!alias) hd_tensor_free(be, &yp);
        }
}

/* ---- rows, memory ---- */

static void test_gather_rows_widens_each_table_dtype(ctx *c) {
    hd_backend *be = c->be;
    hd_error e = {0};
    hd_dtype dts[] = {HD_BF16, HD_F16, HD_F32};
    for (int di = 0; di < 3; di++) {
        int64_t V = 50, D = 300, n = 9;
        wbuf tb = make_weight(dts[di], V * D, -3, 3);
        hd_tensor t, yp;
        CHECK(be->ops->weight(be, &t, dts[di], V, D, tb.data, &e) == 0);
        hd_tensor y = make_view(be, &yp, n, D, 1);
        int32_t ids[9] = {0, 49, 7, 7, 23, -1, 50, 12, 1};
        be->ops->gather_rows(be, &y, &t, ids, n);
        int ok = 1;
        for (int64_t i = 0; i < n; i++)
            for (int64_t j = 0; j < D; j++) {
                float want = (ids[i] < 0 || ids[i] >= V) ? 0.0f : tb.val[ids[i] * D + j];
                ok &= at(&y, i, j) == want;
            }
        CHECKF(ok, "gather_rows %s [%s, %d threads]", dt_name(dts[di]), hd_cpu_isa_name(c->isa),
               c->threads);
        free_weight(&tb);
        hd_tensor_free(be, &yp);
    }
}

static void test_set_rows_and_add_rows_with_duplicates(ctx *c) {
    hd_backend *be = c->be;
    int64_t R = 20, D = 700, n = 6;
    for (int add = 0; add < 2; add++) {
        hd_tensor yp, sp;
        hd_tensor y = make_view(be, &yp, R, D, 1), src = make_view(be, &sp, n, D, 1);
        double *want = malloc((size_t)(R * D) * sizeof *want);
        for (int64_t i = 0; i < R; i++)
            for (int64_t j = 0; j < D; j++) want[i * D + j] = at(&y, i, j);
        int32_t idx_set[6] = {3, 0, 19, 7, 25, 11}, idx_add[6] = {3, 3, 19, 7, -2, 3};
        const int32_t *idx = add ? idx_add : idx_set;
        for (int64_t i = 0; i < n; i++) {
            if (idx[i] < 0 || idx[i] >= R) continue;
            for (int64_t j = 0; j < D; j++)
                want[idx[i] * D + j] = add ? want[idx[i] * D + j] + at(&src, i, j) : at(&src, i, j);
        }
        if (add) be->ops->add_rows(be, &y, &src, idx, n);
        else be->ops->set_rows(be, &y, &src, idx, n);
        errstat s = {0};
        for (int64_t i = 0; i < R; i++)
            for (int64_t j = 0; j < D; j++) err_add(&s, at(&y, i, j), want[i * D + j], 1e-6, 1e-6, i, j);
        CHECK_ERR(s, "%s", add ? "add_rows" : "set_rows");
        free(want);
        hd_tensor_free(be, &yp);
        hd_tensor_free(be, &sp);
    }
}

static void test_fill_copy_write_read_honour_strides(ctx *c) {
    hd_backend *be = c->be;
    hd_error e = {0};
    int64_t R = 300, C = 129;
    hd_tensor ap, bp;
    hd_tensor a = make_view(be, &ap, R, C, 1), b = make_view(be, &bp, R, C, 1);
    float canary = ((float *)ap.data)[0];
    float *host = malloc((size_t)(R * C) * sizeof *host), *back = malloc((size_t)(R * C) * sizeof *back);
    for (int64_t i = 0; i < R * C; i++) host[i] = (float)i * 0.5f;
    be->ops->write(be, &a, host);
    be->ops->copy(be, &b, &a);
    be->ops->read(be, &b, back);
    CHECK(memcmp(host, back, (size_t)(R * C) * sizeof *host) == 0);
    be->ops->fill(be, &a, -2.5f);
    be->ops->read(be, &a, back);
    int ok = 1;
    for (int64_t i = 0; i < R * C; i++) ok &= back[i] == -2.5f;
    CHECK(ok);
    CHECK(((float *)ap.data)[0] == canary);
    /* copy widens a BF16 weight */
    wbuf wb = make_weight(HD_BF16, R * C, -1, 1);
    hd_tensor w;
    CHECK(be->ops->weight(be, &w, HD_BF16, R, C, wb.data, &e) == 0);
    be->ops->copy(be, &a, &w);
    be->ops->read(be, &a, back);
    CHECK(memcmp(back, wb.val, (size_t)(R * C) * sizeof *back) == 0);
    free_weight(&wb);
    free(host);
    free(back);
    hd_tensor_free(be, &ap);
    hd_tensor_free(be, &bp);
}

/* ---- kernels directly ---- */

static int64_t ulp_diff(float a, float b) {
    int32_t ia, ib;
    memcpy(&ia, &a, 4);
    memcpy(&ib, &b, 4);
    if (ia < 0) ia = INT32_MIN - ia;
    if (ib < 0) ib = INT32_MIN - ib;
    return llabs((long long)ia - (long long)ib);
}

static void test_vector_exp_within_two_ulp(void) {
    const hd_cpu_kernels *ks[] = {&hd_cpu_kernels_scalar, &hd_cpu_kernels_avx2,
                                  &hd_cpu_kernels_avx512};
    enum { N = 200003 };
    float *x = malloc(N * sizeof *x), *y = malloc(N * sizeof *y);
    for (int ki = 0; ki < 3; ki++) {
        if (!hd_cpu_isa_supported(ks[ki]->isa)) continue;
        for (int i = 0; i < N; i++) x[i] = -87.3f + (88.7f + 87.3f) * (float)i / (N - 1);
        x[0] = -INFINITY;
        x[1] = -1000.0f;
        x[2] = 0.0f;
        memcpy(y, x, N * sizeof *y);
        ks[ki]->vexp(y, N);
        int64_t worst = 0;
        float wx = 0;
        for (int i = 3; i < N; i++) {
            int64_t u = ulp_diff(y[i], (float)exp((double)x[i]));
            if (u > worst) {
                worst = u;
                wx = x[i];
            }
        }
        CHECKF(worst <= 2, "%s exp: %lld ulp at x=%.9g", hd_cpu_isa_name(ks[ki]->isa),
               (long long)worst, wx);
        CHECK(y[0] == 0.0f && y[1] == 0.0f && y[2] == 1.0f);
        float special[5] = {100.0f, NAN, -87.5f, 88.7f, 1.0f};
        ks[ki]->vexp(special, 5);
        CHECK(isinf(special[0]) && special[0] > 0);
        CHECK(isnan(special[1]));
        CHECK(special[2] >= 0.0f && special[2] < 1.2e-38f);
        CHECK(ulp_diff(special[3], (float)exp((double)88.7f)) <= 2);
        CHECK(ulp_diff(special[4], (float)exp(1.0)) <= 2);
    }
    free(x);
    free(y);
}

static void test_backend_create_rejects_bad_requests(void) {
    hd_backend *be = NULL;
    hd_error e = {0};
#ifndef HIDREAM_HAVE_CUDA
    CHECK(hd_backend_create(&be, "cuda", NULL, &e) == HD_EUNSUPPORTED);
    CHECK(be == NULL && strstr(e.msg, "cuda") != NULL);
#endif
    CHECK(hd_backend_create(&be, "tpu", NULL, &e) == HD_EINVAL);
    CHECK(strstr(e.msg, "tpu") != NULL);
    hd_backend_options o = {.isa = 7};
    CHECK(hd_backend_create(&be, "cpu", &o, &e) == HD_EINVAL);
    o.isa = 0;
    o.n_threads = -1;
    CHECK(hd_backend_create(&be, "cpu", &o, &e) == HD_EINVAL);
    o.n_threads = 1;
    CHECK(hd_backend_create(&be, "cpu", &o, &e) == 0 && be != NULL);
    if (be) {
        hd_tensor t;
        uint8_t dummy[4] = {0};
        CHECK(be->ops->weight(be, &t, HD_I32, 1, 1, dummy, &e) == HD_EUNSUPPORTED);
        CHECK(strstr(e.msg, "I32") != NULL);
        CHECK(be->ops->alloc(be, &t, HD_F32, -1, 4, &e) == HD_EINVAL);
        CHECK(be->ops->alloc(be, &t, HD_F32, INT64_MAX / 2, 4, &e) == HD_EINVAL);
        CHECK(be->ops->alloc(be, &t, HD_F32, 0, 0, &e) == 0);
        hd_tensor_free(be, &t);
        CHECK(t.data == NULL);
        hd_backend_destroy(be);
    }
    hd_backend_destroy(NULL);
}

int main(void) {
    RUN_TEST(test_backend_create_rejects_bad_requests);
    RUN_TEST(test_vector_exp_within_two_ulp);
    RUN_TEST(test_linear_bf16_option_matches_bf16_rounded_reference);
    RUN_TEST(test_bf16_weights_packed_at_bind_multiply_as_packed_per_call);
    RUN_TEST(test_bf16_attention_matches_bf16_rounded_reference);
    RUN_TEST(test_amx_attention_agrees_with_the_vdpbf16ps_kernels);
    RUN_TEST(test_bind_refuses_unsupported_formats_and_partial_blocks);
    int threads[] = {1, 2, 3};
    for (int isa = HD_ISA_SCALAR; isa <= HD_ISA_AVX512; isa++) {
        if (!hd_cpu_isa_supported(isa)) {
            printf("skip %s (not supported by this CPU)\n", hd_cpu_isa_name(isa));
            continue;
        }
        for (int ti = 0; ti < 3; ti++) {
            hd_backend_options o = {.n_threads = threads[ti], .isa = isa};
            hd_error e = {0};
            ctx cx = {NULL, isa, threads[ti]}, *c = &cx;
            CHECKF(hd_backend_create(&cx.be, "cpu", &o, &e) == 0, "%s", e.msg);
            if (!cx.be) continue;
            printf("-- %s, %d threads\n", hd_cpu_isa_name(isa), threads[ti]);
#define RUN_CTX(fn)                                                                \
    do {                                                                           \
        int before_ = hd_test_failures;                                            \
        fn(c);                                                                     \
        printf("%s %s\n", hd_test_failures == before_ ? "ok  " : "FAIL", #fn);     \
    } while (0)
            RUN_CTX(test_linear_matches_double_reference);
            RUN_CTX(test_quantized_weights_multiply_as_their_dequantized_values);
            RUN_CTX(test_scaled_fp8_weights_multiply_as_scaled_values);
            RUN_CTX(test_attention_matches_double_reference_for_all_masks);
            RUN_CTX(test_rmsnorm_grouped_and_in_place);
            RUN_CTX(test_layernorm_with_weight_and_bias);
            RUN_CTX(test_rope_rotates_half_pairs);
            RUN_CTX(test_elementwise_ops_match_reference_with_aliasing);
            RUN_CTX(test_gather_rows_widens_each_table_dtype);
            RUN_CTX(test_set_rows_and_add_rows_with_duplicates);
            RUN_CTX(test_fill_copy_write_read_honour_strides);
            hd_backend_destroy(cx.be);
        }
    }
    return hd_test_finish();
}
