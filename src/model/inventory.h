/* The tensors a HiDream-O1-Image checkpoint must hold (spec 01 §4), derived from its config.
 *
 * Every name and shape comes from hd_config: nothing assumes the 8B sizes. Three parts:
 * the Qwen3 language model (model.language_model.*), the HiDream additions (model.t_embedder1.*,
 * model.x_embedder.*, model.final_layer2.*) and the vision tower (model.visual.*, only when the
 * config has a vision_config). lm_head.weight is allowed in a file but never required or used. */
#ifndef HD_MODEL_INVENTORY_H
#define HD_MODEL_INVENTORY_H

#include <stdint.h>

#include "io/config.h"
#include "io/safetensors.h"

#define HD_INV_NAME_MAX 96
#define HD_INV_MAX_DIMS 5

/* Pixel-space constants hard-coded upstream (spec 01 §5); the patch side is cfg->gen.patch_size
 * (HD_PIXEL_PATCH unless config.json states another). */
#define HD_PIXEL_PATCH 32
#define HD_PIXEL_CHANNELS 3
#define HD_PATCH_DIM (HD_PIXEL_CHANNELS * HD_PIXEL_PATCH * HD_PIXEL_PATCH) /* 3072 */
#define HD_TIMESTEP_FREQ_DIM 256

typedef enum hd_part {
    HD_PART_TEXT = 0, /* model.language_model.* */
    HD_PART_HIDREAM,  /* model.t_embedder1.*, model.x_embedder.*, model.final_layer2.* */
    HD_PART_VISION,   /* model.visual.* */
    HD_PART_COUNT
} hd_part;

typedef struct hd_inv_entry {
    char name[HD_INV_NAME_MAX];
    hd_part part;
    int ndim;
    int64_t shape[HD_INV_MAX_DIMS];
} hd_inv_entry;

/* Calls fn once per expected tensor, in a fixed order (text, HiDream, vision). Vision tensors are
 * visited only when cfg->vision.present. Returns the number of entries visited. */
int hd_inventory_foreach(const hd_config *cfg, void (*fn)(void *ctx, const hd_inv_entry *ent),
                         void *ctx);

/* Element count of an entry. */
int64_t hd_inv_numel(const hd_inv_entry *ent);

/* Parameter counts per part, plus the optional lm_head ([vocab, hidden]) kept apart. */
typedef struct hd_param_counts {
    int64_t part[HD_PART_COUNT];
    int64_t lm_head;
    int64_t total; /* sum of the parts, without lm_head */
    int n_tensors[HD_PART_COUNT];
} hd_param_counts;

void hd_inventory_param_counts(const hd_config *cfg, hd_param_counts *out);

/* The value scale of weight t ("scaled fp8" checkpoints, as ComfyUI writes them): for an F8
 * tensor X.weight, the one-value tensor X.scale_weight (or X.weight_scale) if present, else 1;
 * 1 for every other dtype. A scale of more than one value (per channel) or one that is not a
 * positive finite number is refused with one line naming the tensor. */
int hd_inv_weight_scale(const hd_safetensors *st, const hd_st_tensor *t, float *scale,
                        hd_error *e);

/* Name of a part for messages ("text", "hidream", "vision"). */
const char *hd_part_name(hd_part p);

/* Compares the file's tensors with the inventory. Fails (one line naming the tensor) on:
 * - a missing tensor. Vision tensors are required when need_vision, or when any of them is
 *   present (the tower is all there or absent); need_vision without a vision_config fails too;
 * - a tensor whose shape differs (expected and actual shown);
 * - a dtype other than BF16/F16/F32;
 * - a tensor that is neither in the inventory nor lm_head.weight. */
int hd_inventory_check(const hd_config *cfg, const hd_safetensors *st, int need_vision,
                       hd_error *e);

#endif
