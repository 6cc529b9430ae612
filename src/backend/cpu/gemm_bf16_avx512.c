/* Optional bf16 GEMM (hd_backend_options.gemm_bf16): x and W are rounded to bfloat16 (round to
 * nearest even, as the official GPU code's autocast does) and multiplied with AVX512-BF16
 * vdpbf16ps, which does two products per 32-bit lane, accumulating in float32. Same 14×32 tile
 * and driver as the float32 kernel (gemm_avx512.c); only the packed element type differs.
 *
 * Packed layouts (kcp = kc rounded up to 32; "pair" = two bf16 of consecutive k in 32 bits):
 *   A panel: blocks of 16 pairs; in each block the 14 rows follow each other, 16 pairs each
 *            (the AMX kernel, gemm_amx.c, packs 32 rows the same way).
 *   B panel: kcp/2 rows of 32 pairs (one per column).
 * The driver sizes panels for float32 (MR·kcp, kcp·NR floats); these use half of that. */
#include <immintrin.h>
#include <string.h>

#include "backend/cpu/kernels.h"
#include "backend/cpu/transpose_avx512.h"
#include "backend/cpu/gemm_store_avx512.h"

#define MR 14
#define NR 32
#define KP 16 /* pairs per block */


void hd_gemm_ukr_bf16_avx512(int64_t kcp, const float *apf, const float *bpf, float *c,
                             int64_t ldc, int mr, int nr, int first, const float *bias) {
    const int32_t *ap = (const int32_t *)(const void *)apf;
    const __m512i *bp = (const __m512i *)(const void *)bpf;
#define DECL(i) __m512 c##i##a = _mm512_setzero_ps(), c##i##b = _mm512_setzero_ps();
    DECL(0) DECL(1) DECL(2) DECL(3) DECL(4) DECL(5) DECL(6)
    DECL(7) DECL(8) DECL(9) DECL(10) DECL(11) DECL(12) DECL(13)
#undef DECL
    for (int i = 0; i < mr; i++) {
        _mm_prefetch((const char *)(c + i * ldc), _MM_HINT_T0);
        _mm_prefetch((const char *)(c + i * ldc + 16), _MM_HINT_T0);
        _mm_prefetch((const char *)(c + i * ldc + nr - 1), _MM_HINT_T0);
    }
    for (int64_t kb = 0; kb < kcp / 2; kb += KP) {
#define STEP(i, kk)                                                                  \
    {                                                                                \
        __m512bh a = (__m512bh)_mm512_set1_epi32(ap[(i) * KP + (kk)]);               \
        c##i##a = _mm512_dpbf16_ps(c##i##a, a, b0);                                  \
        c##i##b = _mm512_dpbf16_ps(c##i##b, a, b1);                                  \
    }
#define KSTEP(kk)                                                                    \
    {                                                                                \
        __m512bh b0 = (__m512bh)_mm512_load_si512(bp + 2 * (kk));                   \
        __m512bh b1 = (__m512bh)_mm512_load_si512(bp + 2 * (kk) + 1);               \
        STEP(0, kk) STEP(1, kk) STEP(2, kk) STEP(3, kk) STEP(4, kk) STEP(5, kk)      \
        STEP(6, kk) STEP(7, kk) STEP(8, kk) STEP(9, kk) STEP(10, kk) STEP(11, kk)    \
        STEP(12, kk) STEP(13, kk)                                                    \
    }
        KSTEP(0) KSTEP(1) KSTEP(2) KSTEP(3) KSTEP(4) KSTEP(5) KSTEP(6) KSTEP(7)
        KSTEP(8) KSTEP(9) KSTEP(10) KSTEP(11) KSTEP(12) KSTEP(13) KSTEP(14) KSTEP(15)
#undef KSTEP
#undef STEP
        ap += MR * KP;
        bp += 2 * KP;
    }
    __mmask16 m0 = nr >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << nr) - 1u);
    __mmask16 m1 = nr >= 32 ? (__mmask16)0xffff
                   : nr > 16 ? (__mmask16)((1u << (nr - 16)) - 1u)
                             : (__mmask16)0;
#define STORE(i) \
    if (i < mr) store_row(c + (i) * ldc, c##i##a, c##i##b, first, bias, m0, m1);
    STORE(0) STORE(1) STORE(2) STORE(3) STORE(4) STORE(5) STORE(6)
    STORE(7) STORE(8) STORE(9) STORE(10) STORE(11) STORE(12) STORE(13)
#undef STORE
}

/* 32 consecutive k of a float32 row (n valid, zeros after) as 16 bf16 pairs. */
static inline __m512i pairs_from_f32(const float *p, int n) {
    __mmask16 lo = (__mmask16)(n >= 16 ? 0xffffu : (1u << n) - 1u);
    __mmask16 hi = (__mmask16)(n >= 32 ? 0xffffu : n > 16 ? (1u << (n - 16)) - 1u : 0u);
    __m512 a = _mm512_maskz_loadu_ps(lo, p), b = _mm512_maskz_loadu_ps(hi, p + 16);
    return (__m512i)_mm512_cvtne2ps_pbh(b, a);
}

void hd_gemm_pack_a_pairs_avx512(const float *x, int64_t ldx, int mr, int64_t kc, float *apf,
                                 int rows) {
    int32_t *ap = (int32_t *)(void *)apf;
    for (int64_t k0 = 0; k0 < kc; k0 += 2 * KP) {
        int n = (int)(kc - k0 < 2 * KP ? kc - k0 : 2 * KP);
        for (int i = 0; i < rows; i++) {
            __m512i v = i < mr ? pairs_from_f32(x + i * ldx + k0, n) : _mm512_setzero_si512();
            _mm512_store_si512(ap + i * KP, v);
        }
        ap += rows * KP;
    }
}

void hd_gemm_pack_a_bf16_avx512(const float *x, int64_t ldx, int mr, int64_t kc, float *apf) {
    hd_gemm_pack_a_pairs_avx512(x, ldx, mr, kc, apf, MR);
}

/* 32 consecutive k of a weight row as 16 bf16 pairs. */
static inline __m512i pairs_from_weight(hd_dtype dt, const void *p, int n) {
    if (dt == HD_BF16) {
        __mmask32 m = n >= 32 ? 0xffffffffu : (__mmask32)((1u << n) - 1u);
        return _mm512_maskz_loadu_epi16(m, p);
    }
    float tmp[32];
    if (dt == HD_F16) {
        __mmask16 lo = (__mmask16)(n >= 16 ? 0xffffu : (1u << n) - 1u);
        __mmask16 hi = (__mmask16)(n >= 32 ? 0xffffu : n > 16 ? (1u << (n - 16)) - 1u : 0u);
        const uint16_t *h = p;
        _mm512_storeu_ps(tmp, _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(lo, h)));
        _mm512_storeu_ps(tmp + 16, _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(hi, h + 16)));
        return pairs_from_f32(tmp, 32);
    }
    return pairs_from_f32(p, n);
}

void hd_gemm_pack_b_bf16_avx512(hd_dtype dt, const void *w, int64_t ldw, int nr, int64_t kc,
                                float *bpf) {
    const size_t es = dt == HD_F32 ? 4 : 2;
    for (int64_t k0 = 0; k0 < kc; k0 += 2 * KP) {
        int n = (int)(kc - k0 < 2 * KP ? kc - k0 : 2 * KP);
        for (int h = 0; h < NR / 16; h++) {
            __m512 r[16]; /* 16 columns × 16 pairs, transposed as 32-bit words (bit-exact) */
            for (int j = 0; j < 16; j++) {
                int row = h * 16 + j;
                r[j] = row < nr ? _mm512_castsi512_ps(pairs_from_weight(
                                      dt, (const char *)w + ((size_t)row * (size_t)ldw +
                                                             (size_t)k0) * es, n))
                                : _mm512_setzero_ps();
            }
            transpose16(r);
            for (int kk = 0; kk < KP; kk++)
                _mm512_store_ps(bpf + ((k0 / 2 + kk) * NR + h * 16), r[kk]);
        }
    }
}
