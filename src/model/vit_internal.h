/* Host-side input preparation for the vision tower (spec 04 §2, §4, §5): the processor's token
 * order, the 2-D rotary tables and the interpolated learned position embedding. These are tables
 * computed from the image grids alone (like the decoder's rotary tables), uploaded with write();
 * the network itself runs on the backend (vit.c). */
#ifndef HD_MODEL_VIT_INTERNAL_H
#define HD_MODEL_VIT_INTERNAL_H

#include <stdint.h>

/* Patch row y and column x of token i of one image (gw patches wide, merge m): tokens are ordered
 * by (block row, block column, inner row, inner column) so each m×m block is m² consecutive rows. */
static inline void hd_vit_token_yx(int64_t i, int64_t gw, int m, int64_t *y, int64_t *x) {
    int64_t mm = (int64_t)m * m, block = i / mm, inner = i % mm, bw = gw / m;
    *y = (block / bw) * m + inner / m;
    *x = (block % bw) * m + inner % m;
}

/* inv_freq[k] = 1 / fl32(pow(10000, fl32(2k) / (head_dim/2))) for k < head_dim/4: the power
 * correctly rounded to float32, then a float32 reciprocal (spec 04 §5, 03 §5). */
void hd_vit_rope_inv_freq(float *inv_freq, int head_dim);

/* cos/sin rows [gh·gw, head_dim] for one image in token order: angles fl32(y·inv_freq[k]) for the
 * first head_dim/4 entries, fl32(x·inv_freq[k]) for the next, the whole half repeated ([a, a]). */
void hd_vit_rope_fill(const float *inv_freq, int head_dim, int64_t gh, int64_t gw, int merge,
                      float *cos_out, float *sin_out);

/* Position embedding rows [gh·gw, hidden] for one image in token order: bilinear interpolation of
 * the side×side table (row-major [side², hidden] float32) at PyTorch float32 linspace coordinates
 * with float32 weights, accumulated in double (spec 04 §4, without the bf16 roundings of the
 * bf16 reference since our activations are float32). */
void hd_vit_posembed_fill(const float *table, int side, int64_t hidden, int64_t gh, int64_t gw,
                          int merge, float *out);

#endif
