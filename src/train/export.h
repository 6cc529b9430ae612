/* Exporting what a run trained as an ordinary model directory, loadable by `hidream generate -m`:
 * config.json (Qwen3-VL layout, no vision tower, plus the "hidream" object with the model's own
 * patch size, noise scale, native size, presets and sampler defaults), tokenizer.json and
 * model.safetensors of the EMA weights. */
#ifndef HD_TRAIN_EXPORT_H
#define HD_TRAIN_EXPORT_H

#include <stddef.h>

#include "io/config.h"
#include "train/optimizer.h"
#include "train/train_config.h"

/* The model config a recipe trains (text decoder sizes, special-token ids from the tokenizer
 * text, the "hidream" generation object); no vision tower. */
int hd_train_model_config(hd_config *cfg, const hd_train_config *c, const char *tokenizer_json,
                          size_t tokenizer_len, hd_error *e);

/* Writes dir/ (replacing an older export): config.json, tokenizer.json and model.safetensors
 * holding the EMA weights (the weights when the run has no EMA), bf16 or float32. */
int hd_train_export(const char *dir, const hd_train_config *c,
                    const hd_train_optimizer *o, const char *tokenizer_json, size_t tokenizer_len,
                    hd_error *e);

#endif
