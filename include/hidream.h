/* hidream.c — public C API of libhidream.
 *
 * HiDream-O1-Image inference in C: load a model directory, build the token sequence, run the
 * Unified Transformer, sample, and write the picture. Every function that can fail returns 0 or a
 * negative HD_E* code and fills an hd_error with one line naming the file and the field at fault.
 * The caller owns what it allocates; objects returned by the open/load functions are released by the
 * matching close/free function. No function prints. */
#ifndef HIDREAM_H
#define HIDREAM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- status ------------------------------------------------------------------------------ */
enum {
    HD_OK = 0,
    HD_EIO = -1,          /* a file could not be opened, read or written */
    HD_EFORMAT = -2,      /* malformed input: JSON, safetensors, image, UTF-8, ... */
    HD_EINVAL = -3,       /* an argument or parameter is out of range */
    HD_ENOMEM = -4,       /* allocation failed or a size limit was hit */
    HD_EUNSUPPORTED = -5, /* well-formed but not supported (dtype, architecture, ...) */
    HD_ECANCELLED = -6,   /* the caller's cancel flag was raised */
    HD_EMISMATCH = -7,    /* shapes or values disagree (model vs config, golden checks) */
};

typedef struct hd_error {
    int code;
    char msg[1024];
} hd_error;

/* Short name of a status code ("malformed input", ...). */
const char *hd_status_name(int code);

const char *hd_version(void);

/* ---- images ------------------------------------------------------------------------------- */
/* An 8-bit RGB picture: w*h pixels, row-major, 3 bytes each, no padding. The struct owns px;
 * hd_image_free releases it (a zeroed struct is the empty image). */
typedef struct hd_image {
    int w, h;
    uint8_t *px;
} hd_image;

void hd_image_free(hd_image *img);

/* ---- model -------------------------------------------------------------------------------- */
typedef struct hd_model hd_model;

typedef struct hd_model_options {
    const char *backend; /* "cpu" (default) or "cuda" */
    int n_threads;       /* CPU worker threads; 0 = all online CPUs */
    int bf16_gemm;       /* round activations to bf16 inside matrix products (the official GPU
                            code's numerics): about 1.8x faster on CPUs with AVX512-BF16, no
                            longer float32-exact; off by default */
} hd_model_options;

/* Opens a HiDream-O1-Image model directory (config.json, model.safetensors or a sharded index,
 * tokenizer.json), validates every tensor against the config and binds the weights (mapped, not
 * copied, on the CPU). The vision tower is bound only if the checkpoint has one. */
int hd_model_load(hd_model **out, const char *dir, const hd_model_options *opt, hd_error *e);
void hd_model_free(hd_model *m);
/* Directory base name (used in image metadata). */
const char *hd_model_name(const hd_model *m);

/* ---- generation --------------------------------------------------------------------------- */
typedef enum hd_mode { HD_MODE_FULL = 0, HD_MODE_DEV = 1 } hd_mode;

typedef enum hd_scheduler_kind {
    HD_SCHEDULER_AUTO = 0,   /* the mode's official choice */
    HD_SCHEDULER_UNIPC,      /* FlowUniPC multistep ("default", full model) */
    HD_SCHEDULER_FLOW_MATCH, /* flow-match Euler on a timestep list (dev editing) */
    HD_SCHEDULER_FLASH,      /* dev "flash" stochastic Euler */
} hd_scheduler_kind;

#define HD_MAX_TIMESTEPS 1000

/* Progress: called after every step with the step just finished (1-based) and the total; when
 * preview is non-NULL it is the conditional branch's x0 prediction of this step as an image
 * (valid only during the call). Return non-zero to cancel. */
typedef int (*hd_progress_fn)(void *user, int step, int total, const hd_image *preview);

/* Per-step Gaussian noise for the flash scheduler (N(0,1) floats, n of them for step `step`).
 * The default draws from our own seeded generator; see docs. Return 0 or a negative HD_E*. */
typedef int (*hd_noise_fn)(void *user, int step, float *out, size_t n);

typedef struct hd_generate_params {
    const char *prompt;
    const char *uncond_prompt;  /* CFG's unconditional text; NULL = " " (official) */
    int width, height;          /* requested size; snapped to a preset of the model unless no_snap */
    int no_snap;                /* keep the requested size (a multiple of the model's patch size) */
    hd_mode mode;
    int steps;
    double cfg;                 /* CFG applies iff cfg > 1 */
    double shift;
    uint64_t seed;
    hd_scheduler_kind scheduler;
    int n_timesteps;            /* > 0: explicit integer timestep list (flow-match / flash) */
    int timesteps[HD_MAX_TIMESTEPS];
    double noise_scale_start, noise_scale_end, noise_clip_std; /* flash only */
    int bf16_compat;            /* round noise, z between steps and (z+1)/2 to bf16 as upstream */
    /* reference images (editing / personalization), in order */
    const hd_image *refs;
    int n_refs;
    const char *layout;         /* layout boxes: JSON text or a path to a JSON file; NULL = none */
    int keep_aspect;            /* exactly one reference: output size follows it */
    /* callbacks */
    hd_progress_fn progress;
    void *progress_user;
    int preview_every;          /* 0 = no previews */
    hd_noise_fn noise;          /* NULL = default generator */
    void *noise_user;
    /* optional outputs for verification: the sample after each step, [steps+1][L*3p²]
     * (3072 values per row for the release's p = 32) */
    float *z_trace;
} hd_generate_params;

/* Fills p with the official defaults of a mode (full: UniPC 50 steps, CFG 5, shift 3, seed 32,
 * 2048x2048; dev: flash, 28 fixed timesteps, no CFG, noise 7.5 / clip 2.5). */
void hd_generate_defaults(hd_generate_params *p, hd_mode mode);

/* Fills p with the defaults of this model: hd_generate_defaults(p, mode), then what the model
 * directory's config.json states in its "hidream" object (src/io/config.h): native size (else its
 * first preset) as width/height, scheduler, steps, guidance as cfg, shift, and its noise scale as
 * the flash noise scale. A model that states nothing keeps the official defaults. */
void hd_model_generate_defaults(const hd_model *m, hd_generate_params *p, hd_mode mode);

/* Refuses, with one line, a request this model cannot serve, before any work: reference images
 * or a layout without a vision tower (or with a patch size other than 32), a size that is not a
 * multiple of the model's patch size, or (with no_snap) beyond its limits: 8192 per side, and
 * for a model that states its own sizes twice its largest stated width / height. hd_generate
 * runs the same checks. */
int hd_model_check_request(const hd_model *m, const hd_generate_params *p, hd_error *e);

/* The output size hd_generate makes for p without reference images: p's size snapped to the
 * model's nearest preset (or kept, with no_snap). Same errors as hd_model_check_request. */
int hd_model_output_size(const hd_model *m, const hd_generate_params *p, int *w, int *h,
                         hd_error *e);

/* Prompt limits (conditional and unconditional alike): at most HD_MAX_PROMPT_TOKENS tokens of
 * the prompt's own text and HD_MAX_PROMPT_BYTES bytes (checked first, before tokenizing). The
 * sequence cost grows with the square of its length; the limit equals the token count of the
 * largest standard picture (2048x2048 in 32-pixel patches). */
#define HD_MAX_PROMPT_TOKENS 4096
#define HD_MAX_PROMPT_BYTES 65536 /* 16 bytes per token of the token limit */

/* Runs one generation. out receives a malloc'd image (free with hd_image_free). */
int hd_generate(hd_model *m, const hd_generate_params *p, hd_image *out, hd_error *e);

#ifdef __cplusplus
}
#endif
#endif
