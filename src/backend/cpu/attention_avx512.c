/* AVX-512 attention kernels (6 query rows per call) and a vectorised expf. */
#include <immintrin.h>
#include <math.h>

#include "backend/cpu/kernels.h"
#include "backend/cpu/transpose_avx512.h"

#define RB 6 /* rows per call: must match ROWS() below and attn_rb in cpu_backend.c */

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

void hd_attn_pack_kt_avx512(const float *k, int64_t ldk, int nk, int hd, float *kt) {
    for (int jb = 0; jb < HD_ATTN_BK; jb += 16) {
        for (int db = 0; db < hd; db += 16) {
            int dn = hd - db < 16 ? hd - db : 16;
            __mmask16 m = (__mmask16)((1u << dn) - 1u);
            __m512 r[16];
            for (int j = 0; j < 16; j++)
                r[j] = jb + j < nk ? _mm512_maskz_loadu_ps(m, k + (int64_t)(jb + j) * ldk + db)
                                   : _mm512_setzero_ps();
            transpose16(r);
            for (int d = 0; d < dn; d++) _mm512_store_ps(kt + (db + d) * HD_ATTN_BK + jb, r[d]);
        }
    }
}

float hd_attn_softmax_avx512(float *s, int n_valid, float scale, float *m) {
    __m512 v[HD_ATTN_BK / 16];
    __mmask16 mk[HD_ATTN_BK / 16];
    __m512 mx = _mm512_set1_ps(*m), sc = _mm512_set1_ps(scale);
    for (int c = 0; c < HD_ATTN_BK / 16; c++) {
        int n = n_valid - c * 16;
        mk[c] = n >= 16 ? (__mmask16)0xffff : n <= 0 ? (__mmask16)0 : (__mmask16)((1u << n) - 1u);
        v[c] = _mm512_mul_ps(_mm512_load_ps(s + c * 16), sc);
        mx = _mm512_mask_max_ps(mx, mk[c], mx, v[c]);
    }
    float m_new = _mm512_reduce_max_ps(mx);
    __m512 mn = _mm512_set1_ps(m_new), sum = _mm512_setzero_ps();
    for (int c = 0; c < HD_ATTN_BK / 16; c++) {
        __m512 e = _mm512_maskz_mov_ps(mk[c], exp512(_mm512_sub_ps(v[c], mn)));
        sum = _mm512_add_ps(sum, e);
        _mm512_store_ps(s + c * 16, e);
    }
    *m = m_new;
    return _mm512_reduce_add_ps(sum);
}

/* The accumulators are spelled out (not arrays) so that they live in registers at -O2. */
#define ROWS(X) X(0) X(1) X(2) X(3) X(4) X(5)

void hd_attn_scores_avx512(int hd, const float *q, int64_t ldq, const float *kt, float *s) {
#define DECL(r) __m512 a##r##0 = _mm512_setzero_ps(), a##r##1 = a##r##0, a##r##2 = a##r##0, \
                       a##r##3 = a##r##0;
    ROWS(DECL)
#undef DECL
    for (int d = 0; d < hd; d++) {
        const float *kd = kt + d * HD_ATTN_BK;
        __m512 k0 = _mm512_load_ps(kd), k1 = _mm512_load_ps(kd + 16);
        __m512 k2 = _mm512_load_ps(kd + 32), k3 = _mm512_load_ps(kd + 48);
#define STEP(r)                                          \
    {                                                    \
        __m512 qv = _mm512_set1_ps(q[(r) * ldq + d]);    \
        a##r##0 = _mm512_fmadd_ps(qv, k0, a##r##0);      \
        a##r##1 = _mm512_fmadd_ps(qv, k1, a##r##1);      \
        a##r##2 = _mm512_fmadd_ps(qv, k2, a##r##2);      \
        a##r##3 = _mm512_fmadd_ps(qv, k3, a##r##3);      \
    }
        ROWS(STEP)
#undef STEP
    }
#define STORE(r)                                               \
    _mm512_store_ps(s + (r) * HD_ATTN_BK, a##r##0);            \
    _mm512_store_ps(s + (r) * HD_ATTN_BK + 16, a##r##1);       \
    _mm512_store_ps(s + (r) * HD_ATTN_BK + 32, a##r##2);       \
    _mm512_store_ps(s + (r) * HD_ATTN_BK + 48, a##r##3);
    ROWS(STORE)
#undef STORE
}

/* 64 output columns (4 vectors) of all RB rows. */
static void pv_chunk4(int hdp, int nk, const float *p, const float *v, float *o,
                      const float *alpha) {
#define LOAD(r)                                                              \
    __m512 a##r##0, a##r##1, a##r##2, a##r##3;                               \
    {                                                                        \
        __m512 al = _mm512_set1_ps(alpha[r]);                                \
        const float *orow = o + (int64_t)(r) * hdp;                          \
        a##r##0 = _mm512_mul_ps(al, _mm512_load_ps(orow));                   \
        a##r##1 = _mm512_mul_ps(al, _mm512_load_ps(orow + 16));              \
        a##r##2 = _mm512_mul_ps(al, _mm512_load_ps(orow + 32));              \
        a##r##3 = _mm512_mul_ps(al, _mm512_load_ps(orow + 48));              \
    }
    ROWS(LOAD)
#undef LOAD
    for (int j = 0; j < nk; j++) {
        const float *vj = v + (int64_t)j * hdp;
        __m512 v0 = _mm512_load_ps(vj), v1 = _mm512_load_ps(vj + 16);
        __m512 v2 = _mm512_load_ps(vj + 32), v3 = _mm512_load_ps(vj + 48);
#define STEP(r)                                                  \
    {                                                            \
        __m512 pr = _mm512_set1_ps(p[(r) * HD_ATTN_BK + j]);     \
        a##r##0 = _mm512_fmadd_ps(pr, v0, a##r##0);              \
        a##r##1 = _mm512_fmadd_ps(pr, v1, a##r##1);              \
        a##r##2 = _mm512_fmadd_ps(pr, v2, a##r##2);              \
        a##r##3 = _mm512_fmadd_ps(pr, v3, a##r##3);              \
    }
        ROWS(STEP)
#undef STEP
    }
#define STORE(r)                                                 \
    {                                                            \
        float *orow = o + (int64_t)(r) * hdp;                    \
        _mm512_store_ps(orow, a##r##0);                          \
        _mm512_store_ps(orow + 16, a##r##1);                     \
        _mm512_store_ps(orow + 32, a##r##2);                     \
        _mm512_store_ps(orow + 48, a##r##3);                     \
    }
    ROWS(STORE)
#undef STORE
}

/* 16 output columns (1 vector) of all RB rows. */
static void pv_chunk1(int hdp, int nk, const float *p, const float *v, float *o,
                      const float *alpha) {
#define LOAD(r) \
    __m512 a##r = _mm512_mul_ps(_mm512_set1_ps(alpha[r]), _mm512_load_ps(o + (int64_t)(r) * hdp));
    ROWS(LOAD)
#undef LOAD
    for (int j = 0; j < nk; j++) {
        __m512 v0 = _mm512_load_ps(v + (int64_t)j * hdp);
#define STEP(r) a##r = _mm512_fmadd_ps(_mm512_set1_ps(p[(r) * HD_ATTN_BK + j]), v0, a##r);
        ROWS(STEP)
#undef STEP
    }
#define STORE(r) _mm512_store_ps(o + (int64_t)(r) * hdp, a##r);
    ROWS(STORE)
#undef STORE
}

void hd_attn_pv_avx512(int hdp, int nk, const float *p, const float *v, float *o,
                       const float *alpha) {
    int d = 0;
    for (; d + 64 <= hdp; d += 64) pv_chunk4(hdp, nk, p, v + d, o + d, alpha);
    for (; d < hdp; d += 16) pv_chunk1(hdp, nk, p, v + d, o + d, alpha);
}
