/* Vectors of VW float (vf) or double (vd) lanes for the row-kernel templates (grad_rows.h,
 * fwd_rows.h), which define VW and VEXP before including this file; loads and stores of the
 * last k < VW values of a row go through a zero-padded vector. */
#ifndef HD_BACKEND_CPU_VEC_LANES_H
#define HD_BACKEND_CPU_VEC_LANES_H

#include <stdint.h>
#include <string.h>

typedef float vf __attribute__((vector_size(VW * sizeof(float))));
typedef double vd __attribute__((vector_size(VW * sizeof(double))));

static inline vf vload_n(const float *p, int64_t k) {
    vf v = {0};
    if (k == VW) memcpy(&v, p, sizeof v);
    else memcpy(&v, p, (size_t)k * sizeof(float));
    return v;
}
static inline void vstore_n(float *p, vf v, int64_t k) {
    if (k == VW) memcpy(p, &v, sizeof v);
    else memcpy(p, &v, (size_t)k * sizeof(float));
}
static inline vf vsplat(float f) { return (vf){0} + f; }
/* by pointer: a vd wider than the ISA's registers must not be passed by value (psABI) */
static inline double vsum_d(const vd *v) {
    double s = 0;
    for (int i = 0; i < VW; i++) s += (*v)[i];
    return s;
}

#define VEXP_BLOCK 256 /* values per call of the vectorised exp (VEXP, the includer's) */

/* t[i] = e^(-x[i]) for i < n <= VEXP_BLOCK: the silu kernels' exponentials. */
static inline void vexp_neg(const float *x, float *t, int64_t n) {
    for (int64_t i = 0; i < n; i += VW) {
        int64_t k = n - i < VW ? n - i : VW;
        vstore_n(t + i, -vload_n(x + i, k), k);
    }
    VEXP(t, n);
}

#endif
