/* The training recipe: one JSON file that says everything a run does (docs/TRAINING.md lists
 * every field with its default). Parsing checks every field and names the file and the field in
 * its one-line error; an unknown key is an error too, so a typo never falls back to a default.
 *
 * Relative paths inside the file (out, data.folder, tokenizer, init_from) are taken relative to
 * the current directory, as a command line's would be. */
#ifndef HD_TRAIN_TRAIN_CONFIG_H
#define HD_TRAIN_TRAIN_CONFIG_H

#include <stdint.h>

#include "data/dataset.h"
#include "hidream.h"

enum { HD_TRAIN_MAX_STAGES = 8, HD_TRAIN_MAX_PROMPTS = 16, HD_TRAIN_PROMPT_MAX = 256 };

/* A progressive-resolution stage: trained for `steps` optimizer steps on these image sizes (its
 * aspect buckets, drawn by the dataset's weights). */
typedef struct hd_train_stage {
    int64_t steps;
    int n_sizes;
    int sizes[HD_DATASET_MAX_BUCKETS][2]; /* width, height */
} hd_train_stage;

typedef struct hd_train_model {
    int hidden_size, layers, heads, kv_heads, head_dim, intermediate_size;
    int patch_size;          /* generation patch side p (patch_dim 3·p²) */
    double noise_scale;      /* s in z = (1-σ)·x0 + σ·s·ε */
    double rope_theta;
    double init_std;         /* normal(0, init_std) for every matrix of a fresh model */
    char init_from[4096];    /* "" = fresh; else a model directory whose weights start the run */
} hd_train_model;

typedef struct hd_train_optim {
    double lr, beta1, beta2, eps, weight_decay;
    int64_t warmup;          /* linear warm-up steps */
    double min_lr_ratio;     /* cosine decays to lr · min_lr_ratio at the last step */
    double clip;             /* global gradient-norm clip; 0 = off */
    double ema_decay;        /* EMA of the weights; 0 = no EMA (export the weights) */
} hd_train_optim;

typedef enum hd_sigma_dist { HD_SIGMA_LOGIT_NORMAL = 0, HD_SIGMA_UNIFORM } hd_sigma_dist;

typedef struct hd_train_objective {
    hd_sigma_dist sigma_dist;
    double sigma_mean, sigma_std; /* logit-normal: σ = sigmoid(mean + std·n) */
    double sigma_min;             /* v = (x̂ − z) / max(σ, sigma_min) */
    double cfg_dropout;           /* probability of training on the unconditional prompt " " */
    double lm_weight;             /* weight of the next-token loss on the prompt; 0 = none */
} hd_train_objective;

/* What the exported model's config.json states as its sampler defaults. */
typedef struct hd_train_generate {
    char scheduler[16];
    int steps;
    double guidance, shift;
} hd_train_generate;

typedef struct hd_train_config {
    char path[4096];          /* the recipe file (for messages) */
    char out[4096];           /* run directory */
    uint64_t seed;
    int threads;              /* 0 = all CPUs */
    hd_train_model model;
    hd_dataset_kind data_kind;
    char folder[4096];        /* data.folder */
    double category_weights[HD_N_CATEGORIES]; /* data.categories (all 0 = uniform) */
    int filter;               /* data.filter as hd_filter */
    char tokenizer[4096];     /* "" = the shapes-world tokenizer (byte-level BPE, any text) */
    int n_stages;
    hd_train_stage stages[HD_TRAIN_MAX_STAGES];
    int batch;                /* samples per micro-batch */
    int accum;                /* micro-batches per optimizer step */
    hd_train_optim optim;
    hd_train_objective objective;
    hd_train_generate generate;
    int64_t log_every, checkpoint_every, sample_every, eval_every;
    int eval_n;               /* prompts judged at each eval (shapes world only) */
    uint64_t eval_seed;
    int n_prompts;            /* prompts of the sample grid */
    char prompts[HD_TRAIN_MAX_PROMPTS][HD_TRAIN_PROMPT_MAX];
    int export_bf16;          /* model.safetensors in bf16 (else float32) */
} hd_train_config;

/* Total optimizer steps over all stages. */
int64_t hd_train_total_steps(const hd_train_config *c);
/* The stage that step (0-based) belongs to. */
int hd_train_stage_of(const hd_train_config *c, int64_t step);

int hd_train_config_parse(hd_train_config *c, const char *json, size_t len, const char *what,
                          hd_error *e);
int hd_train_config_load(hd_train_config *c, const char *path, hd_error *e);

#endif
