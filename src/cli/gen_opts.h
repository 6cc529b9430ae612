/* `hidream generate`'s options, shared by its argument parser (cmd_generate.c), its value
 * parsers (gen_parse.c) and its PNG recipe (gen_recipe.c: what a picture records so that
 * --from-png makes the same picture again). */
#ifndef HD_CLI_GEN_OPTS_H
#define HD_CLI_GEN_OPTS_H

#include <stdint.h>

#include "hidream.h"
#include "image/codec.h"

#define GEN_MAX_REFS 32
#define GEN_MAX_OWN 16

typedef struct gen_opts {
    const char *model, *output, *from_png, *preview_dir;
    const char *ref_paths[GEN_MAX_REFS];
    int n_refs;
    int threads, verbose, bf16_gemm;
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
    hd_png_text recipe;          /* the --from-png picture's text chunks */
    const char *recipe_model;    /* the model name it records (NULL if none) */
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
int gen_parse_size(const char *what, const char *s, int *w, int *h); /* "WxH" */
int gen_parse_pair(const char *what, const char *s, double *a, double *b); /* "A,B" */
int gen_parse_bool(const char *what, const char *s, int *out);              /* "0" or "1" */
const char *gen_sched_name(hd_scheduler_kind k);

/* Reads o->from_png's recipe and applies every value no flag set; any value that cannot be
 * honoured (malformed, out of range, an unknown hidream:* key) is an error: one line, -1. */
int gen_recipe_read(gen_opts *o);
/* Warnings once the model is loaded: another model name or hidream version than the recipe's. */
void gen_recipe_check_model(const gen_opts *o, const hd_model *m);

/* The recipe of a finished picture as PNG text chunks (kv: room for GEN_RECIPE_MAX_KEYS);
 * strings it formats live in buf. Returns the number of chunks. */
#define GEN_RECIPE_MAX_KEYS 28
typedef struct gen_recipe_buf {
    char seed[32], steps[16], cfg[32], shift[32], size[32], noise[64], clip[32], refs[16];
    char ts[8 * HD_MAX_TIMESTEPS];
    char model_dir[4096];
} gen_recipe_buf;
int gen_recipe_write(const gen_opts *o, const hd_model *m, const hd_image *out,
                     gen_recipe_buf *buf, hd_text_kv *kv);

#endif
