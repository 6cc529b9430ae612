/* --from-png for `hidream generate`: the recipe a PNG carries (the library's hd_recipe, text
 * chunks "hidream:*") applied under the command line's precedence, and the recipe written with
 * every picture. The library reads strictly (a value that cannot be honoured, an unknown
 * hidream:* key or a duplicate is an error); here the flags given with --from-png override the
 * recipe, and what only the command line can check (reference images given again, the model
 * directory and backend named in messages, another model or version) is checked. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/gen_opts.h"
#include "core/error.h"

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
    hd_recipe_free(&o->recipe);
    hd_refine_result_free(&o->refined);
    refine_cli_free(&o->rcli);
}

static int recipe_fail(const gen_opts *o, const char *key, const char *msg) {
    fprintf(stderr, "hidream generate: --from-png: %s: %s: %s\n", o->from_png, key, msg);
    return -1;
}

int gen_recipe_read(gen_opts *o) {
    hd_error e = {0};
    hd_recipe *r = &o->recipe;
    if (hd_recipe_read(o->from_png, r, &e) < 0) {
        fprintf(stderr, "hidream generate: --from-png: %s\n", e.msg);
        return -1;
    }
    hd_generate_params *p = &o->p;
    const unsigned h = r->has;
    /* what no flag set; the flags that can only turn something on are or-ed */
    unsigned f = HD_RECIPE_BF16_COMPAT | HD_RECIPE_KEEP_ASPECT;
    if (!p->prompt) f |= HD_RECIPE_PROMPT, o->prompt_from_png = 1;
    if (!p->uncond_prompt) f |= HD_RECIPE_UNCOND;
    if (!o->set_seed) f |= HD_RECIPE_SEED;
    if (!o->set_steps) f |= HD_RECIPE_STEPS;
    if (!o->set_cfg) f |= HD_RECIPE_CFG;
    if (!o->set_shift) f |= HD_RECIPE_SHIFT;
    if (!o->set_sched) f |= HD_RECIPE_SCHEDULER;
    if (!o->set_timesteps && !o->steps_by_flag) f |= HD_RECIPE_TIMESTEPS;
    if (!o->set_noise) f |= HD_RECIPE_NOISE_SCALE;
    if (!o->set_clip) f |= HD_RECIPE_NOISE_CLIP;
    if (!o->set_width && !o->set_height) f |= HD_RECIPE_SIZE; /* the final size: no_snap */
    if (!o->set_layout) f |= HD_RECIPE_LAYOUT;
    hd_recipe_apply(r, p, f);
    /* what was applied counts as set: the model's defaults do not replace it */
    const unsigned got = h & f;
    o->set_seed |= !!(got & HD_RECIPE_SEED);
    o->set_steps |= !!(got & HD_RECIPE_STEPS);
    o->set_cfg |= !!(got & HD_RECIPE_CFG);
    o->set_shift |= !!(got & HD_RECIPE_SHIFT);
    o->set_sched |= !!(got & HD_RECIPE_SCHEDULER);
    o->set_timesteps |= !!(got & HD_RECIPE_TIMESTEPS);
    o->set_noise |= !!(got & HD_RECIPE_NOISE_SCALE);
    o->set_clip |= !!(got & HD_RECIPE_NOISE_CLIP);
    if (got & HD_RECIPE_SIZE) o->set_width = o->set_height = 1;
    /* the mode selects the model's defaults (apply_model_defaults) */
    if ((h & HD_RECIPE_MODE) && !o->set_mode) o->mode = r->mode, o->set_mode = 1;
    /* the model options */
    if (!o->prec.flag) o->prec.value = hd_recipe_precision(r); /* the same products again */
    if ((h & HD_RECIPE_BACKEND) && !o->set_backend) o->backend = r->backend, o->backend_from_png = 1;
    if ((h & HD_RECIPE_MODEL_DIR) && !o->model) o->model = r->model_dir, o->model_from_png = 1;
    /* the reference pictures are not in the recipe: they must be given again */
    if (h & HD_RECIPE_REFS) {
        if (r->n_refs > 0 && o->n_refs == 0)
            return recipe_fail(o, "hidream:references", "the picture was made with reference "
                                                        "images; pass them again with --ref");
        if (r->n_refs != o->n_refs)
            fprintf(stderr, "hidream generate: warning: %s was made with %d reference images, "
                            "%d given\n", o->from_png, r->n_refs, o->n_refs);
    }
    if (r->version && strcmp(r->version, hd_version()))
        fprintf(stderr, "hidream generate: warning: %s was made by hidream %.40s, this is %s; "
                        "the picture may differ\n", o->from_png, r->version, hd_version());
    return 0;
}

void gen_recipe_check_model(const gen_opts *o, const hd_model *m) {
    const char *name = o->recipe.model;
    if (name && strcmp(name, hd_model_name(m)))
        fprintf(stderr, "hidream generate: warning: %s was made with model '%.200s', this is "
                        "'%s'; the picture will differ\n", o->from_png, name, hd_model_name(m));
}

int gen_recipe_save(const gen_opts *o, const hd_model *m, const hd_image *out, hd_error *e) {
    hd_recipe r;
    hd_generate_params p = o->p;
    p.warnings = NULL;
    int rc = hd_recipe_from_params(&r, &p, out, m, e);
    if (rc < 0) return rc;
    /* the prompt agent's input: this run's, or the recipe's when its prompt is used as it is */
    const char *raw = o->refine_raw, *by = o->refine_by;
    if (!raw && o->prompt_from_png && (o->recipe.has & HD_RECIPE_REFINE))
        raw = o->recipe.raw_prompt, by = o->recipe.refine;
    if (raw && by) {
        r.raw_prompt = strdup(raw);
        r.refine = strdup(by);
        if (!r.raw_prompt || !r.refine) rc = hd_fail(e, HD_ENOMEM, "recipe: out of memory");
        r.has |= HD_RECIPE_REFINE;
    }
    if (rc == 0) rc = hd_image_save_with_recipe(o->output, out, &r, e);
    hd_recipe_free(&r);
    return rc;
}
