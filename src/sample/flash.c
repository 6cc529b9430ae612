/* The dev model's "flash" step (spec 05 §7): data prediction, then re-noise it to the next level
 *   den = fl32(x − fl32(mo·σ))
 *   z'  = fl32( fl32(fl32(σn·noise)·s_i) + fl32(fl32(1 − σn)·den) )
 * with noise ~ N(0,1) from the configured source, optionally clamped to ±c,
 * c = fl32(fl32(clip)·sd), sd = the unbiased standard deviation of the drawn noise as a float32.
 * At the last step σn = 0 and z' = den exactly (the noise is still drawn, as upstream). */
#include <math.h>

#include "core/error.h"
#include "sample/scheduler.h"

#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__) && !defined(__STRICT_ANSI__)
#pragma GCC optimize("fp-contract=off")
#endif

/* Unbiased (n − 1) standard deviation, accumulated in double and rounded once to float32 (as
 * PyTorch's CPU std of a float32 tensor). n >= 2. */
static float std_unbiased(const float *v, size_t n) {
    double sum = 0.0;
    for (size_t k = 0; k < n; k++) sum += v[k];
    double mean = sum / (double)n;
    double ss = 0.0;
    for (size_t k = 0; k < n; k++) {
        double d = (double)v[k] - mean;
        ss += d * d;
    }
    return (float)sqrt(ss / (double)(n - 1));
}

int hd_flash_step(hd_scheduler *s, int i, const float *mo, const float *x, float *next, size_t n,
                  hd_error *e) {
    if (!s->have_flash)
        return hd_fail(e, HD_EINVAL, "flash scheduler: step %d: no flash parameters set", i);
    const hd_flash_params *p = &s->flash;
    float *noise = s->noise;
    int rc = p->noise.draw(p->noise.ctx, i, noise, n);
    if (rc < 0)
        return hd_fail(e, rc, "flash scheduler: step %d: the noise source failed to give %zu values"
                       " (%s)", i, n, hd_status_name(rc));
    if (p->noise_clip_std > 0) {
        if (n < 2)
            return hd_fail(e, HD_EINVAL,
                           "flash scheduler: step %d: noise clipping needs at least 2 elements", i);
        const float c = (float)p->noise_clip_std * std_unbiased(noise, n);
        for (size_t k = 0; k < n; k++) {
            float v = noise[k];
            if (v < -c) v = -c;
            if (v > c) v = c;
            noise[k] = v;
        }
    }
    const float sigma = s->sigmas[i], sigma_next = s->sigmas[i + 1];
    const float s_i = (float)hd_flash_noise_scale(i, s->n_steps, p->noise_scale_start,
                                                  p->noise_scale_end);
    const float keep = 1.0f - sigma_next;
    for (size_t k = 0; k < n; k++) {
        float den = x[k] - mo[k] * sigma;
        next[k] = (sigma_next * noise[k]) * s_i + keep * den;
    }
    return 0;
}
