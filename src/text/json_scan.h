/* A small, strict JSON scanner for the two large members of tokenizer.json.
 *
 * jansson builds a tree with one allocation per value; for Qwen's 151k-entry vocabulary and
 * 151k merges that alone takes ~150 ms plus ~60 ms to free, over the load budget. This scanner
 * reads `model.vocab` and `model.merges` straight into the tokenizer's tables and hands every
 * other (small) member to jansson by byte span. It accepts exactly RFC 8259 JSON: strings are
 * UTF-8 checked and unescaped (\u escapes with surrogate pairs; \u0000 allowed), numbers follow
 * the grammar, nesting is bounded. Errors record a short reason and the byte offset. */
#ifndef HD_TEXT_JSON_SCAN_H
#define HD_TEXT_JSON_SCAN_H

#include <stddef.h>
#include <stdint.h>

#define HD_JS_MAX_DEPTH 512

typedef struct hd_jscan {
    const char *buf;
    size_t len, pos;
    char *str;        /* unescaped text of the last string read (owned, grown as needed) */
    size_t str_len, str_cap;
    const char *err;  /* reason of the first error (static text) */
    size_t err_pos;   /* byte offset of the first error */
} hd_jscan;

void hd_js_init(hd_jscan *js, const char *buf, size_t len);
void hd_js_free(hd_jscan *js);

/* Next non-whitespace byte without consuming it, or -1 at the end of the buffer. */
int hd_js_peek(hd_jscan *js);
/* Consumes the byte c after optional whitespace; 0, or -1 with an error recorded. */
int hd_js_expect(hd_jscan *js, char c);
/* Reads a string into js->str / js->str_len (NUL-terminated; may contain NULs). 0 or -1. */
int hd_js_string(hd_jscan *js);
/* Reads a number that must be an integer in [INT64_MIN, INT64_MAX]; 0 or -1. */
int hd_js_int(hd_jscan *js, int64_t *v);
/* Skips one value of any type; [*begin, *end) receives its byte span. 0 or -1. */
int hd_js_skip(hd_jscan *js, size_t *begin, size_t *end);
/* After a member or element: consumes ',' and returns 1, or consumes `close` and returns 0;
 * -1 on anything else. */
int hd_js_next(hd_jscan *js, char close);
/* Records an error at the current position (keeps the first one); returns -1. */
int hd_js_fail(hd_jscan *js, const char *why);

#endif
