/* The Unified Transformer (spec 03): the Qwen3-VL text decoder used as a pixel-space diffusion
 * transformer, plus HiDream's timestep token (t_embedder1), bottleneck patch embedding
 * (x_embedder) and patch head (final_layer2).
 *
 * Written once against the backend interface: weights are bound with ops->weight (zero copy on
 * the CPU backend), activations are float32 backend tensors, and host data moves only through
 * ops->write / ops->read. Scratch tensors live in the model object, sized for the largest
 * sequence seen so far and reused by later calls (one forward at a time per model).
 *
 * Two ways to run one denoising step on a sequence of S rows with A causal text rows:
 *   hd_uit_forward         every row, hybrid mask (rows < A causal, rows >= A see everything);
 *   hd_uit_prefix_build    once per sequence: the A prefix rows through every layer, keeping
 *   + hd_uit_forward_cached  the per-layer K/V; each step then runs only the S - A generation
 *                          rows against [cached K/V ; own K/V] (exact, spec 03 §9). */
#ifndef HD_MODEL_UIT_H
#define HD_MODEL_UIT_H

#include <stdint.h>

#include "backend/backend.h"
#include "io/config.h"
#include "io/safetensors.h"
#include "model/prefix_cache.h"
#include "model/rope.h"
#include "model/vit.h"

typedef struct hd_uit_layer {
    hd_tensor attn_norm;          /* input_layernorm [1, D] */
    hd_tensor wq, wk, wv, wo;     /* [H*hd, D], [Hkv*hd, D], [Hkv*hd, D], [D, H*hd] */
    hd_tensor q_norm, k_norm;     /* [1, hd], shared by every head */
    hd_tensor mlp_norm;           /* post_attention_layernorm [1, D] */
    hd_tensor w_gate, w_up, w_down; /* [F, D], [F, D], [D, F] */
} hd_uit_layer;

/* Scratch activations; each is allocated with a row capacity and used through row views. */
typedef struct hd_uit_scratch {
    int64_t rows;     /* capacity of the per-row buffers below */
    int64_t kv_rows;  /* capacity of k, v (prefix + own rows) */
    int64_t patches;  /* capacity of vin, bottleneck */
    int64_t outs;     /* capacity of sel, pred */
    hd_tensor x;      /* [rows, D] residual stream */
    hd_tensor h;      /* [rows, D] normed input / sublayer output */
    hd_tensor q;      /* [rows, H*hd] */
    hd_tensor att;    /* [rows, H*hd] attention output */
    hd_tensor k, v;   /* [kv_rows, Hkv*hd] */
    hd_tensor gate, up; /* [rows, F] */
    hd_tensor cos, sin; /* [rows, hd] rotary tables */
    hd_tensor vin;    /* [patches, patch_dim] */
    hd_tensor bottleneck; /* [patches, D/4] */
    hd_tensor sel;    /* [outs, D] rows picked for the head */
    hd_tensor pred;   /* [outs, patch_dim] */
    hd_tensor tfreq;  /* [1, freq_dim] timestep sinusoid */
    hd_tensor th, temb; /* [1, D] timestep MLP hidden / output */
    float *host_cos, *host_sin; /* [rows, hd] */
    float *host_hidden;         /* [rows, D], only for probes */
    int32_t *idx;               /* [rows] row indices for set_rows/add_rows */
} hd_uit_scratch;

typedef struct hd_uit {
    hd_backend *be;
    hd_text_config cfg;   /* copy of the config's text part */
    hd_token_ids ids;     /* special token ids (tms, image_pad) */
    int64_t dim;          /* D */
    int64_t q_dim;        /* H * hd */
    int64_t kv_dim;       /* Hkv * hd */
    int64_t ffn_dim;      /* F */
    int64_t patch_dim;    /* 3072 = 3·32·32, from x_embedder.proj1 */
    int64_t bottleneck_dim; /* D/4 in the release, from x_embedder.proj1 */
    int64_t freq_dim;     /* 256, the timestep sinusoid width, from t_embedder1.mlp.0 */
    float eps;
    float attn_scale;     /* 1/sqrt(hd) */
    hd_tensor embed_tokens;          /* [V, D] */
    hd_tensor t_fc1_w, t_fc1_b;      /* t_embedder1.mlp.0: [D, freq_dim], [1, D] */
    hd_tensor t_fc2_w, t_fc2_b;      /* t_embedder1.mlp.2: [D, D], [1, D] */
    hd_tensor x_proj1_w;             /* [bottleneck, patch_dim] */
    hd_tensor x_proj2_w, x_proj2_b;  /* [D, bottleneck], [1, D] */
    hd_tensor final_norm;            /* [1, D] */
    hd_tensor head_w, head_b;        /* final_layer2.linear: [patch_dim, D], [1, patch_dim] */
    hd_uit_layer *layers;            /* [num_layers] */
    hd_rope rope;
    hd_uit_scratch s;
    /* polled before every layer; non-zero stops the call with HD_ECANCELLED (NULL = never) */
    int (*cancel)(void *user);
    void *cancel_user;
} hd_uit;

/* One CFG branch's sequence. The model reads it during a call and keeps no pointer to it. */
typedef struct hd_uit_seq {
    const int32_t *ids;    /* [n_text] text ids incl. <|boi_token|> and <|tms_token|> */
    int64_t n_text;        /* T */
    int64_t n_seq;         /* S = T + P (P patch rows) */
    const int32_t *pos;    /* [3 * S] rotary positions, axis-major (temporal, height, width) */
    int64_t n_causal;      /* A: rows [0, A) are causal text rows; A <= T */
    const hd_vit_output *vit; /* NULL, or the ViT output for the image-pad rows (in order) */
} hd_uit_seq;

/* Debug hook for locating a mismatch: called after the input embeddings (layer = -1) and after
 * every decoder layer (incl. its DeepStack addition), for the n_rows sequence rows starting at
 * row0 that this call processes. hidden is a host [n_rows, D] copy for layers < n_capture (and
 * for the embeddings when n_capture > 0), NULL otherwise (the call then costs nothing, which
 * makes it usable as a timing hook on a synchronous backend). */
typedef struct hd_uit_probe {
    void (*fn)(void *ctx, int layer, int64_t row0, int64_t n_rows, const float *hidden);
    void *ctx;
    int n_capture;
} hd_uit_probe;

/* Binds every model.language_model.*, model.t_embedder1.*, model.x_embedder.* and
 * model.final_layer2.* tensor of st, checking each shape against cfg. *out is NULL on failure. */
int hd_uit_create(hd_uit **out, hd_backend *be, const hd_config *cfg, const hd_safetensors *st,
                  hd_error *e);
/* A model with every size set from cfg and the three widths config.json does not state, and no
 * weight bound (all weight tensors zeroed): the caller fills each one, e.g. with a float32
 * tensor from ops->alloc (owned tensors are released by hd_uit_free). Used by training. */
int hd_uit_create_unbound(hd_uit **out, hd_backend *be, const hd_config *cfg, int64_t patch_dim,
                          int64_t bottleneck_dim, int64_t freq_dim, hd_error *e);
void hd_uit_free(hd_uit *m);

/* Reads binary token types [S] (0 causal, 1 generation) and checks they are a 0-prefix followed
 * only by 1s; *n_causal = the prefix length. */
int hd_uit_causal_prefix(const uint8_t *types, int64_t n_seq, int64_t *n_causal, hd_error *e);

/* Full forward over all S rows. vinputs: host [P, patch_dim] patch rows (target, then references);
 * t: model time in [0, 1]. out_rows[0..n_out) are the sequence rows whose predicted patch is
 * wanted (any rows, any order); out: host [n_out, patch_dim]. probe may be NULL. */
int hd_uit_forward(hd_uit *m, const hd_uit_seq *seq, const float *vinputs, double t,
                   const int32_t *out_rows, int64_t n_out, float *out, const hd_uit_probe *probe,
                   hd_error *e);

/* Runs the A causal rows of seq through every layer (with the ViT embeddings and DeepStack if
 * seq->vit is set) and fills pc (allocated here; free with hd_prefix_cache_free). The prefix must
 * not contain the timestep token (its embedding depends on t). */
int hd_uit_prefix_build(hd_uit *m, const hd_uit_seq *seq, hd_prefix_cache *pc,
                        const hd_uit_probe *probe, hd_error *e);

/* Like hd_uit_forward, but only the generation rows [A, S) are computed, attending to the cached
 * prefix K/V. pc must have been built from the same sequence (ids, positions, A; checked) and the
 * same ViT output (not checked). Every out_rows entry must be >= A. */
int hd_uit_forward_cached(hd_uit *m, const hd_prefix_cache *pc, const hd_uit_seq *seq,
                          const float *vinputs, double t, const int32_t *out_rows, int64_t n_out,
                          float *out, const hd_uit_probe *probe, hd_error *e);

#endif
