/* Shared by the AVX-512 GEMM micro-kernels (include only from *_avx512.c files). */
#ifndef HD_CPU_GEMM_STORE_AVX512_H
#define HD_CPU_GEMM_STORE_AVX512_H

#include <immintrin.h>

/* Writes one 32-wide accumulator row of C: the first K-slice stores acc (+ bias), later slices
 * add to what is there. m0/m1 mask the column tail. */
static inline void store_row(float *c, __m512 v0, __m512 v1, int first, const float *bias,
                             __mmask16 m0, __mmask16 m1) {
    if (first) {
        if (bias) {
            v0 = _mm512_add_ps(v0, _mm512_maskz_loadu_ps(m0, bias));
            v1 = _mm512_add_ps(v1, _mm512_maskz_loadu_ps(m1, bias + 16));
        }
    } else {
        v0 = _mm512_add_ps(v0, _mm512_maskz_loadu_ps(m0, c));
        v1 = _mm512_add_ps(v1, _mm512_maskz_loadu_ps(m1, c + 16));
    }
    _mm512_mask_storeu_ps(c, m0, v0);
    _mm512_mask_storeu_ps(c + 16, m1, v1);
}

#endif
