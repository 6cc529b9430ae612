/* AVX2 kernels of the int8 linear (gemm_i8.h): a 6×16 micro-tile on VPMADDUBSW + VPSIGNB and
 * the row quantizer. Bit-identical to the portable ones in gemm_i8.c. */
#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "backend/cpu/gemm_i8.h"

#define MR HD_I8_MR
#define NR HD_I8_NR

void hd_i8_ukr_avx2(int64_t steps, const int8_t *ap, const int8_t *bp, float *c, int64_t ldc,
                    int mr, int nr, const hd_i8_tile *t) {
    const __m256i ones = _mm256_set1_epi16(1);
    /* the float sums of the finished blocks (in L1: the int32 sums hold the registers) */
    __m256 s[MR][2];
    for (int i = 0; i < MR; i++) s[i][0] = s[i][1] = _mm256_setzero_ps();
    const float *sx = t->sx;
    for (int64_t g0 = 0; g0 < steps; g0 += t->kb / 4, sx += MR) {
        int64_t n = steps - g0 < t->kb / 4 ? steps - g0 : t->kb / 4;
#define DECL(i) __m256i q##i##a = _mm256_setzero_si256(), q##i##b = _mm256_setzero_si256();
        DECL(0) DECL(1) DECL(2) DECL(3) DECL(4) DECL(5)
#undef DECL
        for (int64_t g = 0; g < n; g++) {
            /* one group of 4 k: b0 columns 0-7, b1 columns 8-15 */
            const __m256i b0 = _mm256_load_si256((const __m256i *)bp),
                          b1 = _mm256_load_si256((const __m256i *)(bp + 32));
            /* |x| (unsigned) times w carrying x's sign: the signed product, pair sums < 32768 */
#define ROW(i)                                                                                 \
    {                                                                                          \
        int32_t x4;                                                                            \
        memcpy(&x4, ap + (i) * 4, 4);                                                          \
        const __m256i a = _mm256_set1_epi32(x4), aa = _mm256_abs_epi8(a);                      \
        q##i##a = _mm256_add_epi32(                                                            \
            q##i##a, _mm256_madd_epi16(_mm256_maddubs_epi16(aa, _mm256_sign_epi8(b0, a)), ones)); \
        q##i##b = _mm256_add_epi32(                                                            \
            q##i##b, _mm256_madd_epi16(_mm256_maddubs_epi16(aa, _mm256_sign_epi8(b1, a)), ones)); \
    }
            ROW(0) ROW(1) ROW(2) ROW(3) ROW(4) ROW(5)
#undef ROW
            ap += MR * 4;
            bp += NR * 4;
        }
        /* s = s + (float)acc·sx, as the portable kernel */
#define ADD(i)                                                                                 \
    {                                                                                          \
        const __m256 f = _mm256_set1_ps(sx[i]);                                                \
        s[i][0] = _mm256_add_ps(s[i][0], _mm256_mul_ps(_mm256_cvtepi32_ps(q##i##a), f));       \
        s[i][1] = _mm256_add_ps(s[i][1], _mm256_mul_ps(_mm256_cvtepi32_ps(q##i##b), f));       \
    }
        ADD(0) ADD(1) ADD(2) ADD(3) ADD(4) ADD(5)
#undef ADD
    }
    /* v = s·sw, then stored (+ bias) or added */
    float swt[NR] = {0}, biast[NR] = {0}, tmp[NR];
    memcpy(swt, t->sw, (size_t)nr * sizeof(float));
    if (t->bias) memcpy(biast, t->bias, (size_t)nr * sizeof(float));
    const __m256 swa = _mm256_loadu_ps(swt), swb = _mm256_loadu_ps(swt + 8),
                 ba = _mm256_loadu_ps(biast), bb = _mm256_loadu_ps(biast + 8);
    for (int i = 0; i < mr; i++) {
        __m256 va = _mm256_mul_ps(s[i][0], swa), vb = _mm256_mul_ps(s[i][1], swb);
        float *row = c + i * ldc;
        if (nr == NR) {
            if (t->first && t->bias) {
                va = _mm256_add_ps(va, ba);
                vb = _mm256_add_ps(vb, bb);
            } else if (!t->first) {
                va = _mm256_add_ps(_mm256_loadu_ps(row), va);
                vb = _mm256_add_ps(_mm256_loadu_ps(row + 8), vb);
            }
            _mm256_storeu_ps(row, va);
            _mm256_storeu_ps(row + 8, vb);
        } else {
            _mm256_storeu_ps(tmp, va);
            _mm256_storeu_ps(tmp + 8, vb);
            for (int j = 0; j < nr; j++)
                row[j] = t->first ? (t->bias ? tmp[j] + biast[j] : tmp[j]) : row[j] + tmp[j];
        }
    }
}

/* One block [b0, b1) of a row: quantized into its groups, its scale returned. */
static float pack_block(const float *x, int64_t k, int64_t b0, int64_t b1, int8_t *dst,
                        int64_t stride) {
    const __m256 sign = _mm256_set1_ps(-0.0f);
    const int64_t e = b1 < k ? b1 : k;
    __m256 vmax = _mm256_setzero_ps();
    int64_t c = b0;
    /* the running max second: a NaN lane keeps it, as fmaxf does */
    for (; c + 8 <= e; c += 8) vmax = _mm256_max_ps(_mm256_andnot_ps(sign, _mm256_loadu_ps(x + c)), vmax);
    float m[8], amax = 0;
    _mm256_storeu_ps(m, vmax);
    for (int j = 0; j < 8; j++) amax = fmaxf(amax, m[j]);
    for (int64_t r = c; r < e; r++) amax = fmaxf(amax, fabsf(x[r]));
    const __m256 inv = _mm256_set1_ps(hd_i8_inv(amax));
    const __m256 lo = _mm256_set1_ps(-HD_I8_QMAX), hi = _mm256_set1_ps(HD_I8_QMAX);
    dst += (b0 / 4) * stride;
    for (c = b0; c < b1; c += 8) { /* 8 values = two groups (a last half group: padding) */
        float buf[8] = {0};
        const float *src = x + c;
        if (c + 8 > k) {
            if (c < k) memcpy(buf, x + c, (size_t)(k - c) * sizeof(float));
            src = buf;
        }
        __m256 p = _mm256_mul_ps(_mm256_loadu_ps(src), inv);
        p = _mm256_and_ps(p, _mm256_cmp_ps(p, p, _CMP_ORD_Q)); /* NaN -> 0, as the scalar kernel */
        p = _mm256_min_ps(_mm256_max_ps(p, lo), hi);           /* before converting: ±inf in range */
        __m256i q = _mm256_cvtps_epi32(p);
        __m128i w = _mm_packs_epi32(_mm256_castsi256_si128(q), _mm256_extracti128_si256(q, 1));
        w = _mm_packs_epi16(w, w);
        int32_t g0 = _mm_cvtsi128_si32(w), g1 = _mm_extract_epi32(w, 1);
        memcpy(dst, &g0, 4);
        if (c + 4 < b1) memcpy(dst + stride, &g1, 4);
        dst += 2 * stride;
    }
    return hd_i8_scale(amax);
}

void hd_i8_pack_row_avx2(const float *x, int64_t k, int64_t kp, int64_t block, int8_t *dst,
                         int64_t stride, float *scale, int64_t scale_stride) {
    for (int64_t b0 = 0; b0 < kp; b0 += block)
        scale[(b0 / block) * scale_stride] =
            pack_block(x, k, b0, b0 + block < kp ? b0 + block : kp, dst, stride);
}
