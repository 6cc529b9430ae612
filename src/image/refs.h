/* Reference-image preparation (spec 06 §2-§6): the K-dependent sizes, upstream's
 * resize_pilimage and calculate_dimensions, the layout image and reference borders, the float32
 * reference patches, and the VLM condition images run through the Qwen2-VL processor.
 *
 * hd_refs_prepare is the single entry point the pipeline calls: raw RGB references in, everything
 * the sequence builder, the ViT and the denoiser need out, all in reference order with the
 * layout image (if any) last. */
#ifndef HD_IMAGE_REFS_H
#define HD_IMAGE_REFS_H

#include <stdint.h>

#include "image/image.h"
#include "image/layout.h"
#include "image/processor.h"

#define HD_REF_CONDITION_SIZE 384    /* VLM condition side for K <= 4 */
#define HD_REF_KEEP_ASPECT_SIZE 2048 /* resize_pilimage side in keep-original-aspect mode */

/* Reference max_size for K images (layout image included) and a target of max side m. */
int hd_refs_max_size(int k, int m);
/* VLM condition size for K images: 384, 288 (K 5-8) or 192 (K >= 9). */
int hd_refs_condition_size(int k);

/* Upstream resize_pilimage(img, size, multiple) with BICUBIC: BOX halving while
 * min(w, h) >= 2*size, then the largest of four candidate sizes (multiples of `multiple`, area
 * <= size^2), a BICUBIC resize that keeps the aspect ratio and a centred crop. HD_EINVAL when a
 * side would be 0 (upstream fails with a division by zero). */
int hd_resize_pilimage(const hd_image *src, int size, int multiple, hd_image *out, hd_error *e);

/* The geometry resize_pilimage will use for a w x h input, without touching pixels. */
typedef struct hd_pilimage_plan {
    int n_halvings;         /* BOX resizes to (w/2, h/2) applied first */
    int half_w, half_h;     /* size after them */
    int resize_w, resize_h; /* BICUBIC target */
    int left, top;          /* crop origin in the resized picture */
    int out_w, out_h;       /* final size (multiples of `multiple`) */
} hd_pilimage_plan;
int hd_resize_pilimage_plan(int w, int h, int size, int multiple, hd_pilimage_plan *plan,
                            hd_error *e);

/* Upstream calculate_dimensions(cond, ratio): sides truncated to multiples of 32 (may be 0). */
void hd_calculate_dimensions(int cond, double ratio, int *w, int *h);

/* Reference patch rows of an image whose sides are multiples of 32: torchvision's
 * ToDtype(float32, scale) + Normalize(0.5, 0.5), exactly: u = fl32(x * fl32(1/255)),
 * v = fl32(u - 0.5) / 0.5, in the patch layout of patchify.h. rows: [(h/32)(w/32)][3072]. */
int hd_refs_patches(const hd_image *im, float *rows, hd_error *e);

typedef struct hd_ref_entry {
    hd_image image;       /* resized reference (sides multiples of 32); the patches come from it */
    hd_image cond;        /* its VLM condition copy (LANCZOS), as given to the processor */
    int64_t n_patches;    /* L_r = (w/32)(h/32) */
    int64_t patch_row;    /* first row of this reference in hd_refs.patches */
} hd_ref_entry;

typedef struct hd_refs {
    int target_w, target_h; /* final target size (from the reference in keep-aspect mode) */
    int keep_aspect;        /* 1 if keep-original-aspect was applied */
    int n;                  /* K: images including the layout image */
    int has_layout;         /* entry n-1 is the drawn layout image */
    int max_size;           /* resize_pilimage side used for the references */
    int cond_size;          /* VLM condition size */
    hd_ref_entry *entries;
    int64_t n_patch_rows;   /* sum of L_r */
    float *patches;         /* [n_patch_rows][3072] float32 (not rounded to bf16) */
    hd_processor_out vlm;   /* ViT inputs: pixel_values, grid_thw (1, gh, gw), tokens N_k */
} hd_refs;

/* refs: k >= 1 decoded references in input order. target_w/h: the (already snapped) target,
 * positive multiples of 32. keep_aspect is applied only when k == 1 (the caller warns
 * otherwise); layout (NULL = none) is ignored in keep-aspect mode. proc NULL = Qwen3-VL
 * defaults. Invalid layout boxes give HD_EINVAL before any resizing. */
int hd_refs_prepare(const hd_image *refs, int k, int target_w, int target_h, int keep_aspect,
                    const hd_layout *layout, const hd_processor_params *proc, hd_refs *out,
                    hd_error *e);
void hd_refs_free(hd_refs *r);

#endif
