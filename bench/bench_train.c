/* bench_train: training samples/s of hidream.c's engine, PyTorch side by side in the same run.
 *
 * For each model size (a ~5 M and a ~20 M parameter Unified Transformer, 64×64 images in 8-px
 * patches = 64 patch rows + 24 text rows), one full training step is timed: packed-batch forward,
 * the objective (velocity-space MSE + λ·LM cross-entropy, docs/TRAINING.md), backward, global-norm
 * clipping and AdamW on every parameter — float32 master weights, as `hidream train` runs it. Then
 * bench/torch_train_baseline.py runs the same model, batch and precision in PyTorch with the same
 * thread count, and the table prints both and the ratio. Repeated runs (--repeat) alternate C and
 * PyTorch so that machine noise hits both alike; medians, min and max are reported.
 *
 *   bench_train [--threads 2] [--batch 16] [--steps 5] [--repeat 3] [--json] [--only 5M|20M]
 *               [--no-torch]
 * --json prints one object per model: model, params, batch, tokens, c_samples_s, torch_samples_s,
 * ratio, c_min/c_max, torch_min/torch_max, blas (the BLAS torch ran on, from the baseline).
 * The baseline runs on HIDREAM_PYTHON (default /usr/bin/python3: Debian's python3-torch, which
 * needs libopenblas0-pthread for an optimized BLAS). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backend/backend.h"
#include "core/error.h"
#include "core/threadpool.h"
#include "model/uit_train.h"
#include "pipeline/sequence.h"
#include "sample/rng.h"

typedef struct bench_model {
    const char *name;
    int dim, layers, heads, kv_heads, head_dim, ffn;
} bench_model;

static const bench_model MODELS[] = {
    {"5M", 256, 6, 4, 2, 64, 768},
    {"20M", 512, 6, 8, 4, 64, 1536},
};

enum { VOCAB = 512, PATCH = 8, SIZE = 64, TEXT = 24 };

typedef struct opts {
    int threads, batch, steps, repeat, json, torch;
    const char *only;
} opts;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static void make_config(hd_config *cfg, const bench_model *bm) {
    memset(cfg, 0, sizeof *cfg);
    hd_text_config *c = &cfg->text;
    c->hidden_size = bm->dim;
    c->intermediate_size = bm->ffn;
    c->num_layers = bm->layers;
    c->num_heads = bm->heads;
    c->num_kv_heads = bm->kv_heads;
    c->head_dim = bm->head_dim;
    c->vocab_size = VOCAB;
    c->rms_norm_eps = 1e-6;
    c->rope_theta = 5e6;
    /* interleaved MRoPE sections summing to head_dim / 2, in the release's proportions */
    int half = bm->head_dim / 2;
    c->mrope_section[1] = half * 10 / 32;
    c->mrope_section[2] = half * 10 / 32;
    c->mrope_section[0] = half - 2 * c->mrope_section[1];
    c->mrope_interleaved = 1;
    hd_gen_config_defaults(&cfg->gen);
    cfg->gen.patch_size = PATCH;
    cfg->gen.noise_scale = 1.0;
    cfg->ids.image_pad = VOCAB - 3;
    cfg->ids.boi = VOCAB - 2;
    cfg->ids.tms = VOCAB - 1;
}

/* The batch: B sequences of TEXT text ids (ending with boi, tms) and an 8×8 patch grid. */
typedef struct bench_batch {
    int n;
    hd_sequence *seq;
    hd_uit_sample *s;
    float *x0, *eps, *z, *pred, *dpred, *logits, *dlogits;
    double *sigma;
    int64_t L, P, lm_rows;
} bench_batch;

static void batch_free(bench_batch *b) {
    for (int i = 0; b->seq && i < b->n; i++) hd_sequence_free(&b->seq[i]);
    free(b->seq);
    free(b->s);
    free(b->x0);
    free(b->eps);
    free(b->z);
    free(b->pred);
    free(b->dpred);
    free(b->logits);
    free(b->dlogits);
    free(b->sigma);
    memset(b, 0, sizeof *b);
}

static int batch_make(bench_batch *b, const hd_config *cfg, int n, hd_error *e) {
    memset(b, 0, sizeof *b);
    b->n = n;
    b->L = (SIZE / PATCH) * (SIZE / PATCH);
    b->P = 3 * PATCH * PATCH;
    b->lm_rows = (int64_t)n * (TEXT - 2);
    size_t xs = (size_t)n * (size_t)(b->L * b->P);
    b->seq = calloc((size_t)n, sizeof *b->seq);
    b->s = calloc((size_t)n, sizeof *b->s);
    b->x0 = malloc(xs * sizeof(float));
    b->eps = malloc(xs * sizeof(float));
    b->z = malloc(xs * sizeof(float));
    b->pred = malloc(xs * sizeof(float));
    b->dpred = malloc(xs * sizeof(float));
    b->logits = malloc((size_t)b->lm_rows * VOCAB * sizeof(float));
    b->dlogits = malloc((size_t)b->lm_rows * VOCAB * sizeof(float));
    b->sigma = malloc((size_t)n * sizeof(double));
    if (!b->seq || !b->s || !b->x0 || !b->eps || !b->z || !b->pred || !b->dpred || !b->logits ||
        !b->dlogits || !b->sigma)
        return hd_fail(e, HD_ENOMEM, "bench: out of memory");
    hd_torch_randn(7, b->x0, xs);
    for (size_t i = 0; i < xs; i++) b->x0[i] = tanhf(b->x0[i]); /* clean patches in (-1, 1) */
    uint64_t r = 12345;
    for (int i = 0; i < n; i++) {
        int32_t ids[TEXT];
        for (int t = 0; t < TEXT - 2; t++) {
            r = r * 6364136223846793005ull + 1442695040888963407ull;
            ids[t] = (int32_t)((r >> 33) % (VOCAB - 3));
        }
        ids[TEXT - 2] = cfg->ids.boi;
        ids[TEXT - 1] = cfg->ids.tms;
        hd_grid g = {1, SIZE / PATCH, SIZE / PATCH};
        HD_TRY(hd_sequence_build(&b->seq[i], ids, TEXT, &cfg->ids, NULL, 0, g, NULL, 0, e));
        hd_uit_seq *q = &b->s[i].seq;
        q->ids = b->seq[i].ids;
        q->n_text = b->seq[i].T;
        q->n_seq = b->seq[i].S;
        q->pos = b->seq[i].pos;
        q->n_causal = b->seq[i].A;
        b->s[i].x = b->z + (size_t)i * (size_t)(b->L * b->P);
    }
    return 0;
}

/* Noise, σ ~ logit-normal(0, 1), z = (1-σ)x0 + σε (noise scale 1 at this size). */
static void batch_noise(bench_batch *b, hd_torch_gen *g) {
    size_t per = (size_t)(b->L * b->P);
    hd_torch_gen_randn(g, b->eps, per * (size_t)b->n);
    for (int i = 0; i < b->n; i++) {
        float u;
        hd_torch_gen_randn(g, &u, 1);
        b->sigma[i] = 1.0 / (1.0 + exp(-(double)u));
        b->s[i].t = 1.0 - b->sigma[i];
        float a = (float)(1.0 - b->sigma[i]), s = (float)b->sigma[i];
        for (size_t k = 0; k < per; k++)
            b->z[i * per + k] = a * b->x0[i * per + k] + s * b->eps[i * per + k];
    }
}

/* Loss and its gradients: mean_b [ mean((x̂-x0)²)/max(σ,0.05)² + 0.1·CE ] (docs/TRAINING.md). */
static double batch_objective(bench_batch *b) {
    size_t per = (size_t)(b->L * b->P);
    double loss = 0;
    for (int i = 0; i < b->n; i++) {
        double w = 1.0 / fmax(b->sigma[i], 0.05);
        w *= w;
        for (size_t k = 0; k < per; k++) {
            size_t j = i * per + k;
            double d = (double)b->pred[j] - b->x0[j];
            loss += w * d * d / ((double)per * b->n);
            b->dpred[j] = (float)(2.0 * w * d / ((double)per * b->n));
        }
    }
    int64_t rows_per = TEXT - 2;
    for (int64_t r = 0; r < b->lm_rows; r++) {
        const float *lg = b->logits + r * VOCAB;
        float *dl = b->dlogits + r * VOCAB;
        int32_t target = b->seq[r / rows_per].ids[r % rows_per + 1];
        double mx = lg[0], sum = 0;
        for (int v = 1; v < VOCAB; v++) mx = fmax(mx, lg[v]);
        for (int v = 0; v < VOCAB; v++) sum += exp(lg[v] - mx);
        double scale = 0.1 / (double)(rows_per * b->n);
        loss += scale * (log(sum) + mx - lg[target]);
        for (int v = 0; v < VOCAB; v++)
            dl[v] = (float)(scale * (exp(lg[v] - mx) / sum - (v == target)));
    }
    return loss;
}

/* Global-norm clipping (at 1) folded into AdamW's grad_scale, then one AdamW step. */
static void optimizer_step(hd_backend *be, hd_uit_param *ps, int np, hd_tensor *m, hd_tensor *v,
                           int step) {
    double ss = 0;
    for (int i = 0; i < np; i++) ss += be->ops->sum_squares(be, &ps[i].grad);
    double norm = sqrt(ss);
    hd_adamw_step a = {1e-4f, 0.9f, 0.999f, 1e-8f, 0.01f, 0, 0, 1.0f};
    a.bc1 = (float)(1.0 - pow(0.9, step));
    a.bc2 = (float)(1.0 - pow(0.999, step));
    a.grad_scale = norm > 1.0 ? (float)(1.0 / norm) : 1.0f;
    for (int i = 0; i < np; i++) {
        a.weight_decay = ps[i].decay ? 0.01f : 0.0f;
        be->ops->adamw(be, ps[i].w, &ps[i].grad, &m[i], &v[i], &a);
    }
}

typedef struct c_result {
    double samples_s, step_ms_min, step_ms_max;
    int64_t params;
    double first_loss, last_loss;
} c_result;

static int run_c(const bench_model *bm, const opts *o, c_result *res, hd_error *e) {
    hd_backend *be = NULL;
    hd_backend_options bo = {0};
    bo.n_threads = o->threads;
    HD_TRY(hd_backend_cpu_create(&be, &bo, e));
    hd_config cfg;
    make_config(&cfg, bm);
    hd_uit_train *tm = NULL;
    bench_batch b;
    memset(&b, 0, sizeof b);
    hd_tensor *m = NULL, *v = NULL;
    int rc = hd_uit_train_create(&tm, be, &cfg, NULL, 1, 0.02f, 1, e);
    if (rc == 0) rc = batch_make(&b, &cfg, o->batch, e);
    hd_uit_param *ps = NULL;
    int np = rc == 0 ? hd_uit_train_params(tm, &ps) : 0;
    if (rc == 0) {
        m = calloc((size_t)np, sizeof *m);
        v = calloc((size_t)np, sizeof *v);
        if (!m || !v) rc = hd_fail(e, HD_ENOMEM, "bench: out of memory");
    }
    res->params = 0;
    for (int i = 0; rc == 0 && i < np; i++) {
        hd_tensor *w = ps[i].w;
        res->params += w->rows * w->cols;
        rc = be->ops->alloc(be, &m[i], HD_F32, w->rows, w->cols, e);
        if (rc == 0) rc = be->ops->alloc(be, &v[i], HD_F32, w->rows, w->cols, e);
        if (rc == 0) {
            be->ops->fill(be, &m[i], 0.0f);
            be->ops->fill(be, &v[i], 0.0f);
        }
    }
    hd_torch_gen g;
    hd_torch_gen_seed(&g, 3);
    int warm = 2, total = warm + o->steps;
    double *t = calloc((size_t)total, sizeof *t);
    if (!t && rc == 0) rc = hd_fail(e, HD_ENOMEM, "bench: out of memory");
    for (int s = 0; rc == 0 && s < total; s++) {
        double t0 = now_s();
        batch_noise(&b, &g);
        rc = hd_uit_train_forward(tm, b.s, b.n, b.pred, b.logits, e);
        if (rc < 0) break;
        double loss = batch_objective(&b);
        rc = hd_uit_train_backward(tm, b.dpred, b.dlogits, e);
        if (rc < 0) break;
        optimizer_step(be, ps, np, m, v, s + 1);
        hd_uit_train_zero_grad(tm);
        rc = hd_backend_status(be, e);
        t[s] = now_s() - t0;
        if (s == 0) res->first_loss = loss;
        res->last_loss = loss;
    }
    if (rc == 0) {
        double *meas = t + warm;
        res->step_ms_min = 1e30;
        res->step_ms_max = 0;
        for (int s = 0; s < o->steps; s++) {
            res->step_ms_min = fmin(res->step_ms_min, meas[s] * 1e3);
            res->step_ms_max = fmax(res->step_ms_max, meas[s] * 1e3);
        }
        res->samples_s = o->batch / median(meas, o->steps);
    }
    free(t);
    for (int i = 0; i < np; i++) {
        if (m) hd_tensor_free(be, &m[i]);
        if (v) hd_tensor_free(be, &v[i]);
    }
    free(m);
    free(v);
    batch_free(&b);
    hd_uit_train_free(tm);
    hd_backend_destroy(be);
    return rc;
}

typedef struct torch_result {
    double samples_s, step_ms_min, step_ms_max;
    char blas[160];
    int ok;
} torch_result;

static const char *json_str(const char *line, const char *key, char *out, size_t cap) {
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\": \"", key);
    const char *p = strstr(line, pat);
    out[0] = 0;
    if (!p) return out;
    p += strlen(pat);
    size_t n = 0;
    while (p[n] && p[n] != '"' && n + 1 < cap) n++;
    memcpy(out, p, n);
    out[n] = 0;
    return out;
}

static double json_num(const char *line, const char *key) {
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\": ", key);
    const char *p = strstr(line, pat);
    return p ? strtod(p + strlen(pat), NULL) : NAN;
}

static void run_torch(const bench_model *bm, const opts *o, torch_result *r) {
    memset(r, 0, sizeof *r);
    const char *src = getenv("HIDREAM_SOURCE"), *py = getenv("HIDREAM_PYTHON");
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "OMP_NUM_THREADS=%d %s '%s/bench/torch_train_baseline.py' --name %s "
             "--dim %d --layers %d --heads %d --kv-heads %d --head-dim %d --ffn %d --vocab %d "
             "--patch %d --size %d --text %d --batch %d --steps %d --threads %d 2>&1",
             o->threads, py ? py : "/usr/bin/python3", src ? src : HIDREAM_SOURCE_DIR, bm->name, bm->dim, bm->layers, bm->heads,
             bm->kv_heads, bm->head_dim, bm->ffn, VOCAB, PATCH, SIZE, TEXT, o->batch, o->steps,
             o->threads);
    FILE *f = popen(cmd, "r");
    if (!f) return;
    char line[4096];
    while (fgets(line, sizeof line, f)) {
        if (!strstr(line, "\"torch_samples_s\"")) continue;
        r->samples_s = json_num(line, "torch_samples_s");
        r->step_ms_min = json_num(line, "torch_step_ms_min");
        r->step_ms_max = json_num(line, "torch_step_ms_max");
        json_str(line, "blas", r->blas, sizeof r->blas);
        r->ok = isfinite(r->samples_s);
    }
    pclose(f);
}

static int parse_args(int argc, char **argv, opts *o) {
    *o = (opts){2, 16, 5, 3, 0, 1, NULL};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int has = i + 1 < argc;
        if (!strcmp(a, "--json")) o->json = 1;
        else if (!strcmp(a, "--no-torch")) o->torch = 0;
        else if (!strcmp(a, "--threads") && has) o->threads = atoi(argv[++i]);
        else if (!strcmp(a, "--batch") && has) o->batch = atoi(argv[++i]);
        else if (!strcmp(a, "--steps") && has) o->steps = atoi(argv[++i]);
        else if (!strcmp(a, "--repeat") && has) o->repeat = atoi(argv[++i]);
        else if (!strcmp(a, "--only") && has) o->only = argv[++i];
        else {
            fprintf(stderr, "bench_train: unknown or incomplete option '%s'\n", a);
            return -1;
        }
    }
    if (o->threads < 1 || o->threads > 256 || o->batch < 1 || o->batch > 4096 || o->steps < 1 ||
        o->steps > 1000 || o->repeat < 1 || o->repeat > 100) {
        fprintf(stderr, "bench_train: --threads 1..256, --batch 1..4096, --steps 1..1000, "
                        "--repeat 1..100\n");
        return -1;
    }
    return 0;
}

static void report(const bench_model *bm, const opts *o, double *c, double *tr, int n_t,
                   const c_result *cr, const torch_result *last_t) {
    double cmin = 1e30, cmax = 0, tmin = 1e30, tmax = 0;
    for (int i = 0; i < o->repeat; i++) cmin = fmin(cmin, c[i]), cmax = fmax(cmax, c[i]);
    for (int i = 0; i < n_t; i++) tmin = fmin(tmin, tr[i]), tmax = fmax(tmax, tr[i]);
    double cm = median(c, o->repeat), tm = n_t ? median(tr, n_t) : NAN;
    int64_t tokens = TEXT + (SIZE / PATCH) * (SIZE / PATCH);
    if (o->json) {
        printf("{\"model\": \"%s\", \"params\": %lld, \"batch\": %d, \"tokens\": %lld, "
               "\"c_samples_s\": %.3f, \"torch_samples_s\": %.3f, \"ratio\": %.3f, "
               "\"c_min\": %.3f, \"c_max\": %.3f, \"torch_min\": %.3f, \"torch_max\": %.3f, "
               "\"threads\": %d, \"repeats\": %d, \"blas\": \"%s\"}\n",
               bm->name, (long long)cr->params, o->batch, (long long)tokens, cm, tm, cm / tm,
               cmin, cmax, n_t ? tmin : NAN, n_t ? tmax : NAN, o->threads, o->repeat,
               n_t ? last_t->blas : "torch did not run");
        return;
    }
    printf("%-5s %9lld %5d %6lld | %8.2f (%6.2f-%6.2f) | ", bm->name, (long long)cr->params,
           o->batch, (long long)tokens, cm, cmin, cmax);
    if (n_t)
        printf("%8.2f (%6.2f-%6.2f) | %5.2fx | %s\n", tm, tmin, tmax, cm / tm, last_t->blas);
    else
        printf("(torch baseline did not run: see its output with --json) |\n");
}

int main(int argc, char **argv) {
    opts o;
    if (parse_args(argc, argv, &o) < 0) return 2;
    if (!o.json)
        printf("training step = forward + objective + backward + clip + AdamW, float32, %d "
               "threads\nmodel    params batch tokens | C samples/s (min-max) | torch "
               "samples/s (min-max) | C/torch | torch BLAS\n",
               o.threads);
    for (size_t k = 0; k < sizeof MODELS / sizeof *MODELS; k++) {
        const bench_model *bm = &MODELS[k];
        if (o.only && strcmp(o.only, bm->name)) continue;
        double c[100], tr[100];
        int n_t = 0;
        c_result cr = {0};
        torch_result t = {0};
        for (int r = 0; r < o.repeat; r++) {
            hd_error e = {0};
            if (run_c(bm, &o, &cr, &e) < 0) {
                fprintf(stderr, "bench_train: %s\n", e.msg);
                return 1;
            }
            c[r] = cr.samples_s;
            if (o.torch) {
                run_torch(bm, &o, &t);
                if (t.ok) tr[n_t++] = t.samples_s;
            }
        }
        report(bm, &o, c, tr, n_t, &cr, &t);
    }
    return 0;
}
