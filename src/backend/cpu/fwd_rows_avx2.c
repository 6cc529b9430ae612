/* The forward row kernels (fwd_rows.h) for the AVX2 table: 8 lanes. */
#define VW 8
#define VEXP hd_vexp_avx2
#define ROWFN(name) name##_avx2
#include "backend/cpu/fwd_rows.h"
