/* The CPU backend's int8 products (gemm_int8 option, backend/cpu/gemm_i8.h): exactly the product
 * of the quantized operands — W per output channel, x per row and block of 2048 values (128 for
 * a weight bound as HD_USE_LINEAR_OUTLIERS) — (checked
 * against a double-precision product of independently quantized values), within the
 * quantization error of the float product, bit-identical on the portable and AVX2 kernels, and
 * applied only where it should be. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "core/cpu_features.h"
#include "core/quant.h"
#include "testutil.h"

static uint64_t rng_state = 0x243F6A8885A308D3ull;
static double urand(void) {
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (double)(rng_state >> 11) * (1.0 / 9007199254740992.0);
}
static float frand(float lo, float hi) { return lo + (hi - lo) * (float)urand(); }

/* no_amx: the AVX-512 (VNNI) kernel where the CPU also has AMX tiles */
static hd_backend *make_backend(int isa, int threads, int no_amx) {
    hd_backend_options o = {.n_threads = threads, .isa = isa, .gemm_int8 = 1, .no_amx = no_amx};
    hd_backend *be = NULL;
    hd_error e = {0};
    CHECKF(hd_backend_create(&be, "cpu", &o, &e) == 0, "%s", e.msg);
    return be;
}

/* The quantizer the backend documents, written out independently: scale = max|v| / 127,
 * q = v·(127 / max|v|) rounded half to even, in [-127, 127]. */
static float quantize_row(const float *v, int64_t n, int32_t *q) {
    float amax = 0;
    for (int64_t i = 0; i < n; i++) amax = fmaxf(amax, fabsf(v[i]));
    float inv = amax > 0 ? 127.0f / amax : 0.0f;
    for (int64_t i = 0; i < n; i++) {
        float r = nearbyintf(v[i] * inv);
        q[i] = (int32_t)(r > 127 ? 127 : r < -127 ? -127 : r);
    }
    return amax > 0 ? amax / 127.0f : 0.0f;
}

typedef struct problem {
    int64_t M, N, K;
    hd_dtype dt;
    float wscale;    /* F8: the per-tensor scale */
    void *wdata;     /* stored weight */
    float *wv;       /* its values (× wscale) */
    float *x, *bias; /* x [M, K] with row stride K + 3; bias [N] or NULL */
} problem;

static void make_problem(problem *p, int64_t M, int64_t N, int64_t K, hd_dtype dt, int bias) {
    memset(p, 0, sizeof *p);
    p->M = M, p->N = N, p->K = K, p->dt = dt;
    p->wscale = dt == HD_F8_E4M3 ? 0.03125f : 1.0f;
    size_t es = hd_dtype_size(dt);
    p->wdata = malloc((size_t)(N * K) * es + 1);
    p->wv = malloc((size_t)(N * K) * sizeof(float) + 1);
    for (int64_t i = 0; i < N * K; i++) {
        float f = frand(-1, 1) * (i % 97 == 0 ? 3.0f : 1.0f); /* a few larger values */
        float v;
        if (dt == HD_BF16) {
            ((uint16_t *)p->wdata)[i] = hd_f32_to_bf16(f);
            v = hd_bf16_to_f32(((uint16_t *)p->wdata)[i]);
        } else if (dt == HD_F16) {
            ((uint16_t *)p->wdata)[i] = hd_f32_to_f16(f);
            v = hd_f16_to_f32(((uint16_t *)p->wdata)[i]);
        } else if (dt == HD_F8_E4M3) {
            float stored = f * 8.0f; /* well inside e4m3's range */
            uint8_t b = 0;
            float best = INFINITY;
            for (int c = 0; c < 256; c++) { /* nearest e4m3 code, by its decoder */
                float dv;
                uint8_t cb = (uint8_t)c;
                hd_dtype_info(HD_F8_E4M3)->to_f32(&cb, &dv, 1);
                if (isfinite(dv) && fabsf(dv - stored) < best) best = fabsf(dv - stored), b = cb;
            }
            ((uint8_t *)p->wdata)[i] = b;
            hd_dtype_info(HD_F8_E4M3)->to_f32(&b, &v, 1);
            v *= p->wscale;
        } else {
            ((float *)p->wdata)[i] = f;
            v = f;
        }
        p->wv[i] = v;
    }
    p->x = malloc((size_t)(M * (K + 3)) * sizeof(float) + 4);
    for (int64_t i = 0; i < M * (K + 3); i++) p->x[i] = frand(-2, 2);
    if (M > 2)
        for (int64_t k = 0; k < K; k++) p->x[1 * (K + 3) + k] = 0; /* an all-zero row */
    if (bias) {
        p->bias = malloc((size_t)N * sizeof(float));
        for (int64_t j = 0; j < N; j++) p->bias[j] = frand(-1, 1);
    }
}

static void free_problem(problem *p) {
    free(p->wdata);
    free(p->wv);
    free(p->x);
    free(p->bias);
}

/* y [M, N] (row stride N + 1) from the backend's linear with the weight bound for products. */
static float *run_linear(hd_backend *be, const problem *p, hd_weight_use use, int expect_packed) {
    hd_error e = {0};
    hd_tensor w, b, xp, yp;
    CHECKF(hd_backend_bind_weight(be, &w, use, p->dt, p->N, p->K, p->wdata, p->wscale,
                                  &e) == 0, "%s", e.msg);
    CHECK((w.packed != NULL) == expect_packed);
    CHECK(p->bias == NULL || hd_backend_bind_weight(be, &b, HD_USE_VECTOR, HD_F32, 1, p->N,
                                                    p->bias, 1.0f, &e) == 0);
    CHECK(be->ops->alloc(be, &xp, HD_F32, p->M, p->K + 3, &e) == 0);
    CHECK(be->ops->alloc(be, &yp, HD_F32, p->M, p->N + 1, &e) == 0);
    memcpy(xp.data, p->x, (size_t)(p->M * (p->K + 3)) * sizeof(float));
    for (int64_t i = 0; i < p->M * (p->N + 1); i++) ((float *)yp.data)[i] = 12345.0f;
    hd_tensor x = hd_view_cols(&xp, 0, p->K), y = hd_view_cols(&yp, 0, p->N);
    be->ops->linear(be, &y, &x, &w, p->bias ? &b : NULL);
    float *out = malloc((size_t)(p->M * (p->N + 1)) * sizeof(float));
    memcpy(out, yp.data, (size_t)(p->M * (p->N + 1)) * sizeof(float));
    for (int64_t i = 0; i < p->M; i++) CHECK(out[i * (p->N + 1) + p->N] == 12345.0f); /* untouched */
    hd_tensor_free(be, &w);
    if (p->bias) hd_tensor_free(be, &b);
    hd_tensor_free(be, &xp);
    hd_tensor_free(be, &yp);
    return out;
}

static const struct { int64_t M, N, K; } shapes[] = {
    {1, 37, 64}, {5, 33, 3}, {7, 16, 8}, {13, 100, 300}, {29, 65, 1}, {64, 130, 520},
    {6, 17, 4100}, /* three K slices */ {130, 300, 96}, {70, 96, 2200}, /* whole AMX tiles */
};

static void test_int8_linear_equals_the_product_of_its_quantized_operands(void) {
    /* AVX-512: AMX tiles where the CPU has them, else VNNI where it has it; the last: VNNI on a
     * CPU with AMX */
    int isas[] = {HD_ISA_SCALAR, HD_ISA_AVX2, HD_ISA_AVX512, HD_ISA_AVX512};
    hd_dtype dts[] = {HD_BF16, HD_F16, HD_F32, HD_F8_E4M3};
    hd_cpu_features f;
    hd_cpu_features_detect(&f);
    for (int ii = 0; ii < 4; ii++) {
        if (!hd_cpu_isa_supported(isas[ii]) || (ii == 3 && !f.amx)) continue;
        for (int threads = 1; threads <= 2; threads++) {
            hd_backend *be = make_backend(isas[ii], threads, ii == 3);
            if (!be) return;
            for (size_t si = 0; si < 2 * sizeof shapes / sizeof *shapes; si++) {
                /* each shape with coarse (one per K slice) and fine x scales */
                const size_t sh = si / 2;
                const hd_weight_use use = si % 2 ? HD_USE_LINEAR_OUTLIERS : HD_USE_LINEAR;
                const int64_t KB = si % 2 ? 128 : 2048;
                hd_dtype dt = dts[(sh + (size_t)threads) % 4];
                problem p;
                make_problem(&p, shapes[sh].M, shapes[sh].N, shapes[sh].K, dt, (int)sh % 2);
                float *y = run_linear(be, &p, use, 1);
                int32_t *qx = malloc((size_t)p.K * 4), *qw = malloc((size_t)(p.N * p.K) * 4);
                float *sw = malloc((size_t)p.N * 4), sx[64]; /* 4100 values: 33 blocks */
                for (int64_t j = 0; j < p.N; j++) sw[j] = quantize_row(p.wv + j * p.K, p.K, qw + j * p.K);
                double worst = 0;
                for (int64_t i = 0; i < p.M; i++) {
                    for (int64_t k0 = 0; k0 < p.K; k0 += KB)
                        sx[k0 / KB] = quantize_row(p.x + i * (p.K + 3) + k0,
                                                   p.K - k0 < KB ? p.K - k0 : KB, qx + k0);
                    for (int64_t j = 0; j < p.N; j++) {
                        double dot = 0, mag = p.bias ? fabs(p.bias[j]) : 0;
                        for (int64_t k = 0; k < p.K; k++) {
                            double t = (double)qx[k] * qw[j * p.K + k] * sx[k / KB] * sw[j];
                            dot += t;
                            mag += fabs(t);
                        }
                        double ref = dot + (p.bias ? p.bias[j] : 0);
                        double err = fabs(y[i * (p.N + 1) + j] - ref) / (1e-5 * mag + 1e-30);
                        if (!(err <= worst)) worst = err;
                    }
                }
                CHECKF(worst <= 1.0, "%s %d threads M=%lld N=%lld K=%lld %s kb %lld: worst %.3g",
                       hd_cpu_isa_name(isas[ii]), threads, (long long)p.M, (long long)p.N,
                       (long long)p.K, hd_dtype_name(dt), (long long)KB, worst);
                free(qx);
                free(qw);
                free(sw);
                free(y);
                free_problem(&p);
            }
            hd_backend_destroy(be);
        }
    }
}

/* Relative (Frobenius) error of the int8 product against the double product of the unquantized
 * operands: the quantization error itself, which the option documents as about 1e-2. */
static void test_int8_linear_is_within_quantization_error_of_the_float_product(void) {
    hd_backend *be = make_backend(HD_ISA_BEST, 2, 0);
    if (!be) return;
    problem p;
    make_problem(&p, 48, 256, 1024, HD_BF16, 1);
    float *y = run_linear(be, &p, HD_USE_LINEAR, 1);
    double num = 0, den = 0;
    for (int64_t i = 0; i < p.M; i++)
        for (int64_t j = 0; j < p.N; j++) {
            double ref = p.bias[j];
            for (int64_t k = 0; k < p.K; k++) ref += (double)p.x[i * (p.K + 3) + k] * p.wv[j * p.K + k];
            double d = y[i * (p.N + 1) + j] - ref;
            num += d * d;
            den += ref * ref;
        }
    double rel = sqrt(num / den);
    printf("  int8 product vs float product: relative error %.4f\n", rel);
    CHECKF(rel > 1e-4 && rel <= 2e-2, "relative error %.4g", rel); /* quantized, and not by much */
    free(y);
    free_problem(&p);
    hd_backend_destroy(be);
}

/* The portable kernel against one vector ISA: the same bits for every shape and block size. */
static void agree_bit_for_bit(int isa, int no_amx) {
    hd_backend *s = make_backend(HD_ISA_SCALAR, 1, 0), *v = make_backend(isa, 2, no_amx);
    if (!s || !v) return;
    for (size_t si = 0; si < sizeof shapes / sizeof *shapes; si++)
    for (int fine = 0; fine <= 1; fine++) {
        const hd_weight_use use = fine ? HD_USE_LINEAR_OUTLIERS : HD_USE_LINEAR;
        problem p;
        make_problem(&p, shapes[si].M, shapes[si].N, shapes[si].K, HD_BF16, (int)si % 2);
        float *ys = run_linear(s, &p, use, 1), *yv = run_linear(v, &p, use, 1);
        CHECKF(memcmp(ys, yv, (size_t)(p.M * (p.N + 1)) * sizeof(float)) == 0,
               "%s: M=%lld N=%lld K=%lld (%s x scales) differ", hd_cpu_isa_name(isa),
               (long long)p.M, (long long)p.N, (long long)p.K, fine ? "fine" : "coarse");
        free(ys);
        free(yv);
        free_problem(&p);
    }
    hd_backend_destroy(s);
    hd_backend_destroy(v);
}

static void test_int8_kernels_agree_bit_for_bit_across_isas(void) {
    if (!hd_cpu_isa_supported(HD_ISA_AVX2)) {
        printf("  (no AVX2 on this CPU: one kernel only)\n");
        return;
    }
    agree_bit_for_bit(HD_ISA_AVX2, 0);
    hd_cpu_features f;
    hd_cpu_features_detect(&f);
    if (!hd_cpu_isa_supported(HD_ISA_AVX512) || !f.avx512vnni) {
        printf("  (no AVX512-VNNI on this CPU: its kernel is not run)\n");
        return;
    }
    agree_bit_for_bit(HD_ISA_AVX512, 1); /* the VNNI kernel with its offset x */
    if (!f.amx) {
        printf("  (no AMX on this CPU: its kernel is not run)\n");
        return;
    }
    agree_bit_for_bit(HD_ISA_AVX512, 0); /* the AMX tiles, x row-major */
}

/* hd_backend_linears (x quantized once, one job) gives the bits of separate linear calls; with
 * weights of different block sizes it falls back to them. */
static void test_int8_products_of_one_input_match_separate_products(void) {
    hd_cpu_features f;
    hd_cpu_features_detect(&f);
    for (int no_amx = 0; no_amx <= 1; no_amx++) {
        if (no_amx && !f.amx) continue;
        hd_backend *be = make_backend(HD_ISA_BEST, 2, no_amx);
        if (!be) return;
        hd_error e = {0};
        const int64_t M = 45, K = 2200, N[3] = {96, 33, 160};
        for (int mixed = 0; mixed <= 1; mixed++) {
            hd_tensor w[3], y1[3], y3[3], xt;
            problem p[3];
            for (int i = 0; i < 3; i++) {
                make_problem(&p[i], M, N[i], K, HD_BF16, 0);
                hd_weight_use use = mixed && i == 1 ? HD_USE_LINEAR_OUTLIERS : HD_USE_LINEAR;
                CHECK(hd_backend_bind_weight(be, &w[i], use, HD_BF16, N[i], K, p[i].wdata, 1.0f,
                                             &e) == 0);
                CHECK(be->ops->alloc(be, &y1[i], HD_F32, M, N[i], &e) == 0);
                CHECK(be->ops->alloc(be, &y3[i], HD_F32, M, N[i], &e) == 0);
            }
            CHECK(be->ops->alloc(be, &xt, HD_F32, M, K, &e) == 0);
            memcpy(xt.data, p[0].x, (size_t)(M * K) * sizeof(float));
            for (int i = 0; i < 3; i++) be->ops->linear(be, &y1[i], &xt, &w[i], NULL);
            hd_backend_linears(be, (hd_tensor *[]){&y3[0], &y3[1], &y3[2]}, &xt,
                               (const hd_tensor *[]){&w[0], &w[1], &w[2]}, 3);
            for (int i = 0; i < 3; i++) {
                CHECKF(memcmp(y1[i].data, y3[i].data, (size_t)(M * N[i]) * sizeof(float)) == 0,
                       "product %d of 3 (%s, %s) differs", i, mixed ? "mixed blocks" : "shared x",
                       no_amx ? "VNNI" : "best kernel");
                hd_tensor_free(be, &w[i]);
                hd_tensor_free(be, &y1[i]);
                hd_tensor_free(be, &y3[i]);
                free_problem(&p[i]);
            }
            hd_tensor_free(be, &xt);
        }
        hd_backend_destroy(be);
    }
}

/* A Q8_0 weight becomes int8 panels too: its product is, bit for bit, that of its dequantized
 * values bound as F32. */
static void test_int8_packs_q8_0_weights_as_their_dequantized_values(void) {
    hd_backend *be = make_backend(HD_ISA_BEST, 2, 0);
    if (!be) return;
    problem p;
    const int64_t M = 37, N = 70, K = 320;
    make_problem(&p, M, N, K, HD_F32, 1);
    size_t row_bytes = (size_t)(K / 32) * 34;
    uint8_t *q8 = malloc((size_t)N * row_bytes);
    float *deq = malloc((size_t)(N * K) * sizeof(float));
    for (int64_t j = 0; j < N; j++) {
        hd_quant_q8_0(p.wv + j * K, q8 + (size_t)j * row_bytes, K);
        hd_dequant_q8_0(q8 + (size_t)j * row_bytes, deq + j * K, K);
    }
    problem pq = p, pf = p;
    pq.dt = HD_Q8_0, pq.wdata = q8;
    pf.wdata = deq;
    float *yq = run_linear(be, &pq, HD_USE_LINEAR, 1), *yf = run_linear(be, &pf, HD_USE_LINEAR, 1);
    CHECK(memcmp(yq, yf, (size_t)(M * (N + 1)) * sizeof(float)) == 0);
    free(yq);
    free(yf);
    free(q8);
    free(deq);
    free_problem(&p);
    hd_backend_destroy(be);
}

/* Lookups, vectors and the 4-6-bit block formats keep their stored form; a view of a packed
 * weight drops the packing and multiplies the stored values; without the option nothing is
 * packed. */
static void test_int8_packs_float_and_q8_0_weights_bound_for_products(void) {
    hd_backend *be = make_backend(HD_ISA_BEST, 1, 0);
    if (!be) return;
    hd_error e = {0};
    hd_tensor t;
    problem p;
    make_problem(&p, 3, 64, 32, HD_F32, 0);
    CHECK(hd_backend_bind_weight(be, &t, HD_USE_ROWS, HD_F32, 64, 32, p.wdata, 1.0f, &e) == 0);
    CHECK(t.packed == NULL);
    hd_tensor_free(be, &t);
    CHECK(hd_backend_bind_weight(be, &t, HD_USE_VECTOR, HD_F32, 1, 32, p.wdata, 1.0f, &e) == 0);
    CHECK(t.packed == NULL);
    hd_tensor_free(be, &t);
    uint8_t q4k[144 * 2] = {0};
    CHECK(hd_backend_bind_weight(be, &t, HD_USE_LINEAR, HD_Q4_K, 2, 256, q4k, 1.0f, &e) == 0);
    CHECK(t.packed == NULL);
    hd_tensor_free(be, &t);
    CHECK(hd_backend_bind_weight(be, &t, HD_USE_LINEAR, HD_F32, 64, 32, p.wdata, 1.0f, &e) == 0);
    CHECK(t.packed != NULL);
    hd_tensor half = hd_view_rows(&t, 0, 32);
    CHECK(half.packed == NULL);
    hd_tensor xt, yt;
    CHECK(be->ops->alloc(be, &xt, HD_F32, 1, 32, &e) == 0 && be->ops->alloc(be, &yt, HD_F32, 1, 32, &e) == 0);
    memcpy(xt.data, p.x, 32 * sizeof(float));
    be->ops->linear(be, &yt, &xt, &half, NULL);
    double worst = 0;
    for (int j = 0; j < 32; j++) {
        double ref = 0;
        for (int k = 0; k < 32; k++) ref += (double)p.x[k] * p.wv[j * 32 + k];
        double d = fabs(((float *)yt.data)[j] - ref);
        if (d > worst) worst = d;
    }
    CHECKF(worst < 1e-4, "view product off by %g", worst); /* float path: no quantization */
    hd_tensor_free(be, &xt);
    hd_tensor_free(be, &yt);
    hd_tensor_free(be, &t);
    CHECK(t.packed == NULL && t.data == NULL);
    hd_backend_destroy(be);

    hd_backend_options o = {.n_threads = 1};
    CHECK(hd_backend_create(&be, "cpu", &o, &e) == 0);
    CHECK(hd_backend_bind_weight(be, &t, HD_USE_LINEAR, HD_F32, 64, 32, p.wdata, 1.0f, &e) == 0);
    CHECK(t.packed == NULL);
    hd_tensor_free(be, &t);
    hd_backend_destroy(be);
    free_problem(&p);
}

int main(void) {
    RUN_TEST(test_int8_linear_equals_the_product_of_its_quantized_operands);
    RUN_TEST(test_int8_linear_is_within_quantization_error_of_the_float_product);
    RUN_TEST(test_int8_kernels_agree_bit_for_bit_across_isas);
    RUN_TEST(test_int8_products_of_one_input_match_separate_products);
    RUN_TEST(test_int8_packs_q8_0_weights_as_their_dequantized_values);
    RUN_TEST(test_int8_packs_float_and_q8_0_weights_bound_for_products);
    return hd_test_finish();
}
