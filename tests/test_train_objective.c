/* The training objective, schedule and recipe parsing (src/train): gradients against finite
 * differences, the schedule's shape, the σ distributions' moments, the recipe's defaults, stage
 * arithmetic and its one-line errors. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "train/objective.h"
#include "train/optimizer.h"
#include "train/train_config.h"

/* d loss / d pred of the image term equals central differences of the loss (double). */
static void test_image_loss_gradient_matches_finite_differences(void) {
    enum { N = 37 };
    float pred[N], x0[N], d[N], tmp[N];
    hd_prng r;
    hd_prng_seed(&r, 5);
    for (int i = 0; i < N; i++) {
        pred[i] = (float)hd_train_normal(&r);
        x0[i] = (float)hd_train_normal(&r);
    }
    const double sigmas[] = {0.01, 0.3, 0.97};
    for (int s = 0; s < 3; s++) {
        double scale = 0.25;
        hd_train_image_loss(pred, x0, N, sigmas[s], 0.05, scale, d);
        double worst = 0;
        for (int i = 0; i < N; i++) {
            float keep = pred[i], h = 1e-2f;
            pred[i] = keep + h;
            double up = hd_train_image_loss(pred, x0, N, sigmas[s], 0.05, 1, tmp);
            pred[i] = keep - h;
            double dn = hd_train_image_loss(pred, x0, N, sigmas[s], 0.05, 1, tmp);
            pred[i] = keep;
            double fd = scale * (up - dn) / ((double)(keep + h) - (double)(keep - h));
            double err = fabs(fd - d[i]) / (fabs(fd) + 1e-6);
            if (err > worst) worst = err;
        }
        CHECK(worst < 1e-3);
    }
    /* σ below σ_min is weighted as σ_min: the loss is finite and equal */
    double a = hd_train_image_loss(pred, x0, N, 1e-5, 0.05, 1, d);
    double b = hd_train_image_loss(pred, x0, N, 0.05, 0.05, 1, d);
    CHECK(a == b && isfinite(a));
}

/* The LM term: gradient of the summed cross-entropy against finite differences, masked rows
 * contribute nothing, and uniform logits give log V per row. */
static void test_lm_loss_gradient_and_mask(void) {
    enum { ROWS = 4, V = 9 };
    float lg[ROWS * V], d[ROWS * V], tmp[ROWS * V];
    int32_t target[ROWS] = {3, 0, 8, 5};
    uint8_t mask[ROWS] = {1, 0, 1, 1};
    hd_prng r;
    hd_prng_seed(&r, 9);
    for (int i = 0; i < ROWS * V; i++) lg[i] = (float)hd_train_normal(&r);
    double scale = 0.5;
    hd_train_lm_loss(lg, V, target, mask, ROWS, scale, d);
    double worst = 0;
    for (int i = 0; i < ROWS * V; i++) {
        float keep = lg[i], h = 1e-2f;
        lg[i] = keep + h;
        double up = hd_train_lm_loss(lg, V, target, mask, ROWS, 1, tmp);
        lg[i] = keep - h;
        double dn = hd_train_lm_loss(lg, V, target, mask, ROWS, 1, tmp);
        lg[i] = keep;
        double fd = scale * (up - dn) / ((double)(keep + h) - (double)(keep - h));
        double err = fabs(fd - d[i]);
        if (err > worst) worst = err;
    }
    CHECK(worst < 1e-4);
    for (int v = 0; v < V; v++) CHECK(d[1 * V + v] == 0.0f); /* the unmasked row */
    for (int i = 0; i < ROWS * V; i++) lg[i] = 0.25f;
    double total = hd_train_lm_loss(lg, V, target, mask, ROWS, 1, d);
    CHECK(fabs(total - 3 * log((double)V)) < 1e-9);
}

/* z = (1-σ)x0 + σ·s·ε elementwise. */
static void test_noise_mixes_as_the_sampler_assumes(void) {
    float x0[3] = {1, -1, 0.5f}, eps[3] = {2, 0, -1}, z[3];
    hd_train_noise(z, x0, eps, 3, 0.25, 8.0);
    CHECK(fabsf(z[0] - (0.75f + 4.0f)) < 1e-6f);
    CHECK(fabsf(z[1] - (-0.75f)) < 1e-6f);
    CHECK(fabsf(z[2] - (0.375f - 2.0f)) < 1e-6f);
}

/* Logit-normal σ: the mean of logit(σ) is the configured mean, its spread the configured std;
 * uniform σ has mean 1/2; every σ is strictly inside (0, 1). */
static void test_sigma_distributions_have_their_moments(void) {
    hd_train_objective o = {.sigma_dist = HD_SIGMA_LOGIT_NORMAL, .sigma_mean = 0.8,
                            .sigma_std = 1.3};
    hd_prng r;
    hd_prng_seed(&r, 11);
    enum { N = 200000 };
    double m = 0, m2 = 0, u = 0;
    int inside = 1;
    for (int i = 0; i < N; i++) {
        double s = hd_train_draw_sigma(&o, &r), l = log(s / (1 - s));
        inside &= s > 0 && s < 1;
        m += l / N;
        m2 += l * l / N;
    }
    CHECK(inside);
    CHECK(fabs(m - 0.8) < 0.02);
    CHECK(fabs(sqrt(m2 - m * m) - 1.3) < 0.02);
    o.sigma_dist = HD_SIGMA_UNIFORM;
    for (int i = 0; i < N; i++) u += hd_train_draw_sigma(&o, &r) / N;
    CHECK(fabs(u - 0.5) < 0.01);
}

/* Warm-up rises linearly to lr, the cosine ends at lr·min_lr_ratio and never goes below. */
static void test_lr_schedule_warms_up_then_decays_to_the_floor(void) {
    hd_train_optim o = {.lr = 1e-3, .warmup = 10, .min_lr_ratio = 0.1};
    int64_t total = 110;
    CHECK(fabs(hd_train_lr(&o, 0, total) - 1e-4) < 1e-12);
    CHECK(fabs(hd_train_lr(&o, 9, total) - 1e-3) < 1e-12);
    CHECK(fabs(hd_train_lr(&o, 10, total) - 1e-3) < 1e-12);
    CHECK(fabs(hd_train_lr(&o, total - 1, total) - 1e-4) < 1e-12);
    double prev = 1;
    int falls = 1;
    for (int64_t s = 10; s < total; s++) {
        double lr = hd_train_lr(&o, s, total);
        falls &= lr <= prev && lr >= 1e-4 - 1e-15;
        prev = lr;
    }
    CHECK(falls);
    o.warmup = 0;
    CHECK(fabs(hd_train_lr(&o, 0, 1) - 1e-4) < 1e-12 || fabs(hd_train_lr(&o, 0, 1) - 1e-3) < 1e-12);
}

static int parse(hd_train_config *c, const char *json, char *msg) {
    hd_error e = {0};
    int rc = hd_train_config_parse(c, json, strlen(json), "r.json", &e);
    strcpy(msg, e.msg);
    return rc;
}

/* A minimal recipe gets the documented defaults; stages add up and map steps to stages. */
static void test_recipe_defaults_and_stages(void) {
    static hd_train_config c;
    char msg[1024];
    CHECK(parse(&c, "{\"stages\": [{\"steps\": 5, \"sizes\": [[64, 64], [96, 64]]},"
                    " {\"steps\": 7, \"sizes\": [[128, 128]]}]}", msg) == 0);
    CHECK(c.model.patch_size == 8 && c.model.noise_scale == 1.0 && c.batch == 16);
    CHECK(c.optim.lr == 1e-3 && c.optim.ema_decay == 0.999 && c.objective.lm_weight == 0.1);
    CHECK(c.n_stages == 2 && c.stages[0].n_sizes == 2 && c.stages[0].sizes[1][0] == 96);
    CHECK(hd_train_total_steps(&c) == 12);
    CHECK(hd_train_stage_of(&c, 0) == 0 && hd_train_stage_of(&c, 4) == 0);
    CHECK(hd_train_stage_of(&c, 5) == 1 && hd_train_stage_of(&c, 11) == 1);
    for (int k = 0; k < HD_N_CATEGORIES; k++) CHECK(c.category_weights[k] == 0);
    CHECK(parse(&c, "{\"stages\": [{\"steps\": 5, \"sizes\": [[64, 64]]}], \"data\": "
                    "{\"categories\": {\"relation\": 3, \"two objects\": 2}}}", msg) == 0);
    CHECK(c.category_weights[HD_CAT_RELATION] == 3 && c.category_weights[HD_CAT_TWO] == 2 &&
          c.category_weights[HD_CAT_SINGLE] == 0);
}

/* Every bad field is one error naming the file and the field. */
static void test_recipe_errors_name_the_field(void) {
    static hd_train_config c;
    char msg[1024];
    const char *st = "\"stages\": [{\"steps\": 5, \"sizes\": [[64, 64]]}]";
    struct {
        const char *json, *want;
    } cases[] = {
        {"{}", "r.json: stages: missing"},
        {"[]", "r.json: not a JSON object"},
        {"{\"stages\": []}", "r.json: stages: not a list"},
        {"{\"stages\": [{\"steps\": 0, \"sizes\": [[64, 64]]}]}", "stages[0].steps = 0"},
        {"{\"stages\": [{\"steps\": 5}]}", "stages[0].sizes: missing"},
        {"{\"stages\": [{\"steps\": 5, \"sizes\": [[64, 63]]}]}", "stages[0].sizes[0]"},
        {"{\"stages\": [{\"steps\": 5, \"sizes\": [[64, 64]], \"x\": 1}]}", "stages[0].x: unknown"},
        {NULL, NULL},
    };
    for (int i = 0; cases[i].json; i++) {
        CHECK(parse(&c, cases[i].json, msg) < 0);
        if (!strstr(msg, cases[i].want)) printf("  case %d: '%s'\n", i, msg);
        CHECK(strstr(msg, cases[i].want) != NULL);
    }
    char buf[512];
    const char *fields[][2] = {
        {"\"batch\": 0", "batch = 0"},
        {"\"model\": {\"heads\": 3, \"kv_heads\": 2}", "model.heads = 3"},
        {"\"model\": {\"head_dim\": 12}", "model.head_dim = 12"},
        {"\"model\": {\"layer\": 2}", "model.layer: unknown field"},
        {"\"optimizer\": {\"lr\": -1}", "optimizer.lr = -1"},
        {"\"optimizer\": {\"beta2\": 1}", "optimizer.beta2 = 1"},
        {"\"objective\": {\"sigma\": \"normal\"}", "objective.sigma = \"normal\""},
        {"\"objective\": {\"cfg_dropout\": 1.5}", "objective.cfg_dropout = 1.5"},
        {"\"data\": {\"kind\": \"folder\"}", "data.folder: missing"},
        {"\"data\": {\"filter\": \"nearest\"}", "data.filter = \"nearest\""},
        {"\"data\": {\"categories\": {\"relations\": 1}}", "data.categories.relations: unknown"},
        {"\"data\": {\"categories\": {\"single\": -1}}", "data.categories.single"},
        {"\"data\": {\"categories\": {\"single\": 0}}", "every weight is 0"},
        {"\"data\": {\"categories\": [1, 2]}", "data.categories: not an object"},
        {"\"generate\": {\"scheduler\": \"ddim\"}", "generate.scheduler = \"ddim\""},
        {"\"sample_prompts\": [\"\"]", "sample_prompts[0]"},
        {"\"export_bf16\": 1", "export_bf16: not a boolean"},
        {"\"out\": 3", "out: not a string"},
    };
    for (size_t i = 0; i < sizeof fields / sizeof *fields; i++) {
        snprintf(buf, sizeof buf, "{%s, %s}", st, fields[i][0]);
        CHECK(parse(&c, buf, msg) < 0);
        if (!strstr(msg, fields[i][1])) printf("  field %zu: '%s'\n", i, msg);
        CHECK(strstr(msg, fields[i][1]) != NULL && strstr(msg, "r.json") == msg);
    }
}

int main(void) {
    RUN_TEST(test_image_loss_gradient_matches_finite_differences);
    RUN_TEST(test_lm_loss_gradient_and_mask);
    RUN_TEST(test_noise_mixes_as_the_sampler_assumes);
    RUN_TEST(test_sigma_distributions_have_their_moments);
    RUN_TEST(test_lr_schedule_warms_up_then_decays_to_the_floor);
    RUN_TEST(test_recipe_defaults_and_stages);
    RUN_TEST(test_recipe_errors_name_the_field);
    return hd_test_finish();
}
