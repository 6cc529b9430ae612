/* The generation pipeline through the public API (include/hidream.h) on a tiny random model:
 * resolution snapping, parameter validation, progress/preview callbacks, cancellation, the
 * bf16 compatibility rounding, a caller-supplied noise source and determinism per seed. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/dtype.h"
#include "hidream.h"
#include "pipeline/resolution.h"
#include "testutil.h"

static hd_model *model;
static char tmp[256];

static void small(hd_generate_params *p, hd_mode mode) {
    hd_generate_defaults(p, mode);
    p->prompt = "a red fox";
    p->no_snap = 1;
    p->width = 64;
    p->height = 96;
    if (mode == HD_MODE_FULL) p->steps = 3;
}

static void test_snapping_picks_closest_preset_aspect(void) {
    int w, h;
    hd_snap_resolution(1024, 1024, &w, &h);
    CHECK(w == 2048 && h == 2048);
    hd_snap_resolution(1920, 1080, &w, &h);
    CHECK(w == 2560 && h == 1440);
    hd_snap_resolution(1080, 1920, &w, &h);
    CHECK(w == 1440 && h == 2560);
    hd_snap_resolution(3000, 1000, &w, &h);
    CHECK(w == 3104 && h == 1312);
    hd_snap_resolution(3000, 2000, &w, &h);
    CHECK(w == 2496 && h == 1664);
    hd_error e = {0};
    CHECK(hd_check_resolution(64, 96, &e) == 0);
    CHECK(hd_check_resolution(65, 96, &e) == HD_EINVAL);
    CHECK(hd_check_resolution(0, 96, &e) == HD_EINVAL);
    CHECK(hd_check_resolution(32, 1 << 20, &e) == HD_EINVAL);
}

static void test_invalid_parameters_are_rejected_with_the_field(void) {
    hd_generate_params p;
    hd_image out = {0};
    hd_error e = {0};
    small(&p, HD_MODE_FULL);
    p.prompt = NULL;
    CHECK(hd_generate(model, &p, &out, &e) == HD_EINVAL && strstr(e.msg, "prompt"));
    small(&p, HD_MODE_FULL);
    p.steps = 0;
    CHECK(hd_generate(model, &p, &out, &e) == HD_EINVAL && strstr(e.msg, "steps"));
    small(&p, HD_MODE_FULL);
    p.shift = -1;
    CHECK(hd_generate(model, &p, &out, &e) == HD_EINVAL && strstr(e.msg, "shift"));
    small(&p, HD_MODE_FULL);
    p.cfg = NAN;
    CHECK(hd_generate(model, &p, &out, &e) == HD_EINVAL && strstr(e.msg, "cfg"));
    small(&p, HD_MODE_FULL);
    p.n_timesteps = 2;
    p.timesteps[0] = 500;
    p.timesteps[1] = 700;
    CHECK(hd_generate(model, &p, &out, &e) == HD_EINVAL && strstr(e.msg, "decreasing"));
    small(&p, HD_MODE_FULL);
    p.width = 70;
    CHECK(hd_generate(model, &p, &out, &e) == HD_EINVAL && strstr(e.msg, "multiples of 32"));
    small(&p, HD_MODE_FULL);
    p.prompt = "bad \xc3\x28 utf-8";
    CHECK(hd_generate(model, &p, &out, &e) < 0 && strstr(e.msg, "UTF-8"));
    CHECK(out.px == NULL);
}

typedef struct calls {
    int steps_seen, total, previews, cancel_at;
    int preview_ok;
} calls;

static int on_progress(void *user, int step, int total, const hd_image *preview) {
    calls *c = user;
    c->steps_seen++;
    c->total = total;
    if (preview) {
        c->previews++;
        c->preview_ok &= preview->w == 64 && preview->h == 96 && preview->px != NULL;
    }
    return c->cancel_at && step >= c->cancel_at;
}

static void test_progress_previews_and_cancel(void) {
    hd_generate_params p;
    small(&p, HD_MODE_FULL);
    calls c = {0, 0, 0, 0, 1};
    p.progress = on_progress;
    p.progress_user = &c;
    p.preview_every = 2;
    hd_image out = {0};
    hd_error e = {0};
    CHECK(hd_generate(model, &p, &out, &e) == 0);
    CHECK(c.steps_seen == 3 && c.total == 3);
    CHECK(c.previews == 2 && c.preview_ok); /* steps 2 and 3 (the last) */
    hd_image_free(&out);

    calls k = {0, 0, 0, 2, 1};
    p.progress_user = &k;
    CHECK(hd_generate(model, &p, &out, &e) == HD_ECANCELLED);
    CHECK(k.steps_seen == 2 && out.px == NULL);
}

static void test_same_seed_same_image_other_seed_other_image(void) {
    hd_generate_params p;
    small(&p, HD_MODE_FULL);
    hd_image a = {0}, b = {0}, c = {0};
    hd_error e = {0};
    CHECK(hd_generate(model, &p, &a, &e) == 0);
    CHECK(hd_generate(model, &p, &b, &e) == 0);
    p.seed++;
    CHECK(hd_generate(model, &p, &c, &e) == 0);
    size_t n = (size_t)64 * 96 * 3;
    CHECK(a.px && b.px && c.px && memcmp(a.px, b.px, n) == 0 && memcmp(a.px, c.px, n) != 0);
    hd_image_free(&a);
    hd_image_free(&b);
    hd_image_free(&c);
}

static void test_bf16_compat_rounds_every_sample(void) {
    hd_generate_params p;
    small(&p, HD_MODE_FULL);
    p.bf16_compat = 1;
    size_t nz = (size_t)(64 / 32) * (96 / 32) * 3072;
    float *trace = malloc((size_t)(p.steps + 1) * nz * sizeof *trace);
    p.z_trace = trace;
    hd_image out = {0};
    hd_error e = {0};
    CHECK(trace && hd_generate(model, &p, &out, &e) == 0);
    int all_bf16 = 1;
    for (size_t i = 0; trace && i < (size_t)(p.steps + 1) * nz; i++)
        all_bf16 &= hd_round_bf16(trace[i]) == trace[i];
    CHECK(all_bf16);
    /* the default path keeps float32 samples */
    p.bf16_compat = 0;
    hd_image_free(&out);
    CHECK(hd_generate(model, &p, &out, &e) == 0);
    int any_f32 = 0;
    for (size_t i = nz; trace && i < (size_t)(p.steps + 1) * nz; i++)
        any_f32 |= hd_round_bf16(trace[i]) != trace[i];
    CHECK(any_f32);
    hd_image_free(&out);
    free(trace);
}

static int zero_noise(void *user, int step, float *out, size_t n) {
    int *count = user;
    (*count)++;
    memset(out, 0, n * sizeof *out);
    return step < 100 ? 0 : HD_EINVAL;
}

static void test_flash_uses_caller_noise_source(void) {
    hd_generate_params p;
    small(&p, HD_MODE_DEV);
    p.n_timesteps = 3;
    p.timesteps[0] = 999;
    p.timesteps[1] = 737;
    p.timesteps[2] = 347;
    int count = 0;
    p.noise = zero_noise;
    p.noise_user = &count;
    hd_image a = {0}, b = {0};
    hd_error e = {0};
    CHECK(hd_generate(model, &p, &a, &e) == 0);
    CHECK(count == 3); /* one draw per step, including the last */
    p.noise = NULL;
    CHECK(hd_generate(model, &p, &b, &e) == 0);
    CHECK(a.px && b.px && memcmp(a.px, b.px, (size_t)64 * 96 * 3) != 0);
    hd_image_free(&a);
    hd_image_free(&b);
    /* dev mode without an explicit list needs the 28 fixed timesteps */
    small(&p, HD_MODE_DEV);
    p.steps = 5;
    CHECK(hd_generate(model, &p, &a, &e) == HD_EINVAL && strstr(e.msg, "timesteps"));
}

int main(void) {
    const char *build = getenv("HIDREAM_BUILD");
    if (!build) {
        fprintf(stderr, "HIDREAM_BUILD must be set (run through ctest)\n");
        return 2;
    }
    hd_test_tmpdir(tmp, sizeof tmp);
    char cmd[1024], out[4096], dir[512];
    snprintf(dir, sizeof dir, "%s/model", tmp);
    snprintf(cmd, sizeof cmd, "%s/hd_make_model --preset tiny --seed 9 --out %s", build, dir);
    if (hd_test_run(cmd, out, sizeof out) != 0) {
        fprintf(stderr, "hd_make_model failed: %s\n", out);
        return 1;
    }
    hd_error e = {0};
    hd_model_options mo = {.backend = "cpu", .n_threads = 2};
    if (hd_model_load(&model, dir, &mo, &e) < 0) {
        fprintf(stderr, "%s\n", e.msg);
        return 1;
    }
    RUN_TEST(test_snapping_picks_closest_preset_aspect);
    RUN_TEST(test_invalid_parameters_are_rejected_with_the_field);
    RUN_TEST(test_progress_previews_and_cancel);
    RUN_TEST(test_same_seed_same_image_other_seed_other_image);
    RUN_TEST(test_bf16_compat_rounds_every_sample);
    RUN_TEST(test_flash_uses_caller_noise_source);
    hd_model_free(model);
    return hd_test_finish();
}
