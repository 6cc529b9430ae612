/* The training row kernels (grad_rows.h) for the portable table: one lane. */
#include <math.h>

#define VW 1
#define VSQRT(v) ((vf){sqrtf((v)[0])})
#define VEXP hd_vexp_scalar
#define ROWFN(name) name##_scalar
#include "backend/cpu/grad_rows.h"
