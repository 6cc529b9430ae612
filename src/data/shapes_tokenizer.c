#include "data/shapes_tokenizer.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "data/shapes_prompt.h"
#include "data/text_file.h"
#include "text/bytelevel.h"
#include "text/utf8.h"

const char *const hd_shapes_special_tokens[] = {
    "<|endoftext|>", "<|im_start|>", "<|im_end|>",    "<|vision_start|>", "<|vision_end|>",
    "<|image_pad|>", "<|video_pad|>", "<|boi_token|>", "<|tms_token|>",   NULL};

/* words of the chat template around the prompt (src/text/chat_template.c) */
static const char *const TEMPLATE_WORDS[] = {"user", "assistant", NULL};

/* the Qwen2 pre-tokenizer split (as in the golden tiny model's tokenizer.json) */
static const char SPLIT_REGEX[] =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
    "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

enum { MAX_TOKENS = 512, MAX_TOKEN_LEN = 16, MAX_WORDS = 96, MAX_SYMS = 16 };

typedef struct bpe_train {
    char tok[MAX_TOKENS][MAX_TOKEN_LEN + 1]; /* raw bytes of each token */
    int tok_len[MAX_TOKENS];
    int n_tok;
    int merge_l[MAX_TOKENS], merge_r[MAX_TOKENS], n_merges;
    int word[MAX_WORDS][MAX_SYMS], word_len[MAX_WORDS], n_words;
    int count[MAX_TOKENS][MAX_TOKENS]; /* pair counts of one round */
} bpe_train;

static void add_word(bpe_train *t, const char *w, int space) {
    int n = 0;
    if (space) t->word[t->n_words][n++] = ' ';
    for (const char *c = w; *c; c++) t->word[t->n_words][n++] = (unsigned char)*c;
    t->word_len[t->n_words++] = n;
}

/* the most frequent adjacent pair (ties: the earliest pair seen); 0 when every word is whole */
static int best_pair(bpe_train *t, int *l, int *r) {
    memset(t->count, 0, sizeof t->count);
    int best = 0;
    for (int w = 0; w < t->n_words; w++)
        for (int i = 0; i + 1 < t->word_len[w]; i++) {
            int a = t->word[w][i], b = t->word[w][i + 1], c = ++t->count[a][b];
            if (c > best) best = c, *l = a, *r = b;
        }
    return best;
}

static int train(bpe_train *t, hd_error *e) {
    for (int b = 0; b < 256; b++) {
        t->tok[b][0] = (char)b;
        t->tok_len[b] = 1;
    }
    t->n_tok = 256;
    for (int s = 0; s < 2; s++) {
        for (int i = 0; hd_shapes_words[i]; i++) add_word(t, hd_shapes_words[i], s);
        for (int i = 0; TEMPLATE_WORDS[i]; i++) add_word(t, TEMPLATE_WORDS[i], s);
    }
    int l = 0, r = 0;
    while (best_pair(t, &l, &r)) {
        if (t->n_tok == MAX_TOKENS || t->tok_len[l] + t->tok_len[r] > MAX_TOKEN_LEN)
            return hd_fail(e, HD_ENOMEM, "shapes tokenizer: more than %d tokens", MAX_TOKENS);
        int id = t->n_tok++;
        memcpy(t->tok[id], t->tok[l], (size_t)t->tok_len[l]);
        memcpy(t->tok[id] + t->tok_len[l], t->tok[r], (size_t)t->tok_len[r]);
        t->tok_len[id] = t->tok_len[l] + t->tok_len[r];
        t->merge_l[t->n_merges] = l;
        t->merge_r[t->n_merges++] = r;
        for (int w = 0; w < t->n_words; w++) { /* leftmost, non-overlapping */
            int o = 0;
            for (int i = 0; i < t->word_len[w]; i++) {
                if (i + 1 < t->word_len[w] && t->word[w][i] == l && t->word[w][i + 1] == r) {
                    t->word[w][o++] = id;
                    i++;
                } else
                    t->word[w][o++] = t->word[w][i];
            }
            t->word_len[w] = o;
        }
    }
    return 0;
}

/* a token's bytes in the byte-level alphabet (UTF-8) */
static void bytelevel_text(const char *bytes, int n, char *out) {
    char *w = out;
    for (int i = 0; i < n; i++) w += hd_utf8_encode(hd_bytelevel_char((unsigned char)bytes[i]), w);
    *w = 0;
}

static json_t *bytelevel_step(void) {
    return json_pack("{s:s, s:b, s:b, s:b}", "type", "ByteLevel", "add_prefix_space", 0,
                     "trim_offsets", 0, "use_regex", 0);
}

static json_t *build_model(const bpe_train *t, const int *byte_order) {
    json_t *vocab = json_object(), *merges = json_array();
    char text[4 * MAX_TOKEN_LEN + 1], a[4 * MAX_TOKEN_LEN + 1], b[4 * MAX_TOKEN_LEN + 1];
    /* ids: the 256 bytes in GPT-2 order, then one token per merge */
    for (int id = 0; id < 256; id++) {
        char byte = (char)byte_order[id];
        bytelevel_text(&byte, 1, text);
        json_object_set_new(vocab, text, json_integer(id));
    }
    for (int m = 0; m < t->n_merges; m++) {
        int id = 256 + m;
        bytelevel_text(t->tok[id], t->tok_len[id], text);
        json_object_set_new(vocab, text, json_integer(id));
        bytelevel_text(t->tok[t->merge_l[m]], t->tok_len[t->merge_l[m]], a);
        bytelevel_text(t->tok[t->merge_r[m]], t->tok_len[t->merge_r[m]], b);
        json_array_append_new(merges, json_pack("[s, s]", a, b));
    }
    return json_pack("{s:s, s:n, s:n, s:s, s:s, s:b, s:b, s:b, s:o, s:o}", "type", "BPE",
                     "dropout", "unk_token", "continuing_subword_prefix", "",
                     "end_of_word_suffix", "", "fuse_unk", 0, "byte_fallback", 0,
                     "ignore_merges", 0, "vocab", vocab, "merges", merges);
}

int hd_shapes_tokenizer_json(char **json, int *n_tokens, hd_error *e) {
    *json = NULL;
    bpe_train *t = calloc(1, sizeof *t);
    if (!t) return hd_fail(e, HD_ENOMEM, "shapes tokenizer: out of memory");
    int rc = train(t, e);
    if (rc) {
        free(t);
        return rc;
    }
    /* GPT-2 order: the printable bytes first, then the others (their code points U+0100..) */
    int byte_order[256], k = 0;
    for (int b = 0; b < 256; b++)
        if (hd_bytelevel_is_printable((unsigned)b)) byte_order[k++] = b;
    for (int b = 0; b < 256; b++)
        if (!hd_bytelevel_is_printable((unsigned)b)) byte_order[k++] = b;
    /* merges refer to byte ids by value during training; the vocabulary renames them */
    int n_special = 0;
    while (hd_shapes_special_tokens[n_special]) n_special++;
    int total = t->n_tok + n_special;
    if (total > MAX_TOKENS) {
        free(t);
        return hd_fail(e, HD_ENOMEM, "shapes tokenizer: %d tokens exceed %d", total, MAX_TOKENS);
    }
    json_t *model = build_model(t, byte_order);
    json_t *added = json_array();
    int id = 256 + t->n_merges;
    for (int i = 0; hd_shapes_special_tokens[i]; i++, id++)
        json_array_append_new(added,
                              json_pack("{s:i, s:s, s:b, s:b, s:b, s:b, s:b}", "id", id, "content",
                                        hd_shapes_special_tokens[i], "single_word", 0, "lstrip", 0,
                                        "rstrip", 0, "normalized", 0, "special", 1));
    json_t *pre = json_pack("{s:s, s:[{s:s, s:{s:s}, s:s, s:b}, o]}", "type", "Sequence",
                            "pretokenizers", "type", "Split", "pattern", "Regex", SPLIT_REGEX,
                            "behavior", "Isolated", "invert", 0, bytelevel_step());
    json_t *root = json_pack("{s:s, s:n, s:n, s:o, s:{s:s}, s:o, s:o, s:o, s:o}", "version", "1.0",
                             "truncation", "padding", "added_tokens", added, "normalizer", "type",
                             "NFC", "pre_tokenizer", pre, "post_processor", bytelevel_step(),
                             "decoder", bytelevel_step(), "model", model);
    free(t);
    char *text = root ? json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
    json_decref(root);
    if (!text) return hd_fail(e, HD_ENOMEM, "shapes tokenizer: cannot build the JSON");
    *json = text;
    *n_tokens = id;
    return 0;
}

int hd_shapes_tokenizer_write(const char *path, int *n_tokens, hd_error *e) {
    char *json;
    HD_TRY(hd_shapes_tokenizer_json(&json, n_tokens, e));
    size_t len = strlen(json);
    int rc = hd_write_text_file(path, json, len, e);
    free(json);
    return rc;
}
