/* What a run leaves on disk:
 *
 *   OUT/checkpoint.safetensors   everything needed to continue bit-identically (same thread
 *                                count): master weights under their checkpoint names, AdamW
 *                                moments ("adam_m." / "adam_v." + name), EMA weights ("ema." +
 *                                name) and "trainer.state" (I64: step done, seed, tensor count)
 *   OUT/model/                   the exported model directory (train/export.h)
 *
 * Both are written to a temporary name and renamed, so a failed or interrupted write leaves the
 * previous version (or nothing), never a half-written file. */
#ifndef HD_TRAIN_CHECKPOINT_H
#define HD_TRAIN_CHECKPOINT_H

#include <stdint.h>

#include "io/config.h"
#include "train/optimizer.h"
#include "train/train_config.h"

int hd_train_checkpoint_save(const char *path, const hd_train_optimizer *o, int64_t step,
                             uint64_t seed, hd_error *e);

/* Restores weights, moments and EMA into an optimizer built for the same model; *step receives
 * the steps done. A checkpoint of another model (names, shapes), another seed or without EMA
 * when the run has one is refused naming the tensor or field. */
int hd_train_checkpoint_load(const char *path, hd_train_optimizer *o, uint64_t seed,
                             int64_t *step, hd_error *e);

#endif
