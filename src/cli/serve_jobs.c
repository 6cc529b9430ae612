/* `hidream serve`: the job queue and the worker that owns the model (see serve.h). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "cli/serve.h"
#include "image/image.h"
#include "server/base64.h"

const double srv_hist_bounds[HIST_BUCKETS] = {0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};
#define KEEP_JOBS 256 /* finished jobs kept for /api/jobs/{id} */

double srv_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

const char *srv_state_name(job_state st) {
    static const char *names[] = {"queued", "running", "done", "failed", "cancelled"};
    return st < JOB_NSTATES ? names[st] : "?";
}

static uint64_t random_u64(void) {
    uint64_t v = 0;
    if (getrandom(&v, sizeof v, 0) != sizeof v) v = (uint64_t)srv_now() * 2654435761u;
    return v;
}

int srv_init(server *s, const char *model_dir, int max_queue) {
    memset(s, 0, sizeof *s);
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    s->model_dir = model_dir;
    const char *slash = strrchr(model_dir, '/');
    while (slash && slash[1] == 0 && slash > model_dir) { /* "dir/" */
        const char *p = slash - 1;
        while (p > model_dir && *p != '/') p--;
        slash = *p == '/' ? p : NULL;
    }
    snprintf(s->model_name, sizeof s->model_name, "%s", slash ? slash + 1 : model_dir);
    s->model_name[strcspn(s->model_name, "/")] = 0;
    s->max_queue = max_queue;
    s->queue = calloc((size_t)max_queue, sizeof *s->queue);
    s->id_salt = random_u64();
    hd_srv_limits_default(&s->lim);
    s->max_body = (size_t)64 << 20;
    return s->queue ? 0 : -1;
}

static void job_free(srv_job *j) {
    hd_srv_request_free(&j->req);
    for (int i = 0; i < j->n_done; i++) hd_image_free(&j->images[i]);
    free(j->images);
    free(j->seeds);
    hd_image_free(&j->preview);
    free(j);
}

/* Drops the oldest finished jobs nobody holds beyond KEEP_JOBS. Under mu. */
static void evict(server *s) {
    if (s->n_jobs <= KEEP_JOBS) return;
    srv_job **pp = &s->jobs;
    int k = 0;
    while (*pp) {
        srv_job *j = *pp;
        if (++k > KEEP_JOBS && j->holders == 0 && j->state >= JOB_DONE) {
            *pp = j->next;
            job_free(j);
            s->n_jobs--;
        } else {
            pp = &j->next;
        }
    }
}

int srv_submit(server *s, hd_srv_request *req, srv_job **out, char *msg, size_t n) {
    *out = NULL;
    pthread_mutex_lock(&s->mu);
    int status = 0;
    if (s->stopping) status = 503, snprintf(msg, n, "the server is shutting down");
    else if (!s->ready)
        status = 503, snprintf(msg, n, "%s", s->load_error[0] ? s->load_error : "the model is loading");
    else if (s->q_len >= s->max_queue) {
        status = 429, snprintf(msg, n, "the queue is full (%d jobs waiting); retry later", s->q_len);
        s->rejected_full++;
    }
    pthread_mutex_unlock(&s->mu);
    if (status) return status;
    /* what the model cannot do is refused now, before queueing (reads the model only) */
    hd_error e = {0};
    if (hd_model_check_request(s->model, &req->p, &e) < 0) {
        snprintf(msg, n, "%s", e.msg);
        return 400;
    }
    srv_job *j = calloc(1, sizeof *j);
    if (j) {
        j->images = calloc((size_t)req->n, sizeof *j->images);
        j->seeds = calloc((size_t)req->n, sizeof *j->seeds);
    }
    if (!j || !j->images || !j->seeds) {
        if (j) free(j->images), free(j->seeds);
        free(j);
        snprintf(msg, n, "out of memory");
        return 503;
    }
    j->req = *req;
    memset(req, 0, sizeof *req);
    j->req.p.refs = j->req.n_refs ? j->req.refs : NULL; /* the pictures moved with the struct */
    uint64_t seed = j->req.seed_given ? j->req.p.seed : random_u64() >> 32;
    for (int i = 0; i < j->req.n; i++) j->seeds[i] = seed + (uint64_t)i;
    j->created = srv_now();
    j->holders = 1;
    pthread_mutex_lock(&s->mu);
    if (s->q_len >= s->max_queue || s->stopping) { /* filled up meanwhile */
        status = s->stopping ? 503 : 429;
        if (status == 429) s->rejected_full++;
        pthread_mutex_unlock(&s->mu);
        job_free(j);
        snprintf(msg, n, status == 429 ? "the queue is full; retry later" : "the server is shutting down");
        return status;
    }
    snprintf(j->id, sizeof j->id, "%08" PRIx64 "%06" PRIx64, (s->id_salt >> 32) & 0xffffffff,
             ++s->id_counter);
    s->queue[(s->q_head + s->q_len++) % s->max_queue] = j;
    j->next = s->jobs;
    s->jobs = j;
    s->n_jobs++;
    evict(s);
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    *out = j;
    return 0;
}

srv_job *srv_find(server *s, const char *id) {
    pthread_mutex_lock(&s->mu);
    srv_job *j = s->jobs;
    while (j && strcmp(j->id, id)) j = j->next;
    if (j) j->holders++;
    pthread_mutex_unlock(&s->mu);
    return j;
}

void srv_release(server *s, srv_job *j) {
    if (!j) return;
    pthread_mutex_lock(&s->mu);
    j->holders--;
    pthread_mutex_unlock(&s->mu);
}

void srv_wait(server *s, srv_job *j) {
    pthread_mutex_lock(&s->mu);
    while (j->state < JOB_DONE) pthread_cond_wait(&s->cv, &s->mu);
    pthread_mutex_unlock(&s->mu);
}

/* Under mu: a queued job leaves the queue at once; a running one stops within a layer. */
static void cancel_locked(server *s, srv_job *j, const char *why) {
    if (j->state == JOB_QUEUED) {
        for (int i = 0; i < s->q_len; i++) {
            int at = (s->q_head + i) % s->max_queue;
            if (s->queue[at] != j) continue;
            for (int k = i; k + 1 < s->q_len; k++)
                s->queue[(s->q_head + k) % s->max_queue] = s->queue[(s->q_head + k + 1) % s->max_queue];
            s->q_len--;
            break;
        }
        j->state = JOB_CANCELLED;
        j->finished = srv_now();
        snprintf(j->error, sizeof j->error, "%s", why);
        j->error_status = 503;
        s->finished_by_state[JOB_CANCELLED]++;
        j->version++;
    } else if (j->state == JOB_RUNNING) {
        atomic_store(&j->cancel, 1);
    }
    pthread_cond_broadcast(&s->cv);
}

int srv_cancel(server *s, srv_job *j) {
    pthread_mutex_lock(&s->mu);
    int was = j->state;
    if (was < JOB_DONE) cancel_locked(s, j, "cancelled by the client");
    pthread_mutex_unlock(&s->mu);
    return was < JOB_DONE;
}

void srv_stop(server *s) {
    pthread_mutex_lock(&s->mu);
    s->stopping = 1;
    while (s->q_len > 0) cancel_locked(s, s->queue[s->q_head], "the server is shutting down");
    if (s->running) cancel_locked(s, s->running, "the server is shutting down");
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

/* ---- the worker ---- */

typedef struct run_ctx {
    server *s;
    srv_job *j;
    double t_step;
} run_ctx;

static int on_cancel(void *user) {
    return atomic_load(&((run_ctx *)user)->j->cancel);
}

static int on_progress(void *user, int step, int total, const hd_image *preview) {
    run_ctx *c = user;
    server *s = c->s;
    double t = srv_now(), dt = t - c->t_step;
    c->t_step = t;
    hd_image copy = {0};
    hd_error e = {0};
    if (preview) hd_image_copy(&copy, preview, &e);
    pthread_mutex_lock(&s->mu);
    int b = 0;
    while (b < HIST_BUCKETS && dt > srv_hist_bounds[b]) b++;
    s->hist[b]++;
    s->hist_sum += dt;
    s->hist_count++;
    c->j->step = step;
    c->j->total = total;
    if (copy.px) {
        hd_image_free(&c->j->preview);
        c->j->preview = copy;
        c->j->preview_step = step;
        c->j->preview_seq++;
    }
    c->j->version++;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    return 0;
}

/* Runs every picture of j; the model is used by this thread only. */
static void run_job(server *s, srv_job *j) {
    hd_generate_params p = j->req.p;
    run_ctx c = {s, j, srv_now()};
    p.progress = on_progress;
    p.progress_user = &c;
    p.cancel = on_cancel;
    p.cancel_user = &c;
    hd_warnings w = {0};
    p.warnings = &w;
    int rc = 0;
    hd_error e = {0};
    for (int i = 0; i < j->req.n && rc == 0; i++) {
        p.seed = j->seeds[i];
        hd_image im = {0};
        rc = hd_generate(s->model, &p, &im, &e);
        pthread_mutex_lock(&s->mu);
        if (rc == 0) j->images[j->n_done++] = im;
        j->warnings = w;
        if (rc == 0 && i + 1 < j->req.n) j->index = i + 1, j->step = 0;
        j->version++;
        pthread_cond_broadcast(&s->cv);
        pthread_mutex_unlock(&s->mu);
    }
    pthread_mutex_lock(&s->mu);
    j->finished = srv_now();
    if (rc == 0) j->state = JOB_DONE;
    else if (rc == HD_ECANCELLED) {
        j->state = JOB_CANCELLED;
        snprintf(j->error, sizeof j->error, "%s", s->stopping ? "the server is shutting down" : e.msg);
        j->error_status = 503;
    } else {
        j->state = JOB_FAILED;
        snprintf(j->error, sizeof j->error, "%s", e.msg);
        j->error_status = rc == HD_EINVAL || rc == HD_EUNSUPPORTED || rc == HD_EFORMAT ? 400 : 500;
    }
    s->finished_by_state[j->state]++;
    s->running = NULL;
    j->version++;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

void *srv_worker(void *arg) {
    server *s = arg;
    hd_error e = {0};
    hd_model *m = NULL;
    int rc = hd_model_load(&m, s->model_dir, &s->model_opt, &e);
    pthread_mutex_lock(&s->mu);
    if (rc == 0) {
        s->model = m;
        hd_model_generate_defaults(m, &s->defaults[HD_MODE_FULL], HD_MODE_FULL);
        hd_model_generate_defaults(m, &s->defaults[HD_MODE_DEV], HD_MODE_DEV);
        s->ready = 1;
    } else {
        snprintf(s->load_error, sizeof s->load_error, "%s", e.msg);
        fprintf(stderr, "hidream serve: %s\n", e.msg);
    }
    pthread_cond_broadcast(&s->cv);
    for (;;) {
        while (!s->stopping && s->q_len == 0) pthread_cond_wait(&s->cv, &s->mu);
        if (s->stopping) break;
        srv_job *j = s->queue[s->q_head];
        s->q_head = (s->q_head + 1) % s->max_queue;
        s->q_len--;
        j->state = JOB_RUNNING;
        j->started = srv_now();
        j->total = j->req.p.n_timesteps ? j->req.p.n_timesteps : j->req.p.steps;
        j->holders++;
        s->running = s->last = j;
        j->version++;
        pthread_cond_broadcast(&s->cv);
        pthread_mutex_unlock(&s->mu);
        run_job(s, j);
        pthread_mutex_lock(&s->mu);
        j->holders--;
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

/* ---- results ---- */

int srv_encode(server *s, const srv_job *j, int i, hd_image_format fmt, int quality,
               uint8_t **buf, size_t *len) {
    hd_error e = {0};
    hd_recipe r = {0};
    hd_text_kv *kv = NULL;
    int n = 0, rc = 0;
    if (fmt == HD_FMT_PNG) {
        hd_generate_params p = j->req.p;
        p.seed = j->seeds[i];
        rc = hd_recipe_from_params(&r, &p, &j->images[i], s->model, &e);
        if (rc == 0) rc = hd_recipe_to_text(&r, &kv, &n, &e);
    }
    hd_save_opts so = {quality, 0, kv, n};
    if (rc == 0) rc = hd_image_encode(&j->images[i], fmt, &so, buf, len, &e);
    free(kv);
    hd_recipe_free(&r);
    return rc;
}

char *srv_encode_b64(server *s, const srv_job *j, int i, hd_image_format fmt, int quality) {
    uint8_t *buf;
    size_t len;
    if (srv_encode(s, j, i, fmt, quality, &buf, &len) < 0) return NULL;
    char *b64 = hd_base64_encode(buf, len);
    free(buf);
    return b64;
}

void srv_free(server *s) {
    while (s->jobs) {
        srv_job *j = s->jobs;
        s->jobs = j->next;
        job_free(j);
    }
    free(s->queue);
    hd_model_free(s->model);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
}
