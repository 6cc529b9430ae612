/* Flow-match Euler step (spec 05 §6; diffusers FlowMatchEulerDiscreteScheduler, deterministic):
 * z' = fl32(x + fl32(fl32(σ[i+1] − σ[i])·model_output)). With σ[i] = σp the last step
 * (σ → 0) lands on the model's x̂ up to rounding. */
#include "sample/scheduler.h"

#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__) && !defined(__STRICT_ANSI__)
#pragma GCC optimize("fp-contract=off")
#endif

void hd_euler_step(const hd_scheduler *s, int i, const float *mo, const float *x, float *next,
                   size_t n) {
    const float dt = s->sigmas[i + 1] - s->sigmas[i];
    for (size_t k = 0; k < n; k++) next[k] = x[k] + dt * mo[k];
}
