/* `hidream train`: the loop that turns a recipe (train_config.h) into a model.
 *
 * Each optimizer step draws `accum` micro-batches of `batch` samples from the current stage's
 * buckets, runs the UiT forward and backward (model/uit_train.h), and applies AdamW + schedule +
 * clipping + EMA (optimizer.h). The run directory receives loss.csv (one row per step),
 * loss.png, checkpoint.safetensors (every checkpoint_every steps and at the end), model/ (the
 * export), samples/step-NNNNNN.png (every sample_every steps, prompts in the .txt beside it) and
 * eval.csv (every eval_every steps: the shapes-world score per category).
 *
 * The library prints nothing: progress and events go to the caller's callback. */
#ifndef HD_TRAIN_TRAINER_H
#define HD_TRAIN_TRAINER_H

#include <signal.h>
#include <stdint.h>

#include "data/shapes_score.h"
#include "train/train_config.h"

typedef enum hd_train_event {
    HD_TRAIN_EV_START,       /* model built, data open; params, step (0 or resumed) set */
    HD_TRAIN_EV_LOG,         /* every log_every steps: loss, lr, speed, ETA */
    HD_TRAIN_EV_CHECKPOINT,  /* checkpoint written (path) */
    HD_TRAIN_EV_SAMPLES,     /* sample grid written (path) */
    HD_TRAIN_EV_EVAL,        /* shapes-world score (tally) */
    HD_TRAIN_EV_DONE,        /* the last step is done and exported (path = model dir) */
} hd_train_event;

typedef struct hd_train_report {
    hd_train_event event;
    int64_t step, total;     /* steps done, steps in the run */
    int64_t params;          /* trainable parameters */
    double loss, loss_img, loss_lm; /* means over the log window */
    double lr, grad_norm;
    double samples_s, eta_s; /* over the log window; ETA of the remaining steps */
    double elapsed_s;        /* since this invocation started */
    const char *path;
    const hd_shapes_tally *tally;
} hd_train_report;

typedef void (*hd_train_report_fn)(void *user, const hd_train_report *r);

typedef struct hd_train_options {
    int resume;              /* continue from OUT/checkpoint.safetensors */
    int restart;             /* start over even if OUT holds a checkpoint */
    int64_t until;           /* > 0: stop (with a checkpoint) after this many steps in all */
    int threads;             /* > 0 overrides the recipe's threads */
    hd_train_report_fn report;
    void *user;
    volatile sig_atomic_t *stop; /* raised: checkpoint after the current step and return
                                    HD_ECANCELLED */
} hd_train_options;

int hd_train_run(const hd_train_config *c, const hd_train_options *opt, hd_error *e);

#endif
