/* One HTTP(S) POST of a JSON body (libcurl), with time limits and a size cap on the reply. */
#ifndef HD_AGENT_HTTP_H
#define HD_AGENT_HTTP_H

#include <stddef.h>

#include "hidream.h"

#define HD_HTTP_MAX_REPLY (16u << 20)

typedef struct hd_http_reply {
    long status; /* HTTP status code */
    char *body;  /* malloc'd, NUL-terminated */
    size_t len;
} hd_http_reply;

/* POSTs body to url (http:// or https:// only) with Content-Type: application/json and, when
 * api_key is non-empty, "Authorization: Bearer <api_key>". timeout_ms bounds the whole exchange
 * (connect included). Any HTTP status is a success of this call; a transport failure (no
 * connection, timeout, reply over HD_HTTP_MAX_REPLY) is HD_EIO with one line naming the url. */
int hd_http_post_json(const char *url, const char *api_key, const char *body, long timeout_ms,
                      hd_http_reply *r, hd_error *e);
void hd_http_reply_free(hd_http_reply *r);

#endif
