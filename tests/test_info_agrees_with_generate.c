/* `hidream info` calls a model usable exactly when `hidream generate` can use it: each broken
 * tokenizer (bad regex, empty vocab, an id out of range, a non-BPE model, a merge of unknown
 * tokens, an unsupported normalizer, no <|boi_token|>) makes both exit 2 with one line; a vision
 * tower with an unknown activation is reported as unusable by info, and refused by generate for
 * references only. Variants of the tiny golden model, built with jansson. */
#include <jansson.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testutil.h"

static char dir[512], bin[1024], model[1024], out[8192];

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...) {
    char cmd[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    return hd_test_run(cmd, out, sizeof out);
}

static int one_line(void) {
    const char *nl = strchr(out, '\n');
    return nl && !nl[1];
}

typedef void (*edit_fn)(json_t *tok);

static void bad_regex(json_t *t) {
    json_t *split = json_array_get(json_object_get(json_object_get(t, "pre_tokenizer"),
                                                   "pretokenizers"), 0);
    json_object_set_new(json_object_get(split, "pattern"), "Regex", json_string("(?i:'s|[a-"));
}
static void empty_vocab(json_t *t) {
    json_object_set_new(json_object_get(t, "model"), "vocab", json_object());
}
static void id_out_of_range(json_t *t) {
    json_object_set_new(json_object_get(json_object_get(t, "model"), "vocab"), "zzz",
                        json_integer(99999999));
}
static void wordpiece(json_t *t) {
    json_object_set_new(json_object_get(t, "model"), "type", json_string("WordPiece"));
}
static void unknown_merge(json_t *t) {
    json_t *merges = json_array();
    json_array_append_new(merges, json_string("notatoken alsonot"));
    json_object_set_new(json_object_get(t, "model"), "merges", merges);
}
static void precompiled_normalizer(json_t *t) {
    json_t *n = json_object();
    json_object_set_new(n, "type", json_string("Precompiled"));
    json_object_set_new(n, "precompiled_charsmap", json_string("AAAA"));
    json_object_set_new(t, "normalizer", n);
}
static void no_boi_token(json_t *t) {
    json_t *added = json_object_get(t, "added_tokens"), *keep = json_array();
    size_t i;
    json_t *v;
    json_array_foreach(added, i, v)
        if (strcmp(json_string_value(json_object_get(v, "content")), "<|boi_token|>"))
            json_array_append(keep, v);
    json_object_set_new(t, "added_tokens", keep);
}

/* A model directory whose tokenizer.json is the golden one edited by fn. */
static int make_variant(const char *name, edit_fn fn, char *mdir, size_t n) {
    snprintf(mdir, n, "%s/%s", dir, name);
    if (sh("mkdir -p '%s' && ln -sf '%s/model.safetensors' '%s/config.json' '%s/'", mdir, model,
           model, mdir))
        return -1;
    char src[1100], dst[1100];
    snprintf(src, sizeof src, "%s/tokenizer.json", model);
    snprintf(dst, sizeof dst, "%s/tokenizer.json", mdir);
    json_t *t = json_load_file(src, 0, NULL);
    if (!t) return -1;
    fn(t);
    int rc = json_dump_file(t, dst, 0);
    json_decref(t);
    return rc;
}

static void broken_tokenizers_are_unusable_for_info_and_generate(void) {
    static const struct {
        const char *name;
        edit_fn fn;
    } cases[] = {
        {"bad-regex", bad_regex},         {"empty-vocab", empty_vocab},
        {"id-out-of-range", id_out_of_range}, {"wordpiece", wordpiece},
        {"unknown-merge", unknown_merge}, {"precompiled", precompiled_normalizer},
        {"no-boi", no_boi_token},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char m[700];
        CHECKF(make_variant(cases[i].name, cases[i].fn, m, sizeof m) == 0, "%s", cases[i].name);
        int info = sh("{ '%s' info '%s' > '%s/info.out'; }", bin, m, dir);
        CHECKF(info == 2 && one_line(), "%s: info rc %d: %s", cases[i].name, info, out);
        int gen = sh("'%s' generate -m '%s' -p 'a red circle' -o '%s/x.png' --width 64 "
                     "--height 64 --no-snap --steps 1 2>&1", bin, m, dir);
        CHECKF(gen == 2 && one_line(), "%s: generate rc %d: %s", cases[i].name, gen, out);
    }
    CHECK(access("x.png", F_OK) != 0);
}

static void unusable_vision_tower_is_reported_by_info(void) {
    char m[700];
    snprintf(m, sizeof m, "%s/bad-act", dir);
    CHECK(sh("mkdir -p '%s' && ln -sf '%s/model.safetensors' '%s/tokenizer.json' '%s/' && "
             "sed 's/gelu_pytorch_tanh/quick_swish/' '%s/config.json' > '%s/config.json'", m, model,
             model, m, model, m) == 0);
    int rc = sh("'%s' info '%s' 2>&1", bin, m);
    CHECKF(rc == 0 && strstr(out, "unusable:") && strstr(out, "quick_swish") &&
               strstr(out, "reference tasks: unavailable"), "rc %d: %s", rc, out);
    rc = sh("'%s' info '%s' 2>&1", bin, model);
    CHECKF(rc == 0 && !strstr(out, "unusable") && strstr(out, "reference task (1 image)"),
           "golden: rc %d: %s", rc, out);
}

int main(void) {
    const char *b = getenv("HIDREAM_BIN");
    if (!b) return fprintf(stderr, "HIDREAM_BIN is not set\n"), 2;
    snprintf(bin, sizeof bin, "%s", b);
    hd_test_shared(model, sizeof model, "golden/model-tiny");
    hd_test_tmpdir(dir, sizeof dir);
    RUN_TEST(broken_tokenizers_are_unusable_for_info_and_generate);
    RUN_TEST(unusable_vision_tower_is_reported_by_info);
    sh("rm -rf '%s'", dir);
    return hd_test_finish();
}
