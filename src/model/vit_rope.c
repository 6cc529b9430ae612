/* 2-D rotary tables of the vision tower (spec 04 §5). */
#include <math.h>

#include "model/vit_internal.h"

void hd_vit_rope_inv_freq(float *inv_freq, int head_dim) {
    int quarter = head_dim / 4;
    float half = (float)(head_dim / 2);
    for (int k = 0; k < quarter; k++) {
        float expo = (float)(2 * k) / half;
        /* double pow rounded once = a correctly rounded float32 pow (PyTorch CPU) */
        float p = (float)pow(10000.0, (double)expo);
        inv_freq[k] = 1.0f / p;
    }
}

void hd_vit_rope_fill(const float *inv_freq, int head_dim, int64_t gh, int64_t gw, int merge,
                      float *cos_out, float *sin_out) {
    int quarter = head_dim / 4, half = head_dim / 2;
    for (int64_t i = 0; i < gh * gw; i++) {
        int64_t y, x;
        hd_vit_token_yx(i, gw, merge, &y, &x);
        float *c = cos_out + i * head_dim, *s = sin_out + i * head_dim;
        for (int k = 0; k < quarter; k++) {
            float ay = (float)y * inv_freq[k]; /* float32 product, as torch.outer */
            float ax = (float)x * inv_freq[k];
            c[k] = cosf(ay);
            s[k] = sinf(ay);
            c[quarter + k] = cosf(ax);
            s[quarter + k] = sinf(ax);
        }
        for (int d = 0; d < half; d++) {
            c[half + d] = c[d];
            s[half + d] = s[d];
        }
    }
}
