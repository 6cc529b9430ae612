/* `hidream serve`: the server's shared state. One worker thread owns the model and runs the
 * queued jobs one at a time (the library's concurrency rule); HTTP connection threads
 * (libmicrohttpd, one thread per connection) parse requests, queue jobs and wait on them.
 * Everything below `mu` is guarded by it; `cv` is broadcast on every change of any job, so a
 * waiter re-checks its own job.
 *
 * Files: serve_main.c (options, start, shutdown), serve_jobs.c (queue, worker, encoding),
 * serve_http.c (libmicrohttpd glue, routing, auth, responses, SSE), serve_api_openai.c,
 * serve_api_a1111.c, serve_api_native.c (jobs, health, metrics), serve_page.c (the web page). */
#ifndef HD_CLI_SERVE_H
#define HD_CLI_SERVE_H

#include <jansson.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "hidream.h"
#include "server/request.h"

typedef enum { JOB_QUEUED, JOB_RUNNING, JOB_DONE, JOB_FAILED, JOB_CANCELLED, JOB_NSTATES } job_state;

typedef struct srv_job {
    char id[32];
    hd_srv_request req;
    job_state state;
    int index;                /* picture being made, 0..n-1 */
    int step, total;          /* of the current picture */
    double created, started, finished;
    hd_image *images;         /* [req.n]; the first n_done are made */
    uint64_t *seeds;          /* [req.n] */
    int n_done;
    hd_image preview;         /* latest x0 preview (empty when none) */
    int preview_step, preview_seq;
    hd_warnings warnings;
    char error[1024];
    int error_status;         /* HTTP status a synchronous caller answers with on failure */
    atomic_int cancel;
    int holders;              /* connections holding a pointer (the job is not evicted) */
    unsigned version;         /* bumped on every change */
    struct srv_job *next;     /* all jobs, newest first */
} srv_job;

#define HIST_BUCKETS 10

typedef struct server {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    /* model (set by the worker once loaded) */
    const char *model_dir;
    char model_name[256];
    hd_model_options model_opt;
    hd_model *model;
    int ready;
    char load_error[1024];
    hd_generate_params defaults[2];
    hd_srv_limits lim;
    size_t max_body;
    const char *api_key;
    /* queue and jobs */
    int max_queue;
    srv_job **queue;          /* ring of max_queue */
    int q_head, q_len;
    srv_job *jobs;
    int n_jobs;
    srv_job *running;
    srv_job *last;            /* most recently started (A1111 progress) */
    uint64_t id_salt, id_counter;
    int stopping;
    int inflight;             /* HTTP requests begun and not yet completed (sent or dropped) */
    /* metrics */
    uint64_t finished_by_state[JOB_NSTATES];
    uint64_t rejected_full, http_requests;
    uint64_t hist[HIST_BUCKETS + 1];
    double hist_sum;
    uint64_t hist_count;
} server;

extern const double srv_hist_bounds[HIST_BUCKETS];

/* ---- serve_jobs.c ---- */
int srv_init(server *s, const char *model_dir, int max_queue);
void *srv_worker(void *arg);
/* Queues a parsed request (taken over once the model accepted it). 0, or an HTTP status (400 model refusal, 429
 * queue full, 503 loading or stopping) with msg filled. *out is held: srv_release it. */
int srv_submit(server *s, hd_srv_request *req, srv_job **out, char *msg, size_t n);
srv_job *srv_find(server *s, const char *id); /* held, or NULL */
void srv_release(server *s, srv_job *j);
/* Blocks until the job ends (state done, failed or cancelled). Called without mu held. */
void srv_wait(server *s, srv_job *j);
int srv_cancel(server *s, srv_job *j);
/* Encodes picture i (PNG with its recipe) in fmt. Called with the job finished. */
int srv_encode(server *s, const srv_job *j, int i, hd_image_format fmt, int quality,
               uint8_t **buf, size_t *len);
/* Base64 of picture i (NULL on failure). */
char *srv_encode_b64(server *s, const srv_job *j, int i, hd_image_format fmt, int quality);
void srv_stop(server *s);
void srv_free(server *s);
const char *srv_state_name(job_state st);
double srv_now(void);

/* ---- serve_http.c ---- */
typedef struct srv_conn srv_conn;
typedef struct srv_req {
    server *s;
    struct MHD_Connection *c;
    const char *method, *url;
    const char *body;
    size_t body_len;
} srv_req;

enum MHD_Result srv_json(const srv_req *r, int status, json_t *j);           /* steals j */
enum MHD_Result srv_error(const srv_req *r, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
enum MHD_Result srv_bytes(const srv_req *r, int status, const char *type, void *buf, size_t len);
/* An error from request parsing: HD_ENOMEM → 413, HD_EUNSUPPORTED/others → 400. */
enum MHD_Result srv_parse_error(const srv_req *r, const hd_error *e);
/* A synchronous job's failure (cancelled → 499/503, refused → 400, else 500). */
enum MHD_Result srv_job_error(const srv_req *r, const srv_job *j);

/* Server-sent events: produce() appends events to out (under no lock) and returns 1 when the
 * stream is complete. It may block waiting for the job (srv_sse_wait). */
typedef struct srv_sse srv_sse;
typedef int (*srv_sse_fn)(srv_sse *ev, char **out, size_t *len);
struct srv_sse {
    server *s;
    srv_job *job;
    srv_sse_fn produce;
    unsigned seen_version;
    int sent_step, sent_preview, sent_index, partials;
    int done, timed_out;
    char *buf;
    size_t len, off;
};
enum MHD_Result srv_sse_start(const srv_req *r, srv_job *job, srv_sse_fn produce, int partials);
/* Waits (up to 15 s) for a change of ev->job; returns 1 on a change, 0 on a timeout. */
int srv_sse_wait(srv_sse *ev);
void srv_sse_append(char **out, size_t *len, const char *event, json_t *data); /* steals data */

int srv_http_start(server *s, const char *host, int port, struct MHD_Daemon **d, int *bound,
                   char *msg, size_t n);
/* Stops accepting connections (the listening socket is closed at once). */
void srv_http_quiesce(struct MHD_Daemon *d);
/* Waits until every request begun has been completed, i.e. its response written out (or its
 * connection dropped by the client), at most timeout_s seconds; 0 when all completed. */
int srv_http_drain(server *s, double timeout_s);

/* ---- handlers (return MHD_NO only on a broken connection) ---- */
enum MHD_Result srv_openai(const srv_req *r);  /* /v1/... */
enum MHD_Result srv_a1111(const srv_req *r);   /* /sdapi/v1/... */
enum MHD_Result srv_native(const srv_req *r);  /* /api/..., /health, /metrics */
enum MHD_Result srv_page(const srv_req *r);    /* / */

/* The common field of a picture's JSON (seed, size, warnings, recipe). */
json_t *srv_job_json(server *s, const srv_job *j);

#endif
