/* Checks of a prompt before it is put into the chat template: the size limits of hidream.h
 * (HD_MAX_PROMPT_BYTES, HD_MAX_PROMPT_TOKENS), valid UTF-8, none of the template's own special
 * tokens, and at least one token for the conditional prompt. Messages start with the label
 * ("prompt", "unconditional prompt") so the user knows which text is at fault. */
#ifndef HD_PIPELINE_PROMPT_H
#define HD_PIPELINE_PROMPT_H

#include "hidream.h"
#include "text/tokenizer.h"

int hd_prompt_check(const hd_tokenizer *tok, const char *text, const char *label,
                    int need_tokens, hd_error *e);

#endif
