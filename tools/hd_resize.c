/* hd_resize: drives the image code from the command line, for the Pillow parity test
 * (tests/pillow_parity.py) and for manual checks. Every output picture is written as PNG.
 *
 *   hd_resize resize IN OUT W H FILTER      Image.resize((W, H), FILTER)   box|bilinear|bicubic|lanczos
 *   hd_resize prep IN OUT SIZE              upstream resize_pilimage(img, SIZE, 32)
 *   hd_resize convert IN OUT                Image.open(IN).convert("RGB")
 *   hd_resize crop IN OUT L T R B           Image.crop((L, T, R, B))
 *   hd_resize rect IN OUT X0 Y0 X1 Y1 R G B WIDTH   ImageDraw.rectangle(outline, width)
 *   hd_resize border IN OUT R G B WIDTH     upstream add_outer_border_keep_size
 *   hd_resize layout OUT W H JSON           upstream draw_bbox_layout for parsed boxes
 *   hd_resize batch FILE                    one of the commands above per line
 *
 * Exit status 0 on success, 1 on the first failing command (message on stderr). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "image/codec.h"
#include "image/layout.h"
#include "image/refs.h"
#include "image/resample.h"

#define MAX_ARGS 16

static int to_int(const char *s, int *out) {
    char *end;
    long v = strtol(s, &end, 10);
    if (end == s || *end || v < -1000000000L || v > 1000000000L) return -1;
    *out = (int)v;
    return 0;
}

static int save_png(const char *path, const hd_image *im, hd_error *e) {
    return hd_image_save(path, im, NULL, e);
}

static int run(int argc, char **argv, hd_error *e) {
    if (argc < 1) return hd_fail(e, HD_EINVAL, "no command");
    const char *cmd = argv[0];
    int v[10];
    hd_image in = {0}, out = {0};
    int rc;
#define NEED(n) \
    if (argc != (n)) return hd_fail(e, HD_EINVAL, "%s: expected %d arguments", cmd, (n) - 1)
#define INTS(first, count)                                                        \
    for (int i_ = 0; i_ < (count); i_++)                                          \
        if (to_int(argv[(first) + i_], &v[i_]) < 0)                               \
            return hd_fail(e, HD_EINVAL, "%s: bad number '%s'", cmd, argv[(first) + i_]);
    if (strcmp(cmd, "resize") == 0) {
        NEED(6);
        INTS(3, 2);
        int f = hd_filter_parse(argv[5]);
        if (f < 0) return hd_fail(e, HD_EINVAL, "unknown filter '%s'", argv[5]);
        HD_TRY(hd_image_load(argv[1], &in, e));
        rc = hd_image_resize(&in, v[0], v[1], (hd_filter)f, &out, e);
    } else if (strcmp(cmd, "prep") == 0) {
        NEED(4);
        INTS(3, 1);
        HD_TRY(hd_image_load(argv[1], &in, e));
        rc = hd_resize_pilimage(&in, v[0], 32, &out, e);
    } else if (strcmp(cmd, "convert") == 0) {
        NEED(3);
        HD_TRY(hd_image_load(argv[1], &in, e));
        rc = hd_image_copy(&out, &in, e);
    } else if (strcmp(cmd, "crop") == 0) {
        NEED(7);
        INTS(3, 4);
        HD_TRY(hd_image_load(argv[1], &in, e));
        rc = hd_image_crop(&out, &in, v[0], v[1], v[2], v[3], e);
    } else if (strcmp(cmd, "rect") == 0) {
        NEED(11);
        INTS(3, 8);
        HD_TRY(hd_image_load(argv[1], &in, e));
        uint8_t c[3] = {(uint8_t)v[4], (uint8_t)v[5], (uint8_t)v[6]};
        hd_draw_rectangle(&in, v[0], v[1], v[2], v[3], c, v[7]);
        out = in;
        in.px = NULL;
        rc = 0;
    } else if (strcmp(cmd, "border") == 0) {
        NEED(7);
        INTS(3, 4);
        HD_TRY(hd_image_load(argv[1], &in, e));
        uint8_t c[3] = {(uint8_t)v[0], (uint8_t)v[1], (uint8_t)v[2]};
        hd_draw_border(&in, c, v[3]);
        out = in;
        in.px = NULL;
        rc = 0;
    } else if (strcmp(cmd, "layout") == 0) {
        NEED(5);
        INTS(2, 2);
        hd_layout l;
        HD_TRY(hd_layout_parse(argv[4], strlen(argv[4]), "layout", &l, e));
        hd_layout_rect *r = calloc(l.n ? (size_t)l.n : 1, sizeof *r);
        rc = r ? hd_layout_to_pixels(&l, v[0], v[1], r, e) : hd_fail(e, HD_ENOMEM, "oom");
        if (rc == 0) rc = hd_layout_draw(r, l.n, v[0], v[1], &out, NULL, NULL, e);
        free(r);
        hd_layout_free(&l);
        if (rc == 0) rc = save_png(argv[1], &out, e);
        hd_image_free(&out);
        return rc;
    } else {
        return hd_fail(e, HD_EINVAL, "unknown command '%s'", cmd);
    }
    if (rc == 0) rc = save_png(argv[2], &out, e);
    hd_image_free(&in);
    hd_image_free(&out);
    return rc;
#undef NEED
#undef INTS
}

/* Splits a line on spaces; a field starting with ' runs to the next ' (for JSON). */
static int split(char *line, char **argv) {
    int n = 0;
    char *p = line;
    while (*p && n < MAX_ARGS) {
        while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') p++;
        if (!*p) break;
        if (*p == '\'') {
            argv[n++] = ++p;
            while (*p && *p != '\'') p++;
        } else {
            argv[n++] = p;
            while (*p && *p != ' ' && *p != '\t' && *p != '\n' && *p != '\r') p++;
        }
        if (*p) *p++ = 0;
    }
    return n;
}

int main(int argc, char **argv) {
    hd_error e = {0};
    if (argc >= 3 && strcmp(argv[1], "batch") == 0) {
        FILE *f = strcmp(argv[2], "-") == 0 ? stdin : fopen(argv[2], "r");
        if (!f) {
            fprintf(stderr, "hd_resize: cannot open %s\n", argv[2]);
            return 1;
        }
        char line[65536];
        int lineno = 0;
        while (fgets(line, sizeof line, f)) {
            lineno++;
            char *args[MAX_ARGS];
            int n = split(line, args);
            if (n == 0) continue;
            if (run(n, args, &e) < 0) {
                fprintf(stderr, "hd_resize: line %d: %s\n", lineno, e.msg);
                if (f != stdin) fclose(f);
                return 1;
            }
        }
        if (f != stdin) fclose(f);
        return 0;
    }
    if (argc < 2) {
        fprintf(stderr, "usage: hd_resize resize|prep|convert|crop|rect|border|layout|batch ...\n");
        return 2;
    }
    if (run(argc - 1, argv + 1, &e) < 0) {
        fprintf(stderr, "hd_resize: %s\n", e.msg);
        return 1;
    }
    return 0;
}
