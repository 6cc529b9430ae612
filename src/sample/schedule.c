/* Timestep / σ tables (spec 05 §3) and the scheduler object that dispatches to the three steps. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "sample/scheduler.h"

/* The tables mix float32 and double rounding points exactly as upstream; no contraction. */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__) && !defined(__STRICT_ANSI__)
#pragma GCC optimize("fp-contract=off")
#endif

const int hd_default_timesteps[HD_DEFAULT_TIMESTEPS_COUNT] = {
    999, 987, 974, 960, 945, 929, 913, 895, 877, 857, 836, 814, 790, 764,
    737, 707, 675, 640, 602, 560, 515, 464, 409, 347, 278, 199, 110, 8,
};

#define TRAIN_STEPS 1000

static int check_steps(int n_steps, hd_error *e) {
    if (n_steps < 1 || n_steps > HD_MAX_TIMESTEPS)
        return hd_fail(e, HD_EINVAL, "scheduler: steps %d out of range [1, %d]", n_steps,
                       HD_MAX_TIMESTEPS);
    return 0;
}

int hd_unipc_schedule(int n_steps, double shift, int *timesteps, float *sigmas, hd_error *e) {
    HD_TRY(check_steps(n_steps, e));
    if (!(shift > 0.0) || !isfinite(shift))
        return hd_fail(e, HD_EINVAL, "scheduler: shift %g must be a positive finite number",
                       shift);
    /* Constructor: the training σ table is shifted in float32 (tensor ops with the Python scalar
     * cast to float32). Only its first entry, σ_max (base 1 − 0.001), is used later; σ_min = 0. */
    float base0 = (float)(1.0 - 1.0 / TRAIN_STEPS);
    float s32 = (float)shift, sm1_32 = (float)(shift - 1.0);
    float sigma_max32 = (s32 * base0) / (1.0f + sm1_32 * base0);
    double sigma_max = (double)sigma_max32;

    /* set_timesteps: numpy linspace(σ_max, 0, N + 1)[:-1] = i·step + σ_max, then the shift again
     * in double (upstream applies it twice), τ = trunc(1000·σ). */
    double step = (0.0 - sigma_max) / (double)n_steps;
    for (int i = 0; i < n_steps; i++) {
        double sp = (double)i * step + sigma_max;
        double sg = shift * sp / (1.0 + (shift - 1.0) * sp);
        double t = sg * (double)TRAIN_STEPS;
        if (!(t >= 0.0 && t < 2.0 * TRAIN_STEPS))
            return hd_fail(e, HD_EINVAL, "scheduler: shift %g gives σ %g at step %d", shift, sg, i);
        timesteps[i] = (int)t; /* truncation toward zero, as .to(int64) */
        sigmas[i] = (float)sg;
    }
    sigmas[n_steps] = 0.0f;
    return 0;
}

int hd_fixed_schedule(const int *list, int n_steps, int *timesteps, float *sigmas, hd_error *e) {
    HD_TRY(check_steps(n_steps, e));
    for (int i = 0; i < n_steps; i++) {
        if (list[i] < 0 || list[i] > TRAIN_STEPS)
            return hd_fail(e, HD_EINVAL, "scheduler: timesteps[%d] = %d outside [0, %d]", i,
                           list[i], TRAIN_STEPS);
        timesteps[i] = list[i];
        sigmas[i] = (float)list[i] / 1000.0f; /* the correctly rounded fl32(τ/1000) */
    }
    sigmas[n_steps] = 0.0f;
    return 0;
}

double hd_flash_noise_scale(int i, int n_steps, double start, double end) {
    if (n_steps <= 1) return start;
    return start + (end - start) * (double)i / (double)(n_steps - 1);
}

float hd_sched_model_time(int timestep) {
    return 1.0f - (float)timestep / 1000.0f;
}

float hd_sched_velocity_sigma(int timestep) {
    float s = (float)timestep / 1000.0f;
    return s > 0.001f ? s : 0.001f;
}

/* ---- the scheduler object ---------------------------------------------------------------------- */

void hd_scheduler_free(hd_scheduler *s) {
    free(s->timesteps);
    free(s->sigmas);
    free(s->lambdas);
    free(s->m_old);
    free(s->m_new);
    free(s->x_last);
    free(s->noise);
    memset(s, 0, sizeof *s);
}

int hd_scheduler_init(hd_scheduler *s, hd_scheduler_kind kind, int n_steps, double shift,
                      const int *timesteps, hd_error *e) {
    memset(s, 0, sizeof *s);
    if (kind != HD_SCHEDULER_UNIPC && kind != HD_SCHEDULER_FLOW_MATCH &&
        kind != HD_SCHEDULER_FLASH)
        return hd_fail(e, HD_EINVAL, "scheduler: unknown kind %d", (int)kind);
    HD_TRY(check_steps(n_steps, e));
    if (!timesteps && kind != HD_SCHEDULER_UNIPC) {
        if (n_steps != HD_DEFAULT_TIMESTEPS_COUNT)
            return hd_fail(e, HD_EINVAL,
                           "scheduler: flow-match/flash without a timestep list use the %d default "
                           "timesteps, but %d steps were asked",
                           HD_DEFAULT_TIMESTEPS_COUNT, n_steps);
        timesteps = hd_default_timesteps;
    }
    s->kind = kind;
    s->n_steps = n_steps;
    s->shift = shift;
    s->timesteps = malloc((size_t)n_steps * sizeof *s->timesteps);
    s->sigmas = malloc(((size_t)n_steps + 1) * sizeof *s->sigmas);
    s->lambdas = malloc(((size_t)n_steps + 1) * sizeof *s->lambdas);
    if (!s->timesteps || !s->sigmas || !s->lambdas) {
        hd_scheduler_free(s);
        return hd_fail(e, HD_ENOMEM, "scheduler: out of memory for %d steps", n_steps);
    }
    int rc = timesteps ? hd_fixed_schedule(timesteps, n_steps, s->timesteps, s->sigmas, e)
                       : hd_unipc_schedule(n_steps, shift, s->timesteps, s->sigmas, e);
    if (rc < 0) {
        hd_scheduler_free(s);
        return rc;
    }
    for (int i = 0; i <= n_steps; i++) s->lambdas[i] = hd_unipc_lambda(s->sigmas[i]);
    return 0;
}

int hd_scheduler_set_flash(hd_scheduler *s, const hd_flash_params *p, hd_error *e) {
    if (s->kind != HD_SCHEDULER_FLASH)
        return hd_fail(e, HD_EINVAL, "scheduler: flash parameters given to a non-flash scheduler");
    if (!isfinite(p->noise_scale_start) || !isfinite(p->noise_scale_end) ||
        !isfinite(p->noise_clip_std) || p->noise_clip_std < 0)
        return hd_fail(e, HD_EINVAL,
                       "scheduler: flash noise_scale_start %g / noise_scale_end %g / "
                       "noise_clip_std %g must be finite (clip >= 0)",
                       p->noise_scale_start, p->noise_scale_end, p->noise_clip_std);
    if (!p->noise.draw)
        return hd_fail(e, HD_EINVAL, "scheduler: flash needs a noise source");
    s->flash = *p;
    s->have_flash = 1;
    return 0;
}

/* Allocates the per-sample buffers at the first step (their size is only known then). */
static int alloc_buffers(hd_scheduler *s, size_t n, hd_error *e) {
    if (n > SIZE_MAX / sizeof(float))
        return hd_fail(e, HD_ENOMEM, "scheduler: sample of %zu elements is too large", n);
    if (s->kind == HD_SCHEDULER_UNIPC) {
        s->m_old = calloc(n, sizeof(float));
        s->m_new = calloc(n, sizeof(float));
        s->x_last = calloc(n, sizeof(float));
        if (!s->m_old || !s->m_new || !s->x_last) {
            free(s->m_old);
            free(s->m_new);
            free(s->x_last);
            s->m_old = s->m_new = s->x_last = NULL;
            return hd_fail(e, HD_ENOMEM, "scheduler: out of memory for UniPC history (%zu floats)",
                           n);
        }
    } else if (s->kind == HD_SCHEDULER_FLASH) {
        s->noise = malloc(n * sizeof(float));
        if (!s->noise)
            return hd_fail(e, HD_ENOMEM, "scheduler: out of memory for flash noise (%zu floats)",
                           n);
    }
    s->n = n;
    return 0;
}

int hd_scheduler_step(hd_scheduler *s, int i, const float *model_output, const float *sample,
                      float *next, size_t n, hd_error *e) {
    if (!s->timesteps) return hd_fail(e, HD_EINVAL, "scheduler: not initialised");
    if (i != s->next_step || i >= s->n_steps)
        return hd_fail(e, HD_EINVAL, "scheduler: step %d out of order (expected %d of %d)", i,
                       s->next_step, s->n_steps);
    if (n == 0) return hd_fail(e, HD_EINVAL, "scheduler: step %d: empty sample", i);
    if (s->n == 0) HD_TRY(alloc_buffers(s, n, e));
    else if (n != s->n)
        return hd_fail(e, HD_EMISMATCH, "scheduler: step %d: sample has %zu elements, earlier %zu",
                       i, n, s->n);
    switch (s->kind) {
    case HD_SCHEDULER_UNIPC: hd_unipc_step(s, i, model_output, sample, next, n); break;
    case HD_SCHEDULER_FLOW_MATCH: hd_euler_step(s, i, model_output, sample, next, n); break;
    case HD_SCHEDULER_FLASH: HD_TRY(hd_flash_step(s, i, model_output, sample, next, n, e)); break;
    default: return hd_fail(e, HD_EINVAL, "scheduler: unknown kind %d", (int)s->kind);
    }
    s->next_step++;
    return 0;
}
