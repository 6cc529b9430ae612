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
    const hd_cpu_kernels *k;
} elt_job;

static inline float gelu_erf(float x) { return 0.5f * x * erfcf(-x * 0.70710678118654752f); }

/* The GELUs in blocks of ELT_BLOCK, so that the exponentials go through the ISA's vectorised
 * exp (<= 2 ulp) in one call per block; add and silu (·b) are the ISA's row kernels. */
#define ELT_BLOCK 256

static void elt_rows(void *ctx, int64_t r0, int64_t r1, int thread) {
    (void)thread;
    elt_job *j = ctx;
    int64_t n = j->y->cols;
    float t[ELT_BLOCK];
    for (int64_t r = r0; r < r1; r++) {
        float *y = (float *)j->y->data + r * j->y->stride;
        const float *a = (const float *)j->a->data + r * j->a->stride;
        const float *b = j->b ? (const float *)j->b->data + r * j->b->stride : NULL;
        if (j->op == OP_ADD) {
            j->k->rows.add(n, a, b, y);
            continue;
        }
        if (j->op == OP_SILU || j->op == OP_SILU_MUL) {
            j->k->rows.silu_mul(n, a, j->op == OP_SILU_MUL ? b : NULL, y);
            continue;
        }
        for (int64_t c0 = 0; c0 < n; c0 += ELT_BLOCK) {
            int64_t m = n - c0 < ELT_BLOCK ? n - c0 : ELT_BLOCK;
            const float *ab = a + c0;
            float *yb = y + c0;
            if (j->op == OP_GELU_TANH) {
                /* x·σ(2u) with u = sqrt(2/pi)·(x + 0.044715x³) */
                for (int64_t i = 0; i < m; i++)
                    t[i] = -2.0f * 0.7978845608028654f * (ab[i] + 0.044715f * ab[i] * ab[i] * ab[i]);
                j->k->vexp(t, m);
                for (int64_t i = 0; i < m; i++) yb[i] = ab[i] / (1.0f + t[i]);
            } else {
                for (int64_t i = 0; i < m; i++) yb[i] = gelu_erf(ab[i]);
            }
        }
    }
}

static void run(hd_backend *be, elt_op op, hd_tensor *y, const hd_tensor *a, const hd_tensor *b) {
    elt_job j = {op, y, a, b, hd_cpu_of(be)->k};
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
