/* multipart/form-data bodies (RFC 7578), as OpenAI's /v1/images/edits takes them: text fields
 * and files (image, image[], mask). The parts point into the caller's body buffer; nothing is
 * copied. A body that does not follow the format (no boundary, a part without headers or without
 * a name, no closing delimiter) is refused with one line naming what is wrong. */
#ifndef HD_SERVER_MULTIPART_H
#define HD_SERVER_MULTIPART_H

#include <stddef.h>

#include "hidream.h"

#define HD_MULTIPART_MAX_PARTS 64

typedef struct hd_part {
    char name[128];       /* the form field name */
    char filename[256];   /* "" for a text field */
    char type[128];       /* Content-Type of the part, "" if none */
    const char *data;     /* into the body */
    size_t len;
} hd_part;

typedef struct hd_multipart {
    int n;
    hd_part parts[HD_MULTIPART_MAX_PARTS];
} hd_multipart;

/* Boundary from a Content-Type header value ("multipart/form-data; boundary=..."). */
int hd_multipart_boundary(const char *content_type, char *out, size_t n, hd_error *e);

int hd_multipart_parse(const char *body, size_t len, const char *boundary, hd_multipart *out,
                       hd_error *e);

/* The first part named `name`, or NULL. */
const hd_part *hd_multipart_get(const hd_multipart *m, const char *name);

#endif
