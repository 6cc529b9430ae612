#include "image/processor.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "image/resample.h"

hd_processor_params hd_processor_defaults(void) {
    hd_processor_params p = {16, 2, 2, 65536, 16777216};
    return p;
}

int hd_smart_resize(int height, int width, int factor, int64_t min_pixels, int64_t max_pixels,
                    int *out_h, int *out_w, hd_error *e) {
    if (height < 1 || width < 1 || factor < 1)
        return hd_fail(e, HD_EINVAL, "smart_resize: empty size %dx%d", width, height);
    double hi = height > width ? height : width, lo = height > width ? width : height;
    if (hi / lo > 200)
        return hd_fail(e, HD_EINVAL,
                       "smart_resize: aspect ratio of %dx%d is %.1f, must be at most 200", width,
                       height, hi / lo);
    double f = factor;
    int64_t h_bar = (int64_t)rint(height / f) * factor; /* Python round: half to even */
    int64_t w_bar = (int64_t)rint(width / f) * factor;
    if (h_bar * w_bar > max_pixels) {
        double beta = sqrt((double)height * width / (double)max_pixels);
        h_bar = (int64_t)floor(height / beta / f) * factor;
        w_bar = (int64_t)floor(width / beta / f) * factor;
        if (h_bar < factor) h_bar = factor;
        if (w_bar < factor) w_bar = factor;
    } else if (h_bar * w_bar < min_pixels) {
        double beta = sqrt((double)min_pixels / ((double)height * width));
        h_bar = (int64_t)ceil(height * beta / f) * factor;
        w_bar = (int64_t)ceil(width * beta / f) * factor;
    }
    if (h_bar < 1 || w_bar < 1 || h_bar > INT32_MAX || w_bar > INT32_MAX)
        return hd_fail(e, HD_EINVAL, "smart_resize: %dx%d gives an unusable size", width, height);
    *out_h = (int)h_bar;
    *out_w = (int)w_bar;
    return 0;
}

void hd_processor_out_free(hd_processor_out *o) {
    if (!o) return;
    free(o->grid_thw);
    free(o->n_tokens);
    free(o->pixel_values);
    memset(o, 0, sizeof *o);
}

/* Writes the gh*gw rows of one image (spec 04 §2.5): tokens ordered by (block row, block column,
 * inner row, inner column); each row (channel, frame, py, px). */
static void flatten(const hd_image *im, const hd_processor_params *p, float *rows) {
    const int ps = p->patch_size, m = p->merge_size, tp = p->temporal_patch_size;
    const int gh = im->h / ps, gw = im->w / ps;
    const size_t dim = (size_t)3 * tp * ps * ps, frame = (size_t)ps * ps;
    /* float32 (x - 127.5) / 127.5: the subtraction is exact, the division rounds once */
    float lut[256];
    for (int v = 0; v < 256; v++) lut[v] = ((float)v - 127.5f) / 127.5f;
    float *row = rows;
    for (int br = 0; br < gh / m; br++)
        for (int bc = 0; bc < gw / m; bc++)
            for (int ir = 0; ir < m; ir++)
                for (int ic = 0; ic < m; ic++, row += dim) {
                    int y0 = (br * m + ir) * ps, x0 = (bc * m + ic) * ps;
                    for (int c = 0; c < 3; c++) {
                        float *dst = row + (size_t)c * tp * frame;
                        for (int py = 0; py < ps; py++)
                            for (int px = 0; px < ps; px++)
                                dst[py * ps + px] = lut[hd_image_at(im, x0 + px, y0 + py)[c]];
                        for (int f = 1; f < tp; f++)
                            memcpy(dst + f * frame, dst, frame * sizeof(float));
                    }
                }
}

int hd_processor_run(const hd_image *imgs, int n, const hd_processor_params *pp,
                     hd_processor_out *out, hd_error *e) {
    memset(out, 0, sizeof *out);
    hd_processor_params p = pp ? *pp : hd_processor_defaults();
    if (p.patch_size < 1 || p.temporal_patch_size < 1 || p.merge_size < 1 || p.min_pixels < 0 ||
        p.max_pixels < 1 || p.patch_size > 1024 || p.merge_size > 64 ||
        p.temporal_patch_size > 64)
        return hd_fail(e, HD_EINVAL, "image processor: bad parameters (patch %d, temporal %d, "
                       "merge %d)", p.patch_size, p.temporal_patch_size, p.merge_size);
    if (n < 1) return hd_fail(e, HD_EINVAL, "image processor: no images");
    const int factor = p.patch_size * p.merge_size;
    out->n_images = n;
    out->row_dim = 3 * p.temporal_patch_size * p.patch_size * p.patch_size;
    out->grid_thw = calloc((size_t)n, sizeof *out->grid_thw);
    out->n_tokens = calloc((size_t)n, sizeof *out->n_tokens);
    hd_image *resized = calloc((size_t)n, sizeof *resized);
    int rc = 0;
    if (!out->grid_thw || !out->n_tokens || !resized) {
        rc = hd_fail(e, HD_ENOMEM, "image processor: out of memory");
        goto done;
    }
    for (int i = 0; i < n && rc == 0; i++) {
        int h, w;
        rc = hd_smart_resize(imgs[i].h, imgs[i].w, factor, p.min_pixels, p.max_pixels, &h, &w, e);
        if (rc < 0) {
            hd_error_prefix(e, "image processor: image %d", i);
            break;
        }
        /* torchvision returns the input unchanged when the size is equal */
        rc = hd_image_resize(&imgs[i], w, h, HD_FILTER_BICUBIC, &resized[i], e);
        if (rc < 0) {
            hd_error_prefix(e, "image processor: image %d", i);
            break;
        }
        int64_t gh = h / p.patch_size, gw = w / p.patch_size;
        out->grid_thw[i][0] = 1;
        out->grid_thw[i][1] = gh;
        out->grid_thw[i][2] = gw;
        out->n_tokens[i] = gh * gw / ((int64_t)p.merge_size * p.merge_size);
        out->n_tokens_total += out->n_tokens[i];
        out->n_rows += gh * gw;
    }
    if (rc < 0) goto done;
    if ((uint64_t)out->n_rows > SIZE_MAX / sizeof(float) / (size_t)out->row_dim) {
        rc = hd_fail(e, HD_ENOMEM, "image processor: %lld rows too many", (long long)out->n_rows);
        goto done;
    }
    out->pixel_values = malloc((size_t)out->n_rows * (size_t)out->row_dim * sizeof(float));
    if (!out->pixel_values) {
        rc = hd_fail(e, HD_ENOMEM, "image processor: out of memory for %lld rows",
                     (long long)out->n_rows);
        goto done;
    }
    float *rows = out->pixel_values;
    for (int i = 0; i < n; i++) {
        flatten(&resized[i], &p, rows);
        rows += (size_t)out->grid_thw[i][1] * (size_t)out->grid_thw[i][2] * (size_t)out->row_dim;
    }
done:
    if (resized)
        for (int i = 0; i < n; i++) hd_image_free(&resized[i]);
    free(resized);
    if (rc < 0) hd_processor_out_free(out);
    return rc;
}
