/* Element-wise backward ops: silu and silu·up (the SwiGLU MLP), and axpby.
 * With s = σ(x) = 1/(1 + e^(−x)): silu(x) = x·s, silu'(x) = s·(1 + x·(1 − s)).
 * Every element is read completely before its outputs are written, so outputs may alias dy. */
#include "backend/cpu/kernels.h"

#define BLOCK 256 /* elements per call of the ISA's vectorised exp */

typedef struct gelt_job {
    hd_tensor *o1, *o2;           /* dgate/dx, dup (NULL for silu_backward) */
    const hd_tensor *dy, *x, *up; /* up NULL for silu_backward */
    hd_vexp_fn vexp;
} gelt_job;

static void silu_grad_rows(void *ctx, int64_t r0, int64_t r1, int thread) {
    gelt_job *j = ctx;
    int64_t n = j->x->cols;
    float t[BLOCK];
    for (int64_t r = r0; r < r1; r++) {
        const float *dy = (const float *)j->dy->data + r * j->dy->stride;
        const float *x = (const float *)j->x->data + r * j->x->stride;
        const float *up = j->up ? (const float *)j->up->data + r * j->up->stride : NULL;
        float *o1 = (float *)j->o1->data + r * j->o1->stride;
        float *o2 = j->o2 ? (float *)j->o2->data + r * j->o2->stride : NULL;
        for (int64_t c0 = 0; c0 < n; c0 += BLOCK) {
            int64_t m = n - c0 < BLOCK ? n - c0 : BLOCK;
            for (int64_t i = 0; i < m; i++) t[i] = -x[c0 + i];
            j->vexp(t, m);
            for (int64_t i = 0; i < m; i++) {
                float xi = x[c0 + i], d = dy[c0 + i];
                float s = 1.0f / (1.0f + t[i]);
                float ds = s * (1.0f + xi * (1.0f - s));
                if (up) {
                    float u = up[c0 + i];
                    o2[c0 + i] = d * xi * s;
                    o1[c0 + i] = d * u * ds;
                } else {
                    o1[c0 + i] = d * ds;
                }
            }
        }
    }
}

void hd_cpu_silu_mul_backward(hd_backend *be, hd_tensor *dgate, hd_tensor *dup,
                              const hd_tensor *dy, const hd_tensor *gate, const hd_tensor *up) {
    gelt_job j = {dgate, dup, dy, gate, up, hd_cpu_of(be)->k->vexp};
    hd_cpu_for_rows(hd_cpu_of(be), gate->rows, gate->cols, silu_grad_rows, &j);
}

void hd_cpu_silu_backward(hd_backend *be, hd_tensor *dx, const hd_tensor *dy, const hd_tensor *x) {
    gelt_job j = {dx, NULL, dy, x, NULL, hd_cpu_of(be)->k->vexp};
    hd_cpu_for_rows(hd_cpu_of(be), x->rows, x->cols, silu_grad_rows, &j);
}

typedef struct axpby_job {
    hd_tensor *y;
    const hd_tensor *x;
    float a, b;
} axpby_job;

static void axpby_rows(void *ctx, int64_t r0, int64_t r1, int thread) {
    axpby_job *j = ctx;
    for (int64_t r = r0; r < r1; r++) {
        float *y = (float *)j->y->data + r * j->y->stride;
        const float *x = (const float *)j->x->data + r * j->x->stride;
        for (int64_t i = 0; i < j->y->cols; i++) y[i] = j->a * x[i] + j->b * y[i];
    }
}

void hd_cpu_axpby(hd_backend *be, hd_tensor *y, float a, const hd_tensor *x, float b) {
    axpby_job j = {y, x, a, b};
    hd_cpu_for_rows(hd_cpu_of(be), y->rows, y->cols, axpby_rows, &j);
}
