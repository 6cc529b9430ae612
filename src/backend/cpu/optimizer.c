/* Optimizer ops: the squared norm for gradient clipping and the AdamW step.
 * sum_squares splits rows into a fixed number of chunks (by shape and thread count) and adds the
 * double partials in chunk order, so its result does not depend on thread scheduling. */
#include <math.h>

#include "backend/cpu/kernels.h"

#define MAX_CHUNKS 64

typedef struct ssq_job {
    const hd_tensor *x;
    int64_t chunk;
    double part[MAX_CHUNKS];
} ssq_job;

static void ssq_chunk(void *ctx, int64_t t, int thread) {
    ssq_job *j = ctx;
    int64_t r0 = t * j->chunk, r1 = r0 + j->chunk < j->x->rows ? r0 + j->chunk : j->x->rows;
    double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    for (int64_t r = r0; r < r1; r++) {
        const float *x = (const float *)j->x->data + r * j->x->stride;
        int64_t i = 0, n = j->x->cols;
        for (; i + 4 <= n; i += 4) {
            s0 += (double)x[i] * x[i];
            s1 += (double)x[i + 1] * x[i + 1];
            s2 += (double)x[i + 2] * x[i + 2];
            s3 += (double)x[i + 3] * x[i + 3];
        }
        for (; i < n; i++) s0 += (double)x[i] * x[i];
    }
    j->part[t] = (s0 + s1) + (s2 + s3);
}

double hd_cpu_sum_squares(hd_backend *be, const hd_tensor *x) {
    hd_cpu *cpu = hd_cpu_of(be);
    int64_t rows = x->rows;
    if (rows <= 0 || x->cols <= 0) return 0.0;
    int64_t n_chunks = cpu->n_threads == 1 || rows * x->cols < 32768 ? 1 : 4 * cpu->n_threads;
    if (n_chunks > MAX_CHUNKS) n_chunks = MAX_CHUNKS;
    if (n_chunks > rows) n_chunks = rows;
    ssq_job j = {.x = x, .chunk = (rows + n_chunks - 1) / n_chunks};
    n_chunks = (rows + j.chunk - 1) / j.chunk;
    if (n_chunks == 1) ssq_chunk(&j, 0, 0);
    else hd_pool_run(cpu->pool, n_chunks, ssq_chunk, &j);
    double s = 0;
    for (int64_t t = 0; t < n_chunks; t++) s += j.part[t];
    return s;
}

typedef struct adamw_job {
    hd_tensor *w, *m, *v;
    const hd_tensor *g;
    const hd_adamw_step *p;
} adamw_job;

static void adamw_rows(void *ctx, int64_t r0, int64_t r1, int thread) {
    adamw_job *j = ctx;
    const hd_adamw_step *p = j->p;
    const float b1 = p->beta1, b2 = p->beta2, ib1 = 1.0f - p->beta1, ib2 = 1.0f - p->beta2;
    const float inv_bc1 = 1.0f / p->bc1, inv_bc2 = 1.0f / p->bc2;
    for (int64_t r = r0; r < r1; r++) {
        float *w = (float *)j->w->data + r * j->w->stride;
        float *m = (float *)j->m->data + r * j->m->stride;
        float *v = (float *)j->v->data + r * j->v->stride;
        const float *g = (const float *)j->g->data + r * j->g->stride;
        for (int64_t i = 0; i < j->w->cols; i++) {
            float gi = g[i] * p->grad_scale;
            float mi = b1 * m[i] + ib1 * gi, vi = b2 * v[i] + ib2 * gi * gi;
            m[i] = mi;
            v[i] = vi;
            w[i] -= p->lr * ((mi * inv_bc1) / (sqrtf(vi * inv_bc2) + p->eps) +
                             p->weight_decay * w[i]);
        }
    }
}

void hd_cpu_adamw(hd_backend *be, hd_tensor *w, const hd_tensor *g, hd_tensor *m, hd_tensor *v,
                  const hd_adamw_step *p) {
    adamw_job j = {w, m, v, g, p};
    hd_cpu_for_rows(hd_cpu_of(be), w->rows, w->cols, adamw_rows, &j);
}
