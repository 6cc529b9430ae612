/* Element-wise ops on float32 tensors (views allowed; y may alias an input).
 * The GELUs use cancellation-free forms: 0.5·(1 + tanh u) = 1/(1 + e^(-2u)) and
 * 1 + erf(z) = erfc(-z), so large negative inputs keep full relative accuracy. */
#include <math.h>

#include "backend/cpu/kernels.h"

typedef enum { OP_ADD, OP_SILU, OP_SILU_MUL, OP_GELU_TANH, OP_GELU_ERF } elt_op;

typedef struct elt_job {
    elt_op op;
    hd_tensor *y;
    const hd_tensor *a, *b;
    hd_vexp_fn vexp;
} elt_job;

static inline float gelu_erf(float x) { return 0.5f * x * erfcf(-x * 0.70710678118654752f); }

/* Rows are processed in blocks of ELT_BLOCK so the exponentials can go through the ISA's
 * vectorised exp (<= 2 ulp) in one call per block. */
#define ELT_BLOCK 256

static void elt_rows(void *ctx, int64_t r0, int64_t r1, int thread) {
    elt_job *j = ctx;
    int64_t n = j->y->cols;
    float t[ELT_BLOCK];
    for (int64_t r = r0; r < r1; r++) {
        float *y = (float *)j->y->data + r * j->y->stride;
        const float *a = (const float *)j->a->data + r * j->a->stride;
        const float *b = j->b ? (const float *)j->b->data + r * j->b->stride : NULL;
        for (int64_t c0 = 0; c0 < n; c0 += ELT_BLOCK) {
            int64_t m = n - c0 < ELT_BLOCK ? n - c0 : ELT_BLOCK;
            const float *ab = a + c0, *bb = b ? b + c0 : NULL;
            float *yb = y + c0;
            switch (j->op) {
            case OP_ADD:
                for (int64_t i = 0; i < m; i++) yb[i] = ab[i] + bb[i];
                break;
            case OP_SILU:
            case OP_SILU_MUL:
                for (int64_t i = 0; i < m; i++) t[i] = -ab[i];
                j->vexp(t, m);
                if (j->op == OP_SILU)
                    for (int64_t i = 0; i < m; i++) yb[i] = ab[i] / (1.0f + t[i]);
                else
                    for (int64_t i = 0; i < m; i++) yb[i] = ab[i] / (1.0f + t[i]) * bb[i];
                break;
            case OP_GELU_TANH:
                /* x·σ(2u) with u = sqrt(2/pi)·(x + 0.044715x³) */
                for (int64_t i = 0; i < m; i++)
                    t[i] = -2.0f * 0.7978845608028654f * (ab[i] + 0.044715f * ab[i] * ab[i] * ab[i]);
                j->vexp(t, m);
                for (int64_t i = 0; i < m; i++) yb[i] = ab[i] / (1.0f + t[i]);
                break;
            case OP_GELU_ERF:
                for (int64_t i = 0; i < m; i++) yb[i] = gelu_erf(ab[i]);
                break;
            }
        }
    }
}

static void run(hd_backend *be, elt_op op, hd_tensor *y, const hd_tensor *a, const hd_tensor *b) {
    elt_job j = {op, y, a, b, hd_cpu_of(be)->k->vexp};
    hd_cpu_for_rows(hd_cpu_of(be), y->rows, y->cols, elt_rows, &j);
}

void hd_cpu_add(hd_backend *be, hd_tensor *y, const hd_tensor *a, const hd_tensor *b) {
    run(be, OP_ADD, y, a, b);
}
void hd_cpu_silu(hd_backend *be, hd_tensor *y, const hd_tensor *x) {
    run(be, OP_SILU, y, x, NULL);
}
void hd_cpu_silu_mul(hd_backend *be, hd_tensor *y, const hd_tensor *gate, const hd_tensor *up) {
    run(be, OP_SILU_MUL, y, gate, up);
}
void hd_cpu_gelu_tanh(hd_backend *be, hd_tensor *y, const hd_tensor *x) {
    run(be, OP_GELU_TANH, y, x, NULL);
}
void hd_cpu_gelu_erf(hd_backend *be, hd_tensor *y, const hd_tensor *x) {
    run(be, OP_GELU_ERF, y, x, NULL);
}
