/* Training the Unified Transformer (spec 03): the trainable model, a forward over a packed batch
 * that saves what the backward needs, and the backward right under it (llm.c's train_gpt2.c
 * layout: one struct of saved activations mirroring the forward, walked in reverse).
 *
 *   hd_uit_train_create    float32 weights (from a checkpoint or a seeded init) and gradients
 *   plan_batch             host index lists of the packed batch (row offsets, token rows, ...)
 *   embed_forward          token rows, timestep rows, bottleneck patch rows  (spec 03 §1-3)
 *   layer_forward          one decoder layer, saving its activations          (§4, §5, §7)
 *   head_forward           final norm, patch head on the target rows, lm_head on the text rows
 *   head_backward, layer_backward, embed_backward: the same, in reverse.
 *
 * Packed batch: sample b owns rows [off_b, off_b + S_b); its text rows come first, then its L_b
 * target patch rows. Every linear runs once over all rows; attention runs per sample with the
 * hybrid mask {q_offset 0, n_causal A_b}. */
#include "model/uit_train.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "model/timestep.h"
#include "sample/rng.h"

#define MAX_ROWS (INT64_C(1) << 26) /* packed rows are indexed with int32 */

enum slot_kind { KIND_MATRIX, KIND_NORM, KIND_BIAS, KIND_ZERO };

/* Saved activations of one decoder layer, [N, ·] with N the packed rows. */
typedef struct layer_acts {
    hd_tensor x_in;         /* residual stream entering the layer */
    hd_tensor h_attn;       /* RMSNorm(x_in) */
    hd_tensor q_raw, k_raw; /* projections before QK-norm */
    hd_tensor q, k, v;      /* q, k after QK-norm and rotary; v */
    hd_tensor att, lse;     /* attention output [N, H·hd], log-sum-exp [N, H] */
    hd_tensor x_mid;        /* residual after the attention block */
    hd_tensor h_mlp;        /* RMSNorm(x_mid) */
    hd_tensor gate, up;     /* SwiGLU inputs [N, F] */
} layer_acts;

/* Everything the forward saves and the backward's scratch; capacities in rows. */
typedef struct train_acts {
    int64_t rows, patches, tms, lm, toks;
    layer_acts *layers;
    hd_tensor x_out, xf;          /* last layer's output, its final RMSNorm [N, D] */
    hd_tensor cos, sin, nsin;     /* rotary tables [N, hd]; nsin = −sin (the transpose) */
    hd_tensor tok;                /* [toks, D] gathered token embeddings */
    hd_tensor tfreq, th_pre, th_act, temb; /* timestep MLP per <|tms_token|> row */
    hd_tensor vin, bott, xp;      /* patch rows [P, patch_dim], [P, bottleneck], [P, D] */
    hd_tensor sel, pred;          /* head input rows [P, D], prediction [P, patch_dim] */
    hd_tensor lsel, logits;       /* lm rows [n_lm, D], logits [n_lm, V] */
    hd_tensor dx, dh;             /* backward scratch [N, D] */
    hd_tensor datt, dq, dk, dv;   /* [N, H·hd], [N, H·hd], [N, Hkv·hd] ×2 */
    hd_tensor dgate, dup;         /* [N, F]; dup doubles as the forward's SwiGLU product */
    hd_tensor dth, dbott;         /* [tms, D], [P, bottleneck] */
    float *host_cos, *host_sin, *host_tfreq;
} train_acts;

/* The last forward's packed batch (host memory). */
typedef struct train_plan {
    int n;                         /* samples */
    int64_t rows, patches, n_tms, n_lm, n_tok;
    int64_t *off, *A;              /* per sample: first row, causal rows */
    int32_t *tok_rows, *tok_ids;   /* text rows that take a token embedding */
    int32_t *tms_rows, *patch_rows, *lm_rows;
    int64_t cap_n, cap_rows;
    int has_logits;
    int valid;                     /* a forward ran since the last failure */
} train_plan;

/* Gradients mirror the model's weights. */
typedef struct train_grads {
    hd_tensor embed_tokens, t_fc1_w, t_fc1_b, t_fc2_w, t_fc2_b;
    hd_tensor x_proj1_w, x_proj2_w, x_proj2_b, final_norm, head_w, head_b, lm_head;
    hd_uit_layer *layers;
} train_grads;

struct hd_uit_train {
    hd_uit *m;
    hd_backend *be;
    int with_lm;
    hd_tensor lm_head;           /* [V, D] when with_lm */
    train_grads g;
    hd_uit_param *params;
    int n_params, cap_params;
    int *kinds;                  /* enum slot_kind per param */
    train_acts a;
    train_plan p;
};

/* ---- parameters ----------------------------------------------------------------------------- */

static int add_param(hd_uit_train *tm, const char *name, hd_tensor *w, hd_tensor *g, int64_t rows,
                     int64_t cols, int ndim, int kind, hd_error *e) {
    if (tm->n_params == tm->cap_params) {
        int cap = tm->cap_params ? 2 * tm->cap_params : 64;
        hd_uit_param *p = realloc(tm->params, (size_t)cap * sizeof *p);
        if (!p) return hd_fail(e, HD_ENOMEM, "model: out of memory for the parameter list");
        tm->params = p;
        int *k = realloc(tm->kinds, (size_t)cap * sizeof *k);
        if (!k) return hd_fail(e, HD_ENOMEM, "model: out of memory for the parameter list");
        tm->kinds = k;
        tm->cap_params = cap;
    }
    hd_uit_param *p = &tm->params[tm->n_params];
    memset(p, 0, sizeof *p);
    snprintf(p->name, sizeof p->name, "%s", name);
    p->w = w;
    p->ndim = ndim;
    p->decay = kind == KIND_MATRIX || kind == KIND_ZERO ? ndim == 2 : 0;
    /* the grad tensor is allocated here and owned by tm->g; the param holds a view of it */
    int rc = tm->be->ops->alloc(tm->be, g, HD_F32, rows, cols, e);
    if (rc < 0) return hd_error_prefix(e, "model: gradient of '%s'", name);
    tm->be->ops->fill(tm->be, g, 0.0f);
    /* the weight's shape is recorded now; its memory is allocated when it is filled */
    w->rows = rows;
    w->cols = cols;
    p->grad = *g;
    p->grad.owned = 0;
    tm->kinds[tm->n_params++] = kind;
    return 0;
}

/* Lists every trainable tensor in checkpoint order (the order of the random initialisation). */
static int list_params(hd_uit_train *tm, hd_error *e) {
    hd_uit *m = tm->m;
    train_grads *g = &tm->g;
    int64_t D = m->dim, V = m->cfg.vocab_size, hd = m->cfg.head_dim;
    char n[160];
    g->layers = calloc((size_t)m->cfg.num_layers, sizeof *g->layers);
    if (!g->layers) return hd_fail(e, HD_ENOMEM, "model: out of memory for the gradients");
#define P(name, field, r, c, nd, kind) HD_TRY(add_param(tm, name, &m->field, &g->field, r, c, nd, kind, e))
    P("model.language_model.embed_tokens.weight", embed_tokens, V, D, 2, KIND_MATRIX);
    for (int i = 0; i < m->cfg.num_layers; i++) {
        hd_uit_layer *L = &m->layers[i], *G = &g->layers[i];
#define PL(suffix, field, r, c, nd, kind)                                                    \
    do {                                                                                     \
        snprintf(n, sizeof n, "model.language_model.layers.%d.%s", i, suffix);              \
        HD_TRY(add_param(tm, n, &L->field, &G->field, r, c, nd, kind, e));                   \
    } while (0)
        PL("input_layernorm.weight", attn_norm, 1, D, 1, KIND_NORM);
        PL("self_attn.q_proj.weight", wq, m->q_dim, D, 2, KIND_MATRIX);
        PL("self_attn.k_proj.weight", wk, m->kv_dim, D, 2, KIND_MATRIX);
        PL("self_attn.v_proj.weight", wv, m->kv_dim, D, 2, KIND_MATRIX);
        PL("self_attn.o_proj.weight", wo, D, m->q_dim, 2, KIND_MATRIX);
        PL("self_attn.q_norm.weight", q_norm, 1, hd, 1, KIND_NORM);
        PL("self_attn.k_norm.weight", k_norm, 1, hd, 1, KIND_NORM);
        PL("post_attention_layernorm.weight", mlp_norm, 1, D, 1, KIND_NORM);
        PL("mlp.gate_proj.weight", w_gate, m->ffn_dim, D, 2, KIND_MATRIX);
        PL("mlp.up_proj.weight", w_up, m->ffn_dim, D, 2, KIND_MATRIX);
        PL("mlp.down_proj.weight", w_down, D, m->ffn_dim, 2, KIND_MATRIX);
#undef PL
    }
    P("model.language_model.norm.weight", final_norm, 1, D, 1, KIND_NORM);
    P("model.t_embedder1.mlp.0.weight", t_fc1_w, D, m->freq_dim, 2, KIND_MATRIX);
    P("model.t_embedder1.mlp.0.bias", t_fc1_b, 1, D, 1, KIND_BIAS);
    P("model.t_embedder1.mlp.2.weight", t_fc2_w, D, D, 2, KIND_MATRIX);
    P("model.t_embedder1.mlp.2.bias", t_fc2_b, 1, D, 1, KIND_BIAS);
    P("model.x_embedder.proj1.weight", x_proj1_w, m->bottleneck_dim, m->patch_dim, 2, KIND_MATRIX);
    P("model.x_embedder.proj2.weight", x_proj2_w, D, m->bottleneck_dim, 2, KIND_MATRIX);
    P("model.x_embedder.proj2.bias", x_proj2_b, 1, D, 1, KIND_BIAS);
    P("model.final_layer2.linear.weight", head_w, m->patch_dim, D, 2, KIND_ZERO);
    P("model.final_layer2.linear.bias", head_b, 1, m->patch_dim, 1, KIND_ZERO);
#undef P
    if (tm->with_lm)
        HD_TRY(add_param(tm, "lm_head.weight", &tm->lm_head, &g->lm_head, V, D, 2, KIND_MATRIX, e));
    return 0;
}

/* Reads a checkpoint tensor of shape [rows, cols] (or [cols] for rows == 1) into host. */
static int read_tensor(const hd_safetensors *st, const hd_st_tensor *t, const hd_uit_param *p,
                       float *host, hd_error *e) {
    int64_t rows = p->w->rows, cols = p->w->cols;
    const char *file = t->file >= 0 && t->file < st->n_files && st->files[t->file].path
                           ? st->files[t->file].path : "model";
    int ok = (t->ndim == 2 && t->shape[0] == rows && t->shape[1] == cols) ||
             (t->ndim == 1 && rows == 1 && t->shape[0] == cols);
    if (!ok)
        return hd_fail(e, HD_EMISMATCH, "%s: tensor '%s': shape does not match [%lld, %lld]",
                       file, p->name, (long long)rows, (long long)cols);
    int rc = hd_st_read_f32(t, host, (size_t)(rows * cols), e);
    if (rc < 0) hd_error_prefix(e, "%s", file);
    return rc;
}

/* Allocates every weight as float32 and fills it from st or the seeded initialisation. */
static int fill_weights(hd_uit_train *tm, const hd_safetensors *st, uint64_t seed, float std,
                        hd_error *e) {
    hd_backend *be = tm->be;
    hd_torch_gen gen;
    hd_torch_gen_seed(&gen, seed);
    size_t cap = 0;
    float *host = NULL;
    int rc = 0;
    for (int i = 0; i < tm->n_params && rc == 0; i++) {
        hd_uit_param *p = &tm->params[i];
        size_t n = (size_t)(p->w->rows * p->w->cols);
        if (n > cap) {
            float *h = realloc(host, n * sizeof *h);
            if (!h) {
                rc = hd_fail(e, HD_ENOMEM, "model: out of memory for '%s'", p->name);
                break;
            }
            host = h;
            cap = n;
        }
        const hd_st_tensor *t = st ? hd_st_find(st, p->name) : NULL;
        if (st && !t && strcmp(p->name, "lm_head.weight") != 0) {
            rc = hd_fail(e, HD_EFORMAT, "model: missing tensor '%s'", p->name);
            break;
        }
        if (t) {
            rc = read_tensor(st, t, p, host, e);
        } else if (tm->kinds[i] == KIND_MATRIX) {
            hd_torch_gen_randn(&gen, host, n);
            for (size_t j = 0; j < n; j++) host[j] *= std;
        } else {
            float v = tm->kinds[i] == KIND_NORM ? 1.0f : 0.0f;
            for (size_t j = 0; j < n; j++) host[j] = v;
        }
        if (rc == 0) rc = be->ops->alloc(be, p->w, HD_F32, p->w->rows, p->w->cols, e);
        if (rc == 0) be->ops->write(be, p->w, host);
    }
    free(host);
    return rc;
}

static void free_acts(hd_uit_train *tm);

int hd_uit_train_create(hd_uit_train **out, hd_backend *be, const hd_config *cfg,
                        const hd_safetensors *st, uint64_t init_seed, float init_std,
                        int with_lm_head, hd_error *e) {
    *out = NULL;
    if (!hd_backend_can_train(be))
        return hd_fail(e, HD_EUNSUPPORTED, "backend %s: no training ops", be->ops->name);
    int random_init = !st || (with_lm_head && !hd_st_find(st, "lm_head.weight"));
    if (random_init && !(init_std > 0 && isfinite(init_std)))
        return hd_fail(e, HD_EINVAL, "model: init_std %g must be positive", (double)init_std);
    int64_t patch_dim, bottleneck, freq = 256;
    if (st) {
        const hd_st_tensor *p1 = hd_st_find(st, "model.x_embedder.proj1.weight");
        const hd_st_tensor *t1 = hd_st_find(st, "model.t_embedder1.mlp.0.weight");
        if (!p1 || p1->ndim != 2 || !t1 || t1->ndim != 2)
            return hd_fail(e, HD_EFORMAT, "model: x_embedder.proj1 / t_embedder1.mlp.0 weights "
                           "missing or not 2-D");
        patch_dim = p1->shape[1];
        bottleneck = p1->shape[0];
        freq = t1->shape[1];
    } else {
        int64_t ps = cfg->gen.patch_size > 0 ? cfg->gen.patch_size : 32;
        patch_dim = 3 * ps * ps;
        bottleneck = cfg->text.hidden_size / 4 > 0 ? cfg->text.hidden_size / 4 : 1;
    }
    hd_uit_train *tm = calloc(1, sizeof *tm);
    if (!tm) return hd_fail(e, HD_ENOMEM, "model: out of memory");
    tm->be = be;
    tm->with_lm = with_lm_head != 0;
    int rc = hd_uit_create_unbound(&tm->m, be, cfg, patch_dim, bottleneck, freq, e);
    if (rc == 0) rc = list_params(tm, e);
    if (rc == 0) rc = fill_weights(tm, st, init_seed, init_std, e);
    if (rc < 0) {
        hd_uit_train_free(tm);
        return rc;
    }
    *out = tm;
    return 0;
}

void hd_uit_train_free(hd_uit_train *tm) {
    if (!tm) return;
    hd_backend *be = tm->be;
    free_acts(tm);
    train_grads *g = &tm->g;
    hd_tensor *gs[] = {&g->embed_tokens, &g->t_fc1_w,  &g->t_fc1_b,  &g->t_fc2_w,
                       &g->t_fc2_b,      &g->x_proj1_w, &g->x_proj2_w, &g->x_proj2_b,
                       &g->final_norm,   &g->head_w,   &g->head_b,   &g->lm_head};
    for (size_t i = 0; i < sizeof gs / sizeof *gs; i++) hd_tensor_free(be, gs[i]);
    if (g->layers && tm->m) {
        for (int i = 0; i < tm->m->cfg.num_layers; i++) {
            hd_uit_layer *L = &g->layers[i];
            hd_tensor *ls[] = {&L->attn_norm, &L->wq,     &L->wk,       &L->wv,
                               &L->wo,        &L->q_norm, &L->k_norm,   &L->mlp_norm,
                               &L->w_gate,    &L->w_up,   &L->w_down};
            for (size_t j = 0; j < sizeof ls / sizeof *ls; j++) hd_tensor_free(be, ls[j]);
        }
    }
    free(g->layers);
    hd_tensor_free(be, &tm->lm_head);
    hd_uit_free(tm->m);
    free(tm->params);
    free(tm->kinds);
    train_plan *p = &tm->p;
    free(p->off);
    free(p->A);
    free(p->tok_rows);
    free(p->tok_ids);
    free(p->tms_rows);
    free(p->patch_rows);
    free(p->lm_rows);
    free(tm);
}

hd_uit *hd_uit_train_model(hd_uit_train *tm) { return tm->m; }

int hd_uit_train_params(hd_uit_train *tm, hd_uit_param **params) {
    *params = tm->params;
    return tm->n_params;
}

void hd_uit_train_zero_grad(hd_uit_train *tm) {
    for (int i = 0; i < tm->n_params; i++) tm->be->ops->fill(tm->be, &tm->params[i].grad, 0.0f);
}

/* ---- saved activations ---------------------------------------------------------------------- */

static void free_layer_acts(hd_backend *be, layer_acts *l) {
    hd_tensor *ts[] = {&l->x_in, &l->h_attn, &l->q_raw, &l->k_raw, &l->q,    &l->k,    &l->v,
                       &l->att,  &l->lse,    &l->x_mid, &l->h_mlp, &l->gate, &l->up};
    for (size_t i = 0; i < sizeof ts / sizeof *ts; i++) hd_tensor_free(be, ts[i]);
}

static void free_acts(hd_uit_train *tm) {
    train_acts *a = &tm->a;
    hd_backend *be = tm->be;
    if (a->layers)
        for (int l = 0; l < tm->m->cfg.num_layers; l++) free_layer_acts(be, &a->layers[l]);
    free(a->layers);
    hd_tensor *ts[] = {&a->x_out, &a->xf,    &a->cos,   &a->sin,    &a->nsin,  &a->tok,
                       &a->tfreq, &a->th_pre, &a->th_act, &a->temb, &a->vin,   &a->bott,
                       &a->xp,    &a->sel,   &a->pred,  &a->lsel,   &a->logits, &a->dx,
                       &a->dh,    &a->datt,  &a->dq,    &a->dk,     &a->dv,    &a->dgate,
                       &a->dup,   &a->dth,   &a->dbott};
    for (size_t i = 0; i < sizeof ts / sizeof *ts; i++) hd_tensor_free(be, ts[i]);
    free(a->host_cos);
    free(a->host_sin);
    free(a->host_tfreq);
    train_acts zero = {0};
    *a = zero;
}

/* (Re)allocates t as float32 [rows, cols] when it is smaller; callers use row views. */
static int ensure(hd_backend *be, hd_tensor *t, int64_t rows, int64_t cols, hd_error *e) {
    if (rows < 1) rows = 1;
    if (t->data && t->rows >= rows && t->cols == cols) return 0;
    hd_tensor_free(be, t);
    int rc = be->ops->alloc(be, t, HD_F32, rows, cols, e);
    if (rc < 0) hd_error_prefix(e, "model: activations [%lld, %lld]", (long long)rows,
                                (long long)cols);
    return rc;
}

static int ensure_host(float **p, int64_t n, hd_error *e) {
    float *q = realloc(*p, (size_t)(n > 0 ? n : 1) * sizeof *q);
    if (!q) return hd_fail(e, HD_ENOMEM, "model: out of host memory (%lld floats)", (long long)n);
    *p = q;
    return 0;
}

static int grow_rows(hd_uit_train *tm, int64_t N, hd_error *e) {
    hd_uit *m = tm->m;
    hd_backend *be = tm->be;
    train_acts *a = &tm->a;
    int64_t D = m->dim, Q = m->q_dim, K = m->kv_dim, F = m->ffn_dim, hd = m->cfg.head_dim;
    if (!a->layers) {
        a->layers = calloc((size_t)m->cfg.num_layers, sizeof *a->layers);
        if (!a->layers) return hd_fail(e, HD_ENOMEM, "model: out of memory (activations)");
    }
    for (int l = 0; l < m->cfg.num_layers; l++) {
        layer_acts *s = &a->layers[l];
        HD_TRY(ensure(be, &s->x_in, N, D, e));
        HD_TRY(ensure(be, &s->h_attn, N, D, e));
        HD_TRY(ensure(be, &s->q_raw, N, Q, e));
        HD_TRY(ensure(be, &s->k_raw, N, K, e));
        HD_TRY(ensure(be, &s->q, N, Q, e));
        HD_TRY(ensure(be, &s->k, N, K, e));
        HD_TRY(ensure(be, &s->v, N, K, e));
        HD_TRY(ensure(be, &s->att, N, Q, e));
        HD_TRY(ensure(be, &s->lse, N, m->cfg.num_heads, e));
        HD_TRY(ensure(be, &s->x_mid, N, D, e));
        HD_TRY(ensure(be, &s->h_mlp, N, D, e));
        HD_TRY(ensure(be, &s->gate, N, F, e));
        HD_TRY(ensure(be, &s->up, N, F, e));
    }
    hd_tensor *nd[] = {&a->x_out, &a->xf, &a->dx, &a->dh};
    for (size_t i = 0; i < sizeof nd / sizeof *nd; i++) HD_TRY(ensure(be, nd[i], N, D, e));
    HD_TRY(ensure(be, &a->cos, N, hd, e));
    HD_TRY(ensure(be, &a->sin, N, hd, e));
    HD_TRY(ensure(be, &a->nsin, N, hd, e));
    HD_TRY(ensure(be, &a->datt, N, Q, e));
    HD_TRY(ensure(be, &a->dq, N, Q, e));
    HD_TRY(ensure(be, &a->dk, N, K, e));
    HD_TRY(ensure(be, &a->dv, N, K, e));
    HD_TRY(ensure(be, &a->dgate, N, F, e));
    HD_TRY(ensure(be, &a->dup, N, F, e));
    HD_TRY(ensure_host(&a->host_cos, N * hd, e));
    HD_TRY(ensure_host(&a->host_sin, N * hd, e));
    a->rows = N;
    return 0;
}

/* Sizes every saved activation for the planned batch (growing only). */
static int grow_acts(hd_uit_train *tm, hd_error *e) {
    hd_uit *m = tm->m;
    hd_backend *be = tm->be;
    train_acts *a = &tm->a;
    const train_plan *p = &tm->p;
    int64_t D = m->dim;
    if (p->rows > a->rows) HD_TRY(grow_rows(tm, p->rows, e));
    if (p->n_tok > a->toks) {
        HD_TRY(ensure(be, &a->tok, p->n_tok, D, e));
        a->toks = p->n_tok;
    }
    if (p->n_tms > a->tms) {
        HD_TRY(ensure(be, &a->tfreq, p->n_tms, m->freq_dim, e));
        HD_TRY(ensure(be, &a->th_pre, p->n_tms, D, e));
        HD_TRY(ensure(be, &a->th_act, p->n_tms, D, e));
        HD_TRY(ensure(be, &a->temb, p->n_tms, D, e));
        HD_TRY(ensure(be, &a->dth, p->n_tms, D, e));
        HD_TRY(ensure_host(&a->host_tfreq, p->n_tms * m->freq_dim, e));
        a->tms = p->n_tms;
    }
    if (p->patches > a->patches) {
        HD_TRY(ensure(be, &a->vin, p->patches, m->patch_dim, e));
        HD_TRY(ensure(be, &a->bott, p->patches, m->bottleneck_dim, e));
        HD_TRY(ensure(be, &a->dbott, p->patches, m->bottleneck_dim, e));
        HD_TRY(ensure(be, &a->xp, p->patches, D, e));
        HD_TRY(ensure(be, &a->sel, p->patches, D, e));
        HD_TRY(ensure(be, &a->pred, p->patches, m->patch_dim, e));
        a->patches = p->patches;
    }
    if (p->has_logits && p->n_lm > a->lm) {
        HD_TRY(ensure(be, &a->lsel, p->n_lm, D, e));
        HD_TRY(ensure(be, &a->logits, p->n_lm, m->cfg.vocab_size, e));
        a->lm = p->n_lm;
    }
    return 0;
}

/* ---- the packed batch ----------------------------------------------------------------------- */

static int check_sample(const hd_uit *m, const hd_uit_sample *s, int b, hd_error *e) {
    const hd_uit_seq *q = &s->seq;
    if (q->vit)
        return hd_fail(e, HD_EINVAL, "batch[%d]: reference images (ViT rows) are not trainable", b);
    if (q->n_text < 1 || q->n_seq <= q->n_text || q->n_seq > MAX_ROWS)
        return hd_fail(e, HD_EINVAL, "batch[%d]: %lld text rows of %lld (need 1 <= T < S)", b,
                       (long long)q->n_text, (long long)q->n_seq);
    if (q->n_causal < 0 || q->n_causal > q->n_text)
        return hd_fail(e, HD_EINVAL, "batch[%d]: causal prefix %lld must lie in the %lld text rows",
                       b, (long long)q->n_causal, (long long)q->n_text);
    if (!q->ids || !q->pos || !s->x)
        return hd_fail(e, HD_EINVAL, "batch[%d]: missing ids, positions or patch rows", b);
    if (!(s->t >= 0.0 && s->t <= 1.0))
        return hd_fail(e, HD_EINVAL, "batch[%d]: time %g outside [0, 1]", b, s->t);
    for (int64_t r = 0; r < q->n_text; r++)
        if (q->ids[r] < 0 || q->ids[r] >= m->cfg.vocab_size || q->ids[r] == m->ids.image_pad)
            return hd_fail(e, HD_EINVAL, "batch[%d]: input_ids[%lld] = %d outside the vocabulary "
                           "or an image pad", b, (long long)r, q->ids[r]);
    return 0;
}

static int grow_i32(int32_t **p, int64_t n, hd_error *e) {
    int32_t *q = realloc(*p, (size_t)(n > 0 ? n : 1) * sizeof *q);
    if (!q) return hd_fail(e, HD_ENOMEM, "model: out of host memory (batch plan)");
    *p = q;
    return 0;
}

/* Validates the batch and lays it out: row offsets and the row/id lists of every kind of row. */
static int plan_batch(hd_uit_train *tm, const hd_uit_sample *batch, int n, int with_logits,
                      hd_error *e) {
    hd_uit *m = tm->m;
    train_plan *p = &tm->p;
    p->valid = 0;
    if (n < 1 || !batch) return hd_fail(e, HD_EINVAL, "batch: no samples");
    int64_t rows = 0;
    for (int b = 0; b < n; b++) {
        HD_TRY(check_sample(m, &batch[b], b, e));
        rows += batch[b].seq.n_seq;
        if (rows > MAX_ROWS)
            return hd_fail(e, HD_EINVAL, "batch: more than %lld rows", (long long)MAX_ROWS);
    }
    if (n > p->cap_n) {
        int64_t *off = realloc(p->off, (size_t)n * sizeof *off);
        if (off) p->off = off;
        int64_t *A = off ? realloc(p->A, (size_t)n * sizeof *A) : NULL;
        if (!off || !A) return hd_fail(e, HD_ENOMEM, "model: out of host memory (batch plan)");
        p->A = A;
        p->cap_n = n;
    }
    if (rows > p->cap_rows) {
        int32_t **lists[] = {&p->tok_rows, &p->tok_ids, &p->tms_rows, &p->patch_rows, &p->lm_rows};
        for (size_t i = 0; i < sizeof lists / sizeof *lists; i++) HD_TRY(grow_i32(lists[i], rows, e));
        p->cap_rows = rows;
    }
    p->n = n;
    p->rows = rows;
    p->patches = p->n_tms = p->n_lm = p->n_tok = 0;
    p->has_logits = with_logits;
    int64_t off = 0;
    for (int b = 0; b < n; b++) {
        const hd_uit_seq *q = &batch[b].seq;
        p->off[b] = off;
        p->A[b] = q->n_causal;
        for (int64_t r = 0; r < q->n_text; r++) {
            if (q->ids[r] == m->ids.tms) {
                p->tms_rows[p->n_tms++] = (int32_t)(off + r);
            } else {
                p->tok_rows[p->n_tok] = (int32_t)(off + r);
                p->tok_ids[p->n_tok++] = q->ids[r];
            }
        }
        for (int64_t r = q->n_text; r < q->n_seq; r++) p->patch_rows[p->patches++] = (int32_t)(off + r);
        for (int64_t r = 0; r + 1 < q->n_causal; r++) p->lm_rows[p->n_lm++] = (int32_t)(off + r);
        off += q->n_seq;
    }
    return 0;
}

/* Rotary tables of every packed row from its sample's positions; nsin = −sin for the backward. */
static void write_rope(hd_uit_train *tm, const hd_uit_sample *batch) {
    hd_uit *m = tm->m;
    train_acts *a = &tm->a;
    const train_plan *p = &tm->p;
    int64_t hd = m->cfg.head_dim, N = p->rows;
    for (int b = 0; b < p->n; b++) {
        const hd_uit_seq *q = &batch[b].seq;
        hd_rope_tables(&m->rope, q->pos, q->n_seq, 0, q->n_seq, a->host_cos + p->off[b] * hd,
                       a->host_sin + p->off[b] * hd);
    }
    hd_tensor cs = hd_view_rows(&a->cos, 0, N), sn = hd_view_rows(&a->sin, 0, N);
    hd_tensor ns = hd_view_rows(&a->nsin, 0, N);
    tm->be->ops->write(tm->be, &cs, a->host_cos);
    tm->be->ops->write(tm->be, &sn, a->host_sin);
    for (int64_t i = 0; i < N * hd; i++) a->host_sin[i] = -a->host_sin[i];
    tm->be->ops->write(tm->be, &ns, a->host_sin);
}

/* ---- forward -------------------------------------------------------------------------------- */

/* Residual stream entering layer 0 (spec 03 §1-3): token embeddings, the timestep embedding at
 * every <|tms_token|> row, the bottleneck embedding of every target patch row. */
static void embed_forward(hd_uit_train *tm, const hd_uit_sample *batch) {
    hd_uit *m = tm->m;
    hd_backend *be = tm->be;
    const hd_backend_ops *op = be->ops;
    train_acts *a = &tm->a;
    const train_plan *p = &tm->p;
    hd_tensor x = hd_view_rows(&a->layers[0].x_in, 0, p->rows);
    if (p->n_tok > 0) {
        hd_tensor tok = hd_view_rows(&a->tok, 0, p->n_tok);
        op->gather_rows(be, &tok, &m->embed_tokens, p->tok_ids, p->n_tok);
        op->set_rows(be, &x, &tok, p->tok_rows, p->n_tok);
    }
    if (p->n_tms > 0) {
        int64_t fd = m->freq_dim;
        for (int64_t i = 0; i < p->n_tms; i++) {
            int b = 0;
            while (b + 1 < p->n && p->off[b + 1] <= p->tms_rows[i]) b++;
            hd_timestep_sinusoid(batch[b].t, (int)fd, a->host_tfreq + i * fd);
        }
        hd_tensor f = hd_view_rows(&a->tfreq, 0, p->n_tms), h0 = hd_view_rows(&a->th_pre, 0, p->n_tms);
        hd_tensor h1 = hd_view_rows(&a->th_act, 0, p->n_tms), te = hd_view_rows(&a->temb, 0, p->n_tms);
        op->write(be, &f, a->host_tfreq);
        op->linear(be, &h0, &f, &m->t_fc1_w, &m->t_fc1_b);
        op->silu(be, &h1, &h0);
        op->linear(be, &te, &h1, &m->t_fc2_w, &m->t_fc2_b);
        op->set_rows(be, &x, &te, p->tms_rows, p->n_tms);
    }
    hd_tensor vin = hd_view_rows(&a->vin, 0, p->patches), bott = hd_view_rows(&a->bott, 0, p->patches);
    hd_tensor xp = hd_view_rows(&a->xp, 0, p->patches);
    for (int b = 0, r = 0; b < p->n; b++) {
        const hd_uit_seq *q = &batch[b].seq;
        hd_tensor dst = hd_view_rows(&vin, r, q->n_seq - q->n_text);
        op->write(be, &dst, batch[b].x);
        r += (int)(q->n_seq - q->n_text);
    }
    op->linear(be, &bott, &vin, &m->x_proj1_w, NULL);
    op->linear(be, &xp, &bott, &m->x_proj2_w, &m->x_proj2_b);
    op->set_rows(be, &x, &xp, p->patch_rows, p->patches);
}

/* Per-sample attention with its hybrid mask (rows < A_b causal, the rest see all S_b keys). */
static void attention_forward(hd_uit_train *tm, layer_acts *s) {
    hd_uit *m = tm->m;
    const train_plan *p = &tm->p;
    const hd_text_config *c = &m->cfg;
    for (int b = 0; b < p->n; b++) {
        int64_t r0 = p->off[b], S = (b + 1 < p->n ? p->off[b + 1] : p->rows) - r0;
        hd_tensor q = hd_view_rows(&s->q, r0, S), k = hd_view_rows(&s->k, r0, S);
        hd_tensor v = hd_view_rows(&s->v, r0, S), o = hd_view_rows(&s->att, r0, S);
        hd_tensor lse = hd_view_rows(&s->lse, r0, S);
        hd_attn_mask mask = {0, p->A[b]};
        tm->be->ops->attention_lse(tm->be, &o, &lse, &q, &k, &v, c->num_heads, c->num_kv_heads,
                                   c->head_dim, m->attn_scale, mask);
    }
}

/* One decoder layer (spec 03 §4): x_out = x_mid + MLP(RMSNorm(x_mid)),
 * x_mid = x_in + Attention(RMSNorm(x_in)); every intermediate the backward needs is kept. */
static void layer_forward(hd_uit_train *tm, int l, hd_tensor *x_out) {
    hd_uit *m = tm->m;
    hd_backend *be = tm->be;
    const hd_backend_ops *op = be->ops;
    const hd_uit_layer *L = &m->layers[l];
    int64_t N = tm->p.rows;
    int hd = m->cfg.head_dim;
    layer_acts s = tm->a.layers[l]; /* row views of the saved tensors */
    hd_tensor *v[] = {&s.x_in, &s.h_attn, &s.q_raw, &s.k_raw, &s.q,    &s.k,   &s.v,
                      &s.att,  &s.lse,    &s.x_mid, &s.h_mlp, &s.gate, &s.up};
    for (size_t i = 0; i < sizeof v / sizeof *v; i++) *v[i] = hd_view_rows(v[i], 0, N);
    hd_tensor cs = hd_view_rows(&tm->a.cos, 0, N), sn = hd_view_rows(&tm->a.sin, 0, N);
    hd_tensor act = hd_view_rows(&tm->a.dup, 0, N), xo = hd_view_rows(x_out, 0, N);

    op->rmsnorm(be, &s.h_attn, &s.x_in, &L->attn_norm, m->eps);
    op->linear(be, &s.q_raw, &s.h_attn, &L->wq, NULL);
    op->linear(be, &s.k_raw, &s.h_attn, &L->wk, NULL);
    op->linear(be, &s.v, &s.h_attn, &L->wv, NULL);
    op->rmsnorm(be, &s.q, &s.q_raw, &L->q_norm, m->eps);
    op->rmsnorm(be, &s.k, &s.k_raw, &L->k_norm, m->eps);
    op->rope(be, &s.q, &cs, &sn, hd);
    op->rope(be, &s.k, &cs, &sn, hd);
    attention_forward(tm, &tm->a.layers[l]);
    op->linear(be, &s.x_mid, &s.att, &L->wo, NULL);
    op->add(be, &s.x_mid, &s.x_mid, &s.x_in);

    op->rmsnorm(be, &s.h_mlp, &s.x_mid, &L->mlp_norm, m->eps);
    op->linear(be, &s.gate, &s.h_mlp, &L->w_gate, NULL);
    op->linear(be, &s.up, &s.h_mlp, &L->w_up, NULL);
    op->silu_mul(be, &act, &s.gate, &s.up);
    op->linear(be, &xo, &act, &L->w_down, NULL);
    op->add(be, &xo, &xo, &s.x_mid);
}

/* Final RMSNorm of every row; the patch head on the target rows, lm_head on the text rows. */
static void head_forward(hd_uit_train *tm, float *pred, float *logits) {
    hd_uit *m = tm->m;
    hd_backend *be = tm->be;
    const hd_backend_ops *op = be->ops;
    train_acts *a = &tm->a;
    const train_plan *p = &tm->p;
    hd_tensor xo = hd_view_rows(&a->x_out, 0, p->rows), xf = hd_view_rows(&a->xf, 0, p->rows);
    op->rmsnorm(be, &xf, &xo, &m->final_norm, m->eps);
    hd_tensor sel = hd_view_rows(&a->sel, 0, p->patches), pr = hd_view_rows(&a->pred, 0, p->patches);
    op->gather_rows(be, &sel, &xf, p->patch_rows, p->patches);
    op->linear(be, &pr, &sel, &m->head_w, &m->head_b);
    op->read(be, &pr, pred);
    if (p->has_logits && p->n_lm > 0) {
        hd_tensor ls = hd_view_rows(&a->lsel, 0, p->n_lm), lg = hd_view_rows(&a->logits, 0, p->n_lm);
        op->gather_rows(be, &ls, &xf, p->lm_rows, p->n_lm);
        op->linear(be, &lg, &ls, &tm->lm_head, NULL);
        op->read(be, &lg, logits);
    }
}

int hd_uit_train_forward(hd_uit_train *tm, const hd_uit_sample *batch, int n, float *pred,
                         float *logits, hd_error *e) {
    if (!pred) return hd_fail(e, HD_EINVAL, "model: no output buffer for the prediction");
    if (logits && !tm->with_lm)
        return hd_fail(e, HD_EINVAL, "model: logits asked for a model made without lm_head");
    HD_TRY(plan_batch(tm, batch, n, logits != NULL, e));
    int rc = grow_acts(tm, e);
    if (rc < 0) {
        free_acts(tm); /* capacities never outlive their tensors */
        return rc;
    }
    write_rope(tm, batch);
    embed_forward(tm, batch);
    int nl = tm->m->cfg.num_layers;
    for (int l = 0; l < nl; l++)
        layer_forward(tm, l, l + 1 < nl ? &tm->a.layers[l + 1].x_in : &tm->a.x_out);
    head_forward(tm, pred, logits);
    HD_TRY(hd_backend_status(tm->be, e));
    tm->p.valid = 1;
    return 0;
}

/* ---- backward ------------------------------------------------------------------------------- */

/* dx = ∂loss/∂x_out from the head and lm_head gradients (through the final RMSNorm). */
static void head_backward(hd_uit_train *tm, const float *dpred, const float *dlogits) {
    hd_uit *m = tm->m;
    hd_backend *be = tm->be;
    const hd_backend_ops *op = be->ops;
    train_acts *a = &tm->a;
    train_grads *g = &tm->g;
    const train_plan *p = &tm->p;
    hd_tensor dxf = hd_view_rows(&a->dh, 0, p->rows), dx = hd_view_rows(&a->dx, 0, p->rows);
    hd_tensor xo = hd_view_rows(&a->x_out, 0, p->rows);
    op->fill(be, &dxf, 0.0f);
    hd_tensor sel = hd_view_rows(&a->sel, 0, p->patches), dp = hd_view_rows(&a->pred, 0, p->patches);
    op->write(be, &dp, dpred);
    op->linear_dw(be, &g->head_w, &g->head_b, &dp, &sel);
    op->linear_dx(be, &sel, &dp, &m->head_w, 0); /* sel now holds its gradient */
    op->set_rows(be, &dxf, &sel, p->patch_rows, p->patches);
    if (p->has_logits && dlogits && p->n_lm > 0) {
        hd_tensor ls = hd_view_rows(&a->lsel, 0, p->n_lm), dl = hd_view_rows(&a->logits, 0, p->n_lm);
        op->write(be, &dl, dlogits);
        op->linear_dw(be, &g->lm_head, NULL, &dl, &ls);
        op->linear_dx(be, &ls, &dl, &tm->lm_head, 0);
        op->set_rows(be, &dxf, &ls, p->lm_rows, p->n_lm);
    }
    op->rmsnorm_backward(be, &dx, &g->final_norm, &dxf, &xo, &m->final_norm, m->eps, 0);
}

/* Per-sample attention backward into dq, dk, dv (rows of each sample, its own mask). */
static void attention_backward(hd_uit_train *tm, const layer_acts *s) {
    hd_uit *m = tm->m;
    const train_plan *p = &tm->p;
    const hd_text_config *c = &m->cfg;
    train_acts *a = &tm->a;
    for (int b = 0; b < p->n; b++) {
        int64_t r0 = p->off[b], S = (b + 1 < p->n ? p->off[b + 1] : p->rows) - r0;
        hd_tensor dq = hd_view_rows(&a->dq, r0, S), dk = hd_view_rows(&a->dk, r0, S);
        hd_tensor dv = hd_view_rows(&a->dv, r0, S), dout = hd_view_rows(&a->datt, r0, S);
        hd_tensor q = hd_view_rows(&s->q, r0, S), k = hd_view_rows(&s->k, r0, S);
        hd_tensor v = hd_view_rows(&s->v, r0, S), o = hd_view_rows(&s->att, r0, S);
        hd_tensor lse = hd_view_rows(&s->lse, r0, S);
        hd_attn_mask mask = {0, p->A[b]};
        tm->be->ops->attention_backward(tm->be, &dq, &dk, &dv, &dout, &q, &k, &v, &o, &lse,
                                        c->num_heads, c->num_kv_heads, c->head_dim,
                                        m->attn_scale, mask);
    }
}

/* Backward of layer l: on entry a.dx = ∂loss/∂x_out, on exit ∂loss/∂x_in; weight gradients
 * accumulate into g.layers[l]. */
static void layer_backward(hd_uit_train *tm, int l) {
    hd_uit *m = tm->m;
    hd_backend *be = tm->be;
    const hd_backend_ops *op = be->ops;
    const hd_uit_layer *L = &m->layers[l];
    hd_uit_layer *G = &tm->g.layers[l];
    train_acts *a = &tm->a;
    int64_t N = tm->p.rows;
    int hd = m->cfg.head_dim;
    layer_acts s = a->layers[l];
    hd_tensor *v[] = {&s.x_in, &s.h_attn, &s.q_raw, &s.k_raw, &s.q,    &s.k,   &s.v,
                      &s.att,  &s.lse,    &s.x_mid, &s.h_mlp, &s.gate, &s.up};
    for (size_t i = 0; i < sizeof v / sizeof *v; i++) *v[i] = hd_view_rows(v[i], 0, N);
    hd_tensor dx = hd_view_rows(&a->dx, 0, N), dh = hd_view_rows(&a->dh, 0, N);
    hd_tensor dgate = hd_view_rows(&a->dgate, 0, N), dup = hd_view_rows(&a->dup, 0, N);
    hd_tensor datt = hd_view_rows(&a->datt, 0, N), dq = hd_view_rows(&a->dq, 0, N);
    hd_tensor dk = hd_view_rows(&a->dk, 0, N), dv = hd_view_rows(&a->dv, 0, N);
    hd_tensor cs = hd_view_rows(&a->cos, 0, N), ns = hd_view_rows(&a->nsin, 0, N);

    /* MLP block: x_out = x_mid + W_down·(silu(gate)⊙up), gate/up = W·RMSNorm(x_mid) */
    op->silu_mul(be, &dup, &s.gate, &s.up); /* the product, recomputed (dup is free here) */
    op->linear_dw(be, &G->w_down, NULL, &dx, &dup);
    op->linear_dx(be, &dgate, &dx, &L->w_down, 0);
    op->silu_mul_backward(be, &dgate, &dup, &dgate, &s.gate, &s.up);
    op->linear_dw(be, &G->w_gate, NULL, &dgate, &s.h_mlp);
    op->linear_dw(be, &G->w_up, NULL, &dup, &s.h_mlp);
    op->linear_dx(be, &dh, &dgate, &L->w_gate, 0);
    op->linear_dx(be, &dh, &dup, &L->w_up, 1);
    op->rmsnorm_backward(be, &dx, &G->mlp_norm, &dh, &s.x_mid, &L->mlp_norm, m->eps, 1);

    /* attention block: x_mid = x_in + W_o·attn(rope(qnorm(W_q h)), rope(knorm(W_k h)), W_v h) */
    op->linear_dw(be, &G->wo, NULL, &dx, &s.att);
    op->linear_dx(be, &datt, &dx, &L->wo, 0);
    attention_backward(tm, &a->layers[l]);
    op->rope(be, &dq, &cs, &ns, hd); /* the rotation's transpose */
    op->rope(be, &dk, &cs, &ns, hd);
    op->rmsnorm_backward(be, &dq, &G->q_norm, &dq, &s.q_raw, &L->q_norm, m->eps, 0);
    op->rmsnorm_backward(be, &dk, &G->k_norm, &dk, &s.k_raw, &L->k_norm, m->eps, 0);
    op->linear_dw(be, &G->wq, NULL, &dq, &s.h_attn);
    op->linear_dw(be, &G->wk, NULL, &dk, &s.h_attn);
    op->linear_dw(be, &G->wv, NULL, &dv, &s.h_attn);
    op->linear_dx(be, &dh, &dq, &L->wq, 0);
    op->linear_dx(be, &dh, &dk, &L->wk, 1);
    op->linear_dx(be, &dh, &dv, &L->wv, 1);
    op->rmsnorm_backward(be, &dx, &G->attn_norm, &dh, &s.x_in, &L->attn_norm, m->eps, 1);
}

/* Gradients of the embeddings from a.dx = ∂loss/∂(layer-0 input). */
static void embed_backward(hd_uit_train *tm) {
    hd_uit *m = tm->m;
    hd_backend *be = tm->be;
    const hd_backend_ops *op = be->ops;
    train_acts *a = &tm->a;
    train_grads *g = &tm->g;
    const train_plan *p = &tm->p;
    hd_tensor dx = hd_view_rows(&a->dx, 0, p->rows);
    if (p->n_tok > 0) { /* scatter-add into the table: repeated ids accumulate */
        hd_tensor buf = hd_view_rows(&a->dh, 0, p->n_tok);
        op->gather_rows(be, &buf, &dx, p->tok_rows, p->n_tok);
        op->add_rows(be, &g->embed_tokens, &buf, p->tok_ids, p->n_tok);
    }
    if (p->n_tms > 0) {
        hd_tensor dte = hd_view_rows(&a->dh, 0, p->n_tms), dth = hd_view_rows(&a->dth, 0, p->n_tms);
        hd_tensor f = hd_view_rows(&a->tfreq, 0, p->n_tms), h0 = hd_view_rows(&a->th_pre, 0, p->n_tms);
        hd_tensor h1 = hd_view_rows(&a->th_act, 0, p->n_tms);
        op->gather_rows(be, &dte, &dx, p->tms_rows, p->n_tms);
        op->linear_dw(be, &g->t_fc2_w, &g->t_fc2_b, &dte, &h1);
        op->linear_dx(be, &dth, &dte, &m->t_fc2_w, 0);
        op->silu_backward(be, &dth, &dth, &h0);
        op->linear_dw(be, &g->t_fc1_w, &g->t_fc1_b, &dth, &f);
    }
    hd_tensor dxp = hd_view_rows(&a->dh, 0, p->patches), db = hd_view_rows(&a->dbott, 0, p->patches);
    hd_tensor vin = hd_view_rows(&a->vin, 0, p->patches), bott = hd_view_rows(&a->bott, 0, p->patches);
    op->gather_rows(be, &dxp, &dx, p->patch_rows, p->patches);
    op->linear_dw(be, &g->x_proj2_w, &g->x_proj2_b, &dxp, &bott);
    op->linear_dx(be, &db, &dxp, &m->x_proj2_w, 0);
    op->linear_dw(be, &g->x_proj1_w, NULL, &db, &vin);
}

int hd_uit_train_backward(hd_uit_train *tm, const float *dpred, const float *dlogits,
                          hd_error *e) {
    if (!tm->p.valid) return hd_fail(e, HD_EINVAL, "model: backward without a forward");
    if (!dpred) return hd_fail(e, HD_EINVAL, "model: no prediction gradient");
    if (dlogits && !tm->p.has_logits)
        return hd_fail(e, HD_EINVAL, "model: logit gradients for a forward without logits");
    head_backward(tm, dpred, dlogits);
    for (int l = tm->m->cfg.num_layers - 1; l >= 0; l--) layer_backward(tm, l);
    embed_backward(tm);
    tm->p.valid = 0; /* the saved activations now hold backward scratch in places */
    return hd_backend_status(tm->be, e);
}
