/* The remote prompt agent (spec 07 §3, "version 2"): sends the raw request with a system prompt
 * to an OpenAI-compatible chat endpoint and returns the rewritten prompt, or the raw prompt
 * unchanged when no usable answer came back in time. Network trouble is never an error of
 * hd_refine: it is reported through the warning callback and ends in the fallback.
 *
 * Retries: up to `attempts` outer attempts; each makes up to `api_tries` requests until one
 * returns a parsable reply, sleeping retry_delay_s (doubled after every failure, at most 30 s)
 * between them. A reply with null or degenerate content (agent/degenerate.h) moves on to the
 * next attempt. A client error (HTTP 4xx other than 408/409/429: bad key, unknown model, ...)
 * cannot heal by retrying and ends the loop at once. Every request is bounded by timeout_s and
 * the whole call by deadline_s. */
#ifndef HD_AGENT_REFINE_H
#define HD_AGENT_REFINE_H

#include "hidream.h"

#define HD_REFINE_DEFAULT_BASE_URL "http://localhost:8000/v1"
#define HD_REFINE_DEFAULT_MODEL "HiDream-ai/Prompt-Refine"

/* One line about a failed request or attempt; final = 1 for the closing fallback warning. */
typedef void (*hd_refine_warn_fn)(void *user, int final, const char *line);

typedef struct hd_refine_opts {
    const char *base_url;      /* ".../v1"; "/chat/completions" is appended */
    const char *model;
    const char *api_key;       /* NULL or "": no Authorization header */
    const char *system_prompt; /* NULL: the built-in one (agent/system_prompt.h) */
    int max_tokens;            /* <= 0: the server's default */
    int attempts;              /* outer attempts, >= 1 */
    int api_tries;             /* requests per attempt, >= 1 */
    double retry_delay_s;      /* first pause between requests, >= 0 */
    double timeout_s;          /* per request, > 0 */
    double deadline_s;         /* the whole call, > 0 */
    hd_refine_warn_fn warn;
    void *warn_user;
} hd_refine_opts;

/* Defaults: base URL and model from $HIDREAM_REFINE_BASE_URL / $HIDREAM_REFINE_MODEL (else the
 * constants above, upstream's), key from $HIDREAM_REFINE_API_KEY, 2048 tokens, 3 attempts of
 * 3 requests, 1 s first pause, 120 s per request, 300 s in all. */
void hd_refine_defaults(hd_refine_opts *o);

typedef struct hd_refine_result {
    char *prompt;    /* the refined prompt, or a copy of the raw one (fallback) */
    char *reasoning; /* what the server returned as reasoning, or NULL */
    int refined;     /* 1: prompt came from the model; 0: fallback */
    int attempts;    /* outer attempts started */
    int requests;    /* HTTP requests sent */
    char why[512];   /* fallback: the last failure */
} hd_refine_result;

/* Refines raw. Returns 0 (refined or fallback: see r->refined), or a negative HD_E* only for
 * bad arguments (empty prompt, out-of-range option) or lack of memory, with e filled. */
int hd_refine(const char *raw, const hd_refine_opts *o, hd_refine_result *r, hd_error *e);
void hd_refine_result_free(hd_refine_result *r);

#endif
