/* AVX-512 packer for the gradient GEMMs (grad_linear.c): an A panel from a k-major source
 * (A(i,k) = a[k·lda + i], i.e. dyᵀ for dW), in the A order of gemm_avx512.c (blocks of 16 k,
 * the 14 rows one after the other): 16 source rows of up to 14 floats are transposed at once. */
#include <immintrin.h>

#include "backend/cpu/kernels.h"
#include "backend/cpu/transpose_avx512.h"

#define MR 14
#define KU 16

void hd_gemm_pack_at_avx512(const float *a, int64_t lda, int mr, int64_t kc, float *ap) {
    const __mmask16 m = (__mmask16)((1u << mr) - 1u);
    for (int64_t k0 = 0; k0 < kc; k0 += KU) {
        __m512 r[16];
        for (int kk = 0; kk < 16; kk++)
            r[kk] = k0 + kk < kc ? _mm512_maskz_loadu_ps(m, a + (k0 + kk) * lda)
                                 : _mm512_setzero_ps();
        transpose16(r); /* r[i] = A(i, k0 .. k0+15) */
        for (int i = 0; i < MR; i++) _mm512_store_ps(ap + i * KU, r[i]);
        ap += MR * KU;
    }
}
