/* Expected tensor list of a checkpoint (spec 01 §4) and the check of a file against it. */
#include "model/inventory.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"

/* Builds one entry and hands it to the visitor. */
typedef struct inv_emitter {
    void (*fn)(void *ctx, const hd_inv_entry *ent);
    void *ctx;
    int count;
} inv_emitter;

static void emit(inv_emitter *em, hd_part part, int ndim, const int64_t *shape, const char *fmt,
                 ...) __attribute__((format(printf, 5, 6)));

static void emit(inv_emitter *em, hd_part part, int ndim, const int64_t *shape, const char *fmt,
                 ...) {
    hd_inv_entry ent;
    memset(&ent, 0, sizeof ent);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ent.name, sizeof ent.name, fmt, ap);
    va_end(ap);
    ent.part = part;
    ent.ndim = ndim;
    for (int i = 0; i < ndim; i++)
        ent.shape[i] = shape[i];
    em->fn(em->ctx, &ent);
    em->count++;
}

#define SHAPE(...) ((const int64_t[]){__VA_ARGS__})
#define EMIT1(part, a, ...) emit(&em, part, 1, SHAPE(a), __VA_ARGS__)
#define EMIT2(part, a, b, ...) emit(&em, part, 2, SHAPE(a, b), __VA_ARGS__)

int hd_inventory_foreach(const hd_config *cfg, void (*fn)(void *ctx, const hd_inv_entry *ent),
                         void *ctx) {
    inv_emitter em = {fn, ctx, 0};
    const hd_text_config *t = &cfg->text;
    const int64_t D = t->hidden_size, F = t->intermediate_size, hd = t->head_dim;
    const int64_t q = (int64_t)t->num_heads * hd, kv = (int64_t)t->num_kv_heads * hd;

    /* language model (spec 01 §4.1) */
    const hd_part T = HD_PART_TEXT;
    const char *lm = "model.language_model.";
    EMIT2(T, t->vocab_size, D, "%sembed_tokens.weight", lm);
    for (int i = 0; i < t->num_layers; i++) {
        EMIT1(T, D, "%slayers.%d.input_layernorm.weight", lm, i);
        EMIT2(T, q, D, "%slayers.%d.self_attn.q_proj.weight", lm, i);
        EMIT2(T, kv, D, "%slayers.%d.self_attn.k_proj.weight", lm, i);
        EMIT2(T, kv, D, "%slayers.%d.self_attn.v_proj.weight", lm, i);
        EMIT2(T, D, q, "%slayers.%d.self_attn.o_proj.weight", lm, i);
        EMIT1(T, hd, "%slayers.%d.self_attn.q_norm.weight", lm, i);
        EMIT1(T, hd, "%slayers.%d.self_attn.k_norm.weight", lm, i);
        EMIT1(T, D, "%slayers.%d.post_attention_layernorm.weight", lm, i);
        EMIT2(T, F, D, "%slayers.%d.mlp.gate_proj.weight", lm, i);
        EMIT2(T, F, D, "%slayers.%d.mlp.up_proj.weight", lm, i);
        EMIT2(T, D, F, "%slayers.%d.mlp.down_proj.weight", lm, i);
    }
    EMIT1(T, D, "%snorm.weight", lm);

    /* HiDream additions (spec 01 §4.2): bottleneck = hidden/4, patch rows of 3·p·p (p = 32 unless
     * config.json's hidream.patch_size says otherwise) */
    const hd_part H = HD_PART_HIDREAM;
    const int64_t B = D / 4, P = (int64_t)HD_PIXEL_CHANNELS * cfg->gen.patch_size * cfg->gen.patch_size;
    EMIT2(H, D, HD_TIMESTEP_FREQ_DIM, "model.t_embedder1.mlp.0.weight");
    EMIT1(H, D, "model.t_embedder1.mlp.0.bias");
    EMIT2(H, D, D, "model.t_embedder1.mlp.2.weight");
    EMIT1(H, D, "model.t_embedder1.mlp.2.bias");
    EMIT2(H, B, P, "model.x_embedder.proj1.weight");
    EMIT2(H, D, B, "model.x_embedder.proj2.weight");
    EMIT1(H, D, "model.x_embedder.proj2.bias");
    EMIT2(H, P, D, "model.final_layer2.linear.weight");
    EMIT1(H, P, "model.final_layer2.linear.bias");

    /* vision tower (spec 01 §4.3) */
    const hd_vision_config *v = &cfg->vision;
    if (!v->present) return em.count;
    const hd_part V = HD_PART_VISION;
    const int64_t vh = v->hidden_size, vi = v->intermediate_size, out = v->out_hidden_size;
    const int64_t W = vh * v->spatial_merge_size * v->spatial_merge_size; /* merged width */
    const char *vp = "model.visual.";
    emit(&em, V, 5, SHAPE(vh, v->in_channels, v->temporal_patch_size, v->patch_size, v->patch_size),
         "%spatch_embed.proj.weight", vp);
    EMIT1(V, vh, "%spatch_embed.proj.bias", vp);
    EMIT2(V, v->num_position_embeddings, vh, "%spos_embed.weight", vp);
    for (int b = 0; b < v->depth; b++) {
        EMIT1(V, vh, "%sblocks.%d.norm1.weight", vp, b);
        EMIT1(V, vh, "%sblocks.%d.norm1.bias", vp, b);
        EMIT2(V, 3 * vh, vh, "%sblocks.%d.attn.qkv.weight", vp, b);
        EMIT1(V, 3 * vh, "%sblocks.%d.attn.qkv.bias", vp, b);
        EMIT2(V, vh, vh, "%sblocks.%d.attn.proj.weight", vp, b);
        EMIT1(V, vh, "%sblocks.%d.attn.proj.bias", vp, b);
        EMIT1(V, vh, "%sblocks.%d.norm2.weight", vp, b);
        EMIT1(V, vh, "%sblocks.%d.norm2.bias", vp, b);
        EMIT2(V, vi, vh, "%sblocks.%d.mlp.linear_fc1.weight", vp, b);
        EMIT1(V, vi, "%sblocks.%d.mlp.linear_fc1.bias", vp, b);
        EMIT2(V, vh, vi, "%sblocks.%d.mlp.linear_fc2.weight", vp, b);
        EMIT1(V, vh, "%sblocks.%d.mlp.linear_fc2.bias", vp, b);
    }
    /* the main merger normalises before the 2x2 concat (width vh), DeepStack ones after (W) */
    EMIT1(V, vh, "%smerger.norm.weight", vp);
    EMIT1(V, vh, "%smerger.norm.bias", vp);
    EMIT2(V, W, W, "%smerger.linear_fc1.weight", vp);
    EMIT1(V, W, "%smerger.linear_fc1.bias", vp);
    EMIT2(V, out, W, "%smerger.linear_fc2.weight", vp);
    EMIT1(V, out, "%smerger.linear_fc2.bias", vp);
    for (int j = 0; j < v->n_deepstack; j++) {
        EMIT1(V, W, "%sdeepstack_merger_list.%d.norm.weight", vp, j);
        EMIT1(V, W, "%sdeepstack_merger_list.%d.norm.bias", vp, j);
        EMIT2(V, W, W, "%sdeepstack_merger_list.%d.linear_fc1.weight", vp, j);
        EMIT1(V, W, "%sdeepstack_merger_list.%d.linear_fc1.bias", vp, j);
        EMIT2(V, out, W, "%sdeepstack_merger_list.%d.linear_fc2.weight", vp, j);
        EMIT1(V, out, "%sdeepstack_merger_list.%d.linear_fc2.bias", vp, j);
    }
    return em.count;
}

int64_t hd_inv_numel(const hd_inv_entry *ent) {
    int64_t n = 1;
    for (int i = 0; i < ent->ndim; i++)
        n *= ent->shape[i];
    return n;
}

const char *hd_part_name(hd_part p) {
    switch (p) {
    case HD_PART_TEXT: return "text";
    case HD_PART_HIDREAM: return "hidream";
    case HD_PART_VISION: return "vision";
    default: return "?";
    }
}

/* ---- parameter counts ------------------------------------------------------------------- */

static void count_visit(void *ctx, const hd_inv_entry *ent) {
    hd_param_counts *pc = ctx;
    pc->part[ent->part] += hd_inv_numel(ent);
    pc->n_tensors[ent->part]++;
}

void hd_inventory_param_counts(const hd_config *cfg, hd_param_counts *out) {
    memset(out, 0, sizeof *out);
    hd_inventory_foreach(cfg, count_visit, out);
    for (int p = 0; p < HD_PART_COUNT; p++)
        out->total += out->part[p];
    out->lm_head = (int64_t)cfg->text.vocab_size * cfg->text.hidden_size;
}

/* ---- check ------------------------------------------------------------------------------ */

typedef struct inv_list {
    hd_inv_entry *ents;
    int n, cap, failed_alloc;
} inv_list;

static void list_visit(void *ctx, const hd_inv_entry *ent) {
    inv_list *l = ctx;
    if (l->failed_alloc) return;
    if (l->n == l->cap) {
        int nc = l->cap ? l->cap * 2 : 256;
        hd_inv_entry *p = realloc(l->ents, (size_t)nc * sizeof *p);
        if (!p) {
            l->failed_alloc = 1;
            return;
        }
        l->ents = p;
        l->cap = nc;
    }
    l->ents[l->n++] = *ent;
}

static int cmp_entry_name(const void *a, const void *b) {
    return strcmp(((const hd_inv_entry *)a)->name, ((const hd_inv_entry *)b)->name);
}

static const char *const scale_suffixes[] = {".scale_weight", ".weight_scale"};

int hd_inv_weight_scale(const hd_safetensors *st, const hd_st_tensor *t, float *scale,
                        hd_error *e) {
    *scale = 1.0f;
    size_t n = strlen(t->name);
    if ((t->dtype != HD_F8_E4M3 && t->dtype != HD_F8_E5M2) || n < 7 ||
        strcmp(t->name + n - 7, ".weight"))
        return 0;
    for (size_t k = 0; k < sizeof scale_suffixes / sizeof *scale_suffixes; k++) {
        char name[512];
        snprintf(name, sizeof name, "%.*s%s", (int)(n - 7), t->name, scale_suffixes[k]);
        const hd_st_tensor *s = hd_st_find(st, name);
        if (!s) continue;
        if (s->numel != 1)
            return hd_fail(e, HD_EUNSUPPORTED, "%s: tensor '%s': %lld values (one scale per "
                           "tensor is supported)", st->files[s->file].path, name,
                           (long long)s->numel);
        HD_TRY(hd_st_read_f32(s, scale, 1, e));
        if (!(*scale > 0) || !isfinite(*scale))
            return hd_fail(e, HD_EFORMAT, "%s: tensor '%s': scale %g is not a positive finite "
                           "number", st->files[s->file].path, name, *scale);
        return 0;
    }
    return 0;
}

/* Tensors a scaled-fp8 checkpoint adds: the "scaled_fp8" marker and per-weight scales
 * (X.scale_weight / X.weight_scale, and the activation scales X.scale_input / X.input_scale,
 * which only fp8 matrix hardware uses) of a weight X.weight the model has. */
static int scaled_fp8_extra(const char *name, const inv_list *l) {
    static const char *const extra[] = {".scale_weight", ".weight_scale", ".scale_input",
                                        ".input_scale"};
    if (!strcmp(name, "scaled_fp8")) return 1;
    size_t n = strlen(name);
    for (size_t k = 0; k < sizeof extra / sizeof *extra; k++) {
        size_t s = strlen(extra[k]);
        if (n <= s || strcmp(name + n - s, extra[k]) || n - s + 7 >= HD_INV_NAME_MAX) continue;
        hd_inv_entry key;
        snprintf(key.name, sizeof key.name, "%.*s.weight", (int)(n - s), name);
        if (!strcmp(key.name, "lm_head.weight")) return 1; /* the unused head's own scale */
        if (bsearch(&key, l->ents, (size_t)l->n, sizeof *l->ents, cmp_entry_name)) return 1;
    }
    return 0;
}

static void format_shape(char *buf, size_t n, int ndim, const int64_t *shape) {
    size_t used = 0;
    used += (size_t)snprintf(buf, n, "[");
    for (int i = 0; i < ndim && used < n; i++)
        used +=
            (size_t)snprintf(buf + used, n - used, "%s%lld", i ? ", " : "", (long long)shape[i]);
    if (used < n) snprintf(buf + used, n - used, "]");
}

int hd_inventory_check(const hd_config *cfg, const hd_safetensors *st, int need_vision,
                       hd_error *e) {
    const char *file = st->n_files > 0 ? st->files[0].path : "<model>";
    if (need_vision && !cfg->vision.present)
        return hd_fail(e, HD_EFORMAT,
                       "%s: config.json has no vision_config, but reference images need the "
                       "vision tower",
                       cfg->name[0] ? cfg->name : "model");
    inv_list l = {0};
    hd_inventory_foreach(cfg, list_visit, &l);
    if (l.failed_alloc) {
        free(l.ents);
        return hd_fail(e, HD_ENOMEM, "out of memory for the tensor inventory");
    }
    /* without need_vision the vision tower may be absent, but not half there */
    int any_vision = 0;
    for (int i = 0; i < l.n && !any_vision; i++)
        any_vision = l.ents[i].part == HD_PART_VISION && hd_st_find(st, l.ents[i].name);
    int rc = 0;
    char want[160], got[160];
    for (int i = 0; i < l.n && rc == 0; i++) {
        const hd_inv_entry *x = &l.ents[i];
        const hd_st_tensor *t = hd_st_find(st, x->name);
        if (!t) {
            if (x->part == HD_PART_VISION && !need_vision && !any_vision) continue;
            format_shape(want, sizeof want, x->ndim, x->shape);
            rc = hd_fail(e, HD_EFORMAT, "%s: tensor '%s' is missing (expected shape %s)", file,
                         x->name, want);
            break;
        }
        const char *tf = st->files[t->file].path;
        int same = t->ndim == x->ndim;
        for (int d = 0; same && d < x->ndim; d++)
            same = t->shape[d] == x->shape[d];
        if (!same) {
            format_shape(want, sizeof want, x->ndim, x->shape);
            format_shape(got, sizeof got, t->ndim, t->shape);
            rc =
                hd_fail(e, HD_EMISMATCH, "%s: tensor '%s' has shape %s, but config.json implies %s",
                        tf, x->name, got, want);
        } else if (!hd_dtype_is_weight(t->dtype)) {
            rc = hd_fail(e, HD_EUNSUPPORTED,
                         "%s: tensor '%s' has dtype %s, not a weight format (BF16, F16, F32, "
                         "Q8_0, Q4_0, Q4_K, Q5_K, Q6_K)", tf, x->name, hd_dtype_name(t->dtype));
        }
    }
    if (rc == 0) {
        qsort(l.ents, (size_t)l.n, sizeof *l.ents, cmp_entry_name);
        for (int i = 0; i < st->n_tensors; i++) {
            const hd_st_tensor *t = &st->tensors[i];
            if (!strcmp(t->name, "lm_head.weight")) continue; /* unused text LM head */
            if (scaled_fp8_extra(t->name, &l)) continue;
            hd_inv_entry key;
            snprintf(key.name, sizeof key.name, "%s", t->name);
            if (strlen(t->name) < sizeof key.name &&
                bsearch(&key, l.ents, (size_t)l.n, sizeof *l.ents, cmp_entry_name))
                continue;
            rc = hd_fail(e, HD_EFORMAT,
                         "%s: unexpected tensor '%.200s' (not part of a model with this "
                         "config.json)",
                         st->files[t->file].path, t->name);
            break;
        }
    }
    free(l.ents);
    return rc;
}
