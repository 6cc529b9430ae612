/* AVX2 attention kernels (4 query rows per call) and a vectorised expf. */
#include <immintrin.h>
#include <math.h>

#include "backend/cpu/kernels.h"
#include "backend/cpu/transpose_avx2.h"

#define RB 4 /* rows per call: must match ROWS() below and attn_rb in cpu_backend.c */

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

void hd_attn_pack_kt_avx2(const float *k, int64_t ldk, int nk, int hd, float *kt) {
    for (int jb = 0; jb < HD_ATTN_BK; jb += 8) {
        for (int db = 0; db < hd; db += 8) {
            int dn = hd - db < 8 ? hd - db : 8;
            __m256 r[8];
            for (int j = 0; j < 8; j++) {
                const float *src = k + (int64_t)(jb + j) * ldk + db;
                if (jb + j >= nk) {
                    r[j] = _mm256_setzero_ps();
                } else if (dn == 8) {
                    r[j] = _mm256_loadu_ps(src);
                } else {
                    float buf[8] = {0};
                    for (int d = 0; d < dn; d++) buf[d] = src[d];
                    r[j] = _mm256_loadu_ps(buf);
                }
            }
            transpose8(r);
            for (int d = 0; d < dn; d++) _mm256_store_ps(kt + (db + d) * HD_ATTN_BK + jb, r[d]);
        }
    }
}

static inline float hmax256(__m256 v) {
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_movehdup_ps(m));
    return _mm_cvtss_f32(m);
}

static inline float hsum256(__m256 v) {
    __m128 m = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_add_ps(m, _mm_movehl_ps(m, m));
    m = _mm_add_ss(m, _mm_movehdup_ps(m));
    return _mm_cvtss_f32(m);
}

float hd_attn_softmax_avx2(float *s, int n_valid, float scale, float *m) {
    __m256 v[HD_ATTN_BK / 8], mk[HD_ATTN_BK / 8];
    const __m256 ninf = _mm256_set1_ps(-INFINITY), sc = _mm256_set1_ps(scale);
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    __m256 mx = _mm256_set1_ps(*m);
    for (int c = 0; c < HD_ATTN_BK / 8; c++) {
        mk[c] = _mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_set1_epi32(n_valid - c * 8), lane));
        v[c] = _mm256_mul_ps(_mm256_load_ps(s + c * 8), sc);
        mx = _mm256_max_ps(mx, _mm256_blendv_ps(ninf, v[c], mk[c]));
    }
    float m_new = hmax256(mx);
    __m256 mn = _mm256_set1_ps(m_new), sum = _mm256_setzero_ps();
    for (int c = 0; c < HD_ATTN_BK / 8; c++) {
        __m256 e = _mm256_and_ps(mk[c], exp256(_mm256_sub_ps(v[c], mn)));
        sum = _mm256_add_ps(sum, e);
        _mm256_store_ps(s + c * 8, e);
    }
    *m = m_new;
    return hsum256(sum);
}

/* The accumulators are spelled out (not arrays) so that they live in registers at -O2. */
#define ROWS(X) X(0) X(1) X(2) X(3)

void hd_attn_scores_avx2(int hd, const float *q, int64_t ldq, const float *kt, float *s) {
    for (int c = 0; c < HD_ATTN_BK; c += 16) {
#define DECL(r) __m256 a##r##0 = _mm256_setzero_ps(), a##r##1 = a##r##0;
        ROWS(DECL)
#undef DECL
        for (int d = 0; d < hd; d++) {
            const float *kd = kt + d * HD_ATTN_BK + c;
            __m256 k0 = _mm256_load_ps(kd), k1 = _mm256_load_ps(kd + 8);
#define STEP(r)                                                \
    {                                                          \
        __m256 qv = _mm256_broadcast_ss(q + (r) * ldq + d);    \
        a##r##0 = _mm256_fmadd_ps(qv, k0, a##r##0);            \
        a##r##1 = _mm256_fmadd_ps(qv, k1, a##r##1);            \
    }
            ROWS(STEP)
#undef STEP
        }
#define STORE(r)                                               \
    _mm256_store_ps(s + (r) * HD_ATTN_BK + c, a##r##0);        \
    _mm256_store_ps(s + (r) * HD_ATTN_BK + c + 8, a##r##1);
        ROWS(STORE)
#undef STORE
    }
}

void hd_attn_pv_avx2(int hdp, int nk, const float *p, const float *v, float *o,
                     const float *alpha) {
    for (int d = 0; d < hdp; d += 16) {
#define LOAD(r)                                                                  \
    __m256 a##r##0, a##r##1;                                                     \
    {                                                                            \
        __m256 al = _mm256_set1_ps(alpha[r]);                                    \
        a##r##0 = _mm256_mul_ps(al, _mm256_load_ps(o + (int64_t)(r) * hdp + d));     \
        a##r##1 = _mm256_mul_ps(al, _mm256_load_ps(o + (int64_t)(r) * hdp + d + 8)); \
    }
        ROWS(LOAD)
#undef LOAD
        for (int j = 0; j < nk; j++) {
            const float *vj = v + (int64_t)j * hdp + d;
            __m256 v0 = _mm256_load_ps(vj), v1 = _mm256_load_ps(vj + 8);
#define STEP(r)                                                       \
    {                                                                 \
        __m256 pr = _mm256_broadcast_ss(p + (r) * HD_ATTN_BK + j);    \
        a##r##0 = _mm256_fmadd_ps(pr, v0, a##r##0);                   \
        a##r##1 = _mm256_fmadd_ps(pr, v1, a##r##1);                   \
    }
            ROWS(STEP)
#undef STEP
        }
#define STORE(r)                                                     \
    _mm256_store_ps(o + (int64_t)(r) * hdp + d, a##r##0);            \
    _mm256_store_ps(o + (int64_t)(r) * hdp + d + 8, a##r##1);
        ROWS(STORE)
#undef STORE
    }
}
