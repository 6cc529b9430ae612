#include "text/json_scan.h"

#include <stdlib.h>
#include <string.h>

#include "text/utf8.h"

void hd_js_init(hd_jscan *js, const char *buf, size_t len) {
    memset(js, 0, sizeof *js);
    js->buf = buf;
    js->len = len;
}

void hd_js_free(hd_jscan *js) {
    free(js->str);
    js->str = NULL;
    js->str_cap = js->str_len = 0;
}

int hd_js_fail(hd_jscan *js, const char *why) {
    if (!js->err) {
        js->err = why;
        js->err_pos = js->pos;
    }
    return -1;
}

static void skip_ws(hd_jscan *js) {
    while (js->pos < js->len) {
        char c = js->buf[js->pos];
        if (c != ' ' && c != '\n' && c != '\r' && c != '\t') break;
        js->pos++;
    }
}

int hd_js_peek(hd_jscan *js) {
    skip_ws(js);
    return js->pos < js->len ? (unsigned char)js->buf[js->pos] : -1;
}

int hd_js_expect(hd_jscan *js, char c) {
    skip_ws(js);
    if (js->pos >= js->len) return hd_js_fail(js, "unexpected end of input");
    if (js->buf[js->pos] != c) {
        switch (c) {
        case '{': return hd_js_fail(js, "expected '{'");
        case '[': return hd_js_fail(js, "expected '['");
        case ':': return hd_js_fail(js, "expected ':'");
        case '"': return hd_js_fail(js, "expected a string");
        default: return hd_js_fail(js, "unexpected character");
        }
    }
    js->pos++;
    return 0;
}

int hd_js_next(hd_jscan *js, char close) {
    skip_ws(js);
    if (js->pos >= js->len) return hd_js_fail(js, "unexpected end of input");
    char c = js->buf[js->pos];
    if (c == ',') {
        js->pos++;
        return 1;
    }
    if (c == close) {
        js->pos++;
        return 0;
    }
    return hd_js_fail(js, close == '}' ? "expected ',' or '}'" : "expected ',' or ']'");
}

static int str_reserve(hd_jscan *js, size_t extra) {
    if (js->str_len + extra + 1 <= js->str_cap) return 0;
    size_t cap = js->str_cap ? js->str_cap : 256;
    while (cap < js->str_len + extra + 1) {
        if (cap > SIZE_MAX / 2) return hd_js_fail(js, "string too long");
        cap *= 2;
    }
    char *p = realloc(js->str, cap);
    if (!p) return hd_js_fail(js, "out of memory");
    js->str = p;
    js->str_cap = cap;
    return 0;
}

static int hex4(const char *p, uint32_t *v) {
    uint32_t x = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        x <<= 4;
        if (c >= '0' && c <= '9') x |= (uint32_t)(c - '0');
        else if (c >= 'a' && c <= 'f') x |= (uint32_t)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F') x |= (uint32_t)(c - 'A' + 10);
        else return -1;
    }
    *v = x;
    return 0;
}

int hd_js_string(hd_jscan *js) {
    if (hd_js_expect(js, '"')) return -1;
    js->str_len = 0;
    const unsigned char *b = (const unsigned char *)js->buf;
    for (;;) {
        /* copy the run of plain bytes up to the next quote, backslash or control byte */
        size_t start = js->pos, i = start;
        while (i < js->len && b[i] != '"' && b[i] != '\\' && b[i] >= 0x20) {
            if (b[i] < 0x80) {
                i++;
                continue;
            }
            uint32_t cp;
            size_t bad, k = hd_utf8_next(b + i, js->len - i, &cp, &bad);
            if (!k) {
                js->pos = i;
                return hd_js_fail(js, "invalid UTF-8 in string");
            }
            i += k;
        }
        if (i > start) {
            if (str_reserve(js, i - start)) return -1;
            memcpy(js->str + js->str_len, b + start, i - start);
            js->str_len += i - start;
        }
        js->pos = i;
        if (i >= js->len) return hd_js_fail(js, "unterminated string");
        if (b[i] == '"') {
            js->pos++;
            break;
        }
        if (b[i] < 0x20) return hd_js_fail(js, "control character in string");
        /* escape */
        if (i + 1 >= js->len) return hd_js_fail(js, "unterminated string");
        char c = (char)b[i + 1], out = 0;
        js->pos = i + 2;
        switch (c) {
        case '"': out = '"'; break;
        case '\\': out = '\\'; break;
        case '/': out = '/'; break;
        case 'b': out = '\b'; break;
        case 'f': out = '\f'; break;
        case 'n': out = '\n'; break;
        case 'r': out = '\r'; break;
        case 't': out = '\t'; break;
        case 'u': {
            uint32_t u, lo;
            if (js->pos + 4 > js->len || hex4(js->buf + js->pos, &u))
                return hd_js_fail(js, "invalid \\u escape");
            js->pos += 4;
            if (u >= 0xDC00 && u <= 0xDFFF) return hd_js_fail(js, "lone low surrogate escape");
            if (u >= 0xD800 && u <= 0xDBFF) {
                if (js->pos + 6 > js->len || js->buf[js->pos] != '\\' ||
                    js->buf[js->pos + 1] != 'u' || hex4(js->buf + js->pos + 2, &lo) ||
                    lo < 0xDC00 || lo > 0xDFFF)
                    return hd_js_fail(js, "lone high surrogate escape");
                js->pos += 6;
                u = 0x10000 + ((u - 0xD800) << 10) + (lo - 0xDC00);
            }
            if (str_reserve(js, 4)) return -1;
            js->str_len += hd_utf8_encode(u, js->str + js->str_len);
            continue;
        }
        default: return hd_js_fail(js, "invalid escape");
        }
        if (str_reserve(js, 1)) return -1;
        js->str[js->str_len++] = out;
    }
    if (str_reserve(js, 0)) return -1;
    js->str[js->str_len] = 0;
    return 0;
}

/* Consumes a number per the JSON grammar; *is_int tells whether it had no fraction/exponent. */
static int scan_number(hd_jscan *js, int *is_int) {
    const char *b = js->buf;
    size_t i = js->pos, n = js->len;
    *is_int = 1;
    if (i < n && b[i] == '-') i++;
    if (i >= n) return hd_js_fail(js, "invalid number");
    if (b[i] == '0') i++;
    else if (b[i] >= '1' && b[i] <= '9')
        while (i < n && b[i] >= '0' && b[i] <= '9') i++;
    else return hd_js_fail(js, "invalid number");
    if (i < n && b[i] == '.') {
        *is_int = 0;
        i++;
        if (i >= n || b[i] < '0' || b[i] > '9') return hd_js_fail(js, "invalid number");
        while (i < n && b[i] >= '0' && b[i] <= '9') i++;
    }
    if (i < n && (b[i] == 'e' || b[i] == 'E')) {
        *is_int = 0;
        i++;
        if (i < n && (b[i] == '+' || b[i] == '-')) i++;
        if (i >= n || b[i] < '0' || b[i] > '9') return hd_js_fail(js, "invalid number");
        while (i < n && b[i] >= '0' && b[i] <= '9') i++;
    }
    js->pos = i;
    return 0;
}

int hd_js_int(hd_jscan *js, int64_t *v) {
    skip_ws(js);
    size_t start = js->pos;
    int is_int;
    if (js->pos >= js->len) return hd_js_fail(js, "unexpected end of input");
    char c = js->buf[js->pos];
    if (c != '-' && (c < '0' || c > '9')) return hd_js_fail(js, "expected an integer");
    if (scan_number(js, &is_int)) return -1;
    if (!is_int) {
        js->pos = start;
        return hd_js_fail(js, "expected an integer");
    }
    const char *p = js->buf + start;
    int neg = *p == '-';
    if (neg) p++;
    uint64_t x = 0;
    for (; p < js->buf + js->pos; p++) {
        unsigned d = (unsigned)(*p - '0');
        if (x > (UINT64_MAX - d) / 10) {
            js->pos = start;
            return hd_js_fail(js, "integer out of range");
        }
        x = x * 10 + d;
    }
    if ((!neg && x > (uint64_t)INT64_MAX) || (neg && x > (uint64_t)INT64_MAX + 1)) {
        js->pos = start;
        return hd_js_fail(js, "integer out of range");
    }
    *v = neg ? (int64_t)(0 - x) : (int64_t)x;
    return 0;
}

static int literal(hd_jscan *js, const char *word) {
    size_t n = strlen(word);
    if (js->len - js->pos < n || memcmp(js->buf + js->pos, word, n))
        return hd_js_fail(js, "invalid literal");
    js->pos += n;
    return 0;
}

int hd_js_skip(hd_jscan *js, size_t *begin, size_t *end) {
    char stack[HD_JS_MAX_DEPTH];
    int depth = 0;
    skip_ws(js);
    *begin = js->pos;
    /* iterative walk: values, with ',' ':' and closers checked against the open brackets */
    for (;;) {
        int c = hd_js_peek(js);
        if (c < 0) return hd_js_fail(js, "unexpected end of input");
        if (c == '{' || c == '[') {
            if (depth >= HD_JS_MAX_DEPTH) return hd_js_fail(js, "nesting too deep");
            stack[depth++] = (char)(c == '{' ? '}' : ']');
            js->pos++;
            int d = hd_js_peek(js);
            if (d == stack[depth - 1]) { /* empty container */
                js->pos++;
                depth--;
                goto after_value;
            }
            if (c == '{') {
                if (hd_js_string(js) || hd_js_expect(js, ':')) return -1;
            }
            continue;
        }
        if (c == '"') {
            if (hd_js_string(js)) return -1;
        } else if (c == 't') {
            if (literal(js, "true")) return -1;
        } else if (c == 'f') {
            if (literal(js, "false")) return -1;
        } else if (c == 'n') {
            if (literal(js, "null")) return -1;
        } else if (c == '-' || (c >= '0' && c <= '9')) {
            int is_int;
            if (scan_number(js, &is_int)) return -1;
        } else {
            return hd_js_fail(js, "unexpected character");
        }
    after_value:
        for (;;) {
            if (depth == 0) {
                *end = js->pos;
                return 0;
            }
            int r = hd_js_next(js, stack[depth - 1]);
            if (r < 0) return -1;
            if (r == 0) {
                depth--;
                continue;
            }
            if (stack[depth - 1] == '}') {
                if (hd_js_string(js) || hd_js_expect(js, ':')) return -1;
            }
            break;
        }
    }
}
