/* The patch layout shared by noise, reference patches, model inputs and outputs (spec 05 §2),
 * for a patch side p (32 for the released model, the model's hidream.patch_size in general):
 * image[c][y][x] (c < 3) <-> rows[n][f] with n = (y/p)*(W/p) + x/p and
 * f = c*p² + (y%p)*p + x%p. */
#ifndef HD_IMAGE_PATCHIFY_H
#define HD_IMAGE_PATCHIFY_H

#include "hidream.h"

/* The released model's patch side (upstream constant); reference images still use it. */
#define HD_PATCH 32
#define HD_PATCH_DIM (3 * HD_PATCH * HD_PATCH) /* 3072 */

/* chw: [3][h][w] planar; rows: [(h/p)(w/p)][3p²]. w and h must be positive multiples of p,
 * p in 1..64. */
int hd_patchify(const float *chw, int w, int h, int p, float *rows, hd_error *e);
int hd_unpatchify(const float *rows, int w, int h, int p, float *chw, hd_error *e);

#endif
