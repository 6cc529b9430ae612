#include "text/utf8.h"

#include <stdlib.h>
#include <string.h>

#include "hidream.h"

size_t hd_utf8_next(const unsigned char *s, size_t n, uint32_t *cp, size_t *bad_len) {
    unsigned b0 = s[0];
    if (b0 < 0x80) {
        *cp = b0;
        return 1;
    }
    size_t need;
    unsigned lo = 0x80, hi = 0xBF; /* allowed range of the second byte */
    uint32_t c;
    if (b0 >= 0xC2 && b0 <= 0xDF) {
        need = 1;
        c = b0 & 0x1F;
    } else if (b0 >= 0xE0 && b0 <= 0xEF) {
        need = 2;
        c = b0 & 0x0F;
        if (b0 == 0xE0) lo = 0xA0;      /* overlong */
        else if (b0 == 0xED) hi = 0x9F; /* surrogates */
    } else if (b0 >= 0xF0 && b0 <= 0xF4) {
        need = 3;
        c = b0 & 0x07;
        if (b0 == 0xF0) lo = 0x90;      /* overlong */
        else if (b0 == 0xF4) hi = 0x8F; /* above U+10FFFF */
    } else {
        *bad_len = 1;
        return 0;
    }
    for (size_t k = 1; k <= need; k++) {
        if (k >= n) {
            *bad_len = k;
            return 0;
        }
        unsigned b = s[k];
        unsigned l = k == 1 ? lo : 0x80, h = k == 1 ? hi : 0xBF;
        if (b < l || b > h) {
            *bad_len = k;
            return 0;
        }
        c = (c << 6) | (b & 0x3F);
    }
    *cp = c;
    return need + 1;
}

size_t hd_utf8_decode_valid(const unsigned char *s, uint32_t *cp) {
    unsigned b0 = s[0];
    if (b0 < 0x80) {
        *cp = b0;
        return 1;
    }
    if (b0 < 0xE0) {
        *cp = ((uint32_t)(b0 & 0x1F) << 6) | (s[1] & 0x3F);
        return 2;
    }
    if (b0 < 0xF0) {
        *cp = ((uint32_t)(b0 & 0x0F) << 12) | ((uint32_t)(s[1] & 0x3F) << 6) | (s[2] & 0x3F);
        return 3;
    }
    *cp = ((uint32_t)(b0 & 0x07) << 18) | ((uint32_t)(s[1] & 0x3F) << 12) |
          ((uint32_t)(s[2] & 0x3F) << 6) | (s[3] & 0x3F);
    return 4;
}

size_t hd_utf8_find_invalid(const char *str, size_t len) {
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;
    while (i < len) {
        /* ASCII runs are the common case: test 8 bytes at a time */
        while (i + 8 <= len) {
            uint64_t w;
            memcpy(&w, s + i, 8);
            if (w & 0x8080808080808080ull) break;
            i += 8;
        }
        if (i >= len) break;
        if (s[i] < 0x80) {
            i++;
            continue;
        }
        uint32_t cp;
        size_t bad, k = hd_utf8_next(s + i, len - i, &cp, &bad);
        if (!k) return i;
        i += k;
    }
    return len;
}

size_t hd_utf8_encode(uint32_t cp, char *out) {
    unsigned char *o = (unsigned char *)out;
    if (cp < 0x80) {
        o[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (unsigned char)(0xC0 | (cp >> 6));
        o[1] = (unsigned char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (unsigned char)(0xE0 | (cp >> 12));
        o[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (unsigned char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (unsigned char)(0xF0 | (cp >> 18));
    o[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (unsigned char)(0x80 | (cp & 0x3F));
    return 4;
}

int hd_utf8_repair(const char *str, size_t len, char **out, size_t *out_len) {
    const unsigned char *s = (const unsigned char *)str;
    *out = NULL;
    *out_len = 0;
    /* worst case: every byte becomes U+FFFD (3 bytes) */
    if (len > (SIZE_MAX - 1) / 3) return HD_ENOMEM;
    char *o = malloc(len * 3 + 1);
    if (!o) return HD_ENOMEM;
    size_t i = 0, w = 0;
    while (i < len) {
        uint32_t cp;
        size_t bad, k = hd_utf8_next(s + i, len - i, &cp, &bad);
        if (k) {
            memcpy(o + w, s + i, k);
            w += k;
            i += k;
        } else {
            w += hd_utf8_encode(0xFFFD, o + w);
            i += bad;
        }
    }
    o[w] = 0;
    *out = o;
    *out_len = w;
    return 0;
}
