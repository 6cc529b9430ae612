/* The forward row kernels (fwd_rows.h) for the AVX-512 tables: 16 lanes. */
#define VW 16
#define VEXP hd_vexp_avx512
#define ROWFN(name) name##_avx512
#include "backend/cpu/fwd_rows.h"
