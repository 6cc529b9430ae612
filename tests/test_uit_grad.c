/* Training forward/backward of the Unified Transformer (src/model/uit_train.c):
 *  - loss and every parameter gradient of the training objective on the tiny golden model against
 *    a float64 PyTorch autograd reference written from the spec (tests/ref/uit_grad_ref.py, its
 *    output committed as tests/data/uit_grad_ref.safetensors);
 *  - the whole model's gradients against central finite differences of an independent float64
 *    forward (written here from spec 03) on a small random config (torch-independent);
 *  - the trainable (float32) model's inference forward and its packed training forward against
 *    the bf16-bound inference model on the same weights. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend/backend.h"
#include "io/config.h"
#include "io/safetensors.h"
#include "model/rope.h"
#include "model/timestep.h"
#include "model/uit.h"
#include "model/uit_train.h"
#include "testutil.h"

/* The objective's constants, as in tests/ref/uit_grad_ref.py. */
#define NOISE_SCALE 8.0
#define SIGMA_MIN 0.05
#define LAMBDA_LM 0.5

static hd_backend *make_backend(void) {
    hd_backend *be = NULL;
    hd_error e = {0};
    hd_backend_options opt = {0};
    opt.n_threads = 2;
    if (hd_backend_create(&be, "cpu", &opt, &e) < 0) fprintf(stderr, "backend: %s\n", e.msg);
    return be;
}

/* ---- the objective (the brief's definition), evaluated on the host in double --------------- */

typedef struct obj_sample {
    int64_t L;          /* target rows */
    int64_t A;          /* causal text rows */
    const int32_t *ids; /* text ids (the LM targets are ids[1 .. A-1]) */
    const double *x0;   /* [L, P] clean patches */
    double sigma;
} obj_sample;

/* Returns the batch loss; fills dpred [ΣL, P] and (if logits) dlogits [Σ(A-1), V]. */
static double objective(const obj_sample *s, int n, int64_t P, int64_t V, const float *pred,
                        const float *logits, float *dpred, float *dlogits) {
    double loss = 0;
    for (int b = 0; b < n; b++) {
        double m = s[b].sigma > SIGMA_MIN ? s[b].sigma : SIGMA_MIN, cnt = (double)(s[b].L * P);
        double li = 0;
        for (int64_t i = 0; i < s[b].L * P; i++) {
            double d = (double)pred[i] - s[b].x0[i];
            li += d * d;
            dpred[i] = (float)(2.0 * d / (cnt * m * m) / n);
        }
        loss += li / (cnt * m * m) / n;
        pred += s[b].L * P;
        dpred += s[b].L * P;
        if (!logits) continue;
        int64_t rows = s[b].A - 1;
        double ll = 0;
        for (int64_t r = 0; r < rows; r++) {
            const float *z = logits + r * V;
            double mx = z[0], sum = 0;
            for (int64_t v = 1; v < V; v++) mx = z[v] > mx ? z[v] : mx;
            for (int64_t v = 0; v < V; v++) sum += exp((double)z[v] - mx);
            int32_t tgt = s[b].ids[r + 1];
            ll += mx + log(sum) - z[tgt];
            for (int64_t v = 0; v < V; v++) {
                double pr = exp((double)z[v] - mx) / sum - (v == tgt);
                dlogits[r * V + v] = (float)(LAMBDA_LM * pr / (double)rows / n);
            }
        }
        if (rows > 0) loss += LAMBDA_LM * ll / (double)rows / n;
        logits += rows * V;
        dlogits += rows * V;
    }
    return loss;
}

/* ---- the golden batch ---------------------------------------------------------------------- */

typedef struct golden_sample {
    int32_t *ids, *pos;
    int64_t T, S, A;
    float *vin;       /* golden vinputs [L, P] */
    double t_golden;
    double *x0;
    float *z;
} golden_sample;

static void golden_sample_free(golden_sample *g) {
    free(g->ids);
    free(g->pos);
    free(g->vin);
    free(g->x0);
    free(g->z);
}

static const hd_st_tensor *find(const hd_safetensors *st, const char *fmt, const char *a) {
    char name[256];
    snprintf(name, sizeof name, fmt, a);
    const hd_st_tensor *t = hd_st_find(st, name);
    if (!t) fprintf(stderr, "missing tensor %s\n", name);
    return t;
}

/* Reads a golden forward case and builds its training input with the reference's formulas. */
static int load_case(const hd_safetensors *gold, const char *c, int b, double sigma, int64_t P,
                     golden_sample *g) {
    hd_error e = {0};
    const hd_st_tensor *ti = find(gold, "forward.%s.input_ids", c);
    const hd_st_tensor *tp = find(gold, "forward.%s.position_ids", c);
    const hd_st_tensor *tt = find(gold, "forward.%s.token_types", c);
    const hd_st_tensor *tv = find(gold, "forward.%s.vinputs", c);
    const hd_st_tensor *ts = find(gold, "forward.%s.timestep", c);
    if (!ti || !tp || !tt || !tv || !ts) return -1;
    g->T = ti->numel;
    g->S = tt->numel;
    int64_t L = g->S - g->T;
    int64_t *buf = malloc((size_t)(3 * g->S) * sizeof *buf);
    uint8_t *types = malloc((size_t)g->S);
    g->ids = malloc((size_t)g->T * sizeof *g->ids);
    g->pos = malloc((size_t)(3 * g->S) * sizeof *g->pos);
    g->vin = malloc((size_t)(L * P) * sizeof *g->vin);
    g->x0 = malloc((size_t)(L * P) * sizeof *g->x0);
    g->z = malloc((size_t)(L * P) * sizeof *g->z);
    int rc = hd_st_read_i64(ti, buf, (size_t)g->T, &e);
    for (int64_t i = 0; rc == 0 && i < g->T; i++) g->ids[i] = (int32_t)buf[i];
    if (rc == 0) rc = hd_st_read_i64(tp, buf, (size_t)(3 * g->S), &e);
    for (int64_t i = 0; rc == 0 && i < 3 * g->S; i++) g->pos[i] = (int32_t)buf[i];
    if (rc == 0) rc = hd_st_read_i64(tt, buf, (size_t)g->S, &e);
    for (int64_t i = 0; rc == 0 && i < g->S; i++) types[i] = (uint8_t)buf[i];
    if (rc == 0) rc = hd_uit_causal_prefix(types, g->S, &g->A, &e);
    if (rc == 0) rc = hd_st_read_f32(tv, g->vin, (size_t)(L * P), &e);
    if (rc == 0) rc = hd_st_read_f64(ts, &g->t_golden, 1, &e);
    for (int64_t i = 0; i < L * P; i++) {
        double x0 = 0.9 * sin(0.37 * (double)i + 0.1 * b), eps = cos(1.3 * (double)i + 0.5 + b);
        g->x0[i] = x0;
        g->z[i] = (float)((1 - sigma) * x0 + sigma * NOISE_SCALE * eps);
    }
    free(buf);
    free(types);
    if (rc < 0) fprintf(stderr, "%s: %s\n", c, e.msg);
    return rc;
}

static hd_uit_sample make_sample(const golden_sample *g, const float *x, double t) {
    hd_uit_sample s;
    memset(&s, 0, sizeof s);
    s.seq.ids = g->ids;
    s.seq.n_text = g->T;
    s.seq.n_seq = g->S;
    s.seq.pos = g->pos;
    s.seq.n_causal = g->A;
    s.x = x;
    s.t = t;
    return s;
}

/* ---- comparison with the reference file ---------------------------------------------------- */

/* The reference's sampled indices: splitmix64 stream seeded with FNV-1a-64 of the name. */
static void sample_indices(const char *name, int64_t numel, int32_t *out, int64_t n) {
    uint64_t state = 0xcbf29ce484222325ull;
    for (const unsigned char *c = (const unsigned char *)name; *c; c++)
        state = (state ^ *c) * 0x100000001b3ull;
    for (int64_t k = 0; k < n; k++) {
        uint64_t z = (state += 0x9e3779b97f4a7c15ull);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        z ^= z >> 31;
        out[k] = (int32_t)(z % (uint64_t)numel);
    }
}

/* Worst relative errors seen, for the summary line. */
static double worst_entries, worst_norm;

static void compare_param(hd_backend *be, const hd_uit_param *p, const hd_safetensors *ref) {
    hd_error e = {0};
    char name[160];
    int64_t numel = p->grad.rows * p->grad.cols;
    float *g = malloc((size_t)numel * sizeof *g);
    be->ops->read(be, &p->grad, g);
    double sq = 0;
    for (int64_t i = 0; i < numel; i++) sq += (double)g[i] * g[i];
    snprintf(name, sizeof name, "%s.norm", p->name);
    const hd_st_tensor *tn = hd_st_find(ref, name), *tv = hd_st_find(ref, p->name);
    snprintf(name, sizeof name, "%s.idx", p->name);
    const hd_st_tensor *ti = hd_st_find(ref, name);
    CHECKF(tn && tv, "%s: not in the reference", p->name);
    if (!tn || !tv) {
        free(g);
        return;
    }
    double ref_norm = 0;
    CHECK(hd_st_read_f64(tn, &ref_norm, 1, &e) == 0);
    double norm_err = fabs(sqrt(sq) - ref_norm) / ref_norm;
    int64_t n = ti ? ti->numel : numel;
    CHECKF(tv->numel == n, "%s: %lld reference values", p->name, (long long)tv->numel);
    float *rv = malloc((size_t)n * sizeof *rv);
    int32_t *idx = malloc((size_t)n * sizeof *idx);
    int64_t *ridx = malloc((size_t)n * sizeof *ridx);
    CHECK(hd_st_read_f32(tv, rv, (size_t)n, &e) == 0);
    if (ti) {
        sample_indices(p->name, numel, idx, n);
        CHECK(hd_st_read_i64(ti, ridx, (size_t)n, &e) == 0);
        int same = 1;
        for (int64_t k = 0; k < n; k++) same &= ridx[k] == idx[k];
        CHECKF(same, "%s: stored indices differ from the re-derived ones", p->name);
    } else {
        for (int64_t k = 0; k < n; k++) idx[k] = (int32_t)k;
    }
    double num = 0, den = 0;
    for (int64_t k = 0; k < n; k++) {
        double d = (double)g[idx[k]] - rv[k];
        num += d * d;
        den += (double)rv[k] * rv[k];
    }
    double rel = den > 0 ? sqrt(num / den) : sqrt(num);
    CHECKF(rel <= 1e-4 && norm_err <= 1e-4, "%s: rel. err %.3g (entries), %.3g (norm %.6g vs %.6g)",
           p->name, rel, norm_err, sqrt(sq), ref_norm);
    if (rel > worst_entries) worst_entries = rel;
    if (norm_err > worst_norm) worst_norm = norm_err;
    free(rv);
    free(idx);
    free(ridx);
    free(g);
}

typedef struct tiny_env {
    hd_config cfg;
    hd_safetensors st, gold;
    int ok;
} tiny_env;

static void tiny_open(tiny_env *t) {
    hd_error e = {0};
    char dir[1024], path[1100];
    memset(t, 0, sizeof *t);
    hd_test_shared(dir, sizeof dir, "golden/model-tiny");
    snprintf(path, sizeof path, "%s/golden.safetensors", dir);
    t->ok = hd_config_load_dir(&t->cfg, dir, &e) == 0 && hd_st_open_dir(&t->st, dir, &e) == 0 &&
            hd_st_open(&t->gold, path, &e) == 0;
    CHECKF(t->ok, "%s", e.msg);
}

static void tiny_close(tiny_env *t) {
    hd_st_close(&t->st);
    hd_st_close(&t->gold);
}

static void test_loss_and_every_gradient_match_pytorch_reference(void) {
    static const char *cases[2] = {"t2i_96x64", "t2i_64x128"};
    static const double sigmas[2] = {0.7, 0.3};
    hd_error e = {0};
    tiny_env env;
    tiny_open(&env);
    char path[1100];
    const char *src = getenv("HIDREAM_SOURCE");
    snprintf(path, sizeof path, "%s/tests/data/uit_grad_ref.safetensors", src ? src : ".");
    hd_safetensors ref = {0};
    int ok = env.ok && hd_st_open(&ref, path, &e) == 0;
    CHECKF(ok, "%s", e.msg);
    hd_backend *be = make_backend();
    hd_uit_train *tm = NULL;
    if (ok) ok = hd_uit_train_create(&tm, be, &env.cfg, &env.st, 0, 0.02f, 1, &e) == 0;
    CHECKF(ok, "create: %s", e.msg);
    golden_sample gs[2];
    memset(gs, 0, sizeof gs);
    if (!ok) goto done;
    hd_uit *m = hd_uit_train_model(tm);
    int64_t P = m->patch_dim, V = m->cfg.vocab_size, rows = 0, lm = 0;
    hd_uit_sample batch[2];
    obj_sample os[2];
    for (int b = 0; b < 2; b++) {
        CHECK(load_case(&env.gold, cases[b], b, sigmas[b], P, &gs[b]) == 0);
        batch[b] = make_sample(&gs[b], gs[b].z, 1.0 - sigmas[b]);
        os[b] = (obj_sample){gs[b].S - gs[b].T, gs[b].A, gs[b].ids, gs[b].x0, sigmas[b]};
        rows += gs[b].S - gs[b].T;
        lm += gs[b].A - 1;
    }
    float *pred = malloc((size_t)(rows * P) * sizeof *pred), *dpred = malloc((size_t)(rows * P) * 4);
    float *logits = malloc((size_t)(lm * V) * 4), *dlogits = malloc((size_t)(lm * V) * 4);
    CHECKF(hd_uit_train_forward(tm, batch, 2, pred, logits, &e) == 0, "%s", e.msg);
    double loss = objective(os, 2, P, V, pred, logits, dpred, dlogits);
    double ref_loss = 0;
    CHECK(hd_st_read_f64(hd_st_find(&ref, "loss"), &ref_loss, 1, &e) == 0);
    CHECKF(fabs(loss - ref_loss) <= 1e-4 * fabs(ref_loss), "loss %.9g vs %.9g", loss, ref_loss);
    CHECKF(hd_uit_train_backward(tm, dpred, dlogits, &e) == 0, "%s", e.msg);
    hd_uit_param *params;
    int np = hd_uit_train_params(tm, &params);
    CHECKF(np == 45, "%d parameters", np);
    worst_entries = worst_norm = 0;
    for (int i = 0; i < np; i++) compare_param(be, &params[i], &ref);
    printf("  loss %.9g (ref %.9g); worst gradient rel. err %.2e (entries), %.2e (norms)\n", loss,
           ref_loss, worst_entries, worst_norm);
    /* a second backward without a new forward is refused (the saved activations are spent) */
    CHECK(hd_uit_train_backward(tm, dpred, dlogits, &e) < 0);
    free(pred);
    free(dpred);
    free(logits);
    free(dlogits);
done:
    for (int b = 0; b < 2; b++) golden_sample_free(&gs[b]);
    hd_uit_train_free(tm);
    hd_st_close(&ref);
    tiny_close(&env);
    hd_backend_destroy(be);
}

/* The fp32 master-weight model runs the inference forward unchanged: same result as the model
 * bound to the bf16 checkpoint, and the packed training forward agrees with both. */
static void test_trainable_model_forward_matches_inference_model(void) {
    hd_error e = {0};
    tiny_env env;
    tiny_open(&env);
    hd_backend *be = make_backend();
    hd_uit_train *tm = NULL;
    hd_uit *inf = NULL;
    golden_sample g;
    memset(&g, 0, sizeof g);
    int ok = env.ok && hd_uit_train_create(&tm, be, &env.cfg, &env.st, 0, 0.02f, 0, &e) == 0 &&
             hd_uit_create(&inf, be, &env.cfg, &env.st, &e) == 0;
    CHECKF(ok, "%s", e.msg);
    if (ok) ok = load_case(&env.gold, "t2i_96x64", 0, 0.5, inf->patch_dim, &g) == 0;
    if (ok) {
        int64_t L = g.S - g.T, P = inf->patch_dim;
        int32_t *rows = malloc((size_t)L * sizeof *rows);
        for (int64_t i = 0; i < L; i++) rows[i] = (int32_t)(g.T + i);
        float *a = malloc((size_t)(L * P) * 4), *b = malloc((size_t)(L * P) * 4);
        float *c = malloc((size_t)(3 * L * P) * 4);
        hd_uit_sample s = make_sample(&g, g.vin, g.t_golden);
        CHECK(hd_uit_forward(inf, &s.seq, g.vin, g.t_golden, rows, L, a, NULL, &e) == 0);
        CHECK(hd_uit_forward(hd_uit_train_model(tm), &s.seq, g.vin, g.t_golden, rows, L, b, NULL,
                             &e) == 0);
        /* the same sample three times in one packed batch: every copy equals the single run */
        hd_uit_sample batch[3] = {s, s, s};
        CHECKF(hd_uit_train_forward(tm, batch, 3, c, NULL, &e) == 0, "%s", e.msg);
        double num = 0, den = 0, worst_packed = 0;
        for (int64_t i = 0; i < L * P; i++) {
            num += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
            den += (double)a[i] * a[i];
        }
        for (int k = 0; k < 3; k++) {
            double nk = 0;
            for (int64_t i = 0; i < L * P; i++)
                nk += ((double)a[i] - c[k * L * P + i]) * ((double)a[i] - c[k * L * P + i]);
            if (sqrt(nk / den) > worst_packed) worst_packed = sqrt(nk / den);
        }
        printf("  fp32 vs bf16-bound inference %.2e, packed training forward vs inference %.2e\n",
               sqrt(num / den), worst_packed);
        CHECKF(sqrt(num / den) <= 1e-6, "fp32 vs bf16-bound inference: rel. err %.3g",
               sqrt(num / den));
        CHECKF(worst_packed <= 1e-5, "packed training forward vs inference: rel. err %.3g",
               worst_packed);
        free(rows);
        free(a);
        free(b);
        free(c);
    }
    golden_sample_free(&g);
    hd_uit_free(inf);
    hd_uit_train_free(tm);
    tiny_close(&env);
    hd_backend_destroy(be);
}

/* ---- finite differences on a small random model -------------------------------------------- */

static uint64_t rng_state = 0x2545f4914f6cdd1dull;
static double urand(void) { /* xorshift64*, uniform in [-1, 1) */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    uint64_t r = rng_state * 0x2545f4914f6cdd1dull;
    return (double)(r >> 11) / (double)(1ull << 52) - 1.0;
}

static void small_config(hd_config *cfg) {
    memset(cfg, 0, sizeof *cfg);
    hd_text_config *c = &cfg->text;
    c->hidden_size = 24;
    c->intermediate_size = 40;
    c->num_layers = 2;
    c->num_heads = 4;
    c->num_kv_heads = 2;
    c->head_dim = 8;
    c->vocab_size = 40;
    c->rms_norm_eps = 1e-6;
    c->rope_theta = 10000.0;
    c->mrope_section[0] = 2;
    c->mrope_section[1] = 1;
    c->mrope_section[2] = 1;
    c->mrope_interleaved = 1;
    cfg->gen.patch_size = 2;
    cfg->ids.tms = 39;
    cfg->ids.image_pad = 38;
    cfg->ids.boi = 37;
}

typedef struct fd_batch {
    hd_uit_sample s[2];
    obj_sample o[2];
    int32_t ids[2][8], pos[2][3 * 16];
    double x0[2][5 * 12];
    float z[2][5 * 12];
    int64_t rows, lm, P, V;
} fd_batch;

/* Two samples of different lengths, repeated token ids (the embedding scatter-add), a timestep
 * token each, 2x2 and 1x3 patch grids. */
static void fd_make_batch(fd_batch *fb, int64_t P, int64_t V) {
    static const int T[2] = {7, 5}, L[2] = {4, 3}, W[2] = {2, 3};
    static const double sig[2] = {0.6, 0.02}; /* the second below sigma_min */
    static const int32_t text[2][6] = {{3, 5, 3, 7, 5, 37}, {3, 9, 9, 11, 0, 0}};
    memset(fb, 0, sizeof *fb);
    fb->P = P;
    fb->V = V;
    for (int b = 0; b < 2; b++) {
        int S = T[b] + L[b];
        for (int i = 0; i < T[b] - 1; i++) fb->ids[b][i] = text[b][i];
        fb->ids[b][T[b] - 1] = 39; /* <|tms_token|> */
        for (int s = 0; s < S; s++) {
            int r = s < T[b] ? s : (s - T[b]) / W[b], c = s < T[b] ? s : (s - T[b]) % W[b];
            fb->pos[b][s] = s < T[b] ? s : 64;
            fb->pos[b][S + s] = s < T[b] ? s : 64 + r;
            fb->pos[b][2 * S + s] = s < T[b] ? s : 64 + c;
        }
        for (int64_t i = 0; i < L[b] * P; i++) {
            fb->x0[b][i] = 0.8 * urand();
            fb->z[b][i] = (float)((1 - sig[b]) * fb->x0[b][i] + sig[b] * 2.0 * urand());
        }
        hd_uit_sample *s = &fb->s[b];
        s->seq.ids = fb->ids[b];
        s->seq.n_text = T[b];
        s->seq.n_seq = S;
        s->seq.pos = fb->pos[b];
        s->seq.n_causal = T[b] - 1;
        s->x = fb->z[b];
        s->t = 1.0 - sig[b];
        fb->o[b] = (obj_sample){L[b], T[b] - 1, fb->ids[b], fb->x0[b], sig[b]};
        fb->rows += L[b];
        fb->lm += T[b] - 2;
    }
}

static double fd_loss(hd_uit_train *tm, fd_batch *fb, float *pred, float *logits, float *dpred,
                      float *dlogits) {
    hd_error e = {0};
    if (hd_uit_train_forward(tm, fb->s, 2, pred, logits, &e) < 0) {
        fprintf(stderr, "forward: %s\n", e.msg);
        return NAN;
    }
    return objective(fb->o, 2, fb->P, fb->V, pred, logits, dpred, dlogits);
}

/* Sets every weight to random values of a useful size (norm weights near 1, the patch head
 * non-zero), so that every gradient is non-trivial. */
static void randomise(hd_backend *be, hd_uit_param *params, int np) {
    for (int i = 0; i < np; i++) {
        hd_uit_param *p = &params[i];
        int64_t n = p->w->rows * p->w->cols;
        float *h = malloc((size_t)n * sizeof *h);
        int is_norm = strstr(p->name, "norm") != NULL;
        double scale = p->ndim == 1 ? 0.3 : 1.0 / sqrt((double)p->w->cols);
        for (int64_t j = 0; j < n; j++) h[j] = (float)((is_norm ? 1.0 : 0.0) + scale * urand());
        if (strstr(p->name, "embed_tokens")) /* embeddings enter a norm: O(1) rows */
            for (int64_t j = 0; j < n; j++) h[j] = (float)urand();
        be->ops->write(be, p->w, h);
        free(h);
    }
}

/* ---- an independent float64 forward of the objective (for the finite differences) ---------- *
 * Written from spec 03 for the small config (the fixed-size arrays below hold its shapes). Only
 * the constant float32 tables come from the library (hd_rope_tables, hd_timestep_sinusoid):
 * they are inputs, not differentiated. */

typedef struct ref_model {
    const hd_config *cfg;
    int np;
    const hd_uit_param *params; /* names and shapes */
    double **w;                 /* float64 copy of every weight, indexed like params */
    int64_t P, BN, FQ;          /* patch, bottleneck, timestep widths */
} ref_model;

static const double *rw(const ref_model *rm, const char *name) {
    for (int i = 0; i < rm->np; i++)
        if (strcmp(rm->params[i].name, name) == 0) return rm->w[i];
    fprintf(stderr, "reference: no weight %s\n", name);
    abort();
}

static const double *rwl(const ref_model *rm, int l, const char *suffix) {
    char n[160];
    snprintf(n, sizeof n, "model.language_model.layers.%d.%s", l, suffix);
    return rw(rm, n);
}

/* y[m, n] = x[m, k] · w[n, k]ᵀ (+ b) */
static void dlinear(const double *x, int64_t m, int64_t k, const double *w, const double *b,
                    int64_t n, double *y) {
    for (int64_t i = 0; i < m; i++)
        for (int64_t o = 0; o < n; o++) {
            double acc = b ? b[o] : 0;
            for (int64_t j = 0; j < k; j++) acc += x[i * k + j] * w[o * k + j];
            y[i * n + o] = acc;
        }
}

/* in place, groups of g */
static void drmsnorm(double *x, int64_t m, int64_t g, const double *w, double eps) {
    for (int64_t i = 0; i < m; i++) {
        double ss = 0;
        for (int64_t j = 0; j < g; j++) ss += x[i * g + j] * x[i * g + j];
        double r = 1.0 / sqrt(ss / (double)g + eps);
        for (int64_t j = 0; j < g; j++) x[i * g + j] *= r * w[j];
    }
}

static double dsilu(double v) { return v / (1.0 + exp(-v)); }

/* Residual stream entering layer 0 of one sample (spec 03 §1-3). */
static void ref_embed(const ref_model *rm, const hd_uit_sample *s, double *x) {
    int64_t D = rm->cfg->text.hidden_size, T = s->seq.n_text, S = s->seq.n_seq;
    const double *emb = rw(rm, "model.language_model.embed_tokens.weight");
    for (int64_t r = 0; r < T; r++) {
        if (s->seq.ids[r] != rm->cfg->ids.tms) {
            for (int64_t j = 0; j < D; j++) x[r * D + j] = emb[s->seq.ids[r] * D + j];
            continue;
        }
        float f[512];
        double fd[512], hid[256];
        hd_timestep_sinusoid(s->t, (int)rm->FQ, f);
        for (int64_t j = 0; j < rm->FQ; j++) fd[j] = f[j];
        dlinear(fd, 1, rm->FQ, rw(rm, "model.t_embedder1.mlp.0.weight"),
                rw(rm, "model.t_embedder1.mlp.0.bias"), D, hid);
        for (int64_t j = 0; j < D; j++) hid[j] = dsilu(hid[j]);
        dlinear(hid, 1, D, rw(rm, "model.t_embedder1.mlp.2.weight"),
                rw(rm, "model.t_embedder1.mlp.2.bias"), D, x + r * D);
    }
    for (int64_t r = T; r < S; r++) {
        double vin[64], mid[64];
        for (int64_t j = 0; j < rm->P; j++) vin[j] = s->x[(r - T) * rm->P + j];
        dlinear(vin, 1, rm->P, rw(rm, "model.x_embedder.proj1.weight"), NULL, rm->BN, mid);
        dlinear(mid, 1, rm->BN, rw(rm, "model.x_embedder.proj2.weight"),
                rw(rm, "model.x_embedder.proj2.bias"), D, x + r * D);
    }
}

/* One decoder layer in place on x [S, D] (spec 03 §4, §5, §7). */
static void ref_layer(const ref_model *rm, int l, const hd_uit_sample *s, const float *cs,
                      const float *sn, double *x) {
    const hd_text_config *c = &rm->cfg->text;
    int64_t D = c->hidden_size, H = c->num_heads, KVH = c->num_kv_heads, hd = c->head_dim;
    int64_t F = c->intermediate_size, S = s->seq.n_seq, Q = H * hd, KV = KVH * hd, A = s->seq.n_causal;
    double h[16 * 64], q[16 * 64], k[16 * 64], v[16 * 64], at[16 * 64], g[16 * 64], u[16 * 64];
    double sc[16];
    memcpy(h, x, (size_t)(S * D) * sizeof *h);
    drmsnorm(h, S, D, rwl(rm, l, "input_layernorm.weight"), c->rms_norm_eps);
    dlinear(h, S, D, rwl(rm, l, "self_attn.q_proj.weight"), NULL, Q, q);
    dlinear(h, S, D, rwl(rm, l, "self_attn.k_proj.weight"), NULL, KV, k);
    dlinear(h, S, D, rwl(rm, l, "self_attn.v_proj.weight"), NULL, KV, v);
    drmsnorm(q, S * H, hd, rwl(rm, l, "self_attn.q_norm.weight"), c->rms_norm_eps);
    drmsnorm(k, S * KVH, hd, rwl(rm, l, "self_attn.k_norm.weight"), c->rms_norm_eps);
    for (int64_t r = 0; r < S; r++)
        for (int64_t hh = 0; hh < H + KVH; hh++) {
            double *vec = hh < H ? q + r * Q + hh * hd : k + r * KV + (hh - H) * hd;
            for (int64_t j = 0; j < hd / 2; j++) {
                double a = vec[j], b = vec[j + hd / 2], co = cs[r * hd + j], si = sn[r * hd + j];
                vec[j] = a * co - b * si;
                vec[j + hd / 2] = b * co + a * si;
            }
        }
    for (int64_t r = 0; r < S; r++)
        for (int64_t hh = 0; hh < H; hh++) {
            int64_t kvh = hh / (H / KVH), nk = r < A ? r + 1 : S;
            double mx = -INFINITY, sum = 0;
            for (int64_t j = 0; j < nk; j++) {
                double d = 0;
                for (int64_t e2 = 0; e2 < hd; e2++) d += q[r * Q + hh * hd + e2] * k[j * KV + kvh * hd + e2];
                sc[j] = d / sqrt((double)hd);
                mx = sc[j] > mx ? sc[j] : mx;
            }
            for (int64_t j = 0; j < nk; j++) sum += (sc[j] = exp(sc[j] - mx));
            for (int64_t e2 = 0; e2 < hd; e2++) {
                double acc = 0;
                for (int64_t j = 0; j < nk; j++) acc += sc[j] * v[j * KV + kvh * hd + e2];
                at[r * Q + hh * hd + e2] = acc / sum;
            }
        }
    dlinear(at, S, Q, rwl(rm, l, "self_attn.o_proj.weight"), NULL, D, h);
    for (int64_t i = 0; i < S * D; i++) x[i] += h[i];
    memcpy(h, x, (size_t)(S * D) * sizeof *h);
    drmsnorm(h, S, D, rwl(rm, l, "post_attention_layernorm.weight"), c->rms_norm_eps);
    dlinear(h, S, D, rwl(rm, l, "mlp.gate_proj.weight"), NULL, F, g);
    dlinear(h, S, D, rwl(rm, l, "mlp.up_proj.weight"), NULL, F, u);
    for (int64_t i = 0; i < S * F; i++) g[i] = dsilu(g[i]) * u[i];
    dlinear(g, S, F, rwl(rm, l, "mlp.down_proj.weight"), NULL, D, h);
    for (int64_t i = 0; i < S * D; i++) x[i] += h[i];
}

/* The objective of one sample (L_img + λ·L_lm) in float64. */
static double ref_sample_loss(const ref_model *rm, const hd_uit_sample *s, const obj_sample *o) {
    const hd_text_config *c = &rm->cfg->text;
    int64_t D = c->hidden_size, V = c->vocab_size, T = s->seq.n_text, S = s->seq.n_seq;
    double x[16 * 64], y[64], z[64];
    float cs[16 * 16], sn[16 * 16];
    hd_rope rope;
    hd_error e = {0};
    if (hd_rope_init(&rope, c->head_dim, c->rope_theta, c->mrope_section, &e) < 0) return NAN;
    hd_rope_tables(&rope, s->seq.pos, S, 0, S, cs, sn);
    hd_rope_free(&rope);
    ref_embed(rm, s, x);
    for (int l = 0; l < c->num_layers; l++) ref_layer(rm, l, s, cs, sn, x);
    drmsnorm(x, S, D, rw(rm, "model.language_model.norm.weight"), c->rms_norm_eps);
    double m = o->sigma > SIGMA_MIN ? o->sigma : SIGMA_MIN, li = 0, ll = 0;
    for (int64_t r = T; r < S; r++) {
        dlinear(x + r * D, 1, D, rw(rm, "model.final_layer2.linear.weight"),
                rw(rm, "model.final_layer2.linear.bias"), rm->P, y);
        for (int64_t j = 0; j < rm->P; j++) {
            double d = y[j] - o->x0[(r - T) * rm->P + j];
            li += d * d;
        }
    }
    for (int64_t r = 0; r + 1 < o->A; r++) {
        dlinear(x + r * D, 1, D, rw(rm, "lm_head.weight"), NULL, V, z);
        double mx = z[0], sum = 0;
        for (int64_t v = 1; v < V; v++) mx = z[v] > mx ? z[v] : mx;
        for (int64_t v = 0; v < V; v++) sum += exp(z[v] - mx);
        ll += mx + log(sum) - z[o->ids[r + 1]];
    }
    double loss = li / (double)((S - T) * rm->P) / (m * m);
    return o->A > 1 ? loss + LAMBDA_LM * ll / (double)(o->A - 1) : loss;
}

static double ref_loss(const ref_model *rm, const fd_batch *fb) {
    return 0.5 * (ref_sample_loss(rm, &fb->s[0], &fb->o[0]) +
                  ref_sample_loss(rm, &fb->s[1], &fb->o[1]));
}

static void test_gradients_match_float64_finite_differences_on_a_small_model(void) {
    hd_error e = {0};
    hd_config cfg;
    small_config(&cfg);
    hd_backend *be = make_backend();
    hd_uit_train *tm = NULL;
    CHECKF(hd_uit_train_create(&tm, be, &cfg, NULL, 7, 0.1f, 1, &e) == 0, "%s", e.msg);
    if (!tm) {
        hd_backend_destroy(be);
        return;
    }
    hd_uit_param *params;
    int np = hd_uit_train_params(tm, &params);
    /* the random init: ones for norms, zeros for biases and the whole patch head */
    for (int i = 0; i < np; i++) {
        int64_t n = params[i].w->rows * params[i].w->cols;
        float *h = malloc((size_t)n * sizeof *h);
        be->ops->read(be, params[i].w, h);
        int is_norm = strstr(params[i].name, "norm") != NULL;
        int zero = strstr(params[i].name, "bias") || strstr(params[i].name, "final_layer2");
        int good = 1;
        double sq = 0;
        for (int64_t j = 0; j < n; j++) {
            if (is_norm) good &= h[j] == 1.0f;
            else if (zero) good &= h[j] == 0.0f;
            sq += (double)h[j] * h[j];
        }
        if (!is_norm && !zero) good = fabs(sqrt(sq / (double)n) - 0.1) < 0.03;
        CHECKF(good, "init of %s", params[i].name);
        free(h);
    }
    randomise(be, params, np);

    hd_uit *m = hd_uit_train_model(tm);
    fd_batch fb;
    fd_make_batch(&fb, m->patch_dim, m->cfg.vocab_size);
    int64_t P = fb.P, V = fb.V;
    float *pred = malloc((size_t)(fb.rows * P) * 4), *dpred = malloc((size_t)(fb.rows * P) * 4);
    float *logits = malloc((size_t)(fb.lm * V) * 4), *dlogits = malloc((size_t)(fb.lm * V) * 4);
    hd_uit_train_zero_grad(tm);
    double loss = fd_loss(tm, &fb, pred, logits, dpred, dlogits);
    CHECKF(hd_uit_train_backward(tm, dpred, dlogits, &e) == 0, "%s", e.msg);

    /* the same weights in float64 */
    ref_model rm = {&cfg, np, params, calloc((size_t)np, sizeof(double *)), m->patch_dim,
                    m->bottleneck_dim, m->freq_dim};
    for (int i = 0; i < np; i++) {
        int64_t n = params[i].w->rows * params[i].w->cols;
        float *h = malloc((size_t)n * sizeof *h);
        be->ops->read(be, params[i].w, h);
        rm.w[i] = malloc((size_t)n * sizeof(double));
        for (int64_t j = 0; j < n; j++) rm.w[i][j] = h[j];
        free(h);
    }
    double base = ref_loss(&rm, &fb);
    CHECKF(fabs(base - loss) <= 1e-5 * fabs(base), "float32 loss %.9g vs float64 %.9g", loss, base);

    int n_checked = 0;
    double worst = 0;
    for (int i = 0; i < np; i++) {
        hd_uit_param *p = &params[i];
        int64_t n = p->w->rows * p->w->cols;
        float *g = malloc((size_t)n * sizeof *g);
        be->ops->read(be, &p->grad, g);
        /* the largest-gradient entry and three random ones; errors relative to the largest */
        int64_t pick[4] = {0, 0, 0, 0};
        double gmax = 0;
        for (int64_t j = 0; j < n; j++)
            if (fabs(g[j]) > gmax) gmax = fabs(g[j]), pick[0] = j;
        for (int k = 1; k < 4; k++) pick[k] = (int64_t)((urand() + 1) * 0.5 * (double)n) % n;
        CHECKF(gmax > 0, "%s: zero gradient", p->name);
        for (int k = 0; k < 4 && gmax > 0; k++) {
            int64_t j = pick[k];
            double w0 = rm.w[i][j], h = 1e-5 * (fabs(w0) > 0.1 ? fabs(w0) : 0.1);
            rm.w[i][j] = w0 + h;
            double lp = ref_loss(&rm, &fb);
            rm.w[i][j] = w0 - h;
            double lm = ref_loss(&rm, &fb);
            rm.w[i][j] = w0;
            double fd = (lp - lm) / (2.0 * h);
            double err = fabs(fd - g[j]) / gmax;
            if (err > worst) worst = err;
            CHECKF(err <= 1e-4, "%s[%lld]: backward %.9g, finite difference %.9g (max |g| %.3g)",
                   p->name, (long long)j, g[j], fd, gmax);
            n_checked++;
        }
        free(g);
    }
    printf("  %d entries of %d tensors; worst |fd - g| / max|g| = %.2e\n", n_checked, np, worst);
    for (int i = 0; i < np; i++) free(rm.w[i]);
    free(rm.w);
    free(pred);
    free(dpred);
    free(logits);
    free(dlogits);
    hd_uit_train_free(tm);
    hd_backend_destroy(be);
}

/* One packed batch of two samples gives the gradients of two accumulated single-sample
 * backwards (packing, per-sample masks and rotary tables, gradient accumulation). */
static void test_packed_batch_gradients_equal_accumulated_single_samples(void) {
    hd_error e = {0};
    hd_config cfg;
    small_config(&cfg);
    hd_backend *be = make_backend();
    hd_uit_train *tm = NULL;
    CHECKF(hd_uit_train_create(&tm, be, &cfg, NULL, 3, 0.2f, 1, &e) == 0, "%s", e.msg);
    if (!tm) {
        hd_backend_destroy(be);
        return;
    }
    hd_uit_param *params;
    int np = hd_uit_train_params(tm, &params);
    randomise(be, params, np);
    fd_batch fb;
    fd_make_batch(&fb, hd_uit_train_model(tm)->patch_dim, cfg.text.vocab_size);
    int64_t P = fb.P, V = fb.V;
    float *pred = malloc((size_t)(fb.rows * P) * 4), *dpred = malloc((size_t)(fb.rows * P) * 4);
    float *logits = malloc((size_t)(fb.lm * V) * 4), *dlogits = malloc((size_t)(fb.lm * V) * 4);
    float **packed = calloc((size_t)np, sizeof *packed);
    hd_uit_train_zero_grad(tm);
    CHECK(isfinite(fd_loss(tm, &fb, pred, logits, dpred, dlogits)));
    CHECKF(hd_uit_train_backward(tm, dpred, dlogits, &e) == 0, "%s", e.msg);
    for (int i = 0; i < np; i++) {
        packed[i] = malloc((size_t)(params[i].grad.rows * params[i].grad.cols) * 4);
        be->ops->read(be, &params[i].grad, packed[i]);
    }
    hd_uit_train_zero_grad(tm);
    for (int b = 0; b < 2; b++) {
        CHECK(hd_uit_train_forward(tm, &fb.s[b], 1, pred, logits, &e) == 0);
        objective(&fb.o[b], 1, P, V, pred, logits, dpred, dlogits);
        int64_t nl = fb.o[b].A - 1, npred = fb.o[b].L * P;
        for (int64_t i = 0; i < npred; i++) dpred[i] *= 0.5f; /* the batch mean over 2 samples */
        for (int64_t i = 0; i < nl * V; i++) dlogits[i] *= 0.5f;
        CHECKF(hd_uit_train_backward(tm, dpred, dlogits, &e) == 0, "%s", e.msg);
    }
    double worst = 0;
    for (int i = 0; i < np; i++) {
        int64_t n = params[i].grad.rows * params[i].grad.cols;
        float *g = malloc((size_t)n * 4);
        be->ops->read(be, &params[i].grad, g);
        double num = 0, den = 0;
        for (int64_t j = 0; j < n; j++) {
            num += ((double)g[j] - packed[i][j]) * ((double)g[j] - packed[i][j]);
            den += (double)packed[i][j] * packed[i][j];
        }
        double rel = den > 0 ? sqrt(num / den) : sqrt(num);
        if (rel > worst) worst = rel;
        CHECKF(den > 0 && rel <= 1e-5, "%s: packed vs accumulated rel. err %.3g", params[i].name,
               rel);
        free(g);
        free(packed[i]);
    }
    printf("  worst packed vs accumulated rel. err %.2e\n", worst);
    free(packed);
    free(pred);
    free(dpred);
    free(logits);
    free(dlogits);
    hd_uit_train_free(tm);
    hd_backend_destroy(be);
}

/* Writes every parameter of tm under its official name (float32; `bad` gets a wrong shape). */
static int export_params(hd_uit_train *tm, hd_backend *be, const char *path, const char *bad,
                         hd_error *e) {
    hd_uit_param *params;
    int np = hd_uit_train_params(tm, &params);
    hd_st_write_item *items = calloc((size_t)np, sizeof *items);
    float **data = calloc((size_t)np, sizeof *data);
    for (int i = 0; i < np; i++) {
        hd_uit_param *p = &params[i];
        data[i] = malloc((size_t)(p->w->rows * p->w->cols) * sizeof(float));
        be->ops->read(be, p->w, data[i]);
        items[i].name = p->name;
        items[i].dtype = HD_F32;
        items[i].ndim = p->ndim;
        items[i].shape[0] = p->ndim == 1 ? p->w->cols : p->w->rows;
        items[i].shape[1] = p->w->cols;
        if (bad && strcmp(p->name, bad) == 0 && p->ndim == 2) {
            items[i].shape[0] = p->w->cols;
            items[i].shape[1] = p->w->rows;
        }
        items[i].data = data[i];
    }
    int rc = hd_st_write(path, items, np, e);
    for (int i = 0; i < np; i++) free(data[i]);
    free(data);
    free(items);
    return rc;
}

/* The official names and shapes round-trip: a model created from its own exported parameters
 * computes the same prediction and logits bit for bit; a misshapen tensor is named. */
static void test_exported_parameters_recreate_the_same_model(void) {
    hd_error e = {0};
    hd_config cfg;
    small_config(&cfg);
    hd_backend *be = make_backend();
    hd_uit_train *a = NULL, *b = NULL;
    CHECKF(hd_uit_train_create(&a, be, &cfg, NULL, 5, 0.2f, 1, &e) == 0, "%s", e.msg);
    if (!a) {
        hd_backend_destroy(be);
        return;
    }
    hd_uit_param *params;
    int n_params = hd_uit_train_params(a, &params);
    randomise(be, params, n_params);
    char dir[512], path[600], bad[600];
    hd_test_tmpdir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    snprintf(bad, sizeof bad, "%s/bad.safetensors", dir);
    CHECKF(export_params(a, be, path, NULL, &e) == 0, "%s", e.msg);
    CHECKF(export_params(a, be, bad, "model.language_model.layers.1.mlp.up_proj.weight", &e) == 0,
           "%s", e.msg);
    hd_safetensors st = {0}, st_bad = {0};
    CHECKF(hd_st_open(&st, path, &e) == 0 && hd_st_open(&st_bad, bad, &e) == 0, "%s", e.msg);
    CHECKF(hd_uit_train_create(&b, be, &cfg, &st, 0, 0.0f, 1, &e) == 0, "%s", e.msg);
    if (b) {
        fd_batch fb;
        fd_make_batch(&fb, hd_uit_train_model(a)->patch_dim, cfg.text.vocab_size);
        int64_t np = fb.rows * fb.P, nl = fb.lm * fb.V;
        float *pa = malloc((size_t)(np + nl) * 4), *pb = malloc((size_t)(np + nl) * 4);
        CHECK(hd_uit_train_forward(a, fb.s, 2, pa, pa + np, &e) == 0);
        CHECK(hd_uit_train_forward(b, fb.s, 2, pb, pb + np, &e) == 0);
        CHECK(memcmp(pa, pb, (size_t)(np + nl) * 4) == 0);
        free(pa);
        free(pb);
    }
    hd_uit_train *c = NULL;
    CHECK(hd_uit_train_create(&c, be, &cfg, &st_bad, 0, 0.1f, 1, &e) < 0 && c == NULL);
    CHECKF(strstr(e.msg, "bad.safetensors") && strstr(e.msg, "layers.1.mlp.up_proj"), "%s", e.msg);
    hd_st_close(&st);
    hd_st_close(&st_bad);
    remove(path);
    remove(bad);
    rmdir(dir);
    hd_uit_train_free(a);
    hd_uit_train_free(b);
    hd_backend_destroy(be);
}

/* ---- interface errors ---------------------------------------------------------------------- */

static void test_bad_batches_are_refused_with_one_line(void) {
    hd_error e = {0};
    hd_config cfg;
    small_config(&cfg);
    hd_backend *be = make_backend();
    hd_uit_train *tm = NULL;
    CHECK(hd_uit_train_create(&tm, be, &cfg, NULL, 1, 0.0f, 0, &e) < 0 && tm == NULL);
    CHECK(strstr(e.msg, "init_std") != NULL);
    cfg.text.num_heads = 3; /* not a multiple of the 2 KV heads */
    CHECK(hd_uit_train_create(&tm, be, &cfg, NULL, 1, 0.1f, 0, &e) < 0 && tm == NULL);
    CHECK(strstr(e.msg, "config") != NULL);
    cfg.text.num_heads = 4;
    CHECK(hd_uit_train_create(&tm, be, &cfg, NULL, 1, 0.1f, 0, &e) == 0);
    if (!tm) {
        hd_backend_destroy(be);
        return;
    }
    fd_batch fb;
    fd_make_batch(&fb, hd_uit_train_model(tm)->patch_dim, cfg.text.vocab_size);
    float pred[7 * 12], logits[16 * 40];
    CHECK(hd_uit_train_forward(tm, fb.s, 2, pred, logits, &e) < 0); /* no lm_head */
    CHECK(strstr(e.msg, "lm_head") != NULL);
    CHECK(hd_uit_train_backward(tm, pred, NULL, &e) < 0); /* no forward yet */
    fb.s[1].seq.n_causal = 9;
    CHECK(hd_uit_train_forward(tm, fb.s, 2, pred, NULL, &e) < 0);
    CHECK(strstr(e.msg, "batch[1]") != NULL);
    fb.s[1].seq.n_causal = 4;
    fb.ids[0][2] = 40;
    CHECK(hd_uit_train_forward(tm, fb.s, 2, pred, NULL, &e) < 0);
    CHECK(strstr(e.msg, "batch[0]") != NULL && strchr(e.msg, '\n') == NULL);
    fb.ids[0][2] = 3;
    CHECK(hd_uit_train_forward(tm, fb.s, 2, pred, NULL, &e) == 0);
    CHECK(hd_uit_train_backward(tm, pred, logits, &e) < 0); /* logits the forward did not make */
    CHECK(hd_uit_train_backward(tm, pred, NULL, &e) == 0);
    hd_uit_train_free(tm);
    hd_backend_destroy(be);
}

int main(void) {
    RUN_TEST(test_loss_and_every_gradient_match_pytorch_reference);
    RUN_TEST(test_trainable_model_forward_matches_inference_model);
    RUN_TEST(test_gradients_match_float64_finite_differences_on_a_small_model);
    RUN_TEST(test_packed_batch_gradients_equal_accumulated_single_samples);
    RUN_TEST(test_exported_parameters_recreate_the_same_model);
    RUN_TEST(test_bad_batches_are_refused_with_one_line);
    return hd_test_finish();
}
