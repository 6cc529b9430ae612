/* check-golden, forward cases: every `forward.<case>.*` group of golden.safetensors is one
 * transformer call of the official code (float64 reference). We rebuild the model from the
 * golden directory, run the uncached forward and the prefix-cached forward, and compare x_pred,
 * every hidden_after_layer<i> present and, for reference-image cases, the ViT outputs.
 * Which rows x_pred holds is read from its row count: S (every row) or the vinput_mask rows. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "golden/golden.h"
#include "io/config.h"
#include "model/uit.h"
#include "model/vit.h"

#define FWD_TOL 1e-4
#define MAX_CASES 1024

/* The model, built once for all cases on first use. */
typedef struct fwd_model {
    int tried, ok;
    char err[1024];
    hd_config cfg;
    hd_safetensors st;
    hd_backend *be;
    hd_uit *uit;
    int vit_state; /* 0 not tried, 1 ready, -1 the model has no vision tower, -2 failed */
    char vit_err[1024];
    hd_vit *vit;
} fwd_model;

static void model_load(fwd_model *fm, const golden_ctx *g) {
    hd_error e = {0};
    fm->tried = 1;
    hd_backend_options opt = {0};
    opt.n_threads = g->n_threads;
    opt.gemm_int8 = g->int8;
    opt.gemm_bf16 = g->bf16;
    if (hd_config_load_dir(&fm->cfg, g->dir, &e) < 0 || hd_st_open_dir(&fm->st, g->weights_dir ? g->weights_dir : g->dir, &e) < 0 ||
        hd_backend_create(&fm->be, g->backend ? g->backend : "cpu", &opt, &e) < 0 ||
        hd_uit_create(&fm->uit, fm->be, &fm->cfg, &fm->st, &e) < 0) {
        snprintf(fm->err, sizeof fm->err, "%s", e.msg);
        return;
    }
    fm->ok = 1;
}

static void vit_load(fwd_model *fm) {
    hd_error e = {0};
    int rc = hd_vit_create(&fm->vit, fm->be, &fm->cfg, &fm->st, &e);
    if (rc == HD_EUNSUPPORTED) fm->vit_state = -1;
    else if (rc < 0) fm->vit_state = -2;
    else fm->vit_state = 1;
    snprintf(fm->vit_err, sizeof fm->vit_err, "%s", rc < 0 ? e.msg : "");
}

static void model_free(fwd_model *fm) {
    if (fm->vit) hd_vit_free(fm->vit);
    hd_uit_free(fm->uit);
    if (fm->be) hd_backend_destroy(fm->be);
    hd_st_close(&fm->st);
}

/* ---- reading one case --------------------------------------------------------------------- */

typedef struct fwd_case {
    const char *name;
    char prefix[512];
    int64_t T, S, P, A, R; /* text, sequence, patch rows, causal prefix, x_pred rows */
    int32_t *ids, *pos, *out_rows;
    uint8_t *types;
    float *vinputs;
    double t;
    double *x_pred;      /* [R, patch_dim] */
    float *got;          /* [R, patch_dim] */
    int n_hidden;        /* number of layers with a hidden_after_layer<i> */
    double **hidden_ref; /* [n_hidden] golden [S, D] or NULL */
    float **hidden_got;  /* [n_hidden] captured [S, D] */
    hd_vit_output vit;
    int have_vit;
} fwd_case;

static const hd_st_tensor *find(const golden_ctx *g, const fwd_case *c, const char *what) {
    char name[640];
    snprintf(name, sizeof name, "%s%s", c->prefix, what);
    return hd_st_find(&g->golden, name);
}

static int read_ids(const hd_st_tensor *t, int32_t *out, int64_t n, int64_t lo, int64_t hi,
                    char *err, size_t errn) {
    int64_t *tmp = malloc((size_t)(n > 0 ? n : 1) * sizeof *tmp);
    hd_error e = {0};
    if (!tmp) return snprintf(err, errn, "out of memory"), -1;
    if (hd_st_read_i64(t, tmp, (size_t)n, &e) < 0) {
        snprintf(err, errn, "%s", e.msg);
        free(tmp);
        return -1;
    }
    for (int64_t i = 0; i < n; i++) {
        if (tmp[i] < lo || tmp[i] > hi) {
            snprintf(err, errn, "tensor '%s': value %lld at %lld out of range", t->name,
                     (long long)tmp[i], (long long)i);
            free(tmp);
            return -1;
        }
        out[i] = (int32_t)tmp[i];
    }
    free(tmp);
    return 0;
}

static int read_f64(const hd_st_tensor *t, double **out, int64_t n, char *err, size_t errn) {
    hd_error e = {0};
    *out = malloc((size_t)(n > 0 ? n : 1) * sizeof **out);
    if (!*out) return snprintf(err, errn, "out of memory"), -1;
    if (hd_st_read_f64(t, *out, (size_t)n, &e) < 0) return snprintf(err, errn, "%s", e.msg), -1;
    return 0;
}

static int read_f32(const hd_st_tensor *t, float **out, int64_t n, char *err, size_t errn) {
    hd_error e = {0};
    *out = malloc((size_t)(n > 0 ? n : 1) * sizeof **out);
    if (!*out) return snprintf(err, errn, "out of memory"), -1;
    if (hd_st_read_f32(t, *out, (size_t)n, &e) < 0) return snprintf(err, errn, "%s", e.msg), -1;
    return 0;
}

static void case_free(fwd_model *fm, fwd_case *c) {
    free(c->ids);
    free(c->pos);
    free(c->out_rows);
    free(c->types);
    free(c->vinputs);
    free(c->x_pred);
    free(c->got);
    for (int i = 0; i < c->n_hidden; i++) {
        if (c->hidden_ref) free(c->hidden_ref[i]);
        if (c->hidden_got) free(c->hidden_got[i]);
    }
    free(c->hidden_ref);
    free(c->hidden_got);
    if (c->have_vit) hd_vit_output_free(fm->be, &c->vit);
}

/* Loads the sequence, inputs and expected outputs of one case. */
static int case_load(const golden_ctx *g, const fwd_model *fm, fwd_case *c, char *err,
                     size_t errn) {
    const hd_uit *m = fm->uit;
    const char *req[] = {"input_ids", "position_ids", "token_types", "vinputs", "timestep",
                         "x_pred"};
    const hd_st_tensor *ts[6];
    for (int i = 0; i < 6; i++)
        if (!(ts[i] = find(g, c, req[i])))
            return snprintf(err, errn, "missing tensor '%s%s'", c->prefix, req[i]), -1;
    c->T = ts[0]->numel;
    c->S = ts[2]->numel;
    c->P = c->S - c->T;
    if (c->T < 1 || c->P < 0 || ts[1]->numel != 3 * c->S || c->S > (INT64_C(1) << 26) ||
        ts[3]->numel != c->P * m->patch_dim || ts[4]->numel != 1 ||
        ts[5]->numel % m->patch_dim != 0)
        return snprintf(err, errn, "inconsistent shapes (T %lld, S %lld, vinputs %lld, x_pred "
                        "%lld values)", (long long)c->T, (long long)c->S, (long long)ts[3]->numel,
                        (long long)ts[5]->numel), -1;
    c->R = ts[5]->numel / m->patch_dim;
    c->ids = malloc((size_t)c->T * sizeof *c->ids);
    c->pos = malloc((size_t)(3 * c->S) * sizeof *c->pos);
    c->types = malloc((size_t)c->S);
    c->out_rows = malloc((size_t)(c->R > 0 ? c->R : 1) * sizeof *c->out_rows);
    c->got = malloc((size_t)(c->R > 0 ? c->R : 1) * (size_t)m->patch_dim * sizeof *c->got);
    int32_t *types32 = malloc((size_t)c->S * sizeof *types32);
    if (!c->ids || !c->pos || !c->types || !c->out_rows || !c->got || !types32) {
        free(types32);
        return snprintf(err, errn, "out of memory"), -1;
    }
    int rc = read_ids(ts[0], c->ids, c->T, 0, INT32_MAX, err, errn);
    if (rc == 0) rc = read_ids(ts[1], c->pos, 3 * c->S, INT32_MIN, INT32_MAX, err, errn);
    if (rc == 0) rc = read_ids(ts[2], types32, c->S, 0, 1, err, errn);
    for (int64_t s = 0; rc == 0 && s < c->S; s++) c->types[s] = (uint8_t)types32[s];
    free(types32);
    if (rc < 0) return rc;
    hd_error e = {0};
    if (hd_uit_causal_prefix(c->types, c->S, &c->A, &e) < 0)
        return snprintf(err, errn, "%s", e.msg), -1;
    if (read_f32(ts[3], &c->vinputs, c->P * m->patch_dim, err, errn) < 0) return -1;
    double *tv = NULL;
    if (read_f64(ts[4], &tv, 1, err, errn) < 0) return free(tv), -1;
    c->t = tv[0];
    free(tv);
    if (read_f64(ts[5], &c->x_pred, c->R * m->patch_dim, err, errn) < 0) return -1;

    /* which rows x_pred holds: all S, or the vinput_mask rows (the first R of them) */
    if (c->R == c->S) {
        for (int64_t i = 0; i < c->R; i++) c->out_rows[i] = (int32_t)i;
    } else {
        const hd_st_tensor *vm = find(g, c, "vinput_mask");
        int32_t *mask = malloc((size_t)c->S * sizeof *mask);
        if (!mask) return snprintf(err, errn, "out of memory"), -1;
        if (vm && vm->numel == c->S) {
            if (read_ids(vm, mask, c->S, 0, 1, err, errn) < 0) return free(mask), -1;
        } else {
            for (int64_t s = 0; s < c->S; s++) mask[s] = s >= c->T; /* patch rows */
        }
        int64_t k = 0;
        for (int64_t s = 0; s < c->S && k < c->R; s++)
            if (mask[s]) c->out_rows[k++] = (int32_t)s;
        free(mask);
        if (k != c->R)
            return snprintf(err, errn, "x_pred has %lld rows but vinput_mask selects %lld",
                            (long long)c->R, (long long)k), -1;
    }

    /* hidden_after_layer<i>, any i present */
    int max_layer = -1;
    char hp[600];
    snprintf(hp, sizeof hp, "%shidden_after_layer", c->prefix);
    size_t hpl = strlen(hp);
    for (int i = 0; i < g->golden.n_tensors; i++) {
        const char *nm = g->golden.tensors[i].name;
        if (strncmp(nm, hp, hpl) != 0) continue;
        char *end = NULL;
        long l = strtol(nm + hpl, &end, 10);
        if (end != nm + hpl && *end == 0 && l >= 0 && l < m->cfg.num_layers && l > max_layer)
            max_layer = (int)l;
    }
    c->n_hidden = max_layer + 1;
    if (c->n_hidden > 0) {
        c->hidden_ref = calloc((size_t)c->n_hidden, sizeof *c->hidden_ref);
        c->hidden_got = calloc((size_t)c->n_hidden, sizeof *c->hidden_got);
        if (!c->hidden_ref || !c->hidden_got) return snprintf(err, errn, "out of memory"), -1;
        for (int l = 0; l < c->n_hidden; l++) {
            char nm[64];
            snprintf(nm, sizeof nm, "hidden_after_layer%d", l);
            const hd_st_tensor *ht = find(g, c, nm);
            if (!ht) continue;
            if (ht->numel != c->S * m->dim)
                return snprintf(err, errn, "tensor '%s': %lld values, expected S x D = %lld",
                                ht->name, (long long)ht->numel, (long long)(c->S * m->dim)), -1;
            if (read_f64(ht, &c->hidden_ref[l], c->S * m->dim, err, errn) < 0) return -1;
            c->hidden_got[l] = malloc((size_t)(c->S * m->dim) * sizeof(float));
            if (!c->hidden_got[l]) return snprintf(err, errn, "out of memory"), -1;
        }
    }
    return 0;
}

/* ---- the ViT part of a reference case ----------------------------------------------------- */

/* Runs the ViT on the case's pixel_values; appends its comparison to `detail`. Returns 0, or -1
 * with err set. *worst receives the largest relative error among the ViT outputs. */
static int case_vit(const golden_ctx *g, fwd_model *fm, fwd_case *c, double *worst,
                    char *detail, size_t dn, char *err, size_t errn) {
    const hd_st_tensor *pv = find(g, c, "pixel_values"), *gt = find(g, c, "image_grid_thw");
    if (!gt || gt->numel % 3 != 0 || gt->numel == 0 || gt->numel > 3 * 4096)
        return snprintf(err, errn, "missing or malformed image_grid_thw"), -1;
    int n_img = (int)(gt->numel / 3);
    int64_t(*grid)[3] = malloc((size_t)n_img * sizeof *grid);
    float *pix = NULL;
    hd_error e = {0};
    int rc = -1;
    if (!grid) return snprintf(err, errn, "out of memory"), -1;
    if (hd_st_read_i64(gt, &grid[0][0], (size_t)gt->numel, &e) < 0) {
        snprintf(err, errn, "%s", e.msg);
        goto done;
    }
    if (read_f32(pv, &pix, pv->numel, err, errn) < 0) goto done;
    if (hd_vit_forward(fm->vit, pix, (const int64_t(*)[3])grid, n_img, &c->vit, &e) < 0) {
        snprintf(err, errn, "ViT: %s", e.msg);
        goto done;
    }
    c->have_vit = 1;
    *worst = 0;
    for (int i = -1; i < c->vit.n_deepstack; i++) {
        char nm[64];
        if (i < 0) snprintf(nm, sizeof nm, "vision_embeds");
        else snprintf(nm, sizeof nm, "vision_deepstack_%d", i);
        const hd_st_tensor *ref = find(g, c, nm);
        if (!ref) continue;
        const hd_tensor *got = i < 0 ? &c->vit.embeds : &c->vit.deepstack[i];
        int64_t n = got->rows * got->cols;
        if (ref->numel != n) {
            snprintf(err, errn, "%s: ViT gave [%lld, %lld], golden has %lld values", nm,
                     (long long)got->rows, (long long)got->cols, (long long)ref->numel);
            goto done;
        }
        double *rv = NULL;
        float *gv = malloc((size_t)(n > 0 ? n : 1) * sizeof *gv);
        if (!gv || read_f64(ref, &rv, n, err, errn) < 0) {
            free(gv);
            free(rv);
            if (!gv) snprintf(err, errn, "out of memory");
            goto done;
        }
        fm->be->ops->read(fm->be, got, gv);
        double r = golden_rel_err(gv, rv, (size_t)n);
        free(gv);
        free(rv);
        if (!(r <= *worst)) *worst = r;
        size_t used = strlen(detail);
        snprintf(detail + used, dn - used, ", %s %.3g", nm, r);
    }
    rc = 0;
done:
    free(grid);
    free(pix);
    return rc;
}

/* ---- running one case --------------------------------------------------------------------- */

typedef struct capture_ctx {
    fwd_case *c;
    int64_t dim;
} capture_ctx;

static void capture(void *ctx, int layer, int64_t row0, int64_t n_rows, const float *hidden) {
    capture_ctx *cc = ctx;
    fwd_case *c = cc->c;
    if (layer < 0 || layer >= c->n_hidden || !hidden || !c->hidden_got[layer]) return;
    if (row0 < 0 || row0 + n_rows > c->S) return;
    memcpy(c->hidden_got[layer] + row0 * cc->dim, hidden,
           (size_t)(n_rows * cc->dim) * sizeof(float));
}

static void run_case(golden_ctx *g, fwd_model *fm, const char *name) {
    fwd_case c = {0};
    char err[1200] = "", detail[1024] = "";
    c.name = name;
    snprintf(c.prefix, sizeof c.prefix, "forward.%s.", name);
    hd_uit *m = fm->uit;
    hd_error e = {0};
    hd_prefix_cache pc = {0};
    float *cached = NULL;
    if (case_load(g, fm, &c, err, sizeof err) < 0) goto fail;

    double vit_err = 0;
    if (find(g, &c, "pixel_values")) {
        if (!fm->vit_state) vit_load(fm);
        /* a case with pixel_values needs the vision tower; its absence is a failure */
        if (fm->vit_state < 0) {
            snprintf(err, sizeof err, "ViT: %s", fm->vit_err);
            goto fail;
        }
        if (case_vit(g, fm, &c, &vit_err, detail, sizeof detail, err, sizeof err) < 0) goto fail;
    }
    hd_uit_seq seq = {c.ids, c.T, c.S, c.pos, c.A, c.have_vit ? &c.vit : NULL};

    /* uncached: every row, hidden states captured */
    capture_ctx cc = {&c, m->dim};
    hd_uit_probe probe = {capture, &cc, c.n_hidden};
    if (hd_uit_forward(m, &seq, c.vinputs, c.t, c.out_rows, c.R, c.got, &probe, &e) < 0) {
        snprintf(err, sizeof err, "forward: %s", e.msg);
        goto fail;
    }
    size_t pd = (size_t)m->patch_dim;
    double x_err = golden_rel_err(c.got, c.x_pred, (size_t)c.R * pd), worst = x_err;
    char hid[512] = "";
    for (int l = 0; l < c.n_hidden; l++) {
        if (!c.hidden_ref[l]) continue;
        double r = golden_rel_err(c.hidden_got[l], c.hidden_ref[l], (size_t)(c.S * m->dim));
        if (!(r <= worst)) worst = r;
        size_t used = strlen(hid);
        snprintf(hid + used, sizeof hid - used, "%shidden_after_layer%d %.3g", used ? ", " : "",
                 l, r);
    }

    /* cached: prefix once, then only the generation rows; compared on the output rows >= A */
    int64_t n_gen = 0;
    for (int64_t i = 0; i < c.R; i++) n_gen += c.out_rows[i] >= c.A;
    int32_t *gen_rows = malloc((size_t)(n_gen > 0 ? n_gen : 1) * sizeof *gen_rows);
    double *gen_ref = malloc((size_t)(n_gen > 0 ? n_gen : 1) * pd * sizeof *gen_ref);
    cached = malloc((size_t)(n_gen > 0 ? n_gen : 1) * pd * sizeof *cached);
    if (!gen_rows || !gen_ref || !cached) {
        free(gen_rows);
        free(gen_ref);
        snprintf(err, sizeof err, "out of memory");
        goto fail;
    }
    for (int64_t i = 0, k = 0; i < c.R; i++)
        if (c.out_rows[i] >= c.A) {
            gen_rows[k] = c.out_rows[i];
            memcpy(gen_ref + (size_t)k * pd, c.x_pred + (size_t)i * pd, pd * sizeof *gen_ref);
            k++;
        }
    int rc = hd_uit_prefix_build(m, &seq, &pc, NULL, &e);
    if (rc == 0)
        rc = hd_uit_forward_cached(m, &pc, &seq, c.vinputs, c.t, gen_rows, n_gen, cached, NULL,
                                   &e);
    double cached_err = rc == 0 ? golden_rel_err(cached, gen_ref, (size_t)n_gen * pd) : 0;
    free(gen_rows);
    free(gen_ref);
    if (rc < 0) {
        snprintf(err, sizeof err, "cached forward: %s", e.msg);
        goto fail;
    }
    if (!(cached_err <= worst)) worst = cached_err;
    if (!(vit_err <= worst)) worst = vit_err;
    double tol = g->fwd_tol > 0 ? g->fwd_tol : FWD_TOL;
    golden_result(g, worst <= tol, "forward", name, "rel_err=%.3g (%s%scached %.3g%s)", x_err,
                  hid, hid[0] ? ", " : "", cached_err, detail);
    goto done;
fail:
    golden_result(g, 0, "forward", name, "%s", err);
done:
    free(cached);
    hd_prefix_cache_free(&pc);
    case_free(fm, &c);
}

void golden_run_forward(golden_ctx *g) {
    char *names[MAX_CASES];
    int n = golden_case_names(&g->golden, "forward.", names, MAX_CASES);
    fwd_model fm = {0};
    for (int i = 0; i < n; i++) {
        if (!fm.tried) model_load(&fm, g);
        if (!fm.ok) golden_result(g, 0, "forward", names[i], "model: %s", fm.err);
        else run_case(g, &fm, names[i]);
        free(names[i]);
    }
    model_free(&fm);
}
