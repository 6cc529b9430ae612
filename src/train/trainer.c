/* The training loop (trainer.h). */
#include "train/trainer.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "backend/backend.h"
#include "core/error.h"
#include "core/file.h"
#include "data/shapes_tokenizer.h"
#include "image/image.h"
#include "io/safetensors.h"
#include "model/uit_train.h"
#include "train/batch.h"
#include "train/checkpoint.h"
#include "train/export.h"
#include "train/judge.h"
#include "train/objective.h"
#include "train/optimizer.h"
#include "train/plot.h"

enum { STREAM_BUCKET = 4 };
#define TOKENIZER_MAX_BYTES (64u << 20)

typedef struct run {
    const hd_train_config *c;
    const hd_train_options *opt;
    char *tok_json;
    size_t tok_len;
    hd_tokenizer *tok;
    hd_train_text tx;
    hd_config cfg;
    hd_backend *be;
    hd_uit_train *tm;
    hd_uit_param *ps;
    int np;
    int64_t params;
    hd_train_optimizer o;
    hd_dataset *ds;
    int ds_stage;
    hd_train_batch b;
    int with_lm, V;
    int64_t total, step;
    /* the loss history (for loss.png) and the current log window */
    int64_t *hist_step;
    double *hist_loss;
    int64_t hist_n, hist_cap;
    double win_loss, win_img, win_lm, win_time;
    int64_t win_n, win_samples;
    double last_lr, last_norm;
    double t_start;
    FILE *csv;
} run;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void out_path(const run *r, char *buf, size_t n, const char *name) {
    snprintf(buf, n, "%s/%s", r->c->out, name);
}

static void emit(run *r, hd_train_event ev, const char *path, const hd_shapes_tally *t) {
    if (!r->opt->report) return;
    hd_train_report rep = {.event = ev, .step = r->step, .total = r->total,
                           .params = r->params, .lr = r->last_lr, .grad_norm = r->last_norm,
                           .elapsed_s = now_s() - r->t_start, .path = path, .tally = t};
    if (r->win_n > 0) {
        rep.loss = r->win_loss / (double)r->win_n;
        rep.loss_img = r->win_img / (double)r->win_n;
        rep.loss_lm = r->win_lm / (double)r->win_n;
    }
    if (r->win_time > 0) {
        rep.samples_s = (double)r->win_samples / r->win_time;
        double per_step = r->win_time / (double)(r->win_n ? r->win_n : 1);
        rep.eta_s = per_step * (double)(r->total - r->step);
    }
    r->opt->report(r->opt->user, &rep);
}

/* ---- set-up -------------------------------------------------------------------------------- */

static int load_tokenizer(run *r, hd_error *e) {
    const hd_train_config *c = r->c;
    if (c->tokenizer[0]) {
        char path[4200];
        struct stat sb;
        if (stat(c->tokenizer, &sb) == 0 && S_ISDIR(sb.st_mode))
            snprintf(path, sizeof path, "%s/tokenizer.json", c->tokenizer);
        else
            snprintf(path, sizeof path, "%s", c->tokenizer);
        HD_TRY(hd_read_file(path, TOKENIZER_MAX_BYTES, &r->tok_json, &r->tok_len, e));
    } else {
        int n = 0;
        HD_TRY(hd_shapes_tokenizer_json(&r->tok_json, &n, e));
        r->tok_len = strlen(r->tok_json);
    }
    HD_TRY(hd_tokenizer_load_buffer(&r->tok, r->tok_json, r->tok_len, "tokenizer.json", e));
    HD_TRY(hd_train_model_config(&r->cfg, c, r->tok_json, r->tok_len, e));
    return hd_train_text_init(&r->tx, r->tok, &r->cfg.ids, e);
}

static int build_model(run *r, hd_error *e) {
    const hd_train_config *c = r->c;
    hd_backend_options bo = {0};
    bo.n_threads = r->opt->threads > 0 ? r->opt->threads : c->threads;
    HD_TRY(hd_backend_cpu_create(&r->be, &bo, e));
    if (!hd_backend_can_train(r->be))
        return hd_fail(e, HD_EUNSUPPORTED, "backend %s cannot train", r->be->ops->name);
    hd_safetensors st = {0};
    const hd_safetensors *init = NULL;
    if (c->model.init_from[0]) {
        HD_TRY(hd_st_open_dir(&st, c->model.init_from, e));
        init = &st;
    }
    r->with_lm = c->objective.lm_weight > 0;
    int rc = hd_uit_train_create(&r->tm, r->be, &r->cfg, init, c->seed, (float)c->model.init_std,
                                 r->with_lm, e);
    hd_st_close(&st);
    if (rc < 0) return hd_error_prefix(e, "%s: model", c->path);
    r->np = hd_uit_train_params(r->tm, &r->ps);
    for (int i = 0; i < r->np; i++) r->params += r->ps[i].w->rows * r->ps[i].w->cols;
    r->V = r->cfg.text.vocab_size;
    return hd_train_optimizer_init(&r->o, r->be, r->ps, r->np, c->optim.ema_decay > 0, e);
}

/* The data of a stage: one bucket per size. */
static int open_stage(run *r, int stage, hd_error *e) {
    if (r->ds && r->ds_stage == stage) return 0;
    hd_dataset_close(r->ds);
    r->ds = NULL;
    const hd_train_stage *s = &r->c->stages[stage];
    hd_dataset_desc d = {.kind = r->c->data_kind, .folder = r->c->folder,
                         .n_buckets = s->n_sizes, .filter = (hd_filter)r->c->filter};
    memcpy(d.sizes, s->sizes, sizeof d.sizes);
    memcpy(d.category_weights, r->c->category_weights, sizeof d.category_weights);
    HD_TRY(hd_dataset_open(&r->ds, &d, e));
    double w = 0;
    for (int i = 0; i < s->n_sizes; i++) w += hd_dataset_bucket_weight(r->ds, i);
    if (!(w > 0))
        return hd_fail(e, HD_EINVAL, "%s: stages[%d]: no image fits any of its sizes", r->c->path,
                       stage);
    r->ds_stage = stage;
    return 0;
}

/* The bucket of micro-batch idx: drawn by the buckets' weights from (seed, idx). */
static int pick_bucket(const run *r, uint64_t idx) {
    int n = hd_dataset_n_buckets(r->ds);
    double total = 0;
    for (int i = 0; i < n; i++) total += hd_dataset_bucket_weight(r->ds, i);
    hd_prng p;
    hd_prng_seed(&p, hd_prng_derive(hd_prng_derive(r->c->seed, idx), STREAM_BUCKET));
    double u = hd_prng_uniform(&p) * total;
    for (int i = 0; i < n; i++) {
        double w = hd_dataset_bucket_weight(r->ds, i);
        if (w > 0 && u < w) return i;
        u -= w;
    }
    for (int i = n - 1; i >= 0; i--)
        if (hd_dataset_bucket_weight(r->ds, i) > 0) return i;
    return 0;
}

/* ---- one step ------------------------------------------------------------------------------ */

static int micro_batch(run *r, uint64_t idx, double *img, double *lm, hd_error *e) {
    const hd_train_config *c = r->c;
    hd_train_batch *b = &r->b;
    int bucket = pick_bucket(r, idx);
    HD_TRY(hd_train_batch_fill(b, c, r->ds, &r->tx, bucket, idx * (uint64_t)c->batch, c->batch,
                               r->with_lm, r->V, e));
    HD_TRY(hd_uit_train_forward(r->tm, b->s, b->n, b->pred, r->with_lm ? b->logits : NULL, e));
    size_t per = (size_t)(b->L * b->P);
    double scale = 1.0 / ((double)b->n * c->accum), sum = 0;
    for (int i = 0; i < b->n; i++)
        sum += hd_train_image_loss(b->pred + i * per, b->x0 + i * per, per, b->sigma[i],
                                   c->objective.sigma_min, scale, b->dpred + i * per);
    *img = sum / b->n;
    *lm = 0;
    if (r->with_lm) {
        double cnt = b->lm_count ? (double)b->lm_count : 1.0;
        double tot = hd_train_lm_loss(b->logits, r->V, b->lm_target, b->lm_mask, b->lm_rows,
                                      c->objective.lm_weight / (cnt * c->accum), b->dlogits);
        *lm = tot / cnt;
    }
    if (!isfinite(*img) || !isfinite(*lm))
        return hd_fail(e, HD_EINVAL, "%s: step %lld: the loss is not finite (lower "
                       "optimizer.lr?)", c->path, (long long)r->step + 1);
    HD_TRY(hd_uit_train_backward(r->tm, b->dpred, r->with_lm ? b->dlogits : NULL, e));
    return hd_backend_status(r->be, e);
}

static int hist_add(run *r, double loss, hd_error *e) {
    if (r->hist_n == r->hist_cap) {
        int64_t cap = r->hist_cap ? 2 * r->hist_cap : 1024;
        int64_t *s = realloc(r->hist_step, (size_t)cap * sizeof *s);
        if (s) r->hist_step = s;
        double *l = realloc(r->hist_loss, (size_t)cap * sizeof *l);
        if (l) r->hist_loss = l;
        if (!s || !l) return hd_fail(e, HD_ENOMEM, "loss history: out of memory");
        r->hist_cap = cap;
    }
    r->hist_step[r->hist_n] = r->step;
    r->hist_loss[r->hist_n++] = loss;
    return 0;
}

static int one_step(run *r, hd_error *e) {
    const hd_train_config *c = r->c;
    double t0 = now_s(), img = 0, lm = 0;
    HD_TRY(open_stage(r, hd_train_stage_of(c, r->step), e));
    for (int a = 0; a < c->accum; a++) {
        double i1, l1;
        HD_TRY(micro_batch(r, (uint64_t)r->step * (uint64_t)c->accum + (uint64_t)a, &i1, &l1, e));
        img += i1 / c->accum;
        lm += l1 / c->accum;
    }
    r->last_lr = hd_train_lr(&c->optim, r->step, r->total);
    r->last_norm = hd_train_optimizer_step(&r->o, &c->optim, r->last_lr, r->step);
    hd_uit_train_zero_grad(r->tm);
    HD_TRY(hd_backend_status(r->be, e));
    r->step++;
    double loss = img + c->objective.lm_weight * lm;
    r->win_loss += loss;
    r->win_img += img;
    r->win_lm += lm;
    r->win_n++;
    r->win_samples += (int64_t)c->batch * c->accum;
    r->win_time += now_s() - t0;
    fprintf(r->csv, "%lld,%.6g,%.6g,%.6g,%.6g,%.6g,%d,%d\n", (long long)r->step, loss, img, lm,
            r->last_lr, r->last_norm, r->b.w, r->b.h);
    return hist_add(r, loss, e);
}

/* ---- what a run writes --------------------------------------------------------------------- */

/* loss.csv: kept up to the resumed step (a resumed run rewrites what came after). */
static int open_csv(run *r, hd_error *e) {
    char path[4200];
    out_path(r, path, sizeof path, "loss.csv");
    char *old = NULL;
    size_t len = 0;
    if (r->step > 0 && hd_read_file(path, 1u << 30, &old, &len, NULL) < 0) old = NULL;
    r->csv = fopen(path, "w");
    if (!r->csv) {
        free(old);
        return hd_fail(e, HD_EIO, "%s: cannot create: %s", path, strerror(errno));
    }
    fprintf(r->csv, "step,loss,loss_img,loss_lm,lr,grad_norm,width,height\n");
    for (char *line = old ? strchr(old, '\n') : NULL; line && line[1]; line = strchr(line, '\n')) {
        line++;
        char *end = strchr(line, '\n');
        long long s = strtoll(line, NULL, 10);
        if (!end || s < 1 || s > r->step) break;
        fwrite(line, 1, (size_t)(end - line + 1), r->csv);
        double loss = strtod(strchr(line, ',') + 1, NULL);
        int64_t keep = r->step;
        r->step = s;
        int rc = hist_add(r, loss, e);
        r->step = keep;
        if (rc < 0) {
            free(old);
            return rc;
        }
        line = end;
    }
    free(old);
    return 0;
}

static int save_checkpoint(run *r, hd_error *e) {
    char path[4200];
    out_path(r, path, sizeof path, "checkpoint.safetensors");
    fflush(r->csv);
    HD_TRY(hd_train_checkpoint_save(path, &r->o, r->step, r->c->seed, e));
    char png[4200];
    out_path(r, png, sizeof png, "loss.png");
    HD_TRY(hd_plot_loss(png, r->hist_step, r->hist_loss, r->hist_n, e));
    emit(r, HD_TRAIN_EV_CHECKPOINT, path, NULL);
    return 0;
}

static int export_model(run *r, char *dir, size_t n, hd_error *e) {
    out_path(r, dir, n, "model");
    return hd_train_export(dir, r->c, &r->o, r->tok_json, r->tok_len, e);
}

/* Export, load it back like a user would, then the sample grid and/or the judge. */
static int look(run *r, int samples, int eval, hd_error *e) {
    const hd_train_config *c = r->c;
    char dir[4200];
    HD_TRY(export_model(r, dir, sizeof dir, e));
    hd_model *m = NULL;
    hd_model_options mo = {.backend = "cpu", .n_threads = r->opt->threads > 0 ? r->opt->threads : c->threads};
    HD_TRY(hd_model_load(&m, dir, &mo, e));
    int rc = 0;
    if (samples && c->n_prompts > 0) {
        hd_image im[HD_TRAIN_MAX_PROMPTS] = {{0}};
        char path[4200], name[64];
        snprintf(name, sizeof name, "samples/step-%06lld.png", (long long)r->step);
        out_path(r, path, sizeof path, name);
        rc = hd_train_draw_samples(m, c->prompts, c->n_prompts, im, e);
        if (rc == 0) rc = hd_plot_grid(path, im, c->n_prompts, 4, e);
        for (int i = 0; i < c->n_prompts; i++) hd_image_free(&im[i]);
        if (rc == 0) emit(r, HD_TRAIN_EV_SAMPLES, path, NULL);
    }
    if (rc == 0 && eval && c->data_kind == HD_DATASET_SHAPES) {
        hd_shapes_tally t;
        rc = hd_train_judge_shapes(m, c->eval_n, c->eval_seed, &t, e);
        char path[4200];
        out_path(r, path, sizeof path, "eval.csv");
        struct stat sb;
        int fresh = stat(path, &sb) != 0;
        FILE *f = rc == 0 ? fopen(path, "a") : NULL;
        if (rc == 0 && !f) rc = hd_fail(e, HD_EIO, "%s: cannot open: %s", path, strerror(errno));
        if (f) {
            if (fresh) fprintf(f, "step,n,overall,single,position,counting,relation,two\n");
            fprintf(f, "%lld,%d", (long long)r->step, c->eval_n);
            fprintf(f, ",%.4f", hd_shapes_tally_fraction(&t, HD_N_CATEGORIES));
            for (int k = 0; k < HD_N_CATEGORIES; k++)
                fprintf(f, ",%.4f", hd_shapes_tally_fraction(&t, k));
            fprintf(f, "\n");
            if (fclose(f) != 0) rc = hd_fail(e, HD_EIO, "%s: write failed", path);
        }
        if (rc == 0) emit(r, HD_TRAIN_EV_EVAL, path, &t);
    }
    hd_model_free(m);
    return rc;
}

static int due(int64_t step, int64_t every) { return every > 0 && step % every == 0; }

/* ---- the run ------------------------------------------------------------------------------- */

static int make_dirs(const run *r, hd_error *e) {
    char path[4200];
    const char *dirs[] = {r->c->out, "samples"};
    for (int i = 0; i < 2; i++) {
        if (i == 0)
            snprintf(path, sizeof path, "%s", dirs[0]);
        else
            out_path(r, path, sizeof path, dirs[i]);
        if (mkdir(path, 0755) < 0 && errno != EEXIST)
            return hd_fail(e, HD_EIO, "%s: cannot create the run directory: %s", path,
                           strerror(errno));
    }
    return 0;
}

static int start(run *r, hd_error *e) {
    const hd_train_config *c = r->c;
    HD_TRY(make_dirs(r, e));
    char ck[4200];
    out_path(r, ck, sizeof ck, "checkpoint.safetensors");
    struct stat sb;
    int have = stat(ck, &sb) == 0;
    if (have && !r->opt->resume && !r->opt->restart)
        return hd_fail(e, HD_EINVAL, "%s: a run is already there (resume it with --resume, or "
                       "start over with --restart)", ck);
    HD_TRY(load_tokenizer(r, e));
    HD_TRY(build_model(r, e));
    r->total = hd_train_total_steps(c);
    if (r->opt->resume && have) {
        HD_TRY(hd_train_checkpoint_load(ck, &r->o, c->seed, &r->step, e));
        if (r->step > r->total)
            return hd_fail(e, HD_EINVAL, "%s: step %lld is past the recipe's %lld steps", ck,
                           (long long)r->step, (long long)r->total);
    }
    HD_TRY(open_stage(r, hd_train_stage_of(c, r->step), e));
    HD_TRY(open_csv(r, e));
    emit(r, HD_TRAIN_EV_START, NULL, NULL);
    return 0;
}

static int loop(run *r, hd_error *e) {
    const hd_train_config *c = r->c;
    int64_t end = r->opt->until > 0 && r->opt->until < r->total ? r->opt->until : r->total;
    while (r->step < end) {
        HD_TRY(one_step(r, e));
        if (due(r->step, c->log_every) || r->step == end) {
            emit(r, HD_TRAIN_EV_LOG, NULL, NULL);
            r->win_loss = r->win_img = r->win_lm = r->win_time = 0;
            r->win_n = r->win_samples = 0;
        }
        int last = r->step == r->total;
        if (due(r->step, c->checkpoint_every) && !last) HD_TRY(save_checkpoint(r, e));
        int s = due(r->step, c->sample_every) || (last && c->sample_every > 0);
        int v = due(r->step, c->eval_every) || (last && c->eval_every > 0);
        if (s || v) HD_TRY(look(r, s, v, e));
        if (r->opt->stop && *r->opt->stop) {
            HD_TRY(save_checkpoint(r, e));
            return hd_fail(e, HD_ECANCELLED, "stopped at step %lld (checkpoint written; "
                           "--resume continues)", (long long)r->step);
        }
    }
    HD_TRY(save_checkpoint(r, e));
    if (r->step == r->total) {
        char dir[4200];
        HD_TRY(export_model(r, dir, sizeof dir, e));
        emit(r, HD_TRAIN_EV_DONE, dir, NULL);
    }
    return 0;
}

int hd_train_run(const hd_train_config *c, const hd_train_options *opt, hd_error *e) {
    run r;
    memset(&r, 0, sizeof r);
    r.c = c;
    r.opt = opt;
    r.ds_stage = -1;
    r.t_start = now_s();
    int rc = start(&r, e);
    if (rc == 0) rc = loop(&r, e);
    if (r.csv && fclose(r.csv) != 0 && rc == 0)
        rc = hd_fail(e, HD_EIO, "%s/loss.csv: write failed", c->out);
    hd_train_batch_free(&r.b);
    hd_dataset_close(r.ds);
    hd_train_optimizer_free(&r.o);
    hd_uit_train_free(r.tm);
    if (r.be) hd_backend_destroy(r.be);
    hd_tokenizer_free(r.tok);
    free(r.tok_json);
    free(r.hist_step);
    free(r.hist_loss);
    return rc;
}
