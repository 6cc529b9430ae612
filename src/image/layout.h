/* Layout boxes for personalization with layout (spec 06 §5): parsing the --layout_bboxes
 * argument, converting boxes to pixels, drawing the layout image and the reference borders with
 * Pillow's ImageDraw.rectangle semantics.
 *
 * The official pipeline treats the two kinds of bad input differently, and so do we:
 *   - the argument is not JSON (a syntax error in the text or in the file): upstream prints a
 *     warning and generates WITHOUT the layout (K is not incremented). hd_layout_load returns
 *     HD_EFORMAT for exactly this case; the caller should warn and carry on without layout.
 *   - the JSON is valid but not an accepted box list, or a box is invalid after scaling and
 *     clamping: upstream aborts the generation. hd_layout_load / hd_layout_to_pixels return
 *     HD_EINVAL naming the box; the caller must stop before any compute. */
#ifndef HD_IMAGE_LAYOUT_H
#define HD_IMAGE_LAYOUT_H

#include <stddef.h>
#include <stdint.h>

#include "image/image.h"

#define HD_LAYOUT_MAX_DRAWN 5   /* only the 5 largest boxes are drawn */
#define HD_LAYOUT_N_COLORS 10

typedef struct hd_layout_box {
    double v[4];  /* as given, in xxyy order: x1, x2, y1, y2 (fractions, percent or pixels) */
    char *label;  /* "text" or "label" if given (upstream parses and ignores it), else NULL */
} hd_layout_box;

typedef struct hd_layout {
    int n;
    hd_layout_box *boxes;
} hd_layout;

/* A box in pixels for a given target size: corners (x1, y1), (x2, y2) inclusive, x1 < x2 and
 * y1 < y2, inside the picture. */
typedef struct hd_layout_rect {
    int x1, y1, x2, y2;
} hd_layout_rect;

/* arg is the path of a JSON file if a file of that name exists, else the JSON text itself.
 * (Upstream ignores an empty argument silently: do not call this for "".) JSON is read as
 * Python's json.loads reads it, so NaN, Infinity and overflowing numbers parse, and are refused
 * (HD_EINVAL) only where a coordinate is read.
 * Accepted shapes: a list of boxes, or an object whose first present key among layout_bboxes,
 * bboxes, boxes, bbox_list holds the list; a box is a list of 4 numbers or an object with
 * "bbox" (or "box") = 4 numbers and an optional "text"/"label". See the header comment for the
 * meaning of HD_EFORMAT and HD_EINVAL. */
int hd_layout_load(const char *arg, hd_layout *out, hd_error *e);

/* The layout argument's JSON text (malloc'd): the file's content when a file of that name
 * exists (a regular file, at most 64 KiB), else the argument itself when it looks like JSON
 * ('[' or '{' first). A path that does not exist or cannot be read is HD_EIO, not a JSON
 * error: a mistyped file name is not silently skipped. */
int hd_layout_read(const char *arg, char **text, hd_error *e);
/* Same for JSON text in memory; `what` names it in messages. */
int hd_layout_parse(const char *json, size_t len, const char *what, hd_layout *out, hd_error *e);
void hd_layout_free(hd_layout *l);

/* Box i -> pixels for a w x h target (upstream _xxyy_relative_to_absolute_bbox): values with
 * max |v| <= 1 are fractions, <= 100 percentages, else pixels; sorted, rounded half to even,
 * clamped to the picture. HD_EINVAL if a box is empty afterwards. out has l->n entries. */
int hd_layout_to_pixels(const hd_layout *l, int w, int h, hd_layout_rect *out, hd_error *e);

/* Colour k of the layout palette (k taken modulo 10). */
const uint8_t *hd_layout_color(int k);

/* The w x h layout image: black, the (at most 5) largest boxes outlined, box of rank k in
 * COLORS[k] with width max(max_line - k*gap, 5). box_color[i] (n entries, may be NULL) gets the
 * colour box i was drawn in, and box_drawn[i] (may be NULL) whether it was drawn. */
int hd_layout_draw(const hd_layout_rect *rects, int n, int w, int h, hd_image *out,
                   uint8_t (*box_color)[3], int *box_drawn, hd_error *e);

/* Pillow ImageDraw.rectangle([x0, y0, x1, y1], outline=rgb, width=width) on an RGB image,
 * including its behaviour for widths larger than the rectangle and for swapped corners. */
void hd_draw_rectangle(hd_image *im, int x0, int y0, int x1, int y1, const uint8_t rgb[3],
                       int width);

/* Upstream add_outer_border_keep_size: `width` nested 1-pixel rectangles inside the edges. */
void hd_draw_border(hd_image *im, const uint8_t rgb[3], int width);

/* Border width of a reference image: int(0.04 * sqrt(w*h)). */
int hd_layout_border_width(int w, int h);

#endif
