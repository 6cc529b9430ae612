/* `hidream generate --from-png`: the recipe a PNG records is read back whole and strictly.
 * Every pixel-changing setting is recorded and honoured (the same picture again; changing one
 * recorded value changes the picture); a value that cannot be honoured is an error (exit 2, one
 * line naming the key, no file); another model name gives a warning. Runs the CLI on the tiny
 * golden model at 96x64 (--no-snap), a fraction of a second per picture. */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "image/codec.h"
#include "image/image.h"
#include "testutil.h"

static char dir[512], bin[1024], model[1024];

static int run(char *out, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int run(char *out, size_t n, const char *fmt, ...) {
    char cmd[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    return hd_test_run(cmd, out, n);
}

static const char *path(const char *name) {
    static char buf[4][700];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", dir, name);
    return buf[k];
}

/* Copies src to dst with recipe key set to value (NULL: removed; absent: added). */
static int tamper(const char *src, const char *dst, const char *key, const char *value) {
    hd_png_text t = {0};
    hd_image im = {0};
    hd_error e = {0};
    if (hd_png_read_text(src, &t, &e) < 0 || hd_image_load(src, &im, &e) < 0) {
        fprintf(stderr, "tamper: %s\n", e.msg);
        return -1;
    }
    hd_text_kv kv[64];
    int n = 0, found = 0;
    for (int i = 0; i < t.n && n < 63; i++) {
        if (!strcmp(t.keys[i], key)) {
            found = 1;
            if (!value) continue;
            kv[n++] = (hd_text_kv){t.keys[i], value};
        } else {
            kv[n++] = (hd_text_kv){t.keys[i], t.values[i]};
        }
    }
    if (!found && value) kv[n++] = (hd_text_kv){key, value};
    hd_save_opts so = {0, 0, kv, n};
    int rc = hd_image_save(dst, &im, &so, &e);
    if (rc < 0) fprintf(stderr, "tamper: %s\n", e.msg);
    hd_png_text_free(&t);
    hd_image_free(&im);
    return rc;
}

/* 1 when both files decode to the same pixels, 0 when they differ, -1 when one is unreadable. */
static int same_pixels(const char *a, const char *b) {
    hd_image x = {0}, y = {0};
    hd_error e;
    int rc = -1;
    if (hd_image_load(a, &x, &e) == 0 && hd_image_load(b, &y, &e) == 0)
        rc = x.w == y.w && x.h == y.h && !memcmp(x.px, y.px, (size_t)x.w * x.h * 3);
    hd_image_free(&x);
    hd_image_free(&y);
    return rc;
}

static const char *recipe_value(const char *png, const char *key) {
    static char buf[256];
    hd_png_text t = {0};
    hd_error e;
    buf[0] = 0;
    if (hd_png_read_text(png, &t, &e) == 0 && hd_png_text_get(&t, key))
        snprintf(buf, sizeof buf, "%s", hd_png_text_get(&t, key));
    hd_png_text_free(&t);
    return buf;
}

static int base_ok;

/* A picture whose every setting differs from the defaults. */
static void make_base(void) {
    char out[4096];
    int rc = run(out, sizeof out,
                 "'%s' generate -m '%s' -p 'a red circle' --uncond 'blurry' -o '%s' --mode dev "
                 "--width 96 --height 64 --no-snap --seed 7 --timesteps 999,600,200 --cfg 2.5 "
                 "--shift 1.5 --noise-scale 3 --noise-scale-end 2 --noise-clip-std 1.5 "
                 "--bf16-compat --bf16-gemm 2>&1",
                 bin, model, path("base.png"));
    base_ok = rc == 0;
    CHECKF(base_ok, "base picture: rc %d: %s", rc, out);
}

static void recipe_regenerates_the_identical_picture(void) {
    char out[4096];
    CHECK(!strcmp(recipe_value(path("base.png"), "hidream:bf16_gemm"), "1"));
    CHECK(!strcmp(recipe_value(path("base.png"), "hidream:backend"), "cpu"));
    CHECK(recipe_value(path("base.png"), "hidream:model_dir")[0] == '/');
    int rc = run(out, sizeof out, "cd '%s' && '%s' generate --from-png base.png -o again.png 2>&1",
                 dir, bin);
    CHECKF(rc == 0, "rc %d: %s", rc, out);
    CHECKF(out[0] == 0, "unexpected output: %s", out);
    CHECK(same_pixels(path("base.png"), path("again.png")) == 1);
}

/* Each recorded setting is read back: changing it in the recipe changes the picture. (The
 * shift is recorded too; with an explicit timestep list it does not change the picture.) */
static void every_recorded_setting_changes_the_picture(void) {
    static const char *const changes[][4] = {
        {"hidream:seed", "8"},           {"hidream:cfg", "3"},
        {"hidream:timesteps", "999,500,100"},
        {"hidream:noise_scale", "4,2"},  {"hidream:noise_clip_std", "0.5"},
        {"hidream:bf16_gemm", "0"},      {"hidream:bf16_compat", "0"},
        {"hidream:uncond", "sharp"},     {"hidream:prompt", "a blue square"},
        {"hidream:size", "64x96"},       {"hidream:scheduler", "flow_match"},
        /* absent from the base picture: added, with bf16 off (one precision per picture) */
        {"hidream:int8", "1", "hidream:bf16_gemm", "0"},
    };
    for (size_t i = 0; base_ok && i < sizeof changes / sizeof *changes; i++) {
        char out[4096];
        const char *from = path("base.png");
        if (changes[i][2]) {
            CHECK(tamper(from, path("t0.png"), changes[i][2], changes[i][3]) == 0);
            from = path("t0.png");
        }
        CHECK(tamper(from, path("t.png"), changes[i][0], changes[i][1]) == 0);
        unlink(path("t_out.png"));
        int rc = run(out, sizeof out, "'%s' generate --from-png '%s' -o '%s' 2>&1", bin,
                     path("t.png"), path("t_out.png"));
        CHECKF(rc == 0, "%s=%s: rc %d: %s", changes[i][0], changes[i][1], rc, out);
        CHECKF(same_pixels(path("base.png"), path("t_out.png")) == 0,
               "%s=%s: same picture: the value was not read back", changes[i][0], changes[i][1]);
        /* and the new picture records the new value */
        if (strcmp(changes[i][0], "hidream:size"))
            CHECKF(!strcmp(recipe_value(path("t_out.png"), changes[i][0]), changes[i][1]),
                   "%s: recorded '%s'", changes[i][0], recipe_value(path("t_out.png"), changes[i][0]));
    }
}

static void invalid_recipe_value_is_an_error_and_writes_nothing(void) {
    static const char *const bad[][2] = {
        {"hidream:seed", "abc"},         {"hidream:seed", " -1"},
        {"hidream:seed", "-1"},          {"hidream:seed", "99999999999999999999999"},
        {"hidream:steps", "0"},          {"hidream:steps", "3x"},
        {"hidream:steps", "5"},
        {"hidream:cfg", "nan"},          {"hidream:cfg", ""},
        {"hidream:shift", "inf"},        {"hidream:scheduler", "bogus"},
        {"hidream:timesteps", "999,500,"}, {"hidream:timesteps", "999,,1"},
        {"hidream:mode", "fast"},        {"hidream:size", "abc"},
        {"hidream:size", "64x64junk"},   {"hidream:size", "99999999999x64"},
        {"hidream:size", "64x"},         {"hidream:noise_scale", "1"},
        {"hidream:noise_clip_std", "x"}, {"hidream:bf16_gemm", "2"}, {"hidream:int8", "yes"},
        {"hidream:int8", "1"}, /* with the base picture's hidream:bf16_gemm=1: two precisions */
        {"hidream:bf16_compat", "yes"},  {"hidream:keep_aspect", "-1"},
        {"hidream:backend", "tpu"},      {"hidream:references", "2"},
        {"hidream:references", "x"},     {"hidream:layout", "nofile.json"},
        {"hidream:future_setting", "1"}, {"hidream:prompt", NULL},
    };
    for (size_t i = 0; base_ok && i < sizeof bad / sizeof *bad; i++) {
        char out[4096];
        CHECK(tamper(path("base.png"), path("t.png"), bad[i][0], bad[i][1]) == 0);
        unlink(path("t_out.png"));
        int rc = run(out, sizeof out, "'%s' generate --from-png '%s' -o '%s' 2>&1", bin,
                     path("t.png"), path("t_out.png"));
        const char *nl = strchr(out, '\n');
        CHECKF(rc == 2, "%s='%s': rc %d: %s", bad[i][0], bad[i][1] ? bad[i][1] : "(none)", rc, out);
        CHECKF(nl && !nl[1], "%s: not one line: %s", bad[i][0], out);
        CHECKF(strstr(out, bad[i][0]) && strstr(out, "t.png"), "%s: message does not name the "
               "key and file: %s", bad[i][0], out);
        CHECKF(access(path("t_out.png"), F_OK) != 0, "%s: a file was written", bad[i][0]);
    }
}

/* --int8 is recorded (only when on) and read back: the same picture again. */
static void int8_products_are_recorded_and_regenerate_the_identical_picture(void) {
    char out[4096];
    CHECK(recipe_value(path("base.png"), "hidream:int8")[0] == 0);
    int rc = run(out, sizeof out,
                 "'%s' generate -m '%s' -p 'a red circle' -o '%s' --width 96 --height 64 --no-snap "
                 "--steps 2 --seed 5 --int8 2>&1", bin, model, path("i8.png"));
    CHECKF(rc == 0, "rc %d: %s", rc, out);
    CHECK(!strcmp(recipe_value(path("i8.png"), "hidream:int8"), "1"));
    rc = run(out, sizeof out, "'%s' generate --from-png '%s' -o '%s' 2>&1", bin, path("i8.png"),
             path("i8_again.png"));
    CHECKF(rc == 0, "rc %d: %s", rc, out);
    CHECK(same_pixels(path("i8.png"), path("i8_again.png")) == 1);
    CHECK(tamper(path("i8.png"), path("i8_off.png"), "hidream:int8", "0") == 0);
    rc = run(out, sizeof out, "'%s' generate --from-png '%s' -o '%s' 2>&1", bin,
             path("i8_off.png"), path("i8_exact.png"));
    CHECKF(rc == 0, "rc %d: %s", rc, out);
    CHECK(same_pixels(path("i8.png"), path("i8_exact.png")) == 0);
}

/* The precision is always recorded; a flag overrides the recipe's, and a picture from before
 * the default became "auto" (no hidream:bf16_gemm) is regenerated with float32 products. */
static void precision_is_recorded_and_a_flag_overrides_the_recipes(void) {
    char out[4096];
    if (!base_ok) return;
    int rc = run(out, sizeof out, "'%s' generate --from-png '%s' --exact -v -o '%s' 2>&1", bin,
                 path("base.png"), path("p_exact.png"));
    CHECKF(rc == 0 && strstr(out, "precision: exact\n"), "rc %d: %s", rc, out);
    CHECK(!strcmp(recipe_value(path("p_exact.png"), "hidream:bf16_gemm"), "0"));
    CHECK(same_pixels(path("base.png"), path("p_exact.png")) == 0);
    rc = run(out, sizeof out, "'%s' generate --from-png '%s' -v -o '%s' 2>&1", bin,
             path("base.png"), path("p_bf16.png"));
    CHECKF(rc == 0 && strstr(out, "precision: bf16 (the recipe's)"), "rc %d: %s", rc, out);
    CHECK(same_pixels(path("base.png"), path("p_bf16.png")) == 1);
    CHECK(tamper(path("base.png"), path("t.png"), "hidream:bf16_gemm", NULL) == 0);
    rc = run(out, sizeof out, "'%s' generate --from-png '%s' -v -o '%s' 2>&1", bin, path("t.png"),
             path("p_old.png"));
    CHECKF(rc == 0 && strstr(out, "precision: exact (the recipe's)"), "rc %d: %s", rc, out);
    CHECK(same_pixels(path("p_exact.png"), path("p_old.png")) == 1);
    /* two precisions on one command line are refused */
    unlink(path("p_two.png"));
    rc = run(out, sizeof out, "'%s' generate --from-png '%s' --exact --precision int8 -o '%s' 2>&1",
             bin, path("base.png"), path("p_two.png"));
    CHECKF(rc == 2 && strstr(out, "--precision conflicts with --exact"), "rc %d: %s", rc, out);
    CHECK(access(path("p_two.png"), F_OK) != 0);
}

static void recipe_of_another_model_warns(void) {
    char out[4096];
    if (!base_ok) return;
    CHECK(tamper(path("base.png"), path("t.png"), "hidream:model", "another-model") == 0);
    int rc = run(out, sizeof out, "'%s' generate --from-png '%s' -o '%s' 2>&1", bin,
                 path("t.png"), path("t_out.png"));
    CHECKF(rc == 0 && strstr(out, "warning") && strstr(out, "'another-model'"), "rc %d: %s", rc, out);
    CHECK(tamper(path("base.png"), path("t.png"), "hidream:version", "0.0.1") == 0);
    rc = run(out, sizeof out, "'%s' generate --from-png '%s' -o '%s' 2>&1", bin, path("t.png"),
             path("t_out.png"));
    CHECKF(rc == 0 && strstr(out, "warning") && strstr(out, "0.0.1"), "rc %d: %s", rc, out);
}

/* A recorded model directory that does not exist: the error says it came from the recipe,
 * and a relative one is said to be taken relative to the current directory. */
static void recorded_model_dir_is_named_as_the_recipes(void) {
    char out[4096];
    if (!base_ok) return;
    CHECK(tamper(path("base.png"), path("t.png"), "hidream:model_dir", "no/such/model") == 0);
    unlink(path("t_out.png"));
    int rc = run(out, sizeof out, "'%s' generate --from-png '%s' -o '%s' 2>&1", bin,
                 path("t.png"), path("t_out.png"));
    CHECKF(rc == 2 && strstr(out, "relative") && strstr(out, "recorded in --from-png"), "rc %d: %s",
           rc, out);
    CHECK(access(path("t_out.png"), F_OK) != 0);
}

static int write_ref(const char *name, int w, int h, int seed) {
    hd_image im;
    hd_error e;
    if (hd_image_alloc(&im, w, h, &e) < 0) return -1;
    for (int i = 0; i < w * h * 3; i++) im.px[i] = (uint8_t)(i * seed + i / (w * 3) * 7);
    int rc = hd_image_save(path(name), &im, NULL, &e);
    hd_image_free(&im);
    return rc;
}

/* The layout (given as a file) is recorded as its JSON and read back: the same picture without
 * --layout and without the file; another recorded layout makes another picture. */
static void recipe_records_the_layout_and_reads_it_back(void) {
    char out[4096];
    CHECK(write_ref("r1.png", 48, 40, 3) == 0 && write_ref("r2.png", 40, 56, 5) == 0);
    CHECK(hd_test_write_file(path("lay.json"), "[[0,0.5,0,1],[0.5,1,0,1]]", 25) == 0);
    int rc = run(out, sizeof out,
                 "cd '%s' && '%s' generate -m '%s' -p 'two things' --ref r1.png --ref r2.png "
                 "--layout lay.json --width 128 --height 128 --no-snap --steps 2 -o lay.png 2>&1",
                 dir, bin, model);
    CHECKF(rc == 0, "rc %d: %s", rc, out);
    CHECK(!strcmp(recipe_value(path("lay.png"), "hidream:layout"), "[[0,0.5,0,1],[0.5,1,0,1]]"));
    unlink(path("lay.json"));
    rc = run(out, sizeof out, "cd '%s' && '%s' generate --from-png lay.png --ref r1.png --ref "
             "r2.png -o lay2.png 2>&1", dir, bin);
    CHECKF(rc == 0, "rc %d: %s", rc, out);
    CHECK(same_pixels(path("lay.png"), path("lay2.png")) == 1);
    CHECK(tamper(path("lay.png"), path("t.png"), "hidream:layout", "[[0,1,0,0.5],[0,1,0.5,1]]") == 0);
    rc = run(out, sizeof out, "cd '%s' && '%s' generate --from-png t.png --ref r1.png --ref "
             "r2.png -o lay3.png 2>&1", dir, bin);
    CHECKF(rc == 0, "rc %d: %s", rc, out);
    CHECK(same_pixels(path("lay.png"), path("lay3.png")) == 0);
    /* without the references the recipe cannot be honoured */
    rc = run(out, sizeof out, "cd '%s' && '%s' generate --from-png lay.png -o lay4.png 2>&1", dir, bin);
    CHECKF(rc == 2 && strstr(out, "--ref"), "rc %d: %s", rc, out);
}

/* Flags override the recipe. */
static void flags_override_the_recipe(void) {
    char out[4096];
    if (!base_ok) return;
    int rc = run(out, sizeof out, "'%s' generate --from-png '%s' --seed 8 -o '%s' 2>&1", bin,
                 path("base.png"), path("o.png"));
    CHECKF(rc == 0, "rc %d: %s", rc, out);
    CHECK(!strcmp(recipe_value(path("o.png"), "hidream:seed"), "8"));
    CHECK(same_pixels(path("base.png"), path("o.png")) == 0);
}

int main(void) {
    const char *b = getenv("HIDREAM_BIN");
    if (!b) {
        fprintf(stderr, "HIDREAM_BIN is not set\n");
        return 2;
    }
    snprintf(bin, sizeof bin, "%s", b);
    hd_test_shared(model, sizeof model, "golden/model-tiny");
    hd_test_tmpdir(dir, sizeof dir);
    make_base();
    RUN_TEST(recipe_regenerates_the_identical_picture);
    RUN_TEST(every_recorded_setting_changes_the_picture);
    RUN_TEST(invalid_recipe_value_is_an_error_and_writes_nothing);
    RUN_TEST(int8_products_are_recorded_and_regenerate_the_identical_picture);
    RUN_TEST(precision_is_recorded_and_a_flag_overrides_the_recipes);
    RUN_TEST(recipe_of_another_model_warns);
    RUN_TEST(recorded_model_dir_is_named_as_the_recipes);
    RUN_TEST(flags_override_the_recipe);
    RUN_TEST(recipe_records_the_layout_and_reads_it_back);
    char cmd[700], out[256];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    hd_test_run(cmd, out, sizeof out);
    return hd_test_finish();
}
