/* The judge of spec 09 §5: is a picture a correct answer to a shapes-world prompt?
 *
 * Pixels are classified to the nearest of the 7 palette colours (unknown beyond RGB distance 80),
 * objects are the 8-connected components of one object colour with area >= 0.004·W·H, their shape
 * comes from fill ratio and aspect, and the image is correct when the detected (colour, shape)
 * multiset equals the prompt's and some matching of detected objects to the prompt's objects
 * satisfies the named sizes, position and relation. */
#ifndef HD_DATA_SHAPES_SCORE_H
#define HD_DATA_SHAPES_SCORE_H

#include "data/shapes_prompt.h"
#include "hidream.h"

/* at most this many objects are kept per picture; more are counted (a wrong answer anyway) */
enum { HD_SHAPES_MAX_DETECTED = 16 };

#define HD_SHAPE_UNKNOWN ((hd_shape)-1)

typedef struct hd_shapes_component {
    hd_colour colour;
    hd_shape shape;       /* HD_SHAPE_UNKNOWN when fill ratio / aspect fit none */
    long area;            /* pixels */
    int x0, y0, x1, y1;   /* bounding box, inclusive */
    double cx, cy;        /* centroid of the pixel centres */
} hd_shapes_component;

typedef struct hd_shapes_detection {
    int n;                /* objects found (may exceed HD_SHAPES_MAX_DETECTED) */
    hd_shapes_component obj[HD_SHAPES_MAX_DETECTED];
} hd_shapes_detection;

/* Finds the objects of a picture (§5 steps 1-3). */
int hd_shapes_detect(const hd_image *im, hd_shapes_detection *d, hd_error *e);

typedef struct hd_shapes_verdict {
    hd_shapes_category category;
    int correct;
    char reason[192];     /* "ok" or what is wrong, e.g. "missing: red circle; extra: red blob"
                             (a blob is an object of unknown shape) */
} hd_shapes_verdict;

/* Judges a picture against a prompt. Fails (HD_EINVAL) only when the prompt is outside the
 * grammar; a wrong picture is a verdict, not an error. */
int hd_shapes_judge(const hd_image *im, const char *prompt, hd_shapes_verdict *v, hd_error *e);

/* The same with the prompt already parsed. */
void hd_shapes_judge_parsed(const hd_image *im, const hd_shapes_prompt *p, hd_shapes_verdict *v);

/* Counts per category (and overall in the last slot). */
typedef struct hd_shapes_tally {
    long total[HD_N_CATEGORIES + 1], correct[HD_N_CATEGORIES + 1];
} hd_shapes_tally;

void hd_shapes_tally_add(hd_shapes_tally *t, const hd_shapes_verdict *v);
/* Fraction correct of a category, or overall with HD_N_CATEGORIES; 0 when empty. */
double hd_shapes_tally_fraction(const hd_shapes_tally *t, int category);

#endif
