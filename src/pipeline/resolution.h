/* Output-size rules (spec 00 §5): the 11 preset resolutions of the official pipeline. */
#ifndef HD_PIPELINE_RESOLUTION_H
#define HD_PIPELINE_RESOLUTION_H

#include "hidream.h"

#define HD_N_PRESETS 11
#define HD_MAX_SIDE 8192 /* largest side accepted with --no-snap (sequence memory grows as side²) */

/* The preset whose aspect ratio W/H is closest to the request's (first wins ties). */
void hd_snap_resolution(int width, int height, int *out_w, int *out_h);

/* Validates a size used as is (--no-snap): positive multiples of 32, each side ≤ HD_MAX_SIDE. */
int hd_check_resolution(int width, int height, hd_error *e);

#endif
