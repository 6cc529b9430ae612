/* Prompt limits and prompt errors of `hidream generate` (tiny golden model, 64x64): a prompt
 * over HD_MAX_PROMPT_TOKENS tokens or HD_MAX_PROMPT_BYTES bytes, one holding a special token of
 * the template, one with invalid UTF-8 or one with no tokens gives exactly one line naming the
 * prompt at fault (conditional or --uncond), exit 2 and no file — quickly, before any compute;
 * a PNG recipe with an oversized text chunk is refused without reading it into a prompt. */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "hidream.h"
#include "image/codec.h"
#include "image/image.h"
#include "testutil.h"

static char dir[512], bin[1024], model[1024], out[8192];
static char png[700], argfile[700];

/* Runs generate with the prompt (and uncond, if any) passed from files, so any bytes fit. */
static int gen_with(const char *prompt, const char *uncond, const char *extra) {
    char pf[700], uf[700], cmd[8192];
    snprintf(pf, sizeof pf, "%s/prompt.txt", dir);
    snprintf(uf, sizeof uf, "%s/uncond.txt", dir);
    hd_test_write_file(pf, prompt, strlen(prompt));
    if (uncond) hd_test_write_file(uf, uncond, strlen(uncond));
    unlink(png);
    snprintf(cmd, sizeof cmd,
             "'%s' generate -m '%s' -p \"$(cat '%s')\" %s%s%s -o '%s' --width 64 --height 64 "
             "--no-snap --steps 1 %s 2>&1",
             bin, model, pf, uncond ? "--uncond \"$(cat '" : "", uncond ? uf : "",
             uncond ? "')\"" : "", png, extra);
    return hd_test_run(cmd, out, sizeof out);
}

static int one_line(const char *s) {
    const char *nl = strchr(s, '\n');
    return nl && !nl[1];
}

static void expect_refused(int rc, const char *needle, const char *what) {
    CHECKF(rc == 2, "%s: rc %d: %.300s", what, rc, out);
    CHECKF(strstr(out, needle) != NULL, "%s: message lacks '%s': %.300s", what, needle, out);
    CHECKF(one_line(out), "%s: not one line: %.300s", what, out);
    CHECKF(access(png, F_OK) != 0, "%s: a file was written", what);
}

static char *repeat(const char *unit, size_t times) {
    size_t u = strlen(unit);
    char *s = malloc(u * times + 1);
    for (size_t i = 0; i < times; i++) memcpy(s + i * u, unit, u);
    s[u * times] = 0;
    return s;
}

static void prompt_over_the_token_limit_is_one_error(void) {
    char *p = repeat("a ", HD_MAX_PROMPT_TOKENS + 100); /* one token per word or more */
    time_t t0 = time(NULL);
    expect_refused(gen_with(p, NULL, ""), "over the limit of 4096 tokens", "long prompt");
    CHECKF(time(NULL) - t0 < 30, "refusing took %lds", (long)(time(NULL) - t0));
    CHECK(strncmp(out, "hidream generate: prompt:", 25) == 0);
    free(p);
}

static void prompt_over_the_byte_limit_is_one_error(void) {
    char *p = repeat("abcdefgh", HD_MAX_PROMPT_BYTES / 8 + 1);
    expect_refused(gen_with(p, NULL, ""), "over the limit of 65536 bytes", "huge prompt");
    free(p);
}

static void long_unconditional_prompt_is_named_as_such(void) {
    char *u = repeat("b ", HD_MAX_PROMPT_TOKENS + 100);
    expect_refused(gen_with("a red circle", u, "--cfg 3"), "unconditional prompt:", "long uncond");
    free(u);
}

static void special_tokens_in_the_prompt_are_refused_by_name(void) {
    const char *tokens[] = {"<|image_pad|>", "<|boi_token|>", "<|vision_start|>", "<|im_end|>"};
    for (int i = 0; i < 4; i++) {
        char p[128];
        snprintf(p, sizeof p, "a red %s circle", tokens[i]);
        expect_refused(gen_with(p, NULL, ""), tokens[i], tokens[i]);
        CHECKF(strstr(out, "prompt: contains the special token") != NULL, "%s", out);
    }
}

static void invalid_utf8_names_the_prompt_at_fault(void) {
    expect_refused(gen_with("a red \xff circle", NULL, ""), "prompt: invalid UTF-8", "prompt");
    CHECK(strstr(out, "unconditional") == NULL);
    expect_refused(gen_with("a red circle", "bad \xc3", "--cfg 3"),
                   "unconditional prompt: invalid UTF-8", "uncond");
}

static void empty_prompt_is_refused(void) {
    expect_refused(gen_with("", NULL, ""), "prompt: empty", "empty prompt");
}

/* A PNG whose recipe holds a 1 MiB prompt (tEXt, and iTXt when not ASCII): refused as a whole. */
static void oversized_recipe_text_is_refused(void) {
    hd_image im;
    hd_error e;
    CHECK(hd_image_alloc(&im, 8, 8, &e) == 0);
    const char *units[] = {"word ", "w\xc3\xa9rd "};
    for (int k = 0; k < 2; k++) {
        char *big = repeat(units[k], (1u << 20) / strlen(units[k]));
        hd_text_kv kv[2] = {{"hidream:prompt", big}, {"hidream:seed", "1"}};
        hd_save_opts so = {0, 0, kv, 2};
        CHECK(hd_image_save(argfile, &im, &so, &e) == 0);
        unlink(png);
        char cmd[8192];
        snprintf(cmd, sizeof cmd, "'%s' generate -m '%s' --from-png '%s' -o '%s' 2>&1", bin,
                 model, argfile, png);
        expect_refused(hd_test_run(cmd, out, sizeof out), "text chunk", units[k]);
        free(big);
    }
    /* 100 KiB: within the chunk limit, over the prompt limit */
    char *mid = repeat("word ", 20000);
    hd_text_kv kv[1] = {{"hidream:prompt", mid}};
    hd_save_opts so = {0, 0, kv, 1};
    CHECK(hd_image_save(argfile, &im, &so, &e) == 0);
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "'%s' generate -m '%s' --from-png '%s' -o '%s' 2>&1", bin, model,
             argfile, png);
    expect_refused(hd_test_run(cmd, out, sizeof out), "hidream:prompt: 100000 bytes", "100 KiB");
    free(mid);
    hd_image_free(&im);
}

int main(void) {
    const char *b = getenv("HIDREAM_BIN");
    if (!b) return fprintf(stderr, "HIDREAM_BIN is not set\n"), 2;
    snprintf(bin, sizeof bin, "%s", b);
    hd_test_shared(model, sizeof model, "golden/model-tiny");
    hd_test_tmpdir(dir, sizeof dir);
    snprintf(png, sizeof png, "%s/out.png", dir);
    snprintf(argfile, sizeof argfile, "%s/recipe.png", dir);
    RUN_TEST(prompt_over_the_token_limit_is_one_error);
    RUN_TEST(prompt_over_the_byte_limit_is_one_error);
    RUN_TEST(long_unconditional_prompt_is_named_as_such);
    RUN_TEST(special_tokens_in_the_prompt_are_refused_by_name);
    RUN_TEST(invalid_utf8_names_the_prompt_at_fault);
    RUN_TEST(empty_prompt_is_refused);
    RUN_TEST(oversized_recipe_text_is_refused);
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    hd_test_run(cmd, out, sizeof out);
    return hd_test_finish();
}
