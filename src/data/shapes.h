/* The shapes world of spec 09: scenes that satisfy a prompt (§2, §4) and their pictures (§1, §2).
 *
 * Everything is a pure function of a 64-bit seed: hd_shapes_draw(seed, W, H) samples a prompt,
 * places its objects by rejection sampling and renders them at W×H. The same seed gives the same
 * prompt at every size (the placement differs), so a trainer can draw one sample at any bucket. */
#ifndef HD_DATA_SHAPES_H
#define HD_DATA_SHAPES_H

#include <stdint.h>

#include "data/prng.h"
#include "data/shapes_prompt.h"
#include "hidream.h"

/* Smallest canvas side the placement supports (four large objects need 3 margins + 2 sides). */
enum { HD_SHAPES_MIN_SIDE = 32 };

/* One placed object: d = side of its bounding box, (cx, cy) its centre, in pixels. */
typedef struct hd_shapes_placed {
    hd_colour colour;
    hd_shape shape;
    double d, cx, cy;
} hd_shapes_placed;

typedef struct hd_shapes_scene {
    int w, h, n;
    hd_shapes_placed obj[HD_SHAPES_MAX_OBJECTS];
} hd_shapes_scene;

/* Size range of a class at canvas W×H (s = min(W, H)): small [0.14 s, 0.20 s], large
 * [0.28 s, 0.36 s]. */
void hd_shapes_size_range(hd_size_class c, int w, int h, double *lo, double *hi);

/* Places the prompt's objects per §2/§4 (sizes, 4 px margins, bounding boxes 4 px apart,
 * position and relation ranges), uniformly among valid placements by rejection sampling. */
int hd_shapes_place(const hd_shapes_prompt *p, int w, int h, hd_prng *r, hd_shapes_scene *s,
                    hd_error *e);

/* Whether pixel centre (px, py) lies inside the object (§2). */
int hd_shapes_covers(const hd_shapes_placed *o, double px, double py);

/* Renders the scene on the background (240, 240, 240): a pixel whose centre an object covers (§2)
 * takes its exact colour; the pixels just outside an edge are blended with the background by the
 * fraction of their area the object covers (4×4 supersampling), which anti-aliases the edge
 * without moving it. out is allocated (free with hd_image_free). */
int hd_shapes_render(const hd_shapes_scene *s, hd_image *out, hd_error *e);

/* The whole world in one call: prompt (into prompt[HD_SHAPES_PROMPT_MAX]) and picture from seed. */
int hd_shapes_draw(uint64_t seed, int w, int h, hd_image *out, char *prompt, hd_error *e);
/* The same with the prompt's category drawn by weights (hd_shapes_prompt_sample_weighted; NULL =
 * uniform, identical to hd_shapes_draw). */
int hd_shapes_draw_weighted(uint64_t seed, const double *weights, int w, int h, hd_image *out,
                            char *prompt, hd_error *e);

#endif
