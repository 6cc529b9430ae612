/* AVX-512 attention kernels (6 query rows per call) and a vectorised expf. */
#include <immintrin.h>
#include <math.h>

#include "backend/cpu/kernels.h"

#define RB 6

/* exp(x): x = n·ln2 + r with |r| <= ln2/2 (ln2 split in two so n·ln2_hi is exact), e^r by a
 * degree-6 polynomial (Cephes expf coefficients, < 1 ulp), scaled by 2^n through the exponent
 * bits. Inputs below -87.33 (incl. -inf) give 0, above 88.72 give +inf; NaN propagates. */
static inline __m512 exp512(__m512 x) {
    const __m512 lo = _mm512_set1_ps(-87.336544750553102f), hi = _mm512_set1_ps(88.72283905206835f);
    __mmask16 under = _mm512_cmp_ps_mask(x, lo, _CMP_LT_OQ);
    __mmask16 over = _mm512_cmp_ps_mask(x, hi, _CMP_GT_OQ);
    __mmask16 nan = _mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q);
    __m512 xc = _mm512_min_ps(_mm512_max_ps(x, lo), hi);
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(xc, _mm512_set1_ps(1.44269504088896341f)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), xc);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps(1.9875691500e-4f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
    p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
    /* 2^n via scalef handles n = 128 (x near the top) without overflowing the exponent field */
    __m512 y = _mm512_scalef_ps(p, n);
    y = _mm512_mask_mov_ps(y, under, _mm512_setzero_ps());
    y = _mm512_mask_mov_ps(y, over, _mm512_set1_ps(INFINITY));
    y = _mm512_mask_mov_ps(y, nan, x);
    return y;
}

void hd_vexp_avx512(float *x, int64_t n) {
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(x + i, exp512(_mm512_loadu_ps(x + i)));
    if (i < n) {
        __mmask16 m = (__mmask16)((1u << (n - i)) - 1u);
        _mm512_mask_storeu_ps(x + i, m, exp512(_mm512_maskz_loadu_ps(m, x + i)));
    }
}

void hd_attn_scores_avx512(int hd, const float *q, int64_t ldq, const float *kt, float *s) {
    __m512 acc[RB][4];
    for (int r = 0; r < RB; r++)
        for (int c = 0; c < 4; c++) acc[r][c] = _mm512_setzero_ps();
    for (int d = 0; d < hd; d++) {
        const float *kd = kt + d * HD_ATTN_BK;
        __m512 k0 = _mm512_load_ps(kd), k1 = _mm512_load_ps(kd + 16);
        __m512 k2 = _mm512_load_ps(kd + 32), k3 = _mm512_load_ps(kd + 48);
        for (int r = 0; r < RB; r++) {
            __m512 qv = _mm512_set1_ps(q[r * ldq + d]);
            acc[r][0] = _mm512_fmadd_ps(qv, k0, acc[r][0]);
            acc[r][1] = _mm512_fmadd_ps(qv, k1, acc[r][1]);
            acc[r][2] = _mm512_fmadd_ps(qv, k2, acc[r][2]);
            acc[r][3] = _mm512_fmadd_ps(qv, k3, acc[r][3]);
        }
    }
    for (int r = 0; r < RB; r++)
        for (int c = 0; c < 4; c++) _mm512_store_ps(s + r * HD_ATTN_BK + c * 16, acc[r][c]);
}

/* One chunk of NV×16 output columns for all RB rows; NV is a compile-time constant at each call
 * site so the accumulators stay in registers. */
static inline __attribute__((always_inline)) void pv_chunk(const int NV, int hdp, int nk,
                                                           const float *p, const float *v,
                                                           float *o, const float *alpha) {
    __m512 acc[RB][4];
    for (int r = 0; r < RB; r++) {
        __m512 al = _mm512_set1_ps(alpha[r]);
        for (int c = 0; c < NV; c++)
            acc[r][c] = _mm512_mul_ps(al, _mm512_load_ps(o + (int64_t)r * hdp + c * 16));
    }
    for (int j = 0; j < nk; j++) {
        const float *vj = v + (int64_t)j * hdp;
        __m512 vv[4];
        for (int c = 0; c < NV; c++) vv[c] = _mm512_load_ps(vj + c * 16);
        for (int r = 0; r < RB; r++) {
            __m512 pr = _mm512_set1_ps(p[r * HD_ATTN_BK + j]);
            for (int c = 0; c < NV; c++) acc[r][c] = _mm512_fmadd_ps(pr, vv[c], acc[r][c]);
        }
    }
    for (int r = 0; r < RB; r++)
        for (int c = 0; c < NV; c++) _mm512_store_ps(o + (int64_t)r * hdp + c * 16, acc[r][c]);
}

void hd_attn_pv_avx512(int hdp, int nk, const float *p, const float *v, float *o,
                       const float *alpha) {
    int d = 0;
    for (; d + 64 <= hdp; d += 64) pv_chunk(4, hdp, nk, p, v + d, o + d, alpha);
    switch ((hdp - d) / 16) {
    case 3: pv_chunk(3, hdp, nk, p, v + d, o + d, alpha); break;
    case 2: pv_chunk(2, hdp, nk, p, v + d, o + d, alpha); break;
    case 1: pv_chunk(1, hdp, nk, p, v + d, o + d, alpha); break;
    default: break;
    }
}
