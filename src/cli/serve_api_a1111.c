/* `hidream serve`: the AUTOMATIC1111 web-UI API that many clients speak — POST /sdapi/v1/txt2img
 * and /sdapi/v1/img2img (init_images become reference pictures), GET/POST /sdapi/v1/options,
 * GET /sdapi/v1/sd-models, GET /sdapi/v1/progress, POST /sdapi/v1/interrupt. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/serve.h"
#include "image/image.h"
#include "server/base64.h"

/* A1111's "info" is a JSON object serialised into a string. */
static json_t *info_string(const srv_job *j) {
    json_t *seeds = json_array();
    for (int i = 0; i < j->n_done; i++) json_array_append_new(seeds, json_integer((json_int_t)j->seeds[i]));
    json_t *info = json_pack("{s:s, s:s, s:I, s:o, s:i, s:i, s:i, s:f, s:s}", "prompt", j->req.prompt,
                             "negative_prompt", j->req.uncond ? j->req.uncond : "", "seed",
                             (json_int_t)j->seeds[0], "all_seeds", seeds, "width", j->images[0].w,
                             "height", j->images[0].h, "steps",
                             j->req.p.n_timesteps ? j->req.p.n_timesteps : j->req.p.steps, "cfg_scale",
                             j->req.p.cfg, "sd_model_name", "hidream");
    char *text = json_dumps(info, JSON_COMPACT);
    json_decref(info);
    json_t *s = json_string(text ? text : "{}");
    free(text);
    return s;
}

static enum MHD_Result generate(const srv_req *r) {
    server *s = r->s;
    pthread_mutex_lock(&s->mu);
    int ready = s->ready;
    pthread_mutex_unlock(&s->mu);
    if (!ready) return srv_error(r, 503, "the model is loading");
    hd_srv_request req;
    hd_error e = {0};
    if (hd_srv_request_from_json(&req, HD_API_A1111, r->body, r->body_len, s->defaults, &s->lim, &e) < 0)
        return srv_parse_error(r, &e);
    if (strstr(r->url, "img2img") && req.n_refs == 0) {
        hd_srv_request_free(&req);
        return srv_error(r, 400, "init_images: img2img needs at least one picture");
    }
    req.format = HD_FMT_PNG;
    srv_job *j;
    char msg[1024];
    int st = srv_submit(s, &req, &j, msg, sizeof msg);
    hd_srv_request_free(&req);
    if (st) return srv_error(r, st, "%s", msg);
    srv_wait(s, j);
    enum MHD_Result rc;
    if (j->state != JOB_DONE) {
        rc = srv_job_error(r, j);
    } else {
        json_t *images = json_array();
        for (int i = 0; i < j->n_done; i++) {
            char *b64 = srv_encode_b64(s, j, i, HD_FMT_PNG, 0);
            if (b64) json_array_append_new(images, json_string(b64));
            free(b64);
        }
        json_t *params = json_loadb(r->body, r->body_len, 0, NULL);
        rc = srv_json(r, 200, json_pack("{s:o, s:o, s:o}", "images", images, "parameters",
                                        params ? params : json_object(), "info", info_string(j)));
    }
    srv_release(s, j);
    return rc;
}

static enum MHD_Result options(const srv_req *r) {
    server *s = r->s;
    if (!strcmp(r->method, "GET"))
        return srv_json(r, 200, json_pack("{s:s, s:s, s:b}", "sd_model_checkpoint", s->model_name,
                                          "samples_format", "png", "samples_save", 0));
    if (strcmp(r->method, "POST")) return srv_error(r, 405, "use GET or POST");
    json_error_t je;
    json_t *o = json_loadb(r->body, r->body_len, 0, &je);
    if (!o || !json_is_object(o)) {
        json_decref(o);
        return srv_error(r, 400, "body: must be a JSON object");
    }
    json_t *ck = json_object_get(o, "sd_model_checkpoint");
    enum MHD_Result rc;
    if (ck && (!json_is_string(ck) || strcmp(json_string_value(ck), s->model_name)))
        rc = srv_error(r, 400, "sd_model_checkpoint: only '%s' is loaded", s->model_name);
    else
        rc = srv_json(r, 200, json_object()); /* the other options have no meaning here */
    json_decref(o);
    return rc;
}

static enum MHD_Result progress(const srv_req *r) {
    server *s = r->s;
    hd_image prev = {0};
    hd_error e = {0};
    pthread_mutex_lock(&s->mu);
    srv_job *j = s->running;
    int jobs = s->q_len + (j != NULL);
    double frac = 0, eta = 0;
    int step = 0, total = 0, interrupted = 0;
    if (j) {
        step = j->step;
        total = j->total;
        frac = total > 0 ? ((double)j->index + (double)step / total) / j->req.n : 0.0;
        double el = srv_now() - j->started;
        eta = frac > 0 ? el / frac - el : 0;
        interrupted = atomic_load(&j->cancel);
        if (j->preview.px) hd_image_copy(&prev, &j->preview, &e);
    }
    pthread_mutex_unlock(&s->mu);
    json_t *cur = json_null();
    if (prev.px) {
        uint8_t *buf;
        size_t len;
        if (hd_image_encode(&prev, HD_FMT_PNG, NULL, &buf, &len, &e) == 0) {
            char *b64 = hd_base64_encode(buf, len);
            if (b64) cur = json_string(b64);
            free(b64);
            free(buf);
        }
        hd_image_free(&prev);
    }
    return srv_json(r, 200,
                    json_pack("{s:f, s:f, s:{s:b, s:i, s:i, s:i, s:b}, s:o, s:n}", "progress", frac,
                              "eta_relative", eta, "state", "interrupted", interrupted, "job_count",
                              jobs, "sampling_step", step, "sampling_steps", total, "skipped", 0,
                              "current_image", cur, "textinfo"));
}

static enum MHD_Result interrupt(const srv_req *r) {
    server *s = r->s;
    pthread_mutex_lock(&s->mu);
    srv_job *j = s->running;
    if (j) atomic_store(&j->cancel, 1);
    pthread_mutex_unlock(&s->mu);
    return srv_json(r, 200, json_pack("{s:b}", "interrupted", j != NULL));
}

enum MHD_Result srv_a1111(const srv_req *r) {
    server *s = r->s;
    const char *u = r->url + strlen("/sdapi/v1/");
    int get = !strcmp(r->method, "GET"), post = !strcmp(r->method, "POST");
    if (!strcmp(u, "txt2img") || !strcmp(u, "img2img"))
        return post ? generate(r) : srv_error(r, 405, "use POST");
    if (!strcmp(u, "options")) return options(r);
    if (!strcmp(u, "sd-models"))
        return get ? srv_json(r, 200,
                              json_pack("[{s:s, s:s, s:n, s:n, s:s, s:n}]", "title", s->model_name,
                                        "model_name", s->model_name, "hash", "sha256", "filename",
                                        s->model_dir, "config"))
                   : srv_error(r, 405, "use GET");
    if (!strcmp(u, "progress")) return get ? progress(r) : srv_error(r, 405, "use GET");
    if (!strcmp(u, "interrupt")) return post ? interrupt(r) : srv_error(r, 405, "use POST");
    return srv_error(r, 404, "%s: no such route", r->url);
}
