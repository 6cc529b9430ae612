/* Next-token sampling of the local agent (src/agent/sampler.c): greedy, repetition penalty,
 * temperature, top-k, top-p (frequencies over many seeded draws), reproducibility by seed, and
 * refused parameters. */
#include <math.h>
#include <string.h>

#include "agent/sampler.h"
#include "testutil.h"

/* Draws n tokens from fixed logits; counts[] receives how often each id came out. */
static void draw(const hd_sampling *s, const float *logits, int V, int n, int *counts) {
    hd_sampler sp;
    hd_error e;
    memset(counts, 0, (size_t)V * sizeof *counts);
    if (hd_sampler_init(&sp, s, V, &e) < 0) return;
    float l[16];
    for (int i = 0; i < n; i++) {
        memcpy(l, logits, (size_t)V * sizeof *l);
        counts[hd_sampler_next(&sp, l)]++;
    }
    hd_sampler_free(&sp);
}

static void test_greedy_picks_the_largest_logit(void) {
    float l[4] = {0.5f, 3.0f, -1.0f, 2.9f};
    int c[4];
    draw(&(hd_sampling){0, 0, 1, 1, 0}, l, 4, 10, c);
    CHECK(c[1] == 10);
}

static void test_repetition_penalty_divides_positive_and_multiplies_negative_logits(void) {
    hd_sampler sp;
    hd_error e;
    CHECK(hd_sampler_init(&sp, &(hd_sampling){0, 0, 1, 1.2f, 0}, 3, &e) == 0);
    int32_t seen[2] = {0, 2};
    hd_sampler_observe(&sp, seen, 2);
    float l[3] = {2.0f, 1.9f, -0.5f};
    CHECK(hd_sampler_next(&sp, l) == 1); /* 2.0 / 1.2 < 1.9 */
    CHECK(fabsf(l[0] - 2.0f / 1.2f) < 1e-6f && fabsf(l[2] - (-0.6f)) < 1e-6f && l[1] == 1.9f);
    hd_sampler_free(&sp);
}

static void test_temperature_sampling_follows_the_softmax(void) {
    float l[3] = {0, logf(2), logf(4)}; /* probabilities 1/7, 2/7, 4/7 */
    int c[3], n = 40000;
    draw(&(hd_sampling){1, 0, 1, 1, 42}, l, 3, n, c);
    CHECKF(fabs(c[0] / (double)n - 1 / 7.0) < 0.01 && fabs(c[1] / (double)n - 2 / 7.0) < 0.01 &&
               fabs(c[2] / (double)n - 4 / 7.0) < 0.01, "%d %d %d", c[0], c[1], c[2]);
    /* temperature 2 flattens: probabilities ∝ 1, √2, 2 */
    draw(&(hd_sampling){2, 0, 1, 1, 42}, l, 3, n, c);
    double z = 1 + sqrt(2) + 2;
    CHECKF(fabs(c[0] / (double)n - 1 / z) < 0.01 && fabs(c[2] / (double)n - 2 / z) < 0.01, "%d %d %d",
           c[0], c[1], c[2]);
}

static void test_top_k_and_top_p_cut_the_tail(void) {
    float l[3] = {logf(0.4f), logf(0.35f), logf(0.25f)};
    int c[3], n = 40000;
    draw(&(hd_sampling){1, 2, 1, 1, 3}, l, 3, n, c); /* top-k 2: 0.4 / 0.75, 0.35 / 0.75 */
    CHECKF(c[2] == 0 && fabs(c[0] / (double)n - 0.4 / 0.75) < 0.01, "%d %d %d", c[0], c[1], c[2]);
    draw(&(hd_sampling){1, 0, 0.5f, 1, 3}, l, 3, n, c); /* top-p 0.5 needs the first two */
    CHECKF(c[2] == 0 && fabs(c[0] / (double)n - 0.4 / 0.75) < 0.01, "%d %d %d", c[0], c[1], c[2]);
    draw(&(hd_sampling){1, 0, 0.3f, 1, 3}, l, 3, n, c); /* 0.4 alone reaches 0.3 */
    CHECK(c[0] == n);
    draw(&(hd_sampling){1, 1, 1, 1, 3}, l, 3, 100, c);
    CHECK(c[0] == 100);
}

static void test_same_seed_same_draws(void) {
    float l[8] = {0, 0.1f, 0.2f, 0.3f, 0.4f, 0.5f, 0.6f, 0.7f};
    hd_sampler a, b, d;
    hd_error e;
    hd_sampler_init(&a, &(hd_sampling){1, 0, 1, 1, 9}, 8, &e);
    hd_sampler_init(&b, &(hd_sampling){1, 0, 1, 1, 9}, 8, &e);
    hd_sampler_init(&d, &(hd_sampling){1, 0, 1, 1, 10}, 8, &e);
    int same = 1, differ = 0;
    for (int i = 0; i < 200; i++) {
        float x[8], y[8], z[8];
        memcpy(x, l, sizeof x);
        memcpy(y, l, sizeof y);
        memcpy(z, l, sizeof z);
        int32_t ta = hd_sampler_next(&a, x), tb = hd_sampler_next(&b, y), td = hd_sampler_next(&d, z);
        same &= ta == tb;
        differ |= ta != td;
    }
    CHECK(same && differ);
    hd_sampler_free(&a);
    hd_sampler_free(&b);
    hd_sampler_free(&d);
}

static void test_out_of_range_parameters_are_refused(void) {
    hd_sampler sp;
    hd_error e;
    CHECK(hd_sampler_init(&sp, &(hd_sampling){-1, 0, 1, 1, 0}, 4, &e) == HD_EINVAL);
    CHECK(hd_sampler_init(&sp, &(hd_sampling){1, 0, 0, 1, 0}, 4, &e) == HD_EINVAL);
    CHECK(hd_sampler_init(&sp, &(hd_sampling){1, 0, 1.5f, 1, 0}, 4, &e) == HD_EINVAL);
    CHECK(hd_sampler_init(&sp, &(hd_sampling){1, 0, 1, 0, 0}, 4, &e) == HD_EINVAL);
    CHECK(hd_sampler_init(&sp, &(hd_sampling){NAN, 0, 1, 1, 0}, 4, &e) == HD_EINVAL &&
          strstr(e.msg, "temperature"));
}

int main(void) {
    RUN_TEST(test_greedy_picks_the_largest_logit);
    RUN_TEST(test_repetition_penalty_divides_positive_and_multiplies_negative_logits);
    RUN_TEST(test_temperature_sampling_follows_the_softmax);
    RUN_TEST(test_top_k_and_top_p_cut_the_tail);
    RUN_TEST(test_same_seed_same_draws);
    RUN_TEST(test_out_of_range_parameters_are_refused);
    return hd_test_finish();
}
