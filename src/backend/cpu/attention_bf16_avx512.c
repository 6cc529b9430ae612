/* bf16 attention kernels (AVX512-BF16, 6 query rows per call): what bf16 SDPA computes — Q, K, V
 * and the probabilities P rounded to bf16 (round to nearest even), products accumulated in
 * float32 on VDPBF16PS, the online softmax in float32 (attention.c's driver, unchanged). The
 * driver uses them for the gemm_bf16 and gemm_int8 options on CPUs with AVX512-BF16
 * (hd_cpu.attn_bf16), and only for even head dims.
 *
 * Layouts: a "pair" is one 32-bit word holding two bf16 values, the lower index in the low half
 * (what VDPBF16PS multiplies pairwise). q rows become hd/2 pairs along d (in place); kt holds
 * kt[d2·BK + j] = (k[j][2·d2], k[j][2·d2+1]); vp holds vp[j2·hdp + c] = (v[2·j2][c],
 * v[2·j2+1][c]); a row of P becomes BK/2 pairs along the keys (in place). */
#include <immintrin.h>
#include <string.h>

#include "backend/cpu/kernels.h"
#include "backend/cpu/transpose_avx512.h"

#define RB 6 /* rows per call: the AVX-512 tables' attn_rb */
#define BK HD_ATTN_BK

/* 32 floats → 16 pairs (memory order kept). */
static inline __m512 pairs32(__m512 lo, __m512 hi) {
    return _mm512_castsi512_ps((__m512i)_mm512_cvtne2ps_pbh(hi, lo));
}

/* n floats at x → n/2 pairs at dst (dst may be x: each chunk is read before it is written). */
static void to_pairs(float *dst, const float *x, int n) {
    for (int c = 0; c < n; c += 32) {
        int rest = n - c;
        __mmask16 m0 = (__mmask16)(rest >= 16 ? 0xffffu : (1u << rest) - 1u);
        __mmask16 m1 = (__mmask16)(rest >= 32 ? 0xffffu : rest > 16 ? (1u << (rest - 16)) - 1u : 0u);
        __m512 w = pairs32(_mm512_maskz_loadu_ps(m0, x + c), _mm512_maskz_loadu_ps(m1, x + c + 16));
        int nw = rest >= 32 ? 16 : (rest + 1) / 2;
        _mm512_mask_storeu_ps(dst + c / 2, (__mmask16)((1u << nw) - 1u), w);
    }
}

void hd_attn_bf16_pairs(float *row, int n) { to_pairs(row, row, n); }

void hd_attn_bf16_pack_kt(const float *k, int64_t ldk, int nk, int hd, float *kt) {
    const int h2 = hd / 2;
    for (int jb = 0; jb < BK; jb += 16) {
        for (int db = 0; db < h2; db += 16) { /* 16 keys × 16 pairs, transposed as words */
            int dn = h2 - db < 16 ? h2 - db : 16;
            __m512 r[16];
            for (int j = 0; j < 16; j++) {
                float w[16] = {0};
                if (jb + j < nk) to_pairs(w, k + (int64_t)(jb + j) * ldk + 2 * db, 2 * dn);
                r[j] = _mm512_loadu_ps(w);
            }
            transpose16(r);
            for (int d = 0; d < dn; d++) _mm512_store_ps(kt + (db + d) * BK + jb, r[d]);
        }
    }
}

void hd_attn_bf16_pack_v(const float *v, int64_t ldv, int nk, int hd, int hdp, float *vp) {
    /* (a[c], b[c]) interleaved from the 16 + 16 bf16 of cvtne2ps(b, a) */
    const __m512i idx = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9,
                                         24, 8, 23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1,
                                         16, 0);
    for (int j2 = 0; j2 < BK / 2; j2++) {
        float *dst = vp + (int64_t)j2 * hdp;
        int j = 2 * j2;
        for (int c = 0; c < hdp; c += 16) {
            int rest = hd - c;
            __mmask16 m = (__mmask16)(rest >= 16 ? 0xffffu : rest > 0 ? (1u << rest) - 1u : 0u);
            __m512 a = j < nk ? _mm512_maskz_loadu_ps(m, v + (int64_t)j * ldv + c) : _mm512_setzero_ps();
            __m512 b = j + 1 < nk ? _mm512_maskz_loadu_ps(m, v + (int64_t)(j + 1) * ldv + c)
                                  : _mm512_setzero_ps();
            __m512i ab = (__m512i)_mm512_cvtne2ps_pbh(b, a);
            _mm512_store_ps(dst + c, _mm512_castsi512_ps(_mm512_permutexvar_epi16(idx, ab)));
        }
    }
}

#define ROWS(X) X(0) X(1) X(2) X(3) X(4) X(5)

void hd_attn_bf16_scores(int hd, const float *q, int64_t ldq, const float *kt, float *s) {
#define DECL(r) __m512 a##r##0 = _mm512_setzero_ps(), a##r##1 = a##r##0, a##r##2 = a##r##0, \
                       a##r##3 = a##r##0;
    ROWS(DECL)
#undef DECL
    for (int d2 = 0; d2 < hd / 2; d2++) {
        const float *kd = kt + d2 * BK;
        __m512bh k0 = (__m512bh)_mm512_load_ps(kd), k1 = (__m512bh)_mm512_load_ps(kd + 16);
        __m512bh k2 = (__m512bh)_mm512_load_ps(kd + 32), k3 = (__m512bh)_mm512_load_ps(kd + 48);
#define STEP(r)                                                        \
    {                                                                  \
        __m512bh qv = (__m512bh)_mm512_set1_ps(q[(r) * ldq + d2]);     \
        a##r##0 = _mm512_dpbf16_ps(a##r##0, qv, k0);                   \
        a##r##1 = _mm512_dpbf16_ps(a##r##1, qv, k1);                   \
        a##r##2 = _mm512_dpbf16_ps(a##r##2, qv, k2);                   \
        a##r##3 = _mm512_dpbf16_ps(a##r##3, qv, k3);                   \
    }
        ROWS(STEP)
#undef STEP
    }
#define STORE(r)                                        \
    _mm512_store_ps(s + (r) * BK, a##r##0);             \
    _mm512_store_ps(s + (r) * BK + 16, a##r##1);        \
    _mm512_store_ps(s + (r) * BK + 32, a##r##2);        \
    _mm512_store_ps(s + (r) * BK + 48, a##r##3);
    ROWS(STORE)
#undef STORE
}

/* 64 output columns (4 vectors) of all RB rows; the accumulators spelled out so that they stay
 * in registers. */
static void pv4(int hdp, int n2, const float *p, const float *vp, float *o, const float *alpha) {
#define LOAD(r)                                                                          \
    __m512 a##r##0, a##r##1, a##r##2, a##r##3;                                           \
    {                                                                                    \
        const __m512 al = _mm512_set1_ps(alpha[r]);                                      \
        const float *orow = o + (int64_t)(r) * hdp;                                      \
        a##r##0 = _mm512_mul_ps(al, _mm512_load_ps(orow));                               \
        a##r##1 = _mm512_mul_ps(al, _mm512_load_ps(orow + 16));                          \
        a##r##2 = _mm512_mul_ps(al, _mm512_load_ps(orow + 32));                          \
        a##r##3 = _mm512_mul_ps(al, _mm512_load_ps(orow + 48));                          \
    }
    ROWS(LOAD)
#undef LOAD
    for (int j2 = 0; j2 < n2; j2++) {
        const float *vj = vp + (int64_t)j2 * hdp;
        __m512bh v0 = (__m512bh)_mm512_load_ps(vj), v1 = (__m512bh)_mm512_load_ps(vj + 16);
        __m512bh v2 = (__m512bh)_mm512_load_ps(vj + 32), v3 = (__m512bh)_mm512_load_ps(vj + 48);
#define STEP(r)                                                        \
    {                                                                  \
        __m512bh pr = (__m512bh)_mm512_set1_ps(p[(r) * BK + j2]);      \
        a##r##0 = _mm512_dpbf16_ps(a##r##0, pr, v0);                   \
        a##r##1 = _mm512_dpbf16_ps(a##r##1, pr, v1);                   \
        a##r##2 = _mm512_dpbf16_ps(a##r##2, pr, v2);                   \
        a##r##3 = _mm512_dpbf16_ps(a##r##3, pr, v3);                   \
    }
        ROWS(STEP)
#undef STEP
    }
#define STORE(r)                                                       \
    {                                                                  \
        float *orow = o + (int64_t)(r) * hdp;                          \
        _mm512_store_ps(orow, a##r##0);                                \
        _mm512_store_ps(orow + 16, a##r##1);                           \
        _mm512_store_ps(orow + 32, a##r##2);                           \
        _mm512_store_ps(orow + 48, a##r##3);                           \
    }
    ROWS(STORE)
#undef STORE
}

/* 16 output columns of all RB rows (head dims that are not a multiple of 64). */
static void pv1(int hdp, int n2, const float *p, const float *vp, float *o, const float *alpha) {
#define LOAD(r) __m512 a##r = _mm512_mul_ps(_mm512_set1_ps(alpha[r]), _mm512_load_ps(o + (int64_t)(r) * hdp));
    ROWS(LOAD)
#undef LOAD
    for (int j2 = 0; j2 < n2; j2++) {
        __m512bh v0 = (__m512bh)_mm512_load_ps(vp + (int64_t)j2 * hdp);
#define STEP(r) a##r = _mm512_dpbf16_ps(a##r, (__m512bh)_mm512_set1_ps(p[(r) * BK + j2]), v0);
        ROWS(STEP)
#undef STEP
    }
#define STORE(r) _mm512_store_ps(o + (int64_t)(r) * hdp, a##r);
    ROWS(STORE)
#undef STORE
}

void hd_attn_bf16_pv(int hdp, int nk, float *p, const float *vp, float *o, const float *alpha) {
    for (int r = 0; r < RB; r++) to_pairs(p + r * BK, p + r * BK, BK); /* P to bf16 pairs */
    const int n2 = (nk + 1) / 2;
    int c0 = 0;
    for (; c0 + 64 <= hdp; c0 += 64) pv4(hdp, n2, p, vp + c0, o + c0, alpha);
    for (; c0 < hdp; c0 += 16) pv1(hdp, n2, p, vp + c0, o + c0, alpha);
}
