/* `hidream serve`: options, start-up (HTTP first, so /health answers "loading" while the model
 * loads), and a clean shutdown on SIGTERM/SIGINT: the running job is cancelled within a layer,
 * queued jobs are answered 503, open streams end, then the process exits 0. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "cli/embedded_model.h"
#include "cli/precision_cli.h"
#include "cli/serve.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: hidream serve [-m DIR] [--host 127.0.0.1] [--port 8080] [--api-key KEY]\n"
            "                     [--queue N] [options]\n"
            "  -m, --model DIR     model directory (default: the embedded model)\n"
            "  --host ADDR         address to listen on (default 127.0.0.1: this machine only)\n"
            "  --port N            TCP port (default 8080; 0 = any free port, printed at start)\n"
            "  --api-key KEY       require 'Authorization: Bearer KEY' on /v1, /sdapi, /api and\n"
            "                      /metrics (default: $HIDREAM_API_KEY, else no key)\n"
            "  --queue N           jobs waiting at most (default 8); more are answered 429\n"
            "  --max-body MB       request body limit (default 64); larger ones are answered 413\n"
            "  --max-side N        largest width/height asked for (default 4096)\n"
            "  --max-steps N       most steps per picture (default 200)\n"
            "  --threads N         CPU threads (default: all)   --backend cpu|cuda\n"
            "  --precision auto|exact|bf16|int8   matrix products (default auto; see generate\n"
            "                      --help); --exact, --bf16-gemm, --int8 are its shorthands\n"
            "Endpoints: see docs/SERVER.md. The web page is at http://HOST:PORT/\n");
}

static int parse_int(const char *flag, const char *s, long lo, long hi, long *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || end == s || v < lo || v > hi) {
        fprintf(stderr, "hidream serve: %s: '%s' is not an integer in [%ld, %ld]\n", flag, s, lo, hi);
        return -1;
    }
    *out = v;
    return 0;
}

typedef struct serve_opts {
    const char *model, *host, *api_key, *backend;
    long port, queue, max_body_mb, max_side, max_steps, threads;
    precision_cli prec;
} serve_opts;

static int parse_args(int argc, char **argv, serve_opts *o) {
    *o = (serve_opts){NULL, "127.0.0.1", getenv("HIDREAM_API_KEY"), "cpu", 8080, 8, 64, 4096, 200, 0,
                      {HD_PRECISION_AUTO, NULL}};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 1;
        }
        int pr = precision_cli_flag(&o->prec, "hidream serve", argc, argv, &i);
        if (pr < 0) return -1;
        if (pr > 0) continue;
        static const char *valued[] = {"-m", "--model", "--host", "--port", "--api-key", "--queue",
                                       "--max-body", "--max-side", "--max-steps", "--threads",
                                       "--backend"};
        int known = 0;
        for (size_t k = 0; k < sizeof valued / sizeof *valued; k++) known |= !strcmp(a, valued[k]);
        if (!known) {
            fprintf(stderr, "hidream serve: unknown option '%s' (see --help)\n", a);
            return -1;
        }
        if (!v) {
            fprintf(stderr, "hidream serve: %s needs a value\n", a);
            return -1;
        }
        i++;
        int rc = 0;
        if (!strcmp(a, "-m") || !strcmp(a, "--model")) o->model = v;
        else if (!strcmp(a, "--host")) o->host = v;
        else if (!strcmp(a, "--api-key")) o->api_key = v;
        else if (!strcmp(a, "--backend")) o->backend = v;
        else if (!strcmp(a, "--port")) rc = parse_int(a, v, 0, 65535, &o->port);
        else if (!strcmp(a, "--queue")) rc = parse_int(a, v, 1, 100000, &o->queue);
        else if (!strcmp(a, "--max-body")) rc = parse_int(a, v, 1, 4096, &o->max_body_mb);
        else if (!strcmp(a, "--max-side")) rc = parse_int(a, v, 8, 16384, &o->max_side);
        else if (!strcmp(a, "--max-steps")) rc = parse_int(a, v, 1, HD_MAX_TIMESTEPS, &o->max_steps);
        else rc = parse_int(a, v, 1, 1024, &o->threads);
        if (rc < 0) return -1;
    }
    if (o->api_key && !o->api_key[0]) o->api_key = NULL;
    return 0;
}

/* Waits for SIGTERM/SIGINT (blocked in every thread, taken here) or a failed model load. */
static int wait_for_stop(server *s) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    struct timespec tick = {0, 200 * 1000 * 1000};
    for (;;) {
        int sig = sigtimedwait(&set, NULL, &tick);
        if (sig == SIGTERM || sig == SIGINT) return 0;
        pthread_mutex_lock(&s->mu);
        int failed = s->load_error[0] != 0;
        pthread_mutex_unlock(&s->mu);
        if (failed) return 2;
    }
}

int cmd_serve(int argc, char **argv) {
    serve_opts o;
    int prc = parse_args(argc, argv, &o);
    if (prc) return prc > 0 ? 0 : 2;
    char embedded[4096], searched[8192];
    if (!o.model) {
        if (hd_find_embedded_model(embedded, sizeof embedded, searched, sizeof searched) < 0) {
            fprintf(stderr, "hidream serve: no -m/--model given and no embedded model found "
                            "(looked in %s)\n", searched);
            return 2;
        }
        o.model = embedded;
    }
    server *s = malloc(sizeof *s);
    if (!s || srv_init(s, o.model, (int)o.queue) < 0) {
        fprintf(stderr, "hidream serve: out of memory\n");
        free(s);
        return 2;
    }
    s->api_key = o.api_key;
    s->max_body = (size_t)o.max_body_mb << 20;
    s->lim.max_side = (int)o.max_side;
    s->lim.max_steps = (int)o.max_steps;
    s->model_opt = (hd_model_options){.backend = o.backend, .n_threads = (int)o.threads,
                                    .precision = o.prec.value};

    /* signals go to wait_for_stop only; every thread created below inherits the mask */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    struct MHD_Daemon *d = NULL;
    int port = 0;
    char msg[512];
    if (srv_http_start(s, o.host, (int)o.port, &d, &port, msg, sizeof msg) < 0) {
        fprintf(stderr, "hidream serve: %s\n", msg);
        srv_free(s);
        free(s);
        return 2;
    }
    pthread_t worker;
    if (pthread_create(&worker, NULL, srv_worker, s) != 0) {
        fprintf(stderr, "hidream serve: cannot start the worker thread\n");
        MHD_stop_daemon(d);
        srv_free(s);
        free(s);
        return 2;
    }
    fprintf(stderr, "hidream serve: listening on http://%s:%d/ (model %s%s)\n", o.host, port,
            s->model_name, o.api_key ? ", API key required" : "");
    fflush(stderr);
    int rc = wait_for_stop(s);
    /* The order matters: MHD_stop_daemon shuts down every connection's socket at once, so a
     * waiting request woken by srv_stop whose 503 is not written out yet would be dropped.
     * So: no new connections, end every job (queued ones answer 503, the running one is
     * cancelled), wait until each request begun has written its response, then stop. */
    srv_http_quiesce(d);
    srv_stop(s);
    pthread_join(worker, NULL);
    if (srv_http_drain(s, 5.0) < 0)
        fprintf(stderr, "hidream serve: some requests still open after 5 s; closing them\n");
    MHD_stop_daemon(d); /* joins the connection threads */
    srv_free(s);
    free(s);
    if (rc == 0) fprintf(stderr, "hidream serve: stopped\n");
    return rc;
}
