/* Schedules and samplers (spec 05 §3-§7): the spec's printed tables, step-level properties of
 * UniPC / flow-match Euler / flash, noise replay, argument checking, and `check-golden` on the
 * golden set and on a generated set with settings the checker has to infer. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "io/safetensors.h"
#include "sample/noise.h"
#include "sample/rng.h"
#include "sample/scheduler.h"
#include "testutil.h"

/* ---- tables -------------------------------------------------------------------------------- */

static void test_unipc_schedule_50_shift3_matches_the_spec(void) {
    static const int tau[50] = {999, 993, 986, 979, 971, 964, 956, 948, 940, 931, 922, 913, 904,
                                895, 885, 874, 864, 853, 841, 830, 818, 805, 792, 778, 764, 749,
                                734, 718, 702, 684, 666, 647, 627, 607, 585, 562, 538, 513, 486,
                                458, 428, 396, 363, 328, 290, 249, 206, 160, 111, 57};
    static const double sig[50] = {
        0.9998888, 0.9931313, 0.9861887, 0.9790532, 0.9717168, 0.9641708, 0.9564061, 0.9484131,
        0.9401814, 0.9317004, 0.9229584, 0.9139434, 0.9046421, 0.8950409, 0.8851249, 0.8748783,
        0.8642846, 0.8533255, 0.8419820, 0.8302335, 0.8180577, 0.8054311, 0.7923281, 0.7787212,
        0.7645808, 0.7498749, 0.7345688, 0.7186251, 0.7020031, 0.6846584, 0.6665431, 0.6476045,
        0.6277851, 0.6070223, 0.5852467, 0.5623827, 0.5383464, 0.5130453, 0.4863768, 0.4582271,
        0.4284693, 0.3969614, 0.3635445, 0.3280395, 0.2902445, 0.2499305, 0.2068370, 0.1606664,
        0.1110768, 0.0576738};
    int t[50];
    float s[51];
    hd_error e = {0};
    CHECK(hd_unipc_schedule(50, 3.0, t, s, &e) == 0);
    for (int i = 0; i < 50; i++) {
        CHECKF(t[i] == tau[i], "tau[%d] = %d, want %d", i, t[i], tau[i]);
        CHECKF(fabs(s[i] - sig[i]) <= 5.1e-8, "sigma[%d] = %.9f, want %.7f", i, s[i], sig[i]);
    }
    CHECK(s[50] == 0.0f);
}

static void test_unipc_schedule_50_shift1_is_linear_from_0_999(void) {
    int t[50];
    float s[51];
    hd_error e = {0};
    CHECK(hd_unipc_schedule(50, 1.0, t, s, &e) == 0);
    CHECK(s[0] == (float)0.999);
    for (int i = 0; i < 50; i++) {
        CHECKF(t[i] == 999 - 20 * i, "tau[%d] = %d", i, t[i]);
        CHECKF(fabs(s[i] - (0.999 - 0.01998 * i)) < 1e-7, "sigma[%d] = %.9f", i, s[i]);
    }
    CHECK(s[50] == 0.0f);
}

static void test_unipc_schedule_5_shift3_matches_the_spec(void) {
    static const int tau[5] = {999, 922, 818, 666, 428};
    int t[5];
    float s[6];
    hd_error e = {0};
    CHECK(hd_unipc_schedule(5, 3.0, t, s, &e) == 0);
    for (int i = 0; i < 5; i++) CHECKF(t[i] == tau[i], "tau[%d] = %d", i, t[i]);
}

static void test_fixed_list_sigmas_are_tau_over_1000_in_float32(void) {
    int t[HD_DEFAULT_TIMESTEPS_COUNT];
    float s[HD_DEFAULT_TIMESTEPS_COUNT + 1];
    hd_error e = {0};
    CHECK(hd_fixed_schedule(hd_default_timesteps, HD_DEFAULT_TIMESTEPS_COUNT, t, s, &e) == 0);
    CHECK(t[0] == 999 && t[27] == 8 && t[13] == 764);
    for (int i = 0; i < HD_DEFAULT_TIMESTEPS_COUNT; i++)
        CHECK(s[i] == (float)((double)t[i] / 1000.0));
    CHECK(s[HD_DEFAULT_TIMESTEPS_COUNT] == 0.0f);
    int bad[2] = {999, 1001};
    CHECK(hd_fixed_schedule(bad, 2, t, s, &e) == HD_EINVAL);
    CHECK(strstr(e.msg, "timesteps[1]") != NULL);
}

static void test_model_time_and_velocity_sigma(void) {
    CHECK(hd_sched_model_time(999) == 1.0f - 0.999f);
    CHECK(hd_sched_model_time(0) == 1.0f);
    CHECK(hd_sched_velocity_sigma(8) == 0.008f);
    CHECK(hd_sched_velocity_sigma(0) == 0.001f); /* the T_EPS clamp */
}

static void test_flash_noise_scale_is_linear_over_the_steps(void) {
    CHECK(hd_flash_noise_scale(0, 28, 7.5, 8.5) == 7.5);
    CHECK(hd_flash_noise_scale(27, 28, 7.5, 8.5) == 8.5);
    CHECK(fabs(hd_flash_noise_scale(9, 28, 7.5, 8.5) - (7.5 + 1.0 / 3.0)) < 1e-12);
    CHECK(hd_flash_noise_scale(0, 1, 6.0, 9.0) == 6.0);
}

/* ---- the synthetic model of the golden README --------------------------------------------------- */

static void synthetic(const float *X, const float *z, int tau, float *mo, size_t n) {
    float t = hd_sched_model_time(tau), sp = hd_sched_velocity_sigma(tau);
    float keep = 1.0f - 0.3f * t;
    for (size_t k = 0; k < n; k++) {
        float xp = X[k] * keep + 0.05f * (float)tanh((double)z[k]);
        float v = (xp - z[k]) / sp;
        mo[k] = -v;
    }
}

#define NS 48

static void make_inputs(float *X, float *z0) {
    hd_torch_randn(3, X, NS);
    hd_torch_randn(4, z0, NS);
    for (int k = 0; k < NS; k++) z0[k] *= 8.0f;
}

/* ---- step properties ---------------------------------------------------------------------------- */

static void test_unipc_orders_follow_warmup_and_lower_order_final(void) {
    float X[NS], z[NS], mo[NS];
    make_inputs(X, z);
    hd_scheduler s;
    hd_error e = {0};
    CHECK(hd_scheduler_init(&s, HD_SCHEDULER_UNIPC, 50, 3.0, NULL, &e) == 0);
    for (int i = 0; i < 50; i++) {
        synthetic(X, z, s.timesteps[i], mo, NS);
        CHECK(hd_scheduler_step(&s, i, mo, z, z, NS, &e) == 0);
        int want = (i == 0 || i == 49) ? 1 : 2; /* predictor order */
        CHECKF(s.prev_order == want, "step %d: order %d", i, s.prev_order);
    }
    hd_scheduler_free(&s);
    CHECK(hd_scheduler_init(&s, HD_SCHEDULER_UNIPC, 1, 3.0, NULL, &e) == 0);
    synthetic(X, z, s.timesteps[0], mo, NS);
    CHECK(hd_scheduler_step(&s, 0, mo, z, z, NS, &e) == 0 && s.prev_order == 1);
    hd_scheduler_free(&s);
}

static void test_unipc_last_step_returns_the_data_prediction(void) {
    float X[NS], z[NS], mo[NS], next[NS];
    make_inputs(X, z);
    hd_scheduler s;
    hd_error e = {0};
    CHECK(hd_scheduler_init(&s, HD_SCHEDULER_UNIPC, 6, 3.0, NULL, &e) == 0);
    for (int i = 0; i < 6; i++) {
        synthetic(X, z, s.timesteps[i], mo, NS);
        CHECK(hd_scheduler_step(&s, i, mo, z, next, NS, &e) == 0);
        if (i == 5)
            for (int k = 0; k < NS; k++) {
                float x0 = z[k] - s.sigmas[5] * mo[k];
                CHECKF(next[k] == x0, "k %d: %.9g vs %.9g", k, next[k], x0);
            }
        memcpy(z, next, sizeof z);
    }
    hd_scheduler_free(&s);
}

static void test_euler_last_step_lands_on_the_prediction(void) {
    float X[NS], z[NS], mo[NS];
    make_inputs(X, z);
    hd_scheduler s;
    hd_error e = {0};
    CHECK(hd_scheduler_init(&s, HD_SCHEDULER_FLOW_MATCH, 28, 1.0, NULL, &e) == 0);
    CHECK(s.timesteps[27] == 8 && s.sigmas[28] == 0.0f);
    for (int i = 0; i < 28; i++) {
        synthetic(X, z, s.timesteps[i], mo, NS);
        float xhat[NS];
        float t = hd_sched_model_time(s.timesteps[i]);
        for (int k = 0; k < NS; k++)
            xhat[k] = X[k] * (1.0f - 0.3f * t) + 0.05f * (float)tanh((double)z[k]);
        CHECK(hd_scheduler_step(&s, i, mo, z, z, NS, &e) == 0);
        if (i == 27)
            for (int k = 0; k < NS; k++)
                CHECKF(fabsf(z[k] - xhat[k]) <= 4e-7f * (1.0f + fabsf(xhat[k])),
                       "k %d: %.9g vs x̂ %.9g", k, z[k], xhat[k]);
    }
    hd_scheduler_free(&s);
}

typedef struct flash_run {
    float z[NS];
    float noise[4][NS];
} flash_run;

/* Four flash steps on the list 999, 737, 347, 110 with replayed noise; returns the final z. */
static int run_flash(flash_run *r, double start, double end, double clip, hd_error *e) {
    static const int list[4] = {999, 737, 347, 110};
    float X[NS], mo[NS];
    make_inputs(X, r->z);
    const float *steps[4] = {r->noise[0], r->noise[1], r->noise[2], r->noise[3]};
    size_t sizes[4] = {NS, NS, NS, NS};
    hd_noise_replay rec = {steps, sizes, 4};
    hd_scheduler s;
    HD_TRY(hd_scheduler_init(&s, HD_SCHEDULER_FLASH, 4, 1.0, list, e));
    hd_flash_params p = {start, end, clip, hd_noise_replay_source(&rec)};
    int rc = hd_scheduler_set_flash(&s, &p, e);
    for (int i = 0; rc == 0 && i < 4; i++) {
        synthetic(X, r->z, s.timesteps[i], mo, NS);
        rc = hd_scheduler_step(&s, i, mo, r->z, r->z, NS, e);
    }
    hd_scheduler_free(&s);
    return rc;
}

static void test_flash_step_follows_the_rounding_sequence(void) {
    float X[NS], z[NS], mo[NS], noise[NS], next[NS];
    make_inputs(X, z);
    hd_torch_randn(77, noise, NS);
    const float *steps[1] = {noise};
    size_t sizes[1] = {NS};
    hd_noise_replay rec = {steps, sizes, 1};
    int list[2] = {700, 300};
    hd_scheduler s;
    hd_error e = {0};
    CHECK(hd_scheduler_init(&s, HD_SCHEDULER_FLASH, 2, 1.0, list, &e) == 0);
    hd_flash_params p = {6.0, 9.0, 0.0, hd_noise_replay_source(&rec)};
    CHECK(hd_scheduler_set_flash(&s, &p, &e) == 0);
    synthetic(X, z, 700, mo, NS);
    CHECK(hd_scheduler_step(&s, 0, mo, z, next, NS, &e) == 0);
    for (int k = 0; k < NS; k++) {
        float den = z[k] - mo[k] * 0.7f;
        float want = (0.3f * noise[k]) * 6.0f + (1.0f - 0.3f) * den;
        CHECKF(next[k] == want, "k %d", k);
    }
    hd_scheduler_free(&s);
}

static void test_flash_last_step_returns_the_denoised_sample(void) {
    float X[NS], z[NS], mo[NS], noise[NS], next[NS];
    make_inputs(X, z);
    hd_torch_randn(78, noise, NS);
    const float *steps[1] = {noise};
    size_t sizes[1] = {NS};
    hd_noise_replay rec = {steps, sizes, 1};
    int list[1] = {110};
    hd_scheduler s;
    hd_error e = {0};
    CHECK(hd_scheduler_init(&s, HD_SCHEDULER_FLASH, 1, 1.0, list, &e) == 0);
    hd_flash_params p = {7.5, 7.5, 2.5, hd_noise_replay_source(&rec)};
    CHECK(hd_scheduler_set_flash(&s, &p, &e) == 0);
    synthetic(X, z, 110, mo, NS);
    CHECK(hd_scheduler_step(&s, 0, mo, z, next, NS, &e) == 0);
    for (int k = 0; k < NS; k++) CHECK(next[k] == z[k] - mo[k] * 0.11f);
    hd_scheduler_free(&s);
}

static void test_flash_clip_zero_keeps_outliers_and_positive_clip_clamps_them(void) {
    flash_run raw, clipped;
    for (int i = 0; i < 4; i++) {
        hd_torch_randn(100 + (uint64_t)i, raw.noise[i], NS);
        raw.noise[i][5] = 9.0f; /* outliers far beyond 1.5 std */
        raw.noise[i][11] = -7.0f;
    }
    memcpy(clipped.noise, raw.noise, sizeof raw.noise);
    hd_error e = {0};
    CHECK(run_flash(&raw, 7.5, 7.5, 0.0, &e) == 0);
    CHECK(run_flash(&clipped, 7.5, 7.5, 1.5, &e) == 0);
    /* the outlier elements differ; an element whose noise never exceeds the bound agrees */
    CHECK(raw.z[5] != clipped.z[5] && raw.z[11] != clipped.z[11]);
    int same = 0;
    for (int k = 0; k < NS; k++) same += raw.z[k] == clipped.z[k];
    CHECK(same > 0 && same < NS);

    /* one step by hand: bound c = fl32(fl32(1.5)·sd) with the float32 unbiased std */
    const float *n0 = raw.noise[0];
    double sum = 0, ss = 0;
    for (int k = 0; k < NS; k++) sum += n0[k];
    for (int k = 0; k < NS; k++) ss += (n0[k] - sum / NS) * (n0[k] - sum / NS);
    float c = 1.5f * (float)sqrt(ss / (NS - 1));
    float X[NS], z[NS], mo[NS], next[NS];
    make_inputs(X, z);
    const float *steps[1] = {n0};
    size_t sizes[1] = {NS};
    hd_noise_replay rec = {steps, sizes, 1};
    int list[2] = {999, 737};
    hd_scheduler s;
    CHECK(hd_scheduler_init(&s, HD_SCHEDULER_FLASH, 2, 1.0, list, &e) == 0);
    hd_flash_params p = {7.5, 7.5, 1.5, hd_noise_replay_source(&rec)};
    CHECK(hd_scheduler_set_flash(&s, &p, &e) == 0);
    synthetic(X, z, 999, mo, NS);
    CHECK(hd_scheduler_step(&s, 0, mo, z, next, NS, &e) == 0);
    for (int k = 0; k < NS; k++) {
        float nk = n0[k] < -c ? -c : n0[k] > c ? c : n0[k];
        float den = z[k] - mo[k] * 0.999f;
        float want = (0.737f * nk) * 7.5f + (1.0f - 0.737f) * den;
        CHECKF(next[k] == want, "k %d", k);
    }
    hd_scheduler_free(&s);
}

static void test_replayed_noise_source_feeds_flash_and_reports_misuse(void) {
    float a[NS], b[NS];
    hd_torch_randn(1, a, NS);
    const float *steps[1] = {a};
    size_t sizes[1] = {NS};
    hd_noise_replay rec = {steps, sizes, 1};
    hd_noise_source src = hd_noise_replay_source(&rec);
    CHECK(src.draw(src.ctx, 0, b, NS) == 0 && memcmp(a, b, sizeof a) == 0);
    CHECK(src.draw(src.ctx, 1, b, NS) == HD_EINVAL);
    CHECK(src.draw(src.ctx, -1, b, NS) == HD_EINVAL);
    CHECK(src.draw(src.ctx, 0, b, NS - 1) == HD_EMISMATCH);

    /* a scheduler whose replay runs out reports the step */
    flash_run r;
    for (int i = 0; i < 4; i++) hd_torch_randn(200 + (uint64_t)i, r.noise[i], NS);
    float X[NS], z[NS], mo[NS];
    make_inputs(X, z);
    const float *two[2] = {r.noise[0], r.noise[1]};
    size_t two_n[2] = {NS, NS};
    hd_noise_replay short_rec = {two, two_n, 2};
    int list[3] = {999, 500, 100};
    hd_scheduler s;
    hd_error e = {0};
    CHECK(hd_scheduler_init(&s, HD_SCHEDULER_FLASH, 3, 1.0, list, &e) == 0);
    hd_flash_params p = {8.0, 8.0, 0.0, hd_noise_replay_source(&short_rec)};
    CHECK(hd_scheduler_set_flash(&s, &p, &e) == 0);
    int rc = 0;
    for (int i = 0; i < 3 && rc == 0; i++) {
        synthetic(X, z, s.timesteps[i], mo, NS);
        rc = hd_scheduler_step(&s, i, mo, z, z, NS, &e);
    }
    CHECK(rc == HD_EINVAL);
    CHECKF(strstr(e.msg, "step 2") != NULL, "%s", e.msg);
    hd_scheduler_free(&s);
}

static void test_steps_must_come_in_order_with_a_fixed_size(void) {
    float X[NS], z[NS], mo[NS];
    make_inputs(X, z);
    hd_scheduler s;
    hd_error e = {0};
    CHECK(hd_scheduler_init(&s, HD_SCHEDULER_UNIPC, 4, 3.0, NULL, &e) == 0);
    synthetic(X, z, s.timesteps[0], mo, NS);
    CHECK(hd_scheduler_step(&s, 1, mo, z, z, NS, &e) == HD_EINVAL);
    CHECK(hd_scheduler_step(&s, 0, mo, z, z, NS, &e) == 0);
    CHECK(hd_scheduler_step(&s, 1, mo, z, z, NS - 1, &e) == HD_EMISMATCH);
    CHECK(hd_scheduler_step(&s, 1, mo, z, z, 0, &e) == HD_EINVAL);
    for (int i = 1; i < 4; i++) CHECK(hd_scheduler_step(&s, i, mo, z, z, NS, &e) == 0);
    CHECK(hd_scheduler_step(&s, 4, mo, z, z, NS, &e) == HD_EINVAL);
    hd_scheduler_free(&s);
    hd_scheduler_free(&s); /* safe twice */
}

static void test_next_may_alias_the_sample(void) {
    float X[NS], a[NS], b[NS], mo[NS], tmp[NS];
    make_inputs(X, a);
    memcpy(b, a, sizeof a);
    hd_scheduler s1, s2;
    hd_error e = {0};
    CHECK(hd_scheduler_init(&s1, HD_SCHEDULER_UNIPC, 7, 2.0, NULL, &e) == 0);
    CHECK(hd_scheduler_init(&s2, HD_SCHEDULER_UNIPC, 7, 2.0, NULL, &e) == 0);
    for (int i = 0; i < 7; i++) {
        synthetic(X, a, s1.timesteps[i], mo, NS);
        CHECK(hd_scheduler_step(&s1, i, mo, a, a, NS, &e) == 0);
        synthetic(X, b, s2.timesteps[i], mo, NS);
        CHECK(hd_scheduler_step(&s2, i, mo, b, tmp, NS, &e) == 0);
        memcpy(b, tmp, sizeof b);
    }
    CHECK(memcmp(a, b, sizeof a) == 0);
    hd_scheduler_free(&s1);
    hd_scheduler_free(&s2);
}

static void test_init_rejects_bad_parameters(void) {
    hd_scheduler s;
    hd_error e = {0};
    CHECK(hd_scheduler_init(&s, HD_SCHEDULER_UNIPC, 0, 3.0, NULL, &e) == HD_EINVAL);
    CHECK(hd_scheduler_init(&s, HD_SCHEDULER_UNIPC, HD_MAX_TIMESTEPS + 1, 3.0, NULL, &e) ==
          HD_EINVAL);
    CHECK(hd_scheduler_init(&s, HD_SCHEDULER_UNIPC, 10, 0.0, NULL, &e) == HD_EINVAL);
    CHECK(hd_scheduler_init(&s, HD_SCHEDULER_UNIPC, 10, NAN, NULL, &e) == HD_EINVAL);
    CHECK(hd_scheduler_init(&s, HD_SCHEDULER_AUTO, 10, 3.0, NULL, &e) == HD_EINVAL);
    CHECK(hd_scheduler_init(&s, HD_SCHEDULER_FLOW_MATCH, 20, 1.0, NULL, &e) == HD_EINVAL);
    CHECK(strstr(e.msg, "28") != NULL);
    /* flash needs its parameters before stepping, and only flash takes them */
    CHECK(hd_scheduler_init(&s, HD_SCHEDULER_FLASH, 28, 1.0, NULL, &e) == 0);
    float z[NS] = {0}, mo[NS] = {0};
    CHECK(hd_scheduler_step(&s, 0, mo, z, z, NS, &e) == HD_EINVAL);
    hd_flash_params p = {7.5, 7.5, -1.0, {NULL, NULL}};
    CHECK(hd_scheduler_set_flash(&s, &p, &e) == HD_EINVAL); /* negative clip */
    p.noise_clip_std = 2.5;
    CHECK(hd_scheduler_set_flash(&s, &p, &e) == HD_EINVAL); /* no source */
    hd_scheduler_free(&s);
    CHECK(hd_scheduler_init(&s, HD_SCHEDULER_UNIPC, 10, 3.0, NULL, &e) == 0);
    CHECK(hd_scheduler_set_flash(&s, &p, &e) == HD_EINVAL);
    hd_scheduler_free(&s);
}

/* ---- golden trajectories, in process ------------------------------------------------------------ */

static float *read_all(const hd_safetensors *st, const char *name, size_t *n) {
    const hd_st_tensor *t = hd_st_find(st, name);
    if (!t) return NULL;
    *n = (size_t)t->numel;
    float *v = malloc(*n * sizeof *v);
    hd_error e = {0};
    if (v && hd_st_read_f32(t, v, *n, &e) < 0) {
        free(v);
        return NULL;
    }
    return v;
}

/* Replays one sched.<case> with the given sampler; returns the max abs error over all rows, or
 * -1 if the sampler's tables differ from the golden ones. */
static double replay_case(const hd_safetensors *st, const char *cname, hd_scheduler_kind kind,
                          double shift, const int *list, const double *flash3) {
    char name[256];
    size_t nt, ns, nz, nx;
    snprintf(name, sizeof name, "sched.%s.timesteps", cname);
    float *tau = read_all(st, name, &nt);
    snprintf(name, sizeof name, "sched.%s.sigmas", cname);
    float *sig = read_all(st, name, &ns);
    snprintf(name, sizeof name, "sched.%s.z", cname);
    float *z = read_all(st, name, &nz);
    snprintf(name, sizeof name, "sched.%s.X", cname);
    float *X = read_all(st, name, &nx);
    double err = -1;
    int N = (int)nt;
    size_t n = nx;
    float *cur = NULL, *mo = NULL, **noise = NULL;
    size_t *sizes = NULL;
    hd_scheduler s = {0};
    hd_error e = {0};
    if (!tau || !sig || !z || !X || ns != nt + 1 || nz != (nt + 1) * nx) goto out;
    cur = malloc(n * sizeof *cur);
    mo = malloc(n * sizeof *mo);
    noise = calloc((size_t)N, sizeof *noise);
    sizes = calloc((size_t)N, sizeof *sizes);
    if (!cur || !mo || !noise || !sizes) goto out;
    if (hd_scheduler_init(&s, kind, N, shift, list, &e) < 0) goto out;
    for (int i = 0; i < N; i++)
        if (s.timesteps[i] != (int)tau[i]) goto out;
    for (int i = 0; i <= N; i++)
        if (s.sigmas[i] != sig[i]) goto out;
    hd_noise_replay rec = {(const float *const *)noise, sizes, N};
    if (kind == HD_SCHEDULER_FLASH) {
        for (int i = 0; i < N; i++) {
            snprintf(name, sizeof name, "sched.%s.noise_%d", cname, i);
            noise[i] = read_all(st, name, &sizes[i]);
        }
        hd_flash_params p = {flash3[0], flash3[1], flash3[2], hd_noise_replay_source(&rec)};
        if (hd_scheduler_set_flash(&s, &p, &e) < 0) goto out;
    }
    memcpy(cur, z, n * sizeof *cur);
    err = 0;
    for (int i = 0; i < N; i++) {
        synthetic(X, cur, s.timesteps[i], mo, n);
        if (hd_scheduler_step(&s, i, mo, cur, cur, n, &e) < 0) {
            err = INFINITY;
            break;
        }
        for (size_t k = 0; k < n; k++) {
            double d = fabs((double)cur[k] - z[(size_t)(i + 1) * n + k]);
            if (!(d <= err)) err = d;
        }
    }
out:
    hd_scheduler_free(&s);
    if (noise)
        for (int i = 0; i < N; i++) free(noise[i]);
    free(noise);
    free(sizes);
    free(cur);
    free(mo);
    free(tau);
    free(sig);
    free(z);
    free(X);
    return err;
}

/* Every sched.* case of the golden set must be reproduced (≤ 1e-6) by one of our samplers: flash
 * with an official default triple when noise is stored, else Euler on the list, else UniPC with
 * a shift on a 0.05 grid whose tables match exactly. */
static void test_golden_trajectories_replay_within_1e_6(void) {
    char path[4096];
    hd_test_shared(path, sizeof path, "golden/model-tiny/golden.safetensors");
    hd_safetensors st = {0};
    hd_error e = {0};
    CHECKF(hd_st_open(&st, path, &e) == 0, "%s", e.msg);
    static const double triples[3][3] = {{7.5, 7.5, 2.5}, {8.0, 8.0, 8.0}, {8.0, 8.0, 0.0}};
    int cases = 0;
    for (int t = 0; t < st.n_tensors; t++) {
        const char *nm = st.tensors[t].name;
        size_t len = strlen(nm);
        if (strncmp(nm, "sched.", 6) != 0 || len < 8 || strcmp(nm + len - 2, ".z") != 0) continue;
        char cname[256];
        snprintf(cname, sizeof cname, "%.*s", (int)(len - 8), nm + 6);
        char name[300];
        size_t nt;
        snprintf(name, sizeof name, "sched.%s.timesteps", cname);
        float *tf = read_all(&st, name, &nt);
        CHECK(tf != NULL && nt >= 1 && nt <= 64);
        if (!tf || nt < 1 || nt > 64) {
            free(tf);
            continue;
        }
        int list[64];
        for (size_t i = 0; i < nt; i++) list[i] = (int)tf[i];
        free(tf);
        snprintf(name, sizeof name, "sched.%s.noise_0", cname);
        double best = -1;
        if (hd_st_find(&st, name)) {
            for (int k = 0; k < 3 && !(best >= 0 && best <= 1e-6); k++)
                best = replay_case(&st, cname, HD_SCHEDULER_FLASH, 1.0, list, triples[k]);
        } else {
            best = replay_case(&st, cname, HD_SCHEDULER_FLOW_MATCH, 1.0, list, NULL);
            for (int k = 1; best < 0 && k <= 200; k++)
                best = replay_case(&st, cname, HD_SCHEDULER_UNIPC, 0.05 * k, NULL, NULL);
        }
        CHECKF(best >= 0 && best <= 1e-6, "sched.%s: max abs error %g", cname, best);
        cases++;
    }
    CHECKF(cases > 0, "no sched.* cases in %s", path);
    hd_st_close(&st);
}

/* ---- check-golden ---------------------------------------------------------------------------- */

static int run_cli(const char *args, char *out, size_t n) {
    const char *bin = getenv("HIDREAM_BIN");
    if (!bin) {
        fprintf(stderr, "  HIDREAM_BIN is not set\n");
        return -1;
    }
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "'%s' %s 2>&1", bin, args);
    return hd_test_run(cmd, out, n);
}

static void test_golden_set_passes_check_golden(void) {
    char dir[4096], args[4400], out[16384];
    hd_test_shared(dir, sizeof dir, "golden/model-tiny");
    snprintf(args, sizeof args, "check-golden '%s' --only sched", dir);
    CHECKF(run_cli(args, out, sizeof out) == 0, "%s", out);
    CHECKF(strstr(out, "FAIL") == NULL && strstr(out, "PASS sched.") != NULL, "%s", out);
    snprintf(args, sizeof args, "check-golden '%s' --only rng", dir);
    CHECKF(run_cli(args, out, sizeof out) == 0, "%s", out);
    CHECKF(strstr(out, "FAIL") == NULL && strstr(out, "(bit-exact)") != NULL, "%s", out);
}

/* A generated golden set whose settings differ from every visible case: the checker must find
 * them from the tensors alone (and must fail when a row is off). */
typedef struct gen_case {
    char names[8][64];
    int n_items;
    hd_st_write_item items[40];
    double tau[16], sig[17];
    float z[17 * NS], X[NS];
    float noise[16][NS];
} gen_case;

static void add_item(gen_case *g, const char *name, hd_dtype dt, int ndim, int64_t d0, int64_t d1,
                     const void *data) {
    hd_st_write_item *it = &g->items[g->n_items++];
    memset(it, 0, sizeof *it);
    it->name = name;
    it->dtype = dt;
    it->ndim = ndim;
    it->shape[0] = d0;
    it->shape[1] = d1;
    it->data = data;
}

static int generate(gen_case *g, const char *prefix, hd_scheduler_kind kind, int N, double shift,
                    const int *list, double s_noise, double clip, hd_error *e) {
    hd_scheduler s;
    float mo[NS];
    make_inputs(g->X, g->z);
    HD_TRY(hd_scheduler_init(&s, kind, N, shift, list, e));
    const float *steps[16];
    size_t sizes[16];
    for (int i = 0; i < N; i++) {
        hd_torch_randn(500 + (uint64_t)i, g->noise[i], NS);
        steps[i] = g->noise[i];
        sizes[i] = NS;
    }
    hd_noise_replay rec = {steps, sizes, N};
    int rc = 0;
    if (kind == HD_SCHEDULER_FLASH) {
        hd_flash_params p = {s_noise, s_noise, clip, hd_noise_replay_source(&rec)};
        rc = hd_scheduler_set_flash(&s, &p, e);
    }
    for (int i = 0; rc == 0 && i < N; i++) {
        g->tau[i] = s.timesteps[i];
        synthetic(g->X, g->z + (size_t)i * NS, s.timesteps[i], mo, NS);
        rc = hd_scheduler_step(&s, i, mo, g->z + (size_t)i * NS, g->z + (size_t)(i + 1) * NS, NS,
                               e);
    }
    for (int i = 0; i <= N; i++) g->sig[i] = s.sigmas[i];
    hd_scheduler_free(&s);
    HD_TRY(rc);
    static const char *what[4] = {"timesteps", "sigmas", "z", "X"};
    for (int w = 0; w < 4; w++) snprintf(g->names[w], 64, "sched.%s.%s", prefix, what[w]);
    add_item(g, g->names[0], HD_F64, 1, N, 0, g->tau);
    add_item(g, g->names[1], HD_F64, 1, N + 1, 0, g->sig);
    add_item(g, g->names[2], HD_F32, 2, N + 1, NS, g->z);
    add_item(g, g->names[3], HD_F32, 2, 1, NS, g->X);
    return 0;
}

static void test_check_golden_infers_settings_from_the_tensors(void) {
    static gen_case a, b, c;
    static char noise_names[16][64];
    hd_error e = {0};
    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    memset(&c, 0, sizeof c);
    static const int flash_list[6] = {990, 850, 620, 400, 180, 40};
    static const int euler_list[5] = {950, 700, 450, 200, 30};
    CHECK(generate(&a, "p", HD_SCHEDULER_UNIPC, 9, 2.25, NULL, 0, 0, &e) == 0);
    CHECK(generate(&b, "q", HD_SCHEDULER_FLASH, 6, 1.0, flash_list, 6.5, 1.25, &e) == 0);
    CHECK(generate(&c, "r", HD_SCHEDULER_FLOW_MATCH, 5, 1.0, euler_list, 0, 0, &e) == 0);
    for (int i = 0; i < 6; i++) {
        snprintf(noise_names[i], 64, "sched.q.noise_%d", i);
        add_item(&b, noise_names[i], HD_F32, 2, 1, NS, b.noise[i]);
    }
    static float rnd[3 * 11];
    hd_torch_randn(424242, rnd, 33);
    hd_st_write_item items[64];
    int n = 0;
    for (int i = 0; i < a.n_items; i++) items[n++] = a.items[i];
    for (int i = 0; i < b.n_items; i++) items[n++] = b.items[i];
    for (int i = 0; i < c.n_items; i++) items[n++] = c.items[i];
    hd_st_write_item r = {0};
    r.name = "rng.randn_seed424242_3x11";
    r.dtype = HD_F32;
    r.ndim = 2;
    r.shape[0] = 3;
    r.shape[1] = 11;
    r.data = rnd;
    items[n++] = r;

    char dir[4096], path[4200], args[4400], out[16384];
    hd_test_tmpdir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/golden.safetensors", dir);
    CHECKF(hd_st_write(path, items, n, &e) == 0, "%s", e.msg);
    snprintf(args, sizeof args, "check-golden '%s' --only sched", dir);
    CHECKF(run_cli(args, out, sizeof out) == 0, "%s", out);
    CHECKF(strstr(out, "PASS sched.p unipc steps=9 shift=2.25") != NULL, "%s", out);
    CHECKF(strstr(out, "PASS sched.q flash steps=6 s_noise=6.5->6.5 clip_std=1.25") != NULL, "%s",
           out);
    CHECKF(strstr(out, "PASS sched.r flow-match euler steps=5") != NULL, "%s", out);
    snprintf(args, sizeof args, "check-golden '%s' --only rng", dir);
    CHECKF(run_cli(args, out, sizeof out) == 0, "%s", out);
    CHECKF(strstr(out, "PASS rng.randn_seed424242_3x11 max_abs=0 (bit-exact)") != NULL, "%s", out);

    /* one element of one row off by 1e-5: that case must fail, and the run exit non-zero */
    a.z[4 * NS + 7] += 1e-5f;
    rnd[20] = -rnd[20];
    CHECKF(hd_st_write(path, items, n, &e) == 0, "%s", e.msg);
    snprintf(args, sizeof args, "check-golden '%s' --only sched", dir);
    CHECK(run_cli(args, out, sizeof out) != 0);
    CHECKF(strstr(out, "FAIL sched.p") != NULL && strstr(out, "PASS sched.q") != NULL, "%s", out);
    snprintf(args, sizeof args, "check-golden '%s' --only rng", dir);
    CHECK(run_cli(args, out, sizeof out) != 0);
    CHECKF(strstr(out, "FAIL rng.randn_seed424242_3x11 1 of 33 elements differ") != NULL, "%s",
           out);
    remove(path);
    remove(dir);
}

int main(void) {
    RUN_TEST(test_unipc_schedule_50_shift3_matches_the_spec);
    RUN_TEST(test_unipc_schedule_50_shift1_is_linear_from_0_999);
    RUN_TEST(test_unipc_schedule_5_shift3_matches_the_spec);
    RUN_TEST(test_fixed_list_sigmas_are_tau_over_1000_in_float32);
    RUN_TEST(test_model_time_and_velocity_sigma);
    RUN_TEST(test_flash_noise_scale_is_linear_over_the_steps);
    RUN_TEST(test_unipc_orders_follow_warmup_and_lower_order_final);
    RUN_TEST(test_unipc_last_step_returns_the_data_prediction);
    RUN_TEST(test_euler_last_step_lands_on_the_prediction);
    RUN_TEST(test_flash_step_follows_the_rounding_sequence);
    RUN_TEST(test_flash_last_step_returns_the_denoised_sample);
    RUN_TEST(test_flash_clip_zero_keeps_outliers_and_positive_clip_clamps_them);
    RUN_TEST(test_replayed_noise_source_feeds_flash_and_reports_misuse);
    RUN_TEST(test_steps_must_come_in_order_with_a_fixed_size);
    RUN_TEST(test_next_may_alias_the_sample);
    RUN_TEST(test_init_rejects_bad_parameters);
    RUN_TEST(test_golden_trajectories_replay_within_1e_6);
    RUN_TEST(test_golden_set_passes_check_golden);
    RUN_TEST(test_check_golden_infers_settings_from_the_tensors);
    return hd_test_finish();
}
