/* libcurl is initialised once per process (curl_global_init is not safe to race) and each POST
 * uses its own easy handle, so concurrent callers do not share state. Signals are off
 * (CURLOPT_NOSIGNAL): the name resolver's timeout must not longjmp through a threaded caller. */
#include "agent/http.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;

static void curl_init(void) { curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT); }

typedef struct sink {
    char *p;
    size_t n, cap;
    int too_big;
} sink;

static size_t on_data(char *data, size_t size, size_t nmemb, void *user) {
    sink *s = user;
    size_t n = size * nmemb;
    if (s->n + n > HD_HTTP_MAX_REPLY) {
        s->too_big = 1;
        return 0; /* aborts the transfer */
    }
    if (s->n + n + 1 > s->cap) {
        size_t cap = s->cap ? s->cap : 4096;
        while (cap < s->n + n + 1) cap *= 2;
        char *p = realloc(s->p, cap);
        if (!p) return 0;
        s->p = p;
        s->cap = cap;
    }
    memcpy(s->p + s->n, data, n);
    s->n += n;
    s->p[s->n] = 0;
    return n;
}

int hd_http_post_json(const char *url, const char *api_key, const char *body, long timeout_ms,
                      hd_http_reply *r, hd_error *e) {
    memset(r, 0, sizeof *r);
    if (strncmp(url, "http://", 7) && strncmp(url, "https://", 8))
        return hd_fail(e, HD_EINVAL, "%s: not an http:// or https:// URL", url);
    pthread_once(&curl_once, curl_init);
    if (curl_init_rc != CURLE_OK)
        return hd_fail(e, HD_EIO, "libcurl: %s", curl_easy_strerror(curl_init_rc));
    CURL *c = curl_easy_init();
    /* "Expect:" drops curl's 100-continue handshake for large bodies: one round trip less */
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    struct curl_slist *h1 = h ? curl_slist_append(h, "Expect:") : NULL;
    if (h && !h1) {
        curl_slist_free_all(h);
        h = NULL;
    }
    char auth[1100];
    if (h && api_key && *api_key) {
        if (strlen(api_key) > 1024 || strpbrk(api_key, "\r\n")) {
            curl_slist_free_all(h);
            curl_easy_cleanup(c);
            return hd_fail(e, HD_EINVAL, "API key: longer than 1024 bytes or holds a line break");
        }
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", api_key);
        struct curl_slist *h2 = curl_slist_append(h, auth);
        if (h2) h = h2;
        else {
            curl_slist_free_all(h);
            h = NULL;
        }
    }
    if (!c || !h) {
        curl_slist_free_all(h);
        curl_easy_cleanup(c);
        return hd_fail(e, HD_ENOMEM, "%s: out of memory", url);
    }
    sink s = {0};
    char err[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &s);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, err);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "hidream.c/" HIDREAM_VERSION);
    CURLcode rc = curl_easy_perform(c);
    int ret = 0;
    if (s.too_big) {
        ret = hd_fail(e, HD_EIO, "%s: reply larger than %u MiB", url, HD_HTTP_MAX_REPLY >> 20);
    } else if (rc != CURLE_OK) {
        ret = hd_fail(e, HD_EIO, "%s: %s", url, err[0] ? err : curl_easy_strerror(rc));
    } else {
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
        r->body = s.p ? s.p : calloc(1, 1);
        r->len = s.n;
        s.p = NULL;
        if (!r->body) ret = hd_fail(e, HD_ENOMEM, "%s: out of memory", url);
    }
    free(s.p);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    return ret;
}

void hd_http_reply_free(hd_http_reply *r) {
    free(r->body);
    memset(r, 0, sizeof *r);
}
