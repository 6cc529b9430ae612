/* `hidream generate`'s options, shared by its argument parser (cmd_generate.c), its value
 * parsers (gen_parse.c) and its PNG recipe (gen_recipe.c: the library's hd_recipe applied with
 * the flags' precedence, so that --from-png makes the same picture again). */
#ifndef HD_CLI_GEN_OPTS_H
#define HD_CLI_GEN_OPTS_H

#include <stdint.h>

#include "cli/precision_cli.h"
#include "cli/refine_cli.h"
#include "hidream.h"
#include "image/codec.h"

#define GEN_MAX_REFS 32
#define GEN_MAX_OWN 16

typedef struct gen_opts {
    const char *model, *output, *from_png, *preview_dir;
    const char *ref_paths[GEN_MAX_REFS];
    int n_refs;
    int threads, verbose;
    precision_cli prec; /* --precision and its shorthands; else the recipe's, else auto */
    const char *backend;
    hd_mode mode;
    hd_generate_params p;
    /* which fields were set, by a flag or by the --from-png recipe (model defaults fill the
     * rest); flags are applied first and the recipe never overrides a flag */
    int set_mode, set_steps, set_cfg, set_shift, set_seed, set_sched, set_noise, set_clip;
    int set_width, set_height, set_timesteps, set_layout, set_backend;
    int steps_by_flag, timesteps_by_flag; /* set by a flag, not by the recipe */
    /* where the model directory and backend came from, for messages */
    int model_from_png, backend_from_png;
    hd_recipe recipe;            /* the --from-png picture's recipe (has == 0: none) */
    int prompt_from_png;         /* the prompt is the recipe's */
    hd_warnings warnings;        /* what the library warns about (printed once) */
    /* --refine: the prompt agent's options and result; the raw prompt and the agent (or
     * "fallback") are recorded with the picture */
    int do_refine;
    refine_cli rcli;
    hd_refine_result refined;
    const char *refine_raw, *refine_by;
    char *own[GEN_MAX_OWN];      /* strings this struct owns (freed by gen_opts_free) */
    int n_own;
} gen_opts;

/* Keeps a malloc'd string in o (freed with it); returns it, or NULL when s is NULL or memory
 * runs out. */
const char *gen_keep(gen_opts *o, char *s);
void gen_opts_free(gen_opts *o);

/* Strict value parsers: the whole string must be the value (no leading space or sign where
 * none belongs, no trailing characters). On failure they print one line
 * "hidream generate: WHAT: 'S' is not ..." and return -1. */
int gen_parse_int(const char *what, const char *s, long lo, long hi, long *out);
int gen_parse_u64(const char *what, const char *s, uint64_t *out);
int gen_parse_double(const char *what, const char *s, double *out);
int gen_parse_timesteps(const char *what, const char *s, hd_generate_params *p);
int gen_parse_sched(const char *what, const char *s, hd_scheduler_kind *k);
int gen_parse_mode(const char *what, const char *s, hd_mode *m);

/* Reads o->from_png's recipe (hd_recipe_read: strict) and applies every value no flag set; any
 * value that cannot be honoured (malformed, out of range, an unknown hidream:* key, references
 * the command line does not give again) is an error: one line, -1. */
int gen_recipe_read(gen_opts *o);
/* Warnings once the model is loaded: another model name or hidream version than the recipe's. */
void gen_recipe_check_model(const gen_opts *o, const hd_model *m);
/* Saves the finished picture to o->output with its recipe (hd_recipe_from_params, plus the
 * prompt agent's input when refine_raw is set or the recipe's prompt is reused). */
int gen_recipe_save(const gen_opts *o, const hd_model *m, const hd_image *out, hd_error *e);

#endif
