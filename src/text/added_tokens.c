#include "text/added_tokens.h"

#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "hidream.h"
#include "text/utf8.h"

int hd_is_white_space(uint32_t c) {
    return (c >= 0x9 && c <= 0xD) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F ||
           c == 0x205F || c == 0x3000;
}

/* Letters, marks, Nd, Nl and Pc of Unicode 15.1-16.0, which utf8proc (Unicode 15.0) does not
 * know and the Rust regex crate used by Hugging Face does (from unicodedata2 16.0). */
static const uint32_t new_word_chars[][2] = {
    {0x897, 0x897},     {0x1C89, 0x1C8A},   {0xA7CB, 0xA7CD},   {0xA7DA, 0xA7DC},
    {0x105C0, 0x105F3}, {0x10D40, 0x10D65}, {0x10D69, 0x10D6D}, {0x10D6F, 0x10D85},
    {0x10EC2, 0x10EC4}, {0x10EFC, 0x10EFC}, {0x11380, 0x11389}, {0x1138B, 0x1138B},
    {0x1138E, 0x1138E}, {0x11390, 0x113B5}, {0x113B7, 0x113C0}, {0x113C2, 0x113C2},
    {0x113C5, 0x113C5}, {0x113C7, 0x113CA}, {0x113CC, 0x113D3}, {0x113E1, 0x113E2},
    {0x116D0, 0x116E3}, {0x11BC0, 0x11BE0}, {0x11BF0, 0x11BF9}, {0x11F5A, 0x11F5A},
    {0x13460, 0x143FA}, {0x16100, 0x16139}, {0x16D40, 0x16D6C}, {0x16D70, 0x16D79},
    {0x18CFF, 0x18CFF}, {0x1CCF0, 0x1CCF9}, {0x1E5D0, 0x1E5FA}, {0x2EBF0, 0x2EE5D},
};

/* Rust regex's Unicode \w: Alphabetic, marks, decimal numbers, connector punctuation,
 * Join_Control. Alphabetic is approximated by letters, letter numbers and the Other_Alphabetic
 * symbols (circled / squared Latin letters). */
static int is_word_char(uint32_t c) {
    if (c < 0x80)
        return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
               c == '_';
    if (c == 0x200C || c == 0x200D || (c >= 0x24B6 && c <= 0x24E9) ||
        (c >= 0x1F130 && c <= 0x1F149) || (c >= 0x1F150 && c <= 0x1F169) ||
        (c >= 0x1F170 && c <= 0x1F189))
        return 1;
    for (size_t i = 0; i < sizeof new_word_chars / sizeof *new_word_chars; i++)
        if (c >= new_word_chars[i][0] && c <= new_word_chars[i][1]) return 1;
    switch (utf8proc_category((utf8proc_int32_t)c)) {
    case UTF8PROC_CATEGORY_LU: case UTF8PROC_CATEGORY_LL: case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM: case UTF8PROC_CATEGORY_LO: case UTF8PROC_CATEGORY_MN:
    case UTF8PROC_CATEGORY_MC: case UTF8PROC_CATEGORY_ME: case UTF8PROC_CATEGORY_ND:
    case UTF8PROC_CATEGORY_NL: case UTF8PROC_CATEGORY_PC:
        return 1;
    default:
        return 0;
    }
}

/* The code point that ends at s[end] (exclusive); end > 0, text valid UTF-8. */
static uint32_t cp_before(const char *s, size_t end, size_t *start) {
    size_t i = end - 1;
    while (i > 0 && ((unsigned char)s[i] & 0xC0) == 0x80) i--;
    uint32_t cp;
    hd_utf8_decode_valid((const unsigned char *)s + i, &cp);
    *start = i;
    return cp;
}

typedef struct sort_key {
    unsigned char first;
    size_t len;
    int32_t index;
} sort_key;

static int by_first_then_longest(const void *a, const void *b) {
    const sort_key *x = a, *y = b;
    if (x->first != y->first) return x->first < y->first ? -1 : 1;
    if (x->len != y->len) return x->len > y->len ? -1 : 1;
    return x->index < y->index ? -1 : 1;
}

int hd_added_set_build(hd_added_set *set, const hd_added_token *toks, int n_toks, int normalized) {
    memset(set, 0, sizeof *set);
    int n = 0;
    for (int i = 0; i < n_toks; i++)
        if (!toks[i].normalized == !normalized && toks[i].match_len) n++;
    set->order = malloc(((size_t)n + 1) * sizeof *set->order);
    if (!set->order) return HD_ENOMEM;
    n = 0;
    for (int i = 0; i < n_toks; i++)
        if (!toks[i].normalized == !normalized && toks[i].match_len) set->order[n++] = i;
    set->n = n;
    sort_key *keys = malloc(((size_t)n + 1) * sizeof *keys);
    if (!keys) {
        hd_added_set_free(set);
        return HD_ENOMEM;
    }
    for (int i = 0; i < n; i++) {
        const hd_added_token *t = &toks[set->order[i]];
        keys[i] = (sort_key){(unsigned char)t->match[0], t->match_len, set->order[i]};
    }
    qsort(keys, (size_t)n, sizeof *keys, by_first_then_longest);
    for (int i = 0; i < n; i++) set->order[i] = keys[i].index;
    free(keys);
    int k = 0;
    for (int b = 0; b < 256; b++) {
        set->first[b] = k;
        while (k < n && (unsigned char)toks[set->order[k]].match[0] == b) k++;
    }
    set->first[256] = n;
    return 0;
}

void hd_added_set_free(hd_added_set *set) {
    free(set->order);
    memset(set, 0, sizeof *set);
}

int hd_added_split(const hd_added_token *toks, const hd_added_set *set, const char *s,
                   size_t len, hd_added_emit_fn emit, void *ctx) {
    size_t start_offset = 0, pos = 0;
    int rc;
    while (set->n && pos < len) {
        unsigned char c0 = (unsigned char)s[pos];
        int32_t lo = set->first[c0], hi = set->first[c0 + 1];
        const hd_added_token *t = NULL;
        for (int32_t k = lo; k < hi; k++) { /* longest first */
            const hd_added_token *cand = &toks[set->order[k]];
            if (cand->match_len <= len - pos && !memcmp(s + pos, cand->match, cand->match_len)) {
                t = cand;
                break;
            }
        }
        if (!t) {
            pos++;
            continue;
        }
        size_t start = pos, stop = pos + t->match_len;
        pos = stop; /* the next search starts after this match, used or not */
        if (t->single_word) {
            size_t dummy;
            int left_word = start > 0 && is_word_char(cp_before(s, start, &dummy));
            uint32_t next_cp = 0;
            if (stop < len) hd_utf8_decode_valid((const unsigned char *)s + stop, &next_cp);
            int right_word = stop < len && is_word_char(next_cp);
            if (left_word || right_word) continue;
        }
        if (t->lstrip) {
            size_t ns = start, cs;
            while (ns > 0 && hd_is_white_space(cp_before(s, ns, &cs))) ns = cs;
            start = ns > start_offset ? ns : start_offset;
        }
        if (t->rstrip) {
            while (stop < len) {
                uint32_t cp;
                size_t k = hd_utf8_decode_valid((const unsigned char *)s + stop, &cp);
                if (!hd_is_white_space(cp)) break;
                stop += k;
            }
        }
        if (start_offset < start && (rc = emit(ctx, start_offset, start - start_offset, -1)))
            return rc;
        if ((rc = emit(ctx, start, stop - start, t->id))) return rc;
        start_offset = stop;
    }
    if (start_offset < len && (rc = emit(ctx, start_offset, len - start_offset, -1))) return rc;
    return 0;
}
