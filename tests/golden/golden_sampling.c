/* check-golden, rng and sched cases.
 *
 * rng.randn_seed<seed>_<shape>: torch.randn(shape, Generator('cpu').manual_seed(seed)) float32;
 * the seed comes from the name, the element count from the tensor; bit-exact or FAIL.
 *
 * sched.<case>.*: a sampler driven by the golden README's synthetic model from z[0]
 *   t = fl32(1 − fl32(τ/1000)), σp = max(fl32(τ/1000), 0.001),
 *   x̂ = X·(1 − 0.3·t) + 0.05·tanh(z), v = (x̂ − z)/σp, model_output = −v   (all float32).
 * Nothing is taken from the case name: the sampler and its settings are inferred from the tensors.
 *   - noise_<i> present            → flash, noise replayed; s_noise and clip are not stored, so
 *                                     the official default triples are tried, then values inferred
 *                                     from the trajectory (least squares on unclipped elements for
 *                                     s_noise, the clamped elements' bound for the clip)
 *   - σ = fl32(τ/1000), σ[N] = 0   → fixed-list flow-match Euler (UniPC on the list as fallback)
 *   - otherwise                    → UniPC, the shift found by bisection on one σ and confirmed
 *                                     on the whole table (rounded to the fewest decimals that fit)
 * Every row of z is compared (max abs error ≤ 1e-6 passes); timesteps and σ must match exactly. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "golden/golden.h"
#include "core/error.h"
#include "sample/noise.h"
#include "sample/rng.h"
#include "sample/scheduler.h"

#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__) && !defined(__STRICT_ANSI__)
#pragma GCC optimize("fp-contract=off")
#endif

#define SCHED_TOL 1e-6
#define MAX_CASES 1024

/* ---- rng ----------------------------------------------------------------------------------- */

/* "randn_seed<digits>_<shape>" → seed and the shape text. */
static int parse_randn_name(const char *name, uint64_t *seed, const char **shape) {
    static const char prefix[] = "randn_seed";
    if (strncmp(name, prefix, sizeof prefix - 1) != 0) return -1;
    const char *p = name + sizeof prefix - 1;
    if (*p < '0' || *p > '9') return -1;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(p, &end, 10);
    if (errno == ERANGE || *end != '_') return -1;
    *seed = (uint64_t)v;
    *shape = end + 1;
    return 0;
}

/* "5x7" against the tensor's dims. */
static int shape_matches(const char *text, const hd_st_tensor *t) {
    int d = 0;
    const char *p = text;
    while (*p) {
        if (*p < '0' || *p > '9' || d >= t->ndim) return 0;
        char *end;
        errno = 0;
        long long v = strtoll(p, &end, 10);
        if (errno == ERANGE || v != t->shape[d]) return 0;
        d++;
        if (*end == 'x') end++;
        else if (*end) return 0;
        p = end;
    }
    return d == t->ndim;
}

static void rng_case(golden_ctx *g, const hd_st_tensor *t, const char *name) {
    uint64_t seed;
    const char *shape;
    if (parse_randn_name(name, &seed, &shape) < 0) {
        golden_skip(g, "rng", name, "not a randn_seed<seed>_<shape> tensor");
        return;
    }
    if (!shape_matches(shape, t)) {
        golden_result(g, 0, "rng", name, "the name's shape '%s' differs from the tensor's", shape);
        return;
    }
    if (t->dtype != HD_F32) {
        golden_result(g, 0, "rng", name, "dtype %s, expected F32", hd_dtype_name(t->dtype));
        return;
    }
    size_t n = (size_t)t->numel;
    float *want = malloc((n ? n : 1) * sizeof *want), *got = malloc((n ? n : 1) * sizeof *got);
    hd_error e = {0};
    if (!want || !got) {
        golden_result(g, 0, "rng", name, "out of memory for %zu floats", n);
    } else if (hd_st_read_f32(t, want, n, &e) < 0) {
        golden_result(g, 0, "rng", name, "%s", e.msg);
    } else {
        hd_torch_randn(seed, got, n);
        size_t differ = 0;
        double max_abs = 0;
        for (size_t i = 0; i < n; i++) {
            if (memcmp(&got[i], &want[i], sizeof(float)) != 0) differ++;
            double d = fabs((double)got[i] - (double)want[i]);
            if (d > max_abs || d != d) max_abs = d;
        }
        if (differ == 0) golden_result(g, 1, "rng", name, "max_abs=0 (bit-exact)");
        else
            golden_result(g, 0, "rng", name, "%zu of %zu elements differ, max_abs=%.3g", differ,
                          n, max_abs);
    }
    free(want);
    free(got);
}

void golden_run_rng(golden_ctx *g) {
    int found = 0;
    for (int i = 0; i < g->golden.n_tensors; i++) {
        const hd_st_tensor *t = &g->golden.tensors[i];
        if (strncmp(t->name, "rng.", 4) != 0) continue;
        found++;
        rng_case(g, t, t->name + 4);
    }
    if (!found) golden_skip(g, "rng", "*", "no rng.* tensors in golden.safetensors");
}

/* ---- sched: loading -------------------------------------------------------------------------- */

typedef struct sched_case {
    int N;         /* steps */
    int *tau;      /* [N] golden timesteps */
    double *sig;   /* [N + 1] golden σ */
    size_t n;      /* elements per sample */
    float *z;      /* [(N + 1)·n] golden trajectory */
    float *X;      /* [n] the synthetic model's target */
    int has_noise; /* noise_<i> tensors present (flash) */
    float **noise; /* [N] */
    size_t *noise_n;
} sched_case;

static void case_free(sched_case *c) {
    if (c->noise)
        for (int i = 0; i < c->N; i++) free(c->noise[i]);
    free(c->noise);
    free(c->noise_n);
    free(c->tau);
    free(c->sig);
    free(c->z);
    free(c->X);
    memset(c, 0, sizeof *c);
}

static const hd_st_tensor *case_tensor(const golden_ctx *g, const char *cname, const char *what) {
    char full[512];
    snprintf(full, sizeof full, "sched.%s.%s", cname, what);
    return hd_st_find(&g->golden, full);
}

/* Reads a whole float tensor into a fresh float32 array. */
static int read_f32(const hd_st_tensor *t, float **out, char *err, size_t errsz) {
    size_t n = (size_t)t->numel;
    hd_error e = {0};
    *out = malloc((n ? n : 1) * sizeof **out);
    if (!*out) {
        snprintf(err, errsz, "tensor '%s': out of memory", t->name);
        return -1;
    }
    if (hd_st_read_f32(t, *out, n, &e) < 0) {
        snprintf(err, errsz, "%s", e.msg);
        return -1;
    }
    return 0;
}

static int case_load(const golden_ctx *g, const char *cname, sched_case *c, char *err,
                     size_t errsz) {
    const hd_st_tensor *tt = case_tensor(g, cname, "timesteps");
    const hd_st_tensor *ts = case_tensor(g, cname, "sigmas");
    const hd_st_tensor *tz = case_tensor(g, cname, "z");
    const hd_st_tensor *tx = case_tensor(g, cname, "X");
    const char *missing = !tt ? "timesteps" : !ts ? "sigmas" : !tz ? "z" : !tx ? "X" : NULL;
    if (missing) {
        snprintf(err, errsz, "missing tensor 'sched.%s.%s'", cname, missing);
        return -1;
    }
    if (tt->numel < 1 || tt->numel > HD_MAX_TIMESTEPS) {
        snprintf(err, errsz, "tensor '%s': %lld timesteps, expected 1..%d", tt->name,
                 (long long)tt->numel, HD_MAX_TIMESTEPS);
        return -1;
    }
    c->N = (int)tt->numel;
    if (ts->numel != c->N + 1) {
        snprintf(err, errsz, "tensor '%s': %lld values for %d steps, expected %d", ts->name,
                 (long long)ts->numel, c->N, c->N + 1);
        return -1;
    }
    if (tz->ndim < 1 || tz->shape[0] != c->N + 1 || tz->numel % (c->N + 1) != 0 ||
        tz->numel == 0) {
        snprintf(err, errsz, "tensor '%s': first dimension must be steps + 1 = %d", tz->name,
                 c->N + 1);
        return -1;
    }
    c->n = (size_t)(tz->numel / (c->N + 1));
    if ((size_t)tx->numel != c->n) {
        snprintf(err, errsz, "tensor '%s': %lld elements, a sample has %zu", tx->name,
                 (long long)tx->numel, c->n);
        return -1;
    }
    hd_error e = {0};
    double *tau = malloc((size_t)c->N * sizeof *tau);
    c->tau = malloc((size_t)c->N * sizeof *c->tau);
    c->sig = malloc(((size_t)c->N + 1) * sizeof *c->sig);
    if (!tau || !c->tau || !c->sig) {
        free(tau);
        snprintf(err, errsz, "case '%s': out of memory", cname);
        return -1;
    }
    int rc = 0;
    if (hd_dtype_is_float(tt->dtype)) {
        rc = hd_st_read_f64(tt, tau, (size_t)c->N, &e);
    } else { /* integer timesteps are fine too */
        int64_t *ti = malloc((size_t)c->N * sizeof *ti);
        rc = ti ? hd_st_read_i64(tt, ti, (size_t)c->N, &e)
                : hd_fail(&e, HD_ENOMEM, "tensor '%s': out of memory", tt->name);
        for (int i = 0; rc == 0 && i < c->N; i++) tau[i] = (double)ti[i];
        free(ti);
    }
    if (rc == 0) rc = hd_st_read_f64(ts, c->sig, (size_t)c->N + 1, &e);
    if (rc < 0) {
        free(tau);
        snprintf(err, errsz, "%s", e.msg);
        return -1;
    }
    for (int i = 0; i < c->N; i++) {
        if (!(tau[i] >= 0 && tau[i] <= 1000) || tau[i] != floor(tau[i])) {
            snprintf(err, errsz, "tensor '%s': timesteps[%d] = %g is not an integer in [0, 1000]",
                     tt->name, i, tau[i]);
            free(tau);
            return -1;
        }
        c->tau[i] = (int)tau[i];
    }
    free(tau);
    if (read_f32(tz, &c->z, err, errsz) < 0 || read_f32(tx, &c->X, err, errsz) < 0) return -1;

    c->has_noise = case_tensor(g, cname, "noise_0") != NULL;
    if (!c->has_noise) return 0;
    c->noise = calloc((size_t)c->N, sizeof *c->noise);
    c->noise_n = calloc((size_t)c->N, sizeof *c->noise_n);
    if (!c->noise || !c->noise_n) {
        snprintf(err, errsz, "case '%s': out of memory", cname);
        return -1;
    }
    for (int i = 0; i < c->N; i++) {
        char what[32];
        snprintf(what, sizeof what, "noise_%d", i);
        const hd_st_tensor *tn = case_tensor(g, cname, what);
        if (!tn) {
            snprintf(err, errsz, "missing tensor 'sched.%s.%s' (the flash sampler draws at every "
                     "step)", cname, what);
            return -1;
        }
        if ((size_t)tn->numel != c->n) {
            snprintf(err, errsz, "tensor '%s': %lld elements, a sample has %zu", tn->name,
                     (long long)tn->numel, c->n);
            return -1;
        }
        if (read_f32(tn, &c->noise[i], err, errsz) < 0) return -1;
        c->noise_n[i] = c->n;
    }
    return 0;
}

/* ---- sched: the synthetic model and the replay ------------------------------------------------ */

static void synthetic_model_output(const float *X, const float *z, int tau, float *mo, size_t n) {
    const float t = hd_sched_model_time(tau);
    const float sp = hd_sched_velocity_sigma(tau);
    const float keep = 1.0f - 0.3f * t;
    for (size_t k = 0; k < n; k++) {
        float xp = X[k] * keep + 0.05f * (float)tanh((double)z[k]); /* correctly rounded tanhf */
        float v = (xp - z[k]) / sp;
        mo[k] = -v;
    }
}

typedef struct flash_setting {
    double start, end, clip;
} flash_setting;

typedef struct replay_result {
    int ok;           /* the run completed */
    double max_err;   /* over every row of z */
    int worst_row;
    char err[1024];
} replay_result;

static replay_result replay(const sched_case *c, hd_scheduler_kind kind, double shift,
                            int use_list, const flash_setting *fs) {
    replay_result r = {0};
    hd_scheduler s;
    hd_error e = {0};
    float *cur = malloc(c->n * sizeof *cur), *mo = malloc(c->n * sizeof *mo);
    if (!cur || !mo) {
        snprintf(r.err, sizeof r.err, "out of memory");
        free(cur);
        free(mo);
        return r;
    }
    if (hd_scheduler_init(&s, kind, c->N, shift, use_list ? c->tau : NULL, &e) < 0) {
        snprintf(r.err, sizeof r.err, "%s", e.msg);
        free(cur);
        free(mo);
        return r;
    }
    hd_noise_replay rec = {(const float *const *)c->noise, c->noise_n, c->N};
    if (kind == HD_SCHEDULER_FLASH) {
        hd_flash_params p = {fs->start, fs->end, fs->clip, hd_noise_replay_source(&rec)};
        if (hd_scheduler_set_flash(&s, &p, &e) < 0) goto fail;
    }
    memcpy(cur, c->z, c->n * sizeof *cur);
    for (int i = 0; i < c->N; i++) {
        synthetic_model_output(c->X, cur, s.timesteps[i], mo, c->n);
        if (hd_scheduler_step(&s, i, mo, cur, cur, c->n, &e) < 0) goto fail;
        const float *want = c->z + (size_t)(i + 1) * c->n;
        for (size_t k = 0; k < c->n; k++) {
            double d = fabs((double)cur[k] - (double)want[k]);
            if (d != d) d = INFINITY; /* a NaN on either side counts as the worst */
            if (d > r.max_err) {
                r.max_err = d;
                r.worst_row = i + 1;
            }
        }
    }
    r.ok = 1;
    hd_scheduler_free(&s);
    free(cur);
    free(mo);
    return r;
fail:
    snprintf(r.err, sizeof r.err, "%s", e.msg);
    hd_scheduler_free(&s);
    free(cur);
    free(mo);
    return r;
}

static int replay_passes(const replay_result *r) { return r->ok && r->max_err <= SCHED_TOL; }

/* ---- sched: inferring the sampler ---------------------------------------------------------- */

static int tables_match(const sched_case *c, const int *tau, const float *sig) {
    for (int i = 0; i < c->N; i++)
        if (tau[i] != c->tau[i]) return 0;
    for (int i = 0; i <= c->N; i++)
        if ((double)sig[i] != c->sig[i]) return 0;
    return 1;
}

static double round_to(double x, int decimals) {
    double f = pow(10.0, decimals);
    return round(x * f) / f;
}

/* The UniPC shift that reproduces the golden table: bisection on σ[N/2] (monotone in the
 * shift), then the coarsest decimal rounding that reproduces every τ and σ. */
static int find_unipc_shift(const sched_case *c, int *tau, float *sig, double *shift) {
    const int k = c->N / 2;
    const double target = c->sig[k];
    hd_error e = {0};
    if (!(target > 0 && target < 1)) return -1;
    double lo = 1e-4, hi = 1e4;
    if (hd_unipc_schedule(c->N, lo, tau, sig, &e) < 0 || sig[k] >= target) return -1;
    if (hd_unipc_schedule(c->N, hi, tau, sig, &e) < 0 || sig[k] < target) return -1;
    for (int it = 0; it < 200; it++) {
        double mid = sqrt(lo * hi);
        if (hd_unipc_schedule(c->N, mid, tau, sig, &e) < 0) return -1;
        if (sig[k] < target) lo = mid;
        else hi = mid;
    }
    for (int d = 0; d <= 7; d++) {
        double cand = d < 7 ? round_to(hi, d) : hi;
        if (!(cand > 0)) continue;
        if (hd_unipc_schedule(c->N, cand, tau, sig, &e) == 0 && tables_match(c, tau, sig)) {
            *shift = cand;
            return 0;
        }
    }
    return -1;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static float std_unbiased_f32(const float *v, size_t n) {
    double sum = 0, ss = 0;
    for (size_t k = 0; k < n; k++) sum += v[k];
    double mean = sum / (double)n;
    for (size_t k = 0; k < n; k++) ss += ((double)v[k] - mean) * ((double)v[k] - mean);
    return (float)sqrt(ss / (double)(n - 1));
}

/* Noise scale at step i by least squares over the elements with |noise| ≤ median |noise| (these
 * are unclipped for any clip ≥ ~0.7 std), from the golden rows z[i], z[i+1]. */
static double estimate_scale(const sched_case *c, const float *sig, int i, float *mo, double *tmp) {
    const size_t n = c->n;
    const float *z0 = c->z + (size_t)i * n, *z1 = z0 + n, *nz = c->noise[i];
    const float sigma = sig[i], sn = sig[i + 1], keep = 1.0f - sn;
    synthetic_model_output(c->X, z0, c->tau[i], mo, n);
    for (size_t k = 0; k < n; k++) tmp[k] = fabs((double)nz[k]);
    qsort(tmp, n, sizeof *tmp, cmp_double);
    const double med = tmp[n / 2];
    double num = 0, den = 0;
    for (size_t k = 0; k < n; k++) {
        if (fabs((double)nz[k]) > med) continue;
        float d = z0[k] - mo[k] * sigma;
        double rest = (double)z1[k] - (double)(keep * d);
        double a = (double)(sn * nz[k]);
        num += rest * a;
        den += a * a;
    }
    return den > 0 ? num / den : NAN;
}

/* The clip factor from the first step whose clamped elements show the bound c = clip·std. */
static int estimate_clip(const sched_case *c, const float *sig, const flash_setting *fs,
                         float *mo, double *clip) {
    const size_t n = c->n;
    for (int i = 0; i + 1 < c->N; i++) {
        const float *z0 = c->z + (size_t)i * n, *z1 = z0 + n, *nz = c->noise[i];
        const float sigma = sig[i], sn = sig[i + 1], keep = 1.0f - sn;
        const double s_i = (float)hd_flash_noise_scale(i, c->N, fs->start, fs->end);
        if (!(sn > 0) || !(s_i > 0)) continue;
        synthetic_model_output(c->X, z0, c->tau[i], mo, n);
        double bound = 0;
        int clamped = 0;
        for (size_t k = 0; k < n; k++) {
            float d = z0[k] - mo[k] * sigma;
            double rec = ((double)z1[k] - (double)(keep * d)) / s_i / (double)sn;
            if (fabs(rec - (double)nz[k]) > 1e-3 * (1.0 + fabs((double)nz[k]))) {
                bound += fabs(rec);
                clamped++;
            }
        }
        if (clamped && n > 1) {
            *clip = bound / clamped / (double)std_unbiased_f32(nz, n);
            return 1;
        }
    }
    return 0;
}

/* Flash: the official default triples first, then settings inferred from the trajectory. */
static void run_flash(golden_ctx *g, const char *cname, const sched_case *c) {
    static const flash_setting defaults[] = {{7.5, 7.5, 2.5}, {8.0, 8.0, 8.0}, {8.0, 8.0, 0.0}};
    enum { N_DEF = sizeof defaults / sizeof defaults[0], N_INF = 6 };
    flash_setting cands[N_DEF + N_INF];
    int n_cand = 0;
    for (int d = 0; d < N_DEF; d++) cands[n_cand++] = defaults[d];

    int *tau = malloc((size_t)c->N * sizeof *tau);
    float *sig = malloc(((size_t)c->N + 1) * sizeof *sig);
    float *mo = malloc(c->n * sizeof *mo);
    double *tmp = malloc(c->n * sizeof *tmp);
    hd_error e = {0};
    if (!tau || !sig || !mo || !tmp) {
        golden_result(g, 0, "sched", cname, "out of memory");
        goto done;
    }
    if (hd_fixed_schedule(c->tau, c->N, tau, sig, &e) < 0 || !tables_match(c, tau, sig)) {
        golden_result(g, 0, "sched", cname,
                      "flash case (noise_* present) but sigmas are not fl32(timesteps/1000)");
        goto done;
    }
    if (c->N >= 2) {
        flash_setting est = {0};
        est.start = estimate_scale(c, sig, 0, mo, tmp);
        est.end = est.start;
        if (c->N >= 3) {
            double s_last = estimate_scale(c, sig, c->N - 2, mo, tmp);
            est.end = est.start + (s_last - est.start) * (double)(c->N - 1) / (double)(c->N - 2);
        }
        int seen = isfinite(est.start) && estimate_clip(c, sig, &est, mo, &est.clip);
        if (isfinite(est.start) && isfinite(est.end)) {
            for (int d = 0; d <= 5; d++) {
                flash_setting f = est;
                if (d < 5) {
                    f.start = round_to(est.start, d);
                    f.end = round_to(est.end, d);
                    f.clip = seen ? round_to(est.clip, d) : 0.0;
                } else if (!seen) {
                    f.clip = 0.0;
                }
                cands[n_cand++] = f;
            }
        }
    }

    replay_result best = {0};
    int best_i = -1;
    for (int i = 0; i < n_cand; i++) {
        replay_result r = replay(c, HD_SCHEDULER_FLASH, 1.0, 1, &cands[i]);
        if (!r.ok) {
            if (best_i < 0) best = r;
            continue;
        }
        if (best_i < 0 || !best.ok || r.max_err < best.max_err) {
            best = r;
            best_i = i;
        }
        if (replay_passes(&r)) break;
    }
    if (best_i < 0) {
        golden_result(g, 0, "sched", cname, "flash: %s", best.err);
        goto done;
    }
    const flash_setting *f = &cands[best_i];
    golden_result(g, replay_passes(&best), "sched", cname,
                  "flash steps=%d s_noise=%g->%g clip_std=%g (%s) max_abs=%.3g (row %d) "
                  "(timesteps, sigmas exact; noise replayed)",
                  c->N, f->start, f->end, f->clip,
                  best_i < N_DEF ? "official default" : "inferred from the trajectory",
                  best.max_err, best.worst_row);
done:
    free(tau);
    free(sig);
    free(mo);
    free(tmp);
}

static void run_deterministic(golden_ctx *g, const char *cname, const sched_case *c) {
    int *tau = malloc((size_t)c->N * sizeof *tau);
    float *sig = malloc(((size_t)c->N + 1) * sizeof *sig);
    hd_error e = {0};
    if (!tau || !sig) {
        golden_result(g, 0, "sched", cname, "out of memory");
        goto done;
    }
    if (hd_fixed_schedule(c->tau, c->N, tau, sig, &e) == 0 && tables_match(c, tau, sig)) {
        /* A fixed list: flow-match Euler, or UniPC run on the list. */
        replay_result r = replay(c, HD_SCHEDULER_FLOW_MATCH, 1.0, 1, NULL);
        const char *what = "flow-match euler";
        if (!replay_passes(&r)) {
            replay_result u = replay(c, HD_SCHEDULER_UNIPC, 1.0, 1, NULL);
            if (u.ok && (!r.ok || u.max_err < r.max_err)) {
                r = u;
                what = "unipc on the timestep list";
            }
        }
        if (!r.ok) golden_result(g, 0, "sched", cname, "%s", r.err);
        else
            golden_result(g, replay_passes(&r), "sched", cname,
                          "%s steps=%d fixed list max_abs=%.3g (row %d) (timesteps, sigmas exact)",
                          what, c->N, r.max_err, r.worst_row);
        goto done;
    }
    double shift;
    if (find_unipc_shift(c, tau, sig, &shift) < 0) {
        golden_result(g, 0, "sched", cname,
                      "timesteps/sigmas match neither a fixed list (σ = τ/1000) nor UniPC with "
                      "any shift");
        goto done;
    }
    replay_result r = replay(c, HD_SCHEDULER_UNIPC, shift, 0, NULL);
    if (!r.ok) golden_result(g, 0, "sched", cname, "%s", r.err);
    else
        golden_result(g, replay_passes(&r), "sched", cname,
                      "unipc steps=%d shift=%g max_abs=%.3g (row %d) (timesteps, sigmas exact)",
                      c->N, shift, r.max_err, r.worst_row);
done:
    free(tau);
    free(sig);
}

void golden_run_sched(golden_ctx *g) {
    char *names[MAX_CASES];
    int n = golden_case_names(&g->golden, "sched.", names, MAX_CASES);
    if (n == 0) golden_skip(g, "sched", "*", "no sched.* tensors in golden.safetensors");
    for (int i = 0; i < n; i++) {
        sched_case c = {0};
        char err[1024];
        if (case_load(g, names[i], &c, err, sizeof err) < 0)
            golden_result(g, 0, "sched", names[i], "%s", err);
        else if (c.has_noise)
            run_flash(g, names[i], &c);
        else
            run_deterministic(g, names[i], &c);
        case_free(&c);
        free(names[i]);
    }
}
