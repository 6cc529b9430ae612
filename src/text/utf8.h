/* UTF-8 validation, decoding and lossy repair for the tokenizer.
 *
 * "Invalid" follows the Unicode definition (no overlongs, no surrogates, nothing above
 * U+10FFFF). Repair replaces each maximal invalid subpart by one U+FFFD, the policy of Rust's
 * String::from_utf8_lossy and Python's errors="replace", so decoded text matches Hugging Face. */
#ifndef HD_TEXT_UTF8_H
#define HD_TEXT_UTF8_H

#include <stddef.h>
#include <stdint.h>

/* Decodes the sequence at s[0..n). Returns its length (1..4) and sets *cp, or returns 0 when
 * s does not start a valid sequence; *bad_len then receives the length of the maximal invalid
 * subpart (>= 1). n must be > 0. */
size_t hd_utf8_next(const unsigned char *s, size_t n, uint32_t *cp, size_t *bad_len);

/* Decodes one code point of text already known to be valid; returns its length. */
size_t hd_utf8_decode_valid(const unsigned char *s, uint32_t *cp);

/* Byte offset of the first invalid sequence in s[0..len), or len when all of it is valid. */
size_t hd_utf8_find_invalid(const char *s, size_t len);

/* Writes cp (<= 0x10FFFF, not a surrogate) as UTF-8; returns the byte count (1..4). */
size_t hd_utf8_encode(uint32_t cp, char *out);

/* Copies s[0..len) into a new malloc'd, NUL-terminated buffer with every maximal invalid
 * subpart replaced by U+FFFD. Returns 0, or HD_ENOMEM. */
int hd_utf8_repair(const char *s, size_t len, char **out, size_t *out_len);

#endif
