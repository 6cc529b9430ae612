/* A Qwen3-architecture causal LM for text generation (the local prompt agent), on the same
 * backend interface as the image decoder.
 *
 * Per layer the keys (after QK-norm and RoPE) and values of every position seen so far live in
 * an append-only cache of max_ctx rows: new tokens are projected straight into the next cache
 * rows and attend to rows [0, n_past + n) with a causal mask; nothing already cached is copied
 * or recomputed. Long inputs are processed in chunks of at most HD_LM_CHUNK rows. */
#ifndef HD_AGENT_LM_H
#define HD_AGENT_LM_H

#include <stdint.h>

#include "agent/lm_config.h"
#include "backend/backend.h"
#include "io/safetensors.h"

#define HD_LM_CHUNK 256
#define HD_LM_LOGIT_ROWS 16 /* rows of logits computed per lm_head call */

typedef struct hd_lm_layer {
    hd_tensor attn_norm, wq, wk, wv, wo, q_norm, k_norm, mlp_norm, w_gate, w_up, w_down;
    hd_tensor k_cache, v_cache; /* [max_ctx, kv_dim] */
} hd_lm_layer;

typedef struct hd_lm {
    hd_backend *be;
    hd_lm_config cfg;
    hd_safetensors st;
    hd_tensor embed, final_norm, lm_head;
    hd_lm_layer *layers;
    int max_ctx, n_past;
    float *inv_freq; /* [head_dim/2] */
    /* scratch for one chunk */
    hd_tensor x, h, q, att, gate, up, cos, sin, logits; /* logits: HD_LM_LOGIT_ROWS rows */
    float *host_cos, *host_sin;
} hd_lm;

/* Opens DIR (config.json + model.safetensors or its sharded index), binds every weight (checked
 * against the config) and allocates the caches for max_ctx positions (at most the config's
 * max_position_embeddings). */
int hd_lm_load(hd_lm **out, const char *dir, hd_backend *be, int max_ctx, hd_error *e);
void hd_lm_free(hd_lm *m);

/* Forgets every cached position. */
void hd_lm_reset(hd_lm *m);

/* Appends ids[0..n) at positions n_past.. and advances n_past. logits (host) receives
 * [n, vocab] rows (all = 1) or the last position's [vocab] row (all = 0); NULL for none.
 * Ids must be < vocab and the cache must have room (HD_EINVAL otherwise, nothing appended). */
int hd_lm_forward(hd_lm *m, const int32_t *ids, int n, float *logits, int all, hd_error *e);

#endif
