/* Image-generation requests as `hidream serve` receives them, turned into hd_generate_params:
 * OpenAI Images (JSON for /v1/images/generations, multipart for /v1/images/edits), AUTOMATIC1111
 * (/sdapi/v1/txt2img, img2img) and the native job API (/api/jobs). No HTTP here, so the parsing
 * can be tested and fuzzed on its own.
 *
 * Every API also takes the hidream fields: seed, steps, cfg (or guidance_scale), mode, shift,
 * scheduler, negative_prompt, layout (JSON text only: never a path), keep_aspect. Unknown fields
 * are ignored (clients send many); a known field of the wrong type or out of range is refused
 * with one line "field: why" (but A1111's sampler_name, and scheduler on its API, are taken when
 * they name one of ours and otherwise ignored: A1111's own names mean nothing here). The size
 * asked for is kept exactly (no_snap): the model then refuses, with its own line, a size it
 * cannot draw. */
#ifndef HD_SERVER_REQUEST_H
#define HD_SERVER_REQUEST_H

#include <stddef.h>
#include <stdint.h>

#include "hidream.h"
#include "server/multipart.h"

#define HD_SRV_MAX_REFS 10

typedef enum hd_api_kind { HD_API_OPENAI, HD_API_A1111, HD_API_NATIVE } hd_api_kind;

typedef struct hd_srv_limits {
    int max_side;        /* width and height at most this (default 4096) */
    int max_steps;       /* default 200 */
    int max_n;           /* images per request (default 4) */
    int64_t max_ref_pixels; /* per reference picture (default 4096²) */
} hd_srv_limits;

void hd_srv_limits_default(hd_srv_limits *l);

typedef struct hd_srv_request {
    hd_generate_params p;  /* prompt, uncond_prompt, layout and refs point into this struct */
    char *prompt, *uncond, *layout;
    hd_image refs[HD_SRV_MAX_REFS];
    int n_refs;
    int n;                 /* images to make (seeds seed, seed+1, ...) */
    int seed_given;        /* 0: the server picks a seed */
    hd_image_format format;
    int quality;           /* JPEG/WebP quality 1..100, 0 = default */
    int want_url;          /* OpenAI response_format "url" */
    int stream;            /* OpenAI stream: true */
    int partial_images;    /* OpenAI partial images while streaming, 0..3 */
} hd_srv_request;

/* defaults[mode]: the model's defaults for HD_MODE_FULL and HD_MODE_DEV
 * (hd_model_generate_defaults). Returns 0, HD_EFORMAT/HD_EINVAL (a 400) or HD_ENOMEM (a limit,
 * a 413 for pictures). r is always safe to free. */
int hd_srv_request_from_json(hd_srv_request *r, hd_api_kind api, const char *body, size_t len,
                             const hd_generate_params defaults[2], const hd_srv_limits *lim,
                             hd_error *e);

/* /v1/images/edits: multipart fields prompt, image / image[] (1..10 pictures), n, size,
 * response_format, output_format and the hidream fields as text. */
int hd_srv_request_from_form(hd_srv_request *r, const hd_multipart *form,
                             const hd_generate_params defaults[2], const hd_srv_limits *lim,
                             hd_error *e);

void hd_srv_request_free(hd_srv_request *r);

/* "png", "jpeg"/"jpg", "webp" → format; HD_FMT_UNKNOWN otherwise. */
hd_image_format hd_srv_format_by_name(const char *s);
const char *hd_srv_format_name(hd_image_format f);
const char *hd_srv_format_mime(hd_image_format f);

#endif
