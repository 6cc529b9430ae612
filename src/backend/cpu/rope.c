/* rope: rotate-half rotary embedding in place, tables [S, head_dim] float32. */
#include "backend/cpu/kernels.h"

typedef struct rope_job {
    hd_tensor *x;
    const hd_tensor *cos, *sin;
    int hd;
} rope_job;

static void rope_rows(void *ctx, int64_t r0, int64_t r1, int thread) {
    rope_job *j = ctx;
    int half = j->hd / 2;
    int64_t n_heads = j->x->cols / j->hd;
    for (int64_t r = r0; r < r1; r++) {
        float *x = (float *)j->x->data + r * j->x->stride;
        const float *c = (const float *)j->cos->data + r * j->cos->stride;
        const float *s = (const float *)j->sin->data + r * j->sin->stride;
        for (int64_t h = 0; h < n_heads; h++) {
            float *xh = x + h * j->hd;
            for (int d = 0; d < half; d++) {
                float a = xh[d], b = xh[d + half];
                xh[d] = a * c[d] - b * s[d];
                xh[d + half] = b * c[d] + a * s[d];
            }
        }
    }
}

void hd_cpu_rope(hd_backend *be, hd_tensor *x, const hd_tensor *cos, const hd_tensor *sin,
                 int head_dim) {
    if (head_dim < 2) return;
    rope_job j = {x, cos, sin, head_dim};
    hd_cpu_for_rows(hd_cpu_of(be), x->rows, x->cols, rope_rows, &j);
}
