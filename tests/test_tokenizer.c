/* The byte-level BPE tokenizer and the HiDream chat template (src/text).
 *
 * - the tiny golden model's tokenizer reproduces every input_ids tensor of the golden set from
 *   the prompts in cases.json (conditional, unconditional " ", and reference-image layouts with
 *   the image-token counts read from the golden ids);
 * - malformed tokenizer.json files are refused with a message naming the field;
 * - Hugging Face behaviours that a naive port gets wrong (Oniguruma's \s, Unicode 16 letters,
 *   Unicode 9 NFC, added-token lstrip/rstrip/single_word/normalized, empty regex matches) give
 *   the ids the `tokenizers` library gives (expected ids below were produced with it);
 * - invalid UTF-8 is rejected with its byte offset, or replaced behind the flag;
 * - decode(encode(x)) round trips;
 * - the CLI's check-tokenizer reports malformed case lines as failures. */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "io/safetensors.h"
#include "testutil.h"
#include "text/bytelevel.h"
#include "text/chat_template.h"
#include "text/tokenizer.h"
#include "text/utf8.h"

/* ---- helpers ----------------------------------------------------------------------------- */

static hd_tokenizer *load_shared(const char *rel) {
    char path[1024];
    hd_error e = {0};
    hd_tokenizer *tok = NULL;
    hd_test_shared(path, sizeof path, rel);
    int rc = hd_tokenizer_load(&tok, path, &e);
    CHECKF(rc == 0, "%s", e.msg);
    return rc ? NULL : tok;
}

static int ids_equal(const int32_t *a, size_t na, const int32_t *b, size_t nb) {
    return na == nb && (na == 0 || !memcmp(a, b, na * sizeof *a));
}

/* Encodes s (NUL-terminated) and compares with want[0..nw). */
static int encodes_to(const hd_tokenizer *tok, const char *s, const int32_t *want, size_t nw) {
    int32_t *ids = NULL;
    size_t n = 0;
    hd_error e = {0};
    if (hd_tokenizer_encode(tok, s, strlen(s), 0, &ids, &n, &e)) {
        fprintf(stderr, "  encode failed: %s\n", e.msg);
        return 0;
    }
    int ok = ids_equal(ids, n, want, nw);
    if (!ok) {
        fprintf(stderr, "  got:");
        for (size_t i = 0; i < n; i++) fprintf(stderr, " %d", (int)ids[i]);
        fprintf(stderr, "\n");
    }
    free(ids);
    return ok;
}
#define ENCODES_TO(tok, s, ...)                                                        \
    do {                                                                               \
        const int32_t want_[] = {__VA_ARGS__};                                         \
        CHECKF(encodes_to(tok, s, want_, sizeof want_ / sizeof *want_), "text \"%s\"", s); \
    } while (0)

/* A synthetic byte-level tokenizer.json: the 256 byte tokens (id = byte), merged tokens
 * ab=256 abc=257 Ġa=258 ĠĠ=259 cd=260, and added tokens <mask>=261 (lstrip, rstrip),
 * [SW]=262 (single_word), ǘ=263 (normalized), <s>=264, <s>x=265. Pieces can be overridden. */
typedef struct syn_opts {
    const char *model_type;   /* default "BPE" */
    const char *vocab_extra;  /* entries after the byte tokens */
    const char *merges;       /* the merges array body */
    const char *added;        /* the added_tokens array body */
    const char *pre_tokenizer;/* whole pre_tokenizer value */
    const char *normalizer;   /* whole normalizer value */
    const char *model_extra;  /* extra model members, starting with ',' */
    int no_vocab;
} syn_opts;

#define QWEN_PATTERN_JSON                                                                  \
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\\\r\\\\n\\\\p{L}\\\\p{N}]?\\\\p{L}+|\\\\p{N}| "       \
    "?[^\\\\s\\\\p{L}\\\\p{N}]+[\\\\r\\\\n]*|\\\\s*[\\\\r\\\\n]+|\\\\s+(?!\\\\S)|\\\\s+"

static const char *split_pre_tokenizer(const char *pattern_json, char *buf, size_t n) {
    snprintf(buf, n,
             "{\"type\":\"Sequence\",\"pretokenizers\":[{\"type\":\"Split\",\"pattern\":"
             "{\"Regex\":\"%s\"},\"behavior\":\"Isolated\",\"invert\":false},{\"type\":"
             "\"ByteLevel\",\"add_prefix_space\":false,\"trim_offsets\":false,\"use_regex\":false}]}",
             pattern_json);
    return buf;
}

static char *syn_json(const syn_opts *o) {
    size_t cap = 64 * 1024;
    char *j = malloc(cap), pre[1024];
    size_t w = 0;
    w += (size_t)snprintf(j + w, cap - w, "{\"version\":\"1.0\",\"added_tokens\":[%s],",
                          o->added ? o->added :
                          "{\"id\":261,\"content\":\"<mask>\",\"single_word\":false,\"lstrip\":true,"
                          "\"rstrip\":true,\"normalized\":false,\"special\":true},"
                          "{\"id\":262,\"content\":\"[SW]\",\"single_word\":true,\"lstrip\":false,"
                          "\"rstrip\":false,\"normalized\":false,\"special\":false},"
                          "{\"id\":263,\"content\":\"\\u01d8\",\"single_word\":false,\"lstrip\":false,"
                          "\"rstrip\":false,\"normalized\":true,\"special\":false},"
                          "{\"id\":264,\"content\":\"<s>\",\"single_word\":false,\"lstrip\":false,"
                          "\"rstrip\":false,\"normalized\":false,\"special\":true},"
                          "{\"id\":265,\"content\":\"<s>x\",\"single_word\":false,\"lstrip\":false,"
                          "\"rstrip\":false,\"normalized\":false,\"special\":true}");
    w += (size_t)snprintf(j + w, cap - w,
                          "\"normalizer\":%s,\"pre_tokenizer\":%s,\"post_processor\":null,"
                          "\"decoder\":{\"type\":\"ByteLevel\",\"add_prefix_space\":false,"
                          "\"trim_offsets\":false,\"use_regex\":false},",
                          o->normalizer ? o->normalizer : "{\"type\":\"NFC\"}",
                          o->pre_tokenizer ? o->pre_tokenizer
                                           : split_pre_tokenizer(QWEN_PATTERN_JSON, pre, sizeof pre));
    w += (size_t)snprintf(j + w, cap - w,
                          "\"model\":{\"type\":\"%s\",\"dropout\":null,\"unk_token\":null,"
                          "\"byte_fallback\":false,\"ignore_merges\":false%s",
                          o->model_type ? o->model_type : "BPE", o->model_extra ? o->model_extra : "");
    if (!o->no_vocab) {
        w += (size_t)snprintf(j + w, cap - w, ",\"vocab\":{");
        for (int b = 0; b < 256; b++) {
            char ch[8];
            size_t k = hd_utf8_encode(hd_bytelevel_char((unsigned)b), ch);
            ch[k] = 0;
            const char *esc = b == '"' ? "\\\"" : b == '\\' ? "\\\\" : ch;
            w += (size_t)snprintf(j + w, cap - w, "%s\"%s\":%d", b ? "," : "", esc, b);
        }
        w += (size_t)snprintf(j + w, cap - w, ",%s}",
                              o->vocab_extra ? o->vocab_extra
                                             : "\"ab\":256,\"abc\":257,\"\\u0120a\":258,"
                                               "\"\\u0120\\u0120\":259,\"cd\":260");
    }
    w += (size_t)snprintf(j + w, cap - w, ",\"merges\":[%s]}}",
                          o->merges ? o->merges
                                    : "\"a b\",\"ab c\",\"\\u0120 a\",\"\\u0120 \\u0120\",\"c d\"");
    return j;
}

/* Loads a synthetic tokenizer; returns the status and the message in e. */
static int syn_load(const syn_opts *o, hd_tokenizer **tok, hd_error *e) {
    char *j = syn_json(o);
    memset(e, 0, sizeof *e);
    int rc = hd_tokenizer_load_buffer(tok, j, strlen(j), "syn.json", e);
    free(j);
    return rc;
}

static int load_text_fails(const char *json, const char *must_contain) {
    hd_tokenizer *tok = NULL;
    hd_error e = {0};
    int rc = hd_tokenizer_load_buffer(&tok, json, strlen(json), "bad.json", &e);
    if (rc == 0) {
        hd_tokenizer_free(tok);
        fprintf(stderr, "  loaded although it should not: %s\n", must_contain);
        return 0;
    }
    if (!strstr(e.msg, must_contain) || !strstr(e.msg, "bad.json")) {
        fprintf(stderr, "  message \"%s\" lacks \"%s\"\n", e.msg, must_contain);
        return 0;
    }
    return tok == NULL;
}

static int syn_fails(const syn_opts *o, const char *must_contain) {
    hd_tokenizer *tok = NULL;
    hd_error e;
    int rc = syn_load(o, &tok, &e);
    if (rc == 0) {
        hd_tokenizer_free(tok);
        fprintf(stderr, "  loaded although it should not: %s\n", must_contain);
        return 0;
    }
    if (!strstr(e.msg, must_contain) || !strstr(e.msg, "syn.json")) {
        fprintf(stderr, "  message \"%s\" lacks \"%s\"\n", e.msg, must_contain);
        return 0;
    }
    return 1;
}

/* ---- golden: the tiny model's prompts -> input_ids ------------------------------------- */

/* Image-token counts of the reference layout in golden ids: runs of <|image_pad|> between
 * <|vision_start|> and <|vision_end|>. Returns the number of images (<= max). */
static int image_counts(const hd_tokenizer *tok, const int64_t *ids, size_t n, int *counts,
                        int max) {
    int vs = hd_tokenizer_token_id(tok, "<|vision_start|>");
    int pad = hd_tokenizer_token_id(tok, "<|image_pad|>");
    int k = 0;
    for (size_t i = 0; i < n; i++) {
        if (ids[i] != vs || k >= max) continue;
        int c = 0;
        while (i + 1 < n && ids[i + 1] == pad) {
            c++;
            i++;
        }
        counts[k++] = c;
    }
    return k;
}

/* The prompt of a golden case: its own "prompt", or that of the pipeline case its "from"
 * names (forward cases taken from a pipeline run). NULL if neither. */
static const char *case_prompt(json_t *cases, const char *section, const char *name) {
    json_t *c = json_object_get(json_object_get(cases, section), name);
    json_t *p = json_object_get(c, "prompt");
    if (json_is_string(p)) return json_string_value(p);
    json_t *from = json_object_get(c, "from");
    if (!json_is_string(from)) return NULL;
    const char *best = NULL;
    size_t best_len = 0;
    const char *key;
    json_t *pc;
    json_object_foreach(json_object_get(cases, "pipeline"), key, pc) {
        size_t kl = strlen(key);
        const char *hit = strstr(json_string_value(from), key);
        if (hit && kl > best_len && (hit[kl] == 0 || hit[kl] == ' ' || hit[kl] == ',') &&
            json_is_string(json_object_get(pc, "prompt"))) {
            best = json_string_value(json_object_get(pc, "prompt"));
            best_len = kl;
        }
    }
    return best;
}

/* Checks every "*.input_ids" tensor of one golden file; returns how many were compared. */
static int check_golden_file(const hd_tokenizer *tok, json_t *cases, const char *file) {
    char path[1024];
    hd_safetensors st;
    hd_error e = {0};
    hd_test_shared(path, sizeof path, file);
    if (hd_st_open(&st, path, &e)) {
        CHECKF(0, "%s", e.msg);
        return 0;
    }
    int compared = 0;
    for (int t = 0; t < st.n_tensors; t++) {
        const hd_st_tensor *ten = &st.tensors[t];
        const char *name = ten->name;
        size_t nl = strlen(name);
        static const char suffix[] = ".input_ids";
        if (nl <= sizeof suffix - 1 || strcmp(name + nl - (sizeof suffix - 1), suffix)) continue;
        /* forward.<case>.input_ids, or <case>.sample<k>.input_ids */
        char cname[256];
        const char *prompt = NULL;
        const char *section = "pipeline";
        size_t stem = nl - (sizeof suffix - 1);
        if (!strncmp(name, "forward.", 8)) {
            section = "forward";
            snprintf(cname, sizeof cname, "%.*s", (int)(stem - 8), name + 8);
            prompt = case_prompt(cases, section, cname);
        } else {
            const char *dot = NULL;
            for (const char *p = name; p < name + stem; p++)
                if (*p == '.') dot = p;
            if (!dot || strncmp(dot, ".sample", 7)) continue;
            snprintf(cname, sizeof cname, "%.*s", (int)(dot - name), name);
            /* sample0 is the conditional branch; the others are unconditional (" ") */
            prompt = !strncmp(dot, ".sample0", 8) && dot + 8 == name + stem
                         ? case_prompt(cases, section, cname) : " ";
        }
        if (!prompt) {
            printf("  skip %s (no prompt in cases.json)\n", name);
            continue;
        }
        size_t n = (size_t)ten->numel;
        int64_t *want = malloc((n + 1) * sizeof *want);
        if (!want || hd_st_read_i64(ten, want, n, &e)) {
            CHECKF(0, "%s: %s", name, e.msg);
            free(want);
            continue;
        }
        int counts[64];
        int k = image_counts(tok, want, n, counts, 64);
        int32_t *ids = NULL;
        size_t got = 0;
        int rc = hd_chat_encode(tok, prompt, k, counts, &ids, &got, &e);
        CHECKF(rc == 0, "%s: %s", name, e.msg);
        int same = rc == 0 && got == n;
        for (size_t i = 0; same && i < n; i++) same = ids[i] == want[i];
        CHECKF(same, "%s: prompt \"%s\" with %d image(s): %zu ids, golden has %zu", name, prompt,
               k, got, n);
        compared++;
        free(ids);
        free(want);
    }
    hd_st_close(&st);
    return compared;
}

static void test_tiny_tokenizer_reproduces_golden_input_ids(void) {
    hd_tokenizer *tok = load_shared("golden/model-tiny");
    char path[1024];
    json_error_t jerr;
    json_t *cases = json_load_file(hd_test_shared(path, sizeof path, "golden/model-tiny/cases.json"),
                                   0, &jerr);
    CHECKF(cases != NULL, "cases.json: %s", jerr.text);
    if (!tok || !cases) {
        hd_tokenizer_free(tok);
        json_decref(cases);
        return;
    }
    int n = check_golden_file(tok, cases, "golden/model-tiny/golden.safetensors");
    n += check_golden_file(tok, cases, "golden/model-tiny/pipeline.safetensors");
    CHECKF(n > 0, "no input_ids tensors found");
    printf("  %d golden input_ids compared\n", n);
    json_decref(cases);
    hd_tokenizer_free(tok);
}

/* ---- the real Qwen3 tokenizer ------------------------------------------------------------ */

static void test_real_tokenizer_renders_spec_unconditional_prompt(void) {
    hd_tokenizer *tok = load_shared("data/qwen3-tokenizer");
    if (!tok) return;
    char *text;
    size_t len;
    hd_error e = {0};
    CHECK(hd_chat_render(" ", 0, NULL, &text, &len, &e) == 0);
    CHECK(!strcmp(text, "<|im_start|>user\n <|im_end|>\n<|im_start|>assistant\n"));
    /* spec 02 §2 worked example, without the boi/tms ids this tokenizer does not have */
    ENCODES_TO(tok, text, 151644, 872, 198, 220, 151645, 198, 151644, 77091, 198);
    free(text);
    int pads[2] = {2, 1};
    CHECK(hd_chat_render("P", 2, pads, &text, &len, &e) == 0);
    CHECK(!strcmp(text, "<|im_start|>user\n<|vision_start|><|image_pad|><|image_pad|>"
                        "<|vision_end|><|vision_start|><|image_pad|><|vision_end|>P<|im_end|>\n"
                        "<|im_start|>assistant\n"));
    free(text);
    hd_tokenizer_free(tok);
}

static void test_chat_encode_requires_boi_and_tms_tokens(void) {
    hd_tokenizer *tok = load_shared("data/qwen3-tokenizer");
    if (!tok) return;
    int32_t *ids = NULL;
    size_t n = 0;
    hd_error e = {0};
    CHECK(hd_chat_encode(tok, "a cat", 0, NULL, &ids, &n, &e) == HD_EUNSUPPORTED);
    CHECK(strstr(e.msg, "<|boi_token|>") != NULL);
    CHECK(ids == NULL && n == 0);
    hd_tokenizer_free(tok);
}

static void test_chat_rejects_bad_image_counts_and_invalid_prompt(void) {
    hd_tokenizer *tok = load_shared("golden/model-tiny");
    if (!tok) return;
    int32_t *ids = NULL;
    size_t n = 0;
    hd_error e = {0};
    int zero = 0;
    CHECK(hd_chat_encode(tok, "x", 1, &zero, &ids, &n, &e) == HD_EINVAL);
    CHECK(hd_chat_encode(tok, "x", -1, NULL, &ids, &n, &e) == HD_EINVAL);
    CHECK(hd_chat_encode(tok, "ab\xC3", 0, NULL, &ids, &n, &e) == HD_EFORMAT);
    CHECK(strstr(e.msg, "byte offset 2") != NULL);
    hd_tokenizer_free(tok);
}

static void test_whitespace_class_matches_oniguruma(void) {
    hd_tokenizer *tok = load_shared("data/qwen3-tokenizer");
    if (!tok) return;
    /* Oniguruma's \s is White_Space: U+FEFF and U+180E are not in it (JavaScript takes U+FEFF,
     * PCRE2's UCP \s takes U+180E), U+0085 is */
    ENCODES_TO(tok, "  \xEF\xBB\xBF", 220, 75780);
    ENCODES_TO(tok, "  \xE1\xA0\x8E", 220, 86089, 254, 236);
    ENCODES_TO(tok, "a\xC2\x85" "b", 64, 126, 227, 65);
    hd_tokenizer_free(tok);
}

static void test_nfc_uses_huggingface_unicode9_data(void) {
    hd_tokenizer *tok = load_shared("data/qwen3-tokenizer");
    if (!tok) return;
    ENCODES_TO(tok, "e\xCC\x81", 963); /* e + U+0301 composes to é */
    /* U+1DF6 (Unicode 10) is not reordered before U+0316 */
    ENCODES_TO(tok, "a\xE1\xB7\xB6\xCC\x96", 64, 157, 115, 114, 136, 244);
    /* U+11935 U+11930 (Unicode 13) are not composed to U+11938 */
    ENCODES_TO(tok, "\xF0\x91\xA4\xB5\xF0\x91\xA4\xB0", 128240, 97, 113, 128240, 97, 108);
    hd_tokenizer_free(tok);
}

static void test_unicode16_letters_and_numbers_follow_oniguruma(void) {
    hd_tokenizer *tok = load_shared("data/qwen3-tokenizer");
    if (!tok) return;
    ENCODES_TO(tok, "a\xF0\xB1\x8D\x90" "b", 64, 172, 109, 235, 238, 65); /* U+31350 is a letter */
    ENCODES_TO(tok, "x\xF0\x9E\x93\x90y", 87, 172, 252, 241, 238, 88);   /* U+1E4D0 too */
    hd_tokenizer_free(tok);
}

static void test_added_tokens_split_before_bpe(void) {
    hd_tokenizer *tok = load_shared("data/qwen3-tokenizer");
    if (!tok) return;
    ENCODES_TO(tok, "a<|im_end|>b", 64, 151645, 65);
    ENCODES_TO(tok, "<|im_end", 27, 91, 318, 6213);
    ENCODES_TO(tok, "it'S", 275, 13272);
    CHECK(hd_tokenizer_token_id(tok, "<|im_start|>") == 151644);
    CHECK(hd_tokenizer_token_id(tok, "\xC4\xA0the") == 279); /* "Ġthe", a vocabulary token */
    CHECK(hd_tokenizer_token_id(tok, "<|no_such_token|>") == -1);
    CHECK(hd_tokenizer_vocab_size(tok) == 151669);
    hd_tokenizer_free(tok);
}

static void test_empty_text_and_nul_bytes(void) {
    hd_tokenizer *tok = load_shared("data/qwen3-tokenizer");
    if (!tok) return;
    int32_t *ids = NULL;
    size_t n = 99;
    hd_error e = {0};
    CHECK(hd_tokenizer_encode(tok, "", 0, 0, &ids, &n, &e) == 0);
    CHECK(n == 0 && ids != NULL);
    free(ids);
    CHECK(hd_tokenizer_encode(tok, "Hello\0world", 11, 0, &ids, &n, &e) == 0);
    const int32_t want[] = {9707, 188, 14615};
    CHECK(ids_equal(ids, n, want, 3));
    char *text;
    size_t len;
    CHECK(hd_tokenizer_decode(tok, ids, n, &text, &len, &e) == 0);
    CHECK(len == 11 && !memcmp(text, "Hello\0world", 11));
    free(text);
    free(ids);
    hd_tokenizer_free(tok);
}

/* ---- invalid UTF-8 ------------------------------------------------------------------------ */

static void test_invalid_utf8_is_rejected_with_offset(void) {
    hd_tokenizer *tok = load_shared("golden/model-tiny");
    if (!tok) return;
    static const struct {
        const char *s;
        size_t len, off;
    } bad[] = {
        {"ab\xFF" "cd", 5, 2},      /* impossible byte */
        {"abc\xE4\xB8", 5, 3},      /* truncated at the end */
        {"\xC0\xAF", 2, 0},         /* overlong */
        {"x\xED\xA0\x80", 4, 1},    /* surrogate */
        {"xy\xF4\x90\x80\x80", 6, 2}, /* above U+10FFFF */
        {"\x80", 1, 0},             /* lone continuation */
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        int32_t *ids = (int32_t *)1;
        size_t n = 7;
        hd_error e = {0};
        char want[64];
        snprintf(want, sizeof want, "byte offset %zu", bad[i].off);
        CHECKF(hd_tokenizer_encode(tok, bad[i].s, bad[i].len, 0, &ids, &n, &e) == HD_EFORMAT,
               "case %zu", i);
        CHECKF(strstr(e.msg, want) != NULL, "case %zu: \"%s\"", i, e.msg);
        CHECK(ids == NULL && n == 0);
    }
    hd_tokenizer_free(tok);
}

static void test_invalid_utf8_is_replaced_with_flag(void) {
    hd_tokenizer *tok = load_shared("data/qwen3-tokenizer");
    if (!tok) return;
    int32_t *a = NULL, *b = NULL;
    size_t na = 0, nb = 0;
    hd_error e = {0};
    /* F0 9F 98 is one maximal invalid subpart (one U+FFFD); FF another */
    CHECK(hd_tokenizer_encode(tok, "ab\xF0\x9F\x98x\xFF", 7, HD_TOK_REPLACE_INVALID_UTF8, &a, &na,
                              &e) == 0);
    const char *fixed = "ab\xEF\xBF\xBDx\xEF\xBF\xBD";
    CHECK(hd_tokenizer_encode(tok, fixed, strlen(fixed), 0, &b, &nb, &e) == 0);
    CHECK(na > 0 && ids_equal(a, na, b, nb));
    free(a);
    free(b);
    hd_tokenizer_free(tok);
}

/* ---- decode ------------------------------------------------------------------------------- */

static void test_decode_round_trip(void) {
    hd_tokenizer *tok = load_shared("data/qwen3-tokenizer");
    hd_tokenizer *tiny = load_shared("golden/model-tiny");
    if (!tok || !tiny) {
        hd_tokenizer_free(tok);
        hd_tokenizer_free(tiny);
        return;
    }
    static const char *texts[] = {
        "The quick brown fox jumps over the lazy dog.",
        "\xE4\xB8\x80\xE5\x8F\xAA\xE7\x8C\xAB cat! <|im_start|>user\n",
        "  tabs\tand\r\nnewlines\n\n\xE3\x80\x80 ideographic space",
        "emoji \xF0\x9F\x91\xA8\xE2\x80\x8D\xF0\x9F\x91\xA9\xE2\x80\x8D\xF0\x9F\x91\xA7 and 12345",
        "",
    };
    const hd_tokenizer *both[2] = {tok, tiny};
    for (int t = 0; t < 2; t++)
        for (size_t i = 0; i < sizeof texts / sizeof *texts; i++) {
            int32_t *ids;
            size_t n, len;
            char *back;
            hd_error e = {0};
            CHECK(hd_tokenizer_encode(both[t], texts[i], strlen(texts[i]), 0, &ids, &n, &e) == 0);
            CHECK(hd_tokenizer_decode(both[t], ids, n, &back, &len, &e) == 0);
            CHECKF(len == strlen(texts[i]) && !memcmp(back, texts[i], len), "text %zu", i);
            free(ids);
            free(back);
        }
    /* a split UTF-8 sequence decodes to U+FFFD, like Hugging Face */
    int32_t half[2] = {3490, 220}; /* bytes E4 B8 (2 of a 3-byte character), then " " */
    char *back;
    size_t len;
    hd_error e = {0};
    CHECK(hd_tokenizer_decode(tok, half, 2, &back, &len, &e) == 0);
    CHECK(len == 4 && !memcmp(back, "\xEF\xBF\xBD ", 4));
    free(back);
    hd_tokenizer_free(tok);
    hd_tokenizer_free(tiny);
}

static void test_decode_rejects_unknown_ids(void) {
    hd_tokenizer *tok = load_shared("golden/model-tiny");
    if (!tok) return;
    int32_t ids[2] = {5, 1 << 20};
    char *text = (char *)1;
    size_t len = 3;
    hd_error e = {0};
    CHECK(hd_tokenizer_decode(tok, ids, 2, &text, &len, &e) == HD_EINVAL);
    CHECK(strstr(e.msg, "ids[1]") != NULL);
    CHECK(text == NULL && len == 0);
    ids[1] = -1;
    CHECK(hd_tokenizer_decode(tok, ids, 2, &text, &len, &e) == HD_EINVAL);
    hd_tokenizer_free(tok);
}

/* ---- synthetic tokenizers: Hugging Face behaviours ---------------------------------------- */

static void test_bpe_merges_by_rank_and_added_token_options(void) {
    syn_opts o = {0};
    hd_tokenizer *tok;
    hd_error e;
    CHECKF(syn_load(&o, &tok, &e) == 0, "%s", e.msg);
    if (!tok) return;
    /* expected ids from Hugging Face tokenizers 0.23 on the same file */
    ENCODES_TO(tok, "abc abcd", 257, 32, 257, 100);
    ENCODES_TO(tok, "   a", 259, 258);
    ENCODES_TO(tok, "a <mask>  b", 97, 261, 98);                   /* lstrip + rstrip */
    ENCODES_TO(tok, "\t<mask>\t<mask>\xE2\x80\x80", 261, 261);      /* strips never overlap */
    ENCODES_TO(tok, "x[SW] [SW]y [SW]", 120, 91, 83, 87, 93, 32, 91, 83, 87, 93, 121, 32, 262);
    ENCODES_TO(tok, "_[SW]", 95, 91, 83, 87, 93);                   /* '_' is a word char */
    ENCODES_TO(tok, "\xC3\xA9[SW]-", 195, 169, 91, 83, 87, 93, 45);
    ENCODES_TO(tok, "u\xCC\x88\xCC\x81 and \xC7\x98", 263, 258, 110, 100, 32, 263); /* normalized */
    ENCODES_TO(tok, "<s>xy<s>", 265, 121, 264);                     /* longest match wins */
    ENCODES_TO(tok, "ab\xC2\x85" "cd", 256, 194, 133, 260);
    int32_t ids[3] = {261, 263, 258};
    char *text;
    size_t len;
    CHECK(hd_tokenizer_decode(tok, ids, 3, &text, &len, &e) == 0);
    CHECK(!strcmp(text, "<mask>\xC7\x98 a"));
    free(text);
    hd_tokenizer_free(tok);
}

static void test_merges_as_strings_equal_merges_as_pairs(void) {
    syn_opts o = {0};
    o.merges = "[\"a\",\"b\"],[\"ab\",\"c\"],[\"\\u0120\",\"a\"],[\"\\u0120\",\"\\u0120\"],[\"c\",\"d\"]";
    hd_tokenizer *tok;
    hd_error e;
    CHECKF(syn_load(&o, &tok, &e) == 0, "%s", e.msg);
    if (!tok) return;
    ENCODES_TO(tok, "abc abcd", 257, 32, 257, 100);
    ENCODES_TO(tok, "   a", 259, 258);
    hd_tokenizer_free(tok);
}

static void test_regex_split_skips_empty_matches_like_oniguruma(void) {
    char pre[1024];
    syn_opts o = {0};
    o.pre_tokenizer = split_pre_tokenizer("a*|b", pre, sizeof pre);
    o.added = "";
    o.merges = "";
    hd_tokenizer *tok;
    hd_error e;
    CHECKF(syn_load(&o, &tok, &e) == 0, "%s", e.msg);
    if (!tok) return;
    ENCODES_TO(tok, "baab", 98, 97, 97, 98);
    hd_tokenizer_free(tok);
    /* with merges, piece boundaries become visible: "ab" must not merge across a split */
    o.merges = "\"a b\"";
    o.pre_tokenizer = split_pre_tokenizer("a|(?=b)", pre, sizeof pre);
    CHECKF(syn_load(&o, &tok, &e) == 0, "%s", e.msg);
    if (!tok) return;
    ENCODES_TO(tok, "abab", 97, 98, 97, 98);
    hd_tokenizer_free(tok);
    /* Oniguruma's \w includes marks (PCRE2 10.42's does not): "a\u0316b" is one word, so the
     * merges across the mark apply */
    o.pre_tokenizer = split_pre_tokenizer("\\\\w+", pre, sizeof pre);
    o.vocab_extra = "\"ab\":256,\"abc\":257,\"\\u0120a\":258,\"\\u0120\\u0120\":259,\"cd\":260,"
                    "\"\\u00cc\\u0138\":266,\"\\u00cc\\u0138b\":267";
    o.merges = "\"a b\",\"\\u00cc \\u0138\",\"\\u00cc\\u0138 b\"";
    CHECKF(syn_load(&o, &tok, &e) == 0, "%s", e.msg);
    if (!tok) return;
    ENCODES_TO(tok, "a\xCC\x96" "b", 97, 267);
    ENCODES_TO(tok, "ab", 256);
    hd_tokenizer_free(tok);
}

static void test_letter_and_number_classes_are_unicode16(void) {
    /* a merge across the piece boundary shows whether the new character joined the word:
     * U+31350 (Unicode 15 letter) and U+1D2C0 (Unicode 15 number) do, U+323B0 (Unicode 17)
     * does not (Hugging Face's Oniguruma has Unicode 16 tables, PCRE2 10.42 Unicode 14) */
    char pre[1024];
    syn_opts o = {0};
    o.pre_tokenizer = split_pre_tokenizer("\\\\p{L}+|\\\\p{N}+", pre, sizeof pre);
    o.added = "";
    o.vocab_extra = "\"a\\u00f0\":266,\"1\\u00f0\":267";
    o.merges = "\"a \\u00f0\",\"1 \\u00f0\"";
    hd_tokenizer *tok;
    hd_error e;
    CHECKF(syn_load(&o, &tok, &e) == 0, "%s", e.msg);
    if (!tok) return;
    ENCODES_TO(tok, "a\xF0\xB1\x8D\x90", 266, 177, 141, 144);
    ENCODES_TO(tok, "1\xF0\x9D\x8B\x80", 267, 157, 139, 128);
    ENCODES_TO(tok, "a\xF0\xB2\x8E\xB0", 97, 240, 178, 142, 176);
    hd_tokenizer_free(tok);
}

static void test_bytelevel_pre_tokenizer_alone_uses_gpt2_pattern(void) {
    syn_opts o = {0};
    o.pre_tokenizer = "{\"type\":\"ByteLevel\",\"add_prefix_space\":true,\"use_regex\":true}";
    o.added = "";
    hd_tokenizer *tok;
    hd_error e;
    CHECKF(syn_load(&o, &tok, &e) == 0, "%s", e.msg);
    if (!tok) return;
    ENCODES_TO(tok, "a", 258);           /* prefix space: "Ġa" */
    ENCODES_TO(tok, "ab ab", 32, 256, 32, 256); /* " ab" " ab": Ġa is ranked after ab */
    hd_tokenizer_free(tok);
}

/* ---- malformed tokenizer files ------------------------------------------------------------ */

static void test_not_json_is_rejected(void) {
    CHECK(load_text_fails("this is not json", "not a JSON object"));
    CHECK(load_text_fails("[1,2,3]", "not a JSON object"));
    CHECK(load_text_fails("", "not a JSON object"));
    CHECK(load_text_fails("{\"model\": {\"vocab\": {\"a\": 1,}}}", "model.vocab"));
    CHECK(load_text_fails("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": []", 
                          "malformed JSON at byte"));
    CHECK(load_text_fails("{\"added_tokens\": [}, \"model\": {}}", "added_tokens"));
    CHECK(load_text_fails("{} trailing", "data after the JSON object"));
}

static void test_wrong_model_type_is_rejected(void) {
    syn_opts o = {0};
    o.model_type = "WordPiece";
    CHECK(syn_fails(&o, "model.type: 'WordPiece' is not supported"));
}

static void test_missing_vocab_is_rejected(void) {
    syn_opts o = {0};
    o.no_vocab = 1;
    o.merges = "";
    CHECK(syn_fails(&o, "model.vocab: missing"));
    CHECK(load_text_fails("{\"decoder\": {\"type\": \"ByteLevel\"}}", "model: missing"));
}

static void test_merge_naming_unknown_token_is_rejected(void) {
    syn_opts o = {0};
    o.merges = "\"a b\",\"zz q\"";
    CHECK(syn_fails(&o, "model.merges[1]: token 'zz' is not in model.vocab"));
    o.merges = "\"a c\"";
    CHECK(syn_fails(&o, "model.merges[0]: merged token"));
    o.merges = "\"a b c\"";
    CHECK(syn_fails(&o, "model.merges[0]"));
    o.merges = "[\"a\"]";
    CHECK(syn_fails(&o, "model.merges[0]: expected a pair of strings"));
}

static void test_bad_regex_is_rejected(void) {
    char pre[1024];
    syn_opts o = {0};
    o.pre_tokenizer = split_pre_tokenizer("(unclosed|", pre, sizeof pre);
    CHECK(syn_fails(&o, "pre_tokenizer.pretokenizers[0].pattern.Regex: invalid regular expression"));
    o.pre_tokenizer = split_pre_tokenizer("[a-z&&[^aeiou]]", pre, sizeof pre);
    CHECK(syn_fails(&o, "pre_tokenizer.pretokenizers[0].pattern.Regex"));
}

static void test_unsupported_components_are_rejected(void) {
    syn_opts o = {0};
    o.pre_tokenizer = "{\"type\":\"Sequence\",\"pretokenizers\":[{\"type\":\"Split\",\"pattern\":"
                      "{\"Regex\":\"a\"},\"behavior\":\"Removed\",\"invert\":false},"
                      "{\"type\":\"ByteLevel\",\"use_regex\":false}]}";
    CHECK(syn_fails(&o, "pre_tokenizer.pretokenizers[0].behavior: 'Removed'"));
    o.pre_tokenizer = "{\"type\":\"Whitespace\"}";
    CHECK(syn_fails(&o, "pre_tokenizer.type: 'Whitespace'"));
    o.pre_tokenizer = "null";
    CHECK(syn_fails(&o, "pre_tokenizer: missing"));
    o.pre_tokenizer = NULL;
    o.normalizer = "{\"type\":\"NFKC\"}";
    CHECK(syn_fails(&o, "normalizer.type: 'NFKC'"));
    o.normalizer = NULL;
    o.model_extra = ",\"byte_fallback\":true";
    CHECK(syn_fails(&o, "model.byte_fallback"));
    o.model_extra = ",\"continuing_subword_prefix\":\"##\"";
    CHECK(syn_fails(&o, "model.continuing_subword_prefix"));
    o.model_extra = ",\"dropout\":0.1";
    CHECK(syn_fails(&o, "model.dropout"));
}

static void test_inconsistent_vocab_and_added_tokens_are_rejected(void) {
    syn_opts o = {0};
    o.vocab_extra = "\"ab\":256,\"ab\":257";
    o.merges = "";
    CHECK(syn_fails(&o, "model.vocab: token 'ab' appears twice"));
    o.vocab_extra = "\"ab\":256,\"xy\":256";
    CHECK(syn_fails(&o, "model.vocab: id 256 is given to two tokens"));
    o.vocab_extra = "\"ab\":-1";
    CHECK(syn_fails(&o, "model.vocab: token 'ab': id -1 is outside"));
    o.vocab_extra = "\"ab\":\"x\"";
    CHECK(syn_fails(&o, "model.vocab: token 'ab': id is not an integer"));
    o.vocab_extra = NULL;
    o.merges = NULL;
    o.added = "{\"id\":300,\"content\":\"<x>\"},{\"id\":300,\"content\":\"<y>\"}";
    CHECK(syn_fails(&o, "added_tokens[1].id: 300 is already used"));
    o.added = "{\"id\":300,\"content\":\"<x>\"},{\"id\":301,\"content\":\"<x>\"}";
    CHECK(syn_fails(&o, "added_tokens[1].content: '<x>' appears twice"));
    o.added = "{\"id\":\"300\",\"content\":\"<x>\"}";
    CHECK(syn_fails(&o, "added_tokens[0].id"));
}

static void test_missing_file_is_an_io_error(void) {
    hd_tokenizer *tok = NULL;
    hd_error e = {0};
    CHECK(hd_tokenizer_load(&tok, "/nonexistent/dir/tokenizer.json", &e) == HD_EIO);
    CHECK(strstr(e.msg, "/nonexistent/dir/tokenizer.json") != NULL);
    CHECK(tok == NULL);
}

/* ---- CLI ---------------------------------------------------------------------------------- */

static void test_cli_check_tokenizer_reports_malformed_lines(void) {
    const char *bin = getenv("HIDREAM_BIN");
    if (!bin) {
        printf("  (HIDREAM_BIN not set: CLI not checked)\n");
        return;
    }
    char dir[512], cases[600], tokdir[1024], cmd[4096], out[8192];
    hd_test_tmpdir(dir, sizeof dir);
    snprintf(cases, sizeof cases, "%s/cases.jsonl", dir);
    hd_test_shared(tokdir, sizeof tokdir, "golden/model-tiny");
    hd_tokenizer *tok = load_shared("golden/model-tiny");
    if (!tok) return;
    /* the expected ids come from the library, so the test does not depend on the tiny vocab */
    int32_t *ids;
    size_t n;
    hd_error e = {0};
    CHECK(hd_tokenizer_encode(tok, "ab", 2, 0, &ids, &n, &e) == 0 && n == 2);
    char file[2048];
    snprintf(file, sizeof file,
             "{\"text\": \"ab\", \"ids\": [%d, %d], \"decoded\": \"ab\"}\n"
             "{\"text\": \"ab\", \"ids\": [%d, %d]}\n"
             "this line is not JSON\n"
             "\n"
             "{\"ids\": [1]}\n"
             "{\"text\": \"ab\", \"ids\": [%d, %d], \"decoded\": \"ax\"}\n"
             "{\"rendered\": \"ab\", \"ids\": [%d, %d]}\n",
             ids[0], ids[1], ids[0], ids[1] + 1, ids[0], ids[1], ids[0], ids[1]);
    CHECK(hd_test_write_file(cases, file, strlen(file)) == 0);
    snprintf(cmd, sizeof cmd, "'%s' check-tokenizer --tokenizer '%s' '%s'", bin, tokdir, cases);
    int rc = hd_test_run(cmd, out, sizeof out);
    CHECKF(rc == 1, "exit status %d", rc);
    CHECKF(strstr(out, "2 passed, 4 failed") != NULL, "%s", out);
    CHECKF(strstr(out, "FAIL 2: ids differ at index 1") != NULL, "%s", out);
    CHECKF(strstr(out, "FAIL 3: malformed JSON") != NULL, "%s", out);
    CHECKF(strstr(out, "FAIL 5: ") != NULL && strstr(out, "FAIL 6: decoded text differs") != NULL,
           "%s", out);
    /* an empty case file is a failure too (nothing was checked) */
    CHECK(hd_test_write_file(cases, "", 0) == 0);
    rc = hd_test_run(cmd, out, sizeof out);
    CHECKF(rc == 1 && strstr(out, "0 passed, 0 failed"), "exit %d: %s", rc, out);
    /* tokenize prints what the library computes; --decode inverts it */
    snprintf(cmd, sizeof cmd, "'%s' tokenize --tokenizer '%s' ab", bin, tokdir);
    rc = hd_test_run(cmd, out, sizeof out);
    char want[64];
    snprintf(want, sizeof want, "%d %d\n", ids[0], ids[1]);
    CHECKF(rc == 0 && !strcmp(out, want), "exit %d: %s", rc, out);
    snprintf(cmd, sizeof cmd, "'%s' tokenize --tokenizer '%s' --decode %d %d", bin, tokdir, ids[0],
             ids[1]);
    rc = hd_test_run(cmd, out, sizeof out);
    CHECKF(rc == 0 && !strcmp(out, "ab\n"), "exit %d: %s", rc, out);
    snprintf(cmd, sizeof cmd, "'%s' tokenize --tokenizer '%s/nope' ab", bin, dir);
    rc = hd_test_run(cmd, out, sizeof out);
    CHECKF(rc == 2 && strstr(out, "nope"), "exit %d: %s", rc, out);
    free(ids);
    hd_tokenizer_free(tok);
}

int main(void) {
    RUN_TEST(test_tiny_tokenizer_reproduces_golden_input_ids);
    RUN_TEST(test_real_tokenizer_renders_spec_unconditional_prompt);
    RUN_TEST(test_chat_encode_requires_boi_and_tms_tokens);
    RUN_TEST(test_chat_rejects_bad_image_counts_and_invalid_prompt);
    RUN_TEST(test_whitespace_class_matches_oniguruma);
    RUN_TEST(test_nfc_uses_huggingface_unicode9_data);
    RUN_TEST(test_unicode16_letters_and_numbers_follow_oniguruma);
    RUN_TEST(test_added_tokens_split_before_bpe);
    RUN_TEST(test_empty_text_and_nul_bytes);
    RUN_TEST(test_invalid_utf8_is_rejected_with_offset);
    RUN_TEST(test_invalid_utf8_is_replaced_with_flag);
    RUN_TEST(test_decode_round_trip);
    RUN_TEST(test_decode_rejects_unknown_ids);
    RUN_TEST(test_bpe_merges_by_rank_and_added_token_options);
    RUN_TEST(test_merges_as_strings_equal_merges_as_pairs);
    RUN_TEST(test_regex_split_skips_empty_matches_like_oniguruma);
    RUN_TEST(test_letter_and_number_classes_are_unicode16);
    RUN_TEST(test_bytelevel_pre_tokenizer_alone_uses_gpt2_pattern);
    RUN_TEST(test_not_json_is_rejected);
    RUN_TEST(test_wrong_model_type_is_rejected);
    RUN_TEST(test_missing_vocab_is_rejected);
    RUN_TEST(test_merge_naming_unknown_token_is_rejected);
    RUN_TEST(test_bad_regex_is_rejected);
    RUN_TEST(test_unsupported_components_are_rejected);
    RUN_TEST(test_inconsistent_vocab_and_added_tokens_are_rejected);
    RUN_TEST(test_missing_file_is_an_io_error);
    RUN_TEST(test_cli_check_tokenizer_reports_malformed_lines);
    return hd_test_finish();
}
