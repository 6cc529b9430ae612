/* Byte-level BPE tokenizer (Qwen2/Qwen3 family) read from a Hugging Face tokenizer.json.
 *
 * Supported files: model BPE (vocab; merges as ["a","b"] pairs or "a b" strings;
 * ignore_merges; unk_token/fuse_unk; no dropout, byte_fallback, subword prefix or suffix),
 * added_tokens (id, content, special, lstrip, rstrip, single_word, normalized), normalizer
 * NFC / null (or a Sequence of NFC), pre_tokenizer ByteLevel or Sequence of Split (Regex or
 * String pattern, behavior Isolated, invert false) steps ending in ByteLevel, decoder
 * ByteLevel. The post_processor is ignored: encoding never adds BOS/EOS
 * (encode(text, add_special_tokens=False) in Hugging Face terms). Anything else is refused with
 * a message naming the field. Added-token ids are taken from the file as written.
 *
 * Encoding: added tokens are split out of the raw text first (leftmost-longest), each
 * remaining piece is NFC-normalized, split by the pattern(s), mapped to bytes and merged by
 * rank. It reproduces Hugging Face `tokenizers` (Rust) ids, including its Unicode versions
 * (Oniguruma's Unicode 16 classes, the normalizer's Unicode 9 data).
 *
 * A loaded tokenizer is read-only: encode/decode may run from several threads at once. */
#ifndef HD_TEXT_TOKENIZER_H
#define HD_TEXT_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#include "hidream.h"

typedef struct hd_tokenizer hd_tokenizer;

enum {
    /* map invalid UTF-8 to U+FFFD (one per maximal invalid subpart) instead of failing */
    HD_TOK_REPLACE_INVALID_UTF8 = 1 << 0,
};

/* Loads DIR/tokenizer.json when dir_or_file is a directory, else the file itself. */
int hd_tokenizer_load(hd_tokenizer **out, const char *dir_or_file, hd_error *e);

/* Loads from a tokenizer.json image in memory (copied as needed; the buffer may be freed
 * afterwards). `what` names it in error messages. */
int hd_tokenizer_load_buffer(hd_tokenizer **out, const void *json, size_t len, const char *what,
                             hd_error *e);

void hd_tokenizer_free(hd_tokenizer *tok);

/* Encodes text[0..len) (may contain NUL). *ids is malloc'd (never NULL on success, even for
 * zero ids) and owned by the caller. Invalid UTF-8 fails with HD_EFORMAT naming the byte offset
 * unless flags has HD_TOK_REPLACE_INVALID_UTF8. */
int hd_tokenizer_encode(const hd_tokenizer *tok, const char *text, size_t len, int flags,
                        int32_t **ids, size_t *n, hd_error *e);

/* Decodes ids to UTF-8 (added tokens verbatim, special ones included; invalid byte sequences
 * become U+FFFD). *text is malloc'd and NUL-terminated; *len excludes the NUL (the text itself
 * may contain NULs). An id that names no token fails with HD_EINVAL. */
int hd_tokenizer_decode(const hd_tokenizer *tok, const int32_t *ids, size_t n, char **text,
                        size_t *len, hd_error *e);

/* Id of the added token with exactly this content, else of the vocabulary token with this
 * tokenizer.json text; -1 if neither exists. */
int hd_tokenizer_token_id(const hd_tokenizer *tok, const char *content);

/* One more than the largest id (vocabulary or added token). */
int hd_tokenizer_vocab_size(const hd_tokenizer *tok);

#endif
