/* The agent's degenerate-output check (spec 07 §3): a reply is unusable when it has fewer than
 * 6 words, or when some window of 5 consecutive words occurs more than 11 times (a model stuck
 * in a loop). Words are the text lower-cased and split on Unicode white space, as Python's
 * str.lower().split() does. */
#ifndef HD_AGENT_DEGENERATE_H
#define HD_AGENT_DEGENERATE_H

#include <stddef.h>

#define HD_DEGENERATE_MIN_WORDS 6
#define HD_DEGENERATE_NGRAM 5
#define HD_DEGENERATE_MAX_REPEATS 11

/* 1 if text[0..len) is degenerate, 0 if usable, HD_ENOMEM (negative) if memory ran out.
 * Invalid UTF-8 bytes count as characters of their own. */
int hd_text_is_degenerate(const char *text, size_t len);

#endif
