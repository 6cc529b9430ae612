#include "agent/lm.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "model/inventory.h"
#include "model/rope.h"

static const char *st_path(const hd_safetensors *st, const hd_st_tensor *t) {
    return t->file >= 0 && t->file < st->n_files && st->files[t->file].path
               ? st->files[t->file].path : "model";
}

/* Binds weight `name` (prefix + name) for `use`, checking shape [rows, cols] ([cols] for
 * rows == 1). */
static int bind_use(hd_lm *m, hd_tensor *w, const char *prefix, const char *name, int64_t rows,
                    int64_t cols, hd_weight_use use, hd_error *e) {
    char full[256];
    snprintf(full, sizeof full, "%s%s", prefix, name);
    const hd_st_tensor *t = hd_st_find(&m->st, full);
    if (!t) return hd_fail(e, HD_EFORMAT, "model: missing tensor '%s'", full);
    int ok = (t->ndim == 2 && t->shape[0] == rows && t->shape[1] == cols) ||
             (t->ndim == 1 && rows == 1 && t->shape[0] == cols);
    if (!ok)
        return hd_fail(e, HD_EMISMATCH, "%s: tensor '%s': shape does not match config.json "
                                        "(expected [%lld, %lld])", st_path(&m->st, t), full,
                       (long long)rows, (long long)cols);
    float scale;
    HD_TRY(hd_inv_weight_scale(&m->st, t, &scale, e));
    int rc = hd_backend_bind_weight(m->be, w, use, t->dtype, rows, cols, t->data, scale, e);
    if (rc < 0) hd_error_prefix(e, "%s: tensor '%s'", st_path(&m->st, t), full);
    return rc;
}

static int bind(hd_lm *m, hd_tensor *w, const char *prefix, const char *name, int64_t rows,
                int64_t cols, hd_error *e) {
    return bind_use(m, w, prefix, name, rows, cols, rows == 1 ? HD_USE_VECTOR : HD_USE_LINEAR, e);
}

static int bind_all(hd_lm *m, hd_error *e) {
    const hd_lm_config *c = &m->cfg;
    int64_t D = c->dim, qd = (int64_t)c->n_heads * c->head_dim, kd = (int64_t)c->n_kv_heads * c->head_dim;
    const char *p = c->prefix;
    HD_TRY(bind_use(m, &m->embed, p, "embed_tokens.weight", c->vocab, D, HD_USE_ROWS, e));
    /* a tied head is also the w of the vocabulary product */
    if (c->tied && !m->be->ops->supports(m->be, HD_USE_LINEAR, m->embed.dtype))
        return hd_fail(e, HD_EUNSUPPORTED, "model: tied embed_tokens.weight: the %s backend cannot "
                       "use %s weights for matrix products", m->be->ops->name,
                       hd_dtype_name(m->embed.dtype));
    HD_TRY(bind(m, &m->final_norm, p, "norm.weight", 1, D, e));
    if (c->tied) m->lm_head = m->embed;
    else HD_TRY(bind(m, &m->lm_head, "", "lm_head.weight", c->vocab, D, e));
    for (int l = 0; l < c->n_layers; l++) {
        hd_lm_layer *L = &m->layers[l];
        char lp[64];
        snprintf(lp, sizeof lp, "%slayers.%d.", p, l);
        HD_TRY(bind(m, &L->attn_norm, lp, "input_layernorm.weight", 1, D, e));
        HD_TRY(bind(m, &L->wq, lp, "self_attn.q_proj.weight", qd, D, e));
        HD_TRY(bind(m, &L->wk, lp, "self_attn.k_proj.weight", kd, D, e));
        HD_TRY(bind(m, &L->wv, lp, "self_attn.v_proj.weight", kd, D, e));
        HD_TRY(bind(m, &L->wo, lp, "self_attn.o_proj.weight", D, qd, e));
        HD_TRY(bind(m, &L->q_norm, lp, "self_attn.q_norm.weight", 1, c->head_dim, e));
        HD_TRY(bind(m, &L->k_norm, lp, "self_attn.k_norm.weight", 1, c->head_dim, e));
        HD_TRY(bind(m, &L->mlp_norm, lp, "post_attention_layernorm.weight", 1, D, e));
        HD_TRY(bind(m, &L->w_gate, lp, "mlp.gate_proj.weight", c->ffn, D, e));
        HD_TRY(bind(m, &L->w_up, lp, "mlp.up_proj.weight", c->ffn, D, e));
        HD_TRY(bind_use(m, &L->w_down, lp, "mlp.down_proj.weight", D, c->ffn,
                        HD_USE_LINEAR_OUTLIERS, e)); /* silu(gate)·up: see hd_weight_use */
    }
    return 0;
}

static int alloc_buffers(hd_lm *m, hd_error *e) {
    const hd_lm_config *c = &m->cfg;
    const hd_backend_ops *op = m->be->ops;
    hd_backend *be = m->be;
    int64_t R = HD_LM_CHUNK, qd = (int64_t)c->n_heads * c->head_dim;
    int64_t kd = (int64_t)c->n_kv_heads * c->head_dim;
    for (int l = 0; l < c->n_layers; l++) {
        HD_TRY(op->alloc(be, &m->layers[l].k_cache, HD_F32, m->max_ctx, kd, e));
        HD_TRY(op->alloc(be, &m->layers[l].v_cache, HD_F32, m->max_ctx, kd, e));
    }
    HD_TRY(op->alloc(be, &m->x, HD_F32, R, c->dim, e));
    HD_TRY(op->alloc(be, &m->h, HD_F32, R, c->dim, e));
    HD_TRY(op->alloc(be, &m->q, HD_F32, R, qd, e));
    HD_TRY(op->alloc(be, &m->att, HD_F32, R, qd, e));
    HD_TRY(op->alloc(be, &m->gate, HD_F32, R, c->ffn, e));
    HD_TRY(op->alloc(be, &m->up, HD_F32, R, c->ffn, e));
    HD_TRY(op->alloc(be, &m->cos, HD_F32, R, c->head_dim, e));
    HD_TRY(op->alloc(be, &m->sin, HD_F32, R, c->head_dim, e));
    HD_TRY(op->alloc(be, &m->logits, HD_F32, HD_LM_LOGIT_ROWS, c->vocab, e));
    m->host_cos = malloc((size_t)R * c->head_dim * sizeof(float));
    m->host_sin = malloc((size_t)R * c->head_dim * sizeof(float));
    if (!m->host_cos || !m->host_sin) return hd_fail(e, HD_ENOMEM, "model: out of memory");
    return 0;
}

int hd_lm_load(hd_lm **out, const char *dir, hd_backend *be, int max_ctx, hd_error *e) {
    *out = NULL;
    hd_lm *m = calloc(1, sizeof *m);
    if (!m) return hd_fail(e, HD_ENOMEM, "model: out of memory");
    m->be = be;
    int rc = hd_lm_config_load(dir, &m->cfg, e);
    if (rc == 0 && (max_ctx < 1 || max_ctx > m->cfg.max_pos))
        rc = hd_fail(e, HD_EINVAL, "%s: context of %d positions (the model allows 1..%d)", dir,
                     max_ctx, m->cfg.max_pos);
    m->max_ctx = max_ctx;
    if (rc == 0) rc = hd_st_open_dir(&m->st, dir, e);
    if (rc == 0 && !(m->layers = calloc((size_t)m->cfg.n_layers, sizeof *m->layers)))
        rc = hd_fail(e, HD_ENOMEM, "model: out of memory");
    if (rc == 0) rc = bind_all(m, e);
    if (rc == 0) rc = alloc_buffers(m, e);
    hd_rope rope = {0};
    int section[3] = {m->cfg.head_dim / 2, 0, 0}; /* one axis: 1-D RoPE */
    if (rc == 0) rc = hd_rope_init(&rope, m->cfg.head_dim, m->cfg.theta, section, e);
    if (rc == 0) {
        m->inv_freq = rope.inv_freq; /* kept; the axis table is not needed */
        rope.inv_freq = NULL;
    }
    hd_rope_free(&rope);
    if (rc < 0) {
        hd_lm_free(m);
        return rc;
    }
    *out = m;
    return 0;
}

void hd_lm_free(hd_lm *m) {
    if (!m) return;
    hd_backend *be = m->be;
    if (m->layers) {
        for (int l = 0; l < m->cfg.n_layers; l++) {
            hd_lm_layer *L = &m->layers[l];
            hd_tensor *ts[] = {&L->attn_norm, &L->wq, &L->wk, &L->wv, &L->wo, &L->q_norm,
                               &L->k_norm, &L->mlp_norm, &L->w_gate, &L->w_up, &L->w_down,
                               &L->k_cache, &L->v_cache};
            for (size_t i = 0; i < sizeof ts / sizeof *ts; i++) hd_tensor_free(be, ts[i]);
        }
    }
    if (m->cfg.tied) memset(&m->lm_head, 0, sizeof m->lm_head);
    hd_tensor *ts[] = {&m->embed, &m->final_norm, &m->lm_head, &m->x, &m->h, &m->q, &m->att,
                       &m->gate, &m->up, &m->cos, &m->sin, &m->logits};
    for (size_t i = 0; i < sizeof ts / sizeof *ts; i++) hd_tensor_free(be, ts[i]);
    free(m->layers);
    free(m->inv_freq);
    free(m->host_cos);
    free(m->host_sin);
    hd_st_close(&m->st);
    free(m);
}

void hd_lm_reset(hd_lm *m) { m->n_past = 0; }

/* cos/sin rows for positions p0 .. p0+n-1, as Hugging Face's Qwen3 rotary embedding computes
 * them: angle = fl32(inv_freq[j] * p), duplicated over both halves of the head. */
static void rope_tables(hd_lm *m, int p0, int n) {
    int hd = m->cfg.head_dim, half = hd / 2;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < half; j++) {
            float a = m->inv_freq[j] * (float)(p0 + i);
            float c = (float)cos((double)a), s = (float)sin((double)a);
            m->host_cos[(size_t)i * hd + j] = m->host_cos[(size_t)i * hd + j + half] = c;
            m->host_sin[(size_t)i * hd + j] = m->host_sin[(size_t)i * hd + j + half] = s;
        }
    hd_tensor cs = hd_view_rows(&m->cos, 0, n), sn = hd_view_rows(&m->sin, 0, n);
    m->be->ops->write(m->be, &cs, m->host_cos);
    m->be->ops->write(m->be, &sn, m->host_sin);
}

/* One chunk of n <= HD_LM_CHUNK tokens at positions n_past.. through every layer. */
static void run_chunk(hd_lm *m, const int32_t *ids, int n) {
    const hd_backend_ops *op = m->be->ops;
    hd_backend *be = m->be;
    const hd_lm_config *c = &m->cfg;
    int64_t p0 = m->n_past;
    float eps = (float)c->eps, scale = 1.0f / sqrtf((float)c->head_dim);
    hd_tensor x = hd_view_rows(&m->x, 0, n), h = hd_view_rows(&m->h, 0, n);
    hd_tensor q = hd_view_rows(&m->q, 0, n), att = hd_view_rows(&m->att, 0, n);
    hd_tensor gate = hd_view_rows(&m->gate, 0, n), up = hd_view_rows(&m->up, 0, n);
    hd_tensor cs = hd_view_rows(&m->cos, 0, n), sn = hd_view_rows(&m->sin, 0, n);
    hd_attn_mask mask = {p0, p0 + n}; /* causal over every cached and new position */
    rope_tables(m, (int)p0, n);
    op->gather_rows(be, &x, &m->embed, ids, n);
    for (int l = 0; l < c->n_layers; l++) {
        hd_lm_layer *L = &m->layers[l];
        hd_tensor k_new = hd_view_rows(&L->k_cache, p0, n), v_new = hd_view_rows(&L->v_cache, p0, n);
        hd_tensor k_all = hd_view_rows(&L->k_cache, 0, p0 + n);
        hd_tensor v_all = hd_view_rows(&L->v_cache, 0, p0 + n);
        op->rmsnorm(be, &h, &x, &L->attn_norm, eps);
        /* k and v straight into the cache */
        hd_backend_linears(be, (hd_tensor *[]){&q, &k_new, &v_new}, &h,
                           (const hd_tensor *[]){&L->wq, &L->wk, &L->wv}, 3);
        op->rmsnorm(be, &q, &q, &L->q_norm, eps);
        op->rmsnorm(be, &k_new, &k_new, &L->k_norm, eps);
        op->rope(be, &q, &cs, &sn, c->head_dim);
        op->rope(be, &k_new, &cs, &sn, c->head_dim);
        op->attention(be, &att, &q, &k_all, &v_all, c->n_heads, c->n_kv_heads, c->head_dim,
                      scale, mask);
        op->linear(be, &h, &att, &L->wo, NULL);
        op->add(be, &x, &x, &h);
        op->rmsnorm(be, &h, &x, &L->mlp_norm, eps);
        hd_backend_linears(be, (hd_tensor *[]){&gate, &up}, &h,
                           (const hd_tensor *[]){&L->w_gate, &L->w_up}, 2);
        op->silu_mul(be, &gate, &gate, &up);
        op->linear(be, &h, &gate, &L->w_down, NULL);
        op->add(be, &x, &x, &h);
    }
    m->n_past += n;
}

/* Final norm and lm_head on chunk rows [r0, r0 + n), read into out [n, vocab], a few rows at
 * a time (a full chunk of vocabulary-wide rows would be a large buffer kept for nothing). */
static void head(hd_lm *m, int r0, int n, float *out) {
    const hd_backend_ops *op = m->be->ops;
    hd_tensor x = hd_view_rows(&m->x, r0, n), h = hd_view_rows(&m->h, 0, n);
    op->rmsnorm(m->be, &h, &x, &m->final_norm, (float)m->cfg.eps);
    for (int i = 0; i < n; i += HD_LM_LOGIT_ROWS) {
        int k = n - i < HD_LM_LOGIT_ROWS ? n - i : HD_LM_LOGIT_ROWS;
        hd_tensor hi = hd_view_rows(&m->h, i, k), lg = hd_view_rows(&m->logits, 0, k);
        op->linear(m->be, &lg, &hi, &m->lm_head, NULL);
        op->read(m->be, &lg, out + (size_t)i * m->cfg.vocab);
    }
}

int hd_lm_forward(hd_lm *m, const int32_t *ids, int n, float *logits, int all, hd_error *e) {
    if (n < 1 || n > m->max_ctx - m->n_past)
        return hd_fail(e, HD_EINVAL, "model: %d tokens do not fit the context (%d of %d used)",
                       n, m->n_past, m->max_ctx);
    for (int i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= m->cfg.vocab)
            return hd_fail(e, HD_EINVAL, "model: token id %d is outside the vocabulary (%d)",
                           ids[i], m->cfg.vocab);
    for (int i = 0; i < n; i += HD_LM_CHUNK) {
        int k = n - i < HD_LM_CHUNK ? n - i : HD_LM_CHUNK;
        run_chunk(m, ids + i, k);
        if (logits && all) head(m, 0, k, logits + (size_t)i * m->cfg.vocab);
        else if (logits && i + k == n) head(m, k - 1, 1, logits);
    }
    return hd_backend_status(m->be, e);
}
