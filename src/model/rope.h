/* Interleaved 3-D rotary embedding of the Qwen3-VL decoder (MRoPE, spec 03 §5).
 *
 * A head of dimension h has h/2 frequency slots; each slot takes its angle from one of the three
 * position axes (temporal, height, width) by the interleaved rule of `mrope_section`. The tables
 * handed to the backend's rope op are [rows, h] float32 with θ[j] = θ[j + h/2]. */
#ifndef HD_MODEL_ROPE_H
#define HD_MODEL_ROPE_H

#include <stdint.h>

#include "hidream.h"

enum { HD_ROPE_AXIS_T = 0, HD_ROPE_AXIS_H = 1, HD_ROPE_AXIS_W = 2 };

typedef struct hd_rope {
    int head_dim;
    float *inv_freq; /* [head_dim/2] */
    uint8_t *axis;   /* [head_dim/2], HD_ROPE_AXIS_* of each slot */
} hd_rope;

/* head_dim even and > 0, theta > 0, section[0..2] >= 0 summing to head_dim/2.
 * inv_freq[j] = 1 / fl32(pow(fl32(theta), fl32(2j) / head_dim)) with a correctly rounded float32
 * pow (the double power rounded once) and a float32 reciprocal, as PyTorch computes it. */
int hd_rope_init(hd_rope *r, int head_dim, double theta, const int section[3], hd_error *e);
void hd_rope_free(hd_rope *r);

/* cos/sin tables [n, head_dim] for sequence rows row0 .. row0+n-1. pos holds the three axes
 * (temporal, height, width) of a sequence of seq_len rows: pos[axis * seq_len + row].
 * Angle = fl32(inv_freq[j] * float(p)); cos/sin are correctly rounded float32 values. */
void hd_rope_tables(const hd_rope *r, const int32_t *pos, int64_t seq_len, int64_t row0,
                    int64_t n, float *cos_out, float *sin_out);

#endif
