#include "agent/think.h"

#include <stdlib.h>
#include <string.h>

#include "hidream.h"

#define OPEN_TAG "<think>"
#define CLOSE_TAG "</think>"

static int is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

char *hd_strip_dup(const char *s, size_t n) {
    while (n && is_ws(*s)) s++, n--;
    while (n && is_ws(s[n - 1])) n--;
    char *d = malloc(n + 1);
    if (!d) return NULL;
    memcpy(d, s, n);
    d[n] = 0;
    return d;
}

static const char *find(const char *s, const char *end, const char *tag) {
    size_t tl = strlen(tag);
    for (const char *p = s; p + tl <= end; p++)
        if (*p == *tag && !memcmp(p, tag, tl)) return p;
    return NULL;
}

/* A growing byte buffer; both outputs are built in one. */
typedef struct buf {
    char *p;
    size_t n;
} buf;

static void add(buf *b, const char *s, size_t n) {
    memcpy(b->p + b->n, s, n);
    b->n += n;
}

/* Appends one reasoning block, stripped, separated from the previous one by a blank line. */
static void add_block(buf *b, const char *s, size_t n) {
    while (n && is_ws(*s)) s++, n--;
    while (n && is_ws(s[n - 1])) n--;
    if (!n) return;
    if (b->n) add(b, "\n\n", 2);
    add(b, s, n);
}

int hd_split_thinking(const char *text, size_t len, char **answer, char **reasoning) {
    *answer = *reasoning = NULL;
    /* each output is at most the input plus two bytes per block separator */
    buf a = {malloc(len + 1), 0}, r = {malloc(2 * len + 1), 0};
    if (!a.p || !r.p) goto nomem;
    const char *p = text, *end = text + len;
    const char *open = find(p, end, OPEN_TAG), *close = find(p, end, CLOSE_TAG);
    if (close && (!open || close < open)) { /* the template opened the block */
        add_block(&r, p, (size_t)(close - p));
        p = close + strlen(CLOSE_TAG);
    }
    while (p < end) {
        open = find(p, end, OPEN_TAG);
        if (!open) {
            add(&a, p, (size_t)(end - p));
            break;
        }
        add(&a, p, (size_t)(open - p));
        const char *in = open + strlen(OPEN_TAG);
        close = find(in, end, CLOSE_TAG);
        add_block(&r, in, (size_t)((close ? close : end) - in));
        p = close ? close + strlen(CLOSE_TAG) : end;
    }
    *answer = hd_strip_dup(a.p, a.n);
    if (!*answer) goto nomem;
    if (r.n) {
        *reasoning = hd_strip_dup(r.p, r.n);
        if (!*reasoning) goto nomem;
    }
    free(a.p);
    free(r.p);
    return 0;
nomem:
    free(a.p);
    free(r.p);
    free(*answer);
    *answer = NULL;
    return HD_ENOMEM;
}
