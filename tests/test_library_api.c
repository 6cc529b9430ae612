/* The public API that front ends (CLI, server) build on: a recipe survives encode -> PNG ->
 * parse and regenerates the same picture; a malformed recipe value is refused naming its key;
 * pictures encode to memory in each format and decode back; warnings come back to the caller;
 * a cancel flag raised inside a step stops the generation before that step ends. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hidream.h"
#include "testutil.h"

static char tmp[256], model_dir[400];
static hd_model *model;

static int make_small_model(const char *dir) {
    char cmd[4096], out[8192];
    snprintf(cmd, sizeof cmd,
             "%s/hd_make_model --preset tiny --no-vision --seed 11 --out %s --patch 8 "
             "--native 64x64 --noise-scale 1 --hidream "
             "'{\"scheduler\":\"unipc\",\"steps\":4,\"guidance\":1,\"shift\":1}'",
             getenv("HIDREAM_BUILD"), dir);
    int rc = hd_test_run(cmd, out, sizeof out);
    CHECKF(rc == 0, "hd_make_model: %s", out);
    return rc;
}

static int same(const hd_image *a, const hd_image *b) {
    return a->px && b->px && a->w == b->w && a->h == b->h &&
           !memcmp(a->px, b->px, (size_t)a->w * a->h * 3);
}

static void test_recipe_round_trip_regenerates_the_same_picture(void) {
    hd_generate_params p;
    hd_error e = {0};
    hd_model_generate_defaults(model, &p, HD_MODE_FULL);
    p.prompt = "a blue square, ünïcode";
    p.seed = 1234567890123ULL;
    p.cfg = 1.25;
    hd_image a = {0}, b = {0};
    CHECKF(hd_generate(model, &p, &a, &e) == 0, "%s", e.msg);
    hd_recipe r, back;
    CHECK(hd_recipe_from_params(&r, &p, &a, model, &e) == 0);
    char png[400];
    snprintf(png, sizeof png, "%s/recipe.png", tmp);
    CHECKF(hd_image_save_with_recipe(png, &a, &r, &e) == 0, "%s", e.msg);
    CHECKF(hd_recipe_read(png, &back, &e) == 0, "%s", e.msg);
    CHECK(back.prompt && !strcmp(back.prompt, p.prompt));
    CHECK(back.seed == p.seed && back.cfg == 1.25 && back.steps == 4);
    CHECK(back.width == 64 && back.height == 64 && (back.has & HD_RECIPE_SIZE));
    CHECK(back.model_dir && !strcmp(back.model_dir, model_dir));
    /* the model options that change the pixels are recorded too (applied by the caller) */
    CHECK(back.backend && !strcmp(back.backend, "cpu") && (back.has & HD_RECIPE_BACKEND));
    CHECK((back.has & HD_RECIPE_BF16_GEMM) && hd_recipe_precision(&back) == hd_model_precision(model));
    CHECK((back.has & HD_RECIPE_REFS) && back.n_refs == 0 && !(back.has & HD_RECIPE_LAYOUT));
    hd_generate_params q;
    hd_model_generate_defaults(model, &q, HD_MODE_FULL);
    hd_recipe_apply(&back, &q, HD_RECIPE_ALL);
    CHECKF(hd_generate(model, &q, &b, &e) == 0, "%s", e.msg);
    CHECK(same(&a, &b));
    hd_recipe_free(&r);
    hd_recipe_free(&back);
    hd_image_free(&a);
    hd_image_free(&b);
}

static void test_malformed_recipe_value_is_refused_naming_the_key(void) {
    char *keys[] = {"hidream:prompt", "hidream:seed"}, *vals[] = {"x", "12abc"};
    hd_png_text t = {2, keys, vals};
    hd_recipe r;
    hd_error e = {0};
    CHECK(hd_recipe_parse(&t, "pic.png", &r, &e) == HD_EFORMAT);
    CHECKF(strstr(e.msg, "pic.png: hidream:seed: '12abc'"), "%s", e.msg);
    hd_png_text none = {1, keys + 1, vals + 1};
    CHECK(hd_recipe_parse(&none, "b.png", &r, &e) == HD_EFORMAT);
    CHECKF(strstr(e.msg, "b.png: no hidream metadata"), "%s", e.msg);
    /* strict: a key this version does not know, or one given twice, is not silently skipped */
    char *k2[] = {"hidream:prompt", "hidream:future"}, *v2[] = {"x", "1"};
    hd_png_text unknown = {2, k2, v2};
    CHECK(hd_recipe_parse(&unknown, "c.png", &r, &e) == HD_EFORMAT);
    CHECKF(strstr(e.msg, "c.png: hidream:future: unknown setting"), "%s", e.msg);
    char *k3[] = {"hidream:prompt", "hidream:seed", "hidream:seed"}, *v3[] = {"x", "1", "2"};
    hd_png_text twice = {3, k3, v3};
    CHECK(hd_recipe_parse(&twice, "d.png", &r, &e) == HD_EFORMAT);
    CHECKF(strstr(e.msg, "d.png: hidream:seed: appears twice"), "%s", e.msg);
    /* chunks of other programs are not the recipe's business */
    char *k4[] = {"hidream:prompt", "Software", "Comment"}, *v4[] = {"x", "other", "hi"};
    hd_png_text others = {3, k4, v4};
    CHECKF(hd_recipe_parse(&others, "e.png", &r, &e) == 0, "%s", e.msg);
    hd_recipe_free(&r);
}

static void test_images_encode_to_memory_and_decode_back(void) {
    hd_image im = {0};
    hd_error e = {0};
    im.w = 24;
    im.h = 16;
    im.px = malloc(24 * 16 * 3);
    for (int i = 0; i < 24 * 16 * 3; i++) im.px[i] = (uint8_t)(i * 7);
    hd_image_format fmts[] = {HD_FMT_PNG, HD_FMT_JPEG, HD_FMT_WEBP};
    for (int f = 0; f < 3; f++) {
        uint8_t *buf = NULL;
        size_t len = 0;
        hd_save_opts so = {0, 1, NULL, 0}; /* WebP lossless: exact */
        CHECKF(hd_image_encode(&im, fmts[f], &so, &buf, &len, &e) == 0, "%s", e.msg);
        CHECK(hd_image_sniff(buf, len) == fmts[f]);
        hd_image back = {0};
        CHECKF(hd_image_decode(buf, len, "mem", 1 << 20, &back, &e) == 0, "%s", e.msg);
        CHECK(back.w == 24 && back.h == 16);
        if (fmts[f] != HD_FMT_JPEG) CHECK(same(&im, &back));
        hd_image_free(&back);
        free(buf);
    }
    uint8_t *buf = NULL;
    size_t len = 0;
    CHECK(hd_image_encode(&im, HD_FMT_UNKNOWN, NULL, &buf, &len, &e) == HD_EINVAL && !buf);
    hd_image_free(&im);
}

static void test_warnings_come_back_to_the_caller(void) {
    hd_generate_params p;
    hd_warnings w = {0};
    hd_error e = {0};
    hd_model_generate_defaults(model, &p, HD_MODE_FULL);
    p.prompt = "x";
    p.keep_aspect = 1; /* without exactly one reference: the official code warns, goes on */
    p.warnings = &w;
    CHECK(hd_model_check_request(model, &p, &e) == 0);
    CHECKF(w.n == 1 && strstr(w.msg[0], "keep_aspect needs exactly one reference"), "%d %s", w.n,
           w.msg[0]);
    p.keep_aspect = 0;
    CHECK(hd_model_check_request(model, &p, &e) == 0 && w.n == 0);
}

typedef struct {
    int polls, cancel_at, steps_done, polls_at_step1;
} cancel_ctx;

static int cancel_after(void *user) {
    cancel_ctx *c = user;
    return ++c->polls >= c->cancel_at;
}

static int count_steps(void *user, int step, int total, const hd_image *preview) {
    cancel_ctx *c = user;
    c->steps_done = step;
    if (step == 1) c->polls_at_step1 = c->polls;
    return 0;
}

static void test_cancel_inside_a_step_stops_before_the_step_ends(void) {
    hd_generate_params p;
    hd_error e = {0};
    hd_model_generate_defaults(model, &p, HD_MODE_FULL);
    p.prompt = "x";
    /* count the polls of a whole run: at least one per layer per step */
    cancel_ctx all = {0, 1 << 30, 0, 0};
    p.cancel = cancel_after;
    p.cancel_user = &all;
    p.progress = count_steps;
    p.progress_user = &all;
    hd_image im = {0};
    CHECK(hd_generate(model, &p, &im, &e) == 0);
    hd_image_free(&im);
    CHECKF(all.polls > 2 * 4, "%d polls for 4 steps", all.polls);
    /* raise the flag at the first layer of step 2 (after step 1's end-of-step poll): the
     * generation stops inside step 2, which never reports */
    cancel_ctx mid = {0, all.polls_at_step1 + 2, 0, 0};
    p.cancel_user = &mid;
    p.progress_user = &mid;
    CHECK(hd_generate(model, &p, &im, &e) == HD_ECANCELLED && !im.px);
    CHECKF(strstr(e.msg, "cancelled during step 2 of 4"), "%s", e.msg);
    CHECKF(mid.steps_done == 1 && mid.polls == mid.cancel_at, "steps %d polls %d", mid.steps_done,
           mid.polls);
    /* the model serves the next generation normally */
    p.cancel = NULL;
    CHECK(hd_generate(model, &p, &im, &e) == 0 && im.w == 64);
    hd_image_free(&im);
}

int main(void) {
    if (!getenv("HIDREAM_BUILD")) {
        fprintf(stderr, "HIDREAM_BUILD must be set (run through ctest)\n");
        return 2;
    }
    hd_test_tmpdir(tmp, sizeof tmp);
    snprintf(model_dir, sizeof model_dir, "%s/small", tmp);
    if (make_small_model(model_dir)) return hd_test_finish();
    hd_error e = {0};
    hd_model_options mo = {.backend = "cpu", .n_threads = 1};
    if (hd_model_load(&model, model_dir, &mo, &e) < 0) {
        fprintf(stderr, "%s\n", e.msg);
        return 1;
    }
    RUN_TEST(test_recipe_round_trip_regenerates_the_same_picture);
    RUN_TEST(test_malformed_recipe_value_is_refused_naming_the_key);
    RUN_TEST(test_images_encode_to_memory_and_decode_back);
    RUN_TEST(test_warnings_come_back_to_the_caller);
    RUN_TEST(test_cancel_inside_a_step_stops_before_the_step_ends);
    hd_model_free(model);
    return hd_test_finish();
}
