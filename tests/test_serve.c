/* `hidream serve` over loopback with libcurl, on small random models (patch 8 native 64x64
 * text-only; patch 32 with a vision tower for edits): every endpoint answers in its API's shape,
 * the size asked for is the size returned, bad requests get a 4xx one-line JSON error and the
 * server stays up, the API key is enforced (401), a full queue answers 429 with Retry-After, a
 * running job is cancelled within a step, and SIGTERM ends the server cleanly (exit 0) with the
 * waiting requests answered 503. Load: 16 clients x 8 requests on a queue of 2 — none fails, none
 * is lost (every accepted job ends done), the overflow is answered 429; p50/p99 are printed. */
#include <curl/curl.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "hidream.h"
#include "server/base64.h"
#include "testutil.h"

#define KEY "test-key-123"

static char tmp[256], base[64], log_path[400];
static pid_t server_pid;

/* ---- HTTP client ---- */

typedef struct resp {
    long status;
    char *body;
    size_t len;
    char headers[4096];
    size_t hlen;
} resp;

static size_t on_body(char *p, size_t sz, size_t n, void *u) {
    resp *r = u;
    char *g = realloc(r->body, r->len + sz * n + 1);
    if (!g) return 0;
    r->body = g;
    memcpy(r->body + r->len, p, sz * n);
    r->len += sz * n;
    r->body[r->len] = 0;
    return sz * n;
}

static size_t on_header(char *p, size_t sz, size_t n, void *u) {
    resp *r = u;
    size_t k = sz * n;
    if (r->hlen + k < sizeof r->headers) {
        memcpy(r->headers + r->hlen, p, k);
        r->hlen += k;
        r->headers[r->hlen] = 0;
    }
    return k;
}

/* key: NULL = the right key, "" = none, else that key. */
static void http(const char *method, const char *path, const char *ctype, const void *body,
                 size_t len, const char *key, resp *r) {
    memset(r, 0, sizeof *r);
    CURL *c = curl_easy_init();
    char url[512], auth[256];
    snprintf(url, sizeof url, "%s%s", base, path);
    struct curl_slist *h = NULL;
    if (ctype) {
        char ct[256];
        snprintf(ct, sizeof ct, "Content-Type: %s", ctype);
        h = curl_slist_append(h, ct);
    }
    if (!key) key = KEY;
    if (key[0]) {
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", key);
        h = curl_slist_append(h, auth);
    }
    h = curl_slist_append(h, "Expect:");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 300L);
    if (body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    }
    if (curl_easy_perform(c) == CURLE_OK) curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    if (!r->body) r->body = calloc(1, 1);
}

static void post_json(const char *path, const char *json, resp *r) {
    http("POST", path, "application/json", json, strlen(json), NULL, r);
}

static json_t *parse(const resp *r) {
    return json_loadb(r->body, r->len, 0, NULL);
}

/* 4xx/5xx with exactly one line of JSON {"error":{"message":...}} containing needle. */
static int is_error(const resp *r, long status, const char *needle) {
    json_t *j = parse(r);
    const char *msg = j ? json_string_value(json_object_get(json_object_get(j, "error"), "message")) : NULL;
    int ok = r->status == status && msg && (!needle || strstr(msg, needle)) &&
             strchr(r->body, '\n') == r->body + r->len - 1;
    if (!ok) fprintf(stderr, "  got %ld %s", r->status, r->body);
    json_decref(j);
    return ok;
}

static void done(resp *r) {
    free(r->body);
    r->body = NULL;
}

/* Decodes the base64 picture; returns its size in *w, *h (-1 on failure) and its format. */
static hd_image_format b64_picture(const char *b64, int *w, int *h, hd_png_text *text) {
    uint8_t *buf = NULL;
    size_t n = 0;
    *w = *h = -1;
    if (!b64 || hd_base64_decode(b64, strlen(b64), &buf, &n) < 0) return HD_FMT_UNKNOWN;
    hd_image im = {0};
    hd_error e = {0};
    hd_image_format f = hd_image_sniff(buf, n);
    if (hd_image_decode(buf, n, "response", 1 << 24, &im, &e) == 0) {
        *w = im.w;
        *h = im.h;
    }
    if (text && f == HD_FMT_PNG) hd_png_read_text_buffer(buf, n, "response", text, &e);
    hd_image_free(&im);
    free(buf);
    return f;
}

/* ---- the server process ---- */

static int run_cmd(const char *cmd) {
    char out[8192];
    int rc = hd_test_run(cmd, out, sizeof out);
    if (rc) fprintf(stderr, "%s: %s\n", cmd, out);
    return rc;
}

static int start_server(const char *model) {
    snprintf(log_path, sizeof log_path, "%s/server.log", tmp);
    server_pid = fork();
    if (server_pid == 0) {
        FILE *f = freopen(log_path, "w", stderr);
        (void)f;
        execl(getenv("HIDREAM_BIN"), "hidream", "serve", "-m", model, "--port", "0", "--api-key",
              KEY, "--queue", "2", "--max-body", "1", "--max-steps", "1000", "--precision", "exact", (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 600; i++) { /* up to 60 s (sanitizers are slow) */
        usleep(100 * 1000);
        char *log = hd_test_read_file(log_path, NULL);
        const char *at = log ? strstr(log, "listening on http://127.0.0.1:") : NULL;
        if (at) {
            int port = atoi(at + strlen("listening on http://127.0.0.1:"));
            snprintf(base, sizeof base, "http://127.0.0.1:%d", port);
            free(log);
            break;
        }
        free(log);
    }
    if (!base[0]) return -1;
    for (int i = 0; i < 600; i++) {
        resp r;
        http("GET", "/health", NULL, NULL, 0, "", &r);
        long st = r.status;
        done(&r);
        if (st == 200) return 0;
        usleep(100 * 1000);
    }
    return -1;
}

/* ---- tests ---- */

static void test_health_and_models_name_the_loaded_model(void) {
    resp r;
    http("GET", "/health", NULL, NULL, 0, "", &r); /* no key needed */
    json_t *j = parse(&r);
    CHECKF(r.status == 200 && j && !strcmp(json_string_value(json_object_get(j, "status")), "ok") &&
               !strcmp(json_string_value(json_object_get(j, "model")), "vis") &&
               !strcmp(json_string_value(json_object_get(j, "precision")), "exact"),
           "%s", r.body);
    json_decref(j);
    done(&r);
    http("GET", "/v1/models", NULL, NULL, 0, NULL, &r);
    j = parse(&r);
    json_t *d0 = json_array_get(json_object_get(j, "data"), 0);
    CHECKF(r.status == 200 && d0 && !strcmp(json_string_value(json_object_get(d0, "id")), "vis"),
           "%s", r.body);
    json_decref(j);
    done(&r);
}

static void test_openai_generation_returns_the_size_and_format_asked_for(void) {
    const char *fmts[] = {"png", "jpeg", "webp"};
    hd_image_format want[] = {HD_FMT_PNG, HD_FMT_JPEG, HD_FMT_WEBP};
    for (int f = 0; f < 3; f++) {
        char body[256];
        snprintf(body, sizeof body,
                 "{\"prompt\":\"a red circle\",\"size\":\"64x32\",\"seed\":7,\"n\":2,"
                 "\"output_format\":\"%s\",\"steps\":3,\"cfg\":1}",
                 fmts[f]);
        resp r;
        post_json("/v1/images/generations", body, &r);
        json_t *j = parse(&r);
        json_t *data = json_object_get(j, "data");
        CHECKF(r.status == 200 && json_array_size(data) == 2, "%s", r.body);
        for (size_t i = 0; i < json_array_size(data); i++) {
            int w, h;
            hd_png_text t = {0};
            hd_image_format got = b64_picture(
                json_string_value(json_object_get(json_array_get(data, i), "b64_json")), &w, &h, &t);
            CHECKF(got == want[f] && w == 64 && h == 32, "%s: format %d size %dx%d", fmts[f], got, w, h);
            if (got == HD_FMT_PNG) {
                const char *seed = hd_png_text_get(&t, "hidream:seed");
                CHECKF(seed && atoi(seed) == 7 + (int)i, "recipe seed %s", seed ? seed : "(none)");
            }
            hd_png_text_free(&t);
        }
        json_decref(j);
        done(&r);
    }
}

static void test_a_size_the_model_cannot_draw_is_a_400(void) {
    resp r;
    post_json("/v1/images/generations", "{\"prompt\":\"x\",\"size\":\"60x64\"}", &r);
    CHECK(is_error(&r, 400, "multiples of 32"));
    done(&r);
    post_json("/sdapi/v1/txt2img", "{\"prompt\":\"x\",\"width\":64,\"height\":50}", &r);
    CHECK(is_error(&r, 400, "multiples of 32"));
    done(&r);
    post_json("/v1/images/generations", "{\"prompt\":\"x\",\"size\":\"99999x64\"}", &r);
    CHECK(is_error(&r, 400, "size"));
    done(&r);
}

static void test_bad_requests_are_one_line_json_errors_and_the_server_stays_up(void) {
    static const struct {
        const char *method, *path, *body;
        long status;
        const char *needle;
    } cases[] = {
        {"POST", "/v1/images/generations", "{bad json", 400, "not JSON"},
        {"POST", "/v1/images/generations", "[1,2]", 400, "JSON object"},
        {"POST", "/v1/images/generations", "{\"size\":\"64x64\"}", 400, "prompt: missing"},
        {"POST", "/v1/images/generations", "{\"prompt\":5}", 400, "prompt: must be a string"},
        {"POST", "/v1/images/generations", "{\"prompt\":\"x\",\"n\":\"two\"}", 400, "n: must be a number"},
        {"POST", "/v1/images/generations", "{\"prompt\":\"x\",\"n\":99}", 400, "n: 99 is outside"},
        {"POST", "/v1/images/generations", "{\"prompt\":\"x\",\"steps\":100000}", 400, "steps"},
        {"POST", "/v1/images/generations", "{\"prompt\":\"x\",\"output_format\":\"gif\"}", 400, "output_format"},
        {"POST", "/v1/images/generations", "{\"prompt\":\"x\",\"size\":\"big\"}", 400, "size"},
        {"POST", "/v1/images/generations", "{\"prompt\":\"x\",\"layout\":\"/etc/passwd\"}", 400, "layout"},
        {"POST", "/v1/images/generations", "{\"prompt\":\"x\",\"scheduler\":\"karras\"}", 400, "scheduler"},
        {"POST", "/api/jobs", "{\"prompt\":\"x\",\"refs\":[\"!!notbase64\"]}", 400, "refs[0]: not valid base64"},
        {"POST", "/api/jobs", "{\"prompt\":\"x\",\"refs\":[\"aGVsbG8gd29ybGQ=\"]}", 400, "refs[0]"},
        {"POST", "/sdapi/v1/img2img", "{\"prompt\":\"x\"}", 400, "init_images"},
        {"GET", "/v1/images/generations", NULL, 405, "POST"},
        {"GET", "/nowhere", NULL, 404, "no such route"},
        {"GET", "/api/jobs/doesnotexist", NULL, 404, "not found"},
        {"POST", "/sdapi/v1/options", "{\"sd_model_checkpoint\":\"other\"}", 400, "only 'vis'"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        resp r;
        http(cases[i].method, cases[i].path, cases[i].body ? "application/json" : NULL, cases[i].body,
             cases[i].body ? strlen(cases[i].body) : 0, NULL, &r);
        CHECKF(is_error(&r, cases[i].status, cases[i].needle), "case %zu: %s %s", i, cases[i].path,
               cases[i].body ? cases[i].body : "");
        done(&r);
    }
    /* a body over --max-body 1 (MiB) */
    size_t big = (size_t)3 << 20;
    char *huge = malloc(big);
    memset(huge, 'a', big);
    resp r;
    http("POST", "/v1/images/generations", "application/json", huge, big, NULL, &r);
    CHECK(is_error(&r, 413, "larger than the limit"));
    done(&r);
    free(huge);
    http("GET", "/health", NULL, NULL, 0, "", &r);
    CHECK(r.status == 200);
    done(&r);
}

static void test_the_api_key_is_required_where_it_should_be(void) {
    resp r;
    http("GET", "/v1/models", NULL, NULL, 0, "", &r);
    CHECK(is_error(&r, 401, "API key") && strstr(r.headers, "WWW-Authenticate: Bearer"));
    done(&r);
    http("GET", "/metrics", NULL, NULL, 0, "wrong", &r);
    CHECK(is_error(&r, 401, "API key"));
    done(&r);
    http("POST", "/sdapi/v1/txt2img", "application/json", "{}", 2, "test-key-12", &r);
    CHECK(is_error(&r, 401, NULL));
    done(&r);
    http("GET", "/", NULL, NULL, 0, "", &r); /* the page itself is open */
    CHECKF(r.status == 200 && strstr(r.body, "<title>hidream.c</title>") && !strstr(r.body, "http://") &&
               !strstr(r.body, "https://"),
           "%ld", r.status);
    done(&r);
}

static char *create_job(const char *body) {
    resp r;
    post_json("/api/jobs", body, &r);
    json_t *j = parse(&r);
    const char *id = json_string_value(json_object_get(j, "id"));
    char *out = r.status == 202 && id ? strdup(id) : NULL;
    if (!out) fprintf(stderr, "  create_job: %ld %s", r.status, r.body);
    json_decref(j);
    done(&r);
    return out;
}

static char *job_field(const char *id, const char *field) {
    char path[128];
    snprintf(path, sizeof path, "/api/jobs/%s", id);
    resp r;
    http("GET", path, NULL, NULL, 0, NULL, &r);
    json_t *j = parse(&r);
    json_t *v = json_object_get(j, field);
    char *out = json_is_string(v) ? strdup(json_string_value(v)) : json_dumps(v, JSON_ENCODE_ANY);
    json_decref(j);
    done(&r);
    return out;
}

static int wait_status(const char *id, const char *want, double seconds) {
    for (double t = 0; t < seconds; t += 0.02) {
        char *st = job_field(id, "status");
        int ok = st && !strcmp(st, want);
        free(st);
        if (ok) return 1;
        usleep(20 * 1000);
    }
    return 0;
}

static void test_native_job_streams_progress_previews_and_its_picture(void) {
    char *id = create_job("{\"prompt\":\"x\",\"seed\":11,\"steps\":4,\"cfg\":1,\"preview_every\":1,"
                          "\"width\":64,\"height\":64}");
    CHECK(id != NULL);
    if (!id) return;
    char path[128];
    snprintf(path, sizeof path, "/api/jobs/%s/events", id);
    resp r;
    http("GET", path, NULL, NULL, 0, NULL, &r);
    CHECKF(r.status == 200 && strstr(r.headers, "text/event-stream"), "%ld", r.status);
    CHECKF(strstr(r.body, "event: progress\ndata: {") && strstr(r.body, "\"total\":4") &&
               strstr(r.body, "event: preview\ndata: {\"step\":") &&
               strstr(r.body, "event: done\ndata: {") && strstr(r.body, "\"status\":\"done\""),
           "%.400s", r.body);
    done(&r);
    snprintf(path, sizeof path, "/api/jobs/%s/image", id);
    http("GET", path, NULL, NULL, 0, NULL, &r);
    CHECK(r.status == 200 && strstr(r.headers, "image/png") && hd_image_sniff(r.body, r.len) == HD_FMT_PNG);
    /* the same request through OpenAI gives the same picture */
    resp o;
    post_json("/v1/images/generations",
              "{\"prompt\":\"x\",\"seed\":11,\"steps\":4,\"cfg\":1,\"size\":\"64x64\"}", &o);
    json_t *j = parse(&o);
    const char *b64 = json_string_value(json_object_get(json_array_get(json_object_get(j, "data"), 0), "b64_json"));
    uint8_t *buf = NULL;
    size_t n = 0;
    hd_image a = {0}, b = {0};
    hd_error e = {0};
    CHECK(b64 && hd_base64_decode(b64, strlen(b64), &buf, &n) == 0 &&
          hd_image_decode(buf, n, "openai", 1 << 20, &a, &e) == 0 &&
          hd_image_decode(r.body, r.len, "native", 1 << 20, &b, &e) == 0 && a.w == b.w &&
          !memcmp(a.px, b.px, (size_t)a.w * a.h * 3));
    hd_image_free(&a);
    hd_image_free(&b);
    free(buf);
    json_decref(j);
    done(&o);
    done(&r);
    /* the picture's recipe comes back from /api/recipe; a JPEG has none */
    resp rec, png;
    snprintf(path, sizeof path, "/api/jobs/%s/image", id);
    http("GET", path, NULL, NULL, 0, NULL, &png);
    http("POST", "/api/recipe", "image/png", png.body, png.len, NULL, &rec);
    done(&png);
    json_t *rj = parse(&rec);
    CHECKF(rec.status == 200 && rj && !strcmp(json_string_value(json_object_get(rj, "prompt")), "x") &&
               json_integer_value(json_object_get(rj, "seed")) == 11 &&
               json_integer_value(json_object_get(rj, "steps")) == 4 &&
               json_integer_value(json_object_get(rj, "width")) == 64,
           "%s", rec.body);
    json_decref(rj);
    done(&rec);
    http("POST", "/api/recipe", "image/png", "\xff\xd8\xff\xe0", 4, NULL, &rec);
    CHECK(is_error(&rec, 400, "not a PNG"));
    done(&rec);
    snprintf(path, sizeof path, "/api/jobs/%s/image?format=gif", id);
    http("GET", path, NULL, NULL, 0, NULL, &r);
    CHECK(is_error(&r, 400, "format"));
    done(&r);
    free(id);
}

static void test_openai_stream_sends_partial_images_then_completed(void) {
    resp r;
    post_json("/v1/images/generations",
              "{\"prompt\":\"x\",\"seed\":3,\"steps\":6,\"stream\":true,\"partial_images\":2,"
              "\"output_format\":\"jpeg\",\"size\":\"64x64\"}",
              &r);
    int partials = 0;
    for (const char *p = r.body; (p = strstr(p, "event: image_generation.partial_image\n")); p++) partials++;
    CHECKF(r.status == 200 && partials >= 1 && partials <= 2 &&
               strstr(r.body, "event: image_generation.completed\ndata: {\"type\":\"image_generation.completed\""),
           "%d partials: %.300s", partials, r.body);
    done(&r);
}

static const char *LONG_JOB = "{\"prompt\":\"x\",\"seed\":1,\"steps\":1000,\"cfg\":3,\"n\":4,"
                              "\"width\":128,\"height\":128}";

static void test_a_running_job_is_cancelled_within_a_step(void) {
    char *id = create_job(LONG_JOB);
    CHECK(id != NULL);
    if (!id) return;
    CHECK(wait_status(id, "running", 60));
    char path[128];
    snprintf(path, sizeof path, "/api/jobs/%s/cancel", id);
    resp r;
    http("POST", path, NULL, NULL, 0, NULL, &r);
    CHECKF(r.status == 200 && strstr(r.body, "\"cancelled\":true"), "%s", r.body);
    done(&r);
    CHECK(wait_status(id, "cancelled", 10));
    char *err = job_field(id, "error");
    CHECKF(err && strstr(err, "cancelled"), "%s", err ? err : "(none)");
    free(err);
    snprintf(path, sizeof path, "/api/jobs/%s/events", id);
    http("GET", path, NULL, NULL, 0, NULL, &r);
    CHECKF(strstr(r.body, "event: error\n") && strstr(r.body, "\"status\":\"cancelled\""), "%s", r.body);
    done(&r);
    snprintf(path, sizeof path, "/api/jobs/%s/image", id);
    http("GET", path, NULL, NULL, 0, NULL, &r);
    CHECK(r.status >= 400 && strstr(r.body, "cancelled"));
    done(&r);
    free(id);
    /* A1111's interrupt stops the running job too */
    id = create_job(LONG_JOB);
    CHECK(id && wait_status(id, "running", 60));
    http("POST", "/sdapi/v1/interrupt", NULL, NULL, 0, NULL, &r);
    CHECKF(r.status == 200 && strstr(r.body, "\"interrupted\":true"), "%s", r.body);
    done(&r);
    CHECK(id && wait_status(id, "cancelled", 10));
    free(id);
}

static void test_a_full_queue_answers_429_with_retry_after(void) {
    char *a = create_job(LONG_JOB);
    CHECK(a && wait_status(a, "running", 60));
    char *b = create_job(LONG_JOB), *c = create_job(LONG_JOB); /* --queue 2 */
    CHECK(b && c);
    resp r;
    post_json("/api/jobs", LONG_JOB, &r);
    CHECK(is_error(&r, 429, "queue is full") && strstr(r.headers, "Retry-After:"));
    done(&r);
    post_json("/v1/images/generations", "{\"prompt\":\"x\"}", &r);
    CHECK(is_error(&r, 429, NULL));
    done(&r);
    /* A1111 progress sees the running job */
    http("GET", "/sdapi/v1/progress", NULL, NULL, 0, NULL, &r);
    json_t *j = parse(&r);
    json_t *st = json_object_get(j, "state");
    CHECKF(r.status == 200 && json_integer_value(json_object_get(st, "job_count")) == 3 &&
               json_integer_value(json_object_get(st, "sampling_steps")) == 1000,
           "%s", r.body);
    json_decref(j);
    done(&r);
    char *ids[] = {c, b, a};
    for (int i = 0; i < 3; i++) {
        if (!ids[i]) continue;
        char path[128];
        snprintf(path, sizeof path, "/api/jobs/%s/cancel", ids[i]);
        http("POST", path, NULL, NULL, 0, NULL, &r);
        done(&r);
        CHECK(wait_status(ids[i], "cancelled", 10));
        free(ids[i]);
    }
    http("GET", "/metrics", NULL, NULL, 0, NULL, &r);
    CHECKF(strstr(r.body, "hidream_queue_depth 0\n") && strstr(r.body, "hidream_queue_rejected_total 2\n") &&
               strstr(r.body, "hidream_jobs_finished_total{state=\"cancelled\"} 5\n") &&
               strstr(r.body, "hidream_step_seconds_bucket{le=\"+Inf\"}"),
           "%s", r.body);
    done(&r);
}

static void test_a1111_txt2img_and_the_model_endpoints(void) {
    resp r;
    post_json("/sdapi/v1/txt2img",
              "{\"prompt\":\"x\",\"negative_prompt\":\"y\",\"width\":32,\"height\":96,\"seed\":-1,"
              "\"steps\":2,\"cfg_scale\":2,\"batch_size\":1,\"sampler_name\":\"Euler a\","
              "\"scheduler\":\"automatic\"}", /* what the webuiapi client sends */
              &r);
    json_t *j = parse(&r);
    int w, h;
    b64_picture(json_string_value(json_array_get(json_object_get(j, "images"), 0)), &w, &h, NULL);
    json_t *info = json_loads(json_string_value(json_object_get(j, "info")), 0, NULL);
    CHECKF(r.status == 200 && w == 32 && h == 96 && info &&
               json_integer_value(json_object_get(info, "steps")) == 2,
           "%ld %dx%d %.200s", r.status, w, h, r.body);
    json_decref(info);
    json_decref(j);
    done(&r);
    http("GET", "/sdapi/v1/sd-models", NULL, NULL, 0, NULL, &r);
    CHECK(r.status == 200 && strstr(r.body, "\"model_name\":\"vis\""));
    done(&r);
    http("GET", "/sdapi/v1/options", NULL, NULL, 0, NULL, &r);
    CHECK(r.status == 200 && strstr(r.body, "\"sd_model_checkpoint\":\"vis\""));
    done(&r);
    post_json("/sdapi/v1/options", "{\"sd_model_checkpoint\":\"vis\",\"CLIP_stop_at_last_layers\":2}", &r);
    CHECK(r.status == 200);
    done(&r);
}

/* A multipart body with the given text fields and pictures named `file_field`. */
static char *form(const char *fields[][2], int nf, const char *file_field, const uint8_t *png,
                  size_t png_len, int nfiles, size_t *len) {
    size_t cap = 4096 + (png_len + 256) * (size_t)nfiles;
    char *b = malloc(cap);
    size_t n = 0;
    for (int i = 0; i < nf; i++)
        n += (size_t)snprintf(b + n, cap - n,
                              "--XyZ\r\nContent-Disposition: form-data; name=\"%s\"\r\n\r\n%s\r\n",
                              fields[i][0], fields[i][1]);
    for (int i = 0; i < nfiles; i++) {
        n += (size_t)snprintf(b + n, cap - n,
                              "--XyZ\r\nContent-Disposition: form-data; name=\"%s\"; "
                              "filename=\"r%d.png\"\r\nContent-Type: image/png\r\n\r\n",
                              file_field, i);
        memcpy(b + n, png, png_len);
        n += png_len;
        n += (size_t)snprintf(b + n, cap - n, "\r\n");
    }
    n += (size_t)snprintf(b + n, cap - n, "--XyZ--\r\n");
    *len = n;
    return b;
}

static void test_openai_edits_take_one_or_several_pictures(void) {
    hd_image im = {0};
    hd_error e = {0};
    im.w = im.h = 64;
    im.px = calloc(64 * 64, 3);
    for (int i = 0; i < 64 * 64; i++) im.px[i * 3] = (uint8_t)i;
    uint8_t *png;
    size_t png_len;
    CHECK(hd_image_encode(&im, HD_FMT_PNG, NULL, &png, &png_len, &e) == 0);
    hd_image_free(&im);
    const char *fields[][2] = {{"prompt", "make it blue"}, {"size", "64x64"}, {"seed", "5"},
                               {"steps", "2"}};
    size_t len;
    char *body = form(fields, 4, "image", png, png_len, 1, &len);
    resp r;
    http("POST", "/v1/images/edits", "multipart/form-data; boundary=XyZ", body, len, NULL, &r);
    json_t *j = parse(&r);
    int w, h;
    hd_png_text t = {0};
    b64_picture(json_string_value(json_object_get(json_array_get(json_object_get(j, "data"), 0), "b64_json")),
                &w, &h, &t);
    const char *refs = hd_png_text_get(&t, "hidream:references");
    CHECKF(r.status == 200 && w == 64 && h == 64 && refs && !strcmp(refs, "1"), "%ld %.300s", r.status, r.body);
    hd_png_text_free(&t);
    json_decref(j);
    done(&r);
    free(body);
    /* personalization: two pictures as image[] */
    body = form(fields, 4, "image[]", png, png_len, 2, &len);
    http("POST", "/v1/images/edits", "multipart/form-data; boundary=XyZ", body, len, NULL, &r);
    CHECKF(r.status == 200 && strstr(r.body, "\"b64_json\""), "%ld %.300s", r.status, r.body);
    done(&r);
    /* truncated: the closing boundary and half the picture cut off */
    http("POST", "/v1/images/edits", "multipart/form-data; boundary=XyZ", body, len / 2, NULL, &r);
    CHECK(is_error(&r, 400, "multipart"));
    done(&r);
    free(body);
    /* no picture; a mask; not multipart; eleven pictures */
    body = form(fields, 4, "image", png, png_len, 0, &len);
    http("POST", "/v1/images/edits", "multipart/form-data; boundary=XyZ", body, len, NULL, &r);
    CHECK(is_error(&r, 400, "image: at least one"));
    done(&r);
    free(body);
    body = form(fields, 4, "mask", png, png_len, 1, &len);
    http("POST", "/v1/images/edits", "multipart/form-data; boundary=XyZ", body, len, NULL, &r);
    CHECK(is_error(&r, 400, "mask"));
    done(&r);
    free(body);
    http("POST", "/v1/images/edits", "application/json", "{}", 2, NULL, &r);
    CHECK(is_error(&r, 400, "multipart/form-data"));
    done(&r);
    body = form(fields, 4, "image[]", png, png_len, 11, &len);
    http("POST", "/v1/images/edits", "multipart/form-data; boundary=XyZ", body, len, NULL, &r);
    CHECK(is_error(&r, 400, "at most 10"));
    done(&r);
    free(body);
    free(png);
}

/* ---- load: 16 clients x 8 requests on a queue of 2 ---- */

#define CLIENTS 16
#define PER_CLIENT 8

typedef struct load_client {
    int id, ok, overflow, failed;
    double lat[PER_CLIENT];
} load_client;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Every request is retried after a 429 until accepted; any other answer but 200 fails. */
static void *load_run(void *arg) {
    load_client *c = arg;
    for (int k = 0; k < PER_CLIENT; k++) {
        char body[200];
        snprintf(body, sizeof body,
                 "{\"prompt\":\"load %d %d\",\"size\":\"64x64\",\"steps\":2,\"seed\":%d}", c->id, k,
                 c->id * 100 + k);
        for (;;) {
            resp r;
            double t0 = now_s();
            post_json("/v1/images/generations", body, &r);
            double t = now_s() - t0;
            long st = r.status;
            int has_image = strstr(r.body, "\"b64_json\"") != NULL;
            done(&r);
            if (st == 429) {
                c->overflow++;
                usleep(50 * 1000); /* sooner than Retry-After: the test wants overflow */
                continue;
            }
            if (st == 200 && has_image) c->lat[c->ok++] = t;
            else c->failed++;
            break;
        }
    }
    return NULL;
}

static long metric(const char *name) {
    resp r;
    http("GET", "/metrics", NULL, NULL, 0, NULL, &r);
    const char *at = strstr(r.body, name);
    long v = at ? atol(at + strlen(name)) : -1;
    done(&r);
    return v;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void test_sixteen_clients_lose_nothing_and_overflow_is_429(void) {
    const char *done_metric = "hidream_jobs_finished_total{state=\"done\"} ";
    long done0 = metric(done_metric), rejected0 = metric("\nhidream_queue_rejected_total ");
    load_client c[CLIENTS];
    pthread_t t[CLIENTS];
    double t0 = now_s();
    for (int i = 0; i < CLIENTS; i++) {
        memset(&c[i], 0, sizeof c[i]);
        c[i].id = i;
        pthread_create(&t[i], NULL, load_run, &c[i]);
    }
    int ok = 0, overflow = 0, failed = 0;
    double lat[CLIENTS * PER_CLIENT];
    for (int i = 0; i < CLIENTS; i++) {
        pthread_join(t[i], NULL);
        for (int k = 0; k < c[i].ok; k++) lat[ok + k] = c[i].lat[k];
        ok += c[i].ok;
        overflow += c[i].overflow;
        failed += c[i].failed;
    }
    double wall = now_s() - t0;
    long done1 = metric(done_metric), rejected1 = metric("\nhidream_queue_rejected_total ");
    CHECKF(failed == 0 && ok == CLIENTS * PER_CLIENT, "%d ok, %d failed", ok, failed);
    CHECKF(done1 - done0 == ok, "accepted %d, jobs done %ld: lost some", ok, done1 - done0);
    CHECKF(overflow > 0 && rejected1 - rejected0 == overflow, "429s seen %d, counted %ld", overflow,
           rejected1 - rejected0);
    qsort(lat, (size_t)ok, sizeof *lat, cmp_double);
    if (ok > 0)
        printf("load: %d clients x %d requests in %.2f s: %d ok, %d failed, %d answered 429; "
               "latency p50 %.3f s, p99 %.3f s\n",
               CLIENTS, PER_CLIENT, wall, ok, failed, overflow, lat[ok / 2], lat[(ok * 99) / 100]);
}

static void *sync_request(void *arg) {
    resp *r = arg;
    post_json("/v1/images/generations", "{\"prompt\":\"waits in the queue\",\"size\":\"64x64\"}", r);
    return NULL;
}

static void test_sigterm_cancels_the_running_job_answers_the_queue_and_exits_0(void) {
    char *a = create_job(LONG_JOB);
    CHECK(a && wait_status(a, "running", 60));
    resp waiting;
    pthread_t t;
    pthread_create(&t, NULL, sync_request, &waiting);
    /* until the request is queued */
    for (int i = 0; i < 500; i++) {
        resp m;
        http("GET", "/health", NULL, NULL, 0, "", &m);
        int queued = strstr(m.body, "\"queued\":1") != NULL;
        done(&m);
        if (queued) break;
        usleep(20 * 1000);
    }
    struct timespec s0, s1;
    clock_gettime(CLOCK_MONOTONIC, &s0);
    kill(server_pid, SIGTERM);
    int status = -1;
    waitpid(server_pid, &status, 0);
    clock_gettime(CLOCK_MONOTONIC, &s1);
    pthread_join(t, NULL);
    double took = (double)(s1.tv_sec - s0.tv_sec) + (s1.tv_nsec - s0.tv_nsec) * 1e-9;
    CHECKF(WIFEXITED(status) && WEXITSTATUS(status) == 0, "status %d", status);
    CHECK(is_error(&waiting, 503, "shutting down"));
    CHECKF(took < 10, "shutdown took %.1f s", took);
    printf("shutdown with a running job took %.3f s\n", took);
    done(&waiting);
    free(a);
    server_pid = 0;
}

int main(void) {
    if (!getenv("HIDREAM_BIN") || !getenv("HIDREAM_BUILD")) {
        fprintf(stderr, "HIDREAM_BIN and HIDREAM_BUILD must be set (run through ctest)\n");
        return 2;
    }
    hd_test_tmpdir(tmp, sizeof tmp);
    char model[400], cmd[2048];
    snprintf(model, sizeof model, "%s/vis", tmp);
    /* patch 32 with a vision tower (edits), native 64x64: every request is quick */
    snprintf(cmd, sizeof cmd,
             "%s/hd_make_model --preset tiny --seed 11 --out %s --patch 32 --native 64x64 "
             "--noise-scale 1 --hidream '{\"scheduler\":\"unipc\",\"steps\":4,\"guidance\":1,\"shift\":1}'",
             getenv("HIDREAM_BUILD"), model);
    if (run_cmd(cmd)) return 1;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    if (start_server(model) < 0) {
        char *log = hd_test_read_file(log_path, NULL);
        fprintf(stderr, "the server did not start: %s\n", log ? log : "(no log)");
        free(log);
        if (server_pid > 0) kill(server_pid, SIGKILL);
        return 1;
    }
    RUN_TEST(test_health_and_models_name_the_loaded_model);
    RUN_TEST(test_openai_generation_returns_the_size_and_format_asked_for);
    RUN_TEST(test_a_size_the_model_cannot_draw_is_a_400);
    RUN_TEST(test_bad_requests_are_one_line_json_errors_and_the_server_stays_up);
    RUN_TEST(test_the_api_key_is_required_where_it_should_be);
    RUN_TEST(test_native_job_streams_progress_previews_and_its_picture);
    RUN_TEST(test_openai_stream_sends_partial_images_then_completed);
    RUN_TEST(test_a1111_txt2img_and_the_model_endpoints);
    RUN_TEST(test_openai_edits_take_one_or_several_pictures);
    RUN_TEST(test_a_running_job_is_cancelled_within_a_step);
    RUN_TEST(test_a_full_queue_answers_429_with_retry_after);
    RUN_TEST(test_sixteen_clients_lose_nothing_and_overflow_is_429);
    RUN_TEST(test_sigterm_cancels_the_running_job_answers_the_queue_and_exits_0);
    if (server_pid > 0) {
        kill(server_pid, SIGKILL);
        waitpid(server_pid, NULL, 0);
    }
    curl_global_cleanup();
    return hd_test_finish();
}
