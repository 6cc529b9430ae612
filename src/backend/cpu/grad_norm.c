/* Backward of the grouped RMSNorm y = x·r·w, r = (mean_g(x²) + eps)^(-1/2), per group of g:
 *   dx_i = r·w_i·dy_i − x_i·r³/g · Σ_j w_j·dy_j·x_j        dw_i += Σ_groups dy_i·x_i·r
 * The forward's statistics are recomputed (grad_rows.h). dw is reduced
 * deterministically: rows are split into a fixed number of chunks (by shape and thread count),
 * each chunk writes its own partial and the partials are summed in chunk order. dw may be NULL
 * (a frozen weight). */
#include <math.h>

#include "backend/cpu/kernels.h"

/* Partials of at most this many chunks live in thread 0's scratch (first half); the other half
 * of each thread's scratch holds the weight converted to float32. */
#define MAX_CHUNKS 64

typedef struct rmsb_job {
    hd_cpu *cpu;
    hd_tensor *dx;
    const hd_tensor *dy, *x, *w;
    float eps;
    int accumulate;
    int64_t chunk;    /* rows per chunk */
    float *partials;  /* n_chunks × g */
} rmsb_job;

static void rmsb_chunk(void *ctx, int64_t t, int thread) {
    rmsb_job *j = ctx;
    int64_t g = j->w->cols, cols = j->x->cols;
    int64_t r0 = t * j->chunk, r1 = r0 + j->chunk < j->x->rows ? r0 + j->chunk : j->x->rows;
    const float *w = j->w->data;
    if (j->w->dtype != HD_F32) {
        float *buf = j->cpu->scratch[thread] + HD_CPU_SCRATCH_FLOATS / 2;
        hd_cpu_load_f32(j->w->dtype, j->w->data, 0, g, buf);
        w = buf;
    }
    float *dw = j->partials + t * g;
    for (int64_t i = 0; i < g; i++) dw[i] = 0.0f;
    for (int64_t r = r0; r < r1; r++) {
        const float *x = (const float *)j->x->data + r * j->x->stride;
        const float *dy = (const float *)j->dy->data + r * j->dy->stride;
        float *dx = (float *)j->dx->data + r * j->dx->stride;
        for (int64_t c0 = 0; c0 + g <= cols; c0 += g)
            j->cpu->k->train.rms_grad(g, x + c0, dy + c0, w, j->eps, j->accumulate, dx + c0, dw);
    }
}

void hd_cpu_rmsnorm_backward(hd_backend *be, hd_tensor *dx, hd_tensor *dw, const hd_tensor *dy,
                             const hd_tensor *x, const hd_tensor *w, float eps, int accumulate) {
    hd_cpu *cpu = hd_cpu_of(be);
    int64_t g = w->cols, rows = x->rows;
    if (g <= 0 || rows <= 0) return;
    if (g > HD_CPU_SCRATCH_FLOATS / 2) { /* a group too long for the scratch: poison dx */
        for (int64_t r = 0; r < rows; r++)
            for (int64_t c = 0; c < dx->cols; c++) ((float *)dx->data)[r * dx->stride + c] = NAN;
        return;
    }
    int64_t n_chunks = cpu->n_threads == 1 || rows * x->cols < 32768 ? 1 : 4 * cpu->n_threads;
    if (n_chunks > MAX_CHUNKS) n_chunks = MAX_CHUNKS;
    while (n_chunks > 1 && n_chunks * g > HD_CPU_SCRATCH_FLOATS / 2) n_chunks /= 2;
    if (n_chunks > rows) n_chunks = rows;
    rmsb_job j = {cpu, dx, dy, x, w, eps, accumulate, (rows + n_chunks - 1) / n_chunks,
                  cpu->scratch[0]};
    n_chunks = (rows + j.chunk - 1) / j.chunk;
    if (n_chunks == 1) rmsb_chunk(&j, 0, 0);
    else hd_pool_run(cpu->pool, n_chunks, rmsb_chunk, &j);
    float *dwp = dw ? dw->data : NULL;
    for (int64_t i = 0; dwp && i < g; i++) {
        float s = 0.0f;
        for (int64_t t = 0; t < n_chunks; t++) s += j.partials[t * g + i];
        dwp[i] += s;
    }
}
