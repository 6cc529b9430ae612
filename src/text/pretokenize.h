/* Pre-tokenization: splitting text with the pattern from tokenizer.json, via PCRE2.
 *
 * Hugging Face compiles these patterns with Oniguruma (Ruby syntax, Unicode 16 tables).
 * hd_regex_compile translates the few constructs whose meaning differs in PCRE2:
 *  - \s / \S: Oniguruma uses the White_Space property (U+0085 yes, U+FEFF and U+180E no);
 *    PCRE2's UCP \s also takes U+180E -> \p{White_Space} / \P{White_Space};
 *  - \p{L} / \p{N} (also \pL, \pN) and \d: PCRE2 10.42 has Unicode 14 tables; the letters,
 *    numbers and digits assigned in Unicode 15.0-16.0 are added as explicit ranges;
 *  - \h / \H: hexadecimal digit in Ruby syntax (horizontal space in PCRE2);
 *  - \w / \W: Oniguruma's word class (Alphabetic, marks, Nd, Pc, Join_Control);
 *  - \uHHHH escapes -> \x{HHHH}; the quantifier {,n} -> {0,n};
 *  - Ruby's (?m) is "dot matches newline" -> (?s); ^ and $ are always line anchors in Ruby
 *    -> PCRE2_MULTILINE.
 * Nested classes and class intersection (&&) have no PCRE2 equivalent and are refused.
 *
 * Splitting follows the Rust onig crate's find_iter: successive leftmost matches, an empty
 * match right after the previous match is skipped by one character. "Isolated" behaviour:
 * every match and every gap between matches is a piece; empty pieces are dropped. */
#ifndef HD_TEXT_PRETOKENIZE_H
#define HD_TEXT_PRETOKENIZE_H

#include <stddef.h>

#include "hidream.h"

typedef struct hd_regex {
    void *code; /* pcre2_code_8 */
} hd_regex;

/* Compiles an Oniguruma-syntax pattern (literal != 0: match the string literally).
 * Errors name `what` (e.g. "tok.json: pre_tokenizer.pretokenizers[0].pattern.Regex"). */
int hd_regex_compile(hd_regex *re, const char *pattern, size_t len, int literal,
                     const char *what, hd_error *e);
void hd_regex_free(hd_regex *re);

/* Per-call match state (match data and JIT stack); one per regex per encode call. */
typedef struct hd_regex_matcher hd_regex_matcher;
hd_regex_matcher *hd_regex_matcher_new(const hd_regex *re);
void hd_regex_matcher_free(hd_regex_matcher *m);

/* Calls piece(ctx, offset, length) for each non-empty piece of s[0..len) in order; stops at the
 * first non-zero return and returns it. s must be valid UTF-8. Returns 0, the callback's
 * code, or HD_EUNSUPPORTED if PCRE2 gives up (match limit) with e filled in. */
typedef int (*hd_piece_fn)(void *ctx, size_t off, size_t len);
int hd_regex_split(const hd_regex *re, hd_regex_matcher *m, const char *s, size_t len,
                   hd_piece_fn piece, void *ctx, hd_error *e);

#endif
