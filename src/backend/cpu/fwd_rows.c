/* The forward row kernels (fwd_rows.h) for the portable table: one lane. */
#define VW 1
#define VEXP hd_vexp_scalar
#define ROWFN(name) name##_scalar
#include "backend/cpu/fwd_rows.h"
