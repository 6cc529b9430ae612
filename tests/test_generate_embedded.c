/* `hidream generate` with a small model's own settings and with the embedded default model:
 * a patch-8 model with a native 64x64 size draws at 64x64 when no size is asked for; without -m
 * the model is found next to the binary (never in the current directory), and when there is
 * none one line says where it looked. Requests the model cannot serve are refused with one line,
 * a non-zero exit and no output file. `hidream info` shows the settings. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "image/codec.h"
#include "testutil.h"

static char tmp[256], bin[512], build[512], out[8192];

static int exists(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0;
}

static int lines(const char *s) {
    int n = 0;
    for (; *s; s++) n += *s == '\n';
    return n;
}

static int run(const char *fmt, const char *a, const char *b, const char *c) {
    char cmd[8192];
    snprintf(cmd, sizeof cmd, fmt, a, b, c);
    return hd_test_run(cmd, out, sizeof out);
}

/* A patch-8, native-64x64, text-only random model at dir (4 UniPC steps, no CFG: quick). */
static int make_small_model(const char *dir) {
    char cmd[4096];
    snprintf(cmd, sizeof cmd,
             "%s/hd_make_model --preset tiny --no-vision --seed 11 --out %s --patch 8 "
             "--native 64x64 --noise-scale 1 --hidream "
             "'{\"scheduler\":\"unipc\",\"steps\":4,\"guidance\":1,\"shift\":1}'",
             build, dir);
    int rc = hd_test_run(cmd, out, sizeof out);
    CHECKF(rc == 0, "hd_make_model: %s", out);
    return rc;
}

static void image_size(const char *path, int *w, int *h) {
    hd_image im = {0};
    hd_error e = {0};
    *w = *h = -1;
    if (hd_image_load(path, &im, &e) == 0) {
        *w = im.w;
        *h = im.h;
    }
    hd_image_free(&im);
}

static char model[400];

static void test_small_model_draws_at_its_native_size_by_default(void) {
    char png[500];
    snprintf(png, sizeof png, "%s/native.png", tmp);
    CHECKF(run("%s generate -m %s -p 'a red circle' -o %s", bin, model, png) == 0, "%s", out);
    int w, h;
    image_size(png, &w, &h);
    CHECKF(w == 64 && h == 64, "default size %dx%d", w, h);
    /* a request of another size snaps to the model's own preset, not to 2048-class ones */
    CHECKF(run("%s generate -m %s -p x --width 1920 --height 1080 -o %s", bin, model, png) == 0,
           "%s", out);
    image_size(png, &w, &h);
    CHECKF(w == 64 && h == 64, "snapped size %dx%d", w, h);
    /* --no-snap within twice the native size */
    CHECKF(run("%s generate -m %s -p x --no-snap --width 128 --height 40 -o %s", bin, model,
               png) == 0,
           "%s", out);
    image_size(png, &w, &h);
    CHECKF(w == 128 && h == 40, "no-snap size %dx%d", w, h);
    hd_png_text t = {0};
    hd_error e = {0};
    CHECK(hd_png_read_text(png, &t, &e) == 0);
    const char *v = hd_png_text_get(&t, "hidream:steps");
    CHECK(v && !strcmp(v, "4"));
    v = hd_png_text_get(&t, "hidream:cfg");
    CHECK(v && !strcmp(v, "1"));
    hd_png_text_free(&t);
}

/* Each refusal: non-zero exit, one line with the needle, no output file. */
static void expect_refusal(const char *extra, const char *needle) {
    char png[500], args[2048];
    snprintf(png, sizeof png, "%s/refused.png", tmp);
    remove(png);
    snprintf(args, sizeof args, "-p x -o %s %s", png, extra);
    int rc = run("%s generate -m %s %s", bin, model, args);
    CHECKF(rc == 2, "exit %d for '%s'", rc, extra);
    CHECKF(strstr(out, needle) != NULL, "'%s': message lacks '%s': %s", extra, needle, out);
    CHECKF(lines(out) == 1, "'%s': expected one line, got: %s", extra, out);
    CHECKF(!exists(png), "'%s': output written", extra);
}

static void test_requests_the_small_model_cannot_serve_are_refused(void) {
    char ref[500], args[600];
    snprintf(ref, sizeof ref, "%s/native.png", tmp); /* written by the first test */
    snprintf(args, sizeof args, "--ref %s", ref);
    expect_refusal(args, "need a vision tower, and this model has none");
    expect_refusal("--layout '[[0,0.5,0,0.5]]'", "need a vision tower");
    /* the check comes before any reference is read */
    expect_refusal("--ref /nonexistent.png", "vision tower");
    expect_refusal("--no-snap --width 60 --height 64", "multiples of 8 (the model's patch size)");
    expect_refusal("--no-snap --width 136 --height 64", "trained up to 64x64");
}

static void test_info_shows_the_generation_settings(void) {
    CHECKF(run("%s info %s%s", bin, model, "") == 0, "%s", out);
    CHECKF(strstr(out, "patch 8 (192 values per patch), noise scale 1, native size 64x64"), "%s",
           out);
    CHECKF(strstr(out, "presets (the model's own): 64x64"), "%s", out);
    CHECKF(strstr(out, "scheduler unipc, 4 steps, cfg 1, shift 1"), "%s", out);
    CHECKF(strstr(out, "text-to-image 64x64"), "%s", out);
    char golden[512];
    hd_test_shared(golden, sizeof golden, "golden/model-tiny");
    CHECKF(run("%s info %s%s", bin, golden, "") == 0, "%s", out);
    CHECKF(strstr(out, "patch 32 (3072 values per patch), noise scale 8, native size not stated"),
           "%s", out);
    CHECKF(strstr(out, "presets (the release's): 2048x2048 2304x1728"), "%s", out);
    CHECKF(strstr(out, "sampler defaults: by mode"), "%s", out);
    /* a patch size the weights do not have: one line from info and from generate */
    char mis[500], png[600];
    snprintf(mis, sizeof mis, "%s/mismatch", tmp);
    CHECK(run("cp -r '%s' '%s' && sed -i 's/\"patch_size\": 8/\"patch_size\": 4/' '%s/config.json'",
              model, mis, mis) == 0);
    CHECK(run("%s info %s%s", bin, mis, "") == 2);
    CHECKF(strstr(out, "hidream.patch_size = 4 needs model.x_embedder.proj1.weight with input "
                       "width 3·4² = 48, but it has 192 (the weights are for patch size 8)") &&
               lines(out) == 1,
           "%s", out);
    snprintf(png, sizeof png, "%s/mismatch.png", tmp);
    CHECK(run("%s generate -m %s -p x -o %s", bin, mis, png) == 2);
    CHECKF(strstr(out, "hidream.patch_size = 4") && lines(out) == 1 && !exists(png), "%s", out);
}

/* Copies the CLI binary to dir/NAME (a tree laid out like an unpacked release). */
static int copy_binary(const char *dir, char *dst, size_t n) {
    snprintf(dst, n, "%s/hidream", dir);
    return run("mkdir -p '%s' && cp '%s' '%s'", dir, bin, dst);
}

static void test_embedded_model_is_found_next_to_the_binary(void) {
    char root[400], bindir[500], exe[600], shapes[600], work[500], png[600];
    /* <root>/bin/hidream + <root>/models/shapes, run from an unrelated directory */
    snprintf(root, sizeof root, "%s/tree", tmp);
    snprintf(bindir, sizeof bindir, "%s/bin", root);
    snprintf(shapes, sizeof shapes, "%s/models/shapes", root);
    snprintf(work, sizeof work, "%s/work", tmp);
    CHECK(copy_binary(bindir, exe, sizeof exe) == 0);
    CHECK(run("mkdir -p '%s' '%s'%s", root, work, "") == 0);
    CHECK(run("mkdir -p '%s/models' && cp -r '%s' '%s'", root, model, shapes) == 0);
    snprintf(png, sizeof png, "%s/embedded.png", work);
    CHECKF(run("cd '%s' && '%s' generate -p 'a red circle' -o %s", work, exe, png) == 0, "%s",
           out);
    int w, h;
    image_size(png, &w, &h);
    CHECKF(w == 64 && h == 64, "embedded model size %dx%d", w, h);
    hd_png_text t = {0};
    hd_error e = {0};
    CHECK(hd_png_read_text(png, &t, &e) == 0);
    const char *v = hd_png_text_get(&t, "hidream:model_dir");
    char real_shapes[4096];
    CHECK(realpath(shapes, real_shapes) != NULL);
    CHECKF(v && !strcmp(v, real_shapes), "model_dir %s, want %s", v ? v : "(none)", real_shapes);
    hd_png_text_free(&t);
    /* the same picture as with -m */
    char png_m[600];
    snprintf(png_m, sizeof png_m, "%s/with_m.png", work);
    CHECKF(run("'%s' generate -m '%s' -p 'a red circle' -o %s", exe, shapes, png_m) == 0, "%s",
           out);
    hd_image a = {0}, b = {0};
    CHECK(hd_image_load(png, &a, &e) == 0 && hd_image_load(png_m, &b, &e) == 0);
    CHECK(a.px && b.px && a.w == b.w && a.h == b.h &&
          !memcmp(a.px, b.px, (size_t)a.w * a.h * 3));
    hd_image_free(&a);
    hd_image_free(&b);

    /* <dir>/hidream + <dir>/models/shapes (a flat unpacked folder) */
    char flat[400], exe2[600];
    snprintf(flat, sizeof flat, "%s/flat", tmp);
    CHECK(copy_binary(flat, exe2, sizeof exe2) == 0);
    CHECK(run("mkdir -p '%s/models' && cp -r '%s' '%s/models/shapes'", flat, model, flat) == 0);
    snprintf(png, sizeof png, "%s/flat.png", work);
    CHECKF(run("cd / && '%s' generate -p x -o %s%s", exe2, png, "") == 0, "%s", out);
    CHECK(exists(png));
}

static void test_missing_embedded_model_is_one_clear_line_and_cwd_is_not_used(void) {
    char root[400], exe[600], work[500], png[600];
    snprintf(root, sizeof root, "%s/bare", tmp);
    char bindir[500];
    snprintf(bindir, sizeof bindir, "%s/bin", root);
    CHECK(copy_binary(bindir, exe, sizeof exe) == 0);
    /* the current directory holds models/shapes: it must not be picked up */
    snprintf(work, sizeof work, "%s/cwd", root);
    CHECK(run("mkdir -p '%s/models' && cp -r '%s' '%s/models/shapes'", work, model, work) == 0);
    snprintf(png, sizeof png, "%s/none.png", work);
    int rc = run("cd '%s' && '%s' generate -p x -o %s", work, exe, png);
    if (rc == 0) {
        /* an installed embedded model exists on this machine: it, not the cwd's, was used */
        hd_png_text t = {0};
        hd_error e = {0};
        CHECK(hd_png_read_text(png, &t, &e) == 0);
        const char *v = hd_png_text_get(&t, "hidream:model_dir");
        CHECKF(v && strstr(v, "share/hidream/models/shapes") && !strstr(v, "/cwd/"), "%s",
               v ? v : "(none)");
        hd_png_text_free(&t);
        printf("note: an installed embedded model exists; the not-found message is not checked\n");
        return;
    }
    CHECKF(rc == 2, "exit %d: %s", rc, out);
    CHECKF(strstr(out, "no -m/--model given and no embedded model found (looked in ") &&
               strstr(out, "/bare/models/shapes") && strstr(out, "/bare/bin/models/shapes") &&
               strstr(out, "/bare/share/hidream/models/shapes") &&
               strstr(out, "share/hidream/models/shapes"),
           "%s", out);
    CHECKF(!strstr(out, "/cwd/models"), "%s", out);
    CHECK(lines(out) == 1);
    CHECK(!exists(png));
}

int main(void) {
    const char *b = getenv("HIDREAM_BIN"), *bd = getenv("HIDREAM_BUILD");
    if (!b || !bd) {
        fprintf(stderr, "HIDREAM_BIN and HIDREAM_BUILD must be set (run through ctest)\n");
        return 2;
    }
    snprintf(bin, sizeof bin, "%s", b);
    snprintf(build, sizeof build, "%s", bd);
    hd_test_tmpdir(tmp, sizeof tmp);
    snprintf(model, sizeof model, "%s/small", tmp);
    if (make_small_model(model)) return hd_test_finish();
    RUN_TEST(test_small_model_draws_at_its_native_size_by_default);
    RUN_TEST(test_requests_the_small_model_cannot_serve_are_refused);
    RUN_TEST(test_info_shows_the_generation_settings);
    RUN_TEST(test_embedded_model_is_found_next_to_the_binary);
    RUN_TEST(test_missing_embedded_model_is_one_clear_line_and_cwd_is_not_used);
    return hd_test_finish();
}
