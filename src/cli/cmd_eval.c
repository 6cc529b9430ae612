/* `hidream eval shapes`: the spec-09 judge over a model's pictures (generated here exactly as
 * `hidream generate -m DIR -p PROMPT --seed S` would) or over a folder of PNG + .txt prompts.
 * Prints a table (overall and per category) and can write a grid of the failures. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/exit_codes.h"
#include "cli/precision_cli.h"
#include "cli/embedded_model.h"
#include "data/folder.h"
#include "data/prng.h"
#include "data/shapes_prompt.h"
#include "data/shapes_score.h"
#include "data/text_file.h"
#include "hidream.h"
#include "image/codec.h"
#include "image/image.h"

enum { GRID_GAP = 2 };

typedef struct eval_opts {
    const char *model, *images, *grid, *save;
    long n, threads;
    uint64_t seed;
    int verbose;
    precision_cli prec;
} eval_opts;

/* the failures kept for the grid, in order */
typedef struct failures {
    hd_image *im;
    char (*prompt)[HD_SHAPES_PROMPT_MAX + 200];
    int n, cap;
} failures;

static void usage(FILE *f) {
    fprintf(f,
            "usage: hidream eval shapes [-m DIR] [--n 300] [--seed S] [--grid FAILS.png] "
            "[--threads N] [--precision MODE] [-v]\n"
            "       hidream eval shapes --images DIR [--grid FAILS.png] [-v]\n"
            "  -m, --model DIR   model to judge (default: the embedded model); prompt i is drawn\n"
            "                    from the world with seed S, its picture generated with the\n"
            "                    model's defaults and seed S + i\n"
            "  --images DIR      judge existing pictures: NAME.png with its prompt in NAME.txt\n"
            "  --n N             prompts to judge (default 300)\n"
            "  --seed S          (default 0)\n"
            "  --grid F.png      write the failed pictures as a grid (their prompts and reasons\n"
            "                    in F.png.txt, in grid order)\n"
            "  --save DIR        also write each generated picture as DIR/NNNNNN.png with its\n"
            "                    prompt in NNNNNN.txt (judge it again with --images DIR)\n"
            "  --threads N       CPU threads for generation (default: all)\n"
            "  --precision auto|exact|bf16|int8   the model's matrix products (default auto, as\n"
            "                    generate); --exact, --bf16-gemm, --int8 are its shorthands\n"
            "  -v, --verbose     one line per picture\n");
}

static int keep_failure(failures *f, const hd_image *im, const char *prompt, const char *why) {
    if (f->n == f->cap) {
        int cap = f->cap ? 2 * f->cap : 16;
        hd_image *a = realloc(f->im, (size_t)cap * sizeof *a);
        if (a) f->im = a;
        void *b = realloc(f->prompt, (size_t)cap * sizeof *f->prompt);
        if (b) f->prompt = b;
        if (!a || !b) return -1;
        f->cap = cap;
    }
    hd_error e;
    if (hd_image_copy(&f->im[f->n], im, &e) < 0) return -1;
    snprintf(f->prompt[f->n], sizeof f->prompt[f->n], "%s\t%s", prompt, why);
    f->n++;
    return 0;
}

static void free_failures(failures *f) {
    for (int i = 0; i < f->n; i++) hd_image_free(&f->im[i]);
    free(f->im);
    free(f->prompt);
}

static int write_grid(const char *path, const failures *f) {
    hd_error e = {0};
    if (f->n == 0) {
        printf("no failures: %s not written\n", path);
        return 0;
    }
    int cw = 1, ch = 1, cols = 1;
    for (int i = 0; i < f->n; i++) {
        if (f->im[i].w > cw) cw = f->im[i].w;
        if (f->im[i].h > ch) ch = f->im[i].h;
    }
    while (cols * cols < f->n) cols++;
    int rows = (f->n + cols - 1) / cols;
    hd_image g = {0};
    if (hd_image_alloc(&g, cols * (cw + GRID_GAP) + GRID_GAP, rows * (ch + GRID_GAP) + GRID_GAP,
                       &e) < 0) {
        fprintf(stderr, "hidream eval: --grid: %s\n", e.msg);
        return 2;
    }
    memset(g.px, 255, (size_t)g.w * (size_t)g.h * 3);
    for (int i = 0; i < f->n; i++) {
        int x0 = GRID_GAP + (i % cols) * (cw + GRID_GAP), y0 = GRID_GAP + (i / cols) * (ch + GRID_GAP);
        for (int y = 0; y < f->im[i].h; y++)
            memcpy(hd_image_at(&g, x0, y0 + y), hd_image_at(&f->im[i], 0, y),
                   (size_t)f->im[i].w * 3);
    }
    int rc = hd_image_save(path, &g, NULL, &e);
    hd_image_free(&g);
    size_t cap = (size_t)f->n * sizeof f->prompt[0], len = 0;
    char *list = rc == 0 ? malloc(cap + 1) : NULL;
    if (list) {
        for (int i = 0; i < f->n; i++) len += (size_t)sprintf(list + len, "%s\n", f->prompt[i]);
        char txt[4096];
        snprintf(txt, sizeof txt, "%s.txt", path);
        rc = hd_write_text_file(txt, list, len, &e);
        free(list);
    } else if (rc == 0)
        rc = -1, snprintf(e.msg, sizeof e.msg, "out of memory");
    if (rc < 0) {
        fprintf(stderr, "hidream eval: --grid: %s\n", e.msg);
        return 2;
    }
    printf("%d failures: %s (prompts in %s.txt)\n", f->n, path, path);
    return 0;
}

static void print_table(const hd_shapes_tally *t) {
    printf("%-12s %8s %6s %9s\n", "category", "correct", "total", "fraction");
    for (int c = 0; c <= HD_N_CATEGORIES; c++)
        printf("%-12s %8ld %6ld %9.3f\n",
               c < HD_N_CATEGORIES ? hd_category_name((hd_shapes_category)c) : "overall",
               t->correct[c], t->total[c], hd_shapes_tally_fraction(t, c));
}

/* one judged picture: tally, optional line, failure kept for the grid */
static int record(const eval_opts *o, hd_shapes_tally *t, failures *f, const char *name,
                  const hd_image *im, const hd_shapes_prompt *p, const char *prompt) {
    hd_shapes_verdict v;
    hd_shapes_judge_parsed(im, p, &v);
    hd_shapes_tally_add(t, &v);
    if (o->verbose) printf("%-14s %-4s %s  [%s]\n", name, v.correct ? "ok" : "FAIL", prompt, v.reason);
    if (!v.correct && o->grid && keep_failure(f, im, prompt, v.reason) < 0) {
        fprintf(stderr, "hidream eval: out of memory keeping failures\n");
        return -1;
    }
    return 0;
}

static int eval_images(const eval_opts *o, hd_shapes_tally *t, failures *f) {
    hd_error e = {0};
    hd_folder *fo;
    const int one[1][2] = {{1, 1}};
    if (hd_folder_open(&fo, o->images, 1, one, &e) < 0) {
        fprintf(stderr, "hidream eval: %s\n", e.msg);
        return 2;
    }
    int rc = 0;
    for (int64_t i = 0; i < hd_folder_count(fo, 0) && !rc; i++) {
        const char *name = hd_folder_name(fo, 0, i), *prompt = hd_folder_caption(fo, 0, i);
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", o->images, name);
        hd_shapes_prompt p;
        hd_image im = {0};
        if (hd_shapes_prompt_parse(prompt, &p, &e) < 0 || hd_image_load(path, &im, &e) < 0) {
            fprintf(stderr, "hidream eval: %s: %s\n", path, e.msg);
            rc = 2;
            break;
        }
        if (record(o, t, f, name, &im, &p, prompt) < 0) rc = 2;
        hd_image_free(&im);
    }
    hd_folder_close(fo);
    return rc;
}

static int save_picture(const char *dir, long i, const hd_image *im, const char *prompt) {
    char path[4096];
    hd_error e = {0};
    snprintf(path, sizeof path, "%s/%06ld.txt", dir, i);
    int rc = hd_write_text_file(path, prompt, strlen(prompt), &e);
    snprintf(path, sizeof path, "%s/%06ld.png", dir, i);
    if (rc == 0) rc = hd_image_save(path, im, NULL, &e);
    if (rc < 0) fprintf(stderr, "hidream eval: --save: %s\n", e.msg);
    return rc;
}

static int eval_model(const eval_opts *o, hd_shapes_tally *t, failures *f) {
    char embedded[4096], searched[8192];
    const char *dir = o->model;
    if (!dir) {
        if (hd_find_embedded_model(embedded, sizeof embedded, searched, sizeof searched) < 0) {
            fprintf(stderr, "hidream eval: no -m/--model given and no embedded model found "
                            "(looked in %s)\n", searched);
            return 2;
        }
        dir = embedded;
    }
    struct stat sb;
    if (o->save && stat(o->save, &sb) != 0 && mkdir(o->save, 0777) != 0) {
        fprintf(stderr, "hidream eval: --save: cannot create '%s': %s\n", o->save, strerror(errno));
        return 2;
    }
    hd_error e = {0};
    hd_model *m = NULL;
    hd_model_options mo = {.backend = "cpu", .n_threads = (int)o->threads,
                           .precision = o->prec.value};
    if (hd_model_load(&m, dir, &mo, &e) < 0) {
        fprintf(stderr, "hidream eval: %s\n", e.msg);
        return 2;
    }
    int rc = 0, tty = isatty(2);
    for (long i = 0; i < o->n && !rc; i++) {
        hd_prng r;
        hd_prng_seed(&r, hd_prng_derive(o->seed, (uint64_t)i));
        hd_shapes_prompt sp;
        hd_shapes_prompt_sample(&r, &sp);
        char prompt[HD_SHAPES_PROMPT_MAX], name[32];
        hd_shapes_prompt_format(&sp, prompt, sizeof prompt);
        /* exactly `hidream generate -m DIR -p PROMPT --seed S+i` */
        hd_generate_params p;
        hd_model_generate_defaults(m, &p, HD_MODE_FULL);
        p.prompt = prompt;
        p.seed = o->seed + (uint64_t)i;
        hd_image im = {0};
        int grc = hd_generate(m, &p, &im, &e);
        if (grc < 0) {
            fprintf(stderr, "hidream eval: '%s' (seed %" PRIu64 "): %s\n", prompt, p.seed, e.msg);
            rc = hd_exit_code(grc);
            break;
        }
        if (o->save && save_picture(o->save, i, &im, prompt) < 0) rc = HD_EXIT_OUTPUT;
        snprintf(name, sizeof name, "seed %" PRIu64, p.seed);
        if (record(o, t, f, name, &im, &sp, prompt) < 0) rc = 2;
        if (tty && !o->verbose)
            fprintf(stderr, "\reval shapes: %ld/%ld pictures, %ld correct", i + 1, o->n,
                    t->correct[HD_N_CATEGORIES]);
        hd_image_free(&im);
    }
    if (tty && !o->verbose) fputc('\n', stderr);
    hd_model_free(m);
    return rc;
}

static int parse_long(const char *flag, const char *s, long lo, long hi, long *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || end == s || v < lo || v > hi) {
        fprintf(stderr, "hidream eval: %s: '%s' is not an integer in [%ld, %ld]\n", flag, s, lo,
                hi);
        return -1;
    }
    *out = v;
    return 0;
}

static int parse_args(int argc, char **argv, eval_opts *o) {
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-v") || !strcmp(a, "--verbose")) {
            o->verbose = 1;
            continue;
        }
        int pr = precision_cli_flag(&o->prec, "hidream eval", argc, argv, &i);
        if (pr < 0) return -1;
        if (pr > 0) continue;
        int takes = !strcmp(a, "-m") || !strcmp(a, "--model") || !strcmp(a, "--images") ||
                    !strcmp(a, "--n") || !strcmp(a, "--seed") || !strcmp(a, "--grid") ||
                    !strcmp(a, "--threads") || !strcmp(a, "--save");
        if (!takes) {
            fprintf(stderr, "hidream eval: unknown option '%s' (see --help)\n", a);
            return -1;
        }
        if (!val) {
            fprintf(stderr, "hidream eval: %s needs a value\n", a);
            return -1;
        }
        i++;
        if (!strcmp(a, "-m") || !strcmp(a, "--model")) o->model = val;
        else if (!strcmp(a, "--images")) o->images = val;
        else if (!strcmp(a, "--grid")) o->grid = val;
        else if (!strcmp(a, "--save")) o->save = val;
        else if (!strcmp(a, "--n")) {
            if (parse_long(a, val, 1, 1000000, &o->n)) return -1;
        } else if (!strcmp(a, "--threads")) {
            if (parse_long(a, val, 1, 1024, &o->threads)) return -1;
        } else {
            char *end;
            errno = 0;
            unsigned long long u = strtoull(val, &end, 10);
            if (*val == '-' || errno || *end || end == val) {
                fprintf(stderr, "hidream eval: --seed: '%s' is not an unsigned integer\n", val);
                return -1;
            }
            o->seed = u;
        }
    }
    if (o->prec.flag && o->images) {
        fprintf(stderr, "hidream eval: %s goes with -m (a model), not --images\n", o->prec.flag);
        return -1;
    }
    if (o->save && o->images) {
        fprintf(stderr, "hidream eval: --save goes with -m (a model), not --images\n");
        return -1;
    }
    if (o->model && o->images) {
        fprintf(stderr, "hidream eval: give -m DIR or --images DIR, not both\n");
        return -1;
    }
    if (o->grid && hd_image_format_from_name(o->grid) == HD_FMT_UNKNOWN) {
        fprintf(stderr, "hidream eval: --grid: %s: unknown format (use .png, .jpg or .webp)\n",
                o->grid);
        return -1;
    }
    return 0;
}

int cmd_eval(int argc, char **argv) {
    if (argc >= 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
        usage(stdout);
        return 0;
    }
    if (argc < 2 || strcmp(argv[1], "shapes")) {
        fprintf(stderr, "hidream eval: the only benchmark is 'shapes' (hidream eval shapes ...)\n");
        return 2;
    }
    for (int i = 2; i < argc; i++)
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            usage(stdout);
            return 0;
        }
    eval_opts o = {.n = 300};
    if (parse_args(argc, argv, &o) < 0) return 2;
    hd_shapes_tally t = {0};
    failures f = {0};
    int rc = o.images ? eval_images(&o, &t, &f) : eval_model(&o, &t, &f);
    if (rc == 0) {
        print_table(&t);
        if (o.grid) rc = write_grid(o.grid, &f);
    }
    free_failures(&f);
    return rc;
}
