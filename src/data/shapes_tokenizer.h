/* A byte-level BPE tokenizer for the shapes world, in the tokenizer.json layout of the Qwen
 * family (the layout src/text/tokenizer.c reads): the 256 byte tokens in GPT-2 order, merges
 * learned here from the words of the grammar and of the chat template (each with and without a
 * leading space) until every such word is one token, and the special tokens the pipeline needs
 * after them. The result is a pure function of the grammar: the same file every time. */
#ifndef HD_DATA_SHAPES_TOKENIZER_H
#define HD_DATA_SHAPES_TOKENIZER_H

#include <stddef.h>

#include "hidream.h"

/* The added tokens, in id order after the merges. */
extern const char *const hd_shapes_special_tokens[];

/* The tokenizer.json text (malloc'd, NUL-terminated) and its token count (bytes + merges +
 * special tokens). */
int hd_shapes_tokenizer_json(char **json, int *n_tokens, hd_error *e);

/* Writes it to path (atomically). */
int hd_shapes_tokenizer_write(const char *path, int *n_tokens, hd_error *e);

#endif
