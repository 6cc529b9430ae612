/* The local agent's decoder (src/agent/lm.c): logits of a tiny random Qwen3 causal LM against
 * Hugging Face transformers (tests/data/qwen3-tiny, made by its make_golden.py), greedy
 * continuations, incremental decoding with the append-only KV cache against full recomputation,
 * the Qwen3-VL layout of a HiDream checkpoint, and refusals of unusable model directories. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "agent/lm.h"
#include "core/error.h"
#include "io/safetensors.h"
#include "testutil.h"

static hd_backend *be;
static char tiny_dir[1024];

static float *read_f32(const hd_safetensors *st, const char *name, size_t *n) {
    const hd_st_tensor *t = hd_st_find(st, name);
    if (!t) return NULL;
    float *v = malloc((size_t)t->numel * sizeof *v);
    hd_error e;
    if (v && hd_st_read_f32(t, v, (size_t)t->numel, &e) < 0) {
        free(v);
        return NULL;
    }
    *n = (size_t)t->numel;
    return v;
}

static int32_t *read_ids(const hd_safetensors *st, const char *name, int *n) {
    const hd_st_tensor *t = hd_st_find(st, name);
    if (!t) return NULL;
    int64_t *v = malloc((size_t)t->numel * sizeof *v);
    int32_t *ids = malloc((size_t)t->numel * sizeof *ids);
    hd_error e;
    if (v && ids && hd_st_read_i64(t, v, (size_t)t->numel, &e) == 0)
        for (int64_t i = 0; i < t->numel; i++) ids[i] = (int32_t)v[i];
    free(v);
    *n = (int)t->numel;
    return ids;
}

/* max |a - b| over a row, relative to the row's largest |b|. */
static double row_rel_err(const float *a, const float *b, int n) {
    double d = 0, m = 0;
    for (int i = 0; i < n; i++) {
        d = fmax(d, fabs((double)a[i] - b[i]));
        m = fmax(m, fabs((double)b[i]));
    }
    return d / (m > 0 ? m : 1);
}

static int argmax(const float *x, int n) {
    int best = 0;
    for (int i = 1; i < n; i++)
        if (x[i] > x[best]) best = i;
    return best;
}

static void test_logits_match_transformers_at_every_position(void) {
    hd_lm *m;
    hd_error e = {0};
    CHECKF(hd_lm_load(&m, tiny_dir, be, 64, &e) == 0, "%s", e.msg);
    if (!m) return;
    char path[1100];
    snprintf(path, sizeof path, "%s/golden.safetensors", tiny_dir);
    hd_safetensors g;
    CHECKF(hd_st_open(&g, path, &e) == 0, "%s", e.msg);
    int V = m->cfg.vocab;
    for (int k = 0; k < 3; k++) {
        char name[32];
        int n_ids, n_gen;
        size_t n_logits;
        snprintf(name, sizeof name, "ids_%d", k);
        int32_t *ids = read_ids(&g, name, &n_ids);
        snprintf(name, sizeof name, "greedy_%d", k);
        int32_t *greedy = read_ids(&g, name, &n_gen);
        snprintf(name, sizeof name, "logits_%d", k);
        float *want = read_f32(&g, name, &n_logits);
        CHECK(ids && greedy && want && n_logits == (size_t)(n_ids + n_gen) * V);
        if (!ids || !greedy || !want) return;
        /* the whole sequence (prompt + continuation) in one call: every position */
        int L = n_ids + n_gen;
        int32_t *all = malloc((size_t)L * sizeof *all);
        memcpy(all, ids, (size_t)n_ids * sizeof *ids);
        memcpy(all + n_ids, greedy, (size_t)n_gen * sizeof *greedy);
        float *got = malloc((size_t)L * V * sizeof *got);
        hd_lm_reset(m);
        CHECK(hd_lm_forward(m, all, L, got, 1, &e) == 0);
        double worst = 0;
        for (int i = 0; i < L; i++) worst = fmax(worst, row_rel_err(got + (size_t)i * V, want + (size_t)i * V, V));
        CHECKF(worst <= 1e-4, "prompt %d: logits rel err %.3g", k, worst);
        printf("prompt %d (%d tokens): max rel logit error %.2e\n", k, L, worst);
        /* greedy decoding with the cache: prefill the prompt, then one token at a time */
        hd_lm_reset(m);
        float *last = malloc((size_t)V * sizeof *last);
        CHECK(hd_lm_forward(m, ids, n_ids, last, 0, &e) == 0);
        int same = 1;
        for (int i = 0; i < n_gen; i++) {
            int32_t t = argmax(last, V);
            same &= t == greedy[i];
            CHECK(hd_lm_forward(m, &t, 1, last, 0, &e) == 0);
        }
        CHECKF(same, "prompt %d: greedy continuation differs from transformers", k);
        free(last);
        free(all);
        free(got);
        free(ids);
        free(greedy);
        free(want);
    }
    hd_st_close(&g);
    hd_lm_free(m);
}

/* Token-by-token decoding through the cache gives the logits of a single full forward, also
 * across a chunk boundary (HD_LM_CHUNK) and when the cache is filled to the last position. */
static void test_incremental_decoding_equals_full_recomputation(void) {
    int L = HD_LM_CHUNK + 44;
    hd_lm *m;
    hd_error e = {0};
    CHECKF(hd_lm_load(&m, tiny_dir, be, L, &e) == 0, "%s", e.msg);
    if (!m) return;
    int V = m->cfg.vocab;
    int32_t *ids = malloc((size_t)L * sizeof *ids);
    for (int i = 0; i < L; i++) ids[i] = (int32_t)((i * 37 + 11) % V);
    float *full = malloc((size_t)L * V * sizeof *full), *step = malloc((size_t)V * sizeof *step);
    CHECK(hd_lm_forward(m, ids, L, full, 1, &e) == 0 && m->n_past == L);
    hd_lm_reset(m);
    /* a 5-token prefill, then single tokens */
    double worst = 0;
    CHECK(hd_lm_forward(m, ids, 5, step, 0, &e) == 0);
    worst = fmax(worst, row_rel_err(step, full + 4 * (size_t)V, V));
    for (int i = 5; i < L; i++) {
        CHECK(hd_lm_forward(m, ids + i, 1, step, 0, &e) == 0);
        worst = fmax(worst, row_rel_err(step, full + (size_t)i * V, V));
    }
    CHECKF(worst <= 1e-5, "incremental vs full: %.3g", worst);
    printf("incremental vs full over %d positions: max rel diff %.2e\n", L, worst);
    /* the cache is full: one more token is refused and nothing is appended */
    CHECK(hd_lm_forward(m, ids, 1, step, 0, &e) == HD_EINVAL && strstr(e.msg, "do not fit") &&
          m->n_past == L);
    hd_lm_reset(m);
    int32_t bad = V;
    CHECK(hd_lm_forward(m, &bad, 1, step, 0, &e) == HD_EINVAL && strstr(e.msg, "outside the vocabulary"));
    free(ids);
    free(full);
    free(step);
    hd_lm_free(m);
}

/* The HiDream checkpoint layout (Qwen3-VL: text_config, model.language_model.*, lm_head) loads
 * and its text decoder runs. */
static void test_qwen3_vl_checkpoint_loads_as_a_causal_lm(void) {
    char dir[1024];
    hd_test_shared(dir, sizeof dir, "golden/model-tiny");
    hd_lm *m;
    hd_error e = {0};
    CHECKF(hd_lm_load(&m, dir, be, 16, &e) == 0, "%s", e.msg);
    if (!m) return;
    CHECK(!strcmp(m->cfg.prefix, "model.language_model.") && !m->cfg.tied);
    int32_t ids[4] = {1, 2, 3, 4};
    float *lg = malloc((size_t)m->cfg.vocab * sizeof *lg);
    CHECK(hd_lm_forward(m, ids, 4, lg, 0, &e) == 0);
    int finite = 1;
    for (int i = 0; i < m->cfg.vocab; i++) finite &= isfinite(lg[i]);
    CHECK(finite);
    free(lg);
    hd_lm_free(m);
}

static void expect_refused(const char *config, const char *msg, int code) {
    char dir[256], path[512];
    hd_test_tmpdir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/config.json", dir);
    if (config) hd_test_write_file(path, config, strlen(config));
    hd_lm *m = (hd_lm *)1;
    hd_error e = {0};
    int rc = hd_lm_load(&m, dir, be, 16, &e);
    CHECKF(rc == code && m == NULL && strstr(e.msg, msg) && !strchr(e.msg, '\n'), "%d: %s", rc, e.msg);
    remove(path);
    remove(dir);
}

static void test_unusable_model_directories_are_one_line_errors(void) {
    expect_refused(NULL, "config.json", HD_EIO);
    expect_refused("{\"model_type\":\"llama\"}", "model_type: 'llama' is not a Qwen3 causal LM",
                   HD_EUNSUPPORTED);
    expect_refused("{\"model_type\":\"qwen3\",\"vocab_size\":8}", "hidden_size: missing", HD_EFORMAT);
    const char *base = "{\"model_type\":\"qwen3\",\"vocab_size\":8,\"hidden_size\":8,"
                       "\"num_hidden_layers\":1,\"num_attention_heads\":2,\"num_key_value_heads\":1,"
                       "\"intermediate_size\":8,\"rms_norm_eps\":1e-6,\"rope_theta\":10000";
    char buf[1024];
    snprintf(buf, sizeof buf, "%s,\"rope_scaling\":{\"rope_type\":\"yarn\"}}", base);
    expect_refused(buf, "rope_scaling: type 'yarn' is not supported", HD_EUNSUPPORTED);
    snprintf(buf, sizeof buf, "%s,\"attention_bias\":true}", base);
    expect_refused(buf, "attention_bias", HD_EUNSUPPORTED);
    snprintf(buf, sizeof buf, "%s}", base); /* well-formed, but no weights */
    expect_refused(buf, "model.safetensors", HD_EIO);
    /* weights of another shape than the config says: the tensor is named */
    char dir[256], cmd[4096];
    hd_test_tmpdir(dir, sizeof dir);
    snprintf(cmd, sizeof cmd, "cp '%s/model.safetensors' '%s/' && sed 's/\"hidden_size\": 32/"
             "\"hidden_size\": 48/' '%s/config.json' > '%s/config.json'", tiny_dir, dir, tiny_dir, dir);
    CHECK(hd_test_run(cmd, NULL, 0) == 0);
    hd_lm *m;
    hd_error e = {0};
    CHECK(hd_lm_load(&m, dir, be, 16, &e) == HD_EMISMATCH && strstr(e.msg, "embed_tokens.weight"));
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    hd_test_run(cmd, NULL, 0);
    CHECK(hd_lm_load(&m, tiny_dir, be, 100000, &e) == HD_EINVAL && strstr(e.msg, "context"));
}

int main(void) {
    const char *src = getenv("HIDREAM_SOURCE");
    snprintf(tiny_dir, sizeof tiny_dir, "%s/tests/data/qwen3-tiny", src ? src : "..");
    hd_error e = {0};
    hd_backend_options bo = {0};
    bo.n_threads = 1;
    if (hd_backend_create(&be, "cpu", &bo, &e) < 0) {
        fprintf(stderr, "%s\n", e.msg);
        return 1;
    }
    RUN_TEST(test_logits_match_transformers_at_every_position);
    RUN_TEST(test_incremental_decoding_equals_full_recomputation);
    RUN_TEST(test_qwen3_vl_checkpoint_loads_as_a_causal_lm);
    RUN_TEST(test_unusable_model_directories_are_one_line_errors);
    hd_backend_destroy(be);
    return hd_test_finish();
}
