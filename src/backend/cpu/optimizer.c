/* Optimizer ops: the squared norm for gradient clipping and the AdamW step.
 * sum_squares splits rows into a fixed number of chunks (by shape and thread count) and adds the
 * double partials in chunk order, so its result does not depend on thread scheduling. */
#include "backend/cpu/kernels.h"

#define MAX_CHUNKS 64

typedef struct ssq_job {
    const hd_tensor *x;
    const hd_cpu_train_rows *k;
    int64_t chunk;
    double part[MAX_CHUNKS];
} ssq_job;

static void ssq_chunk(void *ctx, int64_t t, int thread) {
    ssq_job *j = ctx;
    int64_t r0 = t * j->chunk, r1 = r0 + j->chunk < j->x->rows ? r0 + j->chunk : j->x->rows;
    double s = 0;
    for (int64_t r = r0; r < r1; r++)
        s += j->k->sum_squares(j->x->cols, (const float *)j->x->data + r * j->x->stride);
    j->part[t] = s;
}

double hd_cpu_sum_squares(hd_backend *be, const hd_tensor *x) {
    hd_cpu *cpu = hd_cpu_of(be);
    int64_t rows = x->rows;
    if (rows <= 0 || x->cols <= 0) return 0.0;
    int64_t n_chunks = cpu->n_threads == 1 || rows * x->cols < 32768 ? 1 : 4 * cpu->n_threads;
    if (n_chunks > MAX_CHUNKS) n_chunks = MAX_CHUNKS;
    if (n_chunks > rows) n_chunks = rows;
    ssq_job j = {.x = x, .k = &cpu->k->train, .chunk = (rows + n_chunks - 1) / n_chunks};
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
    const hd_cpu_train_rows *k;
} adamw_job;

static void adamw_rows(void *ctx, int64_t r0, int64_t r1, int thread) {
    adamw_job *j = ctx;
    for (int64_t r = r0; r < r1; r++)
        j->k->adamw(j->w->cols, (float *)j->w->data + r * j->w->stride,
                    (const float *)j->g->data + r * j->g->stride,
                    (float *)j->m->data + r * j->m->stride,
                    (float *)j->v->data + r * j->v->stride, j->p);
}

void hd_cpu_adamw(hd_backend *be, hd_tensor *w, const hd_tensor *g, hd_tensor *m, hd_tensor *v,
                  const hd_adamw_step *p) {
    adamw_job j = {w, m, v, g, p, &hd_cpu_of(be)->k->train};
    hd_cpu_for_rows(hd_cpu_of(be), w->rows, w->cols, adamw_rows, &j);
}
