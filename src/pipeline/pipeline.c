/* The generation loop (spec 00 §2, 05 §4), device-agnostic. */
#include "pipeline/pipeline.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/dtype.h"
#include "core/error.h"
#include "image/patchify.h"
#include "image/layout.h"
#include "pipeline/prompt.h"
#include "pipeline/resolution.h"

#define RELEASE_NOISE_SCALE 8.0 /* upstream NOISE_SCALE (the default of hidream.noise_scale) */

void hd_generate_defaults(hd_generate_params *p, hd_mode mode) {
    memset(p, 0, sizeof *p);
    p->mode = mode;
    p->width = p->height = 2048;
    p->scheduler = HD_SCHEDULER_AUTO;
    if (mode == HD_MODE_DEV) {
        p->steps = HD_DEFAULT_TIMESTEPS_COUNT;
        p->cfg = 0.0;
        p->shift = 1.0;
        p->seed = 32;
        p->noise_scale_start = p->noise_scale_end = 7.5;
        p->noise_clip_std = 2.5;
    } else {
        p->steps = 50;
        p->cfg = 5.0;
        p->shift = 3.0;
        p->seed = 32;
        p->noise_scale_start = p->noise_scale_end = RELEASE_NOISE_SCALE;
        p->noise_clip_std = 0.0;
    }
}

static hd_scheduler_kind scheduler_by_name(const char *s) {
    if (!strcmp(s, "unipc")) return HD_SCHEDULER_UNIPC;
    if (!strcmp(s, "flow_match")) return HD_SCHEDULER_FLOW_MATCH;
    if (!strcmp(s, "flash")) return HD_SCHEDULER_FLASH;
    return HD_SCHEDULER_AUTO;
}

void hd_model_generate_defaults(const hd_model *m, hd_generate_params *p, hd_mode mode) {
    hd_generate_defaults(p, mode);
    const hd_gen_config *g = &m->cfg.gen;
    if (hd_model_has_own_sizes(g)) {
        int list[HD_MAX_RESOLUTIONS][2];
        hd_model_presets(g, list);
        p->width = g->native_w > 0 ? g->native_w : list[0][0];
        p->height = g->native_w > 0 ? g->native_h : list[0][1];
    }
    if (g->scheduler[0]) p->scheduler = scheduler_by_name(g->scheduler);
    if (g->steps > 0) p->steps = g->steps;
    if (g->guidance >= 0) p->cfg = g->guidance;
    if (g->shift > 0) p->shift = g->shift;
    /* the flash sampler re-noises at the model's own noise level */
    if (g->stated) p->noise_scale_start = p->noise_scale_end = g->noise_scale;
}

static void warn(const hd_generate_params *p, const char *fmt, const char *detail) {
    hd_warnings *w = p->warnings;
    if (!w || w->n >= HD_MAX_WARNINGS) return;
    /* a long detail is cut: a warning is one short line */
    char d[200];
    snprintf(d, sizeof d, "%.199s", detail);
    snprintf(w->msg[w->n++], sizeof w->msg[0], fmt, d);
}

/* The cases where the official code warns and carries on; a layout that cannot be read at all
 * (a missing file) is an error. */
static int collect_warnings(const hd_generate_params *p, hd_error *e) {
    if (p->keep_aspect && p->n_refs != 1)
        warn(p, "keep_aspect needs exactly one reference image; the size is snapped instead%s", "");
    if (!p->layout || !p->layout[0]) return 0;
    if (p->n_refs == 0) {
        warn(p, "the layout is ignored without reference images%s", "");
        return 0;
    }
    if (p->keep_aspect && p->n_refs == 1) {
        warn(p, "the layout is ignored with keep_aspect%s", "");
        return 0;
    }
    hd_layout lay = {0};
    hd_error le = {0};
    int rc = hd_layout_load(p->layout, &lay, &le);
    hd_layout_free(&lay);
    if (rc == HD_EFORMAT) warn(p, "layout ignored: %s", le.msg);
    else if (rc < 0) return hd_fail(e, rc, "%s", le.msg);
    return 0;
}

int hd_model_check_request(const hd_model *m, const hd_generate_params *p, hd_error *e) {
    const hd_gen_config *g = &m->cfg.gen;
    if (p->warnings) p->warnings->n = 0;
    int wants_refs = p->n_refs > 0 || (p->layout && p->layout[0]);
    if (wants_refs && !m->vit && m->vit_unusable[0])
        return hd_fail(e, HD_EUNSUPPORTED,
                       "%s: reference images and layouts need the vision tower, which this model "
                       "has but cannot use: %s", m->dir, m->vit_unusable);
    if (wants_refs && !m->vit)
        return hd_fail(e, HD_EUNSUPPORTED,
                       "%s: reference images and layouts need a vision tower, and this model has "
                       "none (text-to-image only)",
                       m->dir);
    if (wants_refs && g->patch_size != HD_PATCH)
        return hd_fail(e, HD_EUNSUPPORTED,
                       "%s: reference images need %d-pixel patches; this model's patch size is %d",
                       m->dir, HD_PATCH, g->patch_size);
    int w, h;
    HD_TRY(hd_resolve_size(g, p->width, p->height, p->no_snap, &w, &h, e));
    return collect_warnings(p, e);
}

int hd_model_output_size(const hd_model *m, const hd_generate_params *p, int *w, int *h,
                         hd_error *e) {
    return hd_resolve_size(&m->cfg.gen, p->width, p->height, p->no_snap, w, h, e);
}

static int check_params(const hd_generate_params *p, hd_error *e) {
    if (!p->prompt) return hd_fail(e, HD_EINVAL, "prompt: missing");
    if (p->mode != HD_MODE_FULL && p->mode != HD_MODE_DEV)
        return hd_fail(e, HD_EINVAL, "mode: must be full or dev");
    if (p->n_timesteps < 0 || p->n_timesteps > HD_MAX_TIMESTEPS)
        return hd_fail(e, HD_EINVAL, "timesteps: between 1 and %d values", HD_MAX_TIMESTEPS);
    if (p->n_timesteps == 0 && (p->steps < 1 || p->steps > HD_MAX_TIMESTEPS))
        return hd_fail(e, HD_EINVAL, "steps: %d is outside 1..%d", p->steps, HD_MAX_TIMESTEPS);
    for (int i = 0; i < p->n_timesteps; i++) {
        if (p->timesteps[i] < 0 || p->timesteps[i] > 999)
            return hd_fail(e, HD_EINVAL, "timesteps[%d]: %d is outside 0..999", i, p->timesteps[i]);
        if (i && p->timesteps[i] >= p->timesteps[i - 1])
            return hd_fail(e, HD_EINVAL, "timesteps: must be strictly decreasing (entry %d)", i);
    }
    if (!(p->cfg >= 0 && p->cfg < 1e4)) return hd_fail(e, HD_EINVAL, "cfg: %g is out of range", p->cfg);
    if (!(p->shift > 0 && p->shift < 1e4))
        return hd_fail(e, HD_EINVAL, "shift: %g must be positive", p->shift);
    if (!(p->noise_scale_start >= 0 && p->noise_scale_start < 1e4) ||
        !(p->noise_scale_end >= 0 && p->noise_scale_end < 1e4))
        return hd_fail(e, HD_EINVAL, "noise scale: must be in [0, 1e4)");
    if (!(p->noise_clip_std >= 0 && p->noise_clip_std < 1e4))
        return hd_fail(e, HD_EINVAL, "noise clip std: must be in [0, 1e4)");
    if (p->n_refs < 0 || (p->n_refs > 0 && !p->refs))
        return hd_fail(e, HD_EINVAL, "references: invalid list");
    if (p->width <= 0 || p->height <= 0)
        return hd_fail(e, HD_EINVAL, "size %dx%d: width and height must be positive", p->width,
                       p->height);
    return 0;
}

/* The official choice of sampler: full → UniPC; dev → flash, except exactly one reference
 * (editing) → flow-match Euler. */
static hd_scheduler_kind pick_scheduler(const hd_generate_params *p) {
    if (p->scheduler != HD_SCHEDULER_AUTO) return p->scheduler;
    if (p->mode == HD_MODE_FULL) return HD_SCHEDULER_UNIPC;
    return p->n_refs == 1 ? HD_SCHEDULER_FLOW_MATCH : HD_SCHEDULER_FLASH;
}

static int build_branch(hd_job *job, int b, const char *text, const int *image_tokens,
                        const hd_grid *vlm, const hd_grid *refs, hd_error *e) {
    hd_model *m = job->m;
    int32_t *ids = NULL;
    size_t n = 0;
    HD_TRY(hd_chat_encode(m->tok, text, job->n_refs, image_tokens, &ids, &n, e));
    const int patch = m->cfg.gen.patch_size;
    hd_grid target = {1, job->height / patch, job->width / patch};
    int rc = hd_sequence_build(&job->seq[b], ids, (int64_t)n, &m->cfg.ids, vlm, job->n_refs,
                               target, refs, job->n_refs, e);
    free(ids);
    if (rc < 0) return rc;
    hd_sequence *s = &job->seq[b];
    job->out_rows[b] = malloc((size_t)job->L * sizeof(int32_t));
    if (!job->out_rows[b]) return hd_fail(e, HD_ENOMEM, "out of memory");
    for (int64_t i = 0; i < job->L; i++) job->out_rows[b][i] = (int32_t)(s->T + i);
    return 0;
}

static hd_uit_seq uit_seq(const hd_job *job, int b) {
    const hd_sequence *s = &job->seq[b];
    hd_uit_seq u = {s->ids, s->T, s->S, s->pos, s->A, job->have_vit ? &job->vit : NULL};
    return u;
}

int hd_job_prepare(hd_job *job, hd_model *m, const hd_generate_params *p, hd_error *e) {
    memset(job, 0, sizeof *job);
    job->m = m;
    HD_TRY(check_params(p, e));
    /* both texts are checked before any reference is processed */
    HD_TRY(hd_prompt_check(m->tok, p->prompt, "prompt", 1, e));
    if (p->cfg > 1.0)
        HD_TRY(hd_prompt_check(m->tok, p->uncond_prompt ? p->uncond_prompt : " ",
                               "unconditional prompt", 0, e));
    job->p = *p;
    hd_generate_params *q = &job->p;
    if (!q->uncond_prompt) q->uncond_prompt = " ";
    job->sched_kind = pick_scheduler(q);
    const int patch = m->cfg.gen.patch_size;
    const size_t patch_dim = (size_t)3 * patch * patch;
    HD_TRY(hd_model_check_request(m, q, e));

    /* Output size: the model's presets unless --no-snap; references may override it
     * (keep_aspect). */
    int w, h;
    HD_TRY(hd_resolve_size(&m->cfg.gen, q->width, q->height, q->no_snap, &w, &h, e));

    /* References → patch rows, condition images, processor output; may change the size. */
    if (q->n_refs > 0) {
        hd_layout layout = {0}, *lp = NULL;
        /* upstream ignores the layout in keep-original-aspect mode and when it is empty */
        int use_layout = q->layout && q->layout[0] && !(q->keep_aspect && q->n_refs == 1);
        if (use_layout) {
            int lrc = hd_layout_load(q->layout, &layout, e);
            if (lrc == 0) lp = &layout;
            else if (lrc == HD_EFORMAT) job->layout_ignored = 1; /* upstream: warn, go on */
            else return lrc;
        }
        hd_image *imgs = calloc((size_t)q->n_refs, sizeof *imgs);
        if (!imgs) {
            hd_layout_free(&layout);
            return hd_fail(e, HD_ENOMEM, "out of memory");
        }
        for (int k = 0; k < q->n_refs; k++)
            imgs[k] = q->refs[k];
        hd_processor_params pp = hd_processor_defaults();
        pp.patch_size = m->cfg.vision.patch_size;
        pp.temporal_patch_size = m->cfg.vision.temporal_patch_size;
        pp.merge_size = m->cfg.vision.spatial_merge_size;
        int rrc = hd_refs_prepare(imgs, q->n_refs, w, h, q->keep_aspect && q->n_refs == 1, lp, &pp,
                                  &job->refs, e);
        free(imgs);
        hd_layout_free(&layout);
        if (rrc < 0) return rrc;
        job->n_refs = job->refs.n;
        w = job->refs.target_w;
        h = job->refs.target_h;
    }
    job->width = w;
    job->height = h;
    job->L = (int64_t)(w / patch) * (h / patch);

    /* Sequences: conditional, and unconditional when CFG is on (the references are kept). */
    int rc = 0;
    job->n_branches = q->cfg > 1.0 ? 2 : 1;
    hd_grid *vlm = NULL, *rg = NULL;
    int *ntok = NULL;
    if (job->n_refs > 0) {
        vlm = calloc((size_t)job->n_refs, sizeof *vlm);
        rg = calloc((size_t)job->n_refs, sizeof *rg);
        ntok = calloc((size_t)job->n_refs, sizeof *ntok);
        if (!vlm || !rg || !ntok) rc = hd_fail(e, HD_ENOMEM, "out of memory");
        int merge = m->cfg.vision.spatial_merge_size;
        for (int k = 0; rc == 0 && k < job->n_refs; k++) {
            const int64_t *g = job->refs.vlm.grid_thw[k];
            vlm[k] = (hd_grid){(int)g[0], (int)g[1] / merge, (int)g[2] / merge};
            ntok[k] = vlm[k].t * vlm[k].h * vlm[k].w;
            const hd_image *ri = &job->refs.entries[k].image;
            rg[k] = (hd_grid){1, ri->h / patch, ri->w / patch};
        }
    }
    if (rc == 0) rc = build_branch(job, 0, q->prompt, ntok, vlm, rg, e);
    if (rc == 0 && job->n_branches == 2) rc = build_branch(job, 1, q->uncond_prompt, ntok, vlm, rg, e);
    free(vlm);
    free(rg);
    free(ntok);
    if (rc < 0) return rc;

    /* Scheduler. */
    const int *list = q->n_timesteps > 0 ? q->timesteps : NULL;
    int n_steps = q->n_timesteps > 0 ? q->n_timesteps : q->steps;
    int own_list[HD_MAX_TIMESTEPS];
    if (!list && job->sched_kind != HD_SCHEDULER_UNIPC && m->cfg.gen.stated &&
        n_steps != HD_DEFAULT_TIMESTEPS_COUNT) {
        /* A model with its own settings may run the Euler samplers for any number of steps:
         * on the UniPC timesteps of its shift (the dev list only fits the released model). */
        float sig[HD_MAX_TIMESTEPS + 1];
        HD_TRY(hd_unipc_schedule(n_steps, q->shift, own_list, sig, e));
        list = own_list;
    }
    if (!list && job->sched_kind != HD_SCHEDULER_UNIPC) {
        if (n_steps != HD_DEFAULT_TIMESTEPS_COUNT)
            return hd_fail(e, HD_EINVAL,
                           "steps: the %s sampler uses the dev model's %d fixed timesteps; give "
                           "--timesteps for another list",
                           job->sched_kind == HD_SCHEDULER_FLASH ? "flash" : "flow-match",
                           HD_DEFAULT_TIMESTEPS_COUNT);
    }
    HD_TRY(hd_scheduler_init(&job->sched, job->sched_kind, n_steps, q->shift, list, e));
    job->p.steps = n_steps;

    /* Initial noise: randn(1, 3, H, W) of a CPU torch generator seeded seed + 1, times the
     * noise scale (the model's, 8 for the release; noise_scale_start for flash), patchified. */
    size_t n_noise = (size_t)3 * w * h, n_z = (size_t)job->L * patch_dim;
    float *chw = malloc(n_noise * sizeof *chw);
    job->z = malloc(n_z * sizeof *job->z);
    job->vin = malloc(((size_t)job->L + (size_t)job->refs.n_patch_rows) * patch_dim * sizeof *job->vin);
    job->xc = malloc(n_z * sizeof *job->xc);
    job->v = malloc(n_z * sizeof *job->v);
    job->xu = job->n_branches == 2 ? malloc(n_z * sizeof *job->xu) : NULL;
    if (!chw || !job->z || !job->vin || !job->xc || !job->v || (job->n_branches == 2 && !job->xu)) {
        free(chw);
        return hd_fail(e, HD_ENOMEM, "out of memory for a %dx%d sample", w, h);
    }
    hd_noise_default_init(&job->noise_default, q->seed);
    rc = hd_noise_default_initial(&job->noise_default, chw, n_noise, e);
    float s0 = job->sched_kind == HD_SCHEDULER_FLASH ? (float)q->noise_scale_start
                                                     : (float)m->cfg.gen.noise_scale;
    for (size_t i = 0; i < n_noise; i++) {
        chw[i] = s0 * chw[i];
        if (q->bf16_compat) chw[i] = hd_round_bf16(chw[i]);
    }
    if (rc == 0) rc = hd_patchify(chw, w, h, patch, job->z, e);
    free(chw);
    if (rc < 0) return rc;
    if (q->bf16_compat)
        for (int64_t i = 0; i < job->refs.n_patch_rows * (int64_t)patch_dim; i++)
            job->refs.patches[i] = hd_round_bf16(job->refs.patches[i]);

    if (job->sched_kind == HD_SCHEDULER_FLASH) {
        hd_flash_params fp = {q->noise_scale_start, q->noise_scale_end, q->noise_clip_std,
                              hd_noise_default_source(&job->noise_default)};
        if (q->noise) fp.noise = (hd_noise_source){q->noise, q->noise_user};
        HD_TRY(hd_scheduler_set_flash(&job->sched, &fp, e));
    }

    /* ViT once per generation; its output serves every step and both branches. */
    if (job->n_refs > 0) {
        if (q->bf16_compat)
            for (int64_t i = 0; i < job->refs.vlm.n_rows * job->refs.vlm.row_dim; i++)
                job->refs.vlm.pixel_values[i] = hd_round_bf16(job->refs.vlm.pixel_values[i]);
        HD_TRY(hd_vit_forward(m->vit, job->refs.vlm.pixel_values,
                              (const int64_t(*)[3])job->refs.vlm.grid_thw, job->n_refs, &job->vit, e));
        job->have_vit = 1;
    }
    /* Text-prefix K/V once per branch. */
    for (int b = 0; b < job->n_branches; b++) {
        hd_uit_seq s = uit_seq(job, b);
        HD_TRY(hd_uit_prefix_build(m->uit, &s, &job->cache[b], NULL, e));
    }
    return 0;
}

/* One model call: x̂ rows of the target for branch b at timestep tau. */
static int predict(hd_job *job, int b, int tau, float *out, hd_error *e) {
    hd_uit_seq s = uit_seq(job, b);
    return hd_uit_forward_cached(job->m->uit, &job->cache[b], &s, job->vin,
                                 hd_sched_model_time(tau), job->out_rows[b], job->L, out, NULL, e);
}

static int check_finite(const float *x, size_t n, int step, hd_error *e) {
    for (size_t k = 0; k < n; k++)
        if (!isfinite(x[k]))
            return hd_fail(e, HD_EFORMAT,
                           "step %d: the model's prediction is not finite (NaN or infinity); its "
                           "weights may be damaged", step + 1);
    return 0;
}

int hd_job_run(hd_job *job, hd_error *e) {
    const hd_generate_params *q = &job->p;
    const size_t patch_dim = (size_t)3 * job->m->cfg.gen.patch_size * job->m->cfg.gen.patch_size;
    size_t n_z = (size_t)job->L * patch_dim;
    float g = (float)q->cfg;
    if (q->z_trace) memcpy(q->z_trace, job->z, n_z * sizeof(float));
    if (job->refs.n_patch_rows)
        memcpy(job->vin + n_z, job->refs.patches,
               (size_t)job->refs.n_patch_rows * patch_dim * sizeof(float));
    for (int i = 0; i < job->sched.n_steps; i++) {
        int tau = job->sched.timesteps[i];
        float sp = hd_sched_velocity_sigma(tau);
        memcpy(job->vin, job->z, n_z * sizeof(float));
        int prc = predict(job, 0, tau, job->xc, e);
        if (prc == 0 && job->n_branches == 2) prc = predict(job, 1, tau, job->xu, e);
        if (prc == HD_ECANCELLED)
            return hd_fail(e, prc, "cancelled during step %d of %d", i + 1, job->sched.n_steps);
        if (prc < 0) return prc;
        /* NaN/Inf weights (or an overflow) would otherwise give a black picture and exit 0 */
        HD_TRY(check_finite(job->xc, n_z, i, e));
        if (job->n_branches == 2) HD_TRY(check_finite(job->xu, n_z, i, e));
        /* v = (x̂ − z)/σp per branch, CFG v = v_u + g(v_c − v_u); the scheduler takes −v. */
        for (size_t k = 0; k < n_z; k++) {
            float vc = (job->xc[k] - job->z[k]) / sp;
            float v = vc;
            if (job->n_branches == 2) {
                float vu = (job->xu[k] - job->z[k]) / sp;
                v = vu + g * (vc - vu);
            }
            job->v[k] = -v;
        }
        HD_TRY(hd_scheduler_step(&job->sched, i, job->v, job->z, job->z, n_z, e));
        if (q->bf16_compat)
            for (size_t k = 0; k < n_z; k++) job->z[k] = hd_round_bf16(job->z[k]);
        if (q->z_trace) memcpy(q->z_trace + (size_t)(i + 1) * n_z, job->z, n_z * sizeof(float));
        if (q->progress) {
            hd_image prev = {0}, *pp = NULL;
            int want = q->preview_every > 0 &&
                       ((i + 1) % q->preview_every == 0 || i + 1 == job->sched.n_steps);
            if (want && hd_rows_to_image(job->xc, job->width, job->height,
                                         job->m->cfg.gen.patch_size, 0, &prev, e) == 0)
                pp = &prev;
            int stop = q->progress(q->progress_user, i + 1, job->sched.n_steps, pp);
            hd_image_free(&prev);
            if (stop) return hd_fail(e, HD_ECANCELLED, "cancelled at step %d of %d", i + 1,
                                     job->sched.n_steps);
        }
        if (q->cancel && q->cancel(q->cancel_user) && i + 1 < job->sched.n_steps)
            return hd_fail(e, HD_ECANCELLED, "cancelled at step %d of %d", i + 1,
                           job->sched.n_steps);
    }
    return 0;
}

int hd_rows_to_image(const float *rows, int w, int h, int patch, int bf16_round, hd_image *out,
                     hd_error *e) {
    size_t n = (size_t)3 * w * h;
    float *chw = malloc(n * sizeof *chw);
    out->px = malloc(n);
    if (!chw || !out->px) {
        free(chw);
        free(out->px);
        out->px = NULL;
        return hd_fail(e, HD_ENOMEM, "out of memory for a %dx%d image", w, h);
    }
    int rc = hd_unpatchify(rows, w, h, patch, chw, e);
    if (rc == 0) {
        out->w = w;
        out->h = h;
        for (int c = 0; c < 3; c++)
            for (size_t i = 0; i < (size_t)w * h; i++) {
                /* (z + 1)/2·255, clamped, rounded half to even (spec 05 §8). With bf16_round the
                 * sum is rounded to bf16 first, as the official bf16 tensor does. */
                double a = (double)chw[(size_t)c * w * h + i] + 1.0;
                if (bf16_round) a = hd_round_bf16((float)a);
                double px = bf16_round ? (double)(float)((float)(a / 2) * 255.0f) : a / 2 * 255.0;
                if (px < 0) px = 0;
                if (px > 255) px = 255;
                out->px[i * 3 + (size_t)c] = (uint8_t)nearbyint(px);
            }
    } else {
        free(out->px);
        out->px = NULL;
    }
    free(chw);
    return rc;
}

int hd_job_image(const hd_job *job, hd_image *out, hd_error *e) {
    return hd_rows_to_image(job->z, job->width, job->height, job->m->cfg.gen.patch_size,
                            job->p.bf16_compat, out, e);
}

void hd_job_free(hd_job *job) {
    for (int b = 0; b < 2; b++) {
        hd_sequence_free(&job->seq[b]);
        hd_prefix_cache_free(&job->cache[b]);
        free(job->out_rows[b]);
    }
    if (job->have_vit) hd_vit_output_free(job->m->be, &job->vit);
    hd_scheduler_free(&job->sched);
    hd_refs_free(&job->refs);
    free(job->z);
    free(job->vin);
    free(job->xc);
    free(job->xu);
    free(job->v);
    memset(job, 0, sizeof *job);
}

int hd_generate(hd_model *m, const hd_generate_params *p, hd_image *out, hd_error *e) {
    memset(out, 0, sizeof *out);
    hd_job job;
    /* the model's layers poll the caller's flag (one generation per model at a time) */
    m->uit->cancel = p->cancel;
    m->uit->cancel_user = p->cancel_user;
    int rc = hd_job_prepare(&job, m, p, e);
    if (rc == HD_ECANCELLED) rc = hd_fail(e, rc, "cancelled before the first step");
    if (rc == 0) rc = hd_job_run(&job, e);
    if (rc == 0) rc = hd_job_image(&job, out, e);
    hd_job_free(&job);
    m->uit->cancel = NULL;
    m->uit->cancel_user = NULL;
    return rc;
}
