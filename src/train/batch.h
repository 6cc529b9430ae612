/* One micro-batch of training samples, built exactly as inference builds its input: the caption
 * goes through the chat template and the tokenizer (text/chat_template.h), the sequence through
 * src/pipeline/sequence, the picture through patchify into [−1, 1] rows (the inverse of the
 * sampler's (x̂ + 1)/2·255). Sample k of a run is a pure function of (seed, k): its picture and
 * caption (the dataset), its CFG dropout, σ and noise — so a resumed run sees the same bits. */
#ifndef HD_TRAIN_BATCH_H
#define HD_TRAIN_BATCH_H

#include <stdint.h>

#include "data/dataset.h"
#include "model/uit_train.h"
#include "pipeline/sequence.h"
#include "text/tokenizer.h"
#include "train/train_config.h"

/* The tokenizer plus where a prompt's tokens sit inside the chat template. */
typedef struct hd_train_text {
    const hd_tokenizer *tok;
    hd_token_ids ids;
    int prefix;   /* ids before the prompt ("<|im_start|>user\n") */
    int suffix;   /* ids after it (end of turn, assistant header, boi, tms) */
} hd_train_text;

int hd_train_text_init(hd_train_text *t, const hd_tokenizer *tok, const hd_token_ids *ids,
                       hd_error *e);

typedef struct hd_train_batch {
    int n;                  /* samples in this micro-batch */
    int w, h;               /* their picture size (one bucket) */
    int64_t L, P;           /* target rows per sample, patch_dim */
    hd_sequence *seq;       /* [n] */
    hd_uit_sample *s;       /* [n] what hd_uit_train_forward reads */
    float *x0, *z, *pred, *dpred; /* [n·L·P] */
    double *sigma;          /* [n] */
    int64_t lm_rows;        /* Σ (A_b − 1) logit rows */
    int32_t *lm_target;     /* [lm_rows] */
    uint8_t *lm_mask;       /* [lm_rows] 1 = a prompt token (or its end-of-turn) */
    float *logits, *dlogits; /* [lm_rows · V] when the run has an LM term */
    int V;
    int64_t lm_count;       /* masked rows */
    /* capacities (buffers grow, never shrink) */
    size_t cap_x, cap_lm, cap_logits;
    int cap_n;
} hd_train_batch;

/* Fills b with samples k0 .. k0 + n − 1 of the bucket. with_lm: also make logit buffers of width
 * V. Messages name the sample ("sample 1234: ..."). */
int hd_train_batch_fill(hd_train_batch *b, const hd_train_config *c, const hd_dataset *ds,
                        const hd_train_text *tx, int bucket, uint64_t k0, int n, int with_lm,
                        int V, hd_error *e);
void hd_train_batch_free(hd_train_batch *b);

#endif
