/* Added tokens (special and not): atomic strings matched in the text before the BPE model.
 *
 * Matching follows Hugging Face's AddedVocabulary: successive non-overlapping
 * leftmost-longest matches over all tokens of a set (tokens with normalized=false are matched
 * on the raw text, those with normalized=true on the normalized text). A match of a
 * single_word token that touches a word character (\w) on either side is dropped; lstrip /
 * rstrip extend a match over the White_Space next to it. */
#ifndef HD_TEXT_ADDED_TOKENS_H
#define HD_TEXT_ADDED_TOKENS_H

#include <stddef.h>
#include <stdint.h>

typedef struct hd_added_token {
    int32_t id;
    char *content;     /* as in tokenizer.json */
    size_t len;
    char *match;       /* what is searched for: content, or NFC(content) when normalized */
    size_t match_len;
    char *decoded;     /* bytes the decoder writes for this id */
    size_t decoded_len;
    int special, lstrip, rstrip, single_word, normalized;
} hd_added_token;

/* Index over the tokens of one set, for matching. */
typedef struct hd_added_set {
    int n;
    int32_t *order;    /* token indices, by first byte then longest first */
    int32_t first[257];/* order[first[b] .. first[b+1]) start with byte b */
} hd_added_set;

/* Builds the set of tokens whose `normalized` flag equals `normalized`. Returns 0 or
 * HD_ENOMEM. */
int hd_added_set_build(hd_added_set *set, const hd_added_token *toks, int n_toks, int normalized);
void hd_added_set_free(hd_added_set *set);

/* Splits s[0..len) (valid UTF-8) into pieces covering it: emit(ctx, off, n, id) with id = -1
 * for plain text and the token id for a match. Empty text gives no pieces. Stops at the first
 * non-zero return of emit and returns it. */
typedef int (*hd_added_emit_fn)(void *ctx, size_t off, size_t n, int32_t id);
int hd_added_split(const hd_added_token *toks, const hd_added_set *set, const char *s,
                   size_t len, hd_added_emit_fn emit, void *ctx);

/* Unicode White_Space property (what Rust's char::is_whitespace and Oniguruma's \s test). */
int hd_is_white_space(uint32_t cp);

#endif
