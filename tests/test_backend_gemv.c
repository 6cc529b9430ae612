/* The CPU backend's single-row linear with bf16 weights (the GEMV path used when decoding token
 * by token): against a double-precision reference on the same bf16 values, for every ISA this
 * CPU runs, with K and N that are not multiples of the vector widths, a bias, and row strides
 * wider than the row (views). */
#include <math.h>
#include <stdlib.h>

#include "backend/backend.h"
#include "core/cpu_features.h"
#include "core/dtype.h"
#include "testutil.h"

static float rnd(unsigned *s) {
    *s = *s * 1103515245u + 12345u;
    return (float)((*s >> 8) & 0xFFFF) / 65536.0f - 0.5f;
}

static void check_isa(int isa) {
    hd_backend *be;
    hd_error e = {0};
    hd_backend_options o = {0};
    o.n_threads = 2;
    o.isa = isa;
    if (hd_backend_create(&be, "cpu", &o, &e) < 0) return;
    const int Ks[] = {1, 7, 16, 64, 100, 1027}, Ns[] = {1, 33, 300};
    unsigned seed = 1;
    for (int a = 0; a < 6; a++)
        for (int b = 0; b < 3; b++) {
            int K = Ks[a], N = Ns[b], ld = K + 3;
            uint16_t *w = malloc((size_t)N * ld * 2), *bias = malloc((size_t)N * 2);
            float *x = malloc((size_t)K * 4), *y = malloc((size_t)N * 4);
            for (int i = 0; i < N * ld; i++) w[i] = hd_f32_to_bf16(rnd(&seed));
            for (int i = 0; i < N; i++) bias[i] = hd_f32_to_bf16(rnd(&seed));
            for (int i = 0; i < K; i++) x[i] = rnd(&seed);
            hd_tensor W, B, X, Y;
            be->ops->weight(be, &W, HD_BF16, N, ld, w, &e);
            be->ops->weight(be, &B, HD_BF16, 1, N, bias, &e);
            hd_tensor Wv = hd_view_cols(&W, 0, K);
            be->ops->alloc(be, &X, HD_F32, 1, K, &e);
            be->ops->alloc(be, &Y, HD_F32, 1, N, &e);
            be->ops->write(be, &X, x);
            be->ops->linear(be, &Y, &X, &Wv, &B);
            be->ops->read(be, &Y, y);
            double worst = 0;
            for (int j = 0; j < N; j++) {
                double ref = hd_bf16_to_f32(bias[j]), mag = fabs(ref);
                for (int k = 0; k < K; k++) {
                    double t = (double)hd_bf16_to_f32(w[(size_t)j * ld + k]) * x[k];
                    ref += t;
                    mag += fabs(t);
                }
                worst = fmax(worst, fabs(y[j] - ref) / (mag > 0 ? mag : 1));
            }
            CHECKF(worst < 1e-6, "isa %d, K %d, N %d: rel err %.3g", isa, K, N, worst);
            hd_tensor_free(be, &X);
            hd_tensor_free(be, &Y);
            hd_tensor_free(be, &W);
            hd_tensor_free(be, &B);
            free(w);
            free(bias);
            free(x);
            free(y);
        }
    hd_backend_destroy(be);
}

static void test_single_row_bf16_linear_matches_a_double_reference_on_every_isa(void) {
    int ran = 0;
    for (int isa = HD_ISA_SCALAR; isa <= HD_ISA_AVX512; isa++)
        if (hd_cpu_isa_supported(isa)) {
            check_isa(isa);
            ran++;
        }
    CHECK(ran >= 1);
}

int main(void) {
    RUN_TEST(test_single_row_bf16_linear_matches_a_double_reference_on_every_isa);
    return hd_test_finish();
}
