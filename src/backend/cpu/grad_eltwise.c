/* Element-wise backward ops: silu and silu·up (the SwiGLU MLP), and axpby.
 * With s = σ(x) = 1/(1 + e^(−x)): silu(x) = x·s, silu'(x) = s·(1 + x·(1 − s)).
 * Every element is read completely before its outputs are written, so outputs may alias dy.
 * The row kernels are in grad_rows.h. */
#include "backend/cpu/kernels.h"

typedef struct gelt_job {
    hd_tensor *o1, *o2;           /* dgate/dx, dup (NULL for silu_backward) */
    const hd_tensor *dy, *x, *up; /* up NULL for silu_backward */
    const hd_cpu_train_rows *k;
} gelt_job;

static void silu_grad_rows(void *ctx, int64_t r0, int64_t r1, int thread) {
    gelt_job *j = ctx;
    for (int64_t r = r0; r < r1; r++)
        j->k->silu_grad(j->x->cols, (const float *)j->dy->data + r * j->dy->stride,
                        (const float *)j->x->data + r * j->x->stride,
                        j->up ? (const float *)j->up->data + r * j->up->stride : NULL,
                        (float *)j->o1->data + r * j->o1->stride,
                        j->o2 ? (float *)j->o2->data + r * j->o2->stride : NULL);
}

void hd_cpu_silu_mul_backward(hd_backend *be, hd_tensor *dgate, hd_tensor *dup,
                              const hd_tensor *dy, const hd_tensor *gate, const hd_tensor *up) {
    gelt_job j = {dgate, dup, dy, gate, up, &hd_cpu_of(be)->k->train};
    hd_cpu_for_rows(hd_cpu_of(be), gate->rows, gate->cols, silu_grad_rows, &j);
}

void hd_cpu_silu_backward(hd_backend *be, hd_tensor *dx, const hd_tensor *dy, const hd_tensor *x) {
    gelt_job j = {dx, NULL, dy, x, NULL, &hd_cpu_of(be)->k->train};
    hd_cpu_for_rows(hd_cpu_of(be), x->rows, x->cols, silu_grad_rows, &j);
}

typedef struct axpby_job {
    hd_tensor *y;
    const hd_tensor *x;
    float a, b;
    const hd_cpu_train_rows *k;
} axpby_job;

static void axpby_rows(void *ctx, int64_t r0, int64_t r1, int thread) {
    axpby_job *j = ctx;
    for (int64_t r = r0; r < r1; r++)
        j->k->axpby(j->y->cols, j->a, (const float *)j->x->data + r * j->x->stride, j->b,
                    (float *)j->y->data + r * j->y->stride);
}

void hd_cpu_axpby(hd_backend *be, hd_tensor *y, float a, const hd_tensor *x, float b) {
    axpby_job j = {y, x, a, b, &hd_cpu_of(be)->k->train};
    hd_cpu_for_rows(hd_cpu_of(be), y->rows, y->cols, axpby_rows, &j);
}
