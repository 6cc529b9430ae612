/* libFuzzer target for the tokenizer.
 *
 * First input byte selects the mode:
 *   even: the rest is a tokenizer.json image; load it, and if it loads, encode a fixed sample
 *         and the input itself (invalid UTF-8 replaced) and decode the ids back;
 *   odd:  the rest is text for two built-in tokenizers: a rich one (added tokens with
 *         lstrip/rstrip/single_word/normalized, merges, NFC, the Qwen pattern) that must simply
 *         not fail, and a plain one (no added tokens) for which decode(encode(x)) must equal
 *         NFC(x) exactly; bit 1 of the first byte selects U+FFFD replacement of invalid
 *         UTF-8 instead of the error path.
 * Any inconsistency traps. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "text/bytelevel.h"
#include "text/normalize.h"
#include "text/tokenizer.h"
#include "text/utf8.h"

#define MAX_JSON (64 * 1024)
#define MAX_TEXT (16 * 1024)

static const char qwen_pattern[] =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\\\r\\\\n\\\\p{L}\\\\p{N}]?\\\\p{L}+|\\\\p{N}| "
    "?[^\\\\s\\\\p{L}\\\\p{N}]+[\\\\r\\\\n]*|\\\\s*[\\\\r\\\\n]+|\\\\s+(?!\\\\S)|\\\\s+";

/* A byte-level tokenizer.json: 256 byte tokens, a few merges, optional added tokens. */
static char *make_json(int rich) {
    size_t cap = 64 * 1024, w = 0;
    char *j = malloc(cap);
    if (!j) return NULL;
    w += (size_t)snprintf(j + w, cap - w, "{\"added_tokens\":[%s],\"normalizer\":{\"type\":\"NFC\"},"
        "\"pre_tokenizer\":{\"type\":\"Sequence\",\"pretokenizers\":[{\"type\":\"Split\","
        "\"pattern\":{\"Regex\":\"%s\"},\"behavior\":\"Isolated\",\"invert\":false},"
        "{\"type\":\"ByteLevel\",\"add_prefix_space\":false,\"use_regex\":false}]},"
        "\"decoder\":{\"type\":\"ByteLevel\"},\"model\":{\"type\":\"BPE\",\"vocab\":{",
        rich ? "{\"id\":270,\"content\":\"<mask>\",\"lstrip\":true,\"rstrip\":true,"
               "\"normalized\":false,\"special\":true},"
               "{\"id\":271,\"content\":\"[SW]\",\"single_word\":true,\"normalized\":false},"
               "{\"id\":272,\"content\":\"\\u01d8\",\"normalized\":true},"
               "{\"id\":273,\"content\":\"<s>\",\"special\":true,\"normalized\":false},"
               "{\"id\":274,\"content\":\"<s>x\",\"special\":true,\"normalized\":false},"
               "{\"id\":275,\"content\":\" \\u3000\",\"rstrip\":true,\"normalized\":false}"
             : "",
        qwen_pattern);
    for (int b = 0; b < 256; b++) {
        char ch[8];
        size_t k = hd_utf8_encode(hd_bytelevel_char((unsigned)b), ch);
        ch[k] = 0;
        w += (size_t)snprintf(j + w, cap - w, "%s\"%s\":%d", b ? "," : "",
                              b == '"' ? "\\\"" : b == '\\' ? "\\\\" : ch, b);
    }
    w += (size_t)snprintf(j + w, cap - w,
        ",\"ab\":256,\"abc\":257,\"\\u0120a\":258,\"\\u0120\\u0120\":259,\"cd\":260,"
        "\"\\u00e4\\u00b8\":261,\"\\u00e4\\u00b8\\u0122\":262,\"th\":263,\"the\":264,"
        "\"\\u0120the\":265},\"merges\":[\"a b\",\"ab c\",\"\\u0120 a\",\"\\u0120 \\u0120\","
        "\"c d\",\"\\u00e4 \\u00b8\",\"\\u00e4\\u00b8 \\u0122\",\"t h\",\"th e\","
        "\"\\u0120 the\"]}}");
    return j;
}

static hd_tokenizer *builtin(int rich) {
    char *j = make_json(rich);
    hd_tokenizer *tok = NULL;
    hd_error e;
    if (!j || hd_tokenizer_load_buffer(&tok, j, strlen(j), "builtin", &e)) {
        fprintf(stderr, "fuzz_tokenizer: built-in tokenizer does not load: %s\n", j ? e.msg : "");
        abort();
    }
    free(j);
    return tok;
}

static void encode_decode(const hd_tokenizer *tok, const char *s, size_t n, int flags) {
    int32_t *ids = NULL;
    size_t k = 0;
    hd_error e;
    if (hd_tokenizer_encode(tok, s, n, flags, &ids, &k, &e) == 0) {
        char *text = NULL;
        size_t len = 0;
        if (hd_tokenizer_decode(tok, ids, k, &text, &len, &e) == 0) free(text);
        free(ids);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    /* the two built-in tokenizers are made once and only read afterwards */
    static hd_tokenizer *rich, *plain;
    if (!rich) {
        rich = builtin(1);
        plain = builtin(0);
    }
    if (size == 0) return 0;
    unsigned mode = data[0];
    const char *in = (const char *)data + 1;
    size_t n = size - 1;

    if (!(mode & 1)) {
        if (n > MAX_JSON) return 0;
        hd_tokenizer *tok = NULL;
        hd_error e;
        if (hd_tokenizer_load_buffer(&tok, in, n, "fuzz.json", &e) == 0) {
            static const char sample[] = "Hello, world! It's 2024 <|im_start|> \xE4\xB8\x80 \t\n";
            encode_decode(tok, sample, sizeof sample - 1, 0);
            encode_decode(tok, in, n < 256 ? n : 256, HD_TOK_REPLACE_INVALID_UTF8);
            (void)hd_tokenizer_token_id(tok, "<|im_start|>");
            hd_tokenizer_free(tok);
        } else if (tok != NULL || !memchr(e.msg, ':', sizeof e.msg)) {
            __builtin_trap(); /* failures leave no object and always explain themselves */
        }
        return 0;
    }

    if (n > MAX_TEXT) return 0;
    int flags = (mode & 2) ? HD_TOK_REPLACE_INVALID_UTF8 : 0;
    encode_decode(rich, in, n, flags);

    /* plain tokenizer: lossless round trip of the normalized text */
    char *fixed = NULL;
    const char *text = in;
    size_t len = n;
    if (hd_utf8_find_invalid(in, n) != n) {
        int32_t *ids = (int32_t *)1;
        size_t k = 1;
        hd_error e;
        if (!flags) { /* must fail, cleanly */
            if (hd_tokenizer_encode(plain, in, n, 0, &ids, &k, &e) != HD_EFORMAT || ids || k)
                __builtin_trap();
            return 0;
        }
        if (hd_utf8_repair(in, n, &fixed, &len)) return 0;
        text = fixed;
    }
    char *norm = NULL;
    size_t norm_len = 0;
    int32_t *ids = NULL;
    size_t k = 0;
    char *back = NULL;
    size_t back_len = 0;
    hd_error e;
    if (hd_nfc(text, len, &norm, &norm_len) == 0 &&
        hd_tokenizer_encode(plain, in, n, flags, &ids, &k, &e) == 0 &&
        hd_tokenizer_decode(plain, ids, k, &back, &back_len, &e) == 0) {
        if (back_len != norm_len || memcmp(back, norm, norm_len)) __builtin_trap();
        if (k > norm_len) __builtin_trap(); /* at most one id per byte */
    }
    free(back);
    free(ids);
    free(norm);
    free(fixed);
    return 0;
}
