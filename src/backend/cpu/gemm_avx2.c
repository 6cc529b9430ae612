/* AVX2 GEMM kernels: a 6×16 micro-tile (12 ymm accumulators) and its packers.
 *
 * Packed layouts (kcp = kc rounded up to 8):
 *   A panel: blocks of 8 k, the 6 rows one after the other, 8 floats each
 *            (ap[(kb*6 + i)*8 + kk]).
 *   B panel: kcp rows of 16 floats (bp[k*16 + j]), built by 8×8 transposes of the weight. */
#include <immintrin.h>
#include <string.h>

#include "backend/cpu/kernels.h"
#include "backend/cpu/transpose_avx2.h"

#define MR 6
#define NR 16
#define KU 8

void hd_gemm_ukr_avx2(int64_t kcp, const float *ap, const float *bp, float *c, int64_t ldc,
                      int mr, int nr, int first, const float *bias) {
#define DECL(i) __m256 c##i##a = _mm256_setzero_ps(), c##i##b = _mm256_setzero_ps();
    DECL(0) DECL(1) DECL(2) DECL(3) DECL(4) DECL(5)
#undef DECL
    /* The C tile is touched only after the k loop: fetch it now so the misses overlap it. */
    for (int i = 0; i < mr; i++) {
        _mm_prefetch((const char *)(c + i * ldc), _MM_HINT_T0);
        _mm_prefetch((const char *)(c + i * ldc + nr - 1), _MM_HINT_T0);
    }
    for (int64_t kb = 0; kb < kcp; kb += KU) {
#define STEP(i, kk)                                                 \
    {                                                               \
        __m256 a = _mm256_broadcast_ss(ap + (i) * KU + (kk));       \
        c##i##a = _mm256_fmadd_ps(a, b0, c##i##a);                  \
        c##i##b = _mm256_fmadd_ps(a, b1, c##i##b);                  \
    }
#define KSTEP(kk)                                                                         \
    {                                                                                     \
        __m256 b0 = _mm256_load_ps(bp + (kk) * NR), b1 = _mm256_load_ps(bp + (kk) * NR + 8); \
        STEP(0, kk) STEP(1, kk) STEP(2, kk) STEP(3, kk) STEP(4, kk) STEP(5, kk)           \
    }
        KSTEP(0) KSTEP(1) KSTEP(2) KSTEP(3) KSTEP(4) KSTEP(5) KSTEP(6) KSTEP(7)
#undef KSTEP
#undef STEP
        ap += MR * KU;
        bp += NR * KU;
    }
    if (mr == MR && nr == NR) {
        __m256 bb0 = _mm256_setzero_ps(), bb1 = _mm256_setzero_ps();
        if (first && bias) {
            bb0 = _mm256_loadu_ps(bias);
            bb1 = _mm256_loadu_ps(bias + 8);
        }
#define STORE(i)                                                                  \
    {                                                                             \
        float *row = c + (i) * ldc;                                               \
        if (first) {                                                              \
            _mm256_storeu_ps(row, _mm256_add_ps(c##i##a, bb0));                   \
            _mm256_storeu_ps(row + 8, _mm256_add_ps(c##i##b, bb1));               \
        } else {                                                                  \
            _mm256_storeu_ps(row, _mm256_add_ps(c##i##a, _mm256_loadu_ps(row)));  \
            _mm256_storeu_ps(row + 8, _mm256_add_ps(c##i##b, _mm256_loadu_ps(row + 8))); \
        }                                                                         \
    }
        STORE(0) STORE(1) STORE(2) STORE(3) STORE(4) STORE(5)
#undef STORE
        return;
    }
    /* Edge tile: spill the accumulators, then copy the valid part. */
    float tmp[MR][NR];
#define SPILL(i) _mm256_storeu_ps(tmp[i], c##i##a); _mm256_storeu_ps(tmp[i] + 8, c##i##b);
    SPILL(0) SPILL(1) SPILL(2) SPILL(3) SPILL(4) SPILL(5)
#undef SPILL
    for (int i = 0; i < mr; i++) {
        float *row = c + i * ldc;
        for (int j = 0; j < nr; j++) {
            if (first) row[j] = tmp[i][j] + (bias ? bias[j] : 0.0f);
            else row[j] += tmp[i][j];
        }
    }
}

void hd_gemm_pack_a_avx2(const float *x, int64_t ldx, int mr, int64_t kc, float *ap) {
    for (int64_t k0 = 0; k0 < kc; k0 += KU) {
        int64_t kn = kc - k0 < KU ? kc - k0 : KU;
        for (int i = 0; i < MR; i++) {
            float *dst = ap + i * KU;
            if (i < mr && kn == KU) {
                _mm256_store_ps(dst, _mm256_loadu_ps(x + i * ldx + k0));
            } else {
                _mm256_store_ps(dst, _mm256_setzero_ps());
                if (i < mr) memcpy(dst, x + i * ldx + k0, (size_t)kn * sizeof(float));
            }
        }
        ap += MR * KU;
    }
}

/* 8 consecutive weight elements as float32; n < 8 reads only n of them (zeros after). */
static inline __m256 load_row8(hd_dtype dt, const void *p, int64_t n) {
    const size_t es = dt == HD_F32 ? 4 : 2;
    unsigned char buf[32] = {0};
    if (n < KU) {
        memcpy(buf, p, (size_t)n * es);
        p = buf;
    }
    switch (dt) {
    case HD_BF16:
        return _mm256_castsi256_ps(
            _mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)p)), 16));
    case HD_F16: return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p));
    default: return _mm256_loadu_ps(p);
    }
}

void hd_gemm_pack_b_avx2(hd_dtype dt, const void *w, int64_t ldw, int nr, int64_t kc, float *bp) {
    const size_t es = dt == HD_F32 ? 4 : 2;
    for (int64_t k0 = 0; k0 < kc; k0 += KU) {
        int64_t kn = kc - k0 < KU ? kc - k0 : KU;
        for (int h = 0; h < NR / 8; h++) {
            __m256 r[8];
            for (int j = 0; j < 8; j++) {
                int row = h * 8 + j;
                r[j] = row < nr ? load_row8(dt, (const char *)w + ((size_t)row * (size_t)ldw +
                                                                   (size_t)k0) * es, kn)
                                : _mm256_setzero_ps();
            }
            transpose8(r);
            for (int kk = 0; kk < KU; kk++) _mm256_store_ps(bp + (k0 + kk) * NR + h * 8, r[kk]);
        }
    }
}
