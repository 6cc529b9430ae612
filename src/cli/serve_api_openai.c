/* `hidream serve`: the OpenAI Images API — GET /v1/models, POST /v1/images/generations (JSON)
 * and POST /v1/images/edits (multipart: image / image[]), answered synchronously with b64_json
 * or url data, or as server-sent events with stream: true (partial images, then completed). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/serve.h"
#include "image/image.h"
#include "server/base64.h"
#include "server/multipart.h"

static enum MHD_Result models(const srv_req *r) {
    server *s = r->s;
    return srv_json(r, 200,
                    json_pack("{s:s, s:[{s:s, s:s, s:I, s:s}]}", "object", "list", "data", "id",
                              s->model_name, "object", "model", "created", (json_int_t)time(NULL),
                              "owned_by", "hidream.c"));
}

/* The picture's OpenAI data entry: base64, or a URL to the job's image. */
static json_t *data_entry(const srv_req *r, const srv_job *j, int i) {
    if (j->req.want_url) {
        const char *host = MHD_lookup_connection_value(r->c, MHD_HEADER_KIND, "Host");
        char url[512];
        snprintf(url, sizeof url, "http://%s/api/jobs/%s/image?index=%d", host ? host : "localhost",
                 j->id, i);
        return json_pack("{s:s, s:s}", "url", url, "revised_prompt", j->req.prompt);
    }
    char *b64 = srv_encode_b64(r->s, j, i, j->req.format, j->req.quality);
    if (!b64) return NULL;
    json_t *o = json_pack("{s:s, s:s}", "b64_json", b64, "revised_prompt", j->req.prompt);
    free(b64);
    return o;
}

static enum MHD_Result answer(const srv_req *r, srv_job *j) {
    srv_wait(r->s, j);
    if (j->state != JOB_DONE) return srv_job_error(r, j);
    json_t *data = json_array();
    for (int i = 0; i < j->n_done; i++) {
        json_t *d = data_entry(r, j, i);
        if (!d) {
            json_decref(data);
            return srv_error(r, 500, "could not encode the picture");
        }
        json_array_append_new(data, d);
    }
    char size[32];
    snprintf(size, sizeof size, "%dx%d", j->images[0].w, j->images[0].h);
    json_t *o = json_pack("{s:I, s:o, s:s, s:s}", "created", (json_int_t)time(NULL), "data", data,
                          "output_format", hd_srv_format_name(j->req.format), "size", size);
    json_t *warn = json_array();
    for (int i = 0; i < j->warnings.n; i++) json_array_append_new(warn, json_string(j->warnings.msg[i]));
    json_object_set_new(o, "warnings", warn);
    return srv_json(r, 200, o);
}

/* stream: true — image_generation.partial_image events (from the x0 previews), then one
 * image_generation.completed per picture, or an error event. */
static int stream_events(srv_sse *ev, char **out, size_t *len) {
    server *s = ev->s;
    srv_job *j = ev->job;
    if (ev->seen_version != (unsigned)-1 && !srv_sse_wait(ev)) return 0;
    hd_image prev = {0};
    hd_error e = {0};
    pthread_mutex_lock(&s->mu);
    ev->seen_version = j->version;
    int state = j->state;
    if (j->preview_seq != ev->sent_preview && j->preview.px && ev->partials > 0 && state < JOB_DONE) {
        hd_image_copy(&prev, &j->preview, &e);
        ev->sent_preview = j->preview_seq;
    }
    pthread_mutex_unlock(&s->mu);
    const char *fmt = hd_srv_format_name(j->req.format);
    double now = (double)time(NULL);
    if (prev.px) {
        uint8_t *buf;
        size_t blen;
        hd_save_opts so = {j->req.quality, 0, NULL, 0};
        char size[32];
        snprintf(size, sizeof size, "%dx%d", prev.w, prev.h);
        if (hd_image_encode(&prev, j->req.format, &so, &buf, &blen, &e) == 0) {
            char *b64 = hd_base64_encode(buf, blen);
            if (b64)
                srv_sse_append(out, len, "image_generation.partial_image",
                               json_pack("{s:s, s:s, s:i, s:s, s:s, s:f}", "type",
                                         "image_generation.partial_image", "b64_json", b64,
                                         "partial_image_index", ev->sent_step + 1, "size", size,
                                         "output_format", fmt, "created_at", now));
            ev->sent_step++;
            ev->partials--;
            free(b64);
            free(buf);
        }
        hd_image_free(&prev);
    }
    if (state < JOB_DONE) return 0;
    if (state != JOB_DONE) {
        srv_sse_append(out, len, "error",
                       json_pack("{s:s, s:{s:s, s:i}}", "type", "error", "error", "message", j->error,
                                 "code", j->error_status));
        return 1;
    }
    for (int i = 0; i < j->n_done; i++) {
        char *b64 = srv_encode_b64(s, j, i, j->req.format, j->req.quality);
        char size[32];
        snprintf(size, sizeof size, "%dx%d", j->images[i].w, j->images[i].h);
        if (b64)
            srv_sse_append(out, len, "image_generation.completed",
                           json_pack("{s:s, s:s, s:s, s:s, s:f, s:I}", "type",
                                     "image_generation.completed", "b64_json", b64, "size", size,
                                     "output_format", fmt, "created_at", now, "seed",
                                     (json_int_t)j->seeds[i]));
        free(b64);
    }
    return 1;
}

/* Parsed request → queued job → the answer (synchronous or streamed). */
static enum MHD_Result run(const srv_req *r, hd_srv_request *req) {
    if (req->stream && req->partial_images > 0) {
        int steps = req->p.n_timesteps ? req->p.n_timesteps : req->p.steps;
        int every = steps / (req->partial_images + 1);
        req->p.preview_every = every > 0 ? every : 1;
    }
    int stream = req->stream, partials = req->partial_images;
    srv_job *j;
    char msg[1024];
    int st = srv_submit(r->s, req, &j, msg, sizeof msg);
    hd_srv_request_free(req);
    if (st) return srv_error(r, st, "%s", msg);
    if (stream) return srv_sse_start(r, j, stream_events, partials);
    enum MHD_Result rc = answer(r, j);
    srv_release(r->s, j);
    return rc;
}

static int ready(server *s) {
    pthread_mutex_lock(&s->mu);
    int ok = s->ready;
    pthread_mutex_unlock(&s->mu);
    return ok;
}

static enum MHD_Result generations(const srv_req *r) {
    server *s = r->s;
    if (!ready(s)) return srv_error(r, 503, "the model is loading");
    hd_srv_request req;
    hd_error e = {0};
    if (hd_srv_request_from_json(&req, HD_API_OPENAI, r->body, r->body_len, s->defaults, &s->lim, &e) < 0)
        return srv_parse_error(r, &e);
    return run(r, &req);
}

static enum MHD_Result edits(const srv_req *r) {
    server *s = r->s;
    if (!ready(s)) return srv_error(r, 503, "the model is loading");
    char boundary[128];
    hd_error e = {0};
    const char *ct = MHD_lookup_connection_value(r->c, MHD_HEADER_KIND, "Content-Type");
    if (hd_multipart_boundary(ct, boundary, sizeof boundary, &e) < 0) return srv_parse_error(r, &e);
    hd_multipart *form = malloc(sizeof *form);
    if (!form) return MHD_NO;
    hd_srv_request req;
    int rc = hd_multipart_parse(r->body, r->body_len, boundary, form, &e);
    if (rc == 0) rc = hd_srv_request_from_form(&req, form, s->defaults, &s->lim, &e);
    free(form);
    if (rc < 0) return srv_parse_error(r, &e);
    return run(r, &req);
}

enum MHD_Result srv_openai(const srv_req *r) {
    int post = !strcmp(r->method, "POST");
    if (!strcmp(r->url, "/v1/models"))
        return !strcmp(r->method, "GET") ? models(r) : srv_error(r, 405, "use GET");
    if (!strcmp(r->url, "/v1/images/generations"))
        return post ? generations(r) : srv_error(r, 405, "use POST");
    if (!strcmp(r->url, "/v1/images/edits")) return post ? edits(r) : srv_error(r, 405, "use POST");
    return srv_error(r, 404, "%s: no such route", r->url);
}
