/* Flash-sampler noise sources: our seeded generator and recorded-array replay (noise.h). */
#include "sample/noise.h"

#include <string.h>

#include "core/error.h"

void hd_noise_default_init(hd_noise_default *d, uint64_t seed) {
    hd_torch_gen_seed(&d->gen, seed + 1u);
    d->next_step = 0;
}

int hd_noise_default_initial(hd_noise_default *d, float *out, size_t n, hd_error *e) {
    if (d->next_step != 0)
        return hd_fail(e, HD_EINVAL,
                       "noise: the initial noise must be drawn before step noise (step %d drawn)",
                       d->next_step - 1);
    hd_torch_gen_randn(&d->gen, out, n);
    return 0;
}

static int default_draw(void *ctx, int step, float *out, size_t n) {
    hd_noise_default *d = ctx;
    if (step != d->next_step) return HD_EINVAL;
    hd_torch_gen_randn(&d->gen, out, n);
    d->next_step++;
    return 0;
}

hd_noise_source hd_noise_default_source(hd_noise_default *d) {
    hd_noise_source s = {default_draw, d};
    return s;
}

static int replay_draw(void *ctx, int step, float *out, size_t n) {
    const hd_noise_replay *r = ctx;
    if (step < 0 || step >= r->n_steps || !r->steps[step]) return HD_EINVAL;
    if (r->sizes[step] != n) return HD_EMISMATCH;
    memcpy(out, r->steps[step], n * sizeof *out);
    return 0;
}

hd_noise_source hd_noise_replay_source(hd_noise_replay *r) {
    hd_noise_source s = {replay_draw, r};
    return s;
}
