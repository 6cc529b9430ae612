/* Training the Unified Transformer: a forward over a packed batch that saves what the backward
 * needs, and the backward right under it (src/model/uit_train.c, llm.c's train_gpt2.c style).
 *
 * The trainable model is an ordinary hd_uit whose weights are float32 tensors allocated by the
 * backend (the fp32 master weights), so the inference forward runs on it unchanged (sampling
 * during training, EMA export). Every trainable tensor is listed once in `params` with its
 * official checkpoint name and its gradient.
 *
 * A batch is packed: the samples' sequences are concatenated row-wise, so every linear runs once
 * over all rows; attention runs per sample on its row range with its own hybrid mask. Training
 * uses no reference images (no ViT): a sample is text + timestep token + target patches. */
#ifndef HD_MODEL_UIT_TRAIN_H
#define HD_MODEL_UIT_TRAIN_H

#include <stdint.h>

#include "backend/backend.h"
#include "io/config.h"
#include "io/safetensors.h"
#include "model/uit.h"

typedef struct hd_uit_param {
    char name[96];    /* official tensor name, e.g. "model.language_model.layers.0.mlp.up_proj.weight" */
    hd_tensor *w;     /* the weight inside the model (float32) */
    hd_tensor grad;   /* same shape, float32, accumulated by hd_uit_train_backward */
    int ndim;         /* 1 or 2, as stored in the checkpoint */
    int decay;        /* 1 for matrices (weight decay applies), 0 for norms, biases */
} hd_uit_param;

/* One training sample. seq.ids/pos/n_causal as for inference (n_text = T, n_seq = S = T + L),
 * seq.vit must be NULL. x holds the L target patch rows the model reads (the noisy z). */
typedef struct hd_uit_sample {
    hd_uit_seq seq;
    const float *x;   /* [L, patch_dim] */
    double t;         /* model time 1 − σ */
} hd_uit_sample;

typedef struct hd_uit_train hd_uit_train; /* the model plus saved activations and gradients */

/* Creates a trainable model: weights from st (any stored dtype, widened to float32) or, when st
 * is NULL, a seeded random initialisation (normal(0, init_std) matrices, ones for norms, zeros
 * for biases, zero patch head). with_lm_head: also train lm_head.weight [V, D] (taken from st
 * when present there, else initialised). */
int hd_uit_train_create(hd_uit_train **out, hd_backend *be, const hd_config *cfg,
                        const hd_safetensors *st, uint64_t init_seed, float init_std,
                        int with_lm_head, hd_error *e);
void hd_uit_train_free(hd_uit_train *tm);

hd_uit *hd_uit_train_model(hd_uit_train *tm);                 /* for inference / export */
int hd_uit_train_params(hd_uit_train *tm, hd_uit_param **params); /* returns the count */

/* Forward over a packed batch of n samples, saving activations. pred: host [Σ L_b, patch_dim],
 * the predicted clean patches of every target row, sample after sample. logits: NULL, or host
 * [Σ (A_b − 1), V]: lm_head(final_norm(x)) of the causal text rows 0 .. A_b − 2 of each sample
 * (row r predicts ids[r + 1]); needs with_lm_head. */
int hd_uit_train_forward(hd_uit_train *tm, const hd_uit_sample *batch, int n, float *pred,
                         float *logits, hd_error *e);

/* Backward of the last forward: accumulates into every param's grad. dpred and dlogits have the
 * shapes of pred and logits (dlogits NULL when the forward produced no logits). */
int hd_uit_train_backward(hd_uit_train *tm, const float *dpred, const float *dlogits,
                          hd_error *e);

void hd_uit_train_zero_grad(hd_uit_train *tm);

#endif
