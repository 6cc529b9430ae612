/* The training objective of the report (docs/TRAINING.md): flow matching with x0 prediction.
 *
 *   z = (1 − σ)·x0 + σ·(s·ε)          s: the model's noise scale, ε ~ N(0, 1)
 *   loss_img = mean (v̂ − v)²,  v̂ − v = (x̂ − x0) / max(σ, σ_min)     (velocity space, as the
 *                                      sampler turns x̂ into a velocity)
 *   loss_lm  = mean cross-entropy of the prompt's next tokens through lm_head
 *
 * Every function is pure: the same inputs give the same bits on any thread count. */
#ifndef HD_TRAIN_OBJECTIVE_H
#define HD_TRAIN_OBJECTIVE_H

#include <stddef.h>
#include <stdint.h>

#include "data/prng.h"
#include "train/train_config.h"

/* One standard normal from the generator (Box–Muller on two uniforms). */
double hd_train_normal(hd_prng *r);

/* σ of one sample: sigmoid(mean + std·n) (logit-normal) or uniform in (0, 1). */
double hd_train_draw_sigma(const hd_train_objective *o, hd_prng *r);

/* z[i] = (1 − σ)·x0[i] + σ·s·eps[i]. */
void hd_train_noise(float *z, const float *x0, const float *eps, size_t n, double sigma,
                    double noise_scale);

/* Image term of one sample: returns mean((x̂ − x0)² / max(σ, σ_min)²) over its n values and
 * writes dpred = scale · ∂(that mean)/∂x̂. */
double hd_train_image_loss(const float *pred, const float *x0, size_t n, double sigma,
                           double sigma_min, double scale, float *dpred);

/* LM term over `rows` logit rows of width V: row r predicts target[r] when mask[r] is set.
 * Returns the summed cross-entropy of the masked rows and writes dlogits = scale · ∂sum/∂logits
 * (0 for unmasked rows). */
double hd_train_lm_loss(const float *logits, int V, const int32_t *target, const uint8_t *mask,
                        int64_t rows, double scale, float *dlogits);

#endif
