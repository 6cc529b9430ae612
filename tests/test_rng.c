/* torch.randn on the CPU, bit for bit (spec 05 §1), and the flash sampler's default noise source.
 * Known values come from PyTorch (torch.randn with a manual_seed'ed CPU generator, AVX2 kernel),
 * written as float bit patterns; the golden rng.* tensors are checked generically. */
#include <stdlib.h>
#include <string.h>

#include "io/safetensors.h"
#include "sample/noise.h"
#include "sample/rng.h"
#include "testutil.h"

static int same_bits(const float *got, const uint32_t *want, size_t n) {
    for (size_t i = 0; i < n; i++) {
        uint32_t b;
        memcpy(&b, &got[i], sizeof b);
        if (b != want[i]) {
            fprintf(stderr, "  element %zu: got 0x%08x, want 0x%08x\n", i, b, want[i]);
            return 0;
        }
    }
    return 1;
}

static void test_mt19937_matches_the_reference_engine(void) {
    hd_mt19937 mt;
    hd_mt19937_seed(&mt, 5489);
    CHECK(hd_mt19937_next(&mt) == 3499211612u);
    CHECK(hd_mt19937_next(&mt) == 581869302u);
    CHECK(hd_mt19937_next(&mt) == 3890346734u);
    hd_mt19937_seed(&mt, 5489);
    uint32_t v = 0;
    for (int i = 0; i < 10000; i++) v = hd_mt19937_next(&mt);
    CHECK(v == 4123659995u); /* the C++ standard's check value for mt19937 */
}

static void test_seed_uses_only_the_low_32_bits(void) {
    float a[35], b[35];
    hd_torch_randn(UINT64_C(1099511627781), a, 35); /* 2^40 + 5 */
    hd_torch_randn(5, b, 35);
    CHECK(memcmp(a, b, sizeof a) == 0);
}

static void test_vector_path_with_tail_matches_torch(void) {
    /* torch.randn(20), then torch.randn(20) on the same generator, seed 42 */
    static const uint32_t first[20] = {
        0x3ff6a529u, 0x3fbe5f53u, 0x3f669567u, 0xc006c0dbu, 0xbf4214e2u, 0x3f8a0650u, 0x3f4d0144u,
        0x3fd71e93u, 0x3eb63345u, 0xbf2fc686u, 0xbefc9934u, 0x3e774893u, 0xbe6d2eedu, 0x3d2b0c00u,
        0xbe80ce7au, 0x3f5c1fb0u, 0xbe9e9482u, 0xbeca9a91u, 0x3f4dac3cu, 0xbf1f20e0u};
    static const uint32_t second[20] = {
        0x3ea34448u, 0xbed95a8du, 0x3e9c8774u, 0xbf464bb2u, 0xbf564dcdu, 0xbf6c21c1u, 0x3fe7d943u,
        0x3e246b22u, 0x3ebc0804u, 0x3e339ee6u, 0x3fb14cf1u, 0xbee446b7u, 0xbf99e9bdu, 0x3f35332fu,
        0xbf89b6a1u, 0x3f0920aau, 0x3f967273u, 0x3f0fa917u, 0xbee7ce97u, 0xbf45933cu};
    hd_torch_gen g;
    hd_torch_gen_seed(&g, 42);
    float v[20];
    hd_torch_gen_randn(&g, v, 20);
    CHECK(same_bits(v, first, 20));
    hd_torch_gen_randn(&g, v, 20);
    CHECK(same_bits(v, second, 20));
}

static void test_tail_recomputes_the_last_16_from_fresh_uniforms(void) {
    static const uint32_t want33[33] = {
        0xbf88a064u, 0xbf379d64u, 0x3f8b7becu, 0xbfc98f3cu, 0x3fb916e4u, 0x3f1e7f04u, 0xbf461080u,
        0xc01dcbd3u, 0x3f7f2f5fu, 0x3ee7a56bu, 0xbeb1564eu, 0xbf397876u, 0x3fda5c78u, 0x400e9b1fu,
        0xbd8abe1bu, 0x3e6ea987u, 0xbf92585bu, 0x3f704f71u, 0x3e878db1u, 0xbf4d00a8u, 0x3ec03bd3u,
        0xbe2e0dc9u, 0x3ee5cfeeu, 0x3f25b3b6u, 0x3eb7569eu, 0x3fcb5a96u, 0xbfcb332bu, 0xbf226ff0u,
        0x3f26e4e0u, 0xbfa7b7d8u, 0x3fe68a65u, 0xbf74c951u, 0xc0153eb8u};
    float v[33], w[32];
    hd_torch_randn(9, v, 33);
    CHECK(same_bits(v, want33, 33));
    /* the first element keeps its block-0 value; the tail's elements do not */
    hd_torch_randn(9, w, 32);
    CHECK(memcmp(&v[0], &w[0], sizeof(float)) == 0);
    CHECK(memcmp(&v[17], &w[17], sizeof(float)) != 0);
}

static void test_scalar_path_below_16_matches_torch(void) {
    static const uint32_t want5[5] = {0x3eac62aeu, 0x3e03e69du, 0x3e7016e7u, 0x3e6bdc6cu,
                                      0xbf8fb9c2u};
    float v[5];
    hd_torch_randn(42, v, 5);
    CHECK(same_bits(v, want5, 5));
}

static void test_scalar_path_keeps_the_cached_sample_across_calls(void) {
    /* torch: randn(3) then randn(3) on one generator equals randn(6) (the Box–Muller partner is
     * cached in the generator) */
    static const uint32_t want6[6] = {0x3eac62aeu, 0x3e03e69du, 0x3e7016e7u,
                                      0x3e6bdc6cu, 0xbf8fb9c2u, 0xbe3eccd8u};
    hd_torch_gen g;
    hd_torch_gen_seed(&g, 42);
    float v[6];
    hd_torch_gen_randn(&g, v, 3);
    hd_torch_gen_randn(&g, v + 3, 3);
    CHECK(same_bits(v, want6, 6));
    hd_torch_gen_seed(&g, 42); /* manual_seed drops the cache */
    hd_torch_gen_randn(&g, v, 6);
    CHECK(same_bits(v, want6, 6));
}

static void test_image_sized_draw_matches_torch_at_sampled_indices(void) {
    const size_t n = 3 * 64 * 64;
    static const size_t idx[7] = {0, 1, 7, 8, 15, 4096, 12287};
    static const uint32_t want[7] = {0xbf9491ddu, 0xbfc78f74u, 0xbf8fcb9fu, 0x3f7b368du,
                                     0x3fac855au, 0xbdb95d20u, 0xbefd484cu};
    float *v = malloc(n * sizeof *v);
    CHECK(v != NULL);
    if (!v) return;
    hd_torch_randn(2025, v, n);
    float got[7];
    for (int i = 0; i < 7; i++) got[i] = v[idx[i]];
    CHECK(same_bits(got, want, 7));
    free(v);
}

/* Every rng.randn_seed<seed>_<shape> tensor of the golden set, whatever its seed and shape. */
static void test_golden_randn_tensors_are_bit_exact(void) {
    char path[4096];
    hd_test_shared(path, sizeof path, "golden/model-tiny/golden.safetensors");
    hd_safetensors st = {0};
    hd_error e = {0};
    CHECKF(hd_st_open(&st, path, &e) == 0, "%s", e.msg);
    int cases = 0;
    for (int i = 0; i < st.n_tensors; i++) {
        const hd_st_tensor *t = &st.tensors[i];
        if (strncmp(t->name, "rng.randn_seed", 14) != 0) continue;
        char *end;
        unsigned long long seed = strtoull(t->name + 14, &end, 10);
        if (*end != '_') continue;
        size_t n = (size_t)t->numel;
        float *want = malloc((n ? n : 1) * sizeof *want), *got = malloc((n ? n : 1) * sizeof *got);
        CHECK(want && got);
        if (want && got) {
            CHECKF(hd_st_read_f32(t, want, n, &e) == 0, "%s", e.msg);
            hd_torch_randn((uint64_t)seed, got, n);
            CHECKF(memcmp(want, got, n * sizeof *got) == 0, "%s differs", t->name);
            cases++;
        }
        free(want);
        free(got);
    }
    CHECKF(cases > 0, "no rng.randn_seed* tensors in %s", path);
    hd_st_close(&st);
}

static void test_default_noise_source_continues_after_the_initial_noise(void) {
    /* seed 10 → generator seed 11: initial = randn(48), step 0 = the next randn(48) */
    static const uint32_t step0_head[4] = {0xbca81505u, 0xbf2168f2u, 0x3f0c6b03u, 0xbfcb5426u};
    hd_noise_default d;
    hd_noise_default_init(&d, 10);
    float init[48], ref[48], step[48];
    hd_error e = {0};
    CHECK(hd_noise_default_initial(&d, init, 48, &e) == 0);
    hd_torch_randn(11, ref, 48);
    CHECK(memcmp(init, ref, sizeof ref) == 0); /* the official initial noise, bit for bit */
    hd_noise_source src = hd_noise_default_source(&d);
    CHECK(src.draw(src.ctx, 0, step, 48) == 0);
    CHECK(same_bits(step, step0_head, 4));
    CHECK(memcmp(step, init, sizeof step) != 0);
    /* out of order, and the initial noise after step noise, are refused */
    CHECK(src.draw(src.ctx, 3, step, 48) == HD_EINVAL);
    CHECK(hd_noise_default_initial(&d, init, 48, &e) == HD_EINVAL);
    CHECK(src.draw(src.ctx, 1, step, 48) == 0);
}

static void test_default_noise_source_is_reproducible(void) {
    hd_noise_default a, b;
    hd_noise_default_init(&a, 123);
    hd_noise_default_init(&b, 123);
    hd_noise_source sa = hd_noise_default_source(&a), sb = hd_noise_default_source(&b);
    float x[40], y[40];
    for (int step = 0; step < 3; step++) {
        CHECK(sa.draw(sa.ctx, step, x, 40) == 0);
        CHECK(sb.draw(sb.ctx, step, y, 40) == 0);
        CHECK(memcmp(x, y, sizeof x) == 0);
    }
}

int main(void) {
    RUN_TEST(test_mt19937_matches_the_reference_engine);
    RUN_TEST(test_seed_uses_only_the_low_32_bits);
    RUN_TEST(test_vector_path_with_tail_matches_torch);
    RUN_TEST(test_tail_recomputes_the_last_16_from_fresh_uniforms);
    RUN_TEST(test_scalar_path_below_16_matches_torch);
    RUN_TEST(test_scalar_path_keeps_the_cached_sample_across_calls);
    RUN_TEST(test_image_sized_draw_matches_torch_at_sampled_indices);
    RUN_TEST(test_golden_randn_tensors_are_bit_exact);
    RUN_TEST(test_default_noise_source_continues_after_the_initial_noise);
    RUN_TEST(test_default_noise_source_is_reproducible);
    return hd_test_finish();
}
