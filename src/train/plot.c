/* Loss curve and picture grid (plot.h). */
#include "train/plot.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "image/codec.h"
#include "image/image.h"

enum { PLOT_W = 800, PLOT_H = 400, MARGIN = 20, GAP = 2 };

static void put(hd_image *im, int x, int y, const uint8_t c[3]) {
    if (x < 0 || y < 0 || x >= im->w || y >= im->h) return;
    memcpy(hd_image_at(im, x, y), c, 3);
}

/* Bresenham line */
static void line(hd_image *im, int x0, int y0, int x1, int y1, const uint8_t c[3]) {
    int dx = abs(x1 - x0), dy = -abs(y1 - y0), sx = x0 < x1 ? 1 : -1, sy = y0 < y1 ? 1 : -1;
    int err = dx + dy;
    for (;;) {
        put(im, x0, y0, c);
        if (x0 == x1 && y0 == y1) break;
        int e2 = 2 * err;
        if (e2 >= dy) err += dy, x0 += sx;
        if (e2 <= dx) err += dx, y0 += sy;
    }
}

int hd_plot_loss(const char *path, const int64_t *step, const double *loss, int64_t n,
                 hd_error *e) {
    hd_image im = {0};
    HD_TRY(hd_image_alloc(&im, PLOT_W, PLOT_H, e));
    memset(im.px, 255, (size_t)PLOT_W * PLOT_H * 3);
    double lo = INFINITY, hi = -INFINITY;
    for (int64_t i = 0; i < n; i++)
        if (loss[i] > 0 && isfinite(loss[i])) lo = fmin(lo, loss[i]), hi = fmax(hi, loss[i]);
    const uint8_t axis[3] = {0, 0, 0}, tick[3] = {225, 225, 225}, raw[3] = {190, 190, 190},
                  avg[3] = {30, 80, 200};
    int x0 = MARGIN, x1 = PLOT_W - MARGIN, y0 = PLOT_H - MARGIN, y1 = MARGIN;
    if (n > 0 && lo < hi) {
        double l0 = floor(log10(lo)), l1 = ceil(log10(hi));
        int64_t s0 = step[0], s1 = step[n - 1] > s0 ? step[n - 1] : s0 + 1;
#define PX(s) (x0 + (int)((double)((s) - s0) / (double)(s1 - s0) * (x1 - x0)))
#define PY(v) (y0 - (int)((log10(v) - l0) / (l1 - l0) * (y0 - y1)))
        for (double d = l0; d <= l1; d += 1) line(&im, x0, PY(pow(10, d)), x1, PY(pow(10, d)), tick);
        double ema = loss[0];
        int px = PX(step[0]), py = PY(fmax(ema, lo));
        for (int64_t i = 0; i < n; i++) {
            if (!(loss[i] > 0) || !isfinite(loss[i])) continue;
            put(&im, PX(step[i]), PY(loss[i]), raw);
            ema = i ? 0.98 * ema + 0.02 * loss[i] : loss[i];
            int qx = PX(step[i]), qy = PY(fmax(ema, lo));
            line(&im, px, py, qx, qy, avg);
            px = qx, py = qy;
        }
#undef PX
#undef PY
    }
    line(&im, x0, y0, x1, y0, axis);
    line(&im, x0, y0, x0, y1, axis);
    int rc = hd_image_save(path, &im, NULL, e);
    hd_image_free(&im);
    return rc;
}

int hd_plot_grid(const char *path, const hd_image *im, int n, int cols, hd_error *e) {
    if (n <= 0 || cols <= 0) return hd_fail(e, HD_EINVAL, "%s: no pictures for the grid", path);
    int cw = 1, ch = 1;
    for (int i = 0; i < n; i++) {
        if (im[i].w > cw) cw = im[i].w;
        if (im[i].h > ch) ch = im[i].h;
    }
    if (cols > n) cols = n;
    int rows = (n + cols - 1) / cols;
    hd_image g = {0};
    HD_TRY(hd_image_alloc(&g, cols * (cw + GAP) + GAP, rows * (ch + GAP) + GAP, e));
    memset(g.px, 255, (size_t)g.w * (size_t)g.h * 3);
    for (int i = 0; i < n; i++) {
        int gx = GAP + (i % cols) * (cw + GAP), gy = GAP + (i / cols) * (ch + GAP);
        for (int y = 0; y < im[i].h; y++)
            memcpy(hd_image_at(&g, gx, gy + y), hd_image_at(&im[i], 0, y), (size_t)im[i].w * 3);
    }
    int rc = hd_image_save(path, &g, NULL, e);
    hd_image_free(&g);
    return rc;
}
