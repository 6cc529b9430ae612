/* Row kernels of the forward element-wise ops and RMSNorm (eltwise.c, norm.c), written once with
 * vector extensions and compiled per ISA like grad_rows.h: fwd_rows.c (1 lane),
 * fwd_rows_avx2.c (8), fwd_rows_avx512.c (16). The includer defines VW, VEXP and ROWFN.
 * Each lane computes what the one-lane version computes, in the same order, so every ISA gives
 * the same bits — except RMSNorm's sum of squares, whose double partial sums follow the lanes. */
#include <math.h>

#include "backend/cpu/kernels.h"
#include "backend/cpu/vec_lanes.h"

/* y = silu(a)·b = a / (1 + e^-a) · b, or silu(a) when b is NULL; y may alias a or b. */
void ROWFN(hd_silu_mul_row)(int64_t n, const float *a, const float *b, float *y) {
    float t[VEXP_BLOCK];
    const vf one = vsplat(1.0f);
    for (int64_t c0 = 0; c0 < n; c0 += VEXP_BLOCK) {
        int64_t mb = n - c0 < VEXP_BLOCK ? n - c0 : VEXP_BLOCK;
        vexp_neg(a + c0, t, mb);
        for (int64_t i = 0; i < mb; i += VW) {
            int64_t k = mb - i < VW ? mb - i : VW, c = c0 + i;
            vf v = vload_n(a + c, k) / (one + vload_n(t + i, k));
            if (b) v *= vload_n(b + c, k);
            vstore_n(y + c, v, k);
        }
    }
}

/* y = a + b; y may alias a or b. */
void ROWFN(hd_add_row)(int64_t n, const float *a, const float *b, float *y) {
    for (int64_t i = 0; i < n; i += VW) {
        int64_t k = n - i < VW ? n - i : VW;
        vstore_n(y + i, vload_n(a + i, k) + vload_n(b + i, k), k);
    }
}

/* One RMSNorm group of g values: y = (x·r)·w, r = 1/sqrt(mean(x²) + eps) from a double sum;
 * y may alias x. */
void ROWFN(hd_rms_row)(int64_t g, const float *x, const float *w, float eps, float *y) {
    vd ss = {0};
    for (int64_t i = 0; i < g; i += VW) {
        int64_t k = g - i < VW ? g - i : VW;
        vd d = __builtin_convertvector(vload_n(x + i, k), vd);
        ss += d * d;
    }
    const vf r = vsplat((float)(1.0 / sqrt(vsum_d(&ss) / (double)g + (double)eps)));
    for (int64_t i = 0; i < g; i += VW) {
        int64_t k = g - i < VW ? g - i : VW;
        vstore_n(y + i, (vload_n(x + i, k) * r) * vload_n(w + i, k), k);
    }
}
