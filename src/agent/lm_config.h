/* config.json of a Qwen3-architecture causal LM for the local prompt agent.
 *
 * Two layouts: a Qwen3 text model (model_type "qwen3", weights "model.*" and "lm_head.weight"
 * unless tie_word_embeddings), and a Qwen3-VL checkpoint such as HiDream-O1-Image (fields in
 * "text_config", weights "model.language_model.*" and "lm_head.weight"). A text-only sequence
 * has equal positions on the three MRoPE axes, which is plain 1-D RoPE, so both run the same
 * decoder. Anything the decoder does not compute (rope scaling, attention bias, sliding window)
 * is refused with a message naming the field. */
#ifndef HD_AGENT_LM_CONFIG_H
#define HD_AGENT_LM_CONFIG_H

#include "hidream.h"

typedef struct hd_lm_config {
    int vocab, dim, n_layers, n_heads, n_kv_heads, head_dim, ffn, max_pos;
    double eps, theta;
    int tied;           /* lm_head is embed_tokens */
    char prefix[32];    /* "model." or "model.language_model." */
} hd_lm_config;

/* Reads DIR/config.json. */
int hd_lm_config_load(const char *dir, hd_lm_config *c, hd_error *e);
/* Parses a config.json image; `what` names it in messages. */
int hd_lm_config_parse(const char *json, size_t len, const char *what, hd_lm_config *c,
                       hd_error *e);

#endif
