/* `hidream serve`: the native job API (POST /api/jobs, GET /api/jobs/{id}, .../events as
 * server-sent events, .../cancel, .../image), POST /api/recipe (a PNG's recipe), GET /health and
 * GET /metrics (Prometheus text). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/serve.h"
#include "image/image.h"
#include "server/base64.h"

json_t *srv_job_json(server *s, const srv_job *j) {
    json_t *o = json_pack("{s:s, s:s, s:i, s:i, s:i, s:i, s:i, s:f}", "id", j->id, "status",
                          srv_state_name(j->state), "step", j->step, "total", j->total, "index",
                          j->index, "n", j->req.n, "images", j->n_done, "created", j->created);
    if (!o) return NULL;
    json_t *seeds = json_array(), *warn = json_array();
    for (int i = 0; i < j->req.n; i++) json_array_append_new(seeds, json_integer((json_int_t)j->seeds[i]));
    for (int i = 0; i < j->warnings.n; i++) json_array_append_new(warn, json_string(j->warnings.msg[i]));
    json_object_set_new(o, "seeds", seeds);
    json_object_set_new(o, "warnings", warn);
    json_object_set_new(o, "prompt", json_string(j->req.prompt ? j->req.prompt : ""));
    json_object_set_new(o, "steps", json_integer(j->req.p.n_timesteps ? j->req.p.n_timesteps : j->req.p.steps));
    json_object_set_new(o, "cfg", json_real(j->req.p.cfg));
    json_object_set_new(o, "mode", json_string(j->req.p.mode == HD_MODE_DEV ? "dev" : "full"));
    json_object_set_new(o, "refs", json_integer(j->req.n_refs));
    if (j->req.layout) json_object_set_new(o, "layout", json_string(j->req.layout));
    if (j->n_done > 0) {
        json_object_set_new(o, "width", json_integer(j->images[0].w));
        json_object_set_new(o, "height", json_integer(j->images[0].h));
    }
    if (j->started > 0) json_object_set_new(o, "started", json_real(j->started));
    if (j->finished > 0) json_object_set_new(o, "finished", json_real(j->finished));
    if (j->state == JOB_FAILED || j->state == JOB_CANCELLED)
        json_object_set_new(o, "error", json_string(j->error));
    return o;
}

static enum MHD_Result health(const srv_req *r) {
    server *s = r->s;
    pthread_mutex_lock(&s->mu);
    int ready = s->ready, q = s->q_len, busy = s->running != NULL;
    const char *precision = ready ? hd_precision_name(hd_model_precision(s->model)) : "";
    char err[1024];
    snprintf(err, sizeof err, "%s", s->load_error);
    pthread_mutex_unlock(&s->mu);
    if (!ready)
        return srv_json(r, 503, json_pack("{s:s, s:s}", "status", err[0] ? "error" : "loading",
                                          "message", err[0] ? err : "the model is loading"));
    return srv_json(r, 200, json_pack("{s:s, s:s, s:s, s:i, s:b}", "status", "ok", "model",
                                      s->model_name, "precision", precision, "queued", q, "busy",
                                      busy));
}

static enum MHD_Result metrics(const srv_req *r) {
    server *s = r->s;
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f) return MHD_NO;
    pthread_mutex_lock(&s->mu);
    int running = s->running != NULL;
    fprintf(f, "# HELP hidream_model_ready 1 once the model is loaded.\n# TYPE hidream_model_ready gauge\n"
               "hidream_model_ready %d\n", s->ready);
    fprintf(f, "# HELP hidream_queue_depth Jobs waiting to run.\n# TYPE hidream_queue_depth gauge\n"
               "hidream_queue_depth %d\n", s->q_len);
    fprintf(f, "# HELP hidream_jobs Jobs now queued or running.\n# TYPE hidream_jobs gauge\n"
               "hidream_jobs{state=\"queued\"} %d\nhidream_jobs{state=\"running\"} %d\n", s->q_len, running);
    fprintf(f, "# HELP hidream_jobs_finished_total Jobs ended, by final state.\n"
               "# TYPE hidream_jobs_finished_total counter\n");
    for (int st = JOB_DONE; st < JOB_NSTATES; st++)
        fprintf(f, "hidream_jobs_finished_total{state=\"%s\"} %llu\n", srv_state_name((job_state)st),
                (unsigned long long)s->finished_by_state[st]);
    fprintf(f, "# HELP hidream_queue_rejected_total Requests refused with 429 (queue full).\n"
               "# TYPE hidream_queue_rejected_total counter\nhidream_queue_rejected_total %llu\n",
            (unsigned long long)s->rejected_full);
    fprintf(f, "# HELP hidream_http_requests_total HTTP requests answered.\n"
               "# TYPE hidream_http_requests_total counter\nhidream_http_requests_total %llu\n",
            (unsigned long long)s->http_requests);
    fprintf(f, "# HELP hidream_step_seconds Time of one denoising step.\n"
               "# TYPE hidream_step_seconds histogram\n");
    uint64_t cum = 0;
    for (int b = 0; b < HIST_BUCKETS; b++) {
        cum += s->hist[b];
        fprintf(f, "hidream_step_seconds_bucket{le=\"%g\"} %llu\n", srv_hist_bounds[b], (unsigned long long)cum);
    }
    cum += s->hist[HIST_BUCKETS];
    fprintf(f, "hidream_step_seconds_bucket{le=\"+Inf\"} %llu\nhidream_step_seconds_sum %.6f\n"
               "hidream_step_seconds_count %llu\n",
            (unsigned long long)cum, s->hist_sum, (unsigned long long)s->hist_count);
    pthread_mutex_unlock(&s->mu);
    if (fclose(f) != 0) {
        free(text);
        return MHD_NO;
    }
    return srv_bytes(r, 200, "text/plain; version=0.0.4", text, len);
}

static enum MHD_Result create_job(const srv_req *r) {
    server *s = r->s;
    hd_srv_request req;
    hd_error e = {0};
    pthread_mutex_lock(&s->mu);
    int ready = s->ready;
    pthread_mutex_unlock(&s->mu);
    if (!ready) return srv_error(r, 503, "the model is loading");
    if (hd_srv_request_from_json(&req, HD_API_NATIVE, r->body, r->body_len, s->defaults, &s->lim, &e) < 0)
        return srv_parse_error(r, &e);
    srv_job *j;
    char msg[1024];
    int st = srv_submit(s, &req, &j, msg, sizeof msg);
    hd_srv_request_free(&req);
    if (st) return srv_error(r, st, "%s", msg);
    pthread_mutex_lock(&s->mu);
    json_t *o = srv_job_json(s, j);
    pthread_mutex_unlock(&s->mu);
    srv_release(s, j);
    return srv_json(r, 202, o);
}

/* ---- events: progress, preview (JPEG, base64), done / error ---- */

static int job_events(srv_sse *ev, char **out, size_t *len) {
    server *s = ev->s;
    srv_job *j = ev->job;
    if (ev->seen_version != (unsigned)-1 && !srv_sse_wait(ev)) return 0;
    hd_image prev = {0};
    hd_error e = {0};
    pthread_mutex_lock(&s->mu);
    ev->seen_version = j->version;
    int state = j->state, step = j->step, total = j->total, index = j->index;
    int n = j->req.n, pstep = j->preview_step;
    if (j->preview_seq != ev->sent_preview && j->preview.px) {
        hd_image_copy(&prev, &j->preview, &e);
        ev->sent_preview = j->preview_seq;
    }
    json_t *final = state >= JOB_DONE ? srv_job_json(s, j) : NULL;
    pthread_mutex_unlock(&s->mu);
    if (step != ev->sent_step || index != ev->sent_index || state >= JOB_DONE) {
        double frac = total > 0 ? ((double)index + (double)step / total) / n : 0.0;
        srv_sse_append(out, len, "progress",
                       json_pack("{s:s, s:i, s:i, s:i, s:i, s:f}", "status", srv_state_name((job_state)state),
                                 "step", step, "total", total, "index", index, "n", n, "progress",
                                 state == JOB_DONE ? 1.0 : frac));
        ev->sent_step = step;
        ev->sent_index = index;
    }
    if (prev.px) {
        uint8_t *buf;
        size_t blen;
        hd_save_opts so = {80, 0, NULL, 0};
        if (hd_image_encode(&prev, HD_FMT_JPEG, &so, &buf, &blen, &e) == 0) {
            char *b64 = hd_base64_encode(buf, blen);
            if (b64)
                srv_sse_append(out, len, "preview",
                               json_pack("{s:i, s:i, s:s}", "step", pstep, "index", index, "jpeg", b64));
            free(b64);
            free(buf);
        }
        hd_image_free(&prev);
    }
    if (final) {
        srv_sse_append(out, len, state == JOB_DONE ? "done" : "error", final);
        return 1;
    }
    return 0;
}

static enum MHD_Result job_image(const srv_req *r, srv_job *j) {
    server *s = r->s;
    const char *iv = MHD_lookup_connection_value(r->c, MHD_GET_ARGUMENT_KIND, "index");
    const char *fv = MHD_lookup_connection_value(r->c, MHD_GET_ARGUMENT_KIND, "format");
    char *end = NULL;
    long idx = iv ? strtol(iv, &end, 10) : 0;
    hd_image_format fmt = fv ? hd_srv_format_by_name(fv) : j->req.format;
    pthread_mutex_lock(&s->mu);
    int state = j->state, done = j->n_done;
    pthread_mutex_unlock(&s->mu);
    if ((iv && (end == iv || *end)) || idx < 0 || idx >= j->req.n)
        return srv_error(r, 400, "index: must be 0..%d", j->req.n - 1);
    if (fmt == HD_FMT_UNKNOWN) return srv_error(r, 400, "format: must be png, jpeg or webp");
    if (state == JOB_FAILED || state == JOB_CANCELLED) return srv_job_error(r, j);
    if (state != JOB_DONE || idx >= done)
        return srv_error(r, 409, "job %s is %s; the picture is not ready", j->id, srv_state_name((job_state)state));
    uint8_t *buf;
    size_t len;
    if (srv_encode(s, j, (int)idx, fmt, j->req.quality, &buf, &len) < 0)
        return srv_error(r, 500, "could not encode the picture");
    return srv_bytes(r, 200, hd_srv_format_mime(fmt), buf, len);
}

/* /api/jobs/{id}[/events|/cancel|/image] */
static enum MHD_Result job_route(const srv_req *r) {
    server *s = r->s;
    const char *rest = r->url + strlen("/api/jobs/");
    char id[64];
    size_t n = strcspn(rest, "/");
    if (n == 0 || n >= sizeof id) return srv_error(r, 404, "%s: no such route", r->url);
    memcpy(id, rest, n);
    id[n] = 0;
    const char *what = rest[n] ? rest + n + 1 : "";
    srv_job *j = srv_find(s, id);
    if (!j) return srv_error(r, 404, "job %s: not found", id);
    int get = !strcmp(r->method, "GET"), post = !strcmp(r->method, "POST");
    enum MHD_Result rc;
    if (!strcmp(what, "") && get) {
        pthread_mutex_lock(&s->mu);
        json_t *o = srv_job_json(s, j);
        pthread_mutex_unlock(&s->mu);
        rc = srv_json(r, 200, o);
    } else if (!strcmp(what, "events") && get) {
        return srv_sse_start(r, j, job_events, 0); /* keeps the hold */
    } else if (!strcmp(what, "cancel") && post) {
        int was_active = srv_cancel(s, j);
        pthread_mutex_lock(&s->mu);
        json_t *o = srv_job_json(s, j);
        pthread_mutex_unlock(&s->mu);
        json_object_set_new(o, "cancelled", json_boolean(was_active));
        rc = srv_json(r, 200, o);
    } else if (!strcmp(what, "image") && get) {
        rc = job_image(r, j);
    } else {
        rc = srv_error(r, !strcmp(what, "") || !strcmp(what, "events") || !strcmp(what, "cancel") ||
                                  !strcmp(what, "image")
                              ? 405
                              : 404,
                       "%s %s: no such route", r->method, r->url);
    }
    srv_release(s, j);
    return rc;
}

/* POST /api/recipe: a PNG's hidream recipe (hd_recipe_parse) as the fields a job takes, so a
 * picture can be regenerated from its file. */
static enum MHD_Result recipe(const srv_req *r) {
    hd_png_text t = {0};
    hd_recipe rc;
    hd_error e = {0};
    if (hd_png_read_text_buffer(r->body, r->body_len, "picture", &t, &e) < 0 ||
        hd_recipe_parse(&t, "picture", &rc, &e) < 0) {
        hd_png_text_free(&t);
        return srv_error(r, 400, "%s", e.msg);
    }
    hd_png_text_free(&t);
    json_t *o = json_pack("{s:s, s:s, s:I, s:i, s:f, s:f}", "prompt", rc.prompt, "mode",
                          rc.mode == HD_MODE_DEV ? "dev" : "full", "seed", (json_int_t)rc.seed,
                          "steps", rc.steps, "cfg", rc.cfg, "shift", rc.shift);
    if (o && (rc.has & HD_RECIPE_SIZE)) {
        json_object_set_new(o, "width", json_integer(rc.width));
        json_object_set_new(o, "height", json_integer(rc.height));
    }
    if (o && rc.uncond && strcmp(rc.uncond, " "))
        json_object_set_new(o, "negative_prompt", json_string(rc.uncond));
    if (o && rc.layout) json_object_set_new(o, "layout", json_string(rc.layout));
    if (o && (rc.has & HD_RECIPE_REFS)) json_object_set_new(o, "references", json_integer(rc.n_refs));
    hd_recipe_free(&rc);
    return srv_json(r, 200, o);
}

enum MHD_Result srv_native(const srv_req *r) {
    int get = !strcmp(r->method, "GET");
    if (!strcmp(r->url, "/health")) return get ? health(r) : srv_error(r, 405, "use GET");
    if (!strcmp(r->url, "/metrics")) return get ? metrics(r) : srv_error(r, 405, "use GET");
    if (!strcmp(r->url, "/api/jobs"))
        return !strcmp(r->method, "POST") ? create_job(r) : srv_error(r, 405, "use POST");
    if (!strncmp(r->url, "/api/jobs/", 10)) return job_route(r);
    if (!strcmp(r->url, "/api/recipe"))
        return !strcmp(r->method, "POST") ? recipe(r) : srv_error(r, 405, "use POST");
    return srv_error(r, 404, "%s: no such route", r->url);
}
