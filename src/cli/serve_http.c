/* `hidream serve`: libmicrohttpd glue — body collection with a size limit, bearer-key check,
 * routing, JSON/bytes/error responses and server-sent event streams. */
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "cli/serve.h"

typedef struct conn_state {
    char *body;
    size_t len, cap;
    int too_big;
} conn_state;

static enum MHD_Result queue(const srv_req *r, int status, struct MHD_Response *resp) {
    if (!resp) return MHD_NO;
    enum MHD_Result rc = MHD_queue_response(r->c, (unsigned)status, resp);
    MHD_destroy_response(resp);
    return rc;
}

enum MHD_Result srv_bytes(const srv_req *r, int status, const char *type, void *buf, size_t len) {
    struct MHD_Response *resp = MHD_create_response_from_buffer(len, buf, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(buf);
        return MHD_NO;
    }
    MHD_add_response_header(resp, "Content-Type", type);
    MHD_add_response_header(resp, "Cache-Control", "no-store");
    if (status == 429 || status == 503) MHD_add_response_header(resp, "Retry-After", "5");
    if (status == 401) MHD_add_response_header(resp, "WWW-Authenticate", "Bearer");
    return queue(r, status, resp);
}

enum MHD_Result srv_json(const srv_req *r, int status, json_t *j) {
    char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    if (!text) return MHD_NO;
    size_t n = strlen(text);
    char *line = realloc(text, n + 2); /* one line, newline-terminated */
    if (!line) {
        free(text);
        return MHD_NO;
    }
    line[n] = '\n';
    line[n + 1] = 0;
    return srv_bytes(r, status, "application/json", line, n + 1);
}

enum MHD_Result srv_error(const srv_req *r, int status, const char *fmt, ...) {
    char msg[1200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    /* one line, and valid JSON text whatever a file name or field carried */
    for (char *c = msg; *c; c++)
        if (*c == '\n' || *c == '\r' || (unsigned char)*c >= 0x80 || (unsigned char)*c < 0x20) *c = ' ';
    const char *type = status == 401   ? "authentication_error"
                       : status == 429 ? "rate_limit_error"
                       : status >= 500 ? "server_error"
                                       : "invalid_request_error";
    return srv_json(r, status,
                    json_pack("{s:{s:s, s:s, s:i}}", "error", "message", msg, "type", type, "code",
                              status));
}

enum MHD_Result srv_parse_error(const srv_req *r, const hd_error *e) {
    return srv_error(r, e->code == HD_ENOMEM ? 413 : 400, "%s", e->msg);
}

enum MHD_Result srv_job_error(const srv_req *r, const srv_job *j) {
    return srv_error(r, j->error_status ? j->error_status : 500, "%s", j->error);
}

/* ---- server-sent events ---- */

void srv_sse_append(char **out, size_t *len, const char *event, json_t *data) {
    char *text = data ? json_dumps(data, JSON_COMPACT) : NULL;
    json_decref(data);
    if (!text) return;
    size_t add = strlen(event) + strlen(text) + 20;
    char *grown = realloc(*out, *len + add);
    if (grown) {
        *out = grown;
        *len += (size_t)snprintf(grown + *len, add, "event: %s\ndata: %s\n\n", event, text);
    }
    free(text);
}

int srv_sse_wait(srv_sse *ev) {
    server *s = ev->s;
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 15;
    int changed = 1;
    ev->timed_out = 0;
    pthread_mutex_lock(&s->mu);
    while (ev->job->version == ev->seen_version && ev->job->state < JOB_DONE)
        if (pthread_cond_timedwait(&s->cv, &s->mu, &until) != 0) {
            changed = 0;
            ev->timed_out = 1;
            break;
        }
    pthread_mutex_unlock(&s->mu);
    return changed;
}

static ssize_t sse_read(void *cls, uint64_t pos, char *buf, size_t max) {
    srv_sse *ev = cls;
    while (ev->off == ev->len) {
        free(ev->buf);
        ev->buf = NULL;
        ev->len = ev->off = 0;
        if (ev->done) return MHD_CONTENT_READER_END_OF_STREAM;
        ev->done = ev->produce(ev, &ev->buf, &ev->len);
        if (ev->len == 0 && !ev->done && ev->timed_out) { /* quiet for a while: a comment keeps it open */
            ev->buf = strdup(": keep-alive\n\n");
            ev->len = ev->buf ? strlen(ev->buf) : 0;
        }
    }
    size_t n = ev->len - ev->off < max ? ev->len - ev->off : max;
    memcpy(buf, ev->buf + ev->off, n);
    ev->off += n;
    return (ssize_t)n;
}

static void sse_free(void *cls) {
    srv_sse *ev = cls;
    srv_release(ev->s, ev->job);
    free(ev->buf);
    free(ev);
}

enum MHD_Result srv_sse_start(const srv_req *r, srv_job *job, srv_sse_fn produce, int partials) {
    srv_sse *ev = calloc(1, sizeof *ev);
    if (!ev) {
        srv_release(r->s, job);
        return MHD_NO;
    }
    ev->s = r->s;
    ev->job = job; /* held: released by sse_free */
    ev->produce = produce;
    ev->partials = partials;
    ev->seen_version = (unsigned)-1;
    ev->sent_preview = ev->sent_step = -1;
    struct MHD_Response *resp =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16 * 1024, sse_read, ev, sse_free);
    if (!resp) {
        sse_free(ev);
        return MHD_NO;
    }
    MHD_add_response_header(resp, "Content-Type", "text/event-stream");
    MHD_add_response_header(resp, "Cache-Control", "no-cache");
    return queue(r, 200, resp);
}

/* ---- requests ---- */

static int needs_key(const char *url) {
    return !strncmp(url, "/v1/", 4) || !strncmp(url, "/sdapi/", 7) || !strncmp(url, "/api/", 5) ||
           !strcmp(url, "/metrics");
}

/* Compares without an early exit, so the time taken says nothing about the key. */
static int key_ok(const char *key, const char *auth) {
    if (!auth || strncmp(auth, "Bearer ", 7)) return 0;
    auth += 7;
    size_t a = strlen(auth), k = strlen(key);
    unsigned diff = (unsigned)(a != k);
    for (size_t i = 0; i < k; i++) diff |= (unsigned char)key[i] ^ (unsigned char)(i < a ? auth[i] : 0);
    return diff == 0;
}

static enum MHD_Result route(const srv_req *r) {
    server *s = r->s;
    pthread_mutex_lock(&s->mu);
    s->http_requests++;
    pthread_mutex_unlock(&s->mu);
    if (s->api_key && needs_key(r->url) &&
        !key_ok(s->api_key, MHD_lookup_connection_value(r->c, MHD_HEADER_KIND, "Authorization")))
        return srv_error(r, 401, "missing or wrong API key (Authorization: Bearer KEY)");
    if (!strncmp(r->url, "/v1/", 4)) return srv_openai(r);
    if (!strncmp(r->url, "/sdapi/v1/", 10)) return srv_a1111(r);
    if (!strncmp(r->url, "/api/", 5) || !strcmp(r->url, "/health") || !strcmp(r->url, "/metrics"))
        return srv_native(r);
    if (!strcmp(r->url, "/") || !strcmp(r->url, "/index.html")) return srv_page(r);
    return srv_error(r, 404, "%s: no such route", r->url);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version,
                                  const char *upload, size_t *upload_size, void **con_cls) {
    server *s = cls;
    conn_state *st = *con_cls;
    srv_req r = {s, c, method, url, NULL, 0};
    if (!st) {
        st = calloc(1, sizeof *st);
        if (!st) return MHD_NO;
        *con_cls = st;
        pthread_mutex_lock(&s->mu); /* counted until on_done, after its response is written */
        s->inflight++;
        pthread_mutex_unlock(&s->mu);
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
        if (cl && strtoull(cl, NULL, 10) > s->max_body) st->too_big = 1;
        return MHD_YES;
    }
    if (*upload_size) {
        size_t n = *upload_size;
        *upload_size = 0;
        if (st->too_big || st->len + n > s->max_body) {
            st->too_big = 1;
            return MHD_YES; /* read and dropped; answered 413 at the end */
        }
        if (st->len + n + 1 > st->cap) {
            size_t cap = (st->len + n + 1) * 2;
            char *grown = realloc(st->body, cap);
            if (!grown) {
                st->too_big = 1;
                return MHD_YES;
            }
            st->body = grown;
            st->cap = cap;
        }
        memcpy(st->body + st->len, upload, n);
        st->len += n;
        st->body[st->len] = 0;
        return MHD_YES;
    }
    if (st->too_big)
        return srv_error(&r, 413, "body: larger than the limit of %zu bytes", s->max_body);
    r.body = st->body ? st->body : "";
    r.body_len = st->len;
    return route(&r);
}

static void on_done(void *cls, struct MHD_Connection *c, void **con_cls,
                    enum MHD_RequestTerminationCode toe) {
    server *s = cls;
    conn_state *st = *con_cls;
    if (!st) return;
    pthread_mutex_lock(&s->mu);
    s->inflight--;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    free(st->body);
    free(st);
    *con_cls = NULL;
}

int srv_http_start(server *s, const char *host, int port, struct MHD_Daemon **d, int *bound,
                   char *msg, size_t n) {
    struct addrinfo hints = {0}, *ai = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    char port_s[16];
    snprintf(port_s, sizeof port_s, "%d", port);
    int gai = getaddrinfo(host, port_s, &hints, &ai);
    if (gai != 0 || !ai) {
        snprintf(msg, n, "--host: cannot resolve '%s': %s", host, gai_strerror(gai));
        return -1;
    }
    /* ITC: needed by MHD_quiesce_daemon at shutdown */
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ITC;
    if (ai->ai_family == AF_INET6) flags |= MHD_USE_IPv6;
    *d = MHD_start_daemon(flags, (uint16_t)port, NULL, NULL, on_request, s, MHD_OPTION_SOCK_ADDR,
                          ai->ai_addr, MHD_OPTION_NOTIFY_COMPLETED, on_done, s,
                          MHD_OPTION_CONNECTION_LIMIT, (unsigned)128,
                          MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)600, MHD_OPTION_END);
    freeaddrinfo(ai);
    if (!*d) {
        snprintf(msg, n, "cannot listen on %s:%d (in use, or not an address of this machine)",
                 host, port);
        return -1;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(*d, MHD_DAEMON_INFO_BIND_PORT);
    *bound = info ? info->port : port;
    return 0;
}

void srv_http_quiesce(struct MHD_Daemon *d) {
    MHD_socket fd = MHD_quiesce_daemon(d);
    if (fd != MHD_INVALID_SOCKET) close(fd);
}

int srv_http_drain(server *s, double timeout_s) {
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    long ns = until.tv_nsec + (long)((timeout_s - (long)timeout_s) * 1e9);
    until.tv_sec += (time_t)timeout_s + ns / 1000000000L;
    until.tv_nsec = ns % 1000000000L;
    pthread_mutex_lock(&s->mu);
    int rc = 0;
    while (s->inflight > 0 && rc == 0) rc = pthread_cond_timedwait(&s->cv, &s->mu, &until);
    int left = s->inflight;
    pthread_mutex_unlock(&s->mu);
    return left > 0 ? -1 : 0;
}
