/* The Qwen2-VL image processor as the pipeline uses it on the VLM condition images (spec 04 §2,
 * transformers 4.57 Qwen2VLImageProcessorFast): smart_resize to multiples of patch*merge within
 * [min_pixels, max_pixels], a resize only when the size changes (Pillow-exact BICUBIC standing in
 * for torchvision's uint8 antialiased bicubic, which agrees within +-1), normalisation
 * (x - 127.5) / 127.5 in float32, two identical temporal frames, and the ViT patch order. */
#ifndef HD_IMAGE_PROCESSOR_H
#define HD_IMAGE_PROCESSOR_H

#include <stdint.h>

#include "image/image.h"

typedef struct hd_processor_params {
    int patch_size;          /* ViT patch side: 16 */
    int temporal_patch_size; /* frames per patch: 2 */
    int merge_size;          /* spatial merge: 2 (one LLM token per merge x merge patches) */
    int64_t min_pixels;      /* 65536 */
    int64_t max_pixels;      /* 16777216 */
} hd_processor_params;

/* The Qwen3-VL values above. */
hd_processor_params hd_processor_defaults(void);

/* transformers' smart_resize(height, width, factor, min_pixels, max_pixels). HD_EINVAL for an
 * aspect ratio above 200 or an empty size. */
int hd_smart_resize(int height, int width, int factor, int64_t min_pixels, int64_t max_pixels,
                    int *out_h, int *out_w, hd_error *e);

typedef struct hd_processor_out {
    int n_images;
    int64_t (*grid_thw)[3]; /* per image (1, gh, gw): gh = resized height / patch */
    int64_t *n_tokens;      /* per image: LLM tokens gh*gw / merge^2 */
    int64_t n_tokens_total;
    int64_t n_rows;         /* sum of gh*gw */
    int row_dim;            /* 3 * temporal * patch^2 (1536) */
    float *pixel_values;    /* [n_rows][row_dim], float32 (the pipeline rounds to bf16 later) */
} hd_processor_out;

/* Processes n images in order into one pixel_values matrix. p NULL = defaults. */
int hd_processor_run(const hd_image *imgs, int n, const hd_processor_params *p,
                     hd_processor_out *out, hd_error *e);
void hd_processor_out_free(hd_processor_out *o);

#endif
