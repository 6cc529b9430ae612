/* AVX2 packer for the gradient GEMMs (grad_linear.c): an A panel from a k-major source
 * (A(i,k) = a[k·lda + i], i.e. dyᵀ for dW), in the A order of gemm_avx2.c (blocks of 8 k, the 6
 * rows one after the other): 8 source rows of up to 6 floats are transposed at once. */
#include <immintrin.h>

#include "backend/cpu/kernels.h"
#include "backend/cpu/transpose_avx2.h"

#define MR 6
#define KU 8

void hd_gemm_pack_at_avx2(const float *a, int64_t lda, int mr, int64_t kc, float *ap) {
    const __m256i m = _mm256_cmpgt_epi32(_mm256_set1_epi32(mr),
                                         _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    for (int64_t k0 = 0; k0 < kc; k0 += KU) {
        __m256 r[8];
        for (int kk = 0; kk < 8; kk++)
            r[kk] = k0 + kk < kc ? _mm256_maskload_ps(a + (k0 + kk) * lda, m)
                                 : _mm256_setzero_ps();
        transpose8(r); /* r[i] = A(i, k0 .. k0+7) */
        for (int i = 0; i < MR; i++) _mm256_store_ps(ap + i * KU, r[i]);
        ap += MR * KU;
    }
}
