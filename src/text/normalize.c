#include "text/normalize.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "hidream.h"
#include "text/utf8.h"

/* Code points that utf8proc (Unicode 15) reorders, decomposes or composes but that Unicode 9.0
 * did not assign: Age > 9.0 (or unassigned in Unicode 14) and combining class != 0, canonical
 * decomposition, or part of a composition pair. Derived from utf8proc's property table and
 * Perl's Unicode 14 Age data; inclusive ranges, sorted. */
static const uint32_t post_unicode9[][2] = {
    {0x7FD, 0x7FD},     {0x898, 0x89F},     {0x8CA, 0x8D3},     {0x9FE, 0x9FE},
    {0xC3C, 0xC3C},     {0xD3B, 0xD3C},     {0xEBA, 0xEBA},     {0x1715, 0x1715},
    {0x1ABF, 0x1ACE},   {0x1DF6, 0x1DFA},   {0xA82C, 0xA82C},   {0x10D24, 0x10D27},
    {0x10EAB, 0x10EAC}, {0x10EFD, 0x10EFF}, {0x10F46, 0x10F50}, {0x10F82, 0x10F85},
    {0x11070, 0x11070}, {0x1133B, 0x1133B}, {0x1145E, 0x1145E}, {0x11839, 0x1183A},
    {0x11930, 0x11930}, {0x11935, 0x11935}, {0x11938, 0x11938}, {0x1193D, 0x1193E},
    {0x11943, 0x11943}, {0x119E0, 0x119E0}, {0x11A34, 0x11A34}, {0x11A47, 0x11A47},
    {0x11A99, 0x11A99}, {0x11D42, 0x11D42}, {0x11D44, 0x11D45}, {0x11D97, 0x11D97},
    {0x11F41, 0x11F42}, {0x16FF0, 0x16FF1}, {0x1E08F, 0x1E08F}, {0x1E130, 0x1E136},
    {0x1E2AE, 0x1E2AE}, {0x1E2EC, 0x1E2EF}, {0x1E4EC, 0x1E4EF},
};

static int is_post_unicode9(uint32_t cp) {
    size_t lo = 0, hi = sizeof post_unicode9 / sizeof *post_unicode9;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (cp < post_unicode9[mid][0]) hi = mid;
        else if (cp > post_unicode9[mid][1]) lo = mid + 1;
        else return 1;
    }
    return 0;
}

enum {
    NFC_STABLE,  /* NFC leaves it alone whatever follows; a later mark may compose with it */
    NFC_BARRIER, /* unassigned for HF: left alone, and nothing composes or reorders across it */
    NFC_ACTIVE,  /* may change, or change its neighbours: normalize around it */
};

static int nfc_class(uint32_t cp) {
    if (cp < 0x300) return NFC_STABLE; /* nothing below U+0300 combines or decomposes canonically */
    if (cp >= 0x1100 && cp <= 0x11FF) return NFC_ACTIVE; /* jamo compose algorithmically */
    const utf8proc_property_t *p = utf8proc_get_property((utf8proc_int32_t)cp);
    int active = p->combining_class != 0 ||
                 (p->decomp_type == 0 && p->decomp_seqindex != UINT16_MAX) || /* canonical */
                 (p->comb_index != UINT16_MAX && p->comb_index >= 0x8000);     /* 2nd of a pair */
    if (!active) return NFC_STABLE;
    return is_post_unicode9(cp) ? NFC_BARRIER : NFC_ACTIVE;
}

int hd_nfc_is_quick(const char *str, size_t len) {
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;
    while (i < len) {
        if (s[i] < 0xCC) { /* lead bytes below 0xCC encode code points below U+0300 */
            i += s[i] < 0x80 ? 1 : 2;
            continue;
        }
        uint32_t cp;
        i += hd_utf8_decode_valid(s + i, &cp);
        if (nfc_class(cp) == NFC_ACTIVE) return 0;
    }
    return 1;
}

typedef struct buf {
    char *p;
    size_t n, cap;
} buf;

static int buf_put(buf *b, const void *data, size_t n) {
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->n + n + 1) cap *= 2;
        char *q = realloc(b->p, cap);
        if (!q) return HD_ENOMEM;
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->n, data, n);
    b->n += n;
    b->p[b->n] = 0;
    return 0;
}

/* Appends NFC(s[0..len)); s holds no barrier. Short spans (the usual case: a base character
 * and its marks) go through a stack buffer instead of utf8proc_map's allocations. */
static int nfc_span(buf *b, const char *s, size_t len) {
    utf8proc_int32_t cps[64];
    const utf8proc_option_t opts = UTF8PROC_STABLE | UTF8PROC_COMPOSE;
    utf8proc_ssize_t n = utf8proc_decompose((const utf8proc_uint8_t *)s, (utf8proc_ssize_t)len,
                                            cps, 64, UTF8PROC_STABLE | UTF8PROC_DECOMPOSE);
    if (n >= 0 && n <= 64) {
        n = utf8proc_normalize_utf32(cps, n, opts);
        if (n < 0) return HD_ENOMEM;
        char tmp[64 * 4];
        size_t w = 0;
        for (utf8proc_ssize_t i = 0; i < n; i++) w += hd_utf8_encode((uint32_t)cps[i], tmp + w);
        return buf_put(b, tmp, w);
    }
    utf8proc_uint8_t *dst = NULL;
    n = utf8proc_map((const utf8proc_uint8_t *)s, (utf8proc_ssize_t)len, &dst, opts);
    if (n < 0) return HD_ENOMEM; /* input is valid UTF-8, so only allocation can fail */
    int rc = buf_put(b, dst, (size_t)n);
    free(dst);
    return rc;
}

int hd_nfc(const char *str, size_t len, char **out, size_t *out_len) {
    const unsigned char *s = (const unsigned char *)str;
    buf b = {0};
    *out = NULL;
    *out_len = 0;
    /* Stable characters and barriers are boundaries: NFC of the whole is the concatenation of
     * NFC of the pieces between them. Only spans [stable char before an active one, next
     * boundary) need utf8proc. */
    size_t i = 0, copied = 0, prev = 0; /* prev: start of the previous character */
    int prev_class = NFC_BARRIER, rc = 0;
    while (i < len && !rc) {
        uint32_t cp;
        size_t k = s[i] < 0x80 ? (cp = s[i], 1) : hd_utf8_decode_valid(s + i, &cp);
        int c = s[i] < 0xCC ? NFC_STABLE : nfc_class(cp);
        if (c != NFC_ACTIVE) {
            prev = i;
            prev_class = c;
            i += k;
            continue;
        }
        /* the stable character before may compose with what follows: it starts the span */
        size_t start = (i > copied && prev_class == NFC_STABLE) ? prev : i;
        size_t end = i + k;
        while (end < len) {
            uint32_t c2;
            size_t k2 = hd_utf8_decode_valid(s + end, &c2);
            if (s[end] < 0xCC || nfc_class(c2) != NFC_ACTIVE) break;
            end += k2;
        }
        rc = buf_put(&b, s + copied, start - copied);
        if (!rc) rc = nfc_span(&b, str + start, end - start);
        copied = i = end;
        prev_class = NFC_BARRIER; /* the span's end is not a composition start */
    }
    if (!rc) rc = buf_put(&b, s + copied, len - copied);
    if (rc) {
        free(b.p);
        return rc;
    }
    *out = b.p;
    *out_len = b.n;
    return 0;
}
