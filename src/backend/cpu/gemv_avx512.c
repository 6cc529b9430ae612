/* AVX-512 version of gemv_avx2.c: one input row times bf16 weight rows, 64 values per step. */
#include <immintrin.h>

#include "backend/cpu/kernels.h"

static inline __m512 widen16(const uint16_t *p) {
    __m256i h = _mm256_loadu_si256((const __m256i *)p);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

void hd_gemv_bf16_avx512(int64_t K, const float *x, const uint16_t *w, int64_t ldw, int64_t n,
                         float *y) {
    for (int64_t j = 0; j < n; j++) {
        const uint16_t *r = w + j * ldw;
        __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        int64_t k = 0;
        for (; k + 64 <= K; k += 64) {
            a0 = _mm512_fmadd_ps(widen16(r + k), _mm512_loadu_ps(x + k), a0);
            a1 = _mm512_fmadd_ps(widen16(r + k + 16), _mm512_loadu_ps(x + k + 16), a1);
            a2 = _mm512_fmadd_ps(widen16(r + k + 32), _mm512_loadu_ps(x + k + 32), a2);
            a3 = _mm512_fmadd_ps(widen16(r + k + 48), _mm512_loadu_ps(x + k + 48), a3);
        }
        for (; k + 16 <= K; k += 16) a0 = _mm512_fmadd_ps(widen16(r + k), _mm512_loadu_ps(x + k), a0);
        float s = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
        for (; k < K; k++) s += hd_bf16_to_f32(r[k]) * x[k];
        y[j] = s;
    }
}
