/* The tokenizer object, shared by the files of src/text (not part of the library API). */
#ifndef HD_TEXT_TOKENIZER_IMPL_H
#define HD_TEXT_TOKENIZER_IMPL_H

#include "text/added_tokens.h"
#include "text/bpe.h"
#include "text/pretokenize.h"
#include "text/tokenizer.h"

#define HD_TOK_MAX_SPLITS 8

struct hd_tokenizer {
    hd_bpe bpe;
    hd_added_token *added;
    int n_added;
    hd_added_set raw_set;  /* added tokens matched on the raw text */
    hd_added_set norm_set; /* added tokens matched on the normalized text */
    int32_t *added_by_id;  /* [vocab_size]: index into added, or -1 */
    int nfc;
    int n_splits;
    hd_regex splits[HD_TOK_MAX_SPLITS]; /* Split steps, in order */
    int bl_prefix_space;                /* ByteLevel add_prefix_space */
    int bl_use_regex;                   /* ByteLevel splits with the GPT-2 pattern */
    hd_regex bl_regex;
    int32_t vocab_size;
};

#endif
