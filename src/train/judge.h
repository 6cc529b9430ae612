/* Looking at a model during training, through the public API exactly as a user would: the
 * sample grid (fixed prompts, seeds 0..n-1) and the spec-09 judge on n prompts of the shapes
 * world drawn as `hidream eval shapes -m DIR --n N --seed S` draws them (prompt i from the world
 * with seed S, picture with the model's defaults and seed S + i). */
#ifndef HD_TRAIN_JUDGE_H
#define HD_TRAIN_JUDGE_H

#include <stdint.h>

#include "data/shapes_score.h"
#include "hidream.h"

/* Pictures of prompts[0..n) into out[0..n) (hd_image_free each). */
int hd_train_draw_samples(hd_model *m, const char (*prompts)[256], int n, hd_image *out,
                          hd_error *e);

/* Scores the model on n world prompts into t (zeroed first). */
int hd_train_judge_shapes(hd_model *m, int n, uint64_t seed, hd_shapes_tally *t, hd_error *e);

#endif
