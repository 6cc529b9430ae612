#include "model/rope.h"

#include <math.h>
#include <stdlib.h>

#include "core/error.h"

int hd_rope_init(hd_rope *r, int head_dim, double theta, const int section[3], hd_error *e) {
    hd_rope zero = {0};
    *r = zero;
    if (head_dim <= 0 || head_dim % 2 != 0 || head_dim > 65536)
        return hd_fail(e, HD_EINVAL, "rope: head_dim %d must be even and positive", head_dim);
    if (!(theta > 0) || !isfinite(theta))
        return hd_fail(e, HD_EINVAL, "rope: rope_theta %g must be positive", theta);
    int half = head_dim / 2;
    if (section[0] < 0 || section[1] < 0 || section[2] < 0 ||
        (int64_t)section[0] + section[1] + section[2] != half)
        return hd_fail(e, HD_EINVAL, "rope: mrope_section [%d, %d, %d] must sum to head_dim/2 = %d",
                       section[0], section[1], section[2], half);
    r->inv_freq = malloc((size_t)half * sizeof *r->inv_freq);
    r->axis = malloc((size_t)half);
    if (!r->inv_freq || !r->axis) {
        hd_rope_free(r);
        return hd_fail(e, HD_ENOMEM, "rope: out of memory for %d slots", half);
    }
    r->head_dim = head_dim;
    /* PyTorch evaluates base ** (arange(0, h, 2).float() / h) in float32: the exponent is a
     * float32 division, the power is rounded once to float32, then 1.0 / power in float32. */
    float base = (float)theta;
    for (int j = 0; j < half; j++) {
        float ex = (float)(2 * j) / (float)head_dim;
        float p = (float)pow((double)base, (double)ex);
        r->inv_freq[j] = 1.0f / p;
        /* Interleaved assignment: height takes j ≡ 1 (mod 3) below 3·s_h, width j ≡ 2 (mod 3)
         * below 3·s_w, every other slot stays temporal. */
        uint8_t ax = HD_ROPE_AXIS_T;
        if (j % 3 == 1 && j < 3 * section[1]) ax = HD_ROPE_AXIS_H;
        else if (j % 3 == 2 && j < 3 * section[2]) ax = HD_ROPE_AXIS_W;
        r->axis[j] = ax;
    }
    return 0;
}

void hd_rope_free(hd_rope *r) {
    free(r->inv_freq);
    free(r->axis);
    hd_rope zero = {0};
    *r = zero;
}

void hd_rope_tables(const hd_rope *r, const int32_t *pos, int64_t seq_len, int64_t row0,
                    int64_t n, float *cos_out, float *sin_out) {
    int hd = r->head_dim, half = hd / 2;
    for (int64_t i = 0; i < n; i++) {
        int64_t s = row0 + i;
        float *c = cos_out + i * hd, *sn = sin_out + i * hd;
        for (int j = 0; j < half; j++) {
            float p = (float)pos[(int64_t)r->axis[j] * seq_len + s];
            float ang = r->inv_freq[j] * p;
            /* float32 cos/sin correctly rounded: the double result rounded once */
            float cv = (float)cos((double)ang), sv = (float)sin((double)ang);
            c[j] = c[j + half] = cv;
            sn[j] = sn[j + half] = sv;
        }
    }
}
