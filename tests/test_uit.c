/* Unified Transformer: MRoPE tables, timestep sinusoid, token-type validation, weight binding
 * errors, the forward against an independent float64 reference on a random model with other
 * head dims / GQA ratio / mrope sections, and the exact text-prefix cache (cached == uncached)
 * on that model and on the tiny golden model, with and without ViT rows and DeepStack. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "core/dtype.h"
#include "io/config.h"
#include "io/safetensors.h"
#include "model/prefix_cache.h"
#include "model/rope.h"
#include "model/timestep.h"
#include "model/uit.h"
#include "testutil.h"

/* ---- small helpers ------------------------------------------------------------------------ */

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static double urand(void) { /* xorshift64*, uniform in [-1, 1) */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    uint64_t r = rng_state * 0x2545f4914f6cdd1dull;
    return (double)(r >> 11) / (double)(1ull << 52) - 1.0;
}

static double rel_err_ff(const float *a, const float *b, size_t n) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)a[i] - b[i];
        num += d * d;
        den += (double)b[i] * b[i];
    }
    return den > 0 ? sqrt(num / den) : sqrt(num);
}

static double rel_err_fd(const float *a, const double *b, size_t n) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)a[i] - b[i];
        num += d * d;
        den += b[i] * b[i];
    }
    return den > 0 ? sqrt(num / den) : sqrt(num);
}

static hd_backend *make_backend(void) {
    hd_backend *be = NULL;
    hd_error e = {0};
    hd_backend_options opt = {0};
    opt.n_threads = 2;
    if (hd_backend_create(&be, "cpu", &opt, &e) < 0) fprintf(stderr, "backend: %s\n", e.msg);
    return be;
}

/* ---- MRoPE and timestep ------------------------------------------------------------------- */

static void test_rope_inv_freq_matches_spec_values(void) {
    hd_rope r;
    hd_error e = {0};
    int sec[3] = {24, 20, 20};
    CHECK(hd_rope_init(&r, 128, 5000000.0, sec, &e) == 0);
    CHECK(r.inv_freq[0] == 1.0f);
    CHECKF(fabsf(r.inv_freq[1] - 0.78583002f) <= 1e-7f * 0.79f, "%.9g", r.inv_freq[1]);
    CHECKF(fabsf(r.inv_freq[63] - 2.5450797e-7f) <= 2e-7f * 2.6e-7f, "%.9g", r.inv_freq[63]);
    /* the rule: float32 exponent, power rounded once to float32, float32 reciprocal */
    int rule_ok = 1;
    for (int j = 0; j < 64; j++) {
        float p = (float)pow(5000000.0, (double)((float)(2 * j) / 128.0f));
        rule_ok &= r.inv_freq[j] == 1.0f / p;
    }
    CHECK(rule_ok);
    hd_rope_free(&r);
}

static void check_slots(int head_dim, int st, int sh, int sw) {
    hd_rope r;
    hd_error e = {0};
    int sec[3] = {st, sh, sw};
    CHECK(hd_rope_init(&r, head_dim, 5000000.0, sec, &e) == 0);
    int count[3] = {0, 0, 0}, ok = 1;
    for (int j = 0; j < head_dim / 2; j++) {
        int want = HD_ROPE_AXIS_T;
        for (int h = 1; h < 3 * sh; h += 3)
            if (j == h) want = HD_ROPE_AXIS_H;
        for (int w = 2; w < 3 * sw; w += 3)
            if (j == w) want = HD_ROPE_AXIS_W;
        ok &= r.axis[j] == want;
        count[r.axis[j]]++;
    }
    CHECKF(ok, "head_dim %d sections [%d,%d,%d]", head_dim, st, sh, sw);
    CHECK(count[0] == st && count[1] == sh && count[2] == sw);
    hd_rope_free(&r);
}

static void test_rope_interleaved_slots_follow_mrope_section(void) {
    check_slots(128, 24, 20, 20); /* the 8B: j = 1, 4, ..., 58 height; 2, 5, ..., 59 width */
    check_slots(64, 12, 10, 10);  /* the tiny golden model */
    check_slots(16, 4, 2, 2);
    check_slots(40, 10, 6, 4);    /* unequal height/width sections */
}

static void test_rope_tables_duplicate_halves_and_use_each_axis(void) {
    hd_rope r;
    hd_error e = {0};
    int sec[3] = {4, 2, 2};
    CHECK(hd_rope_init(&r, 16, 10000.0, sec, &e) == 0);
    int32_t pos[3 * 2] = {5, 4096, 7, 4097, 9, 4098}; /* S = 2: t = {5,4096} h = {7,4097} ... */
    float c[2 * 16], s[2 * 16];
    hd_rope_tables(&r, pos, 2, 1, 1, c, s); /* row 1 only: (4096, 4097, 4098) */
    int ok = 1;
    for (int j = 0; j < 8; j++) {
        float p = r.axis[j] == 0 ? 4096.0f : r.axis[j] == 1 ? 4097.0f : 4098.0f;
        float ang = r.inv_freq[j] * p;
        ok &= c[j] == (float)cos((double)ang) && s[j] == (float)sin((double)ang);
        ok &= c[j + 8] == c[j] && s[j + 8] == s[j];
    }
    CHECK(ok);
    hd_rope_free(&r);
}

static void test_rope_rejects_sections_not_summing_to_half_head(void) {
    hd_rope r;
    hd_error e = {0};
    int bad[3] = {24, 20, 21};
    CHECK(hd_rope_init(&r, 128, 5e6, bad, &e) == HD_EINVAL);
    CHECK(strstr(e.msg, "mrope_section") != NULL);
    int ok[3] = {1, 1, 1};
    CHECK(hd_rope_init(&r, 7, 5e6, ok, &e) == HD_EINVAL); /* odd head_dim */
}

static void test_timestep_sinusoid_is_cos_then_sin_of_spec_frequencies(void) {
    float out[256];
    hd_timestep_sinusoid(0.001, 256, out); /* u = 1 -> arg_k = f_k */
    CHECK(out[0] == (float)cos(1.0) && out[128] == (float)sin(1.0));
    /* f_1 ≈ 0.93057203, f_127 ≈ 1.0746075e-4 (spec 03 §2) */
    CHECKF(fabs(acos((double)out[1]) - 0.93057203) < 2e-6, "%.9g", out[1]);
    CHECKF(fabs((double)out[255] - 1.0746075e-4) < 1e-10, "%.9g", out[255]);
    hd_timestep_sinusoid(0.999, 256, out); /* u = 999 */
    float c = (float)(-log(10000.0));
    float f5 = (float)exp((double)((c * 5.0f) / 128.0f));
    float arg = 999.0f * f5;
    CHECK(out[5] == (float)cos((double)arg) && out[133] == (float)sin((double)arg));
    float odd[5];
    hd_timestep_sinusoid(0.5, 5, odd);
    CHECK(odd[4] == 0.0f && odd[0] == (float)cos(500.0));
}

static void test_token_types_must_be_zero_prefix_then_ones(void) {
    hd_error e = {0};
    int64_t a = -1;
    uint8_t good[6] = {0, 0, 0, 1, 1, 1};
    CHECK(hd_uit_causal_prefix(good, 6, &a, &e) == 0 && a == 3);
    uint8_t all_gen[3] = {1, 1, 1};
    CHECK(hd_uit_causal_prefix(all_gen, 3, &a, &e) == 0 && a == 0);
    uint8_t holes[5] = {0, 1, 0, 1, 1};
    CHECK(hd_uit_causal_prefix(holes, 5, &a, &e) == HD_EINVAL);
    CHECK(strstr(e.msg, "position 2") != NULL);
    uint8_t raw[4] = {0, 0, 3, 1}; /* raw types are not binary types */
    CHECK(hd_uit_causal_prefix(raw, 4, &a, &e) == HD_EINVAL);
}

/* ---- a random model written to a safetensors file ----------------------------------------- */

typedef struct tensor_def {
    char name[128];
    int64_t rows, cols; /* cols only when rows == 0 (1-D) */
    hd_dtype dtype;
    float *val;         /* values as the model sees them (bf16-rounded for BF16) */
    void *raw;          /* file bytes */
} tensor_def;

typedef struct rand_model {
    hd_config cfg;
    int64_t pd, bn, fd;
    int n;
    tensor_def t[256];
} rand_model;

static float *rm_add(rand_model *rm, const char *name, int64_t rows, int64_t cols, hd_dtype dt,
                     double scale, double offset) {
    tensor_def *d = &rm->t[rm->n++];
    snprintf(d->name, sizeof d->name, "%s", name);
    d->rows = rows;
    d->cols = cols;
    d->dtype = dt;
    int64_t n = (rows ? rows : 1) * cols;
    d->val = malloc((size_t)n * sizeof(float));
    d->raw = malloc((size_t)n * 4);
    for (int64_t i = 0; i < n; i++) {
        float v = (float)(offset + scale * urand());
        if (dt == HD_BF16) {
            uint16_t b = hd_f32_to_bf16(v);
            ((uint16_t *)d->raw)[i] = b;
            v = hd_bf16_to_f32(b);
        } else {
            ((float *)d->raw)[i] = v;
        }
        d->val[i] = v;
    }
    return d->val;
}

static const float *rm_get(const rand_model *rm, const char *name) {
    for (int i = 0; i < rm->n; i++)
        if (!strcmp(rm->t[i].name, name)) return rm->t[i].val;
    return NULL;
}

static void rm_free(rand_model *rm) {
    for (int i = 0; i < rm->n; i++) {
        free(rm->t[i].val);
        free(rm->t[i].raw);
    }
    rm->n = 0;
}

/* hidden 48, 6 query heads / 2 KV heads (GQA 3) of dim 16, mrope [4, 2, 2], 2 layers. */
static void rm_build(rand_model *rm, int layers) {
    memset(rm, 0, sizeof *rm);
    hd_text_config *c = &rm->cfg.text;
    c->hidden_size = 48;
    c->intermediate_size = 80;
    c->num_layers = layers;
    c->num_heads = 6;
    c->num_kv_heads = 2;
    c->head_dim = 16;
    c->vocab_size = 64;
    c->rms_norm_eps = 1e-6;
    c->rope_theta = 10000.0;
    c->mrope_section[0] = 4;
    c->mrope_section[1] = 2;
    c->mrope_section[2] = 2;
    c->mrope_interleaved = 1;
    rm->cfg.ids.image_pad = 60;
    rm->cfg.ids.vision_start = 61;
    rm->cfg.ids.tms = 63;
    rm->cfg.ids.boi = 62;
    rm->pd = 3072;
    rm->bn = 12;
    rm->fd = 256;
    int64_t D = 48, F = 80, Q = 96, KV = 32;
    double sD = 1.0 / sqrt((double)D);
    rm_add(rm, "model.language_model.embed_tokens.weight", 64, D, HD_BF16, 1.0, 0);
    rm_add(rm, "model.t_embedder1.mlp.0.weight", D, 256, HD_BF16, 1.0 / 16, 0);
    rm_add(rm, "model.t_embedder1.mlp.0.bias", 0, D, HD_BF16, 0.1, 0);
    rm_add(rm, "model.t_embedder1.mlp.2.weight", D, D, HD_F32, sD, 0);
    rm_add(rm, "model.t_embedder1.mlp.2.bias", 0, D, HD_F32, 0.1, 0);
    rm_add(rm, "model.x_embedder.proj1.weight", 12, 3072, HD_BF16, 1.0 / 55, 0);
    rm_add(rm, "model.x_embedder.proj2.weight", D, 12, HD_BF16, 0.3, 0);
    rm_add(rm, "model.x_embedder.proj2.bias", 0, D, HD_BF16, 0.1, 0);
    rm_add(rm, "model.language_model.norm.weight", 0, D, HD_BF16, 0.2, 1.0);
    rm_add(rm, "model.final_layer2.linear.weight", 3072, D, HD_F32, sD, 0);
    rm_add(rm, "model.final_layer2.linear.bias", 0, 3072, HD_BF16, 0.1, 0);
    for (int l = 0; l < layers; l++) {
        char n[128];
#define ADD(suffix, r, cc, sc, off)                                                 \
    snprintf(n, sizeof n, "model.language_model.layers.%d.%s", l, suffix);          \
    rm_add(rm, n, r, cc, HD_BF16, sc, off)
        ADD("input_layernorm.weight", 0, D, 0.2, 1.0);
        ADD("self_attn.q_proj.weight", Q, D, sD * 1.5, 0);
        ADD("self_attn.k_proj.weight", KV, D, sD * 1.5, 0);
        ADD("self_attn.v_proj.weight", KV, D, sD, 0);
        ADD("self_attn.o_proj.weight", D, Q, 1.0 / sqrt((double)Q), 0);
        ADD("self_attn.q_norm.weight", 0, 16, 0.2, 1.0);
        ADD("self_attn.k_norm.weight", 0, 16, 0.2, 1.0);
        ADD("post_attention_layernorm.weight", 0, D, 0.2, 1.0);
        ADD("mlp.gate_proj.weight", F, D, sD, 0);
        ADD("mlp.up_proj.weight", F, D, sD, 0);
        ADD("mlp.down_proj.weight", D, F, 1.0 / sqrt((double)F), 0);
#undef ADD
    }
}

/* Writes the model, skipping tensor `skip` (or none) and giving `reshape` a wrong shape. */
static int rm_write(const rand_model *rm, const char *path, const char *skip,
                    const char *reshape) {
    hd_st_write_item items[256];
    int n = 0;
    for (int i = 0; i < rm->n; i++) {
        const tensor_def *d = &rm->t[i];
        if (skip && !strcmp(skip, d->name)) continue;
        hd_st_write_item it = {0};
        it.name = d->name;
        it.dtype = d->dtype;
        if (d->rows) {
            it.ndim = 2;
            it.shape[0] = d->rows;
            it.shape[1] = d->cols;
        } else {
            it.ndim = 1;
            it.shape[0] = d->cols;
        }
        if (reshape && !strcmp(reshape, d->name)) { /* same bytes, transposed-looking shape */
            if (it.ndim == 2) {
                it.shape[0] = d->cols;
                it.shape[1] = d->rows;
            } else {
                it.ndim = 2;
                it.shape[0] = 2;
                it.shape[1] = d->cols / 2;
            }
        }
        it.data = d->raw;
        items[n++] = it;
    }
    hd_error e = {0};
    int rc = hd_st_write(path, items, n, &e);
    if (rc < 0) fprintf(stderr, "hd_st_write: %s\n", e.msg);
    return rc;
}

/* ---- an independent float64 reference forward (spec 03, written straight from the text) -- */

static void ref_linear(const double *x, int64_t m, int64_t k, const float *w, const float *b,
                       int64_t n, double *y) {
    for (int64_t i = 0; i < m; i++)
        for (int64_t o = 0; o < n; o++) {
            double acc = b ? b[o] : 0;
            for (int64_t j = 0; j < k; j++) acc += x[i * k + j] * w[o * k + j];
            y[i * n + o] = acc;
        }
}

static void ref_rmsnorm(double *x, int64_t m, int64_t g, const float *w, double eps) {
    for (int64_t i = 0; i < m; i++) {
        double ss = 0;
        for (int64_t j = 0; j < g; j++) ss += x[i * g + j] * x[i * g + j];
        double r = 1.0 / sqrt(ss / (double)g + eps);
        for (int64_t j = 0; j < g; j++) x[i * g + j] = x[i * g + j] * r * w[j];
    }
}

typedef struct ref_seq {
    const int32_t *ids;
    int64_t T, S, A;
    const int32_t *pos;        /* [3*S] */
    const float *vin;          /* [P, pd] */
    double t;
    const float *vit;          /* [n_pad, D] or NULL */
    const float *const *ds;    /* n_ds matrices [n_pad, D] */
    int n_ds;
} ref_seq;

/* out [S, pd]: the predicted patch of every row. */
static void ref_forward(const rand_model *rm, const ref_seq *q, double *out) {
    const hd_text_config *c = &rm->cfg.text;
    int64_t D = c->hidden_size, H = c->num_heads, KVH = c->num_kv_heads, hd = c->head_dim;
    int64_t F = c->intermediate_size, S = q->S, Q = H * hd, KV = KVH * hd, pd = rm->pd;
    double *x = calloc((size_t)(S * D), sizeof *x), *h = calloc((size_t)(S * D), sizeof *h);
    double *qq = calloc((size_t)(S * Q), sizeof *qq), *kk = calloc((size_t)(S * KV), sizeof *kk);
    double *vv = calloc((size_t)(S * KV), sizeof *vv), *at = calloc((size_t)(S * Q), sizeof *at);
    double *g = calloc((size_t)(S * F), sizeof *g), *u = calloc((size_t)(S * F), sizeof *u);
    double *tmp = calloc((size_t)(S * (pd > D ? pd : D)), sizeof *tmp);
    double *sc = calloc((size_t)S, sizeof *sc);
    /* embeddings */
    const float *emb = rm_get(rm, "model.language_model.embed_tokens.weight");
    int64_t m_img = 0;
    for (int64_t s = 0; s < q->T; s++) {
        for (int64_t j = 0; j < D; j++) x[s * D + j] = emb[q->ids[s] * D + j];
        if (q->ids[s] == rm->cfg.ids.image_pad && q->vit) {
            for (int64_t j = 0; j < D; j++) x[s * D + j] = q->vit[m_img * D + j];
            m_img++;
        }
        if (q->ids[s] == rm->cfg.ids.tms) {
            float f[256];
            double fd[256], hid[256];
            hd_timestep_sinusoid(q->t, 256, f);
            for (int j = 0; j < 256; j++) fd[j] = f[j];
            ref_linear(fd, 1, 256, rm_get(rm, "model.t_embedder1.mlp.0.weight"),
                       rm_get(rm, "model.t_embedder1.mlp.0.bias"), D, hid);
            for (int64_t j = 0; j < D; j++) hid[j] = hid[j] / (1.0 + exp(-hid[j]));
            ref_linear(hid, 1, D, rm_get(rm, "model.t_embedder1.mlp.2.weight"),
                       rm_get(rm, "model.t_embedder1.mlp.2.bias"), D, x + s * D);
        }
    }
    int64_t P = S - q->T;
    for (int64_t p = 0; p < P; p++) {
        double *vin = tmp, mid[64];
        for (int64_t j = 0; j < pd; j++) vin[j] = q->vin[p * pd + j];
        ref_linear(vin, 1, pd, rm_get(rm, "model.x_embedder.proj1.weight"), NULL, rm->bn, mid);
        ref_linear(mid, 1, rm->bn, rm_get(rm, "model.x_embedder.proj2.weight"),
                   rm_get(rm, "model.x_embedder.proj2.bias"), D, x + (q->T + p) * D);
    }
    /* rotary angles from the spec's rule, written independently of rope.c */
    int64_t half = hd / 2;
    for (int l = 0; l < c->num_layers; l++) {
        char n[128];
#define W(suffix) (snprintf(n, sizeof n, "model.language_model.layers.%d.%s", l, suffix), rm_get(rm, n))
        memcpy(h, x, (size_t)(S * D) * sizeof *h);
        ref_rmsnorm(h, S, D, W("input_layernorm.weight"), c->rms_norm_eps);
        ref_linear(h, S, D, W("self_attn.q_proj.weight"), NULL, Q, qq);
        ref_linear(h, S, D, W("self_attn.k_proj.weight"), NULL, KV, kk);
        ref_linear(h, S, D, W("self_attn.v_proj.weight"), NULL, KV, vv);
        ref_rmsnorm(qq, S * H, hd, W("self_attn.q_norm.weight"), c->rms_norm_eps);
        ref_rmsnorm(kk, S * KVH, hd, W("self_attn.k_norm.weight"), c->rms_norm_eps);
        for (int64_t s = 0; s < S; s++) {
            for (int64_t j = 0; j < half; j++) {
                int axis = 0;
                if (j % 3 == 1 && j < 3 * c->mrope_section[1]) axis = 1;
                if (j % 3 == 2 && j < 3 * c->mrope_section[2]) axis = 2;
                float invf = 1.0f / (float)pow((double)(float)c->rope_theta,
                                               (double)((float)(2 * j) / (float)hd));
                float ang = invf * (float)q->pos[axis * S + s];
                double cs = (float)cos((double)ang), sn = (float)sin((double)ang);
                for (int64_t hh = 0; hh < H + KVH; hh++) {
                    double *v = hh < H ? qq + s * Q + hh * hd : kk + s * KV + (hh - H) * hd;
                    double a = v[j], b = v[j + half];
                    v[j] = a * cs - b * sn;
                    v[j + half] = b * cs + a * sn;
                }
            }
        }
        double scale = 1.0 / sqrt((double)hd);
        for (int64_t s = 0; s < S; s++)
            for (int64_t hh = 0; hh < H; hh++) {
                int64_t kvh = hh / (H / KVH), nk = s < q->A ? s + 1 : S;
                double mx = -INFINITY, sum = 0;
                for (int64_t j = 0; j < nk; j++) {
                    double d = 0;
                    for (int64_t e2 = 0; e2 < hd; e2++)
                        d += qq[s * Q + hh * hd + e2] * kk[j * KV + kvh * hd + e2];
                    sc[j] = d * scale;
                    if (sc[j] > mx) mx = sc[j];
                }
                for (int64_t j = 0; j < nk; j++) sum += (sc[j] = exp(sc[j] - mx));
                for (int64_t e2 = 0; e2 < hd; e2++) {
                    double acc = 0;
                    for (int64_t j = 0; j < nk; j++) acc += sc[j] * vv[j * KV + kvh * hd + e2];
                    at[s * Q + hh * hd + e2] = acc / sum;
                }
            }
        ref_linear(at, S, Q, W("self_attn.o_proj.weight"), NULL, D, h);
        for (int64_t i = 0; i < S * D; i++) x[i] += h[i];
        memcpy(h, x, (size_t)(S * D) * sizeof *h);
        ref_rmsnorm(h, S, D, W("post_attention_layernorm.weight"), c->rms_norm_eps);
        ref_linear(h, S, D, W("mlp.gate_proj.weight"), NULL, F, g);
        ref_linear(h, S, D, W("mlp.up_proj.weight"), NULL, F, u);
        for (int64_t i = 0; i < S * F; i++) g[i] = g[i] / (1.0 + exp(-g[i])) * u[i];
        ref_linear(g, S, F, W("mlp.down_proj.weight"), NULL, D, h);
        for (int64_t i = 0; i < S * D; i++) x[i] += h[i];
#undef W
        if (l < q->n_ds) {
            int64_t mi = 0;
            for (int64_t s = 0; s < q->T; s++)
                if (q->ids[s] == rm->cfg.ids.image_pad) {
                    for (int64_t j = 0; j < D; j++) x[s * D + j] += q->ds[l][mi * D + j];
                    mi++;
                }
        }
    }
    ref_rmsnorm(x, S, D, rm_get(rm, "model.language_model.norm.weight"), c->rms_norm_eps);
    ref_linear(x, S, D, rm_get(rm, "model.final_layer2.linear.weight"),
               rm_get(rm, "model.final_layer2.linear.bias"), pd, out);
    free(x), free(h), free(qq), free(kk), free(vv), free(at), free(g), free(u), free(tmp);
    free(sc);
}

/* ---- a HiDream-shaped sequence ------------------------------------------------------------ */

typedef struct test_seq {
    int64_t T, S, A, P, n_pad;
    int32_t ids[512];
    int32_t pos[3 * 1024];
    float *vin; /* [P, pd] */
} test_seq;

/* n_text text tokens (the last two are boi and tms), optionally n_pad image pads at rows 2..,
 * then an h x w target block and a rh x rw reference block, positions laid out as in spec 02 §5
 * (the image-pad block simplified). */
static void make_seq(test_seq *q, const hd_token_ids *tok, int vocab, int n_text, int n_pad,
                     int h, int w, int rh, int rw, int64_t pd) {
    memset(q, 0, sizeof *q);
    q->T = n_text;
    q->A = n_text - 1;
    q->P = (int64_t)h * w + (int64_t)rh * rw;
    q->S = q->T + q->P;
    q->n_pad = n_pad;
    for (int s = 0; s < n_text; s++) {
        int id;
        do id = (int)((urand() + 1) * 0.5 * (vocab - 1));
        while (id == tok->image_pad || id == tok->tms || id == tok->boi || id == tok->vision_start);
        q->ids[s] = id;
    }
    int pad_side = 1;
    while (pad_side * pad_side < n_pad) pad_side++;
    int64_t S = q->S, v = 0;
    for (int s = 0; s < n_text; s++) {
        int64_t pt, ph, pw;
        if (s >= 2 && s < 2 + n_pad) { /* a VLM image of pad_side columns */
            int m = s - 2;
            q->ids[s] = tok->image_pad;
            pt = 2;
            ph = 2 + m / pad_side;
            pw = 2 + m % pad_side;
            if (s == 1 + n_pad) v = 2 + pad_side;
        } else {
            pt = ph = pw = v++;
        }
        q->pos[s] = (int32_t)pt;
        q->pos[S + s] = (int32_t)ph;
        q->pos[2 * S + s] = (int32_t)pw;
    }
    q->ids[n_text - 2] = tok->boi;
    q->ids[n_text - 1] = tok->tms;
    int64_t s = n_text;
    for (int r = 0; r < h; r++)
        for (int c = 0; c < w; c++, s++) {
            q->pos[s] = 4096;
            q->pos[S + s] = 4096 + r;
            q->pos[2 * S + s] = 4096 + c;
        }
    int64_t R1 = 4096 + (h > w ? h : w);
    for (int r = 0; r < rh; r++)
        for (int c = 0; c < rw; c++, s++) {
            q->pos[s] = (int32_t)R1;
            q->pos[S + s] = (int32_t)(R1 + r);
            q->pos[2 * S + s] = (int32_t)(R1 + c);
        }
    q->vin = malloc((size_t)(q->P * pd) * sizeof(float));
    for (int64_t i = 0; i < q->P * pd; i++) q->vin[i] = (float)urand();
}

/* A fake ViT output (random rows) on the backend, to test the scatter and DeepStack paths. */
static int make_vit(hd_backend *be, hd_vit_output *vo, int64_t n, int64_t D, int n_ds,
                    float **host_emb, float **host_ds) {
    hd_error e = {0};
    memset(vo, 0, sizeof *vo);
    vo->n_tokens = n;
    vo->n_deepstack = n_ds;
    if (be->ops->alloc(be, &vo->embeds, HD_F32, n, D, &e) < 0) return -1;
    *host_emb = malloc((size_t)(n * D) * sizeof(float));
    for (int64_t i = 0; i < n * D; i++) (*host_emb)[i] = (float)urand();
    be->ops->write(be, &vo->embeds, *host_emb);
    for (int i = 0; i < n_ds; i++) {
        if (be->ops->alloc(be, &vo->deepstack[i], HD_F32, n, D, &e) < 0) return -1;
        host_ds[i] = malloc((size_t)(n * D) * sizeof(float));
        for (int64_t j = 0; j < n * D; j++) host_ds[i][j] = (float)urand();
        be->ops->write(be, &vo->deepstack[i], host_ds[i]);
    }
    return 0;
}

static void free_vit(hd_backend *be, hd_vit_output *vo, float *host_emb, float **host_ds) {
    hd_tensor_free(be, &vo->embeds);
    for (int i = 0; i < vo->n_deepstack; i++) {
        hd_tensor_free(be, &vo->deepstack[i]);
        free(host_ds[i]);
    }
    free(host_emb);
}

/* Runs uncached (all rows) and cached (rows >= A) and checks cached == uncached on the
 * generation rows. Returns the uncached output of every row via *all_out (malloc'd). */
static void check_cache_equivalence(hd_uit *m, const test_seq *q, const hd_vit_output *vit,
                                    double t, float **all_out, const char *what) {
    hd_error e = {0};
    int64_t pd = m->patch_dim, G = q->S - q->A;
    int32_t *rows = malloc((size_t)q->S * sizeof *rows);
    for (int64_t i = 0; i < q->S; i++) rows[i] = (int32_t)i;
    float *full = malloc((size_t)(q->S * pd) * sizeof(float));
    float *cached = malloc((size_t)(G * pd) * sizeof(float));
    hd_uit_seq seq = {q->ids, q->T, q->S, q->pos, q->A, vit};
    int rc = hd_uit_forward(m, &seq, q->vin, t, rows, q->S, full, NULL, &e);
    CHECKF(rc == 0, "%s: forward: %s", what, e.msg);
    hd_prefix_cache pc;
    rc = hd_uit_prefix_build(m, &seq, &pc, NULL, &e);
    CHECKF(rc == 0, "%s: prefix: %s", what, e.msg);
    /* two steps with different t and z on the same cache: both must match */
    float *vin2 = malloc((size_t)(q->P * pd) * sizeof(float) + 1);
    float *full2 = malloc((size_t)(q->S * pd) * sizeof(float));
    for (int64_t i = 0; i < q->P * pd; i++) vin2[i] = -0.5f * q->vin[i];
    for (int step = 0; step < 2 && rc == 0; step++) {
        const float *vin = step == 0 ? q->vin : vin2;
        const float *ref = step == 0 ? full : full2;
        double ts = step == 0 ? t : 0.25;
        if (step == 1) hd_uit_forward(m, &seq, vin2, ts, rows, q->S, full2, NULL, &e);
        rc = hd_uit_forward_cached(m, &pc, &seq, vin, ts, rows + q->A, G, cached, NULL, &e);
        CHECKF(rc == 0, "%s: cached: %s", what, e.msg);
        double r = rel_err_ff(cached, ref + q->A * pd, (size_t)(G * pd));
        CHECKF(r <= 1e-6, "%s step %d: cached vs uncached rel err %.3g", what, step, r);
    }
    /* the step must matter: another t and z give another prediction */
    CHECK(rel_err_ff(full2 + q->A * pd, full + q->A * pd, (size_t)(G * pd)) > 1e-3);
    free(vin2);
    free(full2);
    hd_prefix_cache_free(&pc);
    free(cached);
    free(rows);
    if (all_out) *all_out = full;
    else free(full);
}

/* ---- tests on the random model ------------------------------------------------------------ */

static hd_backend *g_be;

static hd_uit *load_rand(rand_model *rm, const char *dir, hd_safetensors *st) {
    char path[512];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    hd_error e = {0};
    if (rm_write(rm, path, NULL, NULL) < 0) return NULL;
    if (hd_st_open(st, path, &e) < 0) {
        fprintf(stderr, "open: %s\n", e.msg);
        return NULL;
    }
    hd_uit *m = NULL;
    if (hd_uit_create(&m, g_be, &rm->cfg, st, &e) < 0) fprintf(stderr, "create: %s\n", e.msg);
    return m;
}

static void test_random_model_forward_matches_float64_reference(void) {
    rand_model rm;
    rm_build(&rm, 2);
    char dir[256];
    hd_test_tmpdir(dir, sizeof dir);
    hd_safetensors st = {0};
    hd_uit *m = load_rand(&rm, dir, &st);
    CHECK(m != NULL);
    if (!m) goto out;
    test_seq q;
    make_seq(&q, &rm.cfg.ids, 64, 9, 0, 2, 3, 2, 2, rm.pd); /* T 9, L 6, ref 4: S 19 */
    float *got = NULL;
    check_cache_equivalence(m, &q, NULL, 0.37, &got, "random model t2i+ref");
    double *ref = malloc((size_t)(q.S * rm.pd) * sizeof *ref);
    ref_seq rq = {q.ids, q.T, q.S, q.A, q.pos, q.vin, 0.37, NULL, NULL, 0};
    ref_forward(&rm, &rq, ref);
    double r = rel_err_fd(got, ref, (size_t)(q.S * rm.pd));
    CHECKF(r <= 2e-5, "float32 forward vs float64 reference: rel err %.3g", r);
    /* text rows alone: catches a mask that lets text see generation rows */
    double rt = rel_err_fd(got, ref, (size_t)(q.A * rm.pd));
    CHECKF(rt <= 2e-5, "text rows vs reference: rel err %.3g", rt);
    free(ref);
    free(got);
    free(q.vin);
    hd_uit_free(m);
out:
    hd_st_close(&st);
    rm_free(&rm);
}

static void test_vit_rows_and_deepstack_are_applied_and_cached_exactly(void) {
    rand_model rm;
    rm_build(&rm, 3);
    char dir[256];
    hd_test_tmpdir(dir, sizeof dir);
    hd_safetensors st = {0};
    hd_uit *m = load_rand(&rm, dir, &st);
    CHECK(m != NULL);
    if (!m) goto out;
    test_seq q;
    make_seq(&q, &rm.cfg.ids, 64, 16, 4, 2, 2, 2, 2, rm.pd);
    hd_vit_output vo;
    float *emb = NULL, *ds[HD_MAX_DEEPSTACK] = {0};
    CHECK(make_vit(g_be, &vo, 4, 48, 2, &emb, ds) == 0);
    float *got = NULL;
    check_cache_equivalence(m, &q, &vo, 0.8, &got, "random model with ViT rows");
    double *ref = malloc((size_t)(q.S * rm.pd) * sizeof *ref);
    const float *dsc[2] = {ds[0], ds[1]};
    ref_seq rq = {q.ids, q.T, q.S, q.A, q.pos, q.vin, 0.8, emb, dsc, 2};
    ref_forward(&rm, &rq, ref);
    double r = rel_err_fd(got, ref, (size_t)(q.S * rm.pd));
    CHECKF(r <= 2e-5, "with ViT + DeepStack vs float64 reference: rel err %.3g", r);
    /* without DeepStack the result must differ (the injection is not a no-op) */
    ref_seq rq0 = rq;
    rq0.n_ds = 0;
    ref_forward(&rm, &rq0, ref);
    CHECK(rel_err_fd(got, ref, (size_t)(q.S * rm.pd)) > 1e-3);
    free(ref);
    free(got);
    free_vit(g_be, &vo, emb, ds);
    free(q.vin);
    hd_uit_free(m);
out:
    hd_st_close(&st);
    rm_free(&rm);
}

static void test_probe_sees_embeddings_and_every_layer(void);

typedef struct probe_log {
    int calls, layers_seen[8], with_hidden;
    int64_t row0, rows;
} probe_log;

static void probe_fn(void *ctx, int layer, int64_t row0, int64_t n_rows, const float *hidden) {
    probe_log *p = ctx;
    p->calls++;
    if (layer >= -1 && layer < 7) p->layers_seen[layer + 1]++;
    if (hidden) p->with_hidden++;
    p->row0 = row0;
    p->rows = n_rows;
}

static void test_probe_sees_embeddings_and_every_layer(void) {
    rand_model rm;
    rm_build(&rm, 2);
    char dir[256];
    hd_test_tmpdir(dir, sizeof dir);
    hd_safetensors st = {0};
    hd_uit *m = load_rand(&rm, dir, &st);
    CHECK(m != NULL);
    if (!m) goto out;
    test_seq q;
    make_seq(&q, &rm.cfg.ids, 64, 6, 0, 1, 2, 0, 0, rm.pd);
    hd_uit_seq seq = {q.ids, q.T, q.S, q.pos, q.A, NULL};
    probe_log log = {0};
    hd_uit_probe p = {probe_fn, &log, 1};
    hd_error e = {0};
    CHECK(hd_uit_forward(m, &seq, q.vin, 0.5, NULL, 0, NULL, &p, &e) == 0);
    CHECK(log.calls == 3 && log.layers_seen[0] == 1 && log.layers_seen[1] == 1 &&
          log.layers_seen[2] == 1);
    CHECK(log.with_hidden == 2); /* embeddings and layer 0 (n_capture = 1) */
    CHECK(log.row0 == 0 && log.rows == q.S);
    free(q.vin);
    hd_uit_free(m);
out:
    hd_st_close(&st);
    rm_free(&rm);
}

static void test_bad_inputs_are_rejected_with_a_message(void) {
    rand_model rm;
    rm_build(&rm, 1);
    char dir[256];
    hd_test_tmpdir(dir, sizeof dir);
    hd_safetensors st = {0};
    hd_uit *m = load_rand(&rm, dir, &st);
    CHECK(m != NULL);
    if (!m) goto out;
    test_seq q;
    make_seq(&q, &rm.cfg.ids, 64, 6, 0, 1, 2, 0, 0, rm.pd);
    hd_error e = {0};
    float out[3072];
    int32_t row_text = 1, row_gen = (int32_t)q.S - 1;
    hd_uit_seq seq = {q.ids, q.T, q.S, q.pos, q.A, NULL};
    hd_prefix_cache pc;
    CHECK(hd_uit_prefix_build(m, &seq, &pc, NULL, &e) == 0);
    /* a cached step may not ask for text rows */
    CHECK(hd_uit_forward_cached(m, &pc, &seq, q.vin, 0.5, &row_text, 1, out, NULL, &e) ==
          HD_EINVAL);
    CHECK(hd_uit_forward_cached(m, &pc, &seq, q.vin, 0.5, &row_gen, 1, out, NULL, &e) == 0);
    /* a cache is refused for another prompt */
    q.ids[0] = q.ids[0] == 5 ? 6 : 5;
    CHECK(hd_uit_forward_cached(m, &pc, &seq, q.vin, 0.5, &row_gen, 1, out, NULL, &e) ==
          HD_EMISMATCH);
    hd_prefix_cache_free(&pc);
    /* the timestep token may not be in the causal prefix */
    hd_uit_seq bad = seq;
    bad.n_causal = q.T;
    CHECK(hd_uit_prefix_build(m, &bad, &pc, NULL, &e) == HD_EINVAL);
    CHECK(strstr(e.msg, "tms") != NULL);
    /* ids outside the vocabulary, causal prefix past the text, image pads without a ViT */
    bad = seq;
    q.ids[2] = 64;
    CHECK(hd_uit_forward(m, &bad, q.vin, 0.5, &row_gen, 1, out, NULL, &e) == HD_EINVAL);
    CHECK(strstr(e.msg, "input_ids[2]") != NULL);
    q.ids[2] = rm.cfg.ids.image_pad;
    CHECK(hd_uit_forward(m, &bad, q.vin, 0.5, &row_gen, 1, out, NULL, &e) == HD_EINVAL);
    q.ids[2] = 3;
    bad.n_causal = q.T + 1;
    CHECK(hd_uit_forward(m, &bad, q.vin, 0.5, &row_gen, 1, out, NULL, &e) == HD_EINVAL);
    /* ViT output count must match the pads */
    hd_vit_output vo;
    float *emb = NULL, *ds[HD_MAX_DEEPSTACK] = {0};
    CHECK(make_vit(g_be, &vo, 2, 48, 1, &emb, ds) == 0);
    bad = seq;
    bad.vit = &vo;
    q.ids[2] = rm.cfg.ids.image_pad;
    CHECK(hd_uit_forward(m, &bad, q.vin, 0.5, &row_gen, 1, out, NULL, &e) == HD_EMISMATCH);
    free_vit(g_be, &vo, emb, ds);
    free(q.vin);
    hd_uit_free(m);
out:
    hd_st_close(&st);
    rm_free(&rm);
}

static void test_missing_or_misshapen_weight_is_named(void) {
    rand_model rm;
    rm_build(&rm, 1);
    char dir[256], path[512];
    hd_test_tmpdir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    hd_error e = {0};
    hd_safetensors st = {0};
    hd_uit *m = NULL;
    CHECK(rm_write(&rm, path, "model.language_model.layers.0.self_attn.k_norm.weight", NULL) == 0);
    CHECK(hd_st_open(&st, path, &e) == 0);
    CHECK(hd_uit_create(&m, g_be, &rm.cfg, &st, &e) == HD_EFORMAT && m == NULL);
    CHECKF(strstr(e.msg, "layers.0.self_attn.k_norm.weight") != NULL, "%s", e.msg);
    hd_st_close(&st);
    CHECK(rm_write(&rm, path, NULL, "model.language_model.layers.0.mlp.up_proj.weight") == 0);
    CHECK(hd_st_open(&st, path, &e) == 0);
    CHECK(hd_uit_create(&m, g_be, &rm.cfg, &st, &e) == HD_EMISMATCH && m == NULL);
    CHECKF(strstr(e.msg, "mlp.up_proj.weight") != NULL && strstr(e.msg, "[48, 80]") != NULL,
           "%s", e.msg);
    hd_st_close(&st);
    /* a config that disagrees with the file (more heads) */
    CHECK(rm_write(&rm, path, NULL, NULL) == 0);
    CHECK(hd_st_open(&st, path, &e) == 0);
    hd_config cfg = rm.cfg;
    cfg.text.num_heads = 12;
    cfg.text.head_dim = 8;
    cfg.text.mrope_section[0] = 2;
    cfg.text.mrope_section[1] = 1;
    cfg.text.mrope_section[2] = 1;
    CHECK(hd_uit_create(&m, g_be, &cfg, &st, &e) == HD_EMISMATCH && m == NULL);
    hd_st_close(&st);
    rm_free(&rm);
}

/* ---- the tiny golden model ---------------------------------------------------------------- */

static void test_golden_model_cached_equals_uncached(void) {
    char dir[512];
    hd_test_shared(dir, sizeof dir, "golden/model-tiny");
    hd_error e = {0};
    hd_config cfg;
    hd_safetensors st = {0};
    hd_uit *m = NULL;
    if (hd_config_load_dir(&cfg, dir, &e) < 0 || hd_st_open_dir(&st, dir, &e) < 0 ||
        hd_uit_create(&m, g_be, &cfg, &st, &e) < 0) {
        CHECKF(0, "tiny model: %s", e.msg);
        hd_st_close(&st);
        return;
    }
    test_seq q;
    make_seq(&q, &cfg.ids, cfg.text.vocab_size, 30, 0, 3, 2, 0, 0, m->patch_dim);
    check_cache_equivalence(m, &q, NULL, 0.91, NULL, "tiny model t2i");
    free(q.vin);
    /* with ViT rows and as many DeepStack features as the config names */
    int n_ds = cfg.vision.n_deepstack < cfg.text.num_layers ? cfg.vision.n_deepstack
                                                             : cfg.text.num_layers;
    make_seq(&q, &cfg.ids, cfg.text.vocab_size, 40, 9, 2, 2, 2, 3, m->patch_dim);
    hd_vit_output vo;
    float *emb = NULL, *ds[HD_MAX_DEEPSTACK] = {0};
    CHECK(make_vit(g_be, &vo, 9, m->dim, n_ds, &emb, ds) == 0);
    check_cache_equivalence(m, &q, &vo, 0.001, NULL, "tiny model edit-like");
    free_vit(g_be, &vo, emb, ds);
    free(q.vin);
    hd_uit_free(m);
    hd_st_close(&st);
}

static void test_golden_forward_cases_pass_check_golden(void) {
    const char *bin = getenv("HIDREAM_BIN");
    if (!bin) {
        printf("  (HIDREAM_BIN not set: CLI golden check not run)\n");
        return;
    }
    char dir[512], cmd[2048], out[16384];
    hd_test_shared(dir, sizeof dir, "golden/model-tiny");
    snprintf(cmd, sizeof cmd, "'%s' check-golden '%s' --only forward", bin, dir);
    int rc = hd_test_run(cmd, out, sizeof out);
    CHECKF(rc == 0 && strstr(out, "FAIL") == NULL && strstr(out, "PASS forward.") != NULL,
           "exit %d:\n%s", rc, out);
}

int main(void) {
    RUN_TEST(test_rope_inv_freq_matches_spec_values);
    RUN_TEST(test_rope_interleaved_slots_follow_mrope_section);
    RUN_TEST(test_rope_tables_duplicate_halves_and_use_each_axis);
    RUN_TEST(test_rope_rejects_sections_not_summing_to_half_head);
    RUN_TEST(test_timestep_sinusoid_is_cos_then_sin_of_spec_frequencies);
    RUN_TEST(test_token_types_must_be_zero_prefix_then_ones);
    g_be = make_backend();
    CHECK(g_be != NULL);
    if (g_be) {
        RUN_TEST(test_missing_or_misshapen_weight_is_named);
        RUN_TEST(test_random_model_forward_matches_float64_reference);
        RUN_TEST(test_vit_rows_and_deepstack_are_applied_and_cached_exactly);
        RUN_TEST(test_probe_sees_embeddings_and_every_layer);
        RUN_TEST(test_bad_inputs_are_rejected_with_a_message);
        RUN_TEST(test_golden_model_cached_equals_uncached);
        hd_backend_destroy(g_be);
    }
    RUN_TEST(test_golden_forward_cases_pass_check_golden);
    return hd_test_finish();
}
