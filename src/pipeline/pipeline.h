/* The generation pipeline (spec 00 §2, 05 §4): everything between a params struct and a picture.
 * It knows nothing about devices: it calls the model (uit.h / vit.h), the samplers (scheduler.h),
 * the tokenizer and the image helpers.
 *
 * hd_generate = hd_job_prepare (sizes, references, sequences, ViT, initial noise, prefix caches)
 *             + hd_job_run (the denoising loop with CFG) + hd_job_image, in that order. The
 * stages are separate so that the golden checks can inspect what was built. */
#ifndef HD_PIPELINE_PIPELINE_H
#define HD_PIPELINE_PIPELINE_H

#include "backend/backend.h"
#include "image/refs.h"
#include "io/config.h"
#include "io/safetensors.h"
#include "model/prefix_cache.h"
#include "model/uit.h"
#include "model/vit.h"
#include "pipeline/sequence.h"
#include "sample/noise.h"
#include "sample/scheduler.h"
#include "text/chat_template.h"
#include "text/tokenizer.h"

struct hd_model {
    char dir[4096];
    hd_config cfg;
    hd_safetensors st;
    hd_backend *be;
    hd_uit *uit;
    hd_vit *vit;          /* NULL when the checkpoint has no vision tower */
    hd_tokenizer *tok;
    /* why a vision tower the checkpoint has cannot be used (e.g. an unsupported hidden_act);
     * empty when it is used or absent. Reported when references are asked for. */
    char vit_unusable[sizeof(((hd_error *)0)->msg)];
    /* the options it was loaded with that change the pixels (recorded in a picture's recipe) */
    char backend[8];
    hd_precision precision; /* resolved: never AUTO */
};

/* One generation in progress. Owned memory is released by hd_job_free. */
typedef struct hd_job {
    hd_model *m;
    hd_generate_params p;     /* resolved copy (defaults applied) */
    hd_scheduler_kind sched_kind;
    int width, height;        /* final target size */
    int64_t L;                /* target patches */
    int n_branches;           /* 1, or 2 with CFG (conditional first) */
    hd_sequence seq[2];
    hd_prefix_cache cache[2];
    /* references (incl. a layout image): patch rows, condition images, processor output */
    int n_refs;
    hd_refs refs;
    int layout_ignored;       /* the layout argument was not JSON: generated without it */
    int have_vit;
    hd_vit_output vit;
    /* sampling state */
    hd_scheduler sched;
    hd_noise_default noise_default;
    float *z;                 /* [L, 3p²] the current sample (3072 = 3·32² for the release) */
    float *vin;               /* [L + Σ L_ref, 3p²] model input rows */
    float *xc, *xu, *v;       /* [L, 3p²] predictions and velocity */
    int32_t *out_rows[2];     /* [L] sequence rows of the target patches per branch */
} hd_job;

int hd_job_prepare(hd_job *job, hd_model *m, const hd_generate_params *p, hd_error *e);
int hd_job_run(hd_job *job, hd_error *e);
/* Converts the final sample to an RGB8 image (spec 05 §8). */
int hd_job_image(const hd_job *job, hd_image *out, hd_error *e);
void hd_job_free(hd_job *job);

/* x0 preview of a prediction in patch rows of side `patch`: float32 (x̂+1)/2·255, rounded,
 * clamped. */
int hd_rows_to_image(const float *rows, int w, int h, int patch, int bf16_round, hd_image *out,
                     hd_error *e);

/* Checks that the model's generation patch size p matches its weights: 3·p² must equal the input
 * width of model.x_embedder.proj1 (and the output width of final_layer2). One line naming
 * hidream.patch_size and the tensor otherwise. */
int hd_model_check_patch_size(const hd_config *cfg, const hd_safetensors *st, const char *dir,
                              hd_error *e);

#endif
