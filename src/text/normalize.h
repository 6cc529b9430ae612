/* NFC normalization as the Hugging Face `tokenizers` NFC normalizer does it.
 *
 * utf8proc does the work, with two adjustments:
 *  - a fast path: text whose every code point is "inert" (combining class 0, no canonical
 *    decomposition, never the second half of a composition, not a conjoining jamo) is already
 *    NFC and is not copied;
 *  - HF's normalizer carries Unicode 9.0 data, so characters assigned later are unassigned to
 *    it: no reordering, decomposition or composition. We treat each such character (only those
 *    utf8proc would touch: listed in normalize.c) as a barrier: the text between barriers is
 *    normalized separately and the barrier is copied as is, which is exactly what an
 *    unassigned starter does to NFC. */
#ifndef HD_TEXT_NORMALIZE_H
#define HD_TEXT_NORMALIZE_H

#include <stddef.h>

/* 1 when NFC(s) == s is guaranteed by the fast check. s must be valid UTF-8. */
int hd_nfc_is_quick(const char *s, size_t len);

/* NFC of valid UTF-8 s[0..len) into a new malloc'd NUL-terminated buffer.
 * Returns 0 or HD_ENOMEM. */
int hd_nfc(const char *s, size_t len, char **out, size_t *out_len);

#endif
