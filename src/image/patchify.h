/* The 32x32 patch layout shared by noise, reference patches, model inputs and outputs (spec 05
 * §2): image[c][y][x] (c < 3) <-> rows[n][f] with n = (y/32)*(W/32) + x/32 and
 * f = c*1024 + (y%32)*32 + x%32. */
#ifndef HD_IMAGE_PATCHIFY_H
#define HD_IMAGE_PATCHIFY_H

#include "hidream.h"

#define HD_PATCH 32
#define HD_PATCH_DIM (3 * HD_PATCH * HD_PATCH) /* 3072 */

/* chw: [3][h][w] planar; rows: [(h/32)(w/32)][3072]. w and h must be positive multiples of 32. */
int hd_patchify(const float *chw, int w, int h, float *rows, hd_error *e);
int hd_unpatchify(const float *rows, int w, int h, float *chw, hd_error *e);

#endif
