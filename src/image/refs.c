#include "image/refs.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "image/patchify.h"
#include "image/resample.h"

int hd_refs_max_size(int k, int m) {
    if (k <= 1) return m;
    if (k == 2) return m * 48 / 64;
    if (k <= 4) return m / 2;
    if (k <= 8) return m * 24 / 64;
    return m / 4;
}

int hd_refs_condition_size(int k) {
    if (k <= 4) return HD_REF_CONDITION_SIZE;
    if (k <= 8) return HD_REF_CONDITION_SIZE * 48 / 64;
    return HD_REF_CONDITION_SIZE / 2;
}

static int64_t floor_div(int64_t a, int64_t b) {
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

int hd_resize_pilimage_plan(int w0, int h0, int size, int multiple, hd_pilimage_plan *plan,
                            hd_error *e) {
    memset(plan, 0, sizeof *plan);
    if (size < 1 || multiple < 1 || w0 < 1 || h0 < 1)
        return hd_fail(e, HD_EINVAL, "resize_pilimage: size %d, multiple %d, picture %dx%d: "
                       "all must be positive", size, multiple, w0, h0);
    int64_t w = w0, h = h0;
    /* cheap 2x reductions first (BOX) while the picture is at least twice the target */
    while ((w < h ? w : h) >= 2 * (int64_t)size) {
        w /= 2;
        h /= 2;
        plan->n_halvings++;
    }
    plan->half_w = (int)w;
    plan->half_h = (int)h;
    const int64_t m = multiple, s_max = (int64_t)size * size;
    const double scale = sqrt((double)s_max / (double)(w * h));
    const double ws = (double)w * scale, hs = (double)h * scale;
    /* Python round() is half to even: rint in the default rounding mode */
    const int64_t rw = (int64_t)rint(ws) / m * m, fw = (int64_t)floor(ws) / m * m;
    const int64_t rh = (int64_t)rint(hs) / m * m, fh = (int64_t)floor(hs) / m * m;
    int64_t cand[4][2] = {{rw, rh}, {rw, fh}, {fw, rh}, {fw, fh}};
    for (int i = 1; i < 4; i++) /* stable sort by area, descending */
        for (int j = i; j > 0 && cand[j][0] * cand[j][1] > cand[j - 1][0] * cand[j - 1][1]; j--) {
            int64_t t0 = cand[j][0], t1 = cand[j][1];
            cand[j][0] = cand[j - 1][0], cand[j][1] = cand[j - 1][1];
            cand[j - 1][0] = t0, cand[j - 1][1] = t1;
        }
    int pick = 3;
    for (int i = 0; i < 4; i++)
        if (cand[i][0] * cand[i][1] <= s_max) {
            pick = i;
            break;
        }
    const int64_t nw = cand[pick][0], nh = cand[pick][1];
    if (nw < 1 || nh < 1)
        return hd_fail(e, HD_EINVAL,
                       "a %lldx%lld picture does not fit a %d-pixel budget in multiples of %d "
                       "(a side would be 0): the budget (the output size) is too small for its "
                       "aspect ratio",
                       (long long)w, (long long)h, size, multiple);
    const double s1 = (double)w / (double)nw, s2 = (double)h / (double)nh;
    int64_t rs_w, rs_h, left = 0, top = 0;
    if (s1 < s2) {
        rs_w = nw;
        rs_h = (int64_t)rint((double)h / s1);
        top = floor_div(rs_h - nh, 2);
    } else {
        rs_w = (int64_t)rint((double)w / s2);
        rs_h = nh;
        left = floor_div(rs_w - nw, 2);
    }
    if (rs_w < 1 || rs_h < 1 || rs_w > INT32_MAX || rs_h > INT32_MAX ||
        rs_w * rs_h > HD_IMAGE_MAX_PIXELS)
        return hd_fail(e, HD_EINVAL, "resize_pilimage: intermediate size %lldx%lld unusable",
                       (long long)rs_w, (long long)rs_h);
    plan->resize_w = (int)rs_w;
    plan->resize_h = (int)rs_h;
    plan->left = (int)left;
    plan->top = (int)top;
    plan->out_w = (int)nw;
    plan->out_h = (int)nh;
    return 0;
}

int hd_resize_pilimage(const hd_image *src, int size, int multiple, hd_image *out,
                       hd_error *e) {
    memset(out, 0, sizeof *out);
    hd_pilimage_plan plan;
    HD_TRY(hd_resize_pilimage_plan(src->w, src->h, size, multiple, &plan, e));
    hd_image cur = {0}, next = {0};
    const hd_image *in = src;
    for (int i = 0; i < plan.n_halvings; i++) {
        int rc = hd_image_resize(in, in->w / 2, in->h / 2, HD_FILTER_BOX, &next, e);
        hd_image_free(&cur);
        if (rc < 0) return rc;
        cur = next;
        in = &cur;
    }
    int rc = hd_image_resize(in, plan.resize_w, plan.resize_h, HD_FILTER_BICUBIC, &next, e);
    hd_image_free(&cur);
    if (rc < 0) return rc;
    rc = hd_image_crop(out, &next, plan.left, plan.top, plan.left + plan.out_w,
                       plan.top + plan.out_h, e);
    hd_image_free(&next);
    return rc;
}

void hd_calculate_dimensions(int cond, double ratio, int *w, int *h) {
    double wf = sqrt((double)((int64_t)cond * cond) * ratio);
    double hf = wf / ratio;
    /* Python int() truncates toward zero */
    *w = (int)trunc(wf / 32) * 32;
    *h = (int)trunc(hf / 32) * 32;
}

int hd_refs_patches(const hd_image *im, float *rows, hd_error *e) {
    if (im->w < HD_PATCH || im->h < HD_PATCH || im->w % HD_PATCH || im->h % HD_PATCH)
        return hd_fail(e, HD_EINVAL, "reference patches: size %dx%d is not a multiple of %d",
                       im->w, im->h, HD_PATCH);
    /* torchvision multiplies by the float32 constant 1/255, then (u - 0.5) / 0.5 */
    const float inv255 = 1.0f / 255.0f;
    float lut[256];
    for (int v = 0; v < 256; v++) {
        float u = (float)v * inv255;
        lut[v] = (u - 0.5f) / 0.5f;
    }
    const int wp = im->w / HD_PATCH;
    for (int y = 0; y < im->h; y++)
        for (int x = 0; x < im->w; x++) {
            const uint8_t *p = hd_image_at(im, x, y);
            size_t n = (size_t)(y / HD_PATCH) * wp + (size_t)(x / HD_PATCH);
            float *dst = rows + n * HD_PATCH_DIM + (y % HD_PATCH) * HD_PATCH + (x % HD_PATCH);
            for (int c = 0; c < 3; c++) dst[c * HD_PATCH * HD_PATCH] = lut[p[c]];
        }
    return 0;
}

void hd_refs_free(hd_refs *r) {
    if (!r) return;
    if (r->entries)
        for (int i = 0; i < r->n; i++) {
            hd_image_free(&r->entries[i].image);
            hd_image_free(&r->entries[i].cond);
        }
    free(r->entries);
    free(r->patches);
    hd_processor_out_free(&r->vlm);
    memset(r, 0, sizeof *r);
}

/* Bordered references + layout image (upstream create_layout_reference_images): fills
 * out->entries[i].image for every i < out->n with the pictures that then go through the normal
 * per-reference path. */
static int layout_references(const hd_image *refs, int k, const hd_layout *layout, hd_refs *out,
                             hd_error *e) {
    int nb = layout->n;
    hd_layout_rect *rects = calloc(nb ? (size_t)nb : 1, sizeof *rects);
    uint8_t(*colors)[3] = calloc(nb ? (size_t)nb : 1, sizeof *colors);
    int *drawn = calloc(nb ? (size_t)nb : 1, sizeof *drawn);
    int rc = 0;
    if (!rects || !colors || !drawn) {
        rc = hd_fail(e, HD_ENOMEM, "layout: out of memory");
        goto done;
    }
    rc = hd_layout_to_pixels(layout, out->target_w, out->target_h, rects, e);
    if (rc < 0) goto done;
    rc = hd_layout_draw(rects, nb, out->target_w, out->target_h, &out->entries[k].image, colors,
                        drawn, e);
    if (rc < 0) goto done;
    for (int i = 0; i < k; i++) {
        hd_image *img = &out->entries[i].image;
        rc = hd_resize_pilimage(&refs[i], out->max_size, HD_PATCH, img, e);
        if (rc < 0) {
            hd_error_prefix(e, "reference %d", i);
            goto done;
        }
        /* box i belongs to reference i: its colour if it was drawn, else the palette's */
        const uint8_t *c = (i < nb && drawn[i]) ? colors[i] : hd_layout_color(i);
        hd_draw_border(img, c, hd_layout_border_width(img->w, img->h));
    }
done:
    free(rects);
    free(colors);
    free(drawn);
    return rc;
}

int hd_refs_prepare(const hd_image *refs, int k, int target_w, int target_h, int keep_aspect,
                    const hd_layout *layout, const hd_processor_params *proc, hd_refs *out,
                    hd_error *e) {
    memset(out, 0, sizeof *out);
    if (k < 1 || !refs) return hd_fail(e, HD_EINVAL, "references: none given");
    for (int i = 0; i < k; i++)
        if (!refs[i].px || refs[i].w < 1 || refs[i].h < 1)
            return hd_fail(e, HD_EINVAL, "reference %d: empty image", i);
    out->keep_aspect = keep_aspect && k == 1;
    if (!out->keep_aspect && (target_w < HD_PATCH || target_h < HD_PATCH ||
                              target_w % HD_PATCH || target_h % HD_PATCH))
        return hd_fail(e, HD_EINVAL, "references: target size %dx%d is not a positive multiple "
                       "of %d", target_w, target_h, HD_PATCH);
    out->has_layout = layout != NULL && !out->keep_aspect;
    out->n = k + out->has_layout;
    out->target_w = target_w;
    out->target_h = target_h;
    out->max_size = hd_refs_max_size(out->n, target_w > target_h ? target_w : target_h);
    if (!out->keep_aspect && out->max_size < HD_PATCH)
        return hd_fail(e, HD_EINVAL,
                       "references: %d pictures on a %dx%d output leave each a %d-pixel budget, "
                       "less than one %d-pixel patch; make the output larger or use fewer "
                       "references", out->n, target_w, target_h, out->max_size, HD_PATCH);
    out->cond_size = hd_refs_condition_size(out->n);
    out->entries = calloc((size_t)out->n, sizeof *out->entries);
    if (!out->entries) return hd_fail(e, HD_ENOMEM, "references: out of memory");
    int rc = 0;

    /* 1. the final reference pictures */
    if (out->keep_aspect) {
        /* resized once; the target takes its size, and it is not resized again */
        rc = hd_resize_pilimage(&refs[0], HD_REF_KEEP_ASPECT_SIZE, HD_PATCH,
                                &out->entries[0].image, e);
        if (rc < 0) goto fail_ref0;
        out->target_w = out->entries[0].image.w;
        out->target_h = out->entries[0].image.h;
        out->max_size = hd_refs_max_size(1, out->target_w > out->target_h ? out->target_w
                                                                           : out->target_h);
    } else {
        const hd_image *src = refs;
        if (out->has_layout) {
            rc = layout_references(refs, k, layout, out, e);
            if (rc < 0) goto fail;
        }
        for (int i = 0; i < out->n; i++) {
            hd_image tmp = {0};
            const hd_image *in = out->has_layout ? &out->entries[i].image : &src[i];
            rc = hd_resize_pilimage(in, out->max_size, HD_PATCH, &tmp, e);
            if (rc < 0) {
                hd_error_prefix(e, "reference %d", i);
                goto fail;
            }
            hd_image_free(&out->entries[i].image);
            out->entries[i].image = tmp;
        }
    }

    /* 2. patch rows */
    for (int i = 0; i < out->n; i++) {
        const hd_image *im = &out->entries[i].image;
        out->entries[i].patch_row = out->n_patch_rows;
        out->entries[i].n_patches = (int64_t)(im->w / HD_PATCH) * (im->h / HD_PATCH);
        out->n_patch_rows += out->entries[i].n_patches;
    }
    out->patches = malloc((size_t)out->n_patch_rows * HD_PATCH_DIM * sizeof(float));
    if (!out->patches) {
        rc = hd_fail(e, HD_ENOMEM, "references: out of memory for %lld patch rows",
                     (long long)out->n_patch_rows);
        goto fail;
    }
    for (int i = 0; i < out->n; i++) {
        rc = hd_refs_patches(&out->entries[i].image,
                             out->patches + (size_t)out->entries[i].patch_row * HD_PATCH_DIM, e);
        if (rc < 0) goto fail;
    }

    /* 3. VLM condition images (from the resized reference, LANCZOS) and the processor */
    hd_image *conds = calloc((size_t)out->n, sizeof *conds);
    if (!conds) {
        rc = hd_fail(e, HD_ENOMEM, "references: out of memory");
        goto fail;
    }
    for (int i = 0; i < out->n && rc == 0; i++) {
        const hd_image *im = &out->entries[i].image;
        int cw, ch;
        hd_calculate_dimensions(out->cond_size, (double)im->w / (double)im->h, &cw, &ch);
        if (cw < 1 || ch < 1) {
            rc = hd_fail(e, HD_EINVAL, "reference %d: a %dx%d picture is too elongated for its "
                         "%d-pixel condition image (a side would be 0)", i, im->w, im->h,
                         out->cond_size);
            break;
        }
        rc = hd_image_resize(im, cw, ch, HD_FILTER_LANCZOS, &out->entries[i].cond, e);
        if (rc < 0) hd_error_prefix(e, "reference %d condition image", i);
        conds[i] = out->entries[i].cond; /* shallow view for the processor call */
    }
    if (rc == 0) rc = hd_processor_run(conds, out->n, proc, &out->vlm, e);
    free(conds);
    if (rc < 0) goto fail;
    return 0;

fail_ref0:
    hd_error_prefix(e, "reference 0");
fail:
    hd_refs_free(out);
    return rc;
}
