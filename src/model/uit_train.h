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
    hd_tensor *w;     /* the weight inside the model (float32 [rows, cols]; a 1-D tensor is [1, n]) */
    hd_tensor grad;   /* same shape, float32, accumulated by hd_uit_train_backward. A view: the
                       * memory belongs to the trainable model (hd_tensor_free on it is a no-op) */
    int ndim;         /* 1 or 2, as stored in the checkpoint */
    int decay;        /* 1 for matrices incl. the embedding, lm_head and the patch head (weight
                       * decay applies), 0 for norms and biases */
} hd_uit_param;

/* One training sample. seq.ids/pos/n_causal as for inference (n_text = T, n_seq = S = T + L,
 * L >= 1 target rows, no reference rows), seq.vit must be NULL and no id may be <|image_pad|>.
 * Every <|tms_token|> row takes the timestep embedding of t. x holds the L target patch rows
 * the model reads (the noisy z). */
typedef struct hd_uit_sample {
    hd_uit_seq seq;
    const float *x;   /* [L, patch_dim] */
    double t;         /* model time 1 − σ, in [0, 1] */
} hd_uit_sample;

typedef struct hd_uit_train hd_uit_train; /* the model plus saved activations and gradients */

/* Creates a trainable model (needs hd_backend_can_train). Weights are float32 tensors from
 * ops->alloc: from st (any stored float dtype, widened; every text-decoder, t_embedder1,
 * x_embedder and final_layer2 tensor must be there, the vision tower is ignored) or, when st is
 * NULL, a seeded initialisation: every matrix (embedding, projections, lm_head) normal(0,
 * init_std) drawn in parameter order from one PyTorch-compatible generator (torch.randn with
 * torch.Generator().manual_seed(init_seed), src/sample/rng.h), ones for norms, zeros for biases,
 * zeros for the whole patch head (final_layer2) so the first prediction is 0. Without st the
 * widths config.json does not state are: patch_dim = 3·p² (p = cfg->gen.patch_size, 32 when 0),
 * bottleneck D/4, timestep sinusoid 256. with_lm_head: also train lm_head.weight [V, D] (taken
 * from st when present there, else initialised as above). Gradients start at zero. */
int hd_uit_train_create(hd_uit_train **out, hd_backend *be, const hd_config *cfg,
                        const hd_safetensors *st, uint64_t init_seed, float init_std,
                        int with_lm_head, hd_error *e);
void hd_uit_train_free(hd_uit_train *tm);

/* The model itself (its weights are the master weights): hd_uit_forward & co. run on it
 * unchanged, e.g. for samples during training. lm_head is not part of it (see the params). */
hd_uit *hd_uit_train_model(hd_uit_train *tm);
/* Every trainable tensor, in checkpoint order: embed_tokens, layers 0.. (input_layernorm, q, k,
 * v, o, q_norm, k_norm, post_attention_layernorm, gate, up, down), norm, t_embedder1 (mlp.0
 * weight, bias, mlp.2 weight, bias), x_embedder (proj1, proj2 weight, bias), final_layer2
 * (weight, bias), lm_head. Returns the count; the array lives as long as tm. */
int hd_uit_train_params(hd_uit_train *tm, hd_uit_param **params);

/* Forward over a packed batch of n samples (rows of sample b follow those of sample b−1),
 * saving activations for one backward. pred: host [Σ L_b, patch_dim], the predicted clean
 * patches of every target row, sample after sample. logits: NULL, or host [Σ (A_b − 1), V]:
 * lm_head(final_norm(x)) of the causal text rows 0 .. A_b − 2 of each sample, sample after sample
 * (row r predicts ids[r + 1]); needs with_lm_head. Errors name the sample ("batch[b]: ..."). */
int hd_uit_train_forward(hd_uit_train *tm, const hd_uit_sample *batch, int n, float *pred,
                         float *logits, hd_error *e);

/* Backward of the last forward: accumulates ∂loss/∂w into every param's grad, given
 * dpred = ∂loss/∂pred and dlogits = ∂loss/∂logits (same shapes; dlogits NULL: no LM term; not
 * allowed when the forward made no logits). One backward per forward (the saved activations are
 * partly reused as scratch); a second call fails. */
int hd_uit_train_backward(hd_uit_train *tm, const float *dpred, const float *dlogits,
                          hd_error *e);

void hd_uit_train_zero_grad(hd_uit_train *tm);

#endif
