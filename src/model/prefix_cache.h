/* Per-layer keys and values of the causal text prefix of one sequence (spec 03 §9).
 *
 * The first A rows of a HiDream sequence (the chat text, its image-pad tokens and
 * <|boi_token|>) attend only causally among themselves and do not depend on the denoising step,
 * so their per-layer K (after QK-norm and RoPE) and V are computed once per CFG branch
 * (hd_uit_prefix_build in model/uit.h) and every step runs only the generation rows.
 * The cache also remembers the prefix's ids and positions so that a step on a different sequence
 * is refused instead of silently computing garbage. */
#ifndef HD_MODEL_PREFIX_CACHE_H
#define HD_MODEL_PREFIX_CACHE_H

#include <stdint.h>

#include "backend/backend.h"

typedef struct hd_prefix_cache {
    hd_backend *be;
    int n_layers;
    int64_t n_rows;  /* A, the causal prefix length (may be 0) */
    int64_t kv_dim;  /* n_kv_heads * head_dim */
    hd_tensor *k;    /* [n_layers], each [A, kv_dim] (unallocated when A = 0) */
    hd_tensor *v;
    int32_t *ids;    /* [A] token ids of the prefix */
    int32_t *pos;    /* [3 * A] positions, axis-major */
    int complete;    /* 1 once every layer has been filled */
} hd_prefix_cache;

/* Allocates the per-layer tensors for n_rows prefix rows. On failure *pc is left empty. */
int hd_prefix_cache_alloc(hd_prefix_cache *pc, hd_backend *be, int n_layers, int64_t n_rows,
                          int64_t kv_dim, hd_error *e);
/* Releases everything and zeroes *pc (safe on a zeroed cache). */
void hd_prefix_cache_free(hd_prefix_cache *pc);

/* Records which sequence the prefix belongs to: ids[0..A) and pos (axis-major over seq_len rows,
 * the first A of each axis are kept). */
void hd_prefix_cache_set_key(hd_prefix_cache *pc, const int32_t *ids, const int32_t *pos,
                             int64_t seq_len);
/* 1 if the cache is complete and holds the prefix of this sequence (same A, ids, positions). */
int hd_prefix_cache_matches(const hd_prefix_cache *pc, const int32_t *ids, const int32_t *pos,
                            int64_t seq_len, int64_t n_causal);

#endif
