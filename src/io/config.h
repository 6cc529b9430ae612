/* config.json of a HiDream-O1-Image (Qwen3-VL layout) model directory, plus the ids of the
 * special tokens, which are looked up by their text in the directory's tokenizer.json. Nothing
 * about the 8B size is assumed: every dimension comes from the files. */
#ifndef HD_IO_CONFIG_H
#define HD_IO_CONFIG_H

#include "hidream.h"

#define HD_MAX_DEEPSTACK 16

typedef struct hd_text_config {
    int hidden_size;        /* D */
    int intermediate_size;  /* SwiGLU width */
    int num_layers;
    int num_heads;          /* query heads */
    int num_kv_heads;
    int head_dim;
    int vocab_size;
    double rms_norm_eps;
    double rope_theta;
    int mrope_section[3];   /* temporal, height, width; sum = head_dim / 2 */
    int mrope_interleaved;  /* 1: Qwen3-VL interleaved slot assignment (the only one supported) */
} hd_text_config;

typedef struct hd_vision_config {
    int present;            /* 0 if config.json has no vision_config */
    int depth;
    int hidden_size;
    int num_heads;
    int intermediate_size;
    int patch_size;
    int temporal_patch_size;
    int spatial_merge_size;
    int in_channels;
    int out_hidden_size;    /* = text hidden_size */
    int num_position_embeddings;
    int n_deepstack;
    int deepstack_indexes[HD_MAX_DEEPSTACK];
    char hidden_act[32];    /* "gelu_pytorch_tanh" */
} hd_vision_config;

typedef struct hd_token_ids {
    /* from config.json */
    int image_pad, video_pad, vision_start, vision_end;
    /* from tokenizer.json added_tokens, by content; -1 if absent */
    int tms, boi, im_start, im_end, endoftext;
} hd_token_ids;

/* What the official code hard-codes and a small model changes: the optional "hidream" object of
 * config.json. Every field is optional; a checkpoint that states none gets the release's values
 * (patch 32, noise scale 8, the 11 release resolution presets, the sampler defaults of spec 00).
 *
 *   "hidream": {
 *     "patch_size": 8,                  generation patch side p in pixels, 1..64; 3·p² must equal
 *                                       the input width of model.x_embedder.proj1 (checked at load)
 *     "noise_scale": 1.0,               s in z = (1-σ)·x0 + σ·s·ε, > 0 (also the flash sampler's
 *                                       default noise scale for this model)
 *     "native_size": [64, 64],          [width, height] the model was trained at; the default size
 *     "resolutions": [[64,64],[96,64]], [width, height] presets generate snaps to (by aspect);
 *                                       without it, a model with native_size snaps to that alone
 *     "scheduler": "unipc",             default sampler: "unipc", "flow_match" or "flash"
 *     "steps": 30,                      default number of steps, 1..1000
 *     "guidance": 3.0,                  default CFG scale, >= 0 (CFG applies iff > 1)
 *     "shift": 1.0                      default schedule shift, > 0
 *   }
 *
 * Sizes are positive multiples of patch_size, at most 8192 per side; native_size must be one of
 * the resolutions when both are given. Any other key is an error (a typo must not fall back to
 * a release value silently). */
#define HD_MAX_RESOLUTIONS 32
#define HD_GEN_MAX_SIDE 8192 /* largest side of any size (sequence memory grows as side²) */
#define HD_GEN_MAX_PATCH 64
typedef struct hd_gen_config {
    int stated;               /* 1 if config.json has a "hidream" object */
    int patch_size;           /* generation patch side in pixels (32); patch_dim = 3·p² */
    double noise_scale;       /* s in z = (1-σ)·x0 + σ·s·ε (8) */
    int native_w, native_h;   /* the size the model was trained at; 0 = none stated */
    int n_resolutions;        /* presets generate snaps to; 0 = the release's 11 presets */
    int resolutions[HD_MAX_RESOLUTIONS][2]; /* width, height */
    char scheduler[16];       /* default sampler ("unipc", "flow_match", "flash"); "" = by mode */
    int steps;                /* default steps; 0 = by mode */
    double guidance;          /* default CFG scale; < 0 = by mode */
    double shift;             /* default shift; < 0 = by mode */
} hd_gen_config;

/* The release's values: patch 32, noise scale 8, nothing else stated. */
void hd_gen_config_defaults(hd_gen_config *g);

typedef struct hd_config {
    hd_text_config text;
    hd_gen_config gen;
    hd_vision_config vision;
    hd_token_ids ids;
    char model_type[64];    /* "qwen3_vl" */
    char name[256];         /* directory base name, for metadata */
} hd_config;

/* Parses DIR/config.json and DIR/tokenizer.json (for the special token ids) and validates
 * every field (positive sizes, head_dim even, heads divisible by kv heads, mrope sections summing
 * to head_dim/2, token ids inside the vocabulary, ...). Errors name the file and the field. */
int hd_config_load_dir(hd_config *cfg, const char *dir, hd_error *e);

/* Parses a config.json text (for tests and fuzzing). Token ids from tokenizer.json stay -1. */
int hd_config_parse_json(hd_config *cfg, const char *json, size_t len, const char *what,
                         hd_error *e);

/* Looks up the HiDream/Qwen special tokens in a tokenizer.json text. */
int hd_config_parse_tokenizer_ids(hd_token_ids *ids, const char *json, size_t len,
                                  const char *what, hd_error *e);

#endif
