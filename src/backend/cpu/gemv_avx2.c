/* linear with one input row and bf16 weights (token-by-token decoding): y[j] = x · w[j], read
 * straight from the bf16 rows. The blocked GEMM would first widen every weight panel to float32
 * for a single row of x, tripling the memory traffic of a bandwidth-bound product. */
#include <immintrin.h>

#include "backend/cpu/kernels.h"

static float hsum256(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

static inline __m256 widen8(const uint16_t *p) {
    __m128i h = _mm_loadu_si128((const __m128i *)p);
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}

void hd_gemv_bf16_avx2(int64_t K, const float *x, const uint16_t *w, int64_t ldw, int64_t n,
                       float *y) {
    for (int64_t j = 0; j < n; j++) {
        const uint16_t *r = w + j * ldw;
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        int64_t k = 0;
        for (; k + 32 <= K; k += 32) {
            a0 = _mm256_fmadd_ps(widen8(r + k), _mm256_loadu_ps(x + k), a0);
            a1 = _mm256_fmadd_ps(widen8(r + k + 8), _mm256_loadu_ps(x + k + 8), a1);
            a2 = _mm256_fmadd_ps(widen8(r + k + 16), _mm256_loadu_ps(x + k + 16), a2);
            a3 = _mm256_fmadd_ps(widen8(r + k + 24), _mm256_loadu_ps(x + k + 24), a3);
        }
        for (; k + 8 <= K; k += 8) a0 = _mm256_fmadd_ps(widen8(r + k), _mm256_loadu_ps(x + k), a0);
        float s = hsum256(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
        for (; k < K; k++) s += hd_bf16_to_f32(r[k]) * x[k];
        y[j] = s;
    }
}
