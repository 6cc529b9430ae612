/* AVX-512 GEMM kernels: a 14×32 micro-tile (28 zmm accumulators) and its packers.
 *
 * Packed layouts (kcp = kc rounded up to 16):
 *   A panel: blocks of 16 k; in each block the 14 rows follow each other, 16 floats each
 *            (ap[(kb*14 + i)*16 + kk]), so packing is a row-wise copy and the kernel broadcasts
 *            from constant offsets.
 *   B panel: kcp rows of 32 floats (bp[k*32 + j]); packing transposes 16×16 blocks of the weight
 *            while widening BF16/F16 to float32. */
#include <immintrin.h>
#include <string.h>

#include "backend/cpu/kernels.h"
#include "backend/cpu/transpose_avx512.h"
#include "backend/cpu/gemm_store_avx512.h"

#define MR 14
#define NR 32
#define KU 16


void hd_gemm_ukr_avx512(int64_t kcp, const float *ap, const float *bp, float *c, int64_t ldc,
                        int mr, int nr, int first, const float *bias) {
#define DECL(i) __m512 c##i##a = _mm512_setzero_ps(), c##i##b = _mm512_setzero_ps();
    DECL(0) DECL(1) DECL(2) DECL(3) DECL(4) DECL(5) DECL(6)
    DECL(7) DECL(8) DECL(9) DECL(10) DECL(11) DECL(12) DECL(13)
#undef DECL
    /* The C tile is touched only after the k loop: fetch it now so the misses overlap it. */
    for (int i = 0; i < mr; i++) {
        _mm_prefetch((const char *)(c + i * ldc), _MM_HINT_T0);
        _mm_prefetch((const char *)(c + i * ldc + 16), _MM_HINT_T0);
        _mm_prefetch((const char *)(c + i * ldc + nr - 1), _MM_HINT_T0);
    }
    for (int64_t kb = 0; kb < kcp; kb += KU) {
#define STEP(i, kk)                                                 \
    {                                                               \
        __m512 a = _mm512_set1_ps(ap[(i) * KU + (kk)]);             \
        c##i##a = _mm512_fmadd_ps(a, b0, c##i##a);                  \
        c##i##b = _mm512_fmadd_ps(a, b1, c##i##b);                  \
    }
#define KSTEP(kk)                                                                     \
    {                                                                                 \
        __m512 b0 = _mm512_load_ps(bp + (kk) * NR), b1 = _mm512_load_ps(bp + (kk) * NR + 16); \
        STEP(0, kk) STEP(1, kk) STEP(2, kk) STEP(3, kk) STEP(4, kk) STEP(5, kk)       \
        STEP(6, kk) STEP(7, kk) STEP(8, kk) STEP(9, kk) STEP(10, kk) STEP(11, kk)     \
        STEP(12, kk) STEP(13, kk)                                                     \
    }
        KSTEP(0) KSTEP(1) KSTEP(2) KSTEP(3) KSTEP(4) KSTEP(5) KSTEP(6) KSTEP(7)
        KSTEP(8) KSTEP(9) KSTEP(10) KSTEP(11) KSTEP(12) KSTEP(13) KSTEP(14) KSTEP(15)
#undef KSTEP
#undef STEP
        ap += MR * KU;
        bp += NR * KU;
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

void hd_gemm_pack_a_avx512(const float *x, int64_t ldx, int mr, int64_t kc, float *ap) {
    for (int64_t k0 = 0; k0 < kc; k0 += KU) {
        int64_t kn = kc - k0 < KU ? kc - k0 : KU;
        __mmask16 m = (__mmask16)((1u << kn) - 1u);
        for (int i = 0; i < MR; i++) {
            __m512 v = i < mr ? _mm512_maskz_loadu_ps(m, x + i * ldx + k0) : _mm512_setzero_ps();
            _mm512_store_ps(ap + i * KU, v);
        }
        ap += MR * KU;
    }
}

static inline __m512 load_row16(hd_dtype dt, const void *p, __mmask16 m) {
    switch (dt) {
    case HD_BF16:
        return _mm512_castsi512_ps(_mm512_slli_epi32(
            _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, p)), 16));
    case HD_F16: return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, p));
    default: return _mm512_maskz_loadu_ps(m, p);
    }
}

void hd_gemm_pack_b_avx512(hd_dtype dt, const void *w, int64_t ldw, int nr, int64_t kc,
                           float *bp) {
    const size_t es = dt == HD_F32 ? 4 : 2;
    for (int64_t k0 = 0; k0 < kc; k0 += KU) {
        int64_t kn = kc - k0 < KU ? kc - k0 : KU;
        __mmask16 m = (__mmask16)((1u << kn) - 1u);
        for (int h = 0; h < NR / 16; h++) {
            __m512 r[16];
            for (int j = 0; j < 16; j++) {
                int row = h * 16 + j;
                r[j] = row < nr ? load_row16(dt, (const char *)w + ((size_t)row * (size_t)ldw +
                                                                    (size_t)k0) * es, m)
                                : _mm512_setzero_ps();
            }
            transpose16(r);
            for (int kk = 0; kk < KU; kk++) _mm512_store_ps(bp + (k0 + kk) * NR + h * 16, r[kk]);
        }
    }
}
