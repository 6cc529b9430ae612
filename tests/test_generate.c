/* `hidream generate` end to end on a tiny random model written by tools/hd_make_model: it makes
 * a picture, regenerates it bit-identically from its own PNG metadata, and every bad input gives
 * one line on stderr, a non-zero exit and no output file. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "image/codec.h"
#include "testutil.h"

static char tmp[256], model[300], bin[512], out[4096];

static int exists(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0;
}

static int lines(const char *s) {
    int n = 0;
    for (; *s; s++) n += *s == '\n';
    return n;
}

/* Runs `hidream generate ARGS` and returns the exit code; output in `out`. */
static int gen(const char *args) {
    char cmd[16384];
    snprintf(cmd, sizeof cmd, "%s generate %s", bin, args);
    return hd_test_run(cmd, out, sizeof out);
}

static int same_pixels(const char *a, const char *b) {
    hd_image x = {0}, y = {0};
    hd_error e = {0};
    int ok = hd_image_load(a, &x, &e) == 0 && hd_image_load(b, &y, &e) == 0 && x.w == y.w &&
             x.h == y.h && memcmp(x.px, y.px, (size_t)x.w * x.h * 3) == 0;
    hd_image_free(&x);
    hd_image_free(&y);
    return ok;
}

static void test_generate_writes_png_with_metadata(void) {
    char args[4096], png[400];
    snprintf(png, sizeof png, "%s/a.png", tmp);
    snprintf(args, sizeof args,
             "-m %s -p 'a red fox' --no-snap --width 96 --height 64 --steps 3 --seed 7 -o %s",
             model, png);
    CHECKF(gen(args) == 0, "%s", out);
    hd_png_text t = {0};
    hd_error e = {0};
    CHECK(hd_png_read_text(png, &t, &e) == 0);
    const char *v = hd_png_text_get(&t, "hidream:prompt");
    CHECK(v && !strcmp(v, "a red fox"));
    v = hd_png_text_get(&t, "hidream:seed");
    CHECK(v && !strcmp(v, "7"));
    v = hd_png_text_get(&t, "hidream:size");
    CHECK(v && !strcmp(v, "96x64"));
    hd_png_text_free(&t);
}

static void test_regenerate_from_png_metadata_is_bit_identical(void) {
    char args[4096], a[400], b[400], c[400];
    snprintf(a, sizeof a, "%s/full.png", tmp);
    snprintf(b, sizeof b, "%s/again.png", tmp);
    snprintf(c, sizeof c, "%s/dev.png", tmp);
    snprintf(args, sizeof args,
             "-m %s -p 'a cat, 一只猫' --no-snap --width 64 --height 96 --steps 4 --cfg 3.5 "
             "--shift 2 --seed 123 -o %s", model, a);
    CHECKF(gen(args) == 0, "%s", out);
    snprintf(args, sizeof args, "--from-png %s -o %s", a, b);
    CHECKF(gen(args) == 0, "%s", out);
    CHECK(same_pixels(a, b));
    /* dev mode (flash, explicit timesteps, our seeded step noise) round-trips too */
    snprintf(args, sizeof args,
             "-m %s -p 'a dog' --mode dev --no-snap --width 64 --height 64 --timesteps 999,737,347 "
             "--seed 5 -o %s", model, c);
    CHECKF(gen(args) == 0, "%s", out);
    snprintf(args, sizeof args, "--from-png %s -o %s", c, b);
    CHECKF(gen(args) == 0, "%s", out);
    CHECK(same_pixels(c, b));
    /* another seed gives another picture */
    snprintf(args, sizeof args, "--from-png %s --seed 6 -o %s", c, b);
    CHECKF(gen(args) == 0, "%s", out);
    CHECK(!same_pixels(c, b));
}

/* Each bad invocation: exit code, one line naming the problem, no output file. */
static void expect_error(const char *args_fmt, const char *needle) {
    char args[8192], png[400];
    snprintf(png, sizeof png, "%s/bad.png", tmp);
    remove(png);
    snprintf(args, sizeof args, args_fmt, model, png);
    int rc = gen(args);
    CHECKF(rc != 0, "exit 0 for: %s", args);
    CHECKF(strstr(out, needle) != NULL, "message for '%s' lacks '%s': %s", args, needle, out);
    CHECKF(lines(out) == 1, "expected one line for '%s', got: %s", args, out);
    CHECKF(!exists(png), "output written despite the error: %s", args);
}

static void test_bad_invocations_fail_cleanly(void) {
    expect_error("-m %s -p x -o %s --frobnicate", "unknown option '--frobnicate'");
    expect_error("-m %s -p x -o %s --no-snap --width 100 --height 64", "multiples of 32");
    expect_error("-m %s -p x -o %s --no-snap --width 64 --height 99968", "at most");
    expect_error("-m %s -p x -o %s --steps 0", "--steps");
    expect_error("-m %s -p x -o %s --cfg abc", "--cfg");
    expect_error("-m %s -p x -o %s --timesteps 999,2000", "--timesteps");
    expect_error("-m %s -p x -o %s --mode dev --steps 5 --no-snap --width 64 --height 64",
                 "timesteps");
    expect_error("-m %s/missing -p x -o %s", "config.json");
    expect_error("-m %s -p x -o %s.tiff", "unknown output format");
    expect_error("-m %s -p x -o %s --int8 --backend cuda", "cpu backend only");
    expect_error("-m %s -p 'bad \xff utf8' -o %s --no-snap --width 64 --height 64 --steps 1",
                 "UTF-8");
    char args[4096];
    snprintf(args, sizeof args, "-m %s -p x -o /nonexistent-dir/x.png", model);
    CHECK(gen(args) == 2);
    CHECK(strstr(out, "does not exist") != NULL);
}

static void test_bad_reference_inputs_fail_before_compute(void) {
    char corrupt[400], good[400], fmt[4096];
    snprintf(corrupt, sizeof corrupt, "%s/corrupt.png", tmp);
    CHECK(hd_test_write_file(corrupt, "\x89PNG\r\n\x1a\n\0\0\0\rIHDR", 16) == 0);
    snprintf(fmt, sizeof fmt, "-m %%s -p x -o %%s --ref %s --no-snap --width 64 --height 64", corrupt);
    expect_error(fmt, "corrupt.png");
    snprintf(good, sizeof good, "%s/a.png", tmp); /* written by the first test */
    snprintf(fmt, sizeof fmt,
             "-m %%s -p x -o %%s --ref %s --ref %s --layout '[[0.5,0.5,0.1,0.2]]' --no-snap "
             "--width 64 --height 64 --steps 1", good, good);
    expect_error(fmt, "box");
}

static void test_bf16_gemm_flag_generates(void) {
    char args[4096], png[400];
    snprintf(png, sizeof png, "%s/fast.png", tmp);
    snprintf(args, sizeof args,
             "-m %s -p 'a red fox' --no-snap --width 64 --height 64 --steps 2 --bf16-gemm -o %s",
             model, png);
    CHECKF(gen(args) == 0, "%s", out);
    CHECK(exists(png));
}

static void test_reference_editing_runs(void) {
    char args[4096], ref[400], png[400];
    snprintf(ref, sizeof ref, "%s/a.png", tmp);
    snprintf(png, sizeof png, "%s/edit.png", tmp);
    snprintf(args, sizeof args,
             "-m %s -p 'make it night' --ref %s --keep-aspect --steps 1 --cfg 1 -o %s", model, ref, png);
    CHECKF(gen(args) == 0, "%s", out);
    hd_image im = {0};
    hd_error e = {0};
    CHECK(hd_image_load(png, &im, &e) == 0);
    CHECKF(im.w % 32 == 0 && im.h % 32 == 0 && im.w * 2 == im.h * 3, "edit size %dx%d", im.w, im.h);
    hd_image_free(&im);
}

int main(void) {
    const char *b = getenv("HIDREAM_BIN"), *build = getenv("HIDREAM_BUILD");
    if (!b || !build) {
        fprintf(stderr, "HIDREAM_BIN and HIDREAM_BUILD must be set (run through ctest)\n");
        return 2;
    }
    snprintf(bin, sizeof bin, "%s", b);
    hd_test_tmpdir(tmp, sizeof tmp);
    snprintf(model, sizeof model, "%s/model", tmp);
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "%s/hd_make_model --preset tiny --seed 3 --out %s", build, model);
    if (hd_test_run(cmd, out, sizeof out) != 0) {
        fprintf(stderr, "hd_make_model failed: %s\n", out);
        return 1;
    }
    RUN_TEST(test_generate_writes_png_with_metadata);
    RUN_TEST(test_regenerate_from_png_metadata_is_bit_identical);
    RUN_TEST(test_bad_invocations_fail_cleanly);
    RUN_TEST(test_bad_reference_inputs_fail_before_compute);
    RUN_TEST(test_bf16_gemm_flag_generates);
    RUN_TEST(test_reference_editing_runs);
    return hd_test_finish();
}
