#include "pipeline/resolution.h"

#include <math.h>

#include "core/error.h"

/* Upstream order; it matters for ties. */
static const int presets[HD_N_PRESETS][2] = {
    {2048, 2048}, {2304, 1728}, {1728, 2304}, {2560, 1440}, {1440, 2560}, {2496, 1664},
    {1664, 2496}, {3104, 1312}, {1312, 3104}, {2304, 1792}, {1792, 2304},
};

/* Index of the (width, height) pair of wh[2n] whose aspect ratio is closest to width/height
 * (first wins ties). */
static int closest_aspect(const int *wh, int n, int width, int height) {
    double want = (double)width / (double)height, best = INFINITY;
    int bi = 0;
    for (int i = 0; i < n; i++) {
        double d = fabs((double)wh[2 * i] / wh[2 * i + 1] - want);
        if (d < best) {
            best = d;
            bi = i;
        }
    }
    return bi;
}

void hd_snap_resolution(int width, int height, int *out_w, int *out_h) {
    int i = closest_aspect(&presets[0][0], HD_N_PRESETS, width, height);
    *out_w = presets[i][0];
    *out_h = presets[i][1];
}

static int check_multiple(int width, int height, int patch, hd_error *e) {
    if (width <= 0 || height <= 0 || width % patch || height % patch)
        return hd_fail(e, HD_EINVAL,
                       "size %dx%d: width and height must be positive multiples of %d (the "
                       "model's patch size)",
                       width, height, patch);
    if (width > HD_MAX_SIDE || height > HD_MAX_SIDE)
        return hd_fail(e, HD_EINVAL, "size %dx%d: each side must be at most %d pixels", width,
                       height, HD_MAX_SIDE);
    return 0;
}

int hd_check_resolution(int width, int height, hd_error *e) {
    return check_multiple(width, height, 32, e);
}

int hd_model_has_own_sizes(const hd_gen_config *g) {
    return g->native_w > 0 || g->n_resolutions > 0;
}

int hd_model_presets(const hd_gen_config *g, int out[HD_MAX_RESOLUTIONS][2]) {
    int n = 0;
    if (g->n_resolutions > 0) {
        for (; n < g->n_resolutions; n++) {
            out[n][0] = g->resolutions[n][0];
            out[n][1] = g->resolutions[n][1];
        }
    } else if (g->native_w > 0) {
        out[n][0] = g->native_w;
        out[n++][1] = g->native_h;
    } else {
        for (; n < HD_N_PRESETS; n++) {
            out[n][0] = presets[n][0];
            out[n][1] = presets[n][1];
        }
    }
    return n;
}

int hd_resolve_size(const hd_gen_config *g, int width, int height, int no_snap, int *out_w,
                    int *out_h, hd_error *e) {
    if (width <= 0 || height <= 0)
        return hd_fail(e, HD_EINVAL, "size %dx%d: width and height must be positive", width,
                       height);
    int list[HD_MAX_RESOLUTIONS][2];
    int n = hd_model_presets(g, list);
    if (!no_snap) {
        int i = closest_aspect(&list[0][0], n, width, height);
        width = list[i][0];
        height = list[i][1];
    }
    HD_TRY(check_multiple(width, height, g->patch_size, e));
    if (no_snap && hd_model_has_own_sizes(g)) {
        int mw = 0, mh = 0;
        for (int i = 0; i < n; i++) {
            if (list[i][0] > mw) mw = list[i][0];
            if (list[i][1] > mh) mh = list[i][1];
        }
        if (width > HD_NATIVE_FACTOR * mw || height > HD_NATIVE_FACTOR * mh)
            return hd_fail(e, HD_EINVAL,
                           "size %dx%d: this model was trained up to %dx%d; with --no-snap each "
                           "side may be at most %d times that (%dx%d)",
                           width, height, mw, mh, HD_NATIVE_FACTOR, HD_NATIVE_FACTOR * mw,
                           HD_NATIVE_FACTOR * mh);
    }
    *out_w = width;
    *out_h = height;
    return 0;
}
