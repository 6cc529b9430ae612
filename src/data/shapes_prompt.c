#include "data/shapes_prompt.h"

#include <stdio.h>
#include <string.h>

#include "core/error.h"

const unsigned char hd_shapes_palette[HD_N_COLOURS][3] = {
    {215, 48, 39}, {244, 140, 30}, {240, 205, 40}, {46, 160, 67}, {33, 102, 212}, {128, 60, 170},
};
const unsigned char hd_shapes_background[3] = {240, 240, 240};

static const char *const COLOURS[HD_N_COLOURS] = {"red",  "orange", "yellow",
                                                  "green", "blue",  "purple"};
static const char *const SHAPES[HD_N_SHAPES] = {"circle", "square", "triangle"};
static const char *const SHAPES_PLURAL[HD_N_SHAPES] = {"circles", "squares", "triangles"};
static const char *const SIZES[] = {"", "small", "large"};
static const char *const NUMBERS[] = {"two", "three", "four"};
/* indexed by hd_position / hd_relation; [0] unused */
static const char *const POSITIONS[] = {"", "on the left", "on the right", "at the top",
                                        "at the bottom", "in the center"};
static const char *const RELATIONS[] = {"", "to the left of", "to the right of", "above", "below"};
static const char *const CATEGORIES[HD_N_CATEGORIES] = {"single", "position", "counting",
                                                        "relation", "two objects"};

const char *const hd_shapes_words[] = {
    "a", "an", "red", "orange", "yellow", "green", "blue", "purple", "circle", "square",
    "triangle", "circles", "squares", "triangles", "small", "large", "two", "three", "four", "on",
    "the", "left", "right", "at", "top", "bottom", "in", "center", "to", "of", "above", "below",
    "and", NULL};

const char *hd_colour_name(hd_colour c) { return c < HD_N_COLOURS ? COLOURS[c] : "?"; }
const char *hd_shape_name(hd_shape s) { return s < HD_N_SHAPES ? SHAPES[s] : "?"; }
const char *hd_category_name(hd_shapes_category c) {
    return c < HD_N_CATEGORIES ? CATEGORIES[c] : "?";
}

/* ---- sampling ------------------------------------------------------------------------------- */

static void sample_object(hd_prng *r, hd_shapes_object *o, int with_size) {
    o->colour = (hd_colour)hd_prng_below(r, HD_N_COLOURS);
    o->shape = (hd_shape)hd_prng_below(r, HD_N_SHAPES);
    o->size = with_size ? (hd_size_class)hd_prng_below(r, 3) : HD_SIZE_ANY;
}

/* The category by weight (NULL: uniform, the stream hd_shapes_prompt_sample always drew). */
static hd_shapes_category sample_category(hd_prng *r, const double *weights) {
    if (!weights) return (hd_shapes_category)hd_prng_below(r, HD_N_CATEGORIES);
    double total = 0;
    for (int c = 0; c < HD_N_CATEGORIES; c++) total += weights[c];
    double u = hd_prng_uniform(r) * total;
    int last = 0;
    for (int c = 0; c < HD_N_CATEGORIES; c++) {
        if (weights[c] <= 0) continue;
        last = c;
        if (u < weights[c]) return (hd_shapes_category)c;
        u -= weights[c];
    }
    return (hd_shapes_category)last; /* rounding left u just above the sum */
}

void hd_shapes_prompt_sample(hd_prng *r, hd_shapes_prompt *p) {
    hd_shapes_prompt_sample_weighted(r, NULL, p);
}

void hd_shapes_prompt_sample_weighted(hd_prng *r, const double *weights, hd_shapes_prompt *p) {
    memset(p, 0, sizeof *p);
    p->category = sample_category(r, weights);
    switch (p->category) {
    case HD_CAT_SINGLE:
        p->n = 1;
        sample_object(r, &p->obj[0], 1);
        break;
    case HD_CAT_POSITION:
        p->n = 1;
        sample_object(r, &p->obj[0], 1);
        p->position = (hd_position)(1 + hd_prng_below(r, 5));
        break;
    case HD_CAT_COUNTING:
        p->n = 2 + (int)hd_prng_below(r, 3);
        sample_object(r, &p->obj[0], 0);
        for (int i = 1; i < p->n; i++) p->obj[i] = p->obj[0];
        break;
    case HD_CAT_RELATION:
        p->n = 2;
        sample_object(r, &p->obj[0], 1);
        p->relation = (hd_relation)(1 + hd_prng_below(r, 4));
        sample_object(r, &p->obj[1], 1);
        break;
    default: /* two objects */
        p->n = 2;
        sample_object(r, &p->obj[0], 1);
        do sample_object(r, &p->obj[1], 1);
        while (p->obj[1].colour == p->obj[0].colour && p->obj[1].shape == p->obj[0].shape);
        break;
    }
}

/* ---- formatting ----------------------------------------------------------------------------- */

static size_t put_object(const hd_shapes_object *o, char *buf, size_t n) {
    const char *first = o->size != HD_SIZE_ANY ? SIZES[o->size] : COLOURS[o->colour];
    int len = snprintf(buf, n, "%s %s%s%s %s", strchr("aeiou", first[0]) ? "an" : "a",
                       o->size != HD_SIZE_ANY ? SIZES[o->size] : "",
                       o->size != HD_SIZE_ANY ? " " : "", COLOURS[o->colour], SHAPES[o->shape]);
    return len < 0 ? 0 : (size_t)len;
}

size_t hd_shapes_prompt_format(const hd_shapes_prompt *p, char *buf, size_t n) {
    char a[64], b[64];
    put_object(&p->obj[0], a, sizeof a);
    int len;
    switch (p->category) {
    case HD_CAT_SINGLE: len = snprintf(buf, n, "%s", a); break;
    case HD_CAT_POSITION: len = snprintf(buf, n, "%s %s", a, POSITIONS[p->position]); break;
    case HD_CAT_COUNTING:
        len = snprintf(buf, n, "%s %s %s", NUMBERS[p->n - 2], COLOURS[p->obj[0].colour],
                       SHAPES_PLURAL[p->obj[0].shape]);
        break;
    case HD_CAT_RELATION:
        put_object(&p->obj[1], b, sizeof b);
        len = snprintf(buf, n, "%s %s %s", a, RELATIONS[p->relation], b);
        break;
    default:
        put_object(&p->obj[1], b, sizeof b);
        len = snprintf(buf, n, "%s and %s", a, b);
        break;
    }
    return len < 0 ? 0 : (size_t)len;
}

/* ---- parsing -------------------------------------------------------------------------------- */

enum { MAX_WORDS = 16 };

typedef struct parser {
    const char *text;  /* the prompt as shown in messages: printable, at most 80 bytes */
    char shown[84];
    const char *w[MAX_WORDS];
    size_t wl[MAX_WORDS];
    int n, at;
    hd_error *e;
} parser;

static int word_is(const parser *ps, int i, const char *s) {
    return i < ps->n && ps->wl[i] == strlen(s) && !memcmp(ps->w[i], s, ps->wl[i]);
}

static int find_word(const parser *ps, int i, const char *const *list, int count) {
    for (int k = 0; k < count; k++)
        if (list[k][0] && word_is(ps, i, list[k])) return k;
    return -1;
}

static int expected(parser *ps, const char *what) {
    if (ps->at >= ps->n)
        return hd_fail(ps->e, HD_EINVAL, "prompt '%s': ends where %s is expected", ps->text, what);
    return hd_fail(ps->e, HD_EINVAL, "prompt '%s': word %d '%.*s': expected %s", ps->text,
                   ps->at + 1, (int)ps->wl[ps->at], ps->w[ps->at], what);
}

/* a phrase of several words ("to the left of"): matches all of them at ps->at */
static int match_phrase(const parser *ps, const char *phrase) {
    int i = ps->at;
    const char *s = phrase;
    while (*s) {
        size_t l = strcspn(s, " ");
        if (i >= ps->n || ps->wl[i] != l || memcmp(ps->w[i], s, l)) return 0;
        i++;
        s += l + (s[l] == ' ');
    }
    return i - ps->at;
}

static int parse_object(parser *ps, hd_shapes_object *o) {
    int an = word_is(ps, ps->at, "an");
    if (!an && !word_is(ps, ps->at, "a")) return expected(ps, "'a' or 'an'");
    ps->at++;
    int k = find_word(ps, ps->at, SIZES, 3);
    o->size = k > 0 ? (hd_size_class)k : HD_SIZE_ANY;
    if (an != (ps->at < ps->n && strchr("aeiou", ps->w[ps->at][0]) != NULL)) {
        ps->at--;
        return expected(ps, an ? "'a' (the next word does not start with a vowel)"
                               : "'an' (the next word starts with a vowel)");
    }
    if (k > 0) ps->at++;
    if ((k = find_word(ps, ps->at, COLOURS, HD_N_COLOURS)) < 0) return expected(ps, "a colour");
    o->colour = (hd_colour)k;
    ps->at++;
    if ((k = find_word(ps, ps->at, SHAPES, HD_N_SHAPES)) < 0)
        return expected(ps, "circle, square or triangle");
    o->shape = (hd_shape)k;
    ps->at++;
    return 0;
}

/* a copy fit for a one-line message: non-printable bytes as '?', long prompts cut with "..." */
static void show(const char *text, char out[84]) {
    size_t i = 0;
    for (; text[i] && i < 80; i++) out[i] = (text[i] >= 0x20 && text[i] < 0x7f) ? text[i] : '?';
    if (text[i]) memcpy(out + 77, "...", 3);
    out[i] = 0;
}

static int split_words(parser *ps, const char *s) {
    size_t len = strlen(s);
    if (len == 0) return hd_fail(ps->e, HD_EINVAL, "prompt '': empty");
    if (len >= HD_SHAPES_PROMPT_MAX)
        return hd_fail(ps->e, HD_EINVAL, "prompt '%s': longer than any prompt of the grammar",
                       ps->text);
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || c == ' '))
            return hd_fail(ps->e, HD_EINVAL,
                           "prompt '%s': byte %zu: only lower-case letters and single spaces "
                           "are allowed",
                           ps->text, i);
        if (c == ' ' && (i == 0 || i + 1 == len || s[i + 1] == ' '))
            return hd_fail(ps->e, HD_EINVAL,
                           "prompt '%s': byte %zu: leading, trailing or double space", ps->text, i);
    }
    ps->n = 0;
    for (const char *c = s; *c;) {
        if (ps->n == MAX_WORDS)
            return hd_fail(ps->e, HD_EINVAL, "prompt '%s': too many words", ps->text);
        size_t l = strcspn(c, " ");
        ps->w[ps->n] = c;
        ps->wl[ps->n++] = l;
        c += l + (c[l] == ' ');
    }
    return 0;
}

static int parse_counting(parser *ps, hd_shapes_prompt *p, int number) {
    p->category = HD_CAT_COUNTING;
    p->n = number + 2;
    ps->at = 1;
    int k = find_word(ps, ps->at, COLOURS, HD_N_COLOURS);
    if (k < 0) return expected(ps, "a colour");
    p->obj[0].colour = (hd_colour)k;
    ps->at++;
    if ((k = find_word(ps, ps->at, SHAPES_PLURAL, HD_N_SHAPES)) < 0)
        return expected(ps, "circles, squares or triangles");
    p->obj[0].shape = (hd_shape)k;
    p->obj[0].size = HD_SIZE_ANY;
    ps->at++;
    for (int i = 1; i < p->n; i++) p->obj[i] = p->obj[0];
    return 0;
}

/* what follows the first object: nothing, a position, a relation and O2, or "and" O2 */
static int parse_tail(parser *ps, hd_shapes_prompt *p) {
    p->n = 1;
    if (ps->at == ps->n) {
        p->category = HD_CAT_SINGLE;
        return 0;
    }
    for (int k = 1; k <= 5; k++) {
        int len = match_phrase(ps, POSITIONS[k]);
        if (!len) continue;
        p->category = HD_CAT_POSITION;
        p->position = (hd_position)k;
        ps->at += len;
        return 0;
    }
    int len = 0;
    if (word_is(ps, ps->at, "and")) {
        p->category = HD_CAT_TWO;
        len = 1;
    } else {
        for (int k = 1; k <= 4 && !len; k++)
            if ((len = match_phrase(ps, RELATIONS[k]))) {
                p->category = HD_CAT_RELATION;
                p->relation = (hd_relation)k;
            }
    }
    if (!len) return expected(ps, "a position, a relation or 'and'");
    ps->at += len;
    p->n = 2;
    HD_TRY(parse_object(ps, &p->obj[1]));
    if (p->category == HD_CAT_TWO && p->obj[0].colour == p->obj[1].colour &&
        p->obj[0].shape == p->obj[1].shape)
        return hd_fail(ps->e, HD_EINVAL,
                       "prompt '%s': the two objects must differ in colour or shape", ps->text);
    return 0;
}

int hd_shapes_prompt_parse(const char *text, hd_shapes_prompt *p, hd_error *e) {
    memset(p, 0, sizeof *p);
    parser ps = {.e = e};
    show(text ? text : "", ps.shown);
    ps.text = ps.shown;
    if (!text) text = "";
    HD_TRY(split_words(&ps, text));
    int number = find_word(&ps, 0, NUMBERS, 3);
    if (number >= 0) HD_TRY(parse_counting(&ps, p, number));
    else {
        HD_TRY(parse_object(&ps, &p->obj[0]));
        HD_TRY(parse_tail(&ps, p));
    }
    if (ps.at != ps.n) return expected(&ps, "the end of the prompt");
    return 0;
}
