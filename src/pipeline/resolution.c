#include "pipeline/resolution.h"

#include <math.h>

#include "core/error.h"

/* Upstream order; it matters for ties. */
static const int presets[HD_N_PRESETS][2] = {
    {2048, 2048}, {2304, 1728}, {1728, 2304}, {2560, 1440}, {1440, 2560}, {2496, 1664},
    {1664, 2496}, {3104, 1312}, {1312, 3104}, {2304, 1792}, {1792, 2304},
};

void hd_snap_resolution(int width, int height, int *out_w, int *out_h) {
    double want = (double)width / (double)height, best = INFINITY;
    int bi = 0;
    for (int i = 0; i < HD_N_PRESETS; i++) {
        double d = fabs((double)presets[i][0] / presets[i][1] - want);
        if (d < best) {
            best = d;
            bi = i;
        }
    }
    *out_w = presets[bi][0];
    *out_h = presets[bi][1];
}

int hd_check_resolution(int width, int height, hd_error *e) {
    if (width <= 0 || height <= 0 || width % 32 || height % 32)
        return hd_fail(e, HD_EINVAL, "size %dx%d: width and height must be positive multiples of 32",
                       width, height);
    if (width > HD_MAX_SIDE || height > HD_MAX_SIDE)
        return hd_fail(e, HD_EINVAL, "size %dx%d: each side must be at most %d pixels", width,
                       height, HD_MAX_SIDE);
    return 0;
}
