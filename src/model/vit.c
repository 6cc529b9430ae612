/* The Qwen3-VL vision tower on the backend (spec 04): patch embedding, interpolated position
 * embedding, depth × (LayerNorm → qkv → 2-D rotary → per-image attention → proj, LayerNorm → MLP),
 * DeepStack mergers after the listed blocks and the final 2×2 merger.
 *
 * Activations are float32 throughout (no bf16 rounding): the float32 path tracks the float64
 * golden reference. Host code only prepares tables (rotary, position embedding) from the grids. */
#include "model/vit.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "model/inventory.h"
#include "model/vit_internal.h"

#define VIT_LN_EPS 1e-6f
/* Bounds that keep every size product far from overflow; real inputs are ~10^4 tokens. */
#define VIT_MAX_GRID_SIDE (1 << 15)
#define VIT_MAX_TOKENS ((int64_t)1 << 24)

typedef struct vit_block {
    hd_tensor norm1_w, norm1_b, qkv_w, qkv_b, proj_w, proj_b;
    hd_tensor norm2_w, norm2_b, fc1_w, fc1_b, fc2_w, fc2_b;
} vit_block;

/* A patch merger: LayerNorm (over vh before grouping for the final merger, over m²·vh after
 * grouping for DeepStack) → fc1 → exact GELU → fc2. */
typedef struct vit_merger {
    hd_tensor norm_w, norm_b, fc1_w, fc1_b, fc2_w, fc2_b;
} vit_merger;

struct hd_vit {
    hd_backend *be;
    hd_vision_config cfg;
    int head_dim;
    int merge, group;        /* m and m² (tokens per merged row) */
    int64_t patch_dim;       /* in_ch · temporal · patch² */
    int mlp_tanh;            /* block MLP activation: 1 gelu_tanh, 0 exact gelu */
    hd_tensor patch_w, patch_b;
    int pos_side;            /* the learned table is pos_side × pos_side */
    float *pos_table;        /* host [pos_side², vh] float32 (input preparation only) */
    float *inv_freq;         /* host [head_dim / 4] */
    vit_block *blocks;       /* [depth] */
    vit_merger merger;
    vit_merger *deepstack;   /* [n_deepstack], config order */
    int *tap_of_block;       /* [depth]: DeepStack merger index after block b, or -1 */
};

/* ---------------------------------------------------------------------------------------------
 * Binding
 * ------------------------------------------------------------------------------------------- */

static const char *st_file_name(const hd_safetensors *st, int file) {
    if (file >= 0 && file < st->n_files && st->files[file].path) return st->files[file].path;
    return "model.safetensors";
}

/* Finds model.visual.<name> and checks it holds rows × cols values: a 1-D tensor of cols when
 * rows == 1, else shape[0] == rows with the remaining dimensions flattened into cols. */
static int find_visual(const hd_safetensors *st, const char *name, int64_t rows, int64_t cols,
                       const hd_st_tensor **out, hd_error *e) {
    char full[192];
    snprintf(full, sizeof full, "model.visual.%s", name);
    const hd_st_tensor *t = hd_st_find(st, full);
    if (!t)
        return hd_fail(e, HD_EFORMAT, "%s: tensor '%s' is missing (vision tower)",
                       st_file_name(st, 0), full);
    int64_t tail = 1;
    for (int d = 1; d < t->ndim; d++) tail *= t->shape[d];
    int ok = t->ndim == 1 ? (rows == 1 && t->shape[0] == cols)
                          : (t->ndim >= 2 && t->shape[0] == rows && tail == cols);
    if (!ok || t->numel != rows * cols)
        return hd_fail(e, HD_EFORMAT,
                       "%s: tensor '%s': shape does not match the vision config (expected %lld x %lld "
                       "values)",
                       st_file_name(st, t->file), full, (long long)rows, (long long)cols);
    *out = t;
    return 0;
}

static int bind(hd_vit *vit, const hd_safetensors *st, const char *name, int64_t rows,
                int64_t cols, hd_tensor *w, hd_error *e) {
    const hd_st_tensor *t;
    HD_TRY(find_visual(st, name, rows, cols, &t, e));
    float scale;
    HD_TRY(hd_inv_weight_scale(st, t, &scale, e));
    /* the tower runs once per request: its products keep the stored weights (no int8) */
    int rc = hd_backend_bind_weight(vit->be, w, rows == 1 ? HD_USE_VECTOR : HD_USE_LINEAR_ONCE,
                                    t->dtype, rows, cols, t->data, scale, e);
    if (rc < 0) hd_error_prefix(e, "%s: tensor 'model.visual.%s'", st_file_name(st, t->file), name);
    return rc;
}

static int bind_block(hd_vit *vit, const hd_safetensors *st, int b, hd_error *e) {
    int64_t vh = vit->cfg.hidden_size, inter = vit->cfg.intermediate_size;
    vit_block *k = &vit->blocks[b];
    char n[96];
#define BIND(field, suffix, rows, cols)                           \
    do {                                                          \
        snprintf(n, sizeof n, "blocks.%d.%s", b, suffix);         \
        HD_TRY(bind(vit, st, n, rows, cols, &k->field, e));       \
    } while (0)
    BIND(norm1_w, "norm1.weight", 1, vh);
    BIND(norm1_b, "norm1.bias", 1, vh);
    BIND(qkv_w, "attn.qkv.weight", 3 * vh, vh);
    BIND(qkv_b, "attn.qkv.bias", 1, 3 * vh);
    BIND(proj_w, "attn.proj.weight", vh, vh);
    BIND(proj_b, "attn.proj.bias", 1, vh);
    BIND(norm2_w, "norm2.weight", 1, vh);
    BIND(norm2_b, "norm2.bias", 1, vh);
    BIND(fc1_w, "mlp.linear_fc1.weight", inter, vh);
    BIND(fc1_b, "mlp.linear_fc1.bias", 1, inter);
    BIND(fc2_w, "mlp.linear_fc2.weight", vh, inter);
    BIND(fc2_b, "mlp.linear_fc2.bias", 1, vh);
#undef BIND
    return 0;
}

/* prefix is "merger" or "deepstack_merger_list.<j>"; norm_width is vh or m²·vh. */
static int bind_merger(hd_vit *vit, const hd_safetensors *st, const char *prefix,
                       int64_t norm_width, vit_merger *mg, hd_error *e) {
    int64_t wide = (int64_t)vit->group * vit->cfg.hidden_size, out = vit->cfg.out_hidden_size;
    char n[96];
#define BIND(field, suffix, rows, cols)                            \
    do {                                                           \
        snprintf(n, sizeof n, "%s.%s", prefix, suffix);            \
        HD_TRY(bind(vit, st, n, rows, cols, &mg->field, e));       \
    } while (0)
    BIND(norm_w, "norm.weight", 1, norm_width);
    BIND(norm_b, "norm.bias", 1, norm_width);
    BIND(fc1_w, "linear_fc1.weight", wide, wide);
    BIND(fc1_b, "linear_fc1.bias", 1, wide);
    BIND(fc2_w, "linear_fc2.weight", out, wide);
    BIND(fc2_b, "linear_fc2.bias", 1, out);
#undef BIND
    return 0;
}

/* The learned position table, converted once to float32 on the host. The table side follows
 * upstream: floor(sqrt(num_position_embeddings)). */
static int load_pos_table(hd_vit *vit, const hd_safetensors *st, hd_error *e) {
    int64_t vh = vit->cfg.hidden_size, n_pos = vit->cfg.num_position_embeddings;
    const hd_st_tensor *t;
    HD_TRY(find_visual(st, "pos_embed.weight", n_pos, vh, &t, e));
    int side = (int)sqrt((double)n_pos);
    while ((int64_t)side * side > n_pos) side--;
    while ((int64_t)(side + 1) * (side + 1) <= n_pos) side++;
    vit->pos_side = side;
    size_t n = (size_t)side * (size_t)side * (size_t)vh;
    vit->pos_table = malloc(n * sizeof(float));
    if (!vit->pos_table)
        return hd_fail(e, HD_ENOMEM, "%s: tensor 'model.visual.pos_embed.weight': out of memory",
                       st_file_name(st, t->file));
    if (hd_convert_to_f32(t->dtype, t->data, vit->pos_table, n) != 0)
        return hd_fail(e, HD_EUNSUPPORTED,
                       "%s: tensor 'model.visual.pos_embed.weight': dtype %s is not a float type",
                       st_file_name(st, t->file), hd_dtype_name(t->dtype));
    return 0;
}

/* Checks the vision_config fields this file relies on (config.c validates the rest). */
static int check_config(const hd_vision_config *v, hd_error *e) {
    const char *f = "config.json: vision_config";
    if (!v->present)
        return hd_fail(e, HD_EUNSUPPORTED,
                       "%s: absent: this model has no vision tower (reference images need one)", f);
    if (v->depth < 1 || v->hidden_size < 1 || v->num_heads < 1 || v->intermediate_size < 1 ||
        v->patch_size < 1 || v->temporal_patch_size < 1 || v->spatial_merge_size < 1 ||
        v->in_channels < 1 || v->out_hidden_size < 1 || v->num_position_embeddings < 1)
        return hd_fail(e, HD_EFORMAT, "%s: sizes must be positive", f);
    if (v->hidden_size % v->num_heads != 0)
        return hd_fail(e, HD_EFORMAT, "%s.num_heads: %d does not divide hidden_size %d", f,
                       v->num_heads, v->hidden_size);
    if ((v->hidden_size / v->num_heads) % 4 != 0)
        return hd_fail(e, HD_EUNSUPPORTED,
                       "%s.num_heads: head dim %d is not a multiple of 4 (2-D rotary)", f,
                       v->hidden_size / v->num_heads);
    if (v->spatial_merge_size > 64 || v->patch_size > 4096 || v->temporal_patch_size > 64 ||
        v->in_channels > 64)
        return hd_fail(e, HD_EUNSUPPORTED, "%s: patch/merge sizes out of the supported range", f);
    if (v->n_deepstack < 0 || v->n_deepstack > HD_MAX_DEEPSTACK)
        return hd_fail(e, HD_EFORMAT, "%s.deepstack_visual_indexes: %d entries (at most %d)", f,
                       v->n_deepstack, HD_MAX_DEEPSTACK);
    for (int j = 0; j < v->n_deepstack; j++) {
        int b = v->deepstack_indexes[j];
        if (b < 0 || b >= v->depth)
            return hd_fail(e, HD_EFORMAT,
                           "%s.deepstack_visual_indexes[%d]: block %d outside 0..%d", f, j, b,
                           v->depth - 1);
        for (int i = 0; i < j; i++)
            if (v->deepstack_indexes[i] == b)
                return hd_fail(e, HD_EFORMAT,
                               "%s.deepstack_visual_indexes[%d]: block %d listed twice", f, j, b);
    }
    if (v->hidden_act[0] && strcmp(v->hidden_act, "gelu_pytorch_tanh") != 0 &&
        strcmp(v->hidden_act, "gelu_new") != 0 && strcmp(v->hidden_act, "gelu") != 0)
        return hd_fail(e, HD_EUNSUPPORTED, "%s.hidden_act: '%s' is not supported", f,
                       v->hidden_act);
    return 0;
}

int hd_vit_create(hd_vit **out, hd_backend *be, const hd_config *cfg, const hd_safetensors *st,
                  hd_error *e) {
    if (!out || !be || !cfg || !st) return hd_fail(e, HD_EINVAL, "vit: missing argument");
    *out = NULL;
    HD_TRY(check_config(&cfg->vision, e));
    const hd_vision_config *v = &cfg->vision;

    hd_vit *vit = calloc(1, sizeof *vit);
    if (!vit) return hd_fail(e, HD_ENOMEM, "vit: out of memory");
    vit->be = be;
    vit->cfg = *v;
    vit->head_dim = v->hidden_size / v->num_heads;
    vit->merge = v->spatial_merge_size;
    vit->group = v->spatial_merge_size * v->spatial_merge_size;
    vit->patch_dim = (int64_t)v->in_channels * v->temporal_patch_size * v->patch_size * v->patch_size;
    /* the Qwen3-VL default activation when the field is absent is gelu_pytorch_tanh */
    vit->mlp_tanh = strcmp(v->hidden_act, "gelu") != 0;
    vit->blocks = calloc((size_t)v->depth, sizeof *vit->blocks);
    vit->tap_of_block = malloc((size_t)v->depth * sizeof *vit->tap_of_block);
    vit->deepstack = calloc((size_t)(v->n_deepstack > 0 ? v->n_deepstack : 1), sizeof *vit->deepstack);
    vit->inv_freq = malloc((size_t)(vit->head_dim / 4) * sizeof(float));
    if (!vit->blocks || !vit->tap_of_block || !vit->deepstack || !vit->inv_freq) {
        hd_vit_free(vit);
        return hd_fail(e, HD_ENOMEM, "vit: out of memory");
    }
    for (int b = 0; b < v->depth; b++) vit->tap_of_block[b] = -1;
    for (int j = 0; j < v->n_deepstack; j++) vit->tap_of_block[v->deepstack_indexes[j]] = j;
    hd_vit_rope_inv_freq(vit->inv_freq, vit->head_dim);

    int rc = bind(vit, st, "patch_embed.proj.weight", v->hidden_size, vit->patch_dim,
                  &vit->patch_w, e);
    if (!rc) rc = bind(vit, st, "patch_embed.proj.bias", 1, v->hidden_size, &vit->patch_b, e);
    if (!rc) rc = load_pos_table(vit, st, e);
    for (int b = 0; !rc && b < v->depth; b++) rc = bind_block(vit, st, b, e);
    if (!rc) rc = bind_merger(vit, st, "merger", v->hidden_size, &vit->merger, e);
    for (int j = 0; !rc && j < v->n_deepstack; j++) {
        char prefix[64];
        snprintf(prefix, sizeof prefix, "deepstack_merger_list.%d", j);
        rc = bind_merger(vit, st, prefix, (int64_t)vit->group * v->hidden_size, &vit->deepstack[j],
                         e);
    }
    if (rc) {
        hd_vit_free(vit);
        return rc;
    }
    *out = vit;
    return 0;
}

static void free_merger(hd_backend *be, vit_merger *m) {
    hd_tensor_free(be, &m->norm_w);
    hd_tensor_free(be, &m->norm_b);
    hd_tensor_free(be, &m->fc1_w);
    hd_tensor_free(be, &m->fc1_b);
    hd_tensor_free(be, &m->fc2_w);
    hd_tensor_free(be, &m->fc2_b);
}

void hd_vit_free(hd_vit *vit) {
    if (!vit) return;
    hd_backend *be = vit->be;
    hd_tensor_free(be, &vit->patch_w);
    hd_tensor_free(be, &vit->patch_b);
    if (vit->blocks) {
        for (int b = 0; b < vit->cfg.depth; b++) {
            vit_block *k = &vit->blocks[b];
            hd_tensor *all[] = {&k->norm1_w, &k->norm1_b, &k->qkv_w, &k->qkv_b,
                                &k->proj_w,  &k->proj_b,  &k->norm2_w, &k->norm2_b,
                                &k->fc1_w,   &k->fc1_b,   &k->fc2_w, &k->fc2_b};
            for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) hd_tensor_free(be, all[i]);
        }
    }
    free_merger(be, &vit->merger);
    if (vit->deepstack)
        for (int j = 0; j < vit->cfg.n_deepstack; j++) free_merger(be, &vit->deepstack[j]);
    free(vit->blocks);
    free(vit->deepstack);
    free(vit->tap_of_block);
    free(vit->pos_table);
    free(vit->inv_freq);
    free(vit);
}

/* ---------------------------------------------------------------------------------------------
 * Forward
 * ------------------------------------------------------------------------------------------- */

/* Device scratch of one forward. */
typedef struct vit_work {
    hd_tensor x;        /* [N, vh] residual stream */
    hd_tensor h;        /* [N, vh] norm / sublayer output; also pixels' position embedding */
    hd_tensor px;       /* [N, patch_dim] pixel rows */
    hd_tensor qkv;      /* [N, 3vh] */
    hd_tensor att;      /* [N, vh] attention output, heads concatenated */
    hd_tensor mlp;      /* [N, intermediate] */
    hd_tensor cos, sin; /* [N, head_dim] */
    hd_tensor ga, gb;   /* [N/m², m²·vh] merger scratch */
} vit_work;

static void work_free(hd_backend *be, vit_work *w) {
    hd_tensor *all[] = {&w->x, &w->h, &w->px, &w->qkv, &w->att, &w->mlp,
                        &w->cos, &w->sin, &w->ga, &w->gb};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) hd_tensor_free(be, all[i]);
}

/* Views the [N, vh] rows of src as [N/m², m²·vh] merged rows (m² consecutive tokens side by
 * side). Zero-copy when src is dense; otherwise the rows are copied into scratch column blocks. */
static hd_tensor group_rows(hd_backend *be, const hd_tensor *src, hd_tensor *scratch, int group) {
    hd_tensor g;
    if (src->stride == src->cols) {
        g = *src;
        g.rows = src->rows / group;
        g.cols = src->cols * group;
        g.stride = g.cols;
        g.owned = 0;
        return g;
    }
    for (int q = 0; q < group; q++) {
        hd_tensor s = hd_view_rows(src, q, 1); /* every group-th row from row q */
        s.rows = src->rows / group;
        s.stride = src->stride * group;
        hd_tensor d = hd_view_cols(scratch, (int64_t)q * src->cols, src->cols);
        be->ops->copy(be, &d, &s);
    }
    g = *scratch;
    g.owned = 0;
    return g;
}

/* DeepStack merger: group x, LayerNorm over m²·vh, fc1, exact GELU, fc2 -> dst [N/m², out]. */
static void run_deepstack(hd_vit *vit, const vit_merger *mg, vit_work *w, hd_tensor *dst) {
    hd_backend *be = vit->be;
    hd_tensor gx = group_rows(be, &w->x, &w->ga, vit->group);
    be->ops->layernorm(be, &w->gb, &gx, &mg->norm_w, &mg->norm_b, VIT_LN_EPS);
    be->ops->linear(be, &w->ga, &w->gb, &mg->fc1_w, &mg->fc1_b);
    be->ops->gelu_erf(be, &w->ga, &w->ga);
    be->ops->linear(be, dst, &w->ga, &mg->fc2_w, &mg->fc2_b);
}

/* Final merger: LayerNorm over each vh-vector, then group, fc1, exact GELU, fc2. */
static void run_final_merger(hd_vit *vit, vit_work *w, hd_tensor *dst) {
    hd_backend *be = vit->be;
    const vit_merger *mg = &vit->merger;
    be->ops->layernorm(be, &w->h, &w->x, &mg->norm_w, &mg->norm_b, VIT_LN_EPS);
    hd_tensor gh = group_rows(be, &w->h, &w->ga, vit->group);
    be->ops->linear(be, &w->gb, &gh, &mg->fc1_w, &mg->fc1_b);
    be->ops->gelu_erf(be, &w->gb, &w->gb);
    be->ops->linear(be, dst, &w->gb, &mg->fc2_w, &mg->fc2_b);
}

static void run_block(hd_vit *vit, const vit_block *k, vit_work *w,
                      const int64_t (*grid_thw)[3], int n_images) {
    hd_backend *be = vit->be;
    const hd_backend_ops *op = be->ops;
    int64_t vh = vit->cfg.hidden_size;
    int heads = vit->cfg.num_heads, hd = vit->head_dim;

    op->layernorm(be, &w->h, &w->x, &k->norm1_w, &k->norm1_b, VIT_LN_EPS);
    op->linear(be, &w->qkv, &w->h, &k->qkv_w, &k->qkv_b);
    hd_tensor q = hd_view_cols(&w->qkv, 0, vh);
    hd_tensor kk = hd_view_cols(&w->qkv, vh, vh);
    hd_tensor v = hd_view_cols(&w->qkv, 2 * vh, vh);
    op->rope(be, &q, &w->cos, &w->sin, hd);
    op->rope(be, &kk, &w->cos, &w->sin, hd);

    /* block-diagonal attention: one full-mask call per image on its own rows */
    float scale = (float)(1.0 / sqrt((double)hd));
    hd_attn_mask full = {0, 0};
    int64_t r0 = 0;
    for (int i = 0; i < n_images; i++) {
        int64_t n = grid_thw[i][1] * grid_thw[i][2];
        hd_tensor qi = hd_view_rows(&q, r0, n), ki = hd_view_rows(&kk, r0, n);
        hd_tensor vi = hd_view_rows(&v, r0, n), oi = hd_view_rows(&w->att, r0, n);
        op->attention(be, &oi, &qi, &ki, &vi, heads, heads, hd, scale, full);
        r0 += n;
    }
    op->linear(be, &w->h, &w->att, &k->proj_w, &k->proj_b);
    op->add(be, &w->x, &w->x, &w->h);

    op->layernorm(be, &w->h, &w->x, &k->norm2_w, &k->norm2_b, VIT_LN_EPS);
    op->linear(be, &w->mlp, &w->h, &k->fc1_w, &k->fc1_b);
    if (vit->mlp_tanh)
        op->gelu_tanh(be, &w->mlp, &w->mlp);
    else
        op->gelu_erf(be, &w->mlp, &w->mlp);
    op->linear(be, &w->h, &w->mlp, &k->fc2_w, &k->fc2_b);
    op->add(be, &w->x, &w->x, &w->h);
}

/* Checks the grids; returns the ViT token count in *n_tok. */
static int check_grids(const hd_vit *vit, const int64_t (*grid_thw)[3], int n_images,
                       int64_t *n_tok, hd_error *e) {
    int m = vit->merge;
    int64_t total = 0;
    for (int i = 0; i < n_images; i++) {
        int64_t t = grid_thw[i][0], gh = grid_thw[i][1], gw = grid_thw[i][2];
        if (t != 1)
            return hd_fail(e, HD_EUNSUPPORTED,
                           "vit: image_grid_thw[%d]: t = %lld (only still images, t = 1)", i,
                           (long long)t);
        if (gh < 1 || gw < 1 || gh > VIT_MAX_GRID_SIDE || gw > VIT_MAX_GRID_SIDE || gh % m ||
            gw % m)
            return hd_fail(e, HD_EINVAL,
                           "vit: image_grid_thw[%d]: grid %lld x %lld is not a positive multiple "
                           "of the merge size %d (at most %d)",
                           i, (long long)gh, (long long)gw, m, VIT_MAX_GRID_SIDE);
        total += gh * gw;
        if (total > VIT_MAX_TOKENS)
            return hd_fail(e, HD_EINVAL, "vit: image_grid_thw: more than %lld patches in all",
                           (long long)VIT_MAX_TOKENS);
    }
    *n_tok = total;
    return 0;
}

/* Position embedding and rotary tables for all images, computed on the host and uploaded. */
static int upload_tables(hd_vit *vit, const int64_t (*grid_thw)[3], int n_images, int64_t n_tok,
                         vit_work *w, hd_error *e) {
    hd_backend *be = vit->be;
    int64_t vh = vit->cfg.hidden_size, hd = vit->head_dim;
    float *pos = malloc((size_t)n_tok * (size_t)vh * sizeof(float));
    float *cs = malloc((size_t)n_tok * (size_t)hd * sizeof(float));
    float *sn = malloc((size_t)n_tok * (size_t)hd * sizeof(float));
    if (!pos || !cs || !sn) {
        free(pos);
        free(cs);
        free(sn);
        return hd_fail(e, HD_ENOMEM, "vit: out of memory for %lld position rows",
                       (long long)n_tok);
    }
    int64_t r0 = 0;
    for (int i = 0; i < n_images; i++) {
        int64_t gh = grid_thw[i][1], gw = grid_thw[i][2];
        hd_vit_posembed_fill(vit->pos_table, vit->pos_side, vh, gh, gw, vit->merge,
                             pos + r0 * vh);
        hd_vit_rope_fill(vit->inv_freq, (int)hd, gh, gw, vit->merge, cs + r0 * hd, sn + r0 * hd);
        r0 += gh * gw;
    }
    be->ops->write(be, &w->h, pos);
    be->ops->write(be, &w->cos, cs);
    be->ops->write(be, &w->sin, sn);
    free(pos);
    free(cs);
    free(sn);
    return 0;
}

static int alloc_f32(hd_backend *be, hd_tensor *t, int64_t rows, int64_t cols, hd_error *e) {
    return be->ops->alloc(be, t, HD_F32, rows, cols, e);
}

int hd_vit_forward(hd_vit *vit, const float *pixel_values, const int64_t (*grid_thw)[3],
                   int n_images, hd_vit_output *out, hd_error *e) {
    if (!out) return hd_fail(e, HD_EINVAL, "vit: no output record");
    memset(out, 0, sizeof *out);
    if (!vit || !pixel_values || !grid_thw || n_images < 1)
        return hd_fail(e, HD_EINVAL, "vit: forward needs the model, pixel values and >= 1 grid");
    int64_t n_tok = 0;
    HD_TRY(check_grids(vit, grid_thw, n_images, &n_tok, e));

    hd_backend *be = vit->be;
    const hd_vision_config *c = &vit->cfg;
    int64_t vh = c->hidden_size, n_merged = n_tok / vit->group, wide = vit->group * vh;
    vit_work w = {0};
    int rc = alloc_f32(be, &w.x, n_tok, vh, e);
    if (!rc) rc = alloc_f32(be, &w.h, n_tok, vh, e);
    if (!rc) rc = alloc_f32(be, &w.px, n_tok, vit->patch_dim, e);
    if (!rc) rc = alloc_f32(be, &w.qkv, n_tok, 3 * vh, e);
    if (!rc) rc = alloc_f32(be, &w.att, n_tok, vh, e);
    if (!rc) rc = alloc_f32(be, &w.mlp, n_tok, c->intermediate_size, e);
    if (!rc) rc = alloc_f32(be, &w.cos, n_tok, vit->head_dim, e);
    if (!rc) rc = alloc_f32(be, &w.sin, n_tok, vit->head_dim, e);
    if (!rc) rc = alloc_f32(be, &w.ga, n_merged, wide, e);
    if (!rc) rc = alloc_f32(be, &w.gb, n_merged, wide, e);
    if (!rc) rc = alloc_f32(be, &out->embeds, n_merged, c->out_hidden_size, e);
    for (int j = 0; !rc && j < c->n_deepstack; j++)
        rc = alloc_f32(be, &out->deepstack[j], n_merged, c->out_hidden_size, e);
    if (!rc) rc = upload_tables(vit, grid_thw, n_images, n_tok, &w, e);
    if (rc) {
        work_free(be, &w);
        hd_vit_output_free(be, out);
        return rc;
    }
    out->n_tokens = n_merged;
    out->n_deepstack = c->n_deepstack;

    /* patch embedding (Conv3d with kernel = stride = a linear map) + position embedding (in h) */
    be->ops->write(be, &w.px, pixel_values);
    be->ops->linear(be, &w.x, &w.px, &vit->patch_w, &vit->patch_b);
    be->ops->add(be, &w.x, &w.x, &w.h);
    hd_tensor_free(be, &w.px);

    /* DeepStack outputs are numbered in block order, as upstream appends them */
    int slot = 0;
    for (int b = 0; b < c->depth; b++) {
        run_block(vit, &vit->blocks[b], &w, grid_thw, n_images);
        int j = vit->tap_of_block[b];
        if (j >= 0) run_deepstack(vit, &vit->deepstack[j], &w, &out->deepstack[slot++]);
    }
    run_final_merger(vit, &w, &out->embeds);
    work_free(be, &w);
    /* a device backend reports the first failed op here */
    int st = hd_backend_status(be, e);
    if (st < 0) hd_vit_output_free(be, out);
    return st;
}

void hd_vit_output_free(hd_backend *be, hd_vit_output *out) {
    if (!out) return;
    hd_tensor_free(be, &out->embeds);
    for (int j = 0; j < HD_MAX_DEEPSTACK; j++) hd_tensor_free(be, &out->deepstack[j]);
    out->n_tokens = 0;
    out->n_deepstack = 0;
}
