/* attention_backward: gradients of out = softmax(q kᵀ·scale + mask) v, flash style.
 * With P = exp(S − lse) recomputed from the forward's lse and D_i = dO_i·O_i:
 *   dV_j = Σ_i P_ij dO_i,  dS_ij = P_ij (dO_i·V_j − D_i),  dQ_i = scale Σ_j dS_ij K_j,
 *   dK_j = scale Σ_i dS_ij Q_i   (summed over the query heads sharing a kv head).
 * Two passes so that every output element has a single writer (no races, deterministic):
 * one over (query row, head) for dQ, one over (key row, kv head) for dK and dV. */
#include <math.h>
#include <string.h>

#include "backend/cpu/kernels.h"

typedef struct attnb_job {
    float *dq, *dk, *dv;
    const float *dout, *q, *k, *v, *out, *lse;
    int64_t lddq, lddk, lddv, lddo, ldq, ldk, ldv, ldo, ldl;
    int64_t Sq, Sk;
    int Hq, Hkv, G, hd;
    float scale;
    hd_attn_mask mask;
} attnb_job;

static inline int64_t key_limit(const attnb_job *a, int64_t i) {
    int64_t p = a->mask.q_offset + i;
    if (p >= a->mask.n_causal) return a->Sk;
    return p + 1 < a->Sk ? (p + 1 > 0 ? p + 1 : 0) : a->Sk;
}

static inline float dot(const float *a, const float *b, int n) {
    float s = 0.0f;
    for (int d = 0; d < n; d++) s += a[d] * b[d];
    return s;
}

static void dq_rows(void *ctx, int64_t r0, int64_t r1, int thread) {
    const attnb_job *a = ctx;
    const int hd = a->hd;
    for (int64_t r = r0; r < r1; r++) {
        int64_t i = r / a->Hq;
        int h = (int)(r % a->Hq), kvh = h / a->G;
        const float *q = a->q + i * a->ldq + (int64_t)h * hd;
        const float *dO = a->dout + i * a->lddo + (int64_t)h * hd;
        float *dq = a->dq + i * a->lddq + (int64_t)h * hd;
        float L = a->lse[i * a->ldl + h];
        float D = dot(dO, a->out + i * a->ldo + (int64_t)h * hd, hd);
        memset(dq, 0, (size_t)hd * sizeof(float));
        int64_t lim = key_limit(a, i);
        if (!(L > -INFINITY)) lim = 0;
        for (int64_t j = 0; j < lim; j++) {
            const float *kj = a->k + j * a->ldk + (int64_t)kvh * hd;
            const float *vj = a->v + j * a->ldv + (int64_t)kvh * hd;
            float p = expf(dot(q, kj, hd) * a->scale - L);
            float ds = p * (dot(dO, vj, hd) - D) * a->scale;
            for (int d = 0; d < hd; d++) dq[d] += ds * kj[d];
        }
    }
}

static void dkv_rows(void *ctx, int64_t r0, int64_t r1, int thread) {
    const attnb_job *a = ctx;
    const int hd = a->hd;
    for (int64_t r = r0; r < r1; r++) {
        int64_t j = r / a->Hkv;
        int kvh = (int)(r % a->Hkv);
        const float *kj = a->k + j * a->ldk + (int64_t)kvh * hd;
        const float *vj = a->v + j * a->ldv + (int64_t)kvh * hd;
        float *dk = a->dk + j * a->lddk + (int64_t)kvh * hd;
        float *dv = a->dv + j * a->lddv + (int64_t)kvh * hd;
        memset(dk, 0, (size_t)hd * sizeof(float));
        memset(dv, 0, (size_t)hd * sizeof(float));
        for (int64_t i = 0; i < a->Sq; i++) {
            if (key_limit(a, i) <= j) continue;
            for (int g = 0; g < a->G; g++) {
                int h = kvh * a->G + g;
                float L = a->lse[i * a->ldl + h];
                if (!(L > -INFINITY)) continue;
                const float *q = a->q + i * a->ldq + (int64_t)h * hd;
                const float *dO = a->dout + i * a->lddo + (int64_t)h * hd;
                float D = dot(dO, a->out + i * a->ldo + (int64_t)h * hd, hd);
                float p = expf(dot(q, kj, hd) * a->scale - L);
                float ds = p * (dot(dO, vj, hd) - D) * a->scale;
                for (int d = 0; d < hd; d++) {
                    dv[d] += p * dO[d];
                    dk[d] += ds * q[d];
                }
            }
        }
    }
}

void hd_cpu_attention_backward(hd_backend *be, hd_tensor *dq, hd_tensor *dk, hd_tensor *dv,
                               const hd_tensor *dout, const hd_tensor *q, const hd_tensor *k,
                               const hd_tensor *v, const hd_tensor *out, const hd_tensor *lse,
                               int n_heads, int n_kv_heads, int head_dim, float scale,
                               hd_attn_mask mask) {
    hd_cpu *cpu = hd_cpu_of(be);
    if (n_heads <= 0 || n_kv_heads <= 0 || head_dim <= 0) return;
    attnb_job a = {
        .dq = dq->data, .dk = dk->data, .dv = dv->data, .dout = dout->data, .q = q->data,
        .k = k->data, .v = v->data, .out = out->data, .lse = lse->data,
        .lddq = dq->stride, .lddk = dk->stride, .lddv = dv->stride, .lddo = dout->stride,
        .ldq = q->stride, .ldk = k->stride, .ldv = v->stride, .ldo = out->stride,
        .ldl = lse->stride, .Sq = q->rows, .Sk = k->rows, .Hq = n_heads, .Hkv = n_kv_heads,
        .G = n_heads / n_kv_heads, .hd = head_dim, .scale = scale, .mask = mask,
    };
    hd_cpu_for_rows(cpu, a.Sq * n_heads, a.Sk * head_dim, dq_rows, &a);
    hd_cpu_for_rows(cpu, a.Sk * n_kv_heads, a.Sq * head_dim, dkv_rows, &a);
}
