#include "text/pretokenize.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "core/error.h"
#include "text/utf8.h"

/* Letters (\p{L}) and numbers (\p{N}) of Unicode 15.0, 15.1 and 16.0, which Oniguruma in
 * Hugging Face tokenizers knows and PCRE2 10.42 (Unicode 14) does not. Derived by comparing
 * PCRE2's tables with unicodedata2 16.0; nothing was removed between the versions. */
static const uint32_t new_letters[][2] = {
    {0x1C89, 0x1C8A},   {0xA7CB, 0xA7CD},   {0xA7DA, 0xA7DC},   {0x105C0, 0x105F3},
    {0x10D4A, 0x10D65}, {0x10D6F, 0x10D85}, {0x10EC2, 0x10EC4}, {0x1123F, 0x11240},
    {0x11380, 0x11389}, {0x1138B, 0x1138B}, {0x1138E, 0x1138E}, {0x11390, 0x113B5},
    {0x113B7, 0x113B7}, {0x113D1, 0x113D1}, {0x113D3, 0x113D3}, {0x11BC0, 0x11BE0},
    {0x11F02, 0x11F02}, {0x11F04, 0x11F10}, {0x11F12, 0x11F33}, {0x1342F, 0x1342F},
    {0x13441, 0x13446}, {0x13460, 0x143FA}, {0x16100, 0x1611D}, {0x16D40, 0x16D6C},
    {0x18CFF, 0x18CFF}, {0x1B132, 0x1B132}, {0x1B155, 0x1B155}, {0x1DF25, 0x1DF2A},
    {0x1E030, 0x1E06D}, {0x1E4D0, 0x1E4EB}, {0x1E5D0, 0x1E5ED}, {0x1E5F0, 0x1E5F0},
    {0x2B739, 0x2B739}, {0x2EBF0, 0x2EE5D}, {0x31350, 0x323AF},
};
static const uint32_t new_numbers[][2] = {
    {0x10D40, 0x10D49}, {0x116D0, 0x116E3}, {0x11BF0, 0x11BF9}, {0x11F50, 0x11F59},
    {0x16130, 0x16139}, {0x16D70, 0x16D79}, {0x1CCF0, 0x1CCF9}, {0x1D2C0, 0x1D2D3},
    {0x1E4F0, 0x1E4F9}, {0x1E5F1, 0x1E5FA},
};

/* The decimal digits (Nd) among them: all but the Kaktovik numerals (No). */
static const uint32_t new_digits[][2] = {
    {0x10D40, 0x10D49}, {0x116D0, 0x116E3}, {0x11BF0, 0x11BF9}, {0x11F50, 0x11F59},
    {0x16130, 0x16139}, {0x16D70, 0x16D79}, {0x1CCF0, 0x1CCF9}, {0x1E4F0, 0x1E4F9},
    {0x1E5F1, 0x1E5FA},
};

#define WORD_ITEMS "\\p{Alphabetic}\\p{M}\\p{Nd}\\p{Pc}\\p{Join_Control}"

typedef struct sbuf {
    char *p;
    size_t n, cap;
    int oom;
} sbuf;

static void put(sbuf *b, const char *s, size_t n) {
    if (b->oom) return;
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 256;
        while (cap < b->n + n + 1) cap *= 2;
        char *q = realloc(b->p, cap);
        if (!q) {
            b->oom = 1;
            return;
        }
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
}

static void puts_(sbuf *b, const char *s) { put(b, s, strlen(s)); }

static void put_ranges(sbuf *b, const uint32_t (*r)[2], size_t n) {
    char tmp[48];
    for (size_t i = 0; i < n; i++) {
        int k = r[i][0] == r[i][1] ? snprintf(tmp, sizeof tmp, "\\x{%X}", (unsigned)r[i][0])
                                   : snprintf(tmp, sizeof tmp, "\\x{%X}-\\x{%X}",
                                              (unsigned)r[i][0], (unsigned)r[i][1]);
        put(b, tmp, (size_t)k);
    }
}

/* Translates the Oniguruma (Ruby syntax) pattern p[0..n) into PCRE2 syntax. Returns NULL with
 * *why set on a construct PCRE2 cannot express, or on allocation failure. */
static char *translate(const char *p, size_t n, const char **why, size_t *where) {
    sbuf b = {0};
    int in_class = 0;
    size_t i = 0;
    *why = NULL;
    while (i < n && !b.oom) {
        char c = p[i];
        if (c == '\\') {
            if (i + 1 >= n) {
                put(&b, p + i, 1);
                i++;
                continue;
            }
            char d = p[i + 1];
            if (d == 's' || d == 'S') {
                puts_(&b, d == 's' ? "\\p{White_Space}" : "\\P{White_Space}");
                i += 2;
            } else if (d == 'p' || d == 'P') {
                /* \pL, \p{L}, \p{^L}, \P{L}; only L and N need extra ranges */
                size_t j = i + 2, name = j, name_len = 0;
                int neg = d == 'P';
                if (j < n && p[j] == '{') {
                    size_t k = j + 1;
                    if (k < n && p[k] == '^') {
                        neg = !neg;
                        k++;
                    }
                    name = k;
                    while (k < n && p[k] != '}') k++;
                    if (k >= n) { /* let PCRE2 report it */
                        put(&b, p + i, n - i);
                        i = n;
                        continue;
                    }
                    name_len = k - name;
                    j = k + 1;
                } else if (j < n) {
                    name_len = 1;
                    j++;
                }
                int letters = (name_len == 1 && p[name] == 'L') ||
                              (name_len == 6 && !memcmp(p + name, "Letter", 6));
                int numbers = (name_len == 1 && p[name] == 'N') ||
                              (name_len == 6 && !memcmp(p + name, "Number", 6));
                if (!letters && !numbers) {
                    put(&b, p + i, j - i);
                } else if (neg && in_class) {
                    put(&b, p + i, j - i); /* cannot subtract ranges inside a class */
                } else {
                    if (!in_class) puts_(&b, neg ? "[^" : "[");
                    puts_(&b, letters ? "\\p{L}" : "\\p{N}");
                    if (letters)
                        put_ranges(&b, new_letters, sizeof new_letters / sizeof *new_letters);
                    else
                        put_ranges(&b, new_numbers, sizeof new_numbers / sizeof *new_numbers);
                    if (!in_class) puts_(&b, "]");
                }
                i = j;
            } else if (d == 'd' || d == 'D') {
                /* Unicode \d is Nd, with the digits PCRE2's tables lack */
                if (in_class && d == 'D') {
                    put(&b, p + i, 2); /* cannot subtract ranges inside a class */
                } else {
                    if (!in_class) puts_(&b, d == 'D' ? "[^" : "[");
                    puts_(&b, "\\p{Nd}");
                    put_ranges(&b, new_digits, sizeof new_digits / sizeof *new_digits);
                    if (!in_class) puts_(&b, "]");
                }
                i += 2;
            } else if (d == 'h' || d == 'H' || d == 'w' || d == 'W') {
                int hex = d == 'h' || d == 'H', negated = d == 'H' || d == 'W';
                const char *items = hex ? "0-9A-Fa-f" : WORD_ITEMS;
                if (in_class && negated) {
                    *why = "negated \\H or \\W inside a character class is not supported";
                    *where = i;
                    break;
                }
                if (!in_class) puts_(&b, negated ? "[^" : "[");
                puts_(&b, items);
                if (!in_class) puts_(&b, "]");
                i += 2;
            } else if (d == 'u') {
                int ok = i + 6 <= n;
                for (size_t k = i + 2; ok && k < i + 6; k++) {
                    char h = p[k];
                    ok = (h >= '0' && h <= '9') || (h >= 'a' && h <= 'f') || (h >= 'A' && h <= 'F');
                }
                if (!ok) {
                    *why = "\\u must be followed by four hexadecimal digits";
                    *where = i;
                    break;
                }
                puts_(&b, "\\x{");
                put(&b, p + i + 2, 4);
                puts_(&b, "}");
                i += 6;
            } else {
                /* any other escape means the same in both; copy it with its whole character */
                size_t k = 1;
                unsigned char u = (unsigned char)d;
                if (u >= 0xC0) k = u >= 0xF0 ? 4 : u >= 0xE0 ? 3 : 2;
                if (i + 1 + k > n) k = n - i - 1;
                put(&b, p + i, 1 + k);
                i += 1 + k;
            }
            continue;
        }
        if (in_class) {
            if (c == '[') {
                if (i + 1 < n && p[i + 1] == ':') { /* POSIX class: copy through ":]" */
                    size_t k = i + 2;
                    while (k + 1 < n && !(p[k] == ':' && p[k + 1] == ']')) k++;
                    if (k + 1 >= n) {
                        put(&b, p + i, n - i);
                        i = n;
                        continue;
                    }
                    put(&b, p + i, k + 2 - i);
                    i = k + 2;
                    continue;
                }
                *why = "nested character classes are not supported";
                *where = i;
                break;
            }
            if (c == '&' && i + 1 < n && p[i + 1] == '&') {
                *why = "character class intersection (&&) is not supported";
                *where = i;
                break;
            }
            if (c == ']') in_class = 0;
            put(&b, p + i, 1);
            i++;
            continue;
        }
        if (c == '[') {
            in_class = 1;
            put(&b, p + i, 1);
            i++;
            if (i < n && p[i] == '^') put(&b, p + i++, 1);
            if (i < n && p[i] == ']') put(&b, p + i++, 1); /* a leading ']' is literal */
            continue;
        }
        if (c == '{' && i + 1 < n && p[i + 1] == ',') {
            /* Ruby's {,n} is {0,n}; PCRE2 10.42 reads "{,n}" literally */
            size_t k = i + 2;
            while (k < n && p[k] >= '0' && p[k] <= '9') k++;
            if (k > i + 2 && k < n && p[k] == '}') {
                puts_(&b, "{0");
                i++;
                continue;
            }
        }
        if (c == '(' && i + 2 < n && p[i + 1] == '?') {
            /* option group (?imx-imx) or (?imx-imx:...): Ruby's m is PCRE2's s */
            size_t k = i + 2;
            while (k < n && (p[k] == 'i' || p[k] == 'm' || p[k] == 'x' || p[k] == '-')) k++;
            if (k > i + 2 && k < n && (p[k] == ':' || p[k] == ')')) {
                puts_(&b, "(?");
                for (size_t j = i + 2; j < k; j++) put(&b, p[j] == 'm' ? "s" : p + j, 1);
                i = k;
                continue;
            }
        }
        put(&b, p + i, 1);
        i++;
    }
    if (*why || b.oom) {
        if (!*why) {
            *why = "out of memory";
            *where = 0;
        }
        free(b.p);
        return NULL;
    }
    if (!b.p) put(&b, "", 0);
    if (b.oom) {
        *why = "out of memory";
        *where = 0;
        return NULL;
    }
    return b.p;
}

int hd_regex_compile(hd_regex *re, const char *pattern, size_t len, int literal,
                     const char *what, hd_error *e) {
    re->code = NULL;
    if (hd_utf8_find_invalid(pattern, len) != len)
        return hd_fail(e, HD_EFORMAT, "%s: pattern is not valid UTF-8", what);
    char *pat = NULL;
    size_t plen = len;
    uint32_t opts = PCRE2_UTF | PCRE2_NEVER_BACKSLASH_C;
    if (literal) {
        opts |= PCRE2_LITERAL;
    } else {
        const char *why = NULL;
        size_t where = 0;
        pat = translate(pattern, len, &why, &where);
        if (!pat)
            return hd_fail(e, HD_EUNSUPPORTED, "%s: %s (at pattern offset %zu)", what, why, where);
        plen = strlen(pat);
        opts |= PCRE2_UCP | PCRE2_MULTILINE;
    }
    pcre2_compile_context *cc = pcre2_compile_context_create(NULL);
    if (!cc) {
        free(pat);
        return hd_fail(e, HD_ENOMEM, "%s: out of memory", what);
    }
    pcre2_set_newline(cc, PCRE2_NEWLINE_LF);
    int err;
    PCRE2_SIZE off;
    pcre2_code *code = pcre2_compile((PCRE2_SPTR)(pat ? pat : pattern), plen, opts, &err, &off, cc);
    pcre2_compile_context_free(cc);
    free(pat);
    if (!code) {
        PCRE2_UCHAR msg[160];
        if (pcre2_get_error_message(err, msg, sizeof msg) < 0) strcpy((char *)msg, "error");
        /* the offset refers to the translated pattern; it is only a hint */
        return hd_fail(e, HD_EFORMAT, "%s: invalid regular expression: %s (near offset %zu)",
                       what, (const char *)msg, (size_t)off);
    }
    (void)pcre2_jit_compile(code, PCRE2_JIT_COMPLETE); /* the interpreter is the fallback */
    re->code = code;
    return 0;
}

void hd_regex_free(hd_regex *re) {
    if (re && re->code) pcre2_code_free((pcre2_code *)re->code);
    if (re) re->code = NULL;
}

struct hd_regex_matcher {
    pcre2_match_data *md;
    pcre2_match_context *mctx;
    pcre2_jit_stack *jit;
};

hd_regex_matcher *hd_regex_matcher_new(const hd_regex *re) {
    hd_regex_matcher *m = calloc(1, sizeof *m);
    if (!m) return NULL;
    m->md = pcre2_match_data_create_from_pattern((const pcre2_code *)re->code, NULL);
    m->mctx = pcre2_match_context_create(NULL);
    m->jit = pcre2_jit_stack_create(32 * 1024, 4 * 1024 * 1024, NULL);
    if (!m->md || !m->mctx || !m->jit) {
        hd_regex_matcher_free(m);
        return NULL;
    }
    pcre2_jit_stack_assign(m->mctx, NULL, m->jit);
    return m;
}

void hd_regex_matcher_free(hd_regex_matcher *m) {
    if (!m) return;
    pcre2_match_data_free(m->md);
    pcre2_match_context_free(m->mctx);
    pcre2_jit_stack_free(m->jit);
    free(m);
}

int hd_regex_split(const hd_regex *re, hd_regex_matcher *m, const char *s, size_t len,
                   hd_piece_fn piece, void *ctx, hd_error *e) {
    const pcre2_code *code = (const pcre2_code *)re->code;
    size_t last_end = 0, last_match_end = 0, prev = 0;
    int have_last = 0, rc;
    while (last_end <= len) {
        rc = pcre2_match(code, (PCRE2_SPTR)s, len, last_end, PCRE2_NO_UTF_CHECK, m->md, m->mctx);
        if (rc == PCRE2_ERROR_JIT_STACKLIMIT) /* deep backtracking: the interpreter uses heap */
            rc = pcre2_match(code, (PCRE2_SPTR)s, len, last_end, PCRE2_NO_UTF_CHECK | PCRE2_NO_JIT,
                             m->md, m->mctx);
        if (rc == PCRE2_ERROR_NOMATCH) break;
        if (rc < 0) {
            PCRE2_UCHAR msg[160];
            if (pcre2_get_error_message(rc, msg, sizeof msg) < 0) strcpy((char *)msg, "error");
            return hd_fail(e, HD_EUNSUPPORTED, "pre-tokenizer regex failed at byte %zu: %s",
                           last_end, (const char *)msg);
        }
        const PCRE2_SIZE *ov = pcre2_get_ovector_pointer(m->md);
        size_t ms = ov[0], me = ov[1];
        if (ms > me || me > len || ms < last_end)
            return hd_fail(e, HD_EUNSUPPORTED,
                           "pre-tokenizer regex gave an unusable match at byte %zu", last_end);
        if (ms == me && have_last && last_match_end == me) {
            /* an empty match right after the previous one: move on by one character */
            if (last_end >= len) break;
            unsigned char b0 = (unsigned char)s[last_end];
            last_end += b0 < 0x80 ? 1 : b0 < 0xE0 ? 2 : b0 < 0xF0 ? 3 : 4;
            continue;
        }
        last_end = last_match_end = me;
        have_last = 1;
        if (prev < ms && (rc = piece(ctx, prev, ms - prev))) return rc;
        if (ms < me && (rc = piece(ctx, ms, me - ms))) return rc;
        prev = me;
    }
    if (prev < len && (rc = piece(ctx, prev, len - prev))) return rc;
    return 0;
}
