#include "data/shapes_score.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "image/image.h"

enum { CLASS_BG = HD_N_COLOURS, CLASS_UNKNOWN = HD_N_COLOURS + 1, VISITED = 0x80 };

/* §5.1: nearest of the 7 colours, unknown beyond distance 80 */
static uint8_t classify(const uint8_t *px) {
    int best = CLASS_UNKNOWN, best_d = 80 * 80;
    for (int k = 0; k <= HD_N_COLOURS; k++) {
        const unsigned char *c = k < HD_N_COLOURS ? hd_shapes_palette[k] : hd_shapes_background;
        int dr = px[0] - c[0], dg = px[1] - c[1], db = px[2] - c[2];
        int d = dr * dr + dg * dg + db * db;
        if (d < best_d || (d == best_d && best == CLASS_UNKNOWN)) best = k, best_d = d;
    }
    return (uint8_t)best;
}

/* §5.3 */
static hd_shape shape_of(const hd_shapes_component *c) {
    double w = c->x1 - c->x0 + 1, h = c->y1 - c->y0 + 1, a = w / h, r = c->area / (w * h);
    if (a < 0.67 || a > 1.5) return HD_SHAPE_UNKNOWN;
    if (r >= 0.88) return HD_SQUARE;
    if (r >= 0.66) return HD_CIRCLE;
    if (r >= 0.30) return HD_TRIANGLE;
    return HD_SHAPE_UNKNOWN;
}

/* 8-connected flood fill from pixel start over its class; marks pixels VISITED */
static void fill(uint8_t *cls, int32_t *stack, int w, int h, int32_t start,
                 hd_shapes_component *c) {
    uint8_t k = cls[start];
    long n = 0;
    double sx = 0, sy = 0;
    int sp = 0;
    c->x0 = c->x1 = start % w;
    c->y0 = c->y1 = start / w;
    cls[start] |= VISITED;
    stack[sp++] = start;
    while (sp) {
        int32_t p = stack[--sp];
        int x = p % w, y = p / w;
        n++;
        sx += x + 0.5;
        sy += y + 0.5;
        if (x < c->x0) c->x0 = x;
        if (x > c->x1) c->x1 = x;
        if (y < c->y0) c->y0 = y;
        if (y > c->y1) c->y1 = y;
        for (int dy = -1; dy <= 1; dy++)
            for (int dx = -1; dx <= 1; dx++) {
                int nx = x + dx, ny = y + dy;
                if (nx < 0 || ny < 0 || nx >= w || ny >= h) continue;
                int32_t q = ny * w + nx;
                if (cls[q] != k) continue; /* other class, or already visited */
                cls[q] |= VISITED;
                stack[sp++] = q;
            }
    }
    c->colour = (hd_colour)k;
    c->area = n;
    c->cx = sx / n;
    c->cy = sy / n;
}

int hd_shapes_detect(const hd_image *im, hd_shapes_detection *d, hd_error *e) {
    memset(d, 0, sizeof *d);
    size_t n = (size_t)im->w * (size_t)im->h;
    if (!im->px || n == 0 || n > INT32_MAX / 2)
        return hd_fail(e, HD_EINVAL, "shapes judge: image %dx%d is empty or too large", im->w,
                       im->h);
    uint8_t *cls = malloc(n);
    int32_t *stack = malloc(n * sizeof *stack);
    if (!cls || !stack) {
        free(cls);
        free(stack);
        return hd_fail(e, HD_ENOMEM, "shapes judge: out of memory");
    }
    for (size_t i = 0; i < n; i++) cls[i] = classify(im->px + 3 * i);
    double min_area = 0.004 * im->w * im->h;
    for (size_t i = 0; i < n; i++) {
        if (cls[i] >= HD_N_COLOURS) continue; /* background, unknown or visited */
        hd_shapes_component c;
        fill(cls, stack, im->w, im->h, (int32_t)i, &c);
        if (c.area < min_area) continue;
        c.shape = shape_of(&c);
        if (d->n < HD_SHAPES_MAX_DETECTED) d->obj[d->n] = c;
        d->n++;
    }
    free(cls);
    free(stack);
    return 0;
}

/* ---- matching ------------------------------------------------------------------------------- */

typedef struct judge_ctx {
    const hd_shapes_prompt *p;
    const hd_shapes_detection *d;
    int w, h;
    int assign[HD_SHAPES_MAX_OBJECTS]; /* prompt object -> detected index */
    int used[HD_SHAPES_MAX_DETECTED];
    char first_fail[192];              /* why the first complete matching failed */
} judge_ctx;

static void describe(const hd_shapes_component *c, char *buf, size_t n) {
    snprintf(buf, n, "%s %s", hd_colour_name(c->colour),
             c->shape == HD_SHAPE_UNKNOWN ? "blob" : hd_shape_name(c->shape));
}

static int position_ok(hd_position pos, const hd_shapes_component *c, int w, int h) {
    switch (pos) {
    case HD_POS_LEFT: return c->cx < 0.4 * w;
    case HD_POS_RIGHT: return c->cx > 0.6 * w;
    case HD_POS_TOP: return c->cy < 0.4 * h;
    case HD_POS_BOTTOM: return c->cy > 0.6 * h;
    case HD_POS_CENTER: return fabs(c->cx - w / 2.0) < 0.12 * w && fabs(c->cy - h / 2.0) < 0.12 * h;
    default: return 1;
    }
}

static int relation_ok(hd_relation rel, const hd_shapes_component *a,
                       const hd_shapes_component *b, int w, int h) {
    switch (rel) {
    case HD_REL_LEFT_OF: return a->cx + 0.1 * w < b->cx;
    case HD_REL_RIGHT_OF: return b->cx + 0.1 * w < a->cx;
    case HD_REL_ABOVE: return a->cy + 0.1 * h < b->cy;
    case HD_REL_BELOW: return b->cy + 0.1 * h < a->cy;
    default: return 1;
    }
}

/* checks a complete matching; on failure writes why into buf */
static int constraints_hold(const judge_ctx *j, char *buf, size_t n) {
    double s = j->w < j->h ? j->w : j->h;
    char what[48];
    for (int i = 0; i < j->p->n; i++) {
        const hd_shapes_component *c = &j->d->obj[j->assign[i]];
        if (j->p->obj[i].size == HD_SIZE_ANY) continue;
        int side = (c->x1 - c->x0 + 1) > (c->y1 - c->y0 + 1) ? c->x1 - c->x0 + 1 : c->y1 - c->y0 + 1;
        int large = side >= 0.24 * s;
        if (large != (j->p->obj[i].size == HD_SIZE_LARGE)) {
            describe(c, what, sizeof what);
            snprintf(buf, n, "size: the %s is %s (%d px)", what, large ? "large" : "small", side);
            return 0;
        }
    }
    const hd_shapes_component *a = &j->d->obj[j->assign[0]];
    if (!position_ok(j->p->position, a, j->w, j->h)) {
        describe(a, what, sizeof what);
        snprintf(buf, n, "position: the %s is at (%.0f, %.0f)", what, a->cx, a->cy);
        return 0;
    }
    if (j->p->relation != HD_REL_NONE &&
        !relation_ok(j->p->relation, a, &j->d->obj[j->assign[1]], j->w, j->h)) {
        const hd_shapes_component *b = &j->d->obj[j->assign[1]];
        snprintf(buf, n, "relation: centres (%.0f, %.0f) and (%.0f, %.0f)", a->cx, a->cy, b->cx,
                 b->cy);
        return 0;
    }
    return 1;
}

/* tries every assignment of detected objects (same colour and shape) to prompt objects */
static int search(judge_ctx *j, int i) {
    if (i == j->p->n) {
        char why[192];
        if (constraints_hold(j, why, sizeof why)) return 1;
        if (!j->first_fail[0]) snprintf(j->first_fail, sizeof j->first_fail, "%s", why);
        return 0;
    }
    for (int k = 0; k < j->d->n; k++) {
        const hd_shapes_component *c = &j->d->obj[k];
        if (j->used[k] || c->colour != j->p->obj[i].colour || c->shape != j->p->obj[i].shape)
            continue;
        j->used[k] = 1;
        j->assign[i] = k;
        int ok = search(j, i + 1);
        j->used[k] = 0;
        if (ok) return 1;
    }
    return 0;
}

/* "missing: ..., extra: ..." from the multiset difference; 0 when the multisets agree */
static int multiset_diff(const hd_shapes_prompt *p, const hd_shapes_detection *d, char *buf,
                         size_t n) {
    if (d->n > HD_SHAPES_MAX_DETECTED) {
        snprintf(buf, n, "%d objects detected, the prompt names %d", d->n, p->n);
        return 1;
    }
    int taken[HD_SHAPES_MAX_DETECTED] = {0}, missing[HD_SHAPES_MAX_OBJECTS] = {0};
    int bad = 0;
    for (int i = 0; i < p->n; i++) {
        int k = 0;
        while (k < d->n && (taken[k] || d->obj[k].colour != p->obj[i].colour ||
                            d->obj[k].shape != p->obj[i].shape))
            k++;
        if (k < d->n) taken[k] = 1;
        else missing[i] = bad = 1;
    }
    size_t at = 0;
    buf[0] = 0;
    for (int i = 0; i < p->n; i++)
        if (missing[i] && at < n)
            at += (size_t)snprintf(buf + at, n - at, "%s%s %s", at ? ", " : "missing: ",
                                   hd_colour_name(p->obj[i].colour), hd_shape_name(p->obj[i].shape));
    int extras = 0;
    for (int k = 0; k < d->n; k++) {
        if (taken[k] || at >= n) continue;
        char what[48];
        describe(&d->obj[k], what, sizeof what);
        at += (size_t)snprintf(buf + at, n - at, "%s%s", extras++ ? ", " : (at ? "; extra: " : "extra: "),
                               what);
        bad = 1;
    }
    return bad;
}

void hd_shapes_judge_parsed(const hd_image *im, const hd_shapes_prompt *p, hd_shapes_verdict *v) {
    v->category = p->category;
    v->correct = 0;
    hd_shapes_detection d;
    hd_error e;
    if (hd_shapes_detect(im, &d, &e) < 0) {
        snprintf(v->reason, sizeof v->reason, "%.180s", e.msg);
        return;
    }
    if (multiset_diff(p, &d, v->reason, sizeof v->reason)) return;
    judge_ctx j = {.p = p, .d = &d, .w = im->w, .h = im->h};
    if (search(&j, 0)) {
        v->correct = 1;
        snprintf(v->reason, sizeof v->reason, "ok");
    } else {
        memcpy(v->reason, j.first_fail, sizeof v->reason);
    }
}

int hd_shapes_judge(const hd_image *im, const char *prompt, hd_shapes_verdict *v, hd_error *e) {
    hd_shapes_prompt p;
    memset(v, 0, sizeof *v);
    HD_TRY(hd_shapes_prompt_parse(prompt, &p, e));
    hd_shapes_judge_parsed(im, &p, v);
    return 0;
}

void hd_shapes_tally_add(hd_shapes_tally *t, const hd_shapes_verdict *v) {
    if (v->category < HD_N_CATEGORIES) {
        t->total[v->category]++;
        t->correct[v->category] += v->correct != 0;
    }
    t->total[HD_N_CATEGORIES]++;
    t->correct[HD_N_CATEGORIES] += v->correct != 0;
}

double hd_shapes_tally_fraction(const hd_shapes_tally *t, int category) {
    if (category < 0 || category > HD_N_CATEGORIES || t->total[category] == 0) return 0;
    return (double)t->correct[category] / (double)t->total[category];
}
