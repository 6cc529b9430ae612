/* check-golden, kind "pipeline": every case of cases.json "pipeline" runs end to end from its
 * prompt string, parameters and reference images, through the model directory's own tokenizer,
 * and is compared with what the official code built and produced (pipeline.safetensors):
 * the sequences (ids, positions, token types) exactly, the processor output, the initial noise
 * exactly, the sample after the last step (rel_err ≤ 1e-4) and the image (≥ 99.5 % identical
 * pixel values, none off by more than 1). Flash cases replay the recorded per-step noise. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "golden/golden.h"
#include "image/patchify.h"
#include "pipeline/pipeline.h"

/* Values per patch row of the job's model (3·32² = 3072 for the release). */
static size_t job_patch_dim(const hd_job *job) {
    int p = job->m->cfg.gen.patch_size;
    return (size_t)3 * p * p;
}

typedef struct pcase {
    golden_ctx *g;
    const char *name;
    char why[512]; /* first mismatch, for the report line */
    int ok;
} pcase;

static void mismatch(pcase *c, const char *fmt, const char *a, long long b) {
    if (c->ok) {
        snprintf(c->why, sizeof c->why, fmt, a, b);
        c->ok = 0;
    }
}

static const hd_st_tensor *find(pcase *c, const char *suffix) {
    char nm[512];
    snprintf(nm, sizeof nm, "%s.%s", c->name, suffix);
    return hd_st_find(&c->g->pipeline, nm);
}

/* Compares an integer golden tensor with our values (exact). */
static void cmp_i64(pcase *c, const char *suffix, const int64_t *ours, int64_t n) {
    const hd_st_tensor *t = find(c, suffix);
    if (!t) return;
    if (t->numel != n) {
        mismatch(c, "%s: length differs (ours %lld)", suffix, (long long)n);
        return;
    }
    int64_t *ref = malloc((size_t)n * sizeof *ref);
    hd_error e = {0};
    if (!ref || hd_st_read_i64(t, ref, (size_t)n, &e) < 0) {
        mismatch(c, "%s: unreadable (%lld)", suffix, 0);
        free(ref);
        return;
    }
    for (int64_t i = 0; i < n; i++)
        if (ref[i] != ours[i]) {
            mismatch(c, "%s: differs first at index %lld", suffix, (long long)i);
            break;
        }
    free(ref);
}

static void cmp_sequence(pcase *c, int b, const hd_sequence *s) {
    char key[64];
    int64_t *tmp = malloc((size_t)s->S * 3 * sizeof *tmp);
    if (!tmp) return;
    for (int64_t i = 0; i < s->T; i++) tmp[i] = s->ids[i];
    snprintf(key, sizeof key, "sample%d.input_ids", b);
    cmp_i64(c, key, tmp, s->T);
    for (int64_t i = 0; i < 3 * s->S; i++) tmp[i] = s->pos[i];
    snprintf(key, sizeof key, "sample%d.position_ids", b);
    cmp_i64(c, key, tmp, 3 * s->S);
    for (int64_t i = 0; i < s->S; i++) tmp[i] = s->type[i];
    snprintf(key, sizeof key, "sample%d.token_types", b);
    cmp_i64(c, key, tmp, s->S);
    free(tmp);
}

/* Loads ref_image_* named in the case into RGB images. */
static int load_refs(pcase *c, json_t *refs, hd_image *out, int *n) {
    *n = 0;
    size_t i;
    json_t *v;
    json_array_foreach(refs, i, v) {
        const char *nm = json_string_value(v);
        const hd_st_tensor *t = nm ? hd_st_find(&c->g->pipeline, nm) : NULL;
        if (!t || t->ndim != 3 || t->shape[2] != 3 || t->dtype != HD_U8) {
            snprintf(c->why, sizeof c->why, "reference '%s' missing or not uint8 HxWx3",
                     nm ? nm : "?");
            return -1;
        }
        out[*n].h = (int)t->shape[0];
        out[*n].w = (int)t->shape[1];
        out[*n].px = malloc((size_t)t->numel);
        if (!out[*n].px) return -1;
        memcpy(out[*n].px, t->data, (size_t)t->numel);
        (*n)++;
        if (*n >= 32) break;
    }
    return 0;
}

typedef struct replay {
    float **steps;
    size_t *sizes;
    int n;
} replay;

static int replay_draw(void *user, int step, float *out, size_t n) {
    replay *r = user;
    if (step < 0 || step >= r->n || !r->steps[step]) return HD_EINVAL;
    if (r->sizes[step] != n) return HD_EMISMATCH;
    memcpy(out, r->steps[step], n * sizeof *out);
    return 0;
}

static void run_case(golden_ctx *g, hd_model *m, const char *name, json_t *cj) {
    pcase c = {g, name, "", 1};
    hd_generate_params p;
    hd_generate_defaults(&p, HD_MODE_FULL);
    p.prompt = json_string_value(json_object_get(cj, "prompt"));
    p.width = (int)json_integer_value(json_object_get(cj, "W"));
    p.height = (int)json_integer_value(json_object_get(cj, "H"));
    p.no_snap = 1; /* the golden ran with snapping off so that tiny sizes are possible */
    p.steps = (int)json_integer_value(json_object_get(cj, "steps"));
    p.cfg = json_number_value(json_object_get(cj, "cfg"));
    p.shift = json_number_value(json_object_get(cj, "shift"));
    p.seed = (uint64_t)json_integer_value(json_object_get(cj, "seed"));
    json_t *kv = json_object_get(cj, "keep_original_aspect");
    p.keep_aspect = kv && json_is_true(kv);
    const char *sched = json_string_value(json_object_get(cj, "sched"));
    if (!p.prompt || p.width <= 0 || p.height <= 0 || !sched) {
        golden_result(g, 0, "pipeline", name, "cases.json entry lacks prompt/W/H/sched");
        return;
    }
    if (!strcmp(sched, "flash")) p.scheduler = HD_SCHEDULER_FLASH;
    else if (!strcmp(sched, "flow_match")) p.scheduler = HD_SCHEDULER_FLOW_MATCH;
    else p.scheduler = HD_SCHEDULER_UNIPC;
    json_t *tl = json_object_get(cj, "tl");
    if (json_is_array(tl)) {
        size_t i;
        json_t *v;
        json_array_foreach(tl, i, v) if (i < HD_MAX_TIMESTEPS) p.timesteps[p.n_timesteps++] =
            (int)json_integer_value(v);
    }
    json_t *extra = json_object_get(cj, "extra");
    if (extra) {
        json_t *a = json_object_get(extra, "noise_scale_start"),
               *b = json_object_get(extra, "noise_scale_end"),
               *cl = json_object_get(extra, "noise_clip_std");
        if (a) p.noise_scale_start = json_number_value(a);
        p.noise_scale_end = b ? json_number_value(b) : p.noise_scale_start;
        if (cl) p.noise_clip_std = json_number_value(cl);
    } else if (p.scheduler == HD_SCHEDULER_FLASH) {
        p.noise_scale_start = p.noise_scale_end = 8.0;
        p.noise_clip_std = 0.0;
    }
    const char *layout = json_string_value(json_object_get(cj, "layout"));
    p.layout = layout;

    hd_image refs[32];
    memset(refs, 0, sizeof refs);
    int n_refs = 0;
    json_t *jr = json_object_get(cj, "refs");
    if (json_is_array(jr) && json_array_size(jr) > 0 && load_refs(&c, jr, refs, &n_refs) < 0) {
        golden_result(g, 0, "pipeline", name, "%s", c.why);
        for (int k = 0; k < n_refs; k++) hd_image_free(&refs[k]);
        return;
    }
    p.refs = refs;
    p.n_refs = n_refs;

    /* Recorded per-step noise (flash): replayed instead of our own generator. */
    replay rp = {0};
    int n_steps = p.n_timesteps ? p.n_timesteps : p.steps;
    rp.steps = calloc((size_t)n_steps, sizeof *rp.steps);
    rp.sizes = calloc((size_t)n_steps, sizeof *rp.sizes);
    rp.n = n_steps;
    int have_noise = 0;
    for (int i = 0; rp.steps && i < n_steps; i++) {
        char key[64];
        snprintf(key, sizeof key, "step_noise_%d", i);
        const hd_st_tensor *t = find(&c, key);
        if (!t) continue;
        rp.steps[i] = malloc((size_t)t->numel * sizeof(float));
        hd_error e = {0};
        if (rp.steps[i] && hd_st_read_f32(t, rp.steps[i], (size_t)t->numel, &e) == 0) {
            rp.sizes[i] = (size_t)t->numel;
            have_noise = 1;
        }
    }
    if (have_noise) {
        p.noise = replay_draw;
        p.noise_user = &rp;
    }

    hd_job job;
    hd_error e = {0};
    hd_image img = {0};
    float *trace = NULL;
    int rc = hd_job_prepare(&job, m, &p, &e);
    if (rc == 0) {
        /* what was built */
        for (int b = 0; b < job.n_branches; b++) cmp_sequence(&c, b, &job.seq[b]);
        char key[64];
        snprintf(key, sizeof key, "sample%d.input_ids", job.n_branches);
        if (find(&c, key)) mismatch(&c, "%s present but our CFG branch count is %lld", key, job.n_branches);
        if (job.n_refs > 0) {
            int64_t *gr = malloc((size_t)job.n_refs * 3 * sizeof *gr);
            for (int k = 0; gr && k < job.n_refs; k++)
                for (int d = 0; d < 3; d++) gr[k * 3 + d] = job.refs.vlm.grid_thw[k][d];
            if (gr) cmp_i64(&c, "sample0.image_grid_thw", gr, (int64_t)job.n_refs * 3);
            free(gr);
            const hd_st_tensor *pv = find(&c, "sample0.pixel_values");
            if (pv) {
                int64_t n = job.refs.vlm.n_rows * job.refs.vlm.row_dim;
                float *ref = malloc((size_t)pv->numel * sizeof *ref);
                if (pv->numel != n) mismatch(&c, "%s: size differs (ours %lld)", "pixel_values", (long long)n);
                else if (ref && hd_st_read_f32(pv, ref, (size_t)n, &e) == 0)
                    for (int64_t i = 0; i < n; i++)
                        if (ref[i] != job.refs.vlm.pixel_values[i]) {
                            mismatch(&c, "%s: differs first at %lld", "pixel_values", (long long)i);
                            break;
                        }
                free(ref);
            }
        }
        /* initial noise, exactly */
        const hd_st_tensor *in = find(&c, "initial_noise");
        if (in && in->numel == 3 * (int64_t)job.width * job.height) {
            float *chw = malloc((size_t)in->numel * sizeof *chw),
                  *rows = malloc((size_t)in->numel * sizeof *rows);
            if (chw && rows && hd_st_read_f32(in, chw, (size_t)in->numel, &e) == 0 &&
                hd_patchify(chw, job.width, job.height, m->cfg.gen.patch_size, rows, &e) == 0) {
                for (int64_t i = 0; i < in->numel; i++)
                    if (rows[i] != job.z[i]) {
                        mismatch(&c, "%s: differs first at patch value %lld", "initial_noise", (long long)i);
                        break;
                    }
            }
            free(chw);
            free(rows);
        } else if (in) {
            mismatch(&c, "%s: size differs from our %lld values", "initial_noise",
                     3LL * job.width * job.height);
        }
        size_t nz = (size_t)job.L * job_patch_dim(&job);
        trace = malloc((size_t)(job.sched.n_steps + 1) * nz * sizeof *trace);
        job.p.z_trace = trace;
        if (!trace) rc = -1;
        if (rc == 0) rc = hd_job_run(&job, &e);
        if (rc == 0) rc = hd_job_image(&job, &img, &e);
    }
    if (rc < 0) {
        golden_result(g, 0, "pipeline", name, "error: %s", e.msg);
    } else {
        /* final sample and image */
        const hd_st_tensor *zs = find(&c, "z_steps");
        const hd_st_tensor *im = find(&c, "image");
        size_t nz = (size_t)job.L * job_patch_dim(&job);
        int steps = job.sched.n_steps;
        double rel = INFINITY, worst_row = 0;
        int worst_i = -1;
        if (zs && zs->numel == (int64_t)((size_t)(steps + 1) * nz)) {
            double *ref = malloc((size_t)zs->numel * sizeof *ref);
            if (ref && hd_st_read_f64(zs, ref, (size_t)zs->numel, &e) == 0) {
                for (int i = 0; i <= steps; i++) {
                    double r = golden_rel_err(trace + (size_t)i * nz, ref + (size_t)i * nz, nz);
                    if (r > worst_row) {
                        worst_row = r;
                        worst_i = i;
                    }
                    if (i == steps) rel = r;
                }
            }
            free(ref);
        } else {
            mismatch(&c, "%s: missing or of another size (ours %lld values)", "z_steps",
                     (long long)((size_t)(steps + 1) * nz));
        }
        double same = 0;
        int maxd = 256;
        if (im && im->numel == 3LL * img.w * img.h && im->dtype == HD_U8) {
            const uint8_t *r = im->data;
            int64_t eq = 0;
            maxd = 0;
            for (int64_t i = 0; i < im->numel; i++) {
                int d = abs((int)r[i] - (int)img.px[i]);
                eq += d == 0;
                if (d > maxd) maxd = d;
            }
            same = 100.0 * (double)eq / (double)im->numel;
        } else {
            mismatch(&c, "%s: missing or of another size (ours %lld values)", "image",
                     3LL * img.w * img.h);
        }
        int pass = c.ok && rel <= 1e-4 && same >= 99.5 && maxd <= 1;
        golden_result(g, pass, "pipeline", name,
                      "rel_err=%.3g identical=%.3f%% max_diff=%d%s%s (worst step row %d: %.3g)%s%s",
                      rel, same, maxd, c.ok ? " sequences=ok" : " ", c.ok ? "" : c.why, worst_i,
                      worst_row, job.layout_ignored ? " [layout ignored: not JSON]" : "",
                      have_noise ? " [recorded step noise replayed]" : "");
    }
    if (rc == 0 || job.m) hd_job_free(&job);
    hd_image_free(&img);
    free(trace);
    for (int i = 0; rp.steps && i < n_steps; i++) free(rp.steps[i]);
    free(rp.steps);
    free(rp.sizes);
    for (int k = 0; k < n_refs; k++) hd_image_free(&refs[k]);
}

void golden_run_pipeline(golden_ctx *g) {
    json_t *cases = g->cases ? json_object_get(g->cases, "pipeline") : NULL;
    if (!json_is_object(cases) || !g->pipeline.n_tensors) {
        if (g->pipeline.n_tensors)
            golden_skip(g, "pipeline", "*", "cases.json has no \"pipeline\" object");
        return;
    }
    hd_model *m = NULL;
    hd_error e = {0};
    /* the official outputs are matched in float32, never in a machine's default precision */
    hd_model_options mo = {.backend = g->backend, .n_threads = g->n_threads,
                           .precision = HD_PRECISION_EXACT};
    if (hd_model_load(&m, g->dir, &mo, &e) < 0) {
        const char *k;
        json_t *v;
        json_object_foreach(cases, k, v) golden_result(g, 0, "pipeline", k, "model: %s", e.msg);
        return;
    }
    const char *k;
    json_t *v;
    json_object_foreach(cases, k, v) run_case(g, m, k, v);
    hd_model_free(m);
}
