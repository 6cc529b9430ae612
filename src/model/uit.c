/* The Unified Transformer forward pass (spec 03), top to bottom:
 *
 *   hd_uit_create          bind the weights
 *   embed_rows             token embeddings, ViT rows, timestep token, patch embedding (§1-3)
 *   run_layers             the decoder layers with the hybrid mask and DeepStack (§4, §5, §7, §8)
 *   head_rows              final RMSNorm + final_layer2 on the requested rows (§6)
 *   run                    one call: validate, size the scratch, embed, layers, head
 *
 * Everything is float32 (the golden reference is float64; no bf16 rounding is emulated). */
#include "model/uit.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "model/inventory.h"
#include "model/timestep.h"

#define MAX_SEQ (INT64_C(1) << 26) /* rows are indexed with int32 and sized in 64-bit bytes */

/* ---- weights ------------------------------------------------------------------------------ */

static const char *st_path(const hd_safetensors *st, const hd_st_tensor *t) {
    if (t->file >= 0 && t->file < st->n_files && st->files[t->file].path)
        return st->files[t->file].path;
    return "model";
}

/* Binds tensor `name` as a [rows, cols] weight for `use`; a 1-D tensor [cols] binds as
 * [1, cols]. */
static int bind_use(hd_uit *m, const hd_safetensors *st, hd_tensor *w, const char *name,
                    int64_t rows, int64_t cols, hd_weight_use use, hd_error *e) {
    const hd_st_tensor *t = hd_st_find(st, name);
    if (!t) return hd_fail(e, HD_EFORMAT, "model: missing tensor '%s'", name);
    int ok_shape = (t->ndim == 2 && t->shape[0] == rows && t->shape[1] == cols) ||
                   (t->ndim == 1 && rows == 1 && t->shape[0] == cols);
    if (!ok_shape) {
        char got[128] = "";
        size_t used = 0;
        for (int i = 0; i < t->ndim && used < sizeof got - 24; i++)
            used += (size_t)snprintf(got + used, sizeof got - used, "%s%lld", i ? ", " : "",
                                     (long long)t->shape[i]);
        if (rows == 1)
            return hd_fail(e, HD_EMISMATCH, "%s: tensor '%s': shape [%s], expected [%lld]",
                           st_path(st, t), name, got, (long long)cols);
        return hd_fail(e, HD_EMISMATCH, "%s: tensor '%s': shape [%s], expected [%lld, %lld]",
                       st_path(st, t), name, got, (long long)rows, (long long)cols);
    }
    float scale;
    HD_TRY(hd_inv_weight_scale(st, t, &scale, e));
    int rc = hd_backend_bind_weight(m->be, w, use, t->dtype, rows, cols, t->data, scale, e);
    if (rc < 0) hd_error_prefix(e, "%s: tensor '%s'", st_path(st, t), name);
    /* a weight the backend re-laid out (int8) is not read from the file again: drop its pages */
    if (rc == 0 && w->packed) hd_st_release(st, t, 0, t->nbytes);
    return rc;
}

/* A [1, cols] tensor is a vector parameter, anything larger the w of a matrix product. */
static int bind(hd_uit *m, const hd_safetensors *st, hd_tensor *w, const char *name,
                int64_t rows, int64_t cols, hd_error *e) {
    return bind_use(m, st, w, name, rows, cols, rows == 1 ? HD_USE_VECTOR : HD_USE_LINEAR, e);
}

static int bind_layer(hd_uit *m, const hd_safetensors *st, int i, hd_error *e) {
    hd_uit_layer *L = &m->layers[i];
    int64_t D = m->dim, hd = m->cfg.head_dim;
    char n[256];
#define BIND(field, suffix, r, c)                                                          \
    do {                                                                                   \
        snprintf(n, sizeof n, "model.language_model.layers.%d.%s", i, suffix);            \
        HD_TRY(bind(m, st, &L->field, n, r, c, e));                                        \
    } while (0)
    BIND(attn_norm, "input_layernorm.weight", 1, D);
    BIND(wq, "self_attn.q_proj.weight", m->q_dim, D);
    BIND(wk, "self_attn.k_proj.weight", m->kv_dim, D);
    BIND(wv, "self_attn.v_proj.weight", m->kv_dim, D);
    BIND(wo, "self_attn.o_proj.weight", D, m->q_dim);
    BIND(q_norm, "self_attn.q_norm.weight", 1, hd);
    BIND(k_norm, "self_attn.k_norm.weight", 1, hd);
    BIND(mlp_norm, "post_attention_layernorm.weight", 1, D);
    BIND(w_gate, "mlp.gate_proj.weight", m->ffn_dim, D);
    BIND(w_up, "mlp.up_proj.weight", m->ffn_dim, D);
#undef BIND
    /* its input, silu(gate)·up, has outliers that coarse int8 scales would spread */
    snprintf(n, sizeof n, "model.language_model.layers.%d.mlp.down_proj.weight", i);
    HD_TRY(bind_use(m, st, &L->w_down, n, D, m->ffn_dim, HD_USE_LINEAR_OUTLIERS, e));
    return 0;
}

/* The patch and timestep widths are not in config.json: take them from the tensors. */
static int dim_of(const hd_safetensors *st, const char *name, int axis, int64_t *out,
                  hd_error *e) {
    const hd_st_tensor *t = hd_st_find(st, name);
    if (!t) return hd_fail(e, HD_EFORMAT, "model: missing tensor '%s'", name);
    if (t->ndim != 2 || t->shape[axis] <= 0 || t->shape[axis] > (INT64_C(1) << 24))
        return hd_fail(e, HD_EMISMATCH, "%s: tensor '%s': expected a 2-D weight",
                       st_path(st, t), name);
    *out = t->shape[axis];
    return 0;
}

/* Checks the text config and sets every size of m that config.json determines. */
static int init_dims(hd_uit *m, const hd_config *cfg, hd_error *e) {
    const hd_text_config *c = &cfg->text;
    if (c->hidden_size <= 0 || c->num_layers <= 0 || c->num_heads <= 0 || c->num_kv_heads <= 0 ||
        c->head_dim <= 0 || c->intermediate_size <= 0 || c->vocab_size <= 0 ||
        c->num_heads % c->num_kv_heads != 0)
        return hd_fail(e, HD_EINVAL, "config: text_config: inconsistent sizes");
    if (!c->mrope_interleaved)
        return hd_fail(e, HD_EUNSUPPORTED,
                       "config: text_config.rope_scaling.mrope_interleaved: only the interleaved "
                       "MRoPE is supported");
    if (cfg->ids.tms < 0 || cfg->ids.tms >= c->vocab_size)
        return hd_fail(e, HD_EINVAL, "config: <|tms_token|> id %d not in the vocabulary",
                       cfg->ids.tms);
    m->cfg = *c;
    m->ids = cfg->ids;
    m->dim = c->hidden_size;
    m->q_dim = (int64_t)c->num_heads * c->head_dim;
    m->kv_dim = (int64_t)c->num_kv_heads * c->head_dim;
    m->ffn_dim = c->intermediate_size;
    m->eps = (float)c->rms_norm_eps;
    m->attn_scale = (float)(1.0 / sqrt((double)c->head_dim));
    HD_TRY(hd_rope_init(&m->rope, c->head_dim, c->rope_theta, c->mrope_section, e));
    return 0;
}

static int alloc_layers(hd_uit *m, hd_error *e) {
    m->layers = calloc((size_t)m->cfg.num_layers, sizeof *m->layers);
    if (!m->layers)
        return hd_fail(e, HD_ENOMEM, "model: out of memory for %d layers", m->cfg.num_layers);
    return 0;
}

static int create(hd_uit *m, const hd_config *cfg, const hd_safetensors *st, hd_error *e) {
    const hd_text_config *c = &cfg->text;
    HD_TRY(init_dims(m, cfg, e));
    HD_TRY(dim_of(st, "model.x_embedder.proj1.weight", 1, &m->patch_dim, e));
    HD_TRY(dim_of(st, "model.x_embedder.proj1.weight", 0, &m->bottleneck_dim, e));
    HD_TRY(dim_of(st, "model.t_embedder1.mlp.0.weight", 1, &m->freq_dim, e));

    int64_t D = m->dim;
    HD_TRY(bind_use(m, st, &m->embed_tokens, "model.language_model.embed_tokens.weight",
                    c->vocab_size, D, HD_USE_ROWS, e));
    HD_TRY(bind(m, st, &m->t_fc1_w, "model.t_embedder1.mlp.0.weight", D, m->freq_dim, e));
    HD_TRY(bind(m, st, &m->t_fc1_b, "model.t_embedder1.mlp.0.bias", 1, D, e));
    HD_TRY(bind(m, st, &m->t_fc2_w, "model.t_embedder1.mlp.2.weight", D, D, e));
    HD_TRY(bind(m, st, &m->t_fc2_b, "model.t_embedder1.mlp.2.bias", 1, D, e));
    HD_TRY(bind(m, st, &m->x_proj1_w, "model.x_embedder.proj1.weight", m->bottleneck_dim,
                m->patch_dim, e));
    HD_TRY(bind(m, st, &m->x_proj2_w, "model.x_embedder.proj2.weight", D, m->bottleneck_dim, e));
    HD_TRY(bind(m, st, &m->x_proj2_b, "model.x_embedder.proj2.bias", 1, D, e));
    HD_TRY(bind(m, st, &m->final_norm, "model.language_model.norm.weight", 1, D, e));
    HD_TRY(bind(m, st, &m->head_w, "model.final_layer2.linear.weight", m->patch_dim, D, e));
    HD_TRY(bind(m, st, &m->head_b, "model.final_layer2.linear.bias", 1, m->patch_dim, e));
    HD_TRY(alloc_layers(m, e));
    for (int i = 0; i < c->num_layers; i++) HD_TRY(bind_layer(m, st, i, e));
    return 0;
}

int hd_uit_create(hd_uit **out, hd_backend *be, const hd_config *cfg, const hd_safetensors *st,
                  hd_error *e) {
    *out = NULL;
    hd_uit *m = calloc(1, sizeof *m);
    if (!m) return hd_fail(e, HD_ENOMEM, "model: out of memory");
    m->be = be;
    int rc = create(m, cfg, st, e);
    if (rc < 0) {
        hd_uit_free(m);
        return rc;
    }
    *out = m;
    return 0;
}

int hd_uit_create_unbound(hd_uit **out, hd_backend *be, const hd_config *cfg, int64_t patch_dim,
                          int64_t bottleneck_dim, int64_t freq_dim, hd_error *e) {
    *out = NULL;
    const int64_t max_dim = INT64_C(1) << 24;
    if (patch_dim < 1 || patch_dim > max_dim || bottleneck_dim < 1 || bottleneck_dim > max_dim ||
        freq_dim < 2 || freq_dim > max_dim)
        return hd_fail(e, HD_EINVAL, "model: patch %lld, bottleneck %lld, timestep %lld widths "
                       "out of range", (long long)patch_dim, (long long)bottleneck_dim,
                       (long long)freq_dim);
    hd_uit *m = calloc(1, sizeof *m);
    if (!m) return hd_fail(e, HD_ENOMEM, "model: out of memory");
    m->be = be;
    int rc = init_dims(m, cfg, e);
    if (rc == 0) rc = alloc_layers(m, e);
    if (rc < 0) {
        hd_uit_free(m);
        return rc;
    }
    m->patch_dim = patch_dim;
    m->bottleneck_dim = bottleneck_dim;
    m->freq_dim = freq_dim;
    *out = m;
    return 0;
}

static void free_scratch(hd_uit *m) {
    hd_uit_scratch *s = &m->s;
    hd_tensor *ts[] = {&s->x,   &s->h,   &s->q,          &s->att, &s->k,    &s->v,
                       &s->gate, &s->up, &s->cos,        &s->sin, &s->vin,  &s->bottleneck,
                       &s->sel, &s->pred, &s->tfreq,     &s->th,  &s->temb};
    for (size_t i = 0; i < sizeof ts / sizeof *ts; i++) hd_tensor_free(m->be, ts[i]);
    free(s->host_cos);
    free(s->host_sin);
    free(s->host_hidden);
    free(s->idx);
    hd_uit_scratch zero = {0};
    *s = zero;
}

void hd_uit_free(hd_uit *m) {
    if (!m) return;
    hd_backend *be = m->be;
    free_scratch(m);
    if (m->layers) {
        for (int i = 0; i < m->cfg.num_layers; i++) {
            hd_uit_layer *L = &m->layers[i];
            hd_tensor *ws[] = {&L->attn_norm, &L->wq,     &L->wk,   &L->wv,
                               &L->wo,        &L->q_norm, &L->k_norm, &L->mlp_norm,
                               &L->w_gate,    &L->w_up,   &L->w_down};
            for (size_t j = 0; j < sizeof ws / sizeof *ws; j++) hd_tensor_free(be, ws[j]);
        }
        free(m->layers);
    }
    hd_tensor *ws[] = {&m->embed_tokens, &m->t_fc1_w,  &m->t_fc1_b,  &m->t_fc2_w,
                       &m->t_fc2_b,      &m->x_proj1_w, &m->x_proj2_w, &m->x_proj2_b,
                       &m->final_norm,   &m->head_w,   &m->head_b};
    for (size_t j = 0; j < sizeof ws / sizeof *ws; j++) hd_tensor_free(be, ws[j]);
    hd_rope_free(&m->rope);
    free(m);
}

/* ---- scratch ------------------------------------------------------------------------------ */

/* Makes t a float32 tensor with at least `rows` rows (its capacity); callers use row views. */
static int ensure(hd_uit *m, hd_tensor *t, int64_t rows, int64_t cols, hd_error *e) {
    if (rows < 1) rows = 1;
    if (t->data && t->rows >= rows && t->cols == cols) return 0;
    hd_tensor_free(m->be, t);
    int rc = m->be->ops->alloc(m->be, t, HD_F32, rows, cols, e);
    if (rc < 0) hd_error_prefix(e, "model: scratch [%lld, %lld]", (long long)rows, (long long)cols);
    return rc;
}

static int ensure_host(void **p, size_t bytes, hd_error *e) {
    if (bytes == 0) bytes = 1;
    void *q = realloc(*p, bytes);
    if (!q) return hd_fail(e, HD_ENOMEM, "model: out of host memory (%zu bytes)", bytes);
    *p = q;
    return 0;
}

/* Sizes the scratch for n processed rows, kv_rows keys, np patch rows and n_out head rows. */
static int grow_scratch(hd_uit *m, int64_t n, int64_t kv_rows, int64_t np, int64_t n_out,
                        int want_hidden, hd_error *e) {
    hd_uit_scratch *s = &m->s;
    int64_t hd = m->cfg.head_dim;
    if (n > s->rows) {
        HD_TRY(ensure(m, &s->x, n, m->dim, e));
        HD_TRY(ensure(m, &s->h, n, m->dim, e));
        HD_TRY(ensure(m, &s->q, n, m->q_dim, e));
        HD_TRY(ensure(m, &s->att, n, m->q_dim, e));
        HD_TRY(ensure(m, &s->gate, n, m->ffn_dim, e));
        HD_TRY(ensure(m, &s->up, n, m->ffn_dim, e));
        HD_TRY(ensure(m, &s->cos, n, hd, e));
        HD_TRY(ensure(m, &s->sin, n, hd, e));
        HD_TRY(ensure_host((void **)&s->host_cos, (size_t)n * (size_t)hd * sizeof(float), e));
        HD_TRY(ensure_host((void **)&s->host_sin, (size_t)n * (size_t)hd * sizeof(float), e));
        HD_TRY(ensure_host((void **)&s->idx, (size_t)n * sizeof(int32_t), e));
        free(s->host_hidden); /* re-made on demand below at the new size */
        s->host_hidden = NULL;
        s->rows = n;
    }
    if (want_hidden && !s->host_hidden)
        HD_TRY(ensure_host((void **)&s->host_hidden,
                           (size_t)s->rows * (size_t)m->dim * sizeof(float), e));
    if (kv_rows > s->kv_rows) {
        HD_TRY(ensure(m, &s->k, kv_rows, m->kv_dim, e));
        HD_TRY(ensure(m, &s->v, kv_rows, m->kv_dim, e));
        s->kv_rows = kv_rows;
    }
    if (np > s->patches) {
        HD_TRY(ensure(m, &s->vin, np, m->patch_dim, e));
        HD_TRY(ensure(m, &s->bottleneck, np, m->bottleneck_dim, e));
        s->patches = np;
    }
    if (n_out > s->outs) {
        HD_TRY(ensure(m, &s->sel, n_out, m->dim, e));
        HD_TRY(ensure(m, &s->pred, n_out, m->patch_dim, e));
        s->outs = n_out;
    }
    if (!s->tfreq.data) {
        HD_TRY(ensure(m, &s->tfreq, 1, m->freq_dim, e));
        HD_TRY(ensure(m, &s->th, 1, m->dim, e));
        HD_TRY(ensure(m, &s->temb, 1, m->dim, e));
    }
    return 0;
}

/* On failure everything is released, so the recorded capacities never outlive their tensors. */
static int ensure_scratch(hd_uit *m, int64_t n, int64_t kv_rows, int64_t np, int64_t n_out,
                          int want_hidden, hd_error *e) {
    int rc = grow_scratch(m, n, kv_rows, np, n_out, want_hidden, e);
    if (rc < 0) free_scratch(m);
    return rc;
}

/* ---- sequence checks ---------------------------------------------------------------------- */

int hd_uit_causal_prefix(const uint8_t *types, int64_t n_seq, int64_t *n_causal, hd_error *e) {
    int64_t a = 0;
    while (a < n_seq && types[a] == 0) a++;
    for (int64_t s = a; s < n_seq; s++)
        if (types[s] != 1)
            return hd_fail(e, HD_EINVAL,
                           "token_types: position %lld has type %d after the causal prefix of %lld "
                           "(expected 0s then 1s)",
                           (long long)s, types[s], (long long)a);
    *n_causal = a;
    return 0;
}

/* Counts the rows of ids[lo, hi) equal to id, writing their offsets from lo into idx (if not
 * NULL); *before receives the count in ids[0, lo). */
static int64_t rows_with_id(const int32_t *ids, int64_t lo, int64_t hi, int32_t id, int32_t *idx,
                            int64_t *before) {
    int64_t b = 0, n = 0;
    for (int64_t r = 0; r < lo; r++) b += ids[r] == id;
    for (int64_t r = lo; r < hi; r++)
        if (ids[r] == id) {
            if (idx) idx[n] = (int32_t)(r - lo);
            n++;
        }
    if (before) *before = b;
    return n;
}

static int check_seq(const hd_uit *m, const hd_uit_seq *q, hd_error *e) {
    if (q->n_seq < 1 || q->n_seq > MAX_SEQ || q->n_text < 0 || q->n_text > q->n_seq)
        return hd_fail(e, HD_EINVAL, "sequence: %lld text rows of %lld (need 0 <= T <= S, 1 <= S "
                       "<= %lld)", (long long)q->n_text, (long long)q->n_seq, (long long)MAX_SEQ);
    if (q->n_causal < 0 || q->n_causal > q->n_text)
        return hd_fail(e, HD_EINVAL, "sequence: causal prefix %lld must lie in the %lld text rows",
                       (long long)q->n_causal, (long long)q->n_text);
    if (!q->pos || (q->n_text > 0 && !q->ids))
        return hd_fail(e, HD_EINVAL, "sequence: missing ids or positions");
    for (int64_t s = 0; s < q->n_text; s++)
        if (q->ids[s] < 0 || q->ids[s] >= m->cfg.vocab_size)
            return hd_fail(e, HD_EINVAL, "sequence: input_ids[%lld] = %d outside the vocabulary "
                           "(%d)", (long long)s, q->ids[s], m->cfg.vocab_size);
    int64_t n_pad = rows_with_id(q->ids, 0, q->n_text, m->ids.image_pad, NULL, NULL);
    const hd_vit_output *v = q->vit;
    if (!v) {
        if (n_pad)
            return hd_fail(e, HD_EINVAL, "sequence: %lld <|image_pad|> tokens but no ViT output",
                           (long long)n_pad);
        return 0;
    }
    if (v->n_tokens != n_pad)
        return hd_fail(e, HD_EMISMATCH, "sequence: %lld <|image_pad|> tokens but the ViT gave %lld "
                       "embeddings", (long long)n_pad, (long long)v->n_tokens);
    if (v->n_deepstack < 0 || v->n_deepstack > HD_MAX_DEEPSTACK ||
        v->n_deepstack > m->cfg.num_layers)
        return hd_fail(e, HD_EMISMATCH, "sequence: %d DeepStack features for %d decoder layers",
                       v->n_deepstack, m->cfg.num_layers);
    if (n_pad && (v->embeds.rows < n_pad || v->embeds.cols != m->dim))
        return hd_fail(e, HD_EMISMATCH, "sequence: ViT embeds [%lld, %lld], expected [%lld, %lld]",
                       (long long)v->embeds.rows, (long long)v->embeds.cols, (long long)n_pad,
                       (long long)m->dim);
    for (int i = 0; n_pad && i < v->n_deepstack; i++)
        if (v->deepstack[i].rows < n_pad || v->deepstack[i].cols != m->dim)
            return hd_fail(e, HD_EMISMATCH, "sequence: ViT deepstack[%d] [%lld, %lld], expected "
                           "[%lld, %lld]", i, (long long)v->deepstack[i].rows,
                           (long long)v->deepstack[i].cols, (long long)n_pad, (long long)m->dim);
    return 0;
}

/* ---- the forward pieces ------------------------------------------------------------------- */

/* Timestep token embedding e_t = W2 · SiLU(W1 · sinusoid(t) + b1) + b2 into s.temb (spec 03 §2). */
static void timestep_embedding(hd_uit *m, double t, float *host_freq) {
    const hd_backend_ops *op = m->be->ops;
    hd_uit_scratch *s = &m->s;
    hd_timestep_sinusoid(t, (int)m->freq_dim, host_freq);
    op->write(m->be, &s->tfreq, host_freq);
    op->linear(m->be, &s->th, &s->tfreq, &m->t_fc1_w, &m->t_fc1_b);
    op->silu(m->be, &s->th, &s->th);
    op->linear(m->be, &s->temb, &s->th, &m->t_fc2_w, &m->t_fc2_b);
}

/* Residual stream entering layer 0 for sequence rows [r0, r0+n) into s.x rows [0, n)
 * (spec 03 §1): token embeddings, ViT rows at the image pads, the timestep embedding at every
 * <|tms_token|>, and the bottleneck patch embedding of the patch rows. Needs r0 <= T. */
static int embed_rows(hd_uit *m, const hd_uit_seq *q, int64_t r0, int64_t n,
                      const float *vinputs, double t, hd_error *e) {
    const hd_backend_ops *op = m->be->ops;
    hd_backend *be = m->be;
    hd_uit_scratch *s = &m->s;
    hd_tensor x = hd_view_rows(&s->x, 0, n);
    int64_t text_end = q->n_text < r0 + n ? q->n_text : r0 + n;
    int64_t nt = text_end > r0 ? text_end - r0 : 0;
    if (nt > 0) {
        hd_tensor xt = hd_view_rows(&x, 0, nt);
        op->gather_rows(be, &xt, &m->embed_tokens, q->ids + r0, nt);
        if (q->vit) {
            int64_t m0 = 0;
            int64_t cnt = rows_with_id(q->ids, r0, text_end, m->ids.image_pad, s->idx, &m0);
            if (cnt > 0) {
                hd_tensor src = hd_view_rows(&q->vit->embeds, m0, cnt);
                op->set_rows(be, &x, &src, s->idx, cnt);
            }
        }
        int64_t n_tms = rows_with_id(q->ids, r0, text_end, m->ids.tms, s->idx, NULL);
        if (n_tms > 0) {
            float *freq = malloc((size_t)m->freq_dim * sizeof *freq);
            if (!freq) return hd_fail(e, HD_ENOMEM, "model: out of memory (timestep)");
            timestep_embedding(m, t, freq);
            free(freq);
            for (int64_t i = 0; i < n_tms; i++) op->set_rows(be, &x, &s->temb, &s->idx[i], 1);
        }
    }
    int64_t np = r0 + n - q->n_text; /* patch rows in range; r0 <= T so they start at patch 0 */
    if (np > 0) {
        if (!vinputs) return hd_fail(e, HD_EINVAL, "model: vinputs missing for %lld patch rows",
                                     (long long)np);
        hd_tensor vin = hd_view_rows(&s->vin, 0, np);
        hd_tensor mid = hd_view_rows(&s->bottleneck, 0, np);
        hd_tensor xp = hd_view_rows(&x, q->n_text - r0, np);
        op->write(be, &vin, vinputs);
        op->linear(be, &mid, &vin, &m->x_proj1_w, NULL);
        op->linear(be, &xp, &mid, &m->x_proj2_w, &m->x_proj2_b);
    }
    return 0;
}

static void probe_call(hd_uit *m, const hd_uit_probe *p, int layer, int64_t r0, int64_t n) {
    if (!p || !p->fn) return;
    const float *hidden = NULL;
    if (layer < p->n_capture && m->s.host_hidden) {
        hd_tensor x = hd_view_rows(&m->s.x, 0, n);
        m->be->ops->read(m->be, &x, m->s.host_hidden);
        hidden = m->s.host_hidden;
    }
    p->fn(p->ctx, layer, r0, n, hidden);
}

/* The decoder layers over sequence rows [r0, r0+n) held in s.x rows [0, n) (spec 03 §4).
 * Keys/values of rows [0, r0) come from `use` (the prefix cache); the keys/values of the
 * processed rows are kept in `save` when building a prefix. Query row i has global position
 * r0 + i: rows below A attend causally, the rest see every key (the hybrid mask, §7). */
static int run_layers(hd_uit *m, const hd_uit_seq *q, int64_t r0, int64_t n,
                      const hd_prefix_cache *use, hd_prefix_cache *save,
                      const hd_uit_probe *probe) {
    const hd_backend_ops *op = m->be->ops;
    hd_backend *be = m->be;
    hd_uit_scratch *s = &m->s;
    const hd_text_config *c = &m->cfg;
    int hd = c->head_dim;
    hd_attn_mask mask = {r0, q->n_causal};
    hd_tensor x = hd_view_rows(&s->x, 0, n), h = hd_view_rows(&s->h, 0, n);
    hd_tensor qv = hd_view_rows(&s->q, 0, n), att = hd_view_rows(&s->att, 0, n);
    hd_tensor k_all = hd_view_rows(&s->k, 0, r0 + n), v_all = hd_view_rows(&s->v, 0, r0 + n);
    hd_tensor k_own = hd_view_rows(&s->k, r0, n), v_own = hd_view_rows(&s->v, r0, n);
    hd_tensor k_pre = hd_view_rows(&s->k, 0, r0), v_pre = hd_view_rows(&s->v, 0, r0);
    hd_tensor gate = hd_view_rows(&s->gate, 0, n), up = hd_view_rows(&s->up, 0, n);
    hd_tensor cs = hd_view_rows(&s->cos, 0, n), sn = hd_view_rows(&s->sin, 0, n);

    /* image-pad rows in range, for DeepStack (the same for every layer) */
    int64_t ds_first = 0, n_ds_rows = 0;
    int n_ds = q->vit ? q->vit->n_deepstack : 0;
    if (n_ds > 0) {
        int64_t text_end = q->n_text < r0 + n ? q->n_text : r0 + n;
        if (text_end > r0)
            n_ds_rows = rows_with_id(q->ids, r0, text_end, m->ids.image_pad, s->idx, &ds_first);
    }

    for (int l = 0; l < c->num_layers; l++) {
        if (m->cancel && m->cancel(m->cancel_user)) return HD_ECANCELLED;
        const hd_uit_layer *L = &m->layers[l];
        /* attention block: h = RMSNorm(x); q, k, v; QK-norm per head; MRoPE; GQA */
        op->rmsnorm(be, &h, &x, &L->attn_norm, m->eps);
        hd_backend_linears(be, (hd_tensor *[]){&qv, &k_own, &v_own}, &h,
                           (const hd_tensor *[]){&L->wq, &L->wk, &L->wv}, 3);
        op->rmsnorm(be, &qv, &qv, &L->q_norm, m->eps);
        op->rmsnorm(be, &k_own, &k_own, &L->k_norm, m->eps);
        op->rope(be, &qv, &cs, &sn, hd);
        op->rope(be, &k_own, &cs, &sn, hd);
        if (use && r0 > 0) {
            op->copy(be, &k_pre, &use->k[l]);
            op->copy(be, &v_pre, &use->v[l]);
        }
        if (save && n > 0) {
            op->copy(be, &save->k[l], &k_own);
            op->copy(be, &save->v[l], &v_own);
        }
        op->attention(be, &att, &qv, &k_all, &v_all, c->num_heads, c->num_kv_heads, hd,
                      m->attn_scale, mask);
        op->linear(be, &h, &att, &L->wo, NULL);
        op->add(be, &x, &x, &h);
        /* MLP block: SwiGLU */
        op->rmsnorm(be, &h, &x, &L->mlp_norm, m->eps);
        hd_backend_linears(be, (hd_tensor *[]){&gate, &up}, &h,
                           (const hd_tensor *[]){&L->w_gate, &L->w_up}, 2);
        op->silu_mul(be, &gate, &gate, &up);
        op->linear(be, &h, &gate, &L->w_down, NULL);
        op->add(be, &x, &x, &h);
        /* DeepStack: after layer l < n_ds, add D_l at the image-pad rows (§8) */
        if (l < n_ds && n_ds_rows > 0) {
            hd_tensor src = hd_view_rows(&q->vit->deepstack[l], ds_first, n_ds_rows);
            op->add_rows(be, &x, &src, s->idx, n_ds_rows);
        }
        probe_call(m, probe, l, r0, n);
    }
    return 0;
}

/* Final RMSNorm and final_layer2 on the requested rows (global indices in [r0, r0+n)), read
 * back into out [n_out, patch_dim] (spec 03 §6). Contiguous runs are moved with one copy. */
static void head_rows(hd_uit *m, int64_t r0, const int32_t *rows, int64_t n_out, float *out) {
    const hd_backend_ops *op = m->be->ops;
    hd_backend *be = m->be;
    hd_uit_scratch *s = &m->s;
    if (n_out == 0) return;
    for (int64_t i = 0; i < n_out;) {
        int64_t len = 1;
        while (i + len < n_out && rows[i + len] == rows[i] + len) len++;
        hd_tensor dst = hd_view_rows(&s->sel, i, len);
        hd_tensor src = hd_view_rows(&s->x, rows[i] - r0, len);
        op->copy(be, &dst, &src);
        i += len;
    }
    hd_tensor sel = hd_view_rows(&s->sel, 0, n_out), pred = hd_view_rows(&s->pred, 0, n_out);
    op->rmsnorm(be, &sel, &sel, &m->final_norm, m->eps);
    op->linear(be, &pred, &sel, &m->head_w, &m->head_b);
    op->read(be, &pred, out);
}

/* One call over sequence rows [r0, r0+n): see the public functions below. */
static int run(hd_uit *m, const hd_uit_seq *q, int64_t r0, int64_t n, const float *vinputs,
               double t, const hd_prefix_cache *use, hd_prefix_cache *save,
               const int32_t *out_rows, int64_t n_out, float *out, const hd_uit_probe *probe,
               hd_error *e) {
    if (n_out < 0 || (n_out > 0 && (!out_rows || !out)))
        return hd_fail(e, HD_EINVAL, "model: bad output rows");
    for (int64_t i = 0; i < n_out; i++)
        if (out_rows[i] < r0 || out_rows[i] >= r0 + n)
            return hd_fail(e, HD_EINVAL, "model: output row %d outside the computed rows "
                           "[%lld, %lld)", out_rows[i], (long long)r0, (long long)(r0 + n));
    if (n == 0) return 0;
    int64_t np = r0 + n - q->n_text;
    int want_hidden = probe && probe->fn && probe->n_capture > 0;
    HD_TRY(ensure_scratch(m, n, r0 + n, np > 0 ? np : 0, n_out, want_hidden, e));

    hd_rope_tables(&m->rope, q->pos, q->n_seq, r0, n, m->s.host_cos, m->s.host_sin);
    hd_tensor cs = hd_view_rows(&m->s.cos, 0, n), sn = hd_view_rows(&m->s.sin, 0, n);
    m->be->ops->write(m->be, &cs, m->s.host_cos);
    m->be->ops->write(m->be, &sn, m->s.host_sin);

    HD_TRY(embed_rows(m, q, r0, n, vinputs, t, e));
    probe_call(m, probe, -1, r0, n);
    if (run_layers(m, q, r0, n, use, save, probe) < 0) {
        hd_error ignored = {0};
        hd_backend_status(m->be, &ignored); /* drain what was queued */
        return hd_fail(e, HD_ECANCELLED, "cancelled");
    }
    head_rows(m, r0, out_rows, n_out, out);
    /* ops cannot fail one by one; a device backend reports its first failure here */
    return hd_backend_status(m->be, e);
}

int hd_uit_forward(hd_uit *m, const hd_uit_seq *seq, const float *vinputs, double t,
                   const int32_t *out_rows, int64_t n_out, float *out, const hd_uit_probe *probe,
                   hd_error *e) {
    HD_TRY(check_seq(m, seq, e));
    return run(m, seq, 0, seq->n_seq, vinputs, t, NULL, NULL, out_rows, n_out, out, probe, e);
}

int hd_uit_prefix_build(hd_uit *m, const hd_uit_seq *seq, hd_prefix_cache *pc,
                        const hd_uit_probe *probe, hd_error *e) {
    hd_prefix_cache zero = {0};
    *pc = zero;
    HD_TRY(check_seq(m, seq, e));
    int64_t a = seq->n_causal;
    if (rows_with_id(seq->ids, 0, a, m->ids.tms, NULL, NULL) > 0)
        return hd_fail(e, HD_EINVAL, "sequence: a <|tms_token|> lies in the causal prefix of %lld "
                       "rows (its embedding depends on the step)", (long long)a);
    HD_TRY(hd_prefix_cache_alloc(pc, m->be, m->cfg.num_layers, a, m->kv_dim, e));
    int rc = run(m, seq, 0, a, NULL, 0.0, NULL, pc, NULL, 0, NULL, probe, e);
    if (rc < 0) {
        hd_prefix_cache_free(pc);
        return rc;
    }
    hd_prefix_cache_set_key(pc, seq->ids, seq->pos, seq->n_seq);
    pc->complete = 1;
    return 0;
}

int hd_uit_forward_cached(hd_uit *m, const hd_prefix_cache *pc, const hd_uit_seq *seq,
                          const float *vinputs, double t, const int32_t *out_rows, int64_t n_out,
                          float *out, const hd_uit_probe *probe, hd_error *e) {
    HD_TRY(check_seq(m, seq, e));
    if (pc->n_layers != m->cfg.num_layers || pc->kv_dim != m->kv_dim ||
        !hd_prefix_cache_matches(pc, seq->ids, seq->pos, seq->n_seq, seq->n_causal))
        return hd_fail(e, HD_EMISMATCH, "prefix cache: built for another sequence or model");
    int64_t a = seq->n_causal;
    return run(m, seq, a, seq->n_seq - a, vinputs, t, pc, NULL, out_rows, n_out, out, probe, e);
}
