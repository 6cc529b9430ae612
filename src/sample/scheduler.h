/* The three samplers of HiDream-O1-Image (spec 05 §3-§7), pure C, float32 as upstream.
 *
 *   HD_SCHEDULER_UNIPC       FlowUniPC multistep, bh2, order 2 with corrector, lower order at the
 *                            end, data prediction, float32 history (full model)
 *   HD_SCHEDULER_FLOW_MATCH  diffusers flow-match Euler (dev editing)
 *   HD_SCHEDULER_FLASH       the dev "flash" stochastic Euler: re-noises the data prediction to the
 *                            next level with fresh N(0,1) noise (optionally clipped) times s_i
 *
 * Use: hd_scheduler_init (+ hd_scheduler_set_flash for flash), then for i = 0 .. n_steps-1 run the
 * model at timesteps[i] (model time hd_sched_model_time, velocity divisor hd_sched_velocity_sigma),
 * pass model_output = −v and the current sample to hd_scheduler_step, which writes the next
 * sample; finally hd_scheduler_free. Steps must come in order. The scheduler owns its tables and
 * history buffers; the caller owns sample/model_output/next (next may be the sample buffer).
 *
 * Timesteps: explicit list (any kind; σ[i] = fl32(τ[i]/1000), σ[N] = 0, spec 05 §3.2) or NULL:
 * UniPC computes its own (§3.1: shift applied twice, τ truncated); flow-match and flash use the
 * dev model's 28 DEFAULT_TIMESTEPS (n_steps must then be 28). */
#ifndef HD_SAMPLE_SCHEDULER_H
#define HD_SAMPLE_SCHEDULER_H

#include <stddef.h>

#include "hidream.h"
#include "sample/noise.h"

#define HD_DEFAULT_TIMESTEPS_COUNT 28
/* The dev model's fixed list (upstream DEFAULT_TIMESTEPS). */
extern const int hd_default_timesteps[HD_DEFAULT_TIMESTEPS_COUNT];

/* ---- tables (schedule.c) ----------------------------------------------------------------------- */

/* FlowUniPC set_timesteps(n_steps) with `shift`: timesteps[n_steps], sigmas[n_steps + 1]. */
int hd_unipc_schedule(int n_steps, double shift, int *timesteps, float *sigmas, hd_error *e);

/* A fixed list: timesteps = list, sigmas[i] = fl32(list[i]/1000), sigmas[n_steps] = 0.
 * Values must lie in [0, 1000]. */
int hd_fixed_schedule(const int *list, int n_steps, int *timesteps, float *sigmas, hd_error *e);

/* Flash per-step noise scale s_i = start + (end − start)·i/(n_steps − 1) (start if n_steps = 1). */
double hd_flash_noise_scale(int i, int n_steps, double start, double end);

/* The model's time input t = fl32(1 − fl32(τ/1000)) and the velocity divisor
 * σp = max(fl32(τ/1000), 0.001) the pipeline uses for v = (x̂ − z)/σp (spec 05 §4). */
float hd_sched_model_time(int timestep);
float hd_sched_velocity_sigma(int timestep);

/* ---- the scheduler object ---------------------------------------------------------------------- */

typedef struct hd_flash_params {
    double noise_scale_start, noise_scale_end; /* s_i, linear over the steps */
    double noise_clip_std;                     /* > 0: clamp noise to ±fl32(clip·std(noise)) */
    hd_noise_source noise;                     /* per-step N(0,1) noise (noise.h) */
} hd_flash_params;

typedef struct hd_scheduler {
    hd_scheduler_kind kind;
    int n_steps;
    double shift;      /* UniPC only (tables are computed with it) */
    int *timesteps;    /* [n_steps] */
    float *sigmas;     /* [n_steps + 1], sigmas[n_steps] = 0 */
    int next_step;     /* the step hd_scheduler_step expects next */
    size_t n;          /* elements per sample, fixed by the first step (0 before) */
    /* UniPC: λ(σ) per σ, the last two data predictions and the last corrected sample (float32) */
    float *lambdas;    /* [n_steps + 1] */
    float *m_old, *m_new, *x_last;
    int lower_order, prev_order;
    /* flash */
    int have_flash;
    hd_flash_params flash;
    float *noise;      /* [n] the step's drawn noise */
} hd_scheduler;

/* kind: UNIPC, FLOW_MATCH or FLASH (AUTO is the caller's business). shift: UniPC's σ shift (> 0),
 * ignored by the others. timesteps: n_steps explicit values, or NULL (see above). */
int hd_scheduler_init(hd_scheduler *s, hd_scheduler_kind kind, int n_steps, double shift,
                      const int *timesteps, hd_error *e);

/* Flash configuration; required before the first flash step. */
int hd_scheduler_set_flash(hd_scheduler *s, const hd_flash_params *p, hd_error *e);

/* Step i (must equal s->next_step): from `sample` and model_output = −v, writes the next sample
 * to `next` (n floats each; next may alias sample). */
int hd_scheduler_step(hd_scheduler *s, int i, const float *model_output, const float *sample,
                      float *next, size_t n, hd_error *e);

/* Frees what the scheduler owns; leaves *s zeroed (safe to call twice or after a failed init). */
void hd_scheduler_free(hd_scheduler *s);

/* ---- per-kind steps (unipc.c, euler.c, flash.c); hd_scheduler_step validates and dispatches ---- */
void hd_unipc_step(hd_scheduler *s, int i, const float *mo, const float *x, float *next, size_t n);
void hd_euler_step(const hd_scheduler *s, int i, const float *mo, const float *x, float *next,
                   size_t n);
int hd_flash_step(hd_scheduler *s, int i, const float *mo, const float *x, float *next, size_t n,
                  hd_error *e);

/* Correctly rounded float32 log (λ tables use it; exposed for tests). */
float hd_unipc_lambda(float sigma);

#endif
