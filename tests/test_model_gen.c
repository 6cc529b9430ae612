/* A model's own generation settings (config.json "hidream": patch size, noise scale, native
 * size, presets, sampler defaults) drive the same inference code as the release: patchify with
 * any patch side, size rules, hd_model_generate_defaults, the noise scale of the initial sample,
 * and the refusals of what a model cannot do. Models are written by tools/hd_make_model. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "hidream.h"
#include "image/patchify.h"
#include "pipeline/pipeline.h"
#include "pipeline/resolution.h"
#include "pipeline/sequence.h"
#include "testutil.h"

static char tmp[256], build[512];

/* hd_make_model --preset tiny --seed 5 --out tmp/NAME ARGS; returns the directory in dir. */
static int make_model(char *dir, size_t n, const char *name, const char *args) {
    char cmd[4096], out[4096];
    snprintf(dir, n, "%s/%s", tmp, name);
    snprintf(cmd, sizeof cmd, "%s/hd_make_model --preset tiny --seed 5 --out %s %s", build, dir,
             args);
    int rc = hd_test_run(cmd, out, sizeof out);
    CHECKF(rc == 0, "hd_make_model %s: %s", args, out);
    return rc;
}

static hd_model *load(const char *dir) {
    hd_model *m = NULL;
    hd_error e = {0};
    hd_model_options mo = {.backend = "cpu", .n_threads = 2};
    CHECKF(hd_model_load(&m, dir, &mo, &e) == 0, "%s: %s", dir, e.msg);
    return m;
}

/* Writes text over DIR/config.json's "hidream" object value: replaces the first occurrence of
 * `from` by `to` in the file. */
static int edit_config(const char *dir, const char *from, const char *to) {
    char path[600];
    snprintf(path, sizeof path, "%s/config.json", dir);
    size_t len;
    char *s = hd_test_read_file(path, &len);
    if (!s) return -1;
    char *at = strstr(s, from);
    if (!at) {
        free(s);
        return -1;
    }
    size_t a = (size_t)(at - s), fl = strlen(from), tl = strlen(to);
    char *o = malloc(len - fl + tl + 1);
    memcpy(o, s, a);
    memcpy(o + a, to, tl);
    memcpy(o + a + tl, at + fl, len - a - fl + 1);
    int rc = hd_test_write_file(path, o, strlen(o));
    free(s);
    free(o);
    return rc;
}

static void test_patchify_with_patch_8_layout_and_roundtrip(void) {
    hd_error e = {0};
    const int w = 24, h = 16, p = 8, dim = 3 * p * p;
    float img[3 * 24 * 16], rows[6 * 192], back[3 * 24 * 16];
    for (int i = 0; i < 3 * w * h; i++) img[i] = (float)i;
    CHECK(hd_patchify(img, w, h, p, rows, &e) == 0);
    /* pixel (c=1, y=13, x=18): patch row 1, column 2 -> n = 1*3 + 2; f = 1*64 + 5*8 + 2 */
    CHECK(rows[5 * dim + 64 + 5 * 8 + 2] == (float)((1 * h + 13) * w + 18));
    CHECK(hd_unpatchify(rows, w, h, p, back, &e) == 0);
    CHECK(memcmp(img, back, sizeof img) == 0);
    CHECK(hd_patchify(img, 20, 16, 8, rows, &e) == HD_EINVAL && strstr(e.msg, "multiple of 8"));
    CHECK(hd_patchify(img, 24, 16, 0, rows, &e) == HD_EINVAL && strstr(e.msg, "patch size 0"));
    /* patch 32 is the release layout: f = c*1024 + (y%32)*32 + x%32 */
    float big[3 * 32 * 32], one[3072];
    for (int i = 0; i < 3 * 32 * 32; i++) big[i] = (float)i;
    CHECK(hd_patchify(big, 32, 32, 32, one, &e) == 0 && memcmp(big, one, sizeof one) == 0);
}

static hd_gen_config gen_of(const char *json) {
    hd_config c;
    hd_error e = {0};
    char text[2048];
    snprintf(text, sizeof text,
             "{\"model_type\":\"qwen3_vl\",\"image_token_id\":1,\"video_token_id\":2,"
             "\"vision_start_token_id\":3,\"vision_end_token_id\":4,\"text_config\":{"
             "\"vocab_size\":8,\"hidden_size\":8,\"intermediate_size\":8,\"num_hidden_layers\":1,"
             "\"num_attention_heads\":1,\"num_key_value_heads\":1,\"head_dim\":8,"
             "\"rms_norm_eps\":1e-6,\"rope_theta\":10.0,\"rope_scaling\":{\"mrope_section\":"
             "[2,1,1]}}%s%s}",
             json ? ",\"hidream\":" : "", json ? json : "");
    CHECKF(hd_config_parse_json(&c, text, strlen(text), "t", &e) == 0, "%s", e.msg);
    return c.gen;
}

static void test_sizes_snap_to_the_models_own_presets(void) {
    hd_error e = {0};
    int w, h;
    /* release: the 2048-class presets, --no-snap any multiple of 32 up to 8192 */
    hd_gen_config r = gen_of(NULL);
    CHECK(hd_resolve_size(&r, 1920, 1080, 0, &w, &h, &e) == 0 && w == 2560 && h == 1440);
    CHECK(hd_resolve_size(&r, 64, 64, 0, &w, &h, &e) == 0 && w == 2048 && h == 2048);
    CHECK(hd_resolve_size(&r, 8192, 32, 1, &w, &h, &e) == 0 && w == 8192 && h == 32);
    CHECK(hd_resolve_size(&r, 8224, 32, 1, &w, &h, &e) == HD_EINVAL && strstr(e.msg, "8192"));
    CHECK(hd_resolve_size(&r, 40, 32, 1, &w, &h, &e) == HD_EINVAL && strstr(e.msg, "of 32"));
    /* native size alone: every request snaps to it */
    hd_gen_config n = gen_of("{\"patch_size\":8,\"native_size\":[64,64]}");
    CHECK(hd_resolve_size(&n, 2048, 1024, 0, &w, &h, &e) == 0 && w == 64 && h == 64);
    /* own presets: by aspect, first wins ties; never a release preset */
    hd_gen_config p = gen_of("{\"patch_size\":8,\"native_size\":[64,64],"
                             "\"resolutions\":[[64,64],[96,64],[64,96],[128,64]]}");
    CHECK(hd_resolve_size(&p, 1500, 1000, 0, &w, &h, &e) == 0 && w == 96 && h == 64);
    CHECK(hd_resolve_size(&p, 1920, 1080, 0, &w, &h, &e) == 0 && w == 128 && h == 64);
    CHECK(hd_resolve_size(&p, 1000, 1500, 0, &w, &h, &e) == 0 && w == 64 && h == 96);
    CHECK(hd_resolve_size(&p, 3000, 1000, 0, &w, &h, &e) == 0 && w == 128 && h == 64);
    CHECK(hd_resolve_size(&p, 2048, 2048, 0, &w, &h, &e) == 0 && w == 64 && h == 64);
    int list[HD_MAX_RESOLUTIONS][2];
    CHECK(hd_model_presets(&p, list) == 4 && list[3][0] == 128 && list[3][1] == 64);
    CHECK(hd_model_presets(&n, list) == 1 && list[0][0] == 64 && list[0][1] == 64);
    CHECK(hd_model_presets(&r, list) == HD_N_PRESETS && list[0][0] == 2048);
    /* --no-snap: multiples of the patch size, up to twice the largest stated width / height */
    CHECK(hd_resolve_size(&p, 256, 128, 1, &w, &h, &e) == 0 && w == 256 && h == 128);
    CHECK(hd_resolve_size(&p, 264, 64, 1, &w, &h, &e) == HD_EINVAL &&
          strstr(e.msg, "at most 2 times") && strstr(e.msg, "256x192"));
    CHECK(hd_resolve_size(&p, 60, 64, 1, &w, &h, &e) == HD_EINVAL &&
          strstr(e.msg, "multiples of 8 (the model's patch size)"));
    CHECK(hd_resolve_size(&n, 8, 8, 1, &w, &h, &e) == 0 && w == 8 && h == 8);
    CHECK(hd_resolve_size(&n, 0, 8, 1, &w, &h, &e) == HD_EINVAL);
}

static void test_release_model_keeps_the_official_defaults(void) {
    char dir[512];
    if (make_model(dir, sizeof dir, "release", "")) return;
    hd_model *m = load(dir);
    if (!m) return;
    for (int mode = 0; mode < 2; mode++) {
        hd_generate_params a, b;
        hd_generate_defaults(&a, (hd_mode)mode);
        hd_model_generate_defaults(m, &b, (hd_mode)mode);
        CHECKF(memcmp(&a, &b, sizeof a) == 0, "mode %d: model defaults differ from the official",
               mode);
    }
    hd_model_free(m);
}

static void test_model_defaults_come_from_its_config(void) {
    char dir[512];
    if (make_model(dir, sizeof dir, "stated",
                   "--no-vision --patch 8 --native 64x48 --noise-scale 1.5 --hidream "
                   "'{\"resolutions\":[[64,48],[48,64]],\"scheduler\":\"flow_match\","
                   "\"steps\":6,\"guidance\":2.5,\"shift\":1.25}'"))
        return;
    hd_model *m = load(dir);
    if (!m) return;
    hd_generate_params p;
    hd_model_generate_defaults(m, &p, HD_MODE_FULL);
    CHECK(p.width == 64 && p.height == 48 && p.mode == HD_MODE_FULL);
    CHECK(p.scheduler == HD_SCHEDULER_FLOW_MATCH && p.steps == 6);
    CHECK(p.cfg == 2.5 && p.shift == 1.25);
    CHECK(p.noise_scale_start == 1.5 && p.noise_scale_end == 1.5);
    CHECK(p.seed == 32 && p.n_timesteps == 0);
    /* the dev mode's own choices give way to the model's too */
    hd_model_generate_defaults(m, &p, HD_MODE_DEV);
    CHECK(p.mode == HD_MODE_DEV && p.scheduler == HD_SCHEDULER_FLOW_MATCH && p.steps == 6);
    /* it generates at its native size with those defaults: the flow-match sampler runs 6 steps
     * (the release's Euler samplers only know the 28-step dev list) */
    hd_model_generate_defaults(m, &p, HD_MODE_FULL);
    p.prompt = "a red circle";
    int steps = 0;
    hd_image img = {0};
    hd_error e = {0};
    hd_job job;
    CHECKF(hd_job_prepare(&job, m, &p, &e) == 0, "%s", e.msg);
    steps = job.sched.n_steps;
    CHECK(job.width == 64 && job.height == 48 && job.L == 8 * 6);
    hd_job_free(&job);
    CHECK(steps == 6);
    CHECKF(hd_generate(m, &p, &img, &e) == 0, "%s", e.msg);
    CHECK(img.w == 64 && img.h == 48 && img.px);
    hd_image_free(&img);
    hd_model_free(m);
}

/* z0 = s·randn: the same seed with noise scale 1 and 3 gives exactly three times the sample. */
static void test_initial_noise_uses_the_models_noise_scale(void) {
    char d1[512], d3[512];
    if (make_model(d1, sizeof d1, "noise1", "--no-vision --patch 4 --noise-scale 1") ||
        make_model(d3, sizeof d3, "noise3", "--no-vision --patch 4 --noise-scale 3"))
        return;
    hd_model *m1 = load(d1), *m3 = load(d3);
    if (!m1 || !m3) {
        hd_model_free(m1);
        hd_model_free(m3);
        return;
    }
    hd_generate_params p;
    hd_model_generate_defaults(m1, &p, HD_MODE_FULL);
    p.prompt = "x";
    p.no_snap = 1;
    p.width = 16;
    p.height = 8;
    p.steps = 2;
    hd_job a, b;
    hd_error e = {0};
    CHECKF(hd_job_prepare(&a, m1, &p, &e) == 0, "%s", e.msg);
    CHECKF(hd_job_prepare(&b, m3, &p, &e) == 0, "%s", e.msg);
    CHECK(a.L == 8 && b.L == 8);
    int same = 1, nonzero = 0;
    for (int i = 0; i < 8 * 48; i++) {
        same &= b.z[i] == 3.0f * a.z[i];
        nonzero |= a.z[i] != 0;
    }
    CHECK(same && nonzero);
    hd_job_free(&a);
    hd_job_free(&b);
    hd_model_free(m1);
    hd_model_free(m3);
}

static void test_patch_size_that_does_not_fit_the_weights_is_refused_at_load(void) {
    char dir[512];
    if (make_model(dir, sizeof dir, "mismatch", "--no-vision --patch 8")) return;
    CHECK(edit_config(dir, "\"patch_size\": 8", "\"patch_size\": 16") == 0);
    hd_model *m = NULL;
    hd_error e = {0};
    hd_model_options mo = {.backend = "cpu", .n_threads = 1};
    CHECK(hd_model_load(&m, dir, &mo, &e) == HD_EMISMATCH && m == NULL);
    CHECKF(strstr(e.msg, "config.json: hidream.patch_size = 16") &&
               strstr(e.msg, "model.x_embedder.proj1.weight") && strstr(e.msg, "768") &&
               strstr(e.msg, "has 192 (the weights are for patch size 8)"),
           "%s", e.msg);
}

static void test_requests_the_model_cannot_serve_are_refused(void) {
    char text_only[512], vis8[512];
    if (make_model(text_only, sizeof text_only, "textonly", "--no-vision --patch 8 --native 32x32") ||
        make_model(vis8, sizeof vis8, "vis8", "--patch 8"))
        return;
    hd_model *m = load(text_only), *v = load(vis8);
    if (!m || !v) {
        hd_model_free(m);
        hd_model_free(v);
        return;
    }
    uint8_t px[32 * 32 * 3] = {0};
    hd_image ref = {32, 32, px};
    hd_generate_params p;
    hd_image out = {0};
    hd_error e = {0};
    hd_model_generate_defaults(m, &p, HD_MODE_FULL);
    p.prompt = "x";
    p.refs = &ref;
    p.n_refs = 1;
    CHECK(hd_model_check_request(m, &p, &e) == HD_EUNSUPPORTED && strstr(e.msg, "vision tower"));
    CHECK(hd_generate(m, &p, &out, &e) == HD_EUNSUPPORTED && !out.px);
    p.n_refs = 0;
    p.layout = "[[0, 0.5, 0, 0.5]]";
    CHECK(hd_model_check_request(m, &p, &e) == HD_EUNSUPPORTED && strstr(e.msg, "layouts"));
    p.layout = NULL;
    CHECK(hd_model_check_request(m, &p, &e) == 0);
    /* a size beyond its positions: twice the native size per side at most */
    p.no_snap = 1;
    p.width = 72;
    CHECK(hd_model_check_request(m, &p, &e) == HD_EINVAL && strstr(e.msg, "trained up to 32x32"));
    p.width = 36;
    CHECK(hd_model_check_request(m, &p, &e) == HD_EINVAL && strstr(e.msg, "multiples of 8"));
    /* a vision tower with 8-pixel patches: references need the release's 32-pixel patches */
    hd_model_generate_defaults(v, &p, HD_MODE_FULL);
    p.prompt = "x";
    p.refs = &ref;
    p.n_refs = 1;
    CHECK(hd_model_check_request(v, &p, &e) == HD_EUNSUPPORTED &&
          strstr(e.msg, "32-pixel patches; this model's patch size is 8"));
    hd_model_free(m);
    hd_model_free(v);
}

/* Text positions must stay below the target's rotary anchor (4096). */
static void test_prompt_reaching_the_rotary_anchor_is_refused(void) {
    hd_token_ids tok = {.image_pad = 1, .video_pad = 2, .vision_start = 3, .vision_end = 4,
                        .tms = 6, .boi = 5, .im_start = -1, .im_end = -1, .endoftext = -1};
    int32_t *ids = malloc(4097 * sizeof *ids);
    for (int i = 0; i < 4097; i++) ids[i] = 7;
    hd_grid target = {1, 2, 2};
    hd_sequence s;
    hd_error e = {0};
    /* T = 4096: positions 0 .. 4095, the last one just below the anchor */
    ids[4094] = 5;
    ids[4095] = 6;
    CHECKF(hd_sequence_build(&s, ids, 4096, &tok, NULL, 0, target, NULL, 0, &e) == 0, "%s", e.msg);
    CHECK(s.pos[4095] == 4095 && s.pos[4096] == 4096);
    hd_sequence_free(&s);
    ids[4094] = 7;
    ids[4095] = 5;
    ids[4096] = 6;
    CHECK(hd_sequence_build(&s, ids, 4097, &tok, NULL, 0, target, NULL, 0, &e) == HD_EINVAL &&
          strstr(e.msg, "rotary anchor 4096"));
    free(ids);
}

int main(void) {
    const char *b = getenv("HIDREAM_BUILD");
    if (!b) {
        fprintf(stderr, "HIDREAM_BUILD must be set (run through ctest)\n");
        return 2;
    }
    snprintf(build, sizeof build, "%s", b);
    hd_test_tmpdir(tmp, sizeof tmp);
    RUN_TEST(test_patchify_with_patch_8_layout_and_roundtrip);
    RUN_TEST(test_sizes_snap_to_the_models_own_presets);
    RUN_TEST(test_release_model_keeps_the_official_defaults);
    RUN_TEST(test_model_defaults_come_from_its_config);
    RUN_TEST(test_initial_noise_uses_the_models_noise_scale);
    RUN_TEST(test_patch_size_that_does_not_fit_the_weights_is_refused_at_load);
    RUN_TEST(test_requests_the_model_cannot_serve_are_refused);
    RUN_TEST(test_prompt_reaching_the_rotary_anchor_is_refused);
    return hd_test_finish();
}
