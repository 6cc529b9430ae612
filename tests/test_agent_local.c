/* The local prompt agent end to end (hd_refine_local and `hidream refine --local`), on a Qwen3
 * model this test writes: the real Qwen3 tokenizer and a one-layer decoder whose attention and
 * MLP outputs are zero (o_proj, down_proj = 0), so the next token depends only on the current
 * one, and whose lm_head makes each token of a chosen chain predict the next:
 *   "\n\n" (the end of the no-thinking template) -> the story -> <|im_end|>
 *   "\n" (the end of the plain template) -> <think> reasoning </think> "\n\n" -> the story.
 * The chain is tokenized at run time; nothing about the output is hard-coded but its text. */
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "agent/local.h"
#include "core/dtype.h"
#include "image/codec.h"
#include "io/safetensors.h"
#include "sample/rng.h"
#include "testutil.h"
#include "text/tokenizer.h"

#define STORY "A red fox runs across snowy fields under pale winter sunlight."
#define REASONING "First plan the scene carefully, then write it"
#define DIM 64
#define VOCAB 151936

static char model_dir[512], tok_path[1024];

typedef struct weights {
    uint16_t *embed, *head, *ones, *zeros_dd, *qk, *small;
} weights;

/* next[prev] = id: lm_head row `id` is the embedding of `prev`. */
static void link(weights *w, int32_t prev, int32_t id) {
    memcpy(w->head + (size_t)id * DIM, w->embed + (size_t)prev * DIM, DIM * sizeof(uint16_t));
}

static int write_model(void) {
    hd_error e = {0};
    hd_tokenizer *tok;
    if (hd_tokenizer_load(&tok, tok_path, &e) < 0) {
        fprintf(stderr, "%s\n", e.msg);
        return -1;
    }
    weights w;
    w.embed = malloc((size_t)VOCAB * DIM * 2);
    w.head = malloc((size_t)VOCAB * DIM * 2);
    w.ones = malloc(DIM * 2);
    w.zeros_dd = calloc(DIM * DIM, 2);
    w.small = malloc(DIM * DIM * 2);
    hd_mt19937 mt;
    hd_mt19937_seed(&mt, 7);
    /* N(0,1)-ish embeddings (sum of uniforms), weaker random lm_head rows */
    for (size_t i = 0; i < (size_t)VOCAB * DIM; i++) {
        float a = 0;
        for (int k = 0; k < 4; k++) a += (float)hd_mt19937_next(&mt) / 4294967296.0f - 0.5f;
        w.embed[i] = hd_f32_to_bf16(a * 1.732f);
        w.head[i] = hd_f32_to_bf16(((float)hd_mt19937_next(&mt) / 4294967296.0f - 0.5f) * 0.5f);
    }
    for (int i = 0; i < DIM; i++) w.ones[i] = hd_f32_to_bf16(1.0f);
    for (int i = 0; i < DIM * DIM; i++)
        w.small[i] = hd_f32_to_bf16(((float)hd_mt19937_next(&mt) / 4294967296.0f - 0.5f) * 0.2f);
    int32_t *story, *reason;
    size_t ns, nr;
    hd_tokenizer_encode(tok, STORY, strlen(STORY), 0, &story, &ns, &e);
    hd_tokenizer_encode(tok, REASONING, strlen(REASONING), 0, &reason, &nr, &e);
    int32_t nl = hd_tokenizer_token_id(tok, "\xc4\x8a"), nlnl = hd_tokenizer_token_id(tok, "\xc4\x8a\xc4\x8a");
    int32_t think = hd_tokenizer_token_id(tok, "<think>"), unthink = hd_tokenizer_token_id(tok, "</think>");
    int32_t end = hd_tokenizer_token_id(tok, "<|im_end|>");
    link(&w, nlnl, story[0]);
    for (size_t i = 1; i < ns; i++) link(&w, story[i - 1], story[i]);
    link(&w, story[ns - 1], end);
    link(&w, nl, think);
    link(&w, think, reason[0]);
    for (size_t i = 1; i < nr; i++) link(&w, reason[i - 1], reason[i]);
    link(&w, reason[nr - 1], unthink);
    link(&w, unthink, nlnl);
    free(story);
    free(reason);
    hd_tokenizer_free(tok);

    char path[700];
    snprintf(path, sizeof path, "%s/config.json", model_dir);
    char cfg[1024];
    snprintf(cfg, sizeof cfg, "{\"model_type\":\"qwen3\",\"vocab_size\":%d,\"hidden_size\":%d,"
             "\"intermediate_size\":%d,\"num_hidden_layers\":1,\"num_attention_heads\":2,"
             "\"num_key_value_heads\":1,\"head_dim\":32,\"rms_norm_eps\":1e-6,"
             "\"rope_theta\":1000000,\"max_position_embeddings\":4096,"
             "\"tie_word_embeddings\":false}", VOCAB, DIM, DIM);
    int rc = hd_test_write_file(path, cfg, strlen(cfg));
    const char *L = "model.layers.0.";
    char names[11][64];
    const char *sfx[11] = {"input_layernorm.weight", "post_attention_layernorm.weight",
                           "self_attn.q_norm.weight", "self_attn.k_norm.weight",
                           "self_attn.q_proj.weight", "self_attn.k_proj.weight",
                           "self_attn.v_proj.weight", "self_attn.o_proj.weight",
                           "mlp.gate_proj.weight", "mlp.up_proj.weight", "mlp.down_proj.weight"};
    for (int i = 0; i < 11; i++) snprintf(names[i], sizeof names[i], "%s%s", L, sfx[i]);
    hd_st_write_item it[14] = {
        {"model.embed_tokens.weight", HD_BF16, 2, {VOCAB, DIM}, w.embed, NULL, NULL},
        {"lm_head.weight", HD_BF16, 2, {VOCAB, DIM}, w.head, NULL, NULL},
        {"model.norm.weight", HD_BF16, 1, {DIM}, w.ones, NULL, NULL},
        {names[0], HD_BF16, 1, {DIM}, w.ones, NULL, NULL},
        {names[1], HD_BF16, 1, {DIM}, w.ones, NULL, NULL},
        {names[2], HD_BF16, 1, {32}, w.ones, NULL, NULL},
        {names[3], HD_BF16, 1, {32}, w.ones, NULL, NULL},
        {names[4], HD_BF16, 2, {64, DIM}, w.small, NULL, NULL},
        {names[5], HD_BF16, 2, {32, DIM}, w.small, NULL, NULL},
        {names[6], HD_BF16, 2, {32, DIM}, w.small, NULL, NULL},
        {names[7], HD_BF16, 2, {DIM, 64}, w.zeros_dd, NULL, NULL},
        {names[8], HD_BF16, 2, {DIM, DIM}, w.small, NULL, NULL},
        {names[9], HD_BF16, 2, {DIM, DIM}, w.small, NULL, NULL},
        {names[10], HD_BF16, 2, {DIM, DIM}, w.zeros_dd, NULL, NULL},
    };
    snprintf(path, sizeof path, "%s/model.safetensors", model_dir);
    if (rc == 0 && hd_st_write(path, it, 14, &e) < 0) {
        fprintf(stderr, "%s\n", e.msg);
        rc = -1;
    }
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "cp '%s' '%s/tokenizer.json'", tok_path, model_dir);
    if (rc == 0) rc = hd_test_run(cmd, NULL, 0);
    free(w.embed);
    free(w.head);
    free(w.ones);
    free(w.zeros_dd);
    free(w.small);
    return rc;
}

typedef struct capture {
    char text[8192];
    size_t n;
    int warnings, final;
    char last[1024];
} capture;

static void on_piece(void *user, const char *p, size_t n) {
    capture *c = user;
    if (c->n + n < sizeof c->text) {
        memcpy(c->text + c->n, p, n);
        c->n += n;
        c->text[c->n] = 0;
    }
}

static void on_warn(void *user, int final, const char *line) {
    capture *c = user;
    c->warnings++;
    c->final += final;
    snprintf(c->last, sizeof c->last, "%s", line);
}

static hd_local_opts opts(capture *c) {
    hd_local_opts o;
    hd_local_defaults(&o);
    o.dir = model_dir;
    o.n_threads = 1;
    o.sampling.temperature = 0;
    o.max_new_tokens = 64;
    o.stream = on_piece;
    o.warn = on_warn;
    o.stream_user = o.warn_user = c;
    return o;
}

static void test_greedy_answer_is_the_prompt_and_is_streamed(void) {
    capture c = {0};
    hd_local_opts o = opts(&c);
    hd_refine_result r;
    hd_error e = {0};
    CHECKF(hd_refine_local("a fox in winter", &o, &r, &e) == 0, "%s", e.msg);
    CHECKF(r.refined && r.prompt && !strcmp(r.prompt, STORY), "%s", r.prompt);
    CHECK(r.reasoning == NULL && r.requests == 1 && c.warnings == 0);
    CHECKF(!strcmp(c.text, STORY), "streamed '%s'", c.text);
    hd_refine_result_free(&r);
}

static void test_thinking_is_generated_and_dropped_from_the_prompt(void) {
    capture c = {0};
    hd_local_opts o = opts(&c);
    o.thinking = 1;
    hd_refine_result r;
    hd_error e = {0};
    CHECKF(hd_refine_local("a fox in winter", &o, &r, &e) == 0, "%s", e.msg);
    CHECKF(r.refined && r.prompt && !strcmp(r.prompt, STORY), "%s", r.prompt);
    CHECKF(r.reasoning && !strcmp(r.reasoning, REASONING), "%s", r.reasoning);
    CHECKF(!strcmp(c.text, "<think>" REASONING "</think>\n\n" STORY), "streamed '%s'", c.text);
    hd_refine_result_free(&r);
}

static void test_short_answer_falls_back_with_one_warning_and_no_retry(void) {
    capture c = {0};
    hd_local_opts o = opts(&c);
    o.max_new_tokens = 3; /* "A red fox": fewer than 6 words */
    hd_refine_result r;
    hd_error e = {0};
    CHECK(hd_refine_local("a fox in winter", &o, &r, &e) == 0);
    CHECK(!r.refined && !strcmp(r.prompt, "a fox in winter") && r.requests == 1);
    CHECKF(c.final == 1 && strstr(c.last, "degenerate") && strstr(c.last, "using it unchanged"),
           "%s", c.last);
    hd_refine_result_free(&r);
}

static void test_sampling_is_reproducible_by_seed(void) {
    char text[3][8192];
    uint64_t seeds[3] = {5, 5, 6};
    for (int i = 0; i < 3; i++) {
        capture c = {0};
        hd_local_opts o = opts(&c);
        o.sampling = (hd_sampling){30.0f, 0, 1.0f, 1.0f, seeds[i]}; /* near uniform */
        o.max_new_tokens = 12;
        o.attempts = 1;
        hd_refine_result r;
        hd_error e = {0};
        CHECK(hd_refine_local("a fox", &o, &r, &e) == 0);
        snprintf(text[i], sizeof text[i], "%s", c.text);
        hd_refine_result_free(&r);
    }
    CHECKF(!strcmp(text[0], text[1]), "'%s' vs '%s'", text[0], text[1]);
    CHECK(strcmp(text[0], text[2]) != 0 && strcmp(text[0], STORY) != 0);
}

static void test_unusable_model_directories_are_errors(void) {
    capture c = {0};
    hd_local_opts o = opts(&c);
    hd_refine_result r;
    hd_error e = {0};
    o.dir = "/nonexistent/model";
    CHECK(hd_refine_local("a fox", &o, &r, &e) == HD_EIO && strstr(e.msg, "/nonexistent/model"));
    char dir[256], cmd[2048];
    hd_test_tmpdir(dir, sizeof dir);
    snprintf(cmd, sizeof cmd, "cp '%s/tokenizer.json' '%s/' && echo '{\"model_type\":\"llama\"}' > "
             "'%s/config.json'", model_dir, dir, dir);
    CHECK(hd_test_run(cmd, NULL, 0) == 0);
    o.dir = dir;
    CHECK(hd_refine_local("a fox", &o, &r, &e) == HD_EUNSUPPORTED && strstr(e.msg, "llama"));
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    hd_test_run(cmd, NULL, 0);
}

static int run(char *out, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int run(char *out, size_t n, const char *fmt, ...) {
    char cmd[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    return hd_test_run(cmd, out, n);
}

static void test_cli_refine_local_and_generate(void) {
    const char *bin = getenv("HIDREAM_BIN");
    if (!bin) bin = "./hidream";
    char out[16384];
    CHECK(run(out, sizeof out, "'%s' refine -p 'a fox' --local '%s' --temperature 0 --threads 1",
              bin, model_dir) == 0);
    CHECKF(!strcmp(out, STORY "\n"), "%s", out);
    CHECK(run(out, sizeof out, "'%s' refine -p 'a fox' --local '%s' --temperature 0 --think --json",
              bin, model_dir) == 0);
    CHECKF(strstr(out, "\"prompt\": \"" STORY "\"") && strstr(out, "\"reasoning\": \"" REASONING "\"") &&
               strstr(out, "\"refined\": true"), "%s", out);
    CHECK(run(out, sizeof out, "'%s' refine -p 'a fox' --local /nonexistent", bin) == 2 &&
          strstr(out, "/nonexistent") && strchr(out, '\n') == out + strlen(out) - 1);
    CHECK(run(out, sizeof out, "'%s' refine -p 'a fox' --local '%s' --top-p 2", bin, model_dir) == 2 &&
          strstr(out, "--top-p"));
    /* generate --refine-local (implies --refine): the picture records both prompts */
    char dir[256], png[512], model[1024];
    hd_test_tmpdir(dir, sizeof dir);
    snprintf(png, sizeof png, "%s/l.png", dir);
    hd_test_shared(model, sizeof model, "golden/model-tiny");
    CHECK(run(out, sizeof out, "'%s' generate -m '%s' -p 'a fox' -o '%s' --steps 1 --width 64 "
                               "--height 64 --refine-local '%s' --refine-temperature 0",
              bin, model, png, model_dir) == 0);
    hd_png_text t = {0};
    hd_error e = {0};
    CHECKF(hd_png_read_text(png, &t, &e) == 0, "%s: %s", e.msg, out);
    const char *pr = hd_png_text_get(&t, "hidream:prompt"), *raw = hd_png_text_get(&t, "hidream:raw_prompt");
    const char *how = hd_png_text_get(&t, "hidream:refine");
    CHECKF(pr && !strcmp(pr, STORY), "%s", pr);
    CHECK(raw && !strcmp(raw, "a fox") && how && !strcmp(how, model_dir));
    hd_png_text_free(&t);
    run(out, sizeof out, "rm -rf '%s'", dir);
}

int main(void) {
    hd_test_shared(tok_path, sizeof tok_path, "data/qwen3-tokenizer/tokenizer.json");
    hd_test_tmpdir(model_dir, sizeof model_dir);
    if (write_model() < 0) return 1;
    RUN_TEST(test_greedy_answer_is_the_prompt_and_is_streamed);
    RUN_TEST(test_thinking_is_generated_and_dropped_from_the_prompt);
    RUN_TEST(test_short_answer_falls_back_with_one_warning_and_no_retry);
    RUN_TEST(test_sampling_is_reproducible_by_seed);
    RUN_TEST(test_unusable_model_directories_are_errors);
    RUN_TEST(test_cli_refine_local_and_generate);
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", model_dir);
    hd_test_run(cmd, NULL, 0);
    return hd_test_finish();
}
