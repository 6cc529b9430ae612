/* Separating a reasoning model's thinking from its answer. Servers that do not parse reasoning
 * themselves leave it inline as <think>…</think>; some chat templates open the block in the
 * prompt, so the reply only has the closing tag. Only the answer is a usable prompt. */
#ifndef HD_AGENT_THINK_H
#define HD_AGENT_THINK_H

#include <stddef.h>

/* Splits text[0..len) into the answer (every <think>…</think> block removed, and everything up
 * to a leading </think> with no opening tag; an unclosed <think> swallows the rest) and the
 * reasoning (the removed blocks' insides, joined by a blank line; NULL when there is none).
 * Both are malloc'd and stripped of surrounding white space. Returns 0 or HD_ENOMEM. */
int hd_split_thinking(const char *text, size_t len, char **answer, char **reasoning);

/* A malloc'd copy of s[0..n) without leading and trailing ASCII white space (NULL: no memory). */
char *hd_strip_dup(const char *s, size_t n);

#endif
