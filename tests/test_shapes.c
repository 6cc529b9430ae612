/* The shapes world (spec 09): prompt grammar, placement, renderer, the §5 judge, the captioned
 * folder with aspect buckets, the dataset interface and the world's tokenizer. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "data/dataset.h"
#include "data/folder.h"
#include "data/shapes.h"
#include "data/shapes_score.h"
#include "data/shapes_tokenizer.h"
#include "image/codec.h"
#include "image/image.h"
#include "io/config.h"
#include "testutil.h"
#include "text/chat_template.h"
#include "text/tokenizer.h"

static char tmpdir[512];

/* ---- prompts -------------------------------------------------------------------------------- */

static void prompt_sampler_emits_only_grammar_strings(void) {
    hd_prng r;
    hd_prng_seed(&r, 7);
    long per_cat[HD_N_CATEGORIES] = {0};
    int bad = 0;
    const int n = 20000;
    for (int i = 0; i < n; i++) {
        hd_shapes_prompt p, q;
        char a[HD_SHAPES_PROMPT_MAX], b[HD_SHAPES_PROMPT_MAX];
        hd_shapes_prompt_sample(&r, &p);
        hd_shapes_prompt_format(&p, a, sizeof a);
        hd_error e = {0};
        if (hd_shapes_prompt_parse(a, &q, &e) < 0) {
            if (bad++ < 5) fprintf(stderr, "not in the grammar: '%s': %s\n", a, e.msg);
            continue;
        }
        hd_shapes_prompt_format(&q, b, sizeof b);
        if (strcmp(a, b) || memcmp(&p, &q, sizeof p)) bad++;
        per_cat[p.category]++;
        if (p.category == HD_CAT_TWO)
            CHECK(p.obj[0].colour != p.obj[1].colour || p.obj[0].shape != p.obj[1].shape);
    }
    CHECKF(bad == 0, "%d sampled prompts did not round-trip", bad);
    for (int c = 0; c < HD_N_CATEGORIES; c++)
        CHECKF(fabs(per_cat[c] / (double)n - 0.2) < 0.02, "category %d drawn %ld times", c,
               per_cat[c]);
}

static void parser_reads_the_spec_examples(void) {
    struct {
        const char *text;
        hd_shapes_category cat;
        int n;
    } ok[] = {
        {"a red circle", HD_CAT_SINGLE, 1},
        {"a large blue square on the left", HD_CAT_POSITION, 1},
        {"three yellow triangles", HD_CAT_COUNTING, 3},
        {"an orange square above a small green circle", HD_CAT_RELATION, 2},
        {"a purple triangle and a blue circle", HD_CAT_TWO, 2},
        {"an orange circle in the center", HD_CAT_POSITION, 1},
        {"a small orange triangle to the right of an orange circle", HD_CAT_RELATION, 2},
    };
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) {
        hd_shapes_prompt p;
        hd_error e = {0};
        int rc = hd_shapes_prompt_parse(ok[i].text, &p, &e);
        CHECKF(rc == 0 && p.category == ok[i].cat && p.n == ok[i].n, "'%s': %s", ok[i].text, e.msg);
    }
    hd_shapes_prompt p;
    hd_error e;
    hd_shapes_prompt_parse("an orange square above a small green circle", &p, &e);
    CHECK(p.obj[0].colour == HD_ORANGE && p.obj[0].shape == HD_SQUARE && p.relation == HD_REL_ABOVE);
    CHECK(p.obj[1].size == HD_SIZE_SMALL && p.obj[1].colour == HD_GREEN);
}

static void parser_rejects_strings_outside_the_grammar(void) {
    const char *bad[] = {"", "a red circle.", "A red circle", "a  red circle", " a red circle",
                         "a red circle ", "an red circle", "a orange circle", "a red circles",
                         "two red circle", "five red circles", "one red circle",
                         "two small red circles", "a red circle and a red circle",
                         "a red circle on the top", "a red circle to the left of",
                         "a huge red circle", "a red circle above two blue squares",
                         "a red circle on the left on the right", "a red pentagon",
                         "a red circle\n", "a red circle,", "a small large red circle",
                         "a red circle below", "red circle"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        hd_shapes_prompt p;
        hd_error e = {0};
        int rc = hd_shapes_prompt_parse(bad[i], &p, &e);
        CHECKF(rc == HD_EINVAL && strstr(e.msg, "prompt '") && !strchr(e.msg, '\n'),
               "'%s' accepted or bad message: %s", bad[i], e.msg);
    }
}

/* ---- world ---------------------------------------------------------------------------------- */

static void same_seed_same_world_other_seed_other_world(void) {
    hd_image a = {0}, b = {0}, c = {0}, d = {0};
    char pa[HD_SHAPES_PROMPT_MAX], pb[HD_SHAPES_PROMPT_MAX], pc[HD_SHAPES_PROMPT_MAX],
        pd[HD_SHAPES_PROMPT_MAX];
    hd_error e;
    int diff = 0;
    for (uint64_t s = 0; s < 50; s++) {
        CHECK(hd_shapes_draw(s, 64, 64, &a, pa, &e) == 0);
        CHECK(hd_shapes_draw(s, 64, 64, &b, pb, &e) == 0);
        CHECK(hd_shapes_draw(s + 1000, 64, 64, &c, pc, &e) == 0);
        CHECK(hd_shapes_draw(s, 96, 64, &d, pd, &e) == 0);
        CHECK(!strcmp(pa, pb) && !memcmp(a.px, b.px, 64 * 64 * 3));
        CHECK(!strcmp(pa, pd)); /* the prompt does not depend on the size */
        CHECK(d.w == 96 && d.h == 64);
        diff += strcmp(pa, pc) != 0 || memcmp(a.px, c.px, 64 * 64 * 3) != 0;
        hd_image_free(&a), hd_image_free(&b), hd_image_free(&c), hd_image_free(&d);
    }
    CHECK(diff == 50);
}

static int placement_ok(const hd_shapes_prompt *p, const hd_shapes_scene *s) {
    int w = s->w, h = s->h;
    double sm = w < h ? w : h;
    for (int i = 0; i < s->n; i++) {
        const hd_shapes_placed *o = &s->obj[i];
        double r = o->d / 2;
        if (o->cx - r < 4 || o->cy - r < 4 || o->cx + r > w - 4 || o->cy + r > h - 4) return 0;
        int large = o->d >= 0.28 * sm && o->d <= 0.36 * sm, small = o->d >= 0.14 * sm && o->d <= 0.20 * sm;
        if (!large && !small) return 0;
        if (p->obj[i].size == HD_SIZE_LARGE && !large) return 0;
        if (p->obj[i].size == HD_SIZE_SMALL && !small) return 0;
        for (int j = 0; j < i; j++) {
            const hd_shapes_placed *q = &s->obj[j];
            double gx = fabs(o->cx - q->cx) - (o->d + q->d) / 2, gy = fabs(o->cy - q->cy) - (o->d + q->d) / 2;
            if (gx < 4 && gy < 4) return 0;
        }
    }
    const hd_shapes_placed *a = &s->obj[0], *b = &s->obj[1];
    switch (p->position) {
    case HD_POS_LEFT: if (a->cx < 0.10 * w || a->cx > 0.35 * w) return 0; break;
    case HD_POS_RIGHT: if (a->cx < 0.65 * w || a->cx > 0.90 * w) return 0; break;
    case HD_POS_TOP: if (a->cy < 0.10 * h || a->cy > 0.35 * h) return 0; break;
    case HD_POS_BOTTOM: if (a->cy < 0.65 * h || a->cy > 0.90 * h) return 0; break;
    case HD_POS_CENTER:
        if (fabs(a->cx - w / 2.0) > 0.05 * w || fabs(a->cy - h / 2.0) > 0.05 * h) return 0;
        break;
    default: break;
    }
    switch (p->relation) {
    case HD_REL_LEFT_OF: return b->cx - a->cx >= 0.25 * w;
    case HD_REL_RIGHT_OF: return a->cx - b->cx >= 0.25 * w;
    case HD_REL_ABOVE: return b->cy - a->cy >= 0.25 * h;
    case HD_REL_BELOW: return a->cy - b->cy >= 0.25 * h;
    default: return 1;
    }
}

static void placement_keeps_sizes_margins_gaps_positions_relations(void) {
    const int sizes[][2] = {{64, 64}, {128, 64}, {48, 80}};
    hd_prng r;
    hd_prng_seed(&r, 11);
    int bad = 0;
    for (int k = 0; k < 3; k++)
        for (int i = 0; i < 1500; i++) {
            hd_shapes_prompt p;
            hd_shapes_scene s;
            hd_error e = {0};
            hd_shapes_prompt_sample(&r, &p);
            if (hd_shapes_place(&p, sizes[k][0], sizes[k][1], &r, &s, &e) < 0 || !placement_ok(&p, &s))
                bad++;
        }
    CHECKF(bad == 0, "%d placements break a rule", bad);
    hd_shapes_prompt p;
    hd_shapes_scene s;
    hd_error e = {0};
    hd_shapes_prompt_parse("four red squares", &p, &e);
    CHECK(hd_shapes_place(&p, 16, 64, &r, &s, &e) == HD_EINVAL && strstr(e.msg, "16x64"));
}

static void renderer_paints_exact_interiors_on_the_background(void) {
    hd_shapes_scene s = {.w = 64, .h = 48, .n = 3};
    s.obj[0] = (hd_shapes_placed){HD_RED, HD_CIRCLE, 14.3, 12.2, 13.7};
    s.obj[1] = (hd_shapes_placed){HD_BLUE, HD_SQUARE, 12.0, 40.0, 12.0};
    s.obj[2] = (hd_shapes_placed){HD_YELLOW, HD_TRIANGLE, 16.6, 30.5, 34.1};
    hd_image im;
    hd_error e;
    CHECK(hd_shapes_render(&s, &im, &e) == 0);
    int wrong_inside = 0, wrong_outside = 0, blended = 0;
    for (int y = 0; y < im.h; y++)
        for (int x = 0; x < im.w; x++) {
            const uint8_t *px = hd_image_at(&im, x, y);
            int inside = -1, touched = 0;
            for (int i = 0; i < s.n; i++) {
                int all = 1, any = 0;
                for (int sy = 0; sy < 8; sy++)
                    for (int sx = 0; sx < 8; sx++) {
                        int c = hd_shapes_covers(&s.obj[i], x + (sx + 0.5) / 8, y + (sy + 0.5) / 8);
                        all &= c, any |= c;
                    }
                if (all || hd_shapes_covers(&s.obj[i], x + 0.5, y + 0.5)) inside = i;
                touched |= any;
            }
            if (inside >= 0)
                wrong_inside += memcmp(px, hd_shapes_palette[s.obj[inside].colour], 3) != 0;
            else if (!touched)
                wrong_outside += memcmp(px, hd_shapes_background, 3) != 0;
            else
                blended += memcmp(px, hd_shapes_background, 3) != 0;
        }
    CHECK(wrong_inside == 0 && wrong_outside == 0);
    CHECK(blended > 20); /* the edges are anti-aliased */
    /* square sides are axis-aligned at cx ± d/2: pixel 34 (centre 34.5) lies inside */
    CHECK(!memcmp(hd_image_at(&im, 34, 12), hd_shapes_palette[HD_BLUE], 3));
    CHECK(!memcmp(hd_image_at(&im, 40, 2), hd_shapes_background, 3));
    hd_image_free(&im);
}

/* ---- judge ---------------------------------------------------------------------------------- */

static double ground_truth_score(int w, int h, int n, uint64_t seed0) {
    hd_shapes_tally t = {0};
    for (int i = 0; i < n; i++) {
        hd_image im;
        char prompt[HD_SHAPES_PROMPT_MAX];
        hd_error e = {0};
        hd_shapes_verdict v;
        if (hd_shapes_draw(seed0 + (uint64_t)i, w, h, &im, prompt, &e) < 0 ||
            hd_shapes_judge(&im, prompt, &v, &e) < 0) {
            fprintf(stderr, "%s\n", e.msg);
            return 0;
        }
        hd_shapes_tally_add(&t, &v);
        hd_image_free(&im);
    }
    for (int c = 0; c < HD_N_CATEGORIES; c++) CHECK(t.total[c] > 0);
    return hd_shapes_tally_fraction(&t, HD_N_CATEGORIES);
}

static void ground_truth_renders_score_at_least_099(void) {
    const int sizes[][2] = {{64, 64}, {128, 128}, {128, 64}, {64, 96}};
    for (int k = 0; k < 4; k++) {
        double s = ground_truth_score(sizes[k][0], sizes[k][1], 600, 1000u * (uint64_t)k);
        printf("  ground truth %dx%d: %.4f\n", sizes[k][0], sizes[k][1], s);
        CHECKF(s >= 0.99, "%dx%d scores %.4f", sizes[k][0], sizes[k][1], s);
    }
}

static int judge_scene(const hd_shapes_scene *s, const char *prompt, char *why) {
    hd_image im;
    hd_error e = {0};
    hd_shapes_verdict v = {0};
    if (hd_shapes_render(s, &im, &e) < 0 || hd_shapes_judge(&im, prompt, &v, &e) < 0) {
        fprintf(stderr, "%s\n", e.msg);
        return -1;
    }
    hd_image_free(&im);
    if (why) strcpy(why, v.reason);
    return v.correct;
}

static void judge_rejects_perturbed_scenes(void) {
    const hd_shapes_placed red_circle = {HD_RED, HD_CIRCLE, 36, 30, 64};
    const hd_shapes_placed blue_square = {HD_BLUE, HD_SQUARE, 24, 96, 64};
    hd_shapes_scene s = {.w = 128, .h = 128, .n = 2, .obj = {red_circle, blue_square}};
    char why[256];
    const char *prompt = "a large red circle to the left of a small blue square";
    CHECK(judge_scene(&s, prompt, why) == 1);
    CHECK(judge_scene(&s, "a large red circle and a small blue square", why) == 1);
    /* wrong colour */
    s.obj[1].colour = HD_PURPLE;
    CHECK(judge_scene(&s, prompt, why) == 0 && strstr(why, "missing: blue square"));
    s.obj[1].colour = HD_BLUE;
    /* wrong shape */
    s.obj[0].shape = HD_TRIANGLE;
    CHECK(judge_scene(&s, prompt, why) == 0 && strstr(why, "red triangle"));
    s.obj[0].shape = HD_CIRCLE;
    /* missing object */
    s.n = 1;
    CHECK(judge_scene(&s, prompt, why) == 0 && strstr(why, "missing: blue square"));
    /* extra object */
    s.n = 3;
    s.obj[2] = (hd_shapes_placed){HD_GREEN, HD_TRIANGLE, 20, 64, 20};
    CHECK(judge_scene(&s, prompt, why) == 0 && strstr(why, "extra: green triangle"));
    s.obj[2].colour = HD_BLUE, s.obj[2].shape = HD_SQUARE; /* one too many of a named kind */
    CHECK(judge_scene(&s, prompt, why) == 0 && strstr(why, "extra: blue square"));
    s.n = 2;
    /* relation violated: swap the sides */
    s.obj[0].cx = 96, s.obj[1].cx = 30;
    CHECK(judge_scene(&s, prompt, why) == 0 && strstr(why, "relation"));
    CHECK(judge_scene(&s, "a large red circle to the right of a small blue square", why) == 1);
    /* too close for "left of": centres 10 px apart horizontally (< 0.1 W) */
    s.obj[0] = (hd_shapes_placed){HD_RED, HD_CIRCLE, 36, 50, 30};
    s.obj[1] = (hd_shapes_placed){HD_BLUE, HD_SQUARE, 24, 60, 90};
    CHECK(judge_scene(&s, prompt, why) == 0 && strstr(why, "relation"));
    CHECK(judge_scene(&s, "a large red circle above a small blue square", why) == 1);
    /* size violated */
    s.obj[0] = red_circle, s.obj[1] = blue_square;
    s.obj[1].d = 40;
    CHECK(judge_scene(&s, prompt, why) == 0 && strstr(why, "size"));
    /* position violated */
    hd_shapes_scene one = {.w = 128, .h = 128, .n = 1, .obj = {red_circle}};
    CHECK(judge_scene(&one, "a red circle on the left", why) == 1);
    CHECK(judge_scene(&one, "a red circle on the right", why) == 0 && strstr(why, "position"));
    CHECK(judge_scene(&one, "a red circle in the center", why) == 0 && strstr(why, "position"));
    one.obj[0].cx = 66, one.obj[0].cy = 60;
    CHECK(judge_scene(&one, "a red circle in the center", why) == 1);
    /* counting: three of four */
    hd_shapes_scene four = {.w = 128, .h = 128, .n = 3};
    for (int i = 0; i < 4; i++)
        four.obj[i] = (hd_shapes_placed){HD_GREEN, HD_SQUARE, 22, 30 + 64 * (i % 2), 30 + 64 * (i / 2)};
    CHECK(judge_scene(&four, "four green squares", why) == 0);
    four.n = 4;
    CHECK(judge_scene(&four, "four green squares", why) == 1);
}

/* box blur, repeated: edges become wide ramps of mixed colours */
static void blur(hd_image *im, int radius, int times) {
    hd_image t;
    hd_error e;
    for (int k = 0; k < times; k++) {
        hd_image_copy(&t, im, &e);
        for (int y = 0; y < im->h; y++)
            for (int x = 0; x < im->w; x++)
                for (int c = 0; c < 3; c++) {
                    int sum = 0, n = 0;
                    for (int dy = -radius; dy <= radius; dy++)
                        for (int dx = -radius; dx <= radius; dx++) {
                            int xx = x + dx, yy = y + dy;
                            if (xx < 0 || yy < 0 || xx >= im->w || yy >= im->h) continue;
                            sum += hd_image_at(&t, xx, yy)[c], n++;
                        }
                    hd_image_at(im, x, y)[c] = (uint8_t)((sum + n / 2) / n);
                }
        hd_image_free(&t);
    }
}

/* blur rounds corners: a blurred square or triangle no longer has its fill ratio (a blurred
 * circle stays a circle, so it is not a case) */
static void judge_rejects_blurred_shapes(void) {
    const char *prompts[] = {"a large blue square", "a large purple triangle", "a large red square"};
    const hd_shape shapes[] = {HD_SQUARE, HD_TRIANGLE, HD_SQUARE};
    const hd_colour colours[] = {HD_BLUE, HD_PURPLE, HD_RED};
    for (int i = 0; i < 3; i++) {
        hd_shapes_scene s = {.w = 64, .h = 64, .n = 1};
        s.obj[0] = (hd_shapes_placed){colours[i], shapes[i], 21, 32, 32};
        hd_image im;
        hd_error e;
        hd_shapes_verdict v;
        CHECK(hd_shapes_render(&s, &im, &e) == 0);
        CHECK(hd_shapes_judge(&im, prompts[i], &v, &e) == 0 && v.correct);
        blur(&im, 5, 3);
        CHECK(hd_shapes_judge(&im, prompts[i], &v, &e) == 0);
        CHECKF(!v.correct, "blurred '%s' judged correct", prompts[i]);
        hd_image_free(&im);
    }
}

static void judge_ignores_specks_below_the_area_threshold(void) {
    hd_shapes_scene s = {.w = 64, .h = 64, .n = 1};
    s.obj[0] = (hd_shapes_placed){HD_RED, HD_SQUARE, 20, 20, 20};
    hd_image im;
    hd_error e;
    hd_shapes_verdict v;
    CHECK(hd_shapes_render(&s, &im, &e) == 0);
    /* 4x4 = 16 < 0.004·64·64 = 16.4 pixels of blue: ignored; 5x4 = 20: an extra object */
    for (int y = 50; y < 54; y++)
        for (int x = 50; x < 54; x++) memcpy(hd_image_at(&im, x, y), hd_shapes_palette[HD_BLUE], 3);
    CHECK(hd_shapes_judge(&im, "a red square", &v, &e) == 0 && v.correct);
    for (int y = 50; y < 54; y++) memcpy(hd_image_at(&im, 54, y), hd_shapes_palette[HD_BLUE], 3);
    CHECK(hd_shapes_judge(&im, "a red square", &v, &e) == 0 && !v.correct);
    /* a prompt outside the grammar is an error, not a verdict */
    CHECK(hd_shapes_judge(&im, "a red square please", &v, &e) == HD_EINVAL);
    hd_image_free(&im);
}

/* ---- folder and dataset --------------------------------------------------------------------- */

static void put_image(const char *dir, const char *name, int w, int h, const char *caption) {
    char path[1024];
    hd_image im;
    hd_error e;
    hd_image_alloc(&im, w, h, &e);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            uint8_t *p = hd_image_at(&im, x, y);
            p[0] = (uint8_t)(x * 255 / w), p[1] = (uint8_t)(y * 255 / h), p[2] = (uint8_t)(x ^ y);
        }
    snprintf(path, sizeof path, "%s/%s", dir, name);
    CHECK(hd_image_save(path, &im, NULL, &e) == 0);
    hd_image_free(&im);
    if (caption) {
        snprintf(path, sizeof path, "%s/%.*s.txt", dir, (int)(strrchr(name, '.') - name), name);
        CHECK(hd_test_write_file(path, caption, strlen(caption)) == 0);
    }
}

static void folder_assigns_nearest_aspect_bucket_and_crops_to_it(void) {
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/folder", tmpdir);
    mkdir(dir, 0777);
    put_image(dir, "b_wide.png", 120, 50, "a wide one\n");
    put_image(dir, "a_tall.jpg", 40, 90, "  a tall one ");
    put_image(dir, "c_square.webp", 70, 66, "square");
    put_image(dir, "d_wide2.png", 200, 100, "second wide");
    const int sizes[3][2] = {{64, 32}, {32, 64}, {48, 48}};
    CHECK(hd_bucket_nearest(120, 50, 3, sizes) == 0 && hd_bucket_nearest(40, 90, 3, sizes) == 1);
    CHECK(hd_bucket_nearest(70, 66, 3, sizes) == 2);
    hd_dataset_desc d = {.kind = HD_DATASET_FOLDER, .folder = dir, .n_buckets = 3,
                         .filter = HD_FILTER_LANCZOS};
    memcpy(d.sizes, sizes, sizeof sizes);
    hd_dataset *ds = NULL;
    hd_error e = {0};
    CHECKF(hd_dataset_open(&ds, &d, &e) == 0, "%s", e.msg);
    if (!ds) return;
    CHECK(hd_dataset_size(ds) == 4 && hd_dataset_n_buckets(ds) == 3);
    CHECK(hd_dataset_bucket_count(ds, 0) == 2 && hd_dataset_bucket_count(ds, 1) == 1 &&
          hd_dataset_bucket_count(ds, 2) == 1);
    CHECK(hd_dataset_bucket_weight(ds, 0) == 2.0);
    hd_image im = {0}, ref = {0}, src = {0};
    char cap[256];
    /* bucket 0 in name order: b_wide, d_wide2; k wraps around */
    CHECK(hd_dataset_draw(ds, 3, 0, &im, cap, sizeof cap, &e) == 0);
    CHECK(!strcmp(cap, "second wide") && im.w == 64 && im.h == 32);
    char path[1200];
    snprintf(path, sizeof path, "%s/d_wide2.png", dir);
    CHECK(hd_image_load(path, &src, &e) == 0);
    CHECK(hd_image_cover_crop(&src, 64, 32, HD_FILTER_LANCZOS, &ref, &e) == 0);
    CHECK(ref.w == 64 && ref.h == 32 && !memcmp(ref.px, im.px, 64 * 32 * 3));
    hd_image_free(&im), hd_image_free(&ref), hd_image_free(&src);
    CHECK(hd_dataset_draw(ds, 0, 1, &im, cap, sizeof cap, &e) == 0);
    CHECK(!strcmp(cap, "a tall one") && im.w == 32 && im.h == 64);
    hd_image_free(&im);
    /* the centre crop of a cover resize: 120x50 -> 77x32 (rounded) -> columns 6..70 */
    snprintf(path, sizeof path, "%s/b_wide.png", dir);
    hd_image_load(path, &src, &e);
    hd_image scaled = {0};
    hd_image_resize(&src, 77, 32, HD_FILTER_LANCZOS, &scaled, &e);
    hd_image_crop(&ref, &scaled, 6, 0, 70, 32, &e);
    CHECK(hd_dataset_draw(ds, 0, 0, &im, cap, sizeof cap, &e) == 0);
    CHECK(im.w == 64 && !memcmp(ref.px, im.px, 64 * 32 * 3));
    hd_image_free(&im);
    CHECK(hd_dataset_draw(ds, 0, 0, &im, cap, 4, &e) < 0 && !im.px); /* caption too long */
    CHECK(hd_dataset_draw(ds, 0, 5, &im, cap, sizeof cap, &e) == HD_EINVAL);
    hd_image_free(&im), hd_image_free(&ref), hd_image_free(&src), hd_image_free(&scaled);
    hd_dataset_close(ds);
}

static void expect_open_error(const char *dir, const char *needle) {
    const int sizes[1][2] = {{32, 32}};
    hd_folder *f = NULL;
    hd_error e = {0};
    int rc = hd_folder_open(&f, dir, 1, sizes, &e);
    CHECKF(rc < 0 && strstr(e.msg, needle) && !strchr(e.msg, '\n'), "want '%s', got rc %d '%s'",
           needle, rc, e.msg);
    hd_folder_close(f);
}

static void folder_errors_name_the_file(void) {
    char dir[1024], path[1200];
    snprintf(dir, sizeof dir, "%s/bad", tmpdir);
    mkdir(dir, 0777);
    expect_open_error(dir, "no images");
    put_image(dir, "one.png", 40, 40, NULL);
    expect_open_error(dir, "one.txt");
    snprintf(path, sizeof path, "%s/one.txt", dir);
    hd_test_write_file(path, " \n\t", 3);
    expect_open_error(dir, "one.txt: caption: empty");
    hd_test_write_file(path, "bad \xff byte", 10);
    expect_open_error(dir, "one.txt: caption: invalid UTF-8");
    hd_test_write_file(path, "fine", 4);
    snprintf(path, sizeof path, "%s/two.png", dir);
    hd_test_write_file(path, "\x89PNG not really", 15);
    snprintf(path, sizeof path, "%s/two.txt", dir);
    hd_test_write_file(path, "caption", 7);
    expect_open_error(dir, "two.png");
    remove(path);
    snprintf(path, sizeof path, "%s/two.png", dir);
    remove(path);
    const int sizes[1][2] = {{32, 32}};
    hd_folder *f = NULL;
    hd_error e = {0};
    CHECKF(hd_folder_open(&f, dir, 1, sizes, &e) == 0, "%s", e.msg);
    CHECK(f && hd_folder_size(f) == 1 && !strcmp(hd_folder_caption(f, 0, 0), "fine"));
    hd_folder_close(f);
    snprintf(path, sizeof path, "%s/missing", tmpdir);
    expect_open_error(path, "missing");
}

static void shapes_dataset_draws_are_deterministic_per_k_and_bucket(void) {
    hd_dataset_desc d = {.kind = HD_DATASET_SHAPES, .n_buckets = 2, .sizes = {{64, 64}, {96, 64}}};
    hd_dataset *ds;
    hd_error e = {0};
    CHECK(hd_dataset_open(&ds, &d, &e) == 0);
    CHECK(hd_dataset_bucket_count(ds, 0) == -1 && hd_dataset_size(ds) == -1);
    hd_image a = {0}, b = {0};
    char ca[128], cb[128];
    for (uint64_t k = 0; k < 20; k++)
        for (int bk = 0; bk < 2; bk++) {
            CHECK(hd_dataset_draw(ds, k, bk, &a, ca, sizeof ca, &e) == 0);
            CHECK(hd_dataset_draw(ds, k, bk, &b, cb, sizeof cb, &e) == 0);
            int w, h;
            hd_dataset_bucket_size(ds, bk, &w, &h);
            CHECK(a.w == w && a.h == h && !strcmp(ca, cb) && !memcmp(a.px, b.px, (size_t)w * h * 3));
            hd_shapes_prompt p;
            CHECK(hd_shapes_prompt_parse(ca, &p, &e) == 0);
            hd_image_free(&a), hd_image_free(&b);
        }
    hd_dataset_close(ds);
    d.sizes[1][0] = 8;
    CHECK(hd_dataset_open(&ds, &d, &e) == HD_EINVAL && strstr(e.msg, "bucket 1"));
}

/* Category weights lean the drawn prompts (a zero weight never drawn), leave the uniform stream
 * untouched when absent, and out-of-range weights are refused when the dataset opens. */
static void category_weights_set_how_often_each_category_is_drawn(void) {
    const double w[HD_N_CATEGORIES] = {1, 0, 1, 3, 0};
    hd_prng r, u, v;
    hd_prng_seed(&r, 11);
    hd_prng_seed(&u, 11);
    hd_prng_seed(&v, 11);
    long per_cat[HD_N_CATEGORIES] = {0};
    const int n = 20000;
    for (int i = 0; i < n; i++) {
        hd_shapes_prompt p, a, b;
        hd_shapes_prompt_sample_weighted(&r, w, &p);
        per_cat[p.category]++;
        hd_shapes_prompt_sample(&u, &a);
        hd_shapes_prompt_sample_weighted(&v, NULL, &b);
        CHECK(!memcmp(&a, &b, sizeof a));
    }
    CHECK(per_cat[HD_CAT_POSITION] == 0 && per_cat[HD_CAT_TWO] == 0);
    CHECKF(fabs(per_cat[HD_CAT_RELATION] / (double)n - 0.6) < 0.02, "relation %ld",
           per_cat[HD_CAT_RELATION]);
    CHECKF(fabs(per_cat[HD_CAT_SINGLE] / (double)n - 0.2) < 0.02, "single %ld",
           per_cat[HD_CAT_SINGLE]);

    hd_dataset_desc d = {.kind = HD_DATASET_SHAPES, .n_buckets = 1, .sizes = {{64, 64}},
                         .category_weights = {0, 0, 0, 1, 0}};
    hd_dataset *ds;
    hd_error e = {0};
    CHECK(hd_dataset_open(&ds, &d, &e) == 0);
    hd_image im = {0};
    char cap[128];
    for (uint64_t k = 0; k < 50; k++) {
        CHECK(hd_dataset_draw(ds, k, 0, &im, cap, sizeof cap, &e) == 0);
        hd_shapes_prompt p;
        CHECK(hd_shapes_prompt_parse(cap, &p, &e) == 0 && p.category == HD_CAT_RELATION);
        hd_image_free(&im);
    }
    hd_dataset_close(ds);
    d.category_weights[1] = -1;
    CHECK(hd_dataset_open(&ds, &d, &e) == HD_EINVAL && strstr(e.msg, "position"));
}

/* ---- tokenizer ------------------------------------------------------------------------------ */

static void world_tokenizer_makes_every_word_one_token(void) {
    char *json = NULL;
    int n = 0;
    hd_error e = {0};
    CHECK(hd_shapes_tokenizer_json(&json, &n, &e) == 0);
    if (!json) return;
    CHECK(n <= 512);
    hd_tokenizer *tok = NULL;
    CHECKF(hd_tokenizer_load_buffer(&tok, json, strlen(json), "shapes tokenizer", &e) == 0, "%s",
           e.msg);
    hd_token_ids ids;
    CHECK(hd_config_parse_tokenizer_ids(&ids, json, strlen(json), "shapes", &e) == 0);
    CHECK(ids.im_start >= 0 && ids.im_end >= 0 && ids.endoftext >= 0 && ids.boi >= 0 && ids.tms >= 0);
    free(json);
    if (!tok) return;
    CHECK(hd_tokenizer_vocab_size(tok) == n);
    for (int i = 0; hd_shapes_special_tokens[i]; i++)
        CHECK(hd_tokenizer_token_id(tok, hd_shapes_special_tokens[i]) == n - 9 + i);
    for (int i = 0; hd_shapes_words[i]; i++)
        for (int space = 0; space < 2; space++) {
            char text[32];
            snprintf(text, sizeof text, "%s%s", space ? " " : "", hd_shapes_words[i]);
            int32_t *v;
            size_t k;
            CHECK(hd_tokenizer_encode(tok, text, strlen(text), 0, &v, &k, &e) == 0);
            CHECKF(k == 1, "'%s' is %zu tokens", text, k);
            free(v);
        }
    /* the chat prompt: one token per word, plus the template's fixed tokens */
    const char *prompt = "a small orange triangle to the left of a large blue circle";
    int32_t *v;
    size_t k;
    CHECK(hd_chat_encode(tok, prompt, 0, NULL, &v, &k, &e) == 0);
    CHECKF(k == 12 + 10, "chat prompt is %zu tokens", k);
    char *back;
    size_t len;
    CHECK(hd_tokenizer_decode(tok, v, k, &back, &len, &e) == 0);
    CHECK(strstr(back, prompt) && strstr(back, "<|im_start|>assistant\n"));
    free(back);
    free(v);
    hd_tokenizer_free(tok);
}

int main(void) {
    hd_test_tmpdir(tmpdir, sizeof tmpdir);
    RUN_TEST(prompt_sampler_emits_only_grammar_strings);
    RUN_TEST(parser_reads_the_spec_examples);
    RUN_TEST(parser_rejects_strings_outside_the_grammar);
    RUN_TEST(same_seed_same_world_other_seed_other_world);
    RUN_TEST(placement_keeps_sizes_margins_gaps_positions_relations);
    RUN_TEST(renderer_paints_exact_interiors_on_the_background);
    RUN_TEST(ground_truth_renders_score_at_least_099);
    RUN_TEST(judge_rejects_perturbed_scenes);
    RUN_TEST(judge_rejects_blurred_shapes);
    RUN_TEST(judge_ignores_specks_below_the_area_threshold);
    RUN_TEST(folder_assigns_nearest_aspect_bucket_and_crops_to_it);
    RUN_TEST(folder_errors_name_the_file);
    RUN_TEST(shapes_dataset_draws_are_deterministic_per_k_and_bucket);
    RUN_TEST(category_weights_set_how_often_each_category_is_drawn);
    RUN_TEST(world_tokenizer_makes_every_word_one_token);
    return hd_test_finish();
}
