/* Degenerate-output check: lower-case, split into words, then sort the 5-word windows so equal
 * windows are adjacent and count the longest run (O(n log n), whatever the reply length). */
#include "agent/degenerate.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "hidream.h"
#include "text/utf8.h"

/* Python's str.isspace() set, which str.split() splits on. */
static int py_space(uint32_t c) {
    return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 ||
           c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 ||
           c == 0x202F || c == 0x205F || c == 0x3000;
}

typedef struct word {
    const char *s;
    size_t n;
} word;

typedef struct words {
    char *low; /* the lower-cased text the spans point into */
    word *w;
    size_t n;
} words;

/* Lower-cases text (code point by code point) and records the word spans. */
static int split_words(const char *text, size_t len, words *out) {
    out->low = malloc(len * 2 + 1); /* a lower-case code point never needs more than 2x bytes */
    out->w = malloc((len / 2 + 1) * sizeof *out->w); /* a word and a space take >= 2 bytes */
    out->n = 0;
    if (!out->low || !out->w) return HD_ENOMEM;
    size_t o = 0, i = 0, start = 0;
    int in_word = 0;
    while (i < len) {
        uint32_t cp;
        size_t bad, k = hd_utf8_next((const unsigned char *)text + i, len - i, &cp, &bad);
        size_t before = o;
        if (k == 0) { /* invalid: copy the bytes as they are */
            memcpy(out->low + o, text + i, bad);
            o += bad;
            i += bad;
            cp = 0xFFFD;
        } else {
            i += k;
            if (!py_space(cp)) o += hd_utf8_encode((uint32_t)utf8proc_tolower((utf8proc_int32_t)cp), out->low + o);
        }
        int space = k != 0 && py_space(cp);
        if (!space && !in_word) {
            start = before;
            in_word = 1;
        } else if (space && in_word) {
            out->w[out->n++] = (word){out->low + start, o - start};
            in_word = 0;
        }
    }
    if (in_word) out->w[out->n++] = (word){out->low + start, o - start};
    return 0;
}

static int cmp_word(const word *a, const word *b) {
    size_t n = a->n < b->n ? a->n : b->n;
    int c = memcmp(a->s, b->s, n);
    return c ? c : (a->n > b->n) - (a->n < b->n);
}

/* Windows are indices into the word array; qsort_r passes the array. */
static int cmp_window(const void *pa, const void *pb, void *ctx) {
    const word *w = ctx;
    size_t a = *(const size_t *)pa, b = *(const size_t *)pb;
    for (int k = 0; k < HD_DEGENERATE_NGRAM; k++) {
        int c = cmp_word(&w[a + k], &w[b + k]);
        if (c) return c;
    }
    return 0;
}

int hd_text_is_degenerate(const char *text, size_t len) {
    words ws;
    int rc = split_words(text, len, &ws);
    if (rc < 0) goto done;
    if (ws.n < HD_DEGENERATE_MIN_WORDS) {
        rc = 1;
        goto done;
    }
    size_t nwin = ws.n - HD_DEGENERATE_NGRAM + 1;
    size_t *win = malloc(nwin * sizeof *win);
    if (!win) {
        rc = HD_ENOMEM;
        goto done;
    }
    for (size_t i = 0; i < nwin; i++) win[i] = i;
    qsort_r(win, nwin, sizeof *win, cmp_window, ws.w);
    rc = 0;
    for (size_t i = 0, run = 1; i + 1 < nwin && !rc; i++) {
        run = cmp_window(&win[i], &win[i + 1], ws.w) == 0 ? run + 1 : 1;
        if (run > HD_DEGENERATE_MAX_REPEATS) rc = 1;
    }
    free(win);
done:
    free(ws.low);
    free(ws.w);
    return rc;
}
