/* Base64 encoding and a forgiving decoder (see base64.h). */
#include "server/base64.h"

#include <stdlib.h>
#include <string.h>

static const char ALPHABET[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *hd_base64_encode(const uint8_t *data, size_t n) {
    size_t out_len = (n + 2) / 3 * 4;
    char *out = malloc(out_len + 1);
    if (!out) return NULL;
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)data[i] << 16;
        if (i + 1 < n) v |= (uint32_t)data[i + 1] << 8;
        if (i + 2 < n) v |= data[i + 2];
        out[o++] = ALPHABET[(v >> 18) & 63];
        out[o++] = ALPHABET[(v >> 12) & 63];
        out[o++] = i + 1 < n ? ALPHABET[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < n ? ALPHABET[v & 63] : '=';
    }
    out[o] = 0;
    return out;
}

static int value_of(unsigned char c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+' || c == '-') return 62; /* '-' and '_': the URL-safe alphabet */
    if (c == '/' || c == '_') return 63;
    return -1;
}

int hd_base64_decode(const char *text, size_t len, uint8_t **out, size_t *out_len) {
    *out = NULL;
    *out_len = 0;
    /* "data:image/png;base64,...." */
    if (len >= 5 && !memcmp(text, "data:", 5)) {
        const char *comma = memchr(text, ',', len);
        if (!comma) return -1;
        len -= (size_t)(comma + 1 - text);
        text = comma + 1;
    }
    uint8_t *buf = malloc(len / 4 * 3 + 3);
    if (!buf) return -1;
    size_t n = 0;
    uint32_t acc = 0;
    int bits = 0, pad = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)text[i];
        if (c == ' ' || c == '\n' || c == '\r' || c == '\t') continue;
        if (c == '=') {
            pad++;
            continue;
        }
        int v = value_of(c);
        if (v < 0 || pad) {
            free(buf);
            return -1;
        }
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            buf[n++] = (uint8_t)(acc >> bits);
        }
    }
    /* a lone trailing character (6 bits) cannot encode a byte */
    if (bits >= 6 || pad > 2) {
        free(buf);
        return -1;
    }
    *out = buf;
    *out_len = n;
    return 0;
}
