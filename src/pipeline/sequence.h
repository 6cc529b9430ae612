/* One CFG branch's token sequence (spec 02 §3-5): the text ids given to the model, the binary
 * token types that drive the hybrid mask, and the 3-D rotary position of every position.
 *
 *   [0, A)        text tokens (chat prompt incl. VLM image pads, ends with <|boi_token|>)  type 0
 *   A = T-1       <|tms_token|>                                                            type 1
 *   [T, T+L)      target patches (raster order)                                            type 1
 *   [T+L, S)      reference patches, image after image                                     type 1
 */
#ifndef HD_PIPELINE_SEQUENCE_H
#define HD_PIPELINE_SEQUENCE_H

#include <stdint.h>

#include "hidream.h"
#include "io/config.h"

#define HD_ROPE_FIX_POINT 4096 /* rotary anchor of the first target patch (spec 02 §5) */

typedef struct hd_grid {
    int t, h, w; /* in units of one LLM token (one patch: the model's patch size in pixels) */
} hd_grid;

typedef struct hd_sequence {
    int64_t T;           /* text ids given to the model (incl. boi and tms) */
    int64_t S;           /* total positions = T + L + Σ L_ref */
    int64_t A;           /* causal text rows (binary type 0), = T - 1 */
    int64_t L;           /* target patches */
    int64_t P;           /* patch rows = S - T */
    int32_t *ids;        /* [T] */
    int32_t *pos;        /* [3 * S]: temporal row, then height row, then width row */
    uint8_t *type;       /* [S] binary token type (0 causal text, 1 generation) */
    int n_vlm_tokens;    /* Σ N_k image-pad tokens inside the text */
} hd_sequence;

/* Builds the sequence from the tokenized chat prompt (text_ids ends with boi, tms), the merged
 * grids of the VLM condition images (in prompt order), the target grid and the reference patch
 * grids. Validates that the prompt's image-pad runs match the VLM grids. */
int hd_sequence_build(hd_sequence *seq, const int32_t *text_ids, int64_t T, const hd_token_ids *tok,
                      const hd_grid *vlm, int n_vlm, hd_grid target, const hd_grid *refs,
                      int n_refs, hd_error *e);
void hd_sequence_free(hd_sequence *seq);

#endif
