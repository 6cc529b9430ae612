/* rmsnorm (grouped) and layernorm. Statistics are accumulated in double and rounded once, which
 * keeps them at float32 accuracy for any row length. y may alias x. */
#include <math.h>

#include "backend/cpu/kernels.h"

typedef struct norm_job {
    hd_cpu *cpu;
    hd_tensor *y;
    const hd_tensor *x, *w, *b;
    float eps;
} norm_job;

/* The weight row as float32: converted into the thread's scratch when it fits, else NULL. */
/* Σ x[i]² in double with four independent partial sums (a single chain is latency-bound). */
static double sum_sq(const float *x, int64_t n) {
    double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) {
        s0 += (double)x[i] * x[i];
        s1 += (double)x[i + 1] * x[i + 1];
        s2 += (double)x[i + 2] * x[i + 2];
        s3 += (double)x[i + 3] * x[i + 3];
    }
    for (; i < n; i++) s0 += (double)x[i] * x[i];
    return (s0 + s1) + (s2 + s3);
}

/* Σ x[i], four partial sums. */
static double sum(const float *x, int64_t n) {
    double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) {
        s0 += x[i];
        s1 += x[i + 1];
        s2 += x[i + 2];
        s3 += x[i + 3];
    }
    for (; i < n; i++) s0 += x[i];
    return (s0 + s1) + (s2 + s3);
}

static double sum_sq_dev(const float *x, int64_t n, double mean) {
    double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) {
        double d0 = x[i] - mean, d1 = x[i + 1] - mean, d2 = x[i + 2] - mean, d3 = x[i + 3] - mean;
        s0 += d0 * d0;
        s1 += d1 * d1;
        s2 += d2 * d2;
        s3 += d3 * d3;
    }
    for (; i < n; i++) s0 += (x[i] - mean) * (x[i] - mean);
    return (s0 + s1) + (s2 + s3);
}

static const float *weight_row(const hd_tensor *w, hd_cpu *cpu, int thread) {
    if (!w) return NULL;
    if (w->dtype == HD_F32) return w->data;
    if (w->cols > HD_CPU_SCRATCH_FLOATS) return NULL;
    float *buf = cpu->scratch[thread];
    hd_cpu_load_f32(w->dtype, w->data, 0, w->cols, buf);
    return buf;
}

static inline float weight_at(const hd_tensor *w, const float *conv, int64_t i) {
    if (conv) return conv[i];
    float f;
    hd_cpu_load_f32(w->dtype, w->data, i, 1, &f);
    return f;
}

static void rms_rows(void *ctx, int64_t r0, int64_t r1, int thread) {
    norm_job *j = ctx;
    int64_t g = j->w->cols, cols = j->x->cols;
    const float *wc = weight_row(j->w, j->cpu, thread);
    for (int64_t r = r0; r < r1; r++) {
        const float *x = (const float *)j->x->data + r * j->x->stride;
        float *y = (float *)j->y->data + r * j->y->stride;
        for (int64_t c0 = 0; c0 + g <= cols; c0 += g) {
            if (wc) {
                j->cpu->k->rows.rms(g, x + c0, wc, j->eps, y + c0);
                continue;
            }
            double ss = sum_sq(x + c0, g);
            float inv = (float)(1.0 / sqrt(ss / (double)g + (double)j->eps));
            for (int64_t i = 0; i < g; i++) y[c0 + i] = (x[c0 + i] * inv) * weight_at(j->w, wc, i);
        }
    }
}

void hd_cpu_rmsnorm(hd_backend *be, hd_tensor *y, const hd_tensor *x, const hd_tensor *w,
                    float eps) {
    if (w->cols <= 0) return;
    norm_job j = {hd_cpu_of(be), y, x, w, NULL, eps};
    hd_cpu_for_rows(j.cpu, x->rows, x->cols, rms_rows, &j);
}

static void ln_rows(void *ctx, int64_t r0, int64_t r1, int thread) {
    norm_job *j = ctx;
    int64_t cols = j->x->cols;
    const float *wc = NULL, *bc = NULL;
    /* w and b share the scratch: w in the first half, b in the second */
    if (j->w && j->w->dtype != HD_F32 && cols <= HD_CPU_SCRATCH_FLOATS / 2) {
        float *buf = j->cpu->scratch[thread];
        hd_cpu_load_f32(j->w->dtype, j->w->data, 0, cols, buf);
        wc = buf;
    } else if (j->w && j->w->dtype == HD_F32) {
        wc = j->w->data;
    }
    if (j->b && j->b->dtype != HD_F32 && cols <= HD_CPU_SCRATCH_FLOATS / 2) {
        float *buf = j->cpu->scratch[thread] + HD_CPU_SCRATCH_FLOATS / 2;
        hd_cpu_load_f32(j->b->dtype, j->b->data, 0, cols, buf);
        bc = buf;
    } else if (j->b && j->b->dtype == HD_F32) {
        bc = j->b->data;
    }
    for (int64_t r = r0; r < r1; r++) {
        const float *x = (const float *)j->x->data + r * j->x->stride;
        float *y = (float *)j->y->data + r * j->y->stride;
        double mean = sum(x, cols) / (double)cols, v = sum_sq_dev(x, cols, mean);
        float inv = (float)(1.0 / sqrt(v / (double)cols + (double)j->eps));
        float mf = (float)mean;
        for (int64_t i = 0; i < cols; i++) {
            float t = (x[i] - mf) * inv;
            if (j->w) t *= weight_at(j->w, wc, i);
            if (j->b) t += weight_at(j->b, bc, i);
            y[i] = t;
        }
    }
}

/* w or b may be NULL (no scale / no shift). */
void hd_cpu_layernorm(hd_backend *be, hd_tensor *y, const hd_tensor *x, const hd_tensor *w,
                      const hd_tensor *b, float eps) {
    if (x->cols <= 0) return;
    norm_job j = {hd_cpu_of(be), y, x, w, b, eps};
    hd_cpu_for_rows(j.cpu, x->rows, x->cols, ln_rows, &j);
}
