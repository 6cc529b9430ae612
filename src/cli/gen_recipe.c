/* The recipe a PNG from `hidream generate` carries (text chunks "hidream:*") and --from-png,
 * which reads it back. Every setting that changes the pixels is written, and every one is read
 * back: a value that cannot be honoured (malformed, out of range, a key this version does not
 * know) is an error rather than a silently different picture. Flags given with --from-png
 * override the recipe. */
#include <limits.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/gen_opts.h"

/* Prompts are capped at HD_MAX_PROMPT_BYTES anyway; no recipe value is longer. */
#define MAX_VALUE_BYTES HD_MAX_PROMPT_BYTES

const char *gen_keep(gen_opts *o, char *s) {
    if (!s) return NULL;
    if (o->n_own >= GEN_MAX_OWN) {
        free(s);
        return NULL;
    }
    o->own[o->n_own++] = s;
    return s;
}

void gen_opts_free(gen_opts *o) {
    for (int k = 0; k < o->n_own; k++) free(o->own[k]);
    o->n_own = 0;
    hd_png_text_free(&o->recipe);
}

static int recipe_fail(const gen_opts *o, const char *key, const char *msg) {
    fprintf(stderr, "hidream generate: --from-png: %s: %s: %s\n", o->from_png, key, msg);
    return -1;
}

/* Settings of the sampler and the size. Returns 1 if key is not one of them. */
static int sampler_value(gen_opts *o, const char *key, const char *v, const char *what) {
    hd_generate_params *p = &o->p;
    long iv;
    if (!strcmp(key, "hidream:seed"))
        return o->set_seed ? 0 : (o->set_seed = 1, gen_parse_u64(what, v, &p->seed));
    if (!strcmp(key, "hidream:steps")) {
        if (o->set_steps) return 0;
        if (gen_parse_int(what, v, 1, HD_MAX_TIMESTEPS, &iv)) return -1;
        p->steps = (int)iv;
        o->set_steps = 1;
        return 0;
    }
    if (!strcmp(key, "hidream:cfg"))
        return o->set_cfg ? 0 : (o->set_cfg = 1, gen_parse_double(what, v, &p->cfg));
    if (!strcmp(key, "hidream:shift"))
        return o->set_shift ? 0 : (o->set_shift = 1, gen_parse_double(what, v, &p->shift));
    if (!strcmp(key, "hidream:scheduler"))
        return o->set_sched ? 0 : (o->set_sched = 1, gen_parse_sched(what, v, &p->scheduler));
    if (!strcmp(key, "hidream:timesteps")) {
        hd_generate_params tmp;
        if (gen_parse_timesteps(what, v, &tmp)) return -1; /* validated even when overridden */
        if (o->set_timesteps || o->steps_by_flag) return 0;
        memcpy(p->timesteps, tmp.timesteps, sizeof p->timesteps);
        p->n_timesteps = tmp.n_timesteps;
        o->set_timesteps = 1;
        return 0;
    }
    if (!strcmp(key, "hidream:noise_scale")) {
        if (o->set_noise) return 0;
        o->set_noise = 1;
        return gen_parse_pair(what, v, &p->noise_scale_start, &p->noise_scale_end);
    }
    if (!strcmp(key, "hidream:noise_clip_std"))
        return o->set_clip ? 0 : (o->set_clip = 1, gen_parse_double(what, v, &p->noise_clip_std));
    if (!strcmp(key, "hidream:mode"))
        return o->set_mode ? 0 : (o->set_mode = 1, gen_parse_mode(what, v, &o->mode));
    if (!strcmp(key, "hidream:size")) {
        int w, h;
        if (gen_parse_size(what, v, &w, &h)) return -1;
        if (o->set_width || o->set_height) return 0;
        p->width = w, p->height = h;
        p->no_snap = 1; /* the recorded size is the final one */
        o->set_width = o->set_height = 1;
        return 0;
    }
    return 1;
}

/* Numerics, references, model and text. Returns 1 if key is not one of them. */
static int other_value(gen_opts *o, const char *key, const char *v, const char *what) {
    hd_generate_params *p = &o->p;
    int b;
    if (!strcmp(key, "hidream:prompt")) {
        if (!p->prompt) p->prompt = v;
        return 0;
    }
    if (!strcmp(key, "hidream:uncond")) {
        if (!p->uncond_prompt) p->uncond_prompt = v;
        return 0;
    }
    if (!strcmp(key, "hidream:bf16_compat") || !strcmp(key, "hidream:bf16_gemm") ||
        !strcmp(key, "hidream:keep_aspect")) {
        if (gen_parse_bool(what, v, &b)) return -1;
        int *dst = key[8] == 'k' ? &p->keep_aspect : key[13] == 'c' ? &p->bf16_compat : &o->bf16_gemm;
        *dst = *dst || b; /* a flag can only turn these on */
        return 0;
    }
    if (!strcmp(key, "hidream:backend")) {
        if (strcmp(v, "cpu") && strcmp(v, "cuda"))
            return recipe_fail(o, key, "must be cpu or cuda");
        if (!o->set_backend) o->backend = v, o->backend_from_png = 1;
        return 0;
    }
    if (!strcmp(key, "hidream:layout")) {
        if (!v[0] || !strchr("[{", v[0])) return recipe_fail(o, key, "is not inline JSON");
        if (!o->set_layout) p->layout = v;
        return 0;
    }
    if (!strcmp(key, "hidream:references")) {
        long n;
        if (gen_parse_int(what, v, 0, GEN_MAX_REFS, &n)) return -1;
        if (n > 0 && o->n_refs == 0)
            return recipe_fail(o, key, "the picture was made with reference images; pass them "
                                       "again with --ref");
        if (n != o->n_refs)
            fprintf(stderr, "hidream generate: warning: %s was made with %ld reference images, "
                            "%d given\n", o->from_png, n, o->n_refs);
        return 0;
    }
    if (!strcmp(key, "hidream:model_dir")) {
        if (!o->model) o->model = v, o->model_from_png = 1;
        return 0;
    }
    if (!strcmp(key, "hidream:model")) {
        o->recipe_model = v;
        return 0;
    }
    if (!strcmp(key, "hidream:version")) {
        if (strcmp(v, hd_version()))
            fprintf(stderr, "hidream generate: warning: %s was made by hidream %.40s, this is %s; "
                            "the picture may differ\n", o->from_png, v, hd_version());
        return 0;
    }
    return 1;
}

int gen_recipe_read(gen_opts *o) {
    hd_error e = {0};
    if (hd_png_read_text(o->from_png, &o->recipe, &e) < 0) {
        fprintf(stderr, "hidream generate: --from-png: %s\n", e.msg);
        return -1;
    }
    const hd_png_text *t = &o->recipe;
    if (!hd_png_text_get(t, "hidream:prompt"))
        return recipe_fail(o, "hidream:prompt", "missing (not a picture from hidream generate)");
    for (int i = 0; i < t->n; i++) {
        const char *key = t->keys[i], *v = t->values[i];
        if (strncmp(key, "hidream:", 8)) continue; /* Software, other programs' chunks */
        for (int j = 0; j < i; j++)
            if (!strcmp(t->keys[j], key)) return recipe_fail(o, key, "appears twice");
        if (strlen(v) > MAX_VALUE_BYTES) {
            char msg[96];
            snprintf(msg, sizeof msg, "%zu bytes, over the limit of %d", strlen(v),
                     MAX_VALUE_BYTES);
            return recipe_fail(o, key, msg);
        }
        char what[512];
        snprintf(what, sizeof what, "--from-png: %.400s: %s", o->from_png, key);
        int rc = sampler_value(o, key, v, what);
        if (rc == 1) rc = other_value(o, key, v, what);
        if (rc == 1) return recipe_fail(o, key, "unknown setting (made by a newer hidream?)");
        if (rc < 0) return -1;
    }
    /* the step count a timestep list implies is recorded too; they must agree */
    const char *steps = hd_png_text_get(t, "hidream:steps");
    const hd_generate_params *p = &o->p;
    if (steps && hd_png_text_get(t, "hidream:timesteps") && !o->steps_by_flag &&
        !o->timesteps_by_flag && p->steps != p->n_timesteps)
        return recipe_fail(o, "hidream:steps", "disagrees with the length of hidream:timesteps");
    return 0;
}

void gen_recipe_check_model(const gen_opts *o, const hd_model *m) {
    if (o->recipe_model && strcmp(o->recipe_model, hd_model_name(m)))
        fprintf(stderr, "hidream generate: warning: %s was made with model '%.200s', this is "
                        "'%s'; the picture will differ\n", o->from_png, o->recipe_model,
                hd_model_name(m));
}

int gen_recipe_write(const gen_opts *o, const hd_model *m, const hd_image *out,
                     gen_recipe_buf *b, hd_text_kv *kv) {
    const hd_generate_params *p = &o->p;
    snprintf(b->seed, sizeof b->seed, "%" PRIu64, p->seed);
    snprintf(b->steps, sizeof b->steps, "%d", p->n_timesteps ? p->n_timesteps : p->steps);
    snprintf(b->cfg, sizeof b->cfg, "%.17g", p->cfg);
    snprintf(b->shift, sizeof b->shift, "%.17g", p->shift);
    snprintf(b->size, sizeof b->size, "%dx%d", out->w, out->h);
    snprintf(b->noise, sizeof b->noise, "%.17g,%.17g", p->noise_scale_start, p->noise_scale_end);
    snprintf(b->clip, sizeof b->clip, "%.17g", p->noise_clip_std);
    snprintf(b->refs, sizeof b->refs, "%d", o->n_refs);
    b->ts[0] = 0;
    for (int i = 0; i < p->n_timesteps; i++) {
        size_t l = strlen(b->ts);
        snprintf(b->ts + l, sizeof b->ts - l, "%s%d", i ? "," : "", p->timesteps[i]);
    }
    /* an absolute model path: the picture can be regenerated from any directory */
    if (!realpath(o->model, b->model_dir)) snprintf(b->model_dir, sizeof b->model_dir, "%s", o->model);
    int n = 0;
    kv[n++] = (hd_text_kv){"hidream:prompt", p->prompt};
    kv[n++] = (hd_text_kv){"hidream:uncond", p->uncond_prompt ? p->uncond_prompt : " "};
    kv[n++] = (hd_text_kv){"hidream:mode", p->mode == HD_MODE_DEV ? "dev" : "full"};
    kv[n++] = (hd_text_kv){"hidream:seed", b->seed};
    kv[n++] = (hd_text_kv){"hidream:steps", b->steps};
    kv[n++] = (hd_text_kv){"hidream:cfg", b->cfg};
    kv[n++] = (hd_text_kv){"hidream:shift", b->shift};
    kv[n++] = (hd_text_kv){"hidream:scheduler", gen_sched_name(p->scheduler)};
    if (p->n_timesteps) kv[n++] = (hd_text_kv){"hidream:timesteps", b->ts};
    kv[n++] = (hd_text_kv){"hidream:noise_scale", b->noise};
    kv[n++] = (hd_text_kv){"hidream:noise_clip_std", b->clip};
    kv[n++] = (hd_text_kv){"hidream:bf16_compat", p->bf16_compat ? "1" : "0"};
    kv[n++] = (hd_text_kv){"hidream:bf16_gemm", o->bf16_gemm ? "1" : "0"};
    kv[n++] = (hd_text_kv){"hidream:backend", o->backend ? o->backend : "cpu"};
    kv[n++] = (hd_text_kv){"hidream:size", b->size};
    kv[n++] = (hd_text_kv){"hidream:model", hd_model_name(m)};
    kv[n++] = (hd_text_kv){"hidream:model_dir", b->model_dir};
    kv[n++] = (hd_text_kv){"hidream:references", b->refs};
    kv[n++] = (hd_text_kv){"hidream:keep_aspect", p->keep_aspect ? "1" : "0"};
    if (p->layout && o->n_refs) kv[n++] = (hd_text_kv){"hidream:layout", p->layout};
    kv[n++] = (hd_text_kv){"hidream:version", hd_version()};
    kv[n++] = (hd_text_kv){"Software", "hidream.c"};
    return n;
}
