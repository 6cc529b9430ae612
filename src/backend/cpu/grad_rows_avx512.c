/* The training row kernels (grad_rows.h) for the AVX-512 tables: 16 lanes. */
#include <immintrin.h>

#define VW 16
#define VSQRT(v) ((vf)_mm512_sqrt_ps((__m512)(v)))
#define VEXP hd_vexp_avx512
#define ROWFN(name) name##_avx512
#include "backend/cpu/grad_rows.h"
