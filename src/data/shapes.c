#include "data/shapes.h"

#include <math.h>
#include <string.h>

#include "core/error.h"
#include "image/image.h"

enum { MARGIN = 4, GAP = 4, SUPERSAMPLE = 4 };
/* Whole placements (sizes and centres together) tried before giving up. Even four large objects
 * on a 64×64 canvas succeed within a few thousand tries; this bound only stops impossible
 * requests. */
#define MAX_TRIES 2000000

void hd_shapes_size_range(hd_size_class c, int w, int h, double *lo, double *hi) {
    double s = w < h ? w : h;
    if (c == HD_SIZE_LARGE) *lo = 0.28 * s, *hi = 0.36 * s;
    else *lo = 0.14 * s, *hi = 0.20 * s;
}

/* the interval a centre coordinate may take: inside the canvas with the margin, intersected
 * with the position's range along that axis */
static int centre_range(double side, double d, hd_position pos, int horizontal, double *lo,
                        double *hi) {
    *lo = MARGIN + d / 2;
    *hi = side - MARGIN - d / 2;
    double a = 0, b = 1;
    if (horizontal) {
        if (pos == HD_POS_LEFT) a = 0.10, b = 0.35;
        else if (pos == HD_POS_RIGHT) a = 0.65, b = 0.90;
    } else {
        if (pos == HD_POS_TOP) a = 0.10, b = 0.35;
        else if (pos == HD_POS_BOTTOM) a = 0.65, b = 0.90;
    }
    if (pos == HD_POS_CENTER) a = 0.45, b = 0.55;
    if (a * side > *lo) *lo = a * side;
    if (b * side < *hi) *hi = b * side;
    return *lo <= *hi;
}

/* bounding boxes at least GAP apart along x or along y */
static int apart(const hd_shapes_placed *a, const hd_shapes_placed *b) {
    double gx = fabs(a->cx - b->cx) - (a->d + b->d) / 2;
    double gy = fabs(a->cy - b->cy) - (a->d + b->d) / 2;
    return gx >= GAP || gy >= GAP;
}

static int relation_holds(hd_relation rel, const hd_shapes_placed *a, const hd_shapes_placed *b,
                          int w, int h) {
    switch (rel) {
    case HD_REL_LEFT_OF: return b->cx - a->cx >= 0.25 * w;
    case HD_REL_RIGHT_OF: return a->cx - b->cx >= 0.25 * w;
    case HD_REL_ABOVE: return b->cy - a->cy >= 0.25 * h;
    case HD_REL_BELOW: return a->cy - b->cy >= 0.25 * h;
    default: return 1;
    }
}

/* one candidate placement; 0 when it violates a rule */
static int try_place(const hd_shapes_prompt *p, int w, int h, hd_prng *r, hd_shapes_scene *s) {
    for (int i = 0; i < p->n; i++) {
        hd_shapes_placed *o = &s->obj[i];
        hd_size_class c = p->obj[i].size;
        if (c == HD_SIZE_ANY) c = hd_prng_below(r, 2) ? HD_SIZE_LARGE : HD_SIZE_SMALL;
        double lo, hi;
        hd_shapes_size_range(c, w, h, &lo, &hi);
        o->d = hd_prng_range(r, lo, hi);
        o->colour = p->obj[i].colour;
        o->shape = p->obj[i].shape;
        hd_position pos = i == 0 ? p->position : HD_POS_NONE;
        if (!centre_range(w, o->d, pos, 1, &lo, &hi)) return 0;
        o->cx = hd_prng_range(r, lo, hi);
        if (!centre_range(h, o->d, pos, 0, &lo, &hi)) return 0;
        o->cy = hd_prng_range(r, lo, hi);
        for (int j = 0; j < i; j++)
            if (!apart(o, &s->obj[j])) return 0;
    }
    return p->n < 2 || relation_holds(p->relation, &s->obj[0], &s->obj[1], w, h);
}

int hd_shapes_place(const hd_shapes_prompt *p, int w, int h, hd_prng *r, hd_shapes_scene *s,
                    hd_error *e) {
    memset(s, 0, sizeof *s);
    if (w < HD_SHAPES_MIN_SIDE || h < HD_SHAPES_MIN_SIDE || w > 16384 || h > 16384)
        return hd_fail(e, HD_EINVAL, "shapes: size %dx%d: sides must be in %d..16384", w, h,
                       HD_SHAPES_MIN_SIDE);
    if (p->n < 1 || p->n > HD_SHAPES_MAX_OBJECTS)
        return hd_fail(e, HD_EINVAL, "shapes: %d objects (1..%d)", p->n, HD_SHAPES_MAX_OBJECTS);
    s->w = w;
    s->h = h;
    s->n = p->n;
    for (long t = 0; t < MAX_TRIES; t++)
        if (try_place(p, w, h, r, s)) return 0;
    char text[HD_SHAPES_PROMPT_MAX];
    hd_shapes_prompt_format(p, text, sizeof text);
    return hd_fail(e, HD_EINVAL, "shapes: '%s' does not fit on %dx%d", text, w, h);
}

int hd_shapes_covers(const hd_shapes_placed *o, double px, double py) {
    double r = o->d / 2, dx = px - o->cx, dy = py - o->cy;
    switch (o->shape) {
    case HD_CIRCLE: return dx * dx + dy * dy <= r * r;
    case HD_SQUARE: return fabs(dx) <= r && fabs(dy) <= r;
    default: /* apex up: the half-width grows from 0 at the apex to r at the base */
        return dy <= r && fabs(dx) <= (dy + r) / 2;
    }
}

/* covered sub-samples of pixel (x, y) out of SUPERSAMPLE²: all of them when the pixel centre is
 * covered (§2: the pixel is the object's, exact colour), else the covered fraction of its area,
 * which anti-aliases the outer side of the edge */
static int coverage(const hd_shapes_placed *o, int x, int y) {
    if (hd_shapes_covers(o, x + 0.5, y + 0.5)) return SUPERSAMPLE * SUPERSAMPLE;
    int k = 0;
    for (int sy = 0; sy < SUPERSAMPLE; sy++)
        for (int sx = 0; sx < SUPERSAMPLE; sx++)
            k += hd_shapes_covers(o, x + (sx + 0.5) / SUPERSAMPLE, y + (sy + 0.5) / SUPERSAMPLE);
    return k;
}

static void render_object(const hd_shapes_placed *o, hd_image *im) {
    int x0 = (int)floor(o->cx - o->d / 2) - 1, x1 = (int)ceil(o->cx + o->d / 2) + 1;
    int y0 = (int)floor(o->cy - o->d / 2) - 1, y1 = (int)ceil(o->cy + o->d / 2) + 1;
    if (x0 < 0) x0 = 0;
    if (y0 < 0) y0 = 0;
    if (x1 > im->w) x1 = im->w;
    if (y1 > im->h) y1 = im->h;
    const unsigned char *col = hd_shapes_palette[o->colour], *bg = hd_shapes_background;
    const int full = SUPERSAMPLE * SUPERSAMPLE;
    for (int y = y0; y < y1; y++)
        for (int x = x0; x < x1; x++) {
            int k = coverage(o, x, y);
            if (!k) continue;
            uint8_t *px = hd_image_at(im, x, y);
            for (int c = 0; c < 3; c++)
                px[c] = (uint8_t)((bg[c] * (full - k) + col[c] * k + full / 2) / full);
        }
}

int hd_shapes_render(const hd_shapes_scene *s, hd_image *out, hd_error *e) {
    HD_TRY(hd_image_alloc(out, s->w, s->h, e));
    size_t n = (size_t)s->w * (size_t)s->h;
    for (size_t i = 0; i < n; i++) memcpy(out->px + 3 * i, hd_shapes_background, 3);
    for (int i = 0; i < s->n; i++) render_object(&s->obj[i], out);
    return 0;
}

int hd_shapes_draw(uint64_t seed, int w, int h, hd_image *out, char *prompt, hd_error *e) {
    return hd_shapes_draw_weighted(seed, NULL, w, h, out, prompt, e);
}

int hd_shapes_draw_weighted(uint64_t seed, const double *weights, int w, int h, hd_image *out,
                            char *prompt, hd_error *e) {
    out->w = out->h = 0;
    out->px = NULL;
    hd_prng r;
    hd_prng_seed(&r, seed);
    hd_shapes_prompt p;
    hd_shapes_prompt_sample_weighted(&r, weights, &p);
    hd_shapes_prompt_format(&p, prompt, HD_SHAPES_PROMPT_MAX);
    /* the placement gets its own stream so the prompt does not depend on the size */
    hd_prng pr;
    hd_prng_seed(&pr, hd_prng_derive(seed, 0x5CE4E) ^ ((uint64_t)w << 32 | (uint64_t)h));
    hd_shapes_scene s;
    HD_TRY(hd_shapes_place(&p, w, h, &pr, &s, e));
    return hd_shapes_render(&s, out, e);
}
