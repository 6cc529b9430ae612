/* Base64 (RFC 4648, standard alphabet, padded) for images in JSON bodies: the OpenAI and A1111
 * APIs carry pictures as base64 strings, optionally behind a "data:image/...;base64," prefix. */
#ifndef HD_SERVER_BASE64_H
#define HD_SERVER_BASE64_H

#include <stddef.h>
#include <stdint.h>

/* malloc'd NUL-terminated text of 4*ceil(n/3) characters; NULL when out of memory. */
char *hd_base64_encode(const uint8_t *data, size_t n);

/* Decodes text (a data: URL prefix, whitespace and missing padding are accepted) into a
 * malloc'd buffer. Returns 0, or -1 for a character outside the alphabet, a bad length or no
 * memory. */
int hd_base64_decode(const char *text, size_t len, uint8_t **out, size_t *out_len);

#endif
