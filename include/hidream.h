/* hidream.c — public C API of libhidream.
 *
 * HiDream-O1-Image inference in C: load a model directory, build the token sequence, run the
 * Unified Transformer, sample, and write the picture. Every function that can fail returns 0 or a
 * negative HD_E* code and fills an hd_error with one line naming the file and the field at fault.
 * The caller owns what it allocates; objects returned by the open/load functions are released by the
 * matching close/free function. No function prints.
 *
 * Usage (errors unchecked for brevity):
 *
 *     hd_model *m; hd_error e; hd_image img = {0};
 *     hd_model_load(&m, "models/shapes", NULL, &e);
 *     hd_generate_params p;
 *     hd_model_generate_defaults(m, &p, HD_MODE_FULL);
 *     p.prompt = "a red circle";  p.seed = 7;
 *     hd_generate(m, &p, &img, &e);
 *     hd_recipe r; hd_recipe_from_params(&r, &p, &img, m, &e);   // what regenerates it
 *     hd_image_save_with_recipe("out.png", &img, &r, &e);
 *     hd_recipe_free(&r); hd_image_free(&img); hd_model_free(m);
 *
 * Concurrency: an hd_model runs ONE generation at a time (it owns the scratch memory of a step):
 * calls of hd_generate on the same model must not overlap; serialise them (a queue, as
 * `hidream serve` does) or load the model once per thread. hd_model_check_request and
 * hd_model_generate_defaults only read the model and may run beside a generation. The image,
 * codec and recipe functions keep no state and are safe from any thread. A generation is stopped
 * from another thread through the cancel callback (set an atomic flag, return it there): it is
 * polled before every transformer layer, so a step stops within one layer's time. */
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

/* Picture files: PNG (libpng), JPEG (libjpeg), WebP (libwebp). Reading behaves like Pillow's
 * Image.open(path).convert("RGB") (palette/grey expanded, alpha dropped, EXIF orientation not
 * applied); the format comes from the magic bytes. Corrupt, truncated and oversized pictures
 * give one line naming the file. */
typedef enum hd_image_format {
    HD_FMT_UNKNOWN = 0,
    HD_FMT_PNG,
    HD_FMT_JPEG,
    HD_FMT_WEBP,
} hd_image_format;

/* Format from the first bytes of a file; HD_FMT_UNKNOWN if not one we decode. */
hd_image_format hd_image_sniff(const void *buf, size_t len);
/* Format from a file name's extension (.png, .jpg/.jpeg, .webp, any case); HD_FMT_UNKNOWN if
 * none matches. */
hd_image_format hd_image_format_from_name(const char *path);

/* Loads a PNG/JPEG/WebP file as RGB (at most 2^28 pixels). */
int hd_image_load(const char *path, hd_image *out, hd_error *e);
/* Decodes a complete file image already in memory; `what` names it in messages. Pictures with
 * more than max_pixels pixels (or zero) are refused before any pixel memory is allocated. */
int hd_image_decode(const void *buf, size_t len, const char *what, int64_t max_pixels,
                    hd_image *out, hd_error *e);

typedef struct hd_text_kv {
    const char *key;   /* 1..79 printable ASCII characters, no leading/trailing/double spaces */
    const char *value; /* UTF-8 */
} hd_text_kv;

typedef struct hd_save_opts {
    int quality;            /* JPEG and lossy WebP quality 1..100; 0 = default (95) */
    int webp_lossless;      /* WebP: lossless instead of lossy */
    const hd_text_kv *text; /* PNG only: text chunks, written in this order */
    int n_text;
} hd_save_opts;

/* Writes im to path (format from the extension) through a temporary file renamed into place:
 * a failed save never leaves a half-written file. opts may be NULL (defaults, no text). */
int hd_image_save(const char *path, const hd_image *im, const hd_save_opts *opts, hd_error *e);
/* The same file bytes in memory: *buf (malloc'd, free()) holds *len bytes of fmt. */
int hd_image_encode(const hd_image *im, hd_image_format fmt, const hd_save_opts *opts,
                    uint8_t **buf, size_t *len, hd_error *e);

/* Text chunks of a PNG file (tEXt, zTXt and iTXt, before and after the image data), in file
 * order, all converted to UTF-8. */
typedef struct hd_png_text {
    int n;
    char **keys;
    char **values;
} hd_png_text;

int hd_png_read_text(const char *path, hd_png_text *out, hd_error *e);
int hd_png_read_text_buffer(const void *buf, size_t len, const char *what, hd_png_text *out,
                            hd_error *e);
void hd_png_text_free(hd_png_text *t);
/* Value of the first chunk with that key, or NULL. */
const char *hd_png_text_get(const hd_png_text *t, const char *key);

/* ---- model -------------------------------------------------------------------------------- */
typedef struct hd_model hd_model;

/* How the decoder's matrix products multiply. The default (AUTO) is the fastest mode that keeps
 * the official GPU code's numerics: BF16 where the backend multiplies bf16 natively (cuda; a
 * CPU with AVX512-BF16), EXACT elsewhere, where bf16 would only be emulated (no faster than
 * float32 and further from it). hd_model_precision says what a loaded model resolved to. */
typedef enum hd_precision {
    HD_PRECISION_AUTO = 0,
    HD_PRECISION_EXACT, /* float32 products: the verification path (check-golden runs it) */
    HD_PRECISION_BF16,  /* activations rounded to bf16 inside products, float32 accumulation,
                           as upstream runs: ~5e-3 relative error per forward vs EXACT */
    HD_PRECISION_INT8,  /* CPU: weights quantized per output channel at load (then held as
                           int8), activations per token and block of 128 values: half the
                           weight memory of bf16, ~2e-2 relative error per forward; float
                           weights only */
} hd_precision;

/* "auto", "exact", "bf16", "int8" (NULL for a value out of range). */
const char *hd_precision_name(hd_precision p);
/* The inverse of hd_precision_name: 0, or -1 for an unknown name. */
int hd_precision_parse(const char *name, hd_precision *out);

typedef struct hd_model_options {
    const char *backend;    /* "cpu" (default) or "cuda" */
    int n_threads;          /* CPU worker threads; 0 = all online CPUs */
    hd_precision precision; /* matrix products; 0 = HD_PRECISION_AUTO */
} hd_model_options;

/* Opens a HiDream-O1-Image model directory (config.json, model.safetensors or a sharded index,
 * tokenizer.json), validates every tensor against the config and binds the weights (mapped, not
 * copied, on the CPU). The vision tower is bound only if the checkpoint has one. */
int hd_model_load(hd_model **out, const char *dir, const hd_model_options *opt, hd_error *e);
void hd_model_free(hd_model *m);
/* Directory base name (used in image metadata). */
const char *hd_model_name(const hd_model *m);
/* The precision the model's products run in (AUTO resolved: never HD_PRECISION_AUTO). */
hd_precision hd_model_precision(const hd_model *m);

/* ---- quantized checkpoints ---------------------------------------------------------------- */
typedef struct hd_quantize_report {
    int quantized;      /* matrices stored in the requested type */
    int fallback;       /* matrices whose rows are not whole blocks of it: stored as Q8_0 */
    int kept;           /* tensors kept in their dtype (vectors, tables) */
    uint64_t bytes_in;  /* tensor bytes read */
    uint64_t bytes_out; /* tensor bytes written */
} hd_quantize_report;

/* Writes OUT_DIR/model.gguf from the model directory IN_DIR (validated first, as hd_model_load
 * does) with its matrices quantized to `type` ("q8_0", "q4_0", "q4_k", "q5_k", "q6_k"), and
 * copies config.json, the tokenizer and the other small files beside it, so that OUT_DIR is a
 * model directory. The GGUF file is written to a temporary name and renamed. */
int hd_quantize(const char *in_dir, const char *out_dir, const char *type,
                hd_quantize_report *rep, hd_error *e);

/* ---- generation --------------------------------------------------------------------------- */
typedef enum hd_mode { HD_MODE_FULL = 0, HD_MODE_DEV = 1 } hd_mode;

typedef enum hd_scheduler_kind {
    HD_SCHEDULER_AUTO = 0,   /* the mode's official choice */
    HD_SCHEDULER_UNIPC,      /* FlowUniPC multistep ("default", full model) */
    HD_SCHEDULER_FLOW_MATCH, /* flow-match Euler on a timestep list (dev editing) */
    HD_SCHEDULER_FLASH,      /* dev "flash" stochastic Euler */
} hd_scheduler_kind;

#define HD_MAX_TIMESTEPS 1000

/* "unipc" (or "default"), "flow_match" (or "euler"), "flash", "auto" → *out; -1 for any other
 * name. hd_scheduler_name gives the first spelling back. */
int hd_scheduler_from_name(const char *name, hd_scheduler_kind *out);
const char *hd_scheduler_name(hd_scheduler_kind k);

/* Progress: called after every step with the step just finished (1-based) and the total; when
 * preview is non-NULL it is the conditional branch's x0 prediction of this step as an image
 * (valid only during the call). Return non-zero to cancel. */
typedef int (*hd_progress_fn)(void *user, int step, int total, const hd_image *preview);

/* Cancellation: polled before every transformer layer (prefix and steps) and after every step;
 * return non-zero to stop, and hd_generate returns HD_ECANCELLED. Called on the generating
 * thread: read an atomic flag that another thread sets. */
typedef int (*hd_cancel_fn)(void *user);

/* What the official code warns about and then goes on without (a layout that is not JSON, a
 * layout without references, keep_aspect without exactly one reference). One line each. */
#define HD_MAX_WARNINGS 4
typedef struct hd_warnings {
    int n;
    char msg[HD_MAX_WARNINGS][256];
} hd_warnings;

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
    hd_cancel_fn cancel;        /* NULL = never */
    void *cancel_user;
    hd_warnings *warnings;      /* optional output, reset and filled by hd_model_check_request
                                   and hd_generate */
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

/* ---- recipe: the parameters that regenerate a picture ----------------------------------------
 * Stored in PNG text chunks "hidream:prompt", "hidream:seed", ... (values in C's "%.17g" for
 * doubles, so a recipe read back regenerates the same picture bit for bit). Every setting that
 * changes the pixels is recorded, and reading is strict: a value that cannot be honoured, a
 * "hidream:*" key this version does not know, or a key given twice is an error naming the key,
 * never a silently different picture. */
enum {
    HD_RECIPE_PROMPT = 1u << 0,
    HD_RECIPE_UNCOND = 1u << 1,
    HD_RECIPE_MODE = 1u << 2,
    HD_RECIPE_SEED = 1u << 3,
    HD_RECIPE_STEPS = 1u << 4,
    HD_RECIPE_CFG = 1u << 5,
    HD_RECIPE_SHIFT = 1u << 6,
    HD_RECIPE_SCHEDULER = 1u << 7,
    HD_RECIPE_TIMESTEPS = 1u << 8,
    HD_RECIPE_NOISE_SCALE = 1u << 9,
    HD_RECIPE_NOISE_CLIP = 1u << 10,
    HD_RECIPE_BF16_COMPAT = 1u << 11,
    HD_RECIPE_SIZE = 1u << 12,
    HD_RECIPE_MODEL = 1u << 13,
    HD_RECIPE_MODEL_DIR = 1u << 14,
    HD_RECIPE_REFS = 1u << 15,
    HD_RECIPE_LAYOUT = 1u << 16,
    HD_RECIPE_KEEP_ASPECT = 1u << 17,
    HD_RECIPE_BF16_GEMM = 1u << 18, /* model option (hd_model_options), not applied to params */
    HD_RECIPE_BACKEND = 1u << 19,   /* model option (hd_model_options), not applied to params */
    HD_RECIPE_REFINE = 1u << 20,    /* the prompt agent's input and source (informational) */
    HD_RECIPE_INT8 = 1u << 21,      /* model option (hd_model_options), not applied to params */
    HD_RECIPE_ALL = (1u << 22) - 1,
};

/* Longest value a recipe may hold (a prompt's byte limit; a layout is far shorter). */
#define HD_RECIPE_MAX_VALUE_BYTES HD_MAX_PROMPT_BYTES

typedef struct hd_recipe {
    unsigned has;  /* HD_RECIPE_* bits of the fields present */
    char *prompt, *uncond, *layout, *model, *model_dir, *version; /* owned; NULL when absent */
    char *backend;    /* "cpu" or "cuda" (owned; NULL when absent) */
    char *raw_prompt; /* HD_RECIPE_REFINE: the request the prompt agent rewrote into `prompt` */
    char *refine;     /* HD_RECIPE_REFINE: the agent (model name or directory) or "fallback" */
    hd_mode mode;
    uint64_t seed;
    int steps;
    double cfg, shift;
    hd_scheduler_kind scheduler;
    int n_timesteps;
    int timesteps[HD_MAX_TIMESTEPS];
    double noise_scale_start, noise_scale_end, noise_clip_std;
    int bf16_compat, keep_aspect;
    int bf16_gemm, int8; /* the model's precision (hd_recipe_precision): BF16, INT8, else EXACT */
    int width, height; /* the picture's final size */
    int n_refs;        /* reference images used (the pictures themselves are not stored) */
} hd_recipe;

/* The recipe of a finished generation: p as passed to hd_generate, the picture it made (for the
 * final size) and the model (NULL: no model fields; else its name, absolute directory, backend
 * and the precision it resolved to). The layout is recorded as given, so pass it as inline JSON (a file name would
 * not travel with the picture); it is recorded only with reference images. */
int hd_recipe_from_params(hd_recipe *r, const hd_generate_params *p, const hd_image *out,
                          const hd_model *m, hd_error *e);
/* PNG text chunks of r, in a fixed order, plus "Software". *kv is one malloc'd block (keys and
 * values inside it): free(*kv). */
int hd_recipe_to_text(const hd_recipe *r, hd_text_kv **kv, int *n, hd_error *e);
/* Parses the "hidream:*" chunks (other chunks are ignored); `what` names the source in
 * messages ("WHAT: KEY: ..."). A picture without hidream:prompt, a value that does not parse or
 * is out of range, an unknown hidream:* key, a key given twice, a layout that is not inline
 * JSON, or hidream:steps disagreeing with the length of hidream:timesteps is HD_EFORMAT. */
int hd_recipe_parse(const hd_png_text *t, const char *what, hd_recipe *r, hd_error *e);
/* hd_png_read_text + hd_recipe_parse. */
int hd_recipe_read(const char *png_path, hd_recipe *r, hd_error *e);
/* Copies the fields of r that are present and named in `fields` (HD_RECIPE_* bits) into p;
 * strings point into r, which must outlive p's use. A stored size also sets no_snap (it is
 * already the final size); bf16_compat and keep_aspect are only ever turned on. The model
 * options (backend, hd_recipe_precision) are the caller's to pass to hd_model_load, and the
 * reference images the caller's to supply. */
void hd_recipe_apply(const hd_recipe *r, hd_generate_params *p, unsigned fields);
/* The precision a recipe's picture was made in: INT8 or BF16 when recorded on, EXACT when the
 * model fields are there without them (pictures from before AUTO were all float32), AUTO when
 * the recipe has no model fields. */
hd_precision hd_recipe_precision(const hd_recipe *r);
void hd_recipe_free(hd_recipe *r);
/* hd_image_save with the recipe in PNG text chunks (JPEG and WebP files carry none). */
int hd_image_save_with_recipe(const char *path, const hd_image *im, const hd_recipe *r,
                              hd_error *e);

#ifdef __cplusplus
}
#endif
#endif
