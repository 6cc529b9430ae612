/* Sources of the flash sampler's per-step N(0, 1) noise (spec 05 §7).
 *
 * The official code draws this noise on the GPU with PyTorch's CUDA Philox generator (default
 * generator seeded seed + 1). Which Philox element lands where depends on the GPU's multiprocessor
 * count, so those values cannot be reproduced off the reference GPU (PyTorch issue #143086): a
 * port can only match flash outputs "in distribution", or exactly when the recorded noise is
 * replayed. Hence two sources:
 *
 *   default  Our own reproducible generator: the CPU torch generator (MT19937, rng.h) seeded with
 *            seed + 1 — the same generator and seed the official initial noise comes from. The
 *            initial noise is its first randn(3·H·W) (bit-exact with upstream); the step noise
 *            *continues* from that state, one randn(n) per step in step order, so step noise
 *            never repeats the initial noise and a given seed always gives the same picture.
 *   replay   Hands out recorded arrays, one per step (golden checks inject `noise_i` /
 *            `step_noise_i` this way).
 *
 * A source is a callback with the signature of the public hd_noise_fn, so a caller's own
 * function plugs in directly. draw() fills out[0..n) for step `step` and returns 0 or a negative
 * HD_E* code (it has no error record; the scheduler reports the failure with the step). */
#ifndef HD_SAMPLE_NOISE_H
#define HD_SAMPLE_NOISE_H

#include <stddef.h>
#include <stdint.h>

#include "hidream.h"
#include "sample/rng.h"

typedef struct hd_noise_source {
    int (*draw)(void *ctx, int step, float *out, size_t n);
    void *ctx;
} hd_noise_source;

/* ---- default: torch CPU generator seeded seed + 1, continuing across steps --------------------- */

typedef struct hd_noise_default {
    hd_torch_gen gen;
    int next_step; /* steps must be drawn in order 0, 1, 2, ... for reproducibility */
} hd_noise_default;

/* Seeds the generator with seed + 1 (wrapping at 2^64, as the 64-bit torch seed does). */
void hd_noise_default_init(hd_noise_default *d, uint64_t seed);

/* Draws the initial noise: randn(n) from the freshly seeded generator, unscaled (the caller
 * multiplies by 8 or noise_scale_start). Must come before any step draw. */
int hd_noise_default_initial(hd_noise_default *d, float *out, size_t n, hd_error *e);

/* The source view of d (draw() returns HD_EINVAL if steps come out of order). */
hd_noise_source hd_noise_default_source(hd_noise_default *d);

/* ---- replay: recorded arrays ------------------------------------------------------------------- */

typedef struct hd_noise_replay {
    const float *const *steps; /* steps[i]: the noise of step i */
    const size_t *sizes;       /* element count of each */
    int n_steps;
} hd_noise_replay;

/* draw() copies steps[step]; HD_EINVAL for a step outside [0, n_steps), HD_EMISMATCH if the
 * recorded size differs from n. The arrays are borrowed and must outlive the source. */
hd_noise_source hd_noise_replay_source(hd_noise_replay *r);

#endif
