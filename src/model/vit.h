/* The Qwen3-VL vision tower (spec 04): reference-image condition copies -> embeddings for the
 * <|image_pad|> tokens, plus one DeepStack feature matrix per deepstack_visual_indexes entry.
 * Written once against the backend interface; runs once per generation (the caller caches the
 * output for every step and both CFG branches). */
#ifndef HD_MODEL_VIT_H
#define HD_MODEL_VIT_H

#include "backend/backend.h"
#include "io/config.h"
#include "io/safetensors.h"

typedef struct hd_vit hd_vit;

typedef struct hd_vit_output {
    int64_t n_tokens;                        /* Σ N_k merged tokens over all images */
    hd_tensor embeds;                        /* [n_tokens, out_hidden] f32, image-pad order */
    int n_deepstack;
    hd_tensor deepstack[HD_MAX_DEEPSTACK];   /* each [n_tokens, out_hidden] f32 */
} hd_vit_output;

/* Binds the model.visual.* tensors of st (shapes already validated by the inventory check). */
int hd_vit_create(hd_vit **out, hd_backend *be, const hd_config *cfg, const hd_safetensors *st,
                  hd_error *e);
void hd_vit_free(hd_vit *vit);

/* pixel_values: [Σ gh·gw, in_ch·temporal·patch²] host f32 rows in processor order (spec 04 §2);
 * grid_thw[k] = (t, gh, gw) per image. Fills out (device tensors owned by out). */
int hd_vit_forward(hd_vit *vit, const float *pixel_values, const int64_t (*grid_thw)[3],
                   int n_images, hd_vit_output *out, hd_error *e);
void hd_vit_output_free(hd_backend *be, hd_vit_output *out);

#endif
