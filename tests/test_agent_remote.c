/* The remote prompt agent (hd_refine, `hidream refine`, `hidream generate --refine`) against a
 * mock OpenAI-compatible server that this test runs on loopback in a thread: each request gets
 * the next scripted reply (the last one repeats), and the server records what it received. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "agent/refine.h"
#include "agent/system_prompt.h"
#include "image/codec.h"
#include "testutil.h"

/* ---- the mock server -------------------------------------------------------------------- */

typedef struct mock_reply {
    int status;       /* 0: never answer; wait until the client hangs up */
    const char *body; /* sent as is */
} mock_reply;

#define MAX_SCRIPT 8
#define MAX_REQ (1 << 16)

typedef struct mock {
    int fd, port;
    pthread_t thread;
    volatile int stop;
    mock_reply script[MAX_SCRIPT];
    int n_script;
    pthread_mutex_t lock;
    int n_requests;
    char request[MAX_REQ]; /* the last request: head and body */
} mock;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Reads one request (head, then Content-Length bytes of body) into buf. */
static size_t read_request(int c, char *buf, size_t cap) {
    size_t n = 0, want = 0;
    char *body = NULL;
    while (n + 1 < cap) {
        struct pollfd p = {c, POLLIN, 0};
        if (poll(&p, 1, 5000) <= 0) break;
        ssize_t r = read(c, buf + n, cap - 1 - n);
        if (r <= 0) break;
        n += (size_t)r;
        buf[n] = 0;
        if (!body && (body = strstr(buf, "\r\n\r\n"))) {
            body += 4;
            const char *cl = strcasestr(buf, "\r\ncontent-length:");
            want = (size_t)(body - buf) + (cl ? strtoul(cl + 17, NULL, 10) : 0);
        }
        if (body && n >= want) break;
    }
    buf[n] = 0;
    return n;
}

static void serve_one(mock *m, int c) {
    static char req[MAX_REQ];
    read_request(c, req, sizeof req);
    pthread_mutex_lock(&m->lock);
    int k = m->n_requests < m->n_script ? m->n_requests : m->n_script - 1;
    m->n_requests++;
    memcpy(m->request, req, sizeof req);
    mock_reply r = m->script[k];
    pthread_mutex_unlock(&m->lock);
    if (r.status == 0) { /* hang: wait for the client to give up */
        char b[256];
        struct pollfd p = {c, POLLIN, 0};
        double t0 = now_s();
        while (!m->stop && now_s() - t0 < 20 && poll(&p, 1, 50) >= 0)
            if ((p.revents & (POLLIN | POLLHUP)) && read(c, b, sizeof b) <= 0) break;
        return;
    }
    char head[256];
    size_t bl = strlen(r.body);
    int hl = snprintf(head, sizeof head,
                      "HTTP/1.1 %d X\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
                      "Connection: close\r\n\r\n", r.status, bl);
    if (write(c, head, (size_t)hl) != hl || write(c, r.body, bl) != (ssize_t)bl) return;
}

static void *serve(void *arg) {
    mock *m = arg;
    while (!m->stop) {
        struct pollfd p = {m->fd, POLLIN, 0};
        if (poll(&p, 1, 50) <= 0) continue;
        int c = accept(m->fd, NULL, NULL);
        if (c < 0) continue;
        serve_one(m, c);
        close(c);
    }
    return NULL;
}

/* Starts a server with replies given as (status, body) pairs, ended by a 0 status... or by n. */
static void mock_start(mock *m, int n, const mock_reply *script) {
    memset(m, 0, sizeof *m);
    pthread_mutex_init(&m->lock, NULL);
    m->n_script = n;
    memcpy(m->script, script, (size_t)n * sizeof *script);
    m->fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t al = sizeof a;
    if (m->fd < 0 || bind(m->fd, (struct sockaddr *)&a, sizeof a) || listen(m->fd, 16) ||
        getsockname(m->fd, (struct sockaddr *)&a, &al)) {
        perror("mock server");
        exit(2);
    }
    m->port = ntohs(a.sin_port);
    pthread_create(&m->thread, NULL, serve, m);
}

static void mock_stop(mock *m) {
    m->stop = 1;
    pthread_join(m->thread, NULL);
    close(m->fd);
    pthread_mutex_destroy(&m->lock);
}

static int mock_requests(mock *m) {
    pthread_mutex_lock(&m->lock);
    int n = m->n_requests;
    pthread_mutex_unlock(&m->lock);
    return n;
}

/* ---- helpers ------------------------------------------------------------------------------ */

/* A chat-completions reply whose message is the given JSON members. */
#define REPLY(members) "{\"id\":\"x\",\"object\":\"chat.completion\",\"choices\":[{\"index\":0," \
                       "\"message\":{\"role\":\"assistant\"," members "},\"finish_reason\":\"stop\"}]}"

#define GOOD_TEXT "A tabby cat sits on a sunlit wooden windowsill, photographed with a 50mm lens."

typedef struct warnings {
    int n, n_final;
    char last[1024];
} warnings;

static void on_warn(void *user, int final, const char *line) {
    warnings *w = user;
    w->n++;
    w->n_final += final;
    snprintf(w->last, sizeof w->last, "%s", line);
}

static char base_url[64];

/* Fast test options: short pauses and limits. */
static hd_refine_opts opts(mock *m, warnings *w) {
    hd_refine_opts o;
    hd_refine_defaults(&o);
    snprintf(base_url, sizeof base_url, "http://127.0.0.1:%d/v1", m->port);
    o.base_url = base_url;
    o.model = "test-model";
    o.retry_delay_s = 0.01;
    o.timeout_s = 5;
    o.deadline_s = 30;
    o.warn = on_warn;
    o.warn_user = w;
    return o;
}

/* ---- library tests ------------------------------------------------------------------------ */

static void test_normal_answer_is_the_prompt_and_the_request_is_openai_shaped(void) {
    mock m;
    mock_reply s[] = {{200, REPLY("\"content\":\"  " GOOD_TEXT "\\n\"")}};
    mock_start(&m, 1, s);
    warnings w = {0};
    hd_refine_opts o = opts(&m, &w);
    hd_refine_result r;
    hd_error e = {0};
    CHECK(hd_refine("a cat on a window", &o, &r, &e) == 0);
    CHECK(r.refined == 1 && r.attempts == 1 && r.requests == 1 && w.n == 0);
    CHECKF(r.prompt && !strcmp(r.prompt, GOOD_TEXT), "%s", r.prompt);
    CHECK(r.reasoning == NULL);
    CHECKF(!strncmp(m.request, "POST /v1/chat/completions HTTP/1.1\r\n", 36), "%.80s", m.request);
    CHECK(strcasestr(m.request, "\r\ncontent-type: application/json\r\n") != NULL);
    CHECK(strstr(m.request, "\"model\":\"test-model\"") != NULL);
    CHECK(strstr(m.request, "\"role\":\"system\"") != NULL);
    CHECK(strstr(m.request, "{\"role\":\"user\",\"content\":\"a cat on a window\"}") != NULL);
    CHECK(strstr(m.request, "\"max_tokens\":2048") != NULL);
    /* the built-in system prompt goes out (its first words; the JSON escapes nothing there) */
    char head[40];
    snprintf(head, sizeof head, "%.39s", hd_refine_system_prompt());
    CHECK(strstr(m.request, head) != NULL);
    CHECK(strcasestr(m.request, "\r\nauthorization:") == NULL);
    hd_refine_result_free(&r);
    mock_stop(&m);
}

static void test_reasoning_content_is_kept_apart_from_the_prompt(void) {
    mock m;
    mock_reply s[] = {{200, REPLY("\"reasoning_content\":\"The user wants a cat.\",\"content\":\""
                                  GOOD_TEXT "\"")}};
    mock_start(&m, 1, s);
    warnings w = {0};
    hd_refine_opts o = opts(&m, &w);
    hd_refine_result r;
    hd_error e = {0};
    CHECK(hd_refine("a cat", &o, &r, &e) == 0);
    CHECK(r.refined && r.prompt && !strcmp(r.prompt, GOOD_TEXT));
    CHECKF(r.reasoning && !strcmp(r.reasoning, "The user wants a cat."), "%s", r.reasoning);
    hd_refine_result_free(&r);
    mock_stop(&m);
}

static void test_inline_think_block_is_stripped(void) {
    mock m;
    mock_reply s[] = {{200, REPLY("\"content\":\"<think>\\nA cat, so: tabby, window.\\n</think>\\n\\n"
                                  GOOD_TEXT "\"")}};
    mock_start(&m, 1, s);
    warnings w = {0};
    hd_refine_opts o = opts(&m, &w);
    hd_refine_result r;
    hd_error e = {0};
    CHECK(hd_refine("a cat", &o, &r, &e) == 0);
    CHECKF(r.refined && r.prompt && !strcmp(r.prompt, GOOD_TEXT), "%s", r.prompt);
    CHECKF(r.reasoning && !strcmp(r.reasoning, "A cat, so: tabby, window."), "%s", r.reasoning);
    hd_refine_result_free(&r);
    mock_stop(&m);
}

static void test_degenerate_answer_is_retried_and_the_good_one_kept(void) {
    mock m;
    mock_reply s[] = {{200, REPLY("\"content\":\"cat cat cat\"")},
                      {200, REPLY("\"content\":\"" GOOD_TEXT "\"")}};
    mock_start(&m, 2, s);
    warnings w = {0};
    hd_refine_opts o = opts(&m, &w);
    hd_refine_result r;
    hd_error e = {0};
    CHECK(hd_refine("a cat", &o, &r, &e) == 0);
    CHECK(r.refined && r.prompt && !strcmp(r.prompt, GOOD_TEXT));
    CHECK(r.attempts == 2 && r.requests == 2 && mock_requests(&m) == 2);
    CHECK(w.n == 1 && w.n_final == 0 && strstr(w.last, "degenerate"));
    hd_refine_result_free(&r);
    mock_stop(&m);
}

/* Runs hd_refine against a server that always gives `reply` and checks the fallback. */
static void check_fallback(mock_reply reply, int attempts, int tries, const char *why,
                           int want_requests, double max_s) {
    mock m;
    mock_start(&m, 1, &reply);
    warnings w = {0};
    hd_refine_opts o = opts(&m, &w);
    o.attempts = attempts;
    o.api_tries = tries;
    o.timeout_s = 0.3;
    hd_refine_result r;
    hd_error e = {0};
    double t0 = now_s();
    CHECK(hd_refine("ein Kater", &o, &r, &e) == 0);
    double took = now_s() - t0;
    CHECKF(!r.refined && r.prompt && !strcmp(r.prompt, "ein Kater"), "%s", r.prompt);
    CHECKF(r.requests == want_requests && mock_requests(&m) == want_requests, "%d requests",
           r.requests);
    CHECKF(w.n_final == 1 && strstr(w.last, "using it unchanged") && strstr(w.last, why),
           "warning: %s", w.last);
    CHECKF(strstr(r.why, why), "%s", r.why);
    CHECKF(took < max_s, "took %.2f s", took);
    hd_refine_result_free(&r);
    mock_stop(&m);
}

static void test_http_500_falls_back_to_the_raw_prompt_with_a_warning(void) {
    check_fallback((mock_reply){500, "{\"error\":{\"message\":\"boom\"}}"}, 2, 3, "HTTP 500", 6, 10);
}

static void test_timeout_falls_back_to_the_raw_prompt_with_a_warning(void) {
    check_fallback((mock_reply){0, NULL}, 1, 2, "timed out", 2, 5);
}

static void test_garbage_json_falls_back_to_the_raw_prompt_with_a_warning(void) {
    check_fallback((mock_reply){200, "<html>Bad Gateway</html>"}, 2, 2, "not JSON", 4, 10);
}

static void test_reply_without_choices_falls_back_naming_the_field(void) {
    check_fallback((mock_reply){200, "{\"object\":\"chat.completion\"}"}, 1, 1, "choices: missing", 1, 10);
}

static void test_client_error_is_not_retried(void) {
    check_fallback((mock_reply){401, "{\"error\":{\"message\":\"bad key\"}}"}, 3, 3, "HTTP 401", 1, 10);
}

static void test_null_content_moves_to_the_next_attempt(void) {
    check_fallback((mock_reply){200, REPLY("\"content\":null")}, 3, 3, "no content", 3, 10);
}

static void test_unreachable_server_falls_back(void) {
    /* a port that was just free: bind, read the port, close */
    mock m;
    mock_reply s[] = {{200, "{}"}};
    mock_start(&m, 1, s);
    mock_stop(&m);
    warnings w = {0};
    hd_refine_opts o = opts(&m, &w);
    o.attempts = 2;
    o.api_tries = 2;
    hd_refine_result r;
    hd_error e = {0};
    CHECK(hd_refine("a cat", &o, &r, &e) == 0);
    CHECK(!r.refined && !strcmp(r.prompt, "a cat") && r.requests == 4);
    CHECKF(w.n_final == 1 && strstr(w.last, "127.0.0.1"), "%s", w.last);
    hd_refine_result_free(&r);
}

static void test_deadline_bounds_the_whole_call(void) {
    mock m;
    mock_reply s[] = {{0, NULL}};
    mock_start(&m, 1, s);
    warnings w = {0};
    hd_refine_opts o = opts(&m, &w);
    o.attempts = 5;
    o.api_tries = 5;
    o.timeout_s = 10;
    o.deadline_s = 0.5;
    hd_refine_result r;
    hd_error e = {0};
    double t0 = now_s();
    CHECK(hd_refine("a cat", &o, &r, &e) == 0);
    double took = now_s() - t0;
    CHECKF(took >= 0.4 && took < 3, "took %.2f s", took);
    CHECK(!r.refined && r.requests == 1);
    hd_refine_result_free(&r);
    mock_stop(&m);
}

static void test_repeated_requests_pause_with_a_doubling_delay(void) {
    mock m;
    mock_reply s[] = {{503, "busy"}};
    mock_start(&m, 1, s);
    warnings w = {0};
    hd_refine_opts o = opts(&m, &w);
    o.attempts = 1;
    o.api_tries = 3;
    o.retry_delay_s = 0.15; /* pauses 0.15 + 0.3 s */
    hd_refine_result r;
    hd_error e = {0};
    double t0 = now_s();
    CHECK(hd_refine("a cat", &o, &r, &e) == 0 && !r.refined && r.requests == 3);
    double took = now_s() - t0;
    CHECKF(took >= 0.44 && took < 3, "took %.2f s", took);
    hd_refine_result_free(&r);
    mock_stop(&m);
}

static void test_api_key_and_system_prompt_are_sent(void) {
    mock m;
    mock_reply s[] = {{200, REPLY("\"content\":\"" GOOD_TEXT "\"")}};
    mock_start(&m, 1, s);
    warnings w = {0};
    hd_refine_opts o = opts(&m, &w);
    o.api_key = "sk-test-123";
    o.system_prompt = "Rewrite the request.";
    o.max_tokens = 0;
    hd_refine_result r;
    hd_error e = {0};
    CHECK(hd_refine("a cat", &o, &r, &e) == 0 && r.refined);
    CHECK(strcasestr(m.request, "\r\nauthorization: Bearer sk-test-123\r\n") != NULL);
    CHECK(strstr(m.request, "{\"role\":\"system\",\"content\":\"Rewrite the request.\"}") != NULL);
    CHECK(strstr(m.request, "max_tokens") == NULL);
    hd_refine_result_free(&r);
    mock_stop(&m);
}

static void test_bad_arguments_are_errors_not_fallbacks(void) {
    mock m = {.port = 9};
    warnings w = {0};
    hd_refine_opts o = opts(&m, &w);
    hd_refine_result r;
    hd_error e = {0};
    CHECK(hd_refine("", &o, &r, &e) == HD_EINVAL && strstr(e.msg, "empty"));
    o.attempts = 0;
    CHECK(hd_refine("a cat", &o, &r, &e) == HD_EINVAL && strstr(e.msg, "attempts"));
    o.attempts = 1;
    o.base_url = "ftp://example.com";
    CHECK(hd_refine("a cat", &o, &r, &e) == 0 && !r.refined && strstr(r.why, "not an http"));
    hd_refine_result_free(&r);
    CHECK(hd_refine("\xff\xfe", &o, &r, &e) == HD_EFORMAT && strstr(e.msg, "prompt: not valid UTF-8"));
}

/* ---- CLI tests ---------------------------------------------------------------------------- */

static const char *bin(void) {
    const char *b = getenv("HIDREAM_BIN");
    return b ? b : "./hidream";
}

static int run(char *out, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int run(char *out, size_t n, const char *fmt, ...) {
    char cmd[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    return hd_test_run(cmd, out, n);
}

static void test_cli_refine_prints_the_prompt_and_json(void) {
    mock m;
    mock_reply s[] = {{200, REPLY("\"reasoning_content\":\"why\",\"content\":\"" GOOD_TEXT "\"")}};
    mock_start(&m, 1, s);
    char out[8192];
    CHECK(run(out, sizeof out, "'%s' refine -p 'a cat' --api-base http://127.0.0.1:%d/v1", bin(),
              m.port) == 0);
    CHECKF(!strcmp(out, GOOD_TEXT "\n"), "%s", out);
    CHECK(run(out, sizeof out, "'%s' refine -p 'a cat' --json --api-key k1 "
                               "--api-base http://127.0.0.1:%d/v1 --model m1", bin(), m.port) == 0);
    CHECKF(strstr(out, "\"prompt\": \"" GOOD_TEXT "\"") && strstr(out, "\"raw_prompt\": \"a cat\"") &&
               strstr(out, "\"refined\": true") && strstr(out, "\"reasoning\": \"why\"") &&
               strstr(out, "\"attempts\": 1"), "%s", out);
    CHECK(strcasestr(m.request, "authorization: Bearer k1") && strstr(m.request, "\"model\":\"m1\""));
    mock_stop(&m);
}

static void test_cli_refine_env_names_the_server_and_model(void) {
    mock m;
    mock_reply s[] = {{200, REPLY("\"content\":\"" GOOD_TEXT "\"")}};
    mock_start(&m, 1, s);
    char out[8192];
    CHECK(run(out, sizeof out, "HIDREAM_REFINE_BASE_URL=http://127.0.0.1:%d/v1/ "
                               "HIDREAM_REFINE_MODEL=env-model '%s' refine -p 'a cat'", m.port,
              bin()) == 0);
    CHECKF(!strcmp(out, GOOD_TEXT "\n"), "%s", out);
    CHECK(strstr(m.request, "\"model\":\"env-model\"") && !strncmp(m.request, "POST /v1/chat/completions ", 26));
    mock_stop(&m);
}

static void test_cli_refine_fallback_prints_raw_prompt_and_one_warning(void) {
    mock m;
    mock_reply s[] = {{500, "oops"}};
    mock_start(&m, 1, s);
    char dir[256], out[8192], errf[512];
    hd_test_tmpdir(dir, sizeof dir);
    snprintf(errf, sizeof errf, "%s/err", dir);
    CHECK(run(out, sizeof out, "('%s' refine -p 'a cat' --retry-delay 0 --api-base "
                               "http://127.0.0.1:%d/v1 2>'%s')", bin(), m.port, errf) == 0);
    CHECKF(!strcmp(out, "a cat\n"), "%s", out);
    char *err = hd_test_read_file(errf, NULL);
    CHECKF(err && strstr(err, "hidream refine: warning: could not refine the prompt") &&
               strstr(err, "HTTP 500: oops") && strchr(err, '\n') == err + strlen(err) - 1,
           "%s", err);
    free(err);
    CHECK(run(out, sizeof out, "'%s' refine -p 'a cat' --strict --retries 1 --attempts 1 "
                               "--api-base http://127.0.0.1:%d/v1", bin(), m.port) == 1);
    CHECK(run(out, sizeof out, "'%s' refine -p 'a cat' --timeout -1", bin()) == 2 &&
          strstr(out, "--timeout: '-1' is not a number") && strchr(out, '\n') == out + strlen(out) - 1);
    CHECK(run(out, sizeof out, "'%s' refine -p 'a cat' --system-prompt /nonexistent", bin()) == 2 &&
          strstr(out, "--system-prompt: /nonexistent") && strchr(out, '\n') == out + strlen(out) - 1);
    CHECK(run(out, sizeof out, "'%s' refine", bin()) == 2 && strstr(out, "-p/--prompt is required"));
    run(out, sizeof out, "rm -rf '%s'", dir);
    mock_stop(&m);
}

static void test_cli_generate_refine_records_both_prompts(void) {
    mock m;
    mock_reply s[] = {{200, REPLY("\"content\":\"" GOOD_TEXT "\"")}};
    mock_start(&m, 1, s);
    char dir[256], out[8192], png[512], model[1024];
    hd_test_tmpdir(dir, sizeof dir);
    snprintf(png, sizeof png, "%s/r.png", dir);
    hd_test_shared(model, sizeof model, "golden/model-tiny");
    CHECK(run(out, sizeof out, "'%s' generate -m '%s' -p 'a cat' -o '%s' --steps 1 --width 64 "
                               "--height 64 --refine --refine-api-base http://127.0.0.1:%d/v1 "
                               "--refine-model tm", bin(), model, png, m.port) == 0);
    hd_png_text t = {0};
    hd_error e = {0};
    CHECKF(hd_png_read_text(png, &t, &e) == 0, "%s: %s", e.msg, out);
    const char *pr = hd_png_text_get(&t, "hidream:prompt"), *raw = hd_png_text_get(&t, "hidream:raw_prompt");
    const char *how = hd_png_text_get(&t, "hidream:refine");
    CHECKF(pr && !strcmp(pr, GOOD_TEXT), "%s", pr);
    CHECK(raw && !strcmp(raw, "a cat") && how && !strcmp(how, "tm"));
    CHECK(strstr(m.request, "{\"role\":\"user\",\"content\":\"a cat\"}") != NULL);
    hd_png_text_free(&t);
    mock_stop(&m);
    /* --from-png takes the refined prompt as it is (no agent needed) and keeps both prompts */
    char again[600];
    snprintf(again, sizeof again, "%s/again.png", dir);
    CHECKF(run(out, sizeof out, "'%s' generate --from-png '%s' -o '%s'", bin(), png, again) == 0,
           "%s", out);
    CHECK(hd_png_read_text(again, &t, &e) == 0);
    pr = hd_png_text_get(&t, "hidream:prompt");
    raw = hd_png_text_get(&t, "hidream:raw_prompt");
    how = hd_png_text_get(&t, "hidream:refine");
    CHECK(pr && !strcmp(pr, GOOD_TEXT) && raw && !strcmp(raw, "a cat") && how && !strcmp(how, "tm"));
    hd_png_text_free(&t);
    hd_image a = {0}, b = {0};
    CHECK(hd_image_load(png, &a, &e) == 0 && hd_image_load(again, &b, &e) == 0);
    CHECK(a.w == b.w && a.h == b.h && a.px && b.px && !memcmp(a.px, b.px, (size_t)a.w * a.h * 3));
    hd_image_free(&a);
    hd_image_free(&b);
    /* the server is gone now: the picture is still made, from the raw prompt, with a warning */
    CHECK(run(out, sizeof out, "'%s' generate -m '%s' -p 'a dog' -o '%s' --steps 1 --width 64 "
                               "--height 64 --refine --refine-retries 1 --refine-api-base "
                               "http://127.0.0.1:%d/v1", bin(), model, png, m.port) == 0);
    CHECKF(strstr(out, "hidream generate: warning: could not refine the prompt"), "%s", out);
    CHECK(hd_png_read_text(png, &t, &e) == 0);
    pr = hd_png_text_get(&t, "hidream:prompt");
    how = hd_png_text_get(&t, "hidream:refine");
    CHECK(pr && !strcmp(pr, "a dog") && how && !strcmp(how, "fallback"));
    hd_png_text_free(&t);
    run(out, sizeof out, "rm -rf '%s'", dir);
}

int main(void) {
    /* loopback must not go through a proxy from the environment */
    const char *vars[] = {"http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY",
                          "all_proxy", "HIDREAM_REFINE_BASE_URL", "HIDREAM_REFINE_MODEL",
                          "HIDREAM_REFINE_API_KEY"};
    for (size_t i = 0; i < sizeof vars / sizeof *vars; i++) unsetenv(vars[i]);
    RUN_TEST(test_normal_answer_is_the_prompt_and_the_request_is_openai_shaped);
    RUN_TEST(test_reasoning_content_is_kept_apart_from_the_prompt);
    RUN_TEST(test_inline_think_block_is_stripped);
    RUN_TEST(test_degenerate_answer_is_retried_and_the_good_one_kept);
    RUN_TEST(test_http_500_falls_back_to_the_raw_prompt_with_a_warning);
    RUN_TEST(test_timeout_falls_back_to_the_raw_prompt_with_a_warning);
    RUN_TEST(test_garbage_json_falls_back_to_the_raw_prompt_with_a_warning);
    RUN_TEST(test_reply_without_choices_falls_back_naming_the_field);
    RUN_TEST(test_client_error_is_not_retried);
    RUN_TEST(test_null_content_moves_to_the_next_attempt);
    RUN_TEST(test_unreachable_server_falls_back);
    RUN_TEST(test_deadline_bounds_the_whole_call);
    RUN_TEST(test_repeated_requests_pause_with_a_doubling_delay);
    RUN_TEST(test_api_key_and_system_prompt_are_sent);
    RUN_TEST(test_bad_arguments_are_errors_not_fallbacks);
    RUN_TEST(test_cli_refine_prints_the_prompt_and_json);
    RUN_TEST(test_cli_refine_env_names_the_server_and_model);
    RUN_TEST(test_cli_refine_fallback_prints_raw_prompt_and_one_warning);
    RUN_TEST(test_cli_generate_refine_records_both_prompts);
    return hd_test_finish();
}
