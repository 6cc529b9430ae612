/* AVX2 attention kernels (4 query rows per call) and a vectorised expf. */
#include <immintrin.h>
#include <math.h>

#include "backend/cpu/kernels.h"

#define RB 4

/* Same algorithm as exp512 in attention_avx512.c; 2^n is built in two halves so that n = 128
 * (x just below the overflow threshold) does not overflow the exponent field. */
static inline __m256 exp256(__m256 x) {
    const __m256 lo = _mm256_set1_ps(-87.336544750553102f), hi = _mm256_set1_ps(88.72283905206835f);
    __m256 under = _mm256_cmp_ps(x, lo, _CMP_LT_OQ);
    __m256 over = _mm256_cmp_ps(x, hi, _CMP_GT_OQ);
    __m256 nan = _mm256_cmp_ps(x, x, _CMP_UNORD_Q);
    __m256 xc = _mm256_min_ps(_mm256_max_ps(x, lo), hi);
    __m256 n = _mm256_round_ps(_mm256_mul_ps(xc, _mm256_set1_ps(1.44269504088896341f)),
                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), xc);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
    p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    __m256i ni = _mm256_cvtps_epi32(n);
    __m256i n1 = _mm256_srai_epi32(ni, 1), n2 = _mm256_sub_epi32(ni, n1);
    __m256 s1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n1, _mm256_set1_epi32(127)), 23));
    __m256 s2 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n2, _mm256_set1_epi32(127)), 23));
    __m256 y = _mm256_mul_ps(_mm256_mul_ps(p, s1), s2);
    y = _mm256_andnot_ps(under, y);
    y = _mm256_blendv_ps(y, _mm256_set1_ps(INFINITY), over);
    y = _mm256_blendv_ps(y, x, nan);
    return y;
}

void hd_vexp_avx2(float *x, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(x + i, exp256(_mm256_loadu_ps(x + i)));
    if (i < n) { /* tail through a zero-padded buffer */
        float buf[8] = {0};
        int m = (int)(n - i);
        for (int j = 0; j < m; j++) buf[j] = x[i + j];
        _mm256_storeu_ps(buf, exp256(_mm256_loadu_ps(buf)));
        for (int j = 0; j < m; j++) x[i + j] = buf[j];
    }
}

void hd_attn_scores_avx2(int hd, const float *q, int64_t ldq, const float *kt, float *s) {
    for (int c = 0; c < HD_ATTN_BK; c += 16) {
        __m256 acc[RB][2];
        for (int r = 0; r < RB; r++) acc[r][0] = acc[r][1] = _mm256_setzero_ps();
        for (int d = 0; d < hd; d++) {
            const float *kd = kt + d * HD_ATTN_BK + c;
            __m256 k0 = _mm256_load_ps(kd), k1 = _mm256_load_ps(kd + 8);
            for (int r = 0; r < RB; r++) {
                __m256 qv = _mm256_broadcast_ss(q + r * ldq + d);
                acc[r][0] = _mm256_fmadd_ps(qv, k0, acc[r][0]);
                acc[r][1] = _mm256_fmadd_ps(qv, k1, acc[r][1]);
            }
        }
        for (int r = 0; r < RB; r++) {
            _mm256_store_ps(s + r * HD_ATTN_BK + c, acc[r][0]);
            _mm256_store_ps(s + r * HD_ATTN_BK + c + 8, acc[r][1]);
        }
    }
}

void hd_attn_pv_avx2(int hdp, int nk, const float *p, const float *v, float *o,
                     const float *alpha) {
    for (int d = 0; d < hdp; d += 16) {
        __m256 acc[RB][2];
        for (int r = 0; r < RB; r++) {
            __m256 al = _mm256_set1_ps(alpha[r]);
            acc[r][0] = _mm256_mul_ps(al, _mm256_load_ps(o + (int64_t)r * hdp + d));
            acc[r][1] = _mm256_mul_ps(al, _mm256_load_ps(o + (int64_t)r * hdp + d + 8));
        }
        for (int j = 0; j < nk; j++) {
            const float *vj = v + (int64_t)j * hdp + d;
            __m256 v0 = _mm256_load_ps(vj), v1 = _mm256_load_ps(vj + 8);
            for (int r = 0; r < RB; r++) {
                __m256 pr = _mm256_broadcast_ss(p + r * HD_ATTN_BK + j);
                acc[r][0] = _mm256_fmadd_ps(pr, v0, acc[r][0]);
                acc[r][1] = _mm256_fmadd_ps(pr, v1, acc[r][1]);
            }
        }
        for (int r = 0; r < RB; r++) {
            _mm256_store_ps(o + (int64_t)r * hdp + d, acc[r][0]);
            _mm256_store_ps(o + (int64_t)r * hdp + d + 8, acc[r][1]);
        }
    }
}
