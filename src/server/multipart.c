/* multipart/form-data parsing over a complete body (see multipart.h). */
#include "server/multipart.h"

#include <string.h>
#include <strings.h>

#include "core/error.h"

int hd_multipart_boundary(const char *ct, char *out, size_t n, hd_error *e) {
    if (!ct || strncasecmp(ct, "multipart/form-data", 19) != 0)
        return hd_fail(e, HD_EFORMAT, "Content-Type: expected multipart/form-data");
    const char *b = strcasestr(ct, "boundary=");
    if (!b) return hd_fail(e, HD_EFORMAT, "Content-Type: multipart without a boundary");
    b += 9;
    size_t len;
    if (*b == '"') {
        const char *end = strchr(++b, '"');
        if (!end) return hd_fail(e, HD_EFORMAT, "Content-Type: unterminated quoted boundary");
        len = (size_t)(end - b);
    } else {
        len = strcspn(b, "; \t");
    }
    if (len == 0 || len > 70 || len + 1 > n)
        return hd_fail(e, HD_EFORMAT, "Content-Type: boundary must be 1..70 characters");
    memcpy(out, b, len);
    out[len] = 0;
    return 0;
}

/* Copies the value of a header parameter (name="value") into out; "" when absent. */
static void header_param(const char *h, size_t hl, const char *key, char *out, size_t n) {
    out[0] = 0;
    size_t kl = strlen(key);
    for (size_t i = 0; i + kl + 1 < hl; i++) {
        if (strncasecmp(h + i, key, kl) || h[i + kl] != '=') continue;
        if (i > 0 && h[i - 1] != ' ' && h[i - 1] != ';' && h[i - 1] != '\t') continue;
        const char *v = h + i + kl + 1, *end = h + hl;
        size_t len;
        if (v < end && *v == '"') {
            v++;
            const char *q = memchr(v, '"', (size_t)(end - v));
            len = q ? (size_t)(q - v) : (size_t)(end - v);
        } else {
            len = 0;
            while (v + len < end && v[len] != ';' && v[len] != '\r') len++;
        }
        if (len >= n) len = n - 1;
        memcpy(out, v, len);
        out[len] = 0;
        return;
    }
}

/* Reads the header lines of one part: [h, body) ends with an empty line. */
static int part_headers(const char *h, size_t hl, hd_part *p, hd_error *e) {
    int have_disposition = 0;
    const char *end = h + hl;
    while (h < end) {
        const char *eol = memmem(h, (size_t)(end - h), "\r\n", 2);
        size_t ll = eol ? (size_t)(eol - h) : (size_t)(end - h);
        if (ll > 20 && !strncasecmp(h, "Content-Disposition:", 20)) {
            header_param(h, ll, "name", p->name, sizeof p->name);
            header_param(h, ll, "filename", p->filename, sizeof p->filename);
            have_disposition = 1;
        } else if (ll > 13 && !strncasecmp(h, "Content-Type:", 13)) {
            const char *v = h + 13;
            while (v < h + ll && *v == ' ') v++;
            size_t vl = (size_t)(h + ll - v);
            if (vl >= sizeof p->type) vl = sizeof p->type - 1;
            memcpy(p->type, v, vl);
            p->type[vl] = 0;
        }
        h += ll + 2;
    }
    if (!have_disposition || !p->name[0])
        return hd_fail(e, HD_EFORMAT, "multipart: a part without Content-Disposition name");
    return 0;
}

int hd_multipart_parse(const char *body, size_t len, const char *boundary, hd_multipart *out,
                       hd_error *e) {
    memset(out, 0, sizeof *out);
    char delim[80];
    size_t bl = strlen(boundary);
    if (bl == 0 || bl > 70) return hd_fail(e, HD_EFORMAT, "multipart: bad boundary");
    delim[0] = '-';
    delim[1] = '-';
    memcpy(delim + 2, boundary, bl);
    size_t dl = bl + 2;
    const char *end = body + len;
    const char *at = memmem(body, len, delim, dl);
    if (!at) return hd_fail(e, HD_EFORMAT, "multipart: the body has no boundary line");
    for (;;) {
        at += dl;
        if (end - at >= 2 && at[0] == '-' && at[1] == '-') return 0; /* closing delimiter */
        if (end - at < 2 || at[0] != '\r' || at[1] != '\n')
            return hd_fail(e, HD_EFORMAT, "multipart: truncated after a boundary");
        at += 2;
        const char *hend = memmem(at, (size_t)(end - at), "\r\n\r\n", 4);
        if (!hend) return hd_fail(e, HD_EFORMAT, "multipart: truncated part headers");
        if (out->n >= HD_MULTIPART_MAX_PARTS)
            return hd_fail(e, HD_ENOMEM, "multipart: more than %d parts", HD_MULTIPART_MAX_PARTS);
        hd_part *p = &out->parts[out->n];
        HD_TRY(part_headers(at, (size_t)(hend - at) + 2, p, e));
        const char *data = hend + 4;
        /* the part ends at CRLF + delimiter */
        const char *next = data;
        for (;;) {
            next = memmem(next, (size_t)(end - next), delim, dl);
            if (!next) return hd_fail(e, HD_EFORMAT, "multipart: part '%s' is not closed", p->name);
            if (next - data >= 2 && next[-2] == '\r' && next[-1] == '\n') break;
            next += 1;
        }
        p->data = data;
        p->len = (size_t)(next - 2 - data);
        out->n++;
        at = next;
    }
}

const hd_part *hd_multipart_get(const hd_multipart *m, const char *name) {
    for (int i = 0; i < m->n; i++)
        if (!strcmp(m->parts[i].name, name)) return &m->parts[i];
    return NULL;
}
