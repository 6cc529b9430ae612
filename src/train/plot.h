/* Pictures a run writes for people to look at: the loss curve (loss.png) and grids of sample
 * pictures. Drawn into an hd_image and saved as PNG through the image codec. */
#ifndef HD_TRAIN_PLOT_H
#define HD_TRAIN_PLOT_H

#include <stdint.h>

#include "hidream.h"

/* Loss curve: n points (step[i], loss[i]), log-scaled loss axis, raw values in light grey and an
 * exponential moving average (0.98) in blue, with tick lines at each power of ten. */
int hd_plot_loss(const char *path, const int64_t *step, const double *loss, int64_t n,
                 hd_error *e);

/* Pictures side by side in rows of `cols`, 2-pixel white gaps (pictures may differ in size:
 * cells take the largest). */
int hd_plot_grid(const char *path, const hd_image *im, int n, int cols, hd_error *e);

#endif
