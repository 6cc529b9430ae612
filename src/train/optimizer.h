/* The optimizer of a run: AdamW (decoupled weight decay, bias correction) on the float32 master
 * weights with global-norm clipping, the learning-rate schedule (linear warm-up, then cosine to
 * lr · min_lr_ratio), and the EMA of the weights that is exported. State lives in backend
 * tensors beside the weights; the checkpoint saves all of it. */
#ifndef HD_TRAIN_OPTIMIZER_H
#define HD_TRAIN_OPTIMIZER_H

#include <stdint.h>

#include "model/uit_train.h"
#include "train/train_config.h"

typedef struct hd_train_optimizer {
    hd_backend *be;
    hd_uit_param *ps;   /* the model's parameters (not owned) */
    int n;
    hd_tensor *m, *v;   /* [n] first and second moments */
    hd_tensor *ema;     /* [n] EMA weights, or NULL (ema_decay 0) */
} hd_train_optimizer;

/* Moments at zero, the EMA at the current weights. */
int hd_train_optimizer_init(hd_train_optimizer *o, hd_backend *be, hd_uit_param *ps, int n,
                            int with_ema, hd_error *e);
void hd_train_optimizer_free(hd_train_optimizer *o);

/* Learning rate of optimizer step `step` (0-based) of a run of `total` steps. */
double hd_train_lr(const hd_train_optim *o, int64_t step, int64_t total);

/* One update with the accumulated gradients (already scaled to the mean over micro-batches):
 * global norm, clipping folded into AdamW's gradient scale, AdamW with bias correction for
 * step + 1, then the EMA (decay min(ema_decay, (1 + step)/(10 + step)), so early weights do
 * not dominate). Returns the gradient norm before clipping. */
double hd_train_optimizer_step(hd_train_optimizer *o, const hd_train_optim *c, double lr,
                               int64_t step);

#endif
