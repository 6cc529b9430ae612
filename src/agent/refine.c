#include "agent/refine.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent/chat_json.h"
#include "agent/degenerate.h"
#include "agent/http.h"
#include "agent/system_prompt.h"
#include "core/error.h"

#define MAX_RETRY_DELAY_S 30.0

void hd_refine_defaults(hd_refine_opts *o) {
    memset(o, 0, sizeof *o);
    const char *v;
    o->base_url = (v = getenv("HIDREAM_REFINE_BASE_URL")) && *v ? v : HD_REFINE_DEFAULT_BASE_URL;
    o->model = (v = getenv("HIDREAM_REFINE_MODEL")) && *v ? v : HD_REFINE_DEFAULT_MODEL;
    o->api_key = getenv("HIDREAM_REFINE_API_KEY");
    o->max_tokens = 2048;
    o->attempts = 3;
    o->api_tries = 3;
    o->retry_delay_s = 1.0;
    o->timeout_s = 120.0;
    o->deadline_s = 300.0;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void sleep_s(double s) {
    if (!(s > 0)) return;
    struct timespec ts = {(time_t)s, (long)((s - floor(s)) * 1e9)};
    while (nanosleep(&ts, &ts) != 0) {
    }
}

/* State of one hd_refine call. */
typedef struct run {
    const hd_refine_opts *o;
    hd_refine_result *r;
    char url[4096];
    char *body;
    double deadline, delay;
    int permanent; /* a failure that retrying cannot fix */
} run;

/* Records a failure as r->why and passes it to the warning callback. */
__attribute__((format(printf, 2, 3))) static void note(run *x, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(x->r->why, sizeof x->r->why, fmt, ap);
    va_end(ap);
    if (x->o->warn) x->o->warn(x->o->warn_user, 0, x->r->why);
}

/* The first line of a body, cut short, for an error message. */
static void snippet(const char *body, size_t len, char *out, size_t n) {
    size_t k = 0;
    for (size_t i = 0; i < len && k + 1 < n && k < 160; i++)
        out[k++] = (body[i] == '\n' || body[i] == '\r' || body[i] == '\t') ? ' ' : body[i];
    out[k] = 0;
}

/* One request; 0 with *reply filled when the server answered 200 with a parsable reply. */
static int request(run *x, int attempt, int tries, hd_chat_reply *reply) {
    double left = x->deadline - now_s();
    if (left <= 0) return -1;
    double t = x->o->timeout_s < left ? x->o->timeout_s : left;
    hd_http_reply h;
    hd_error e = {0};
    x->r->requests++;
    if (hd_http_post_json(x->url, x->o->api_key, x->body, (long)ceil(t * 1000), &h, &e) < 0) {
        note(x, "attempt %d, request %d: %s", attempt, tries, e.msg);
        return -1;
    }
    int rc = -1;
    if (h.status != 200) {
        char s[200];
        snippet(h.body, h.len, s, sizeof s);
        note(x, "attempt %d, request %d: %s: HTTP %ld%s%s", attempt, tries, x->url, h.status,
             s[0] ? ": " : "", s);
        x->permanent = h.status >= 400 && h.status < 500 && h.status != 408 && h.status != 409 &&
                       h.status != 429;
    } else if (hd_chat_reply_parse(h.body, h.len, reply, &e) < 0) {
        note(x, "attempt %d, request %d: %s: %s", attempt, tries, x->url, e.msg);
    } else {
        rc = 0;
    }
    hd_http_reply_free(&h);
    return rc;
}

/* One outer attempt: requests until one parses (or the tries, the deadline or a permanent
 * failure end it). 1: r->prompt holds a usable answer; 0: not this time; < 0: no memory. */
static int attempt(run *x, int a) {
    hd_chat_reply reply = {0};
    int got = 0;
    for (int t = 1; t <= x->o->api_tries && !got; t++) {
        if (t > 1) {
            double left = x->deadline - now_s();
            sleep_s(x->delay < left ? x->delay : left);
            x->delay = fmin(x->delay * 2, MAX_RETRY_DELAY_S);
        }
        if (now_s() >= x->deadline || x->permanent) return 0;
        got = request(x, a, t, &reply) == 0;
    }
    if (!got) return 0;
    int rc = 0;
    if (!reply.content || !reply.content[0]) {
        note(x, "attempt %d: the reply has no content", a);
    } else if ((rc = hd_text_is_degenerate(reply.content, strlen(reply.content))) != 0) {
        if (rc > 0) note(x, "attempt %d: degenerate reply (fewer than %d words, or a %d-word "
                            "phrase repeated more than %d times)", a, HD_DEGENERATE_MIN_WORDS,
                         HD_DEGENERATE_NGRAM, HD_DEGENERATE_MAX_REPEATS);
        rc = rc > 0 ? 0 : rc;
    } else {
        x->r->prompt = reply.content;
        x->r->reasoning = reply.reasoning;
        reply.content = reply.reasoning = NULL;
        rc = 1;
    }
    hd_chat_reply_free(&reply);
    return rc;
}

static int check_opts(const char *raw, const hd_refine_opts *o, hd_error *e) {
    if (!raw || !raw[0]) return hd_fail(e, HD_EINVAL, "refine: the prompt is empty");
    if (!o->base_url || !o->base_url[0]) return hd_fail(e, HD_EINVAL, "refine: no API base URL");
    if (strlen(o->base_url) > 4000) return hd_fail(e, HD_EINVAL, "refine: API base URL too long");
    if (!o->model || !o->model[0]) return hd_fail(e, HD_EINVAL, "refine: no model name");
    if (o->attempts < 1 || o->attempts > 100)
        return hd_fail(e, HD_EINVAL, "refine: attempts = %d is not in [1, 100]", o->attempts);
    if (o->api_tries < 1 || o->api_tries > 100)
        return hd_fail(e, HD_EINVAL, "refine: retries = %d is not in [1, 100]", o->api_tries);
    if (!(o->retry_delay_s >= 0 && o->retry_delay_s <= 3600) || !(o->timeout_s > 0) ||
        !(o->deadline_s > 0) || o->timeout_s > 1e6 || o->deadline_s > 1e6)
        return hd_fail(e, HD_EINVAL, "refine: retry delay, timeout or deadline out of range");
    return 0;
}

int hd_refine(const char *raw, const hd_refine_opts *o, hd_refine_result *r, hd_error *e) {
    memset(r, 0, sizeof *r);
    HD_TRY(check_opts(raw, o, e));
    run x = {.o = o, .r = r, .deadline = now_s() + o->deadline_s, .delay = o->retry_delay_s};
    /* base + /chat/completions, unless the base already names the endpoint */
    size_t bl = strlen(o->base_url);
    while (bl > 0 && o->base_url[bl - 1] == '/') bl--;
    const char *tail = "/chat/completions";
    size_t tl = strlen(tail);
    int has_tail = bl >= tl && !memcmp(o->base_url + bl - tl, tail, tl);
    snprintf(x.url, sizeof x.url, "%.*s%s", (int)bl, o->base_url, has_tail ? "" : tail);
    const char *sys = o->system_prompt ? o->system_prompt : hd_refine_system_prompt();
    HD_TRY(hd_chat_request_json(o->model, sys, raw, o->max_tokens, &x.body, e));
    int rc = 0;
    for (int a = 1; a <= o->attempts && rc == 0; a++) {
        if (now_s() >= x.deadline || x.permanent) break;
        r->attempts = a;
        rc = attempt(&x, a);
    }
    free(x.body);
    if (rc < 0) {
        hd_refine_result_free(r);
        return hd_fail(e, HD_ENOMEM, "refine: out of memory");
    }
    if (rc == 0) {
        if (!r->why[0]) snprintf(r->why, sizeof r->why, "deadline of %g s reached", o->deadline_s);
        if (!(r->prompt = strdup(raw))) return hd_fail(e, HD_ENOMEM, "refine: out of memory");
        if (o->warn) {
            char line[700];
            snprintf(line, sizeof line, "could not refine the prompt (%s); using it unchanged", r->why);
            o->warn(o->warn_user, 1, line);
        }
    }
    r->refined = rc == 1;
    return 0;
}

void hd_refine_result_free(hd_refine_result *r) {
    free(r->prompt);
    free(r->reasoning);
    r->prompt = r->reasoning = NULL;
}
