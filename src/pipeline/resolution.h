/* Output-size rules (spec 00 §5): snapping to presets by aspect ratio and the size checks.
 *
 * The released model snaps to the 11 presets of the official pipeline. A model whose config.json
 * states a native size or its own presets (hd_gen_config) snaps only to its own presets (its
 * native size alone when it lists none) and never to the 2048-class ones. */
#ifndef HD_PIPELINE_RESOLUTION_H
#define HD_PIPELINE_RESOLUTION_H

#include "hidream.h"
#include "io/config.h"

#define HD_N_PRESETS 11
#define HD_MAX_SIDE HD_GEN_MAX_SIDE /* largest side accepted with --no-snap */
#define HD_NATIVE_FACTOR 2          /* --no-snap limit per side for models with a native size */

/* The release preset whose aspect ratio W/H is closest to the request's (first wins ties). */
void hd_snap_resolution(int width, int height, int *out_w, int *out_h);

/* Validates a size used as is with the release's 32-pixel patches: positive multiples of 32,
 * each side ≤ HD_MAX_SIDE. */
int hd_check_resolution(int width, int height, hd_error *e);

/* The presets a model snaps to, copied into out: its hidream.resolutions, else its native size
 * alone, else the release's 11. Returns their number (at most HD_MAX_RESOLUTIONS). */
int hd_model_presets(const hd_gen_config *g, int out[HD_MAX_RESOLUTIONS][2]);

/* 1 if the model states its own sizes (native size or presets). */
int hd_model_has_own_sizes(const hd_gen_config *g);

/* The final size of a request for this model: snapped to the model's presets (first closest
 * aspect wins), or with no_snap the request itself, which must then be a positive multiple of
 * the patch size, at most HD_MAX_SIDE per side and, for a model with its own sizes, at most
 * HD_NATIVE_FACTOR times its largest stated width/height. */
int hd_resolve_size(const hd_gen_config *g, int width, int height, int no_snap, int *out_w,
                    int *out_h, hd_error *e);

#endif
