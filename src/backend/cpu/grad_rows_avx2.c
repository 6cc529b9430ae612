/* The training row kernels (grad_rows.h) for the AVX2 table: 8 lanes. */
#include <immintrin.h>

#define VW 8
#define VSQRT(v) ((vf)_mm256_sqrt_ps((__m256)(v)))
#define VEXP hd_vexp_avx2
#define ROWFN(name) name##_avx2
#include "backend/cpu/grad_rows.h"
