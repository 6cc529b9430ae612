/* Learned position embedding of the vision tower: bilinear interpolation of the side×side table
 * onto an image's patch grid (spec 04 §4). */
#include "model/vit_internal.h"

/* Element i of PyTorch's float32 linspace(0, end, steps): the symmetric formula (the first half
 * counts up from 0, the second half down from end), which is what the reference's indices and
 * weights were computed from. */
static float linspace_at(int64_t i, int64_t steps, float end) {
    if (steps == 1) return 0.0f;
    float step = end / (float)(steps - 1);
    if (i < steps / 2) return step * (float)i;
    float back = step * (float)(steps - 1 - i); /* rounded before the subtraction: no FMA */
    return end - back;
}

/* Integer cell below, cell above (clamped to the table) and the float32 fraction. */
static void interp_coord(int64_t i, int64_t steps, int side, int *lo, int *hi, float *frac) {
    float c = linspace_at(i, steps, (float)(side - 1));
    int f = (int)c; /* c >= 0: truncation is floor */
    *lo = f;
    *hi = f + 1 < side ? f + 1 : side - 1;
    *frac = c - (float)f;
}

void hd_vit_posembed_fill(const float *table, int side, int64_t hidden, int64_t gh, int64_t gw,
                          int merge, float *out) {
    for (int64_t i = 0; i < gh * gw; i++) {
        int64_t y, x;
        hd_vit_token_yx(i, gw, merge, &y, &x);
        int fh, ch, fw, cw;
        float dh, dw;
        interp_coord(y, gh, side, &fh, &ch, &dh);
        interp_coord(x, gw, side, &fw, &cw, &dw);
        /* float32 weights as the reference computes them, then widened */
        double w00 = (double)((1.0f - dh) * (1.0f - dw));
        double w01 = (double)((1.0f - dh) * dw);
        double w10 = (double)(dh * (1.0f - dw));
        double w11 = (double)(dh * dw);
        const float *p00 = table + ((int64_t)fh * side + fw) * hidden;
        const float *p01 = table + ((int64_t)fh * side + cw) * hidden;
        const float *p10 = table + ((int64_t)ch * side + fw) * hidden;
        const float *p11 = table + ((int64_t)ch * side + cw) * hidden;
        float *o = out + i * hidden;
        for (int64_t c = 0; c < hidden; c++) {
            double v = (double)p00[c] * w00 + (double)p01[c] * w01;
            v += (double)p10[c] * w10;
            v += (double)p11[c] * w11;
            o[c] = (float)v;
        }
    }
}
