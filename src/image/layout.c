/* Layout boxes: upstream load_layout_bboxes / parse_layout_bboxes / draw_bbox_layout /
 * add_outer_border_keep_size (spec 06 §5), and Pillow 9.4's ImagingDrawRectangle. */
#include "image/layout.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/error.h"
#include "core/file.h"

/* A layout is a few boxes; the cap keeps a PNG recipe that records one small (recipe.c). */
#define MAX_LAYOUT_BYTES ((size_t)64 << 10)

static const uint8_t COLORS[HD_LAYOUT_N_COLORS][3] = {
    {255, 0, 0},   {0, 180, 0}, {0, 0, 255}, {204, 180, 0}, {255, 0, 255},
    {0, 255, 255}, {128, 0, 0}, {0, 128, 0}, {0, 0, 128},   {128, 128, 0},
};

const uint8_t *hd_layout_color(int k) {
    k %= HD_LAYOUT_N_COLORS;
    if (k < 0) k += HD_LAYOUT_N_COLORS;
    return COLORS[k];
}

void hd_layout_free(hd_layout *l) {
    if (!l) return;
    for (int i = 0; i < l->n; i++) free(l->boxes[i].label);
    free(l->boxes);
    l->boxes = NULL;
    l->n = 0;
}

/* Python truthiness of a JSON value (what `a or b` tests). */
static int json_truthy(const json_t *v) {
    if (!v) return 0;
    switch (json_typeof(v)) {
    case JSON_NULL:
    case JSON_FALSE: return 0;
    case JSON_TRUE: return 1;
    case JSON_REAL: return json_real_value(v) != 0.0;
    case JSON_INTEGER: return json_integer_value(v) != 0;
    case JSON_STRING: return json_string_length(v) != 0;
    case JSON_ARRAY: return json_array_size(v) != 0;
    default: return json_object_size(v) != 0;
    }
}

/* Python float(v) for a coordinate: numbers, booleans and numeric strings; non-finite values
 * are refused here (upstream fails on them a step later, when rounding). */
static int coord_value(const json_t *v, double *out) {
    if (json_is_number(v)) {
        *out = json_number_value(v);
    } else if (json_is_boolean(v)) {
        *out = json_is_true(v) ? 1.0 : 0.0;
    } else if (json_is_string(v)) {
        const char *s = json_string_value(v);
        size_t n = json_string_length(v);
        if (strlen(s) != n || strpbrk(s, "xX")) return -1; /* NUL inside; hex floats */
        char *end;
        errno = 0;
        double d = strtod(s, &end);
        if (end == s) return -1;
        while (*end == ' ' || *end == '\t' || *end == '\n' || *end == '\r') end++;
        if (*end) return -1;
        *out = d;
    } else {
        return -1;
    }
    return isfinite(*out) ? 0 : -1;
}

static char *json_text_of(const json_t *item) {
    const json_t *t = json_object_get(item, "text");
    if (!json_truthy(t)) t = json_object_get(item, "label");
    if (!json_is_string(t)) return NULL;
    return strdup(json_string_value(t));
}

static int parse_boxes(const json_t *root, const char *what, hd_layout *out, hd_error *e) {
    static const char *const KEYS[] = {"layout_bboxes", "bboxes", "boxes", "bbox_list"};
    const json_t *list = root;
    if (json_is_object(root)) {
        for (size_t k = 0; k < sizeof KEYS / sizeof KEYS[0]; k++) {
            const json_t *v = json_object_get(root, KEYS[k]);
            if (v) {
                list = v;
                break;
            }
        }
    }
    if (!json_is_array(list))
        return hd_fail(e, HD_EINVAL,
                       "%s: layout boxes must be a list, or an object holding the list under "
                       "one of layout_bboxes/bboxes/boxes/bbox_list",
                       what);
    size_t n = json_array_size(list);
    if (n > 100000) return hd_fail(e, HD_EINVAL, "%s: %zu layout boxes is too many", what, n);
    out->boxes = calloc(n ? n : 1, sizeof *out->boxes);
    if (!out->boxes) return hd_fail(e, HD_ENOMEM, "%s: out of memory for layout boxes", what);
    for (size_t i = 0; i < n; i++) {
        const json_t *item = json_array_get(list, i), *bbox = NULL;
        hd_layout_box *b = &out->boxes[i];
        out->n = (int)i + 1;
        if (json_is_object(item)) {
            bbox = json_object_get(item, "bbox");
            if (!json_truthy(bbox)) bbox = json_object_get(item, "box");
            if (!bbox || json_is_null(bbox))
                return hd_fail(e, HD_EINVAL, "%s: layout box %zu: missing \"bbox\" (or \"box\")",
                               what, i);
            b->label = json_text_of(item);
            if (!json_is_array(bbox) || json_array_size(bbox) != 4)
                return hd_fail(e, HD_EINVAL, "%s: layout box %zu: \"bbox\" must be a list of 4 "
                               "numbers [x1, x2, y1, y2]", what, i);
        } else if (json_is_array(item) && json_array_size(item) == 4) {
            bbox = item;
        } else {
            return hd_fail(e, HD_EINVAL, "%s: layout box %zu: expected a list of 4 numbers "
                           "[x1, x2, y1, y2] or an object with \"bbox\"", what, i);
        }
        for (size_t c = 0; c < 4; c++)
            if (coord_value(json_array_get(bbox, c), &b->v[c]) < 0)
                return hd_fail(e, HD_EINVAL, "%s: layout box %zu: coordinate %zu is not a finite "
                               "number", what, i, c);
    }
    return 0;
}

/* Python's json.loads also accepts NaN, Infinity, -Infinity and numbers too large for a double
 * (they become inf); jansson calls them syntax errors, which would wrongly mean "skip the
 * layout". Outside strings, each such token is replaced by a string holding a NUL, which parses
 * and which coord_value refuses like upstream's round() refuses a non-finite value. Returns a
 * malloc'd copy (length in *out_len), or NULL when out of memory. */
static const char NONFINITE[] = "\"\\u0000\"";

static char *python_json_tokens(const char *js, size_t len, size_t *out_len) {
    size_t cap = len * 3 + 16, n = 0; /* a 3-byte NaN becomes the 8-byte NONFINITE */
    char *o = malloc(cap);
    if (!o) return NULL;
    int in_str = 0;
    for (size_t i = 0; i < len;) {
        char c = js[i];
        if (in_str) {
            o[n++] = c;
            i++;
            if (c == '\\' && i < len) o[n++] = js[i++];
            else if (c == '"') in_str = 0;
            continue;
        }
        if (c == '"') {
            in_str = 1;
            o[n++] = c;
            i++;
            continue;
        }
        size_t tok = 0;
        if (len - i >= 3 && memcmp(js + i, "NaN", 3) == 0) tok = 3;
        else if (len - i >= 8 && memcmp(js + i, "Infinity", 8) == 0) tok = 8;
        else if (len - i >= 9 && memcmp(js + i, "-Infinity", 9) == 0) tok = 9;
        else if (c == '-' || (c >= '0' && c <= '9')) {
            size_t j = i + 1;
            while (j < len && ((js[j] >= '0' && js[j] <= '9') || js[j] == '.' || js[j] == 'e' ||
                               js[j] == 'E' || js[j] == '+' || js[j] == '-'))
                j++;
            char small[64], *num = j - i < sizeof small ? small : malloc(j - i + 1);
            if (!num) {
                free(o);
                return NULL;
            }
            memcpy(num, js + i, j - i);
            num[j - i] = 0;
            if (isinf(strtod(num, NULL))) tok = j - i;
            if (num != small) free(num);
            if (!tok) {
                memcpy(o + n, js + i, j - i);
                n += j - i;
                i = j;
                continue;
            }
        }
        if (tok) {
            memcpy(o + n, NONFINITE, sizeof NONFINITE - 1);
            n += sizeof NONFINITE - 1;
            i += tok;
        } else {
            o[n++] = c;
            i++;
        }
    }
    *out_len = n;
    return o;
}

int hd_layout_parse(const char *json, size_t len, const char *what, hd_layout *out,
                    hd_error *e) {
    memset(out, 0, sizeof *out);
    size_t n;
    char *text = python_json_tokens(json, len, &n);
    if (!text) return hd_fail(e, HD_ENOMEM, "%s: out of memory", what);
    json_error_t jerr;
    /* any top-level value (like Python's json.loads); integers as doubles (Python's float(v)
     * of any integer, however large) */
    json_t *root =
        json_loadb(text, n, JSON_DECODE_ANY | JSON_DECODE_INT_AS_REAL | JSON_ALLOW_NUL, &jerr);
    free(text);
    if (!root)
        return hd_fail(e, HD_EFORMAT, "%s: layout JSON error at line %d column %d: %s", what,
                       jerr.line, jerr.column, jerr.text);
    int rc = parse_boxes(root, what, out, e);
    json_decref(root);
    if (rc < 0) hd_layout_free(out);
    return rc;
}

static int looks_inline(const char *arg) {
    while (*arg == ' ' || *arg == '\t' || *arg == '\n' || *arg == '\r') arg++;
    return *arg == '[' || *arg == '{';
}

int hd_layout_read(const char *arg, char **text, hd_error *e) {
    *text = NULL;
    struct stat sb;
    if (stat(arg, &sb) != 0) {
        /* upstream: an existing file is read, anything else is JSON text; a path that does not
         * exist is reported as such instead of as a JSON syntax error */
        if (!looks_inline(arg))
            return hd_fail(e, HD_EIO, "'%.200s': no such layout file (and not inline JSON)", arg);
        if (strlen(arg) > MAX_LAYOUT_BYTES)
            return hd_fail(e, HD_EINVAL, "inline layout: longer than %zu bytes", MAX_LAYOUT_BYTES);
        *text = strdup(arg);
        return *text ? 0 : hd_fail(e, HD_ENOMEM, "layout: out of memory");
    }
    size_t n;
    int rc = hd_read_file(arg, MAX_LAYOUT_BYTES, text, &n, e);
    if (rc == HD_ENOMEM)
        return hd_fail(e, HD_EINVAL, "%s: layout file is larger than %zu bytes", arg,
                       MAX_LAYOUT_BYTES);
    return rc;
}

int hd_layout_load(const char *arg, hd_layout *out, hd_error *e) {
    memset(out, 0, sizeof *out);
    char *buf;
    HD_TRY(hd_layout_read(arg, &buf, e));
    int rc = hd_layout_parse(buf, strlen(buf), looks_inline(arg) ? "layout_bboxes" : arg, out, e);
    free(buf);
    return rc;
}

/* Python round(): half to even (rint in the default rounding mode). */
static double clamp_round(double v, int hi) {
    double r = rint(v);
    if (r < 0) r = 0;
    if (r > hi) r = hi;
    return r;
}

int hd_layout_to_pixels(const hd_layout *l, int w, int h, hd_layout_rect *out, hd_error *e) {
    if (w < 1 || h < 1)
        return hd_fail(e, HD_EINVAL, "layout: target size %dx%d is empty", w, h);
    for (int i = 0; i < l->n; i++) {
        double x1 = l->boxes[i].v[0], x2 = l->boxes[i].v[1];
        double y1 = l->boxes[i].v[2], y2 = l->boxes[i].v[3];
        double mx = fmax(fmax(fabs(x1), fabs(y1)), fmax(fabs(x2), fabs(y2)));
        if (mx <= 1.0) {
            x1 = x1 * w, x2 = x2 * w;
            y1 = y1 * h, y2 = y2 * h;
        } else if (mx <= 100.0) {
            x1 = x1 / 100.0 * w, x2 = x2 / 100.0 * w;
            y1 = y1 / 100.0 * h, y2 = y2 / 100.0 * h;
        }
        if (x2 < x1) {
            double t = x1;
            x1 = x2, x2 = t;
        }
        if (y2 < y1) {
            double t = y1;
            y1 = y2, y2 = t;
        }
        hd_layout_rect r = {(int)clamp_round(x1, w - 1), (int)clamp_round(y1, h - 1),
                            (int)clamp_round(x2, w - 1), (int)clamp_round(y2, h - 1)};
        if (r.x2 <= r.x1 || r.y2 <= r.y1)
            return hd_fail(e, HD_EINVAL,
                           "layout box %d [%g, %g, %g, %g] (x1, x2, y1, y2) is empty after "
                           "scaling to %dx%d and clamping: [x1=%d, y1=%d, x2=%d, y2=%d]",
                           i, l->boxes[i].v[0], l->boxes[i].v[1], l->boxes[i].v[2],
                           l->boxes[i].v[3], w, h, r.x1, r.y1, r.x2, r.y2);
        out[i] = r;
    }
    return 0;
}

/* ---- drawing (Pillow 9.4 Draw.c semantics) ------------------------------------------------ */

static void hline(hd_image *im, int64_t x0, int64_t y, int64_t x1, const uint8_t rgb[3]) {
    if (y < 0 || y >= im->h) return;
    if (x0 > x1) {
        int64_t t = x0;
        x0 = x1, x1 = t;
    }
    if (x0 < 0) x0 = 0;
    else if (x0 >= im->w) return;
    if (x1 < 0) return;
    if (x1 >= im->w) x1 = im->w - 1;
    for (int64_t x = x0; x <= x1; x++) memcpy(hd_image_at(im, (int)x, (int)y), rgb, 3);
}

/* Pillow's line() for a vertical segment: |y1 - y0| points from y0 towards y1, the end point
 * excluded. Only the points inside the picture are visited. */
static void vline(hd_image *im, int64_t x, int64_t y0, int64_t y1, const uint8_t rgb[3]) {
    if (x < 0 || x >= im->w || y0 == y1) return;
    int64_t lo = y0 < y1 ? y0 : y1 + 1, hi = y0 < y1 ? y1 - 1 : y0;
    if (lo < 0) lo = 0;
    if (hi >= im->h) hi = im->h - 1;
    for (int64_t y = lo; y <= hi; y++) memcpy(hd_image_at(im, (int)x, (int)y), rgb, 3);
}

void hd_draw_rectangle(hd_image *im, int x0, int y0, int x1, int y1, const uint8_t rgb[3],
                       int width) {
    if (y0 > y1) {
        int t = y0;
        y0 = y1, y1 = t;
    }
    if (width == 0) width = 1;
    /* Pillow draws, for i < width: rows y0+i and y1-i, columns x1-i and x0+i. All strokes have
     * one colour, so their order does not matter, and a step i draws something only when one of
     * them is inside the picture: visit just those i (hostile coordinates stay cheap). */
    const int64_t W = im->w, H = im->h;
    const int64_t ranges[4][2] = {{-(int64_t)y0, H - y0}, {(int64_t)y1 - H + 1, (int64_t)y1 + 1},
                                  {(int64_t)x1 - W + 1, (int64_t)x1 + 1}, {-(int64_t)x0, W - x0}};
    for (int r = 0; r < 4; r++) {
        int64_t lo = ranges[r][0] > 0 ? ranges[r][0] : 0;
        int64_t hi = ranges[r][1] < width ? ranges[r][1] : width;
        for (int64_t i = lo; i < hi; i++) {
            hline(im, x0, (int64_t)y0 + i, x1, rgb);
            hline(im, x0, (int64_t)y1 - i, x1, rgb);
            vline(im, (int64_t)x1 - i, (int64_t)y0 + width, (int64_t)y1 - width + 1, rgb);
            vline(im, (int64_t)x0 + i, (int64_t)y0 + width, (int64_t)y1 - width + 1, rgb);
        }
    }
}

void hd_draw_border(hd_image *im, const uint8_t rgb[3], int width) {
    /* rectangles past the larger side lie wholly outside the picture */
    int n = im->w > im->h ? im->w : im->h;
    if (width < n) n = width;
    for (int t = 0; t < n; t++)
        hd_draw_rectangle(im, t, t, im->w - 1 - t, im->h - 1 - t, rgb, 1);
}

/* upstream _bbox_area: max(0, x2 - x1) * max(0, y2 - y1) */
static int64_t rect_area(const hd_layout_rect *r) {
    int64_t dx = (int64_t)r->x2 - r->x1, dy = (int64_t)r->y2 - r->y1;
    return (dx > 0 ? dx : 0) * (dy > 0 ? dy : 0);
}

int hd_layout_border_width(int w, int h) { return (int)(sqrt((double)w * (double)h) * 0.04); }

int hd_layout_draw(const hd_layout_rect *rects, int n, int w, int h, hd_image *out,
                   uint8_t (*box_color)[3], int *box_drawn, hd_error *e) {
    HD_TRY(hd_image_alloc(out, w, h, e));
    double edge = sqrt((double)w * (double)h);
    int max_line = (int)(edge * 0.05);
    int gap = max_line / HD_LAYOUT_MAX_DRAWN;
    if (gap < 1) gap = 1;
    if (box_drawn)
        for (int i = 0; i < n; i++) box_drawn[i] = 0;
    /* the HD_LAYOUT_MAX_DRAWN largest boxes, by area, ties in input order (a stable sort) */
    int order[HD_LAYOUT_MAX_DRAWN], n_drawn = 0;
    for (int i = 0; i < n; i++) {
        int64_t a = rect_area(&rects[i]);
        int pos = n_drawn;
        while (pos > 0 && rect_area(&rects[order[pos - 1]]) < a) pos--;
        if (pos >= HD_LAYOUT_MAX_DRAWN) continue;
        int last = n_drawn < HD_LAYOUT_MAX_DRAWN ? n_drawn : HD_LAYOUT_MAX_DRAWN - 1;
        for (int j = last; j > pos; j--) order[j] = order[j - 1];
        order[pos] = i;
        if (n_drawn < HD_LAYOUT_MAX_DRAWN) n_drawn++;
    }
    for (int k = 0; k < n_drawn; k++) {
        const hd_layout_rect *r = &rects[order[k]];
        const uint8_t *c = hd_layout_color(k);
        int width = max_line - k * gap;
        if (width < 5) width = 5;
        hd_draw_rectangle(out, r->x1, r->y1, r->x2, r->y2, c, width);
        if (box_color) memcpy(box_color[order[k]], c, 3);
        if (box_drawn) box_drawn[order[k]] = 1;
    }
    return 0;
}
