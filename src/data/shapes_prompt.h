/* The prompt grammar of the shapes world (spec 09 §3): its words, a structured prompt, and the
 * three ways between them — sample one (seeded, uniform over the 5 categories and then over the
 * choices of the grammar), format it as the exact string, and parse a string back (refusing
 * anything outside the grammar). */
#ifndef HD_DATA_SHAPES_PROMPT_H
#define HD_DATA_SHAPES_PROMPT_H

#include <stddef.h>

#include "data/prng.h"
#include "hidream.h"

enum { HD_SHAPES_MAX_OBJECTS = 4, HD_SHAPES_PROMPT_MAX = 128 };

typedef enum hd_colour {
    HD_RED, HD_ORANGE, HD_YELLOW, HD_GREEN, HD_BLUE, HD_PURPLE, HD_N_COLOURS
} hd_colour;

typedef enum hd_shape { HD_CIRCLE, HD_SQUARE, HD_TRIANGLE, HD_N_SHAPES } hd_shape;

/* a size the prompt may name; ANY = not named (either class) */
typedef enum hd_size_class { HD_SIZE_ANY, HD_SIZE_SMALL, HD_SIZE_LARGE } hd_size_class;

typedef enum hd_position {
    HD_POS_NONE, HD_POS_LEFT, HD_POS_RIGHT, HD_POS_TOP, HD_POS_BOTTOM, HD_POS_CENTER
} hd_position;

typedef enum hd_relation {
    HD_REL_NONE, HD_REL_LEFT_OF, HD_REL_RIGHT_OF, HD_REL_ABOVE, HD_REL_BELOW
} hd_relation;

typedef enum hd_shapes_category {
    HD_CAT_SINGLE, HD_CAT_POSITION, HD_CAT_COUNTING, HD_CAT_RELATION, HD_CAT_TWO, HD_N_CATEGORIES
} hd_shapes_category;

typedef struct hd_shapes_object {
    hd_colour colour;
    hd_shape shape;
    hd_size_class size;
} hd_shapes_object;

/* A prompt: the objects it names (counting: n copies of one object, size ANY), plus the
 * position of obj[0] (category position) or the relation "obj[0] REL obj[1]" (relation). */
typedef struct hd_shapes_prompt {
    hd_shapes_category category;
    int n;
    hd_shapes_object obj[HD_SHAPES_MAX_OBJECTS];
    hd_position position;
    hd_relation relation;
} hd_shapes_prompt;

const char *hd_colour_name(hd_colour c);
const char *hd_shape_name(hd_shape s);
const char *hd_category_name(hd_shapes_category c);   /* "single", ..., "two objects" */
/* RGB of an object colour (§1) and of the background */
extern const unsigned char hd_shapes_palette[HD_N_COLOURS][3];
extern const unsigned char hd_shapes_background[3];

/* The words of the grammar (every word any prompt can contain), NULL-terminated. */
extern const char *const hd_shapes_words[];

/* Draws a prompt: category uniform, then every choice uniform (an optional size is one of
 * {none, small, large}); "two objects" redraws the second object until colour or shape differ. */
void hd_shapes_prompt_sample(hd_prng *r, hd_shapes_prompt *p);
/* The same with the category drawn in proportion to weights[HD_N_CATEGORIES] (each ≥ 0, sum > 0;
 * NULL = uniform, the exact stream of hd_shapes_prompt_sample). A recipe leans the training data
 * toward what the model finds hard; judging always draws uniformly. */
void hd_shapes_prompt_sample_weighted(hd_prng *r, const double *weights, hd_shapes_prompt *p);

/* The exact prompt string; returns its length (always < HD_SHAPES_PROMPT_MAX). */
size_t hd_shapes_prompt_format(const hd_shapes_prompt *p, char *buf, size_t n);

/* Parses an exact grammar string. Anything else fails with HD_EINVAL and a message quoting the
 * prompt and saying where it leaves the grammar. */
int hd_shapes_prompt_parse(const char *text, hd_shapes_prompt *p, hd_error *e);

#endif
