/* attention: flash-style tiled attention with an online softmax (never an Sq×Sk matrix).
 *
 * A task is one KV head × one tile of queries; it processes the Hq/Hkv query heads that share
 * the KV head together, so each packed K/V tile is reused by all of them. Rows of a task are
 * (query i, head g) pairs ordered r = i*G + g. For each HD_ATTN_BK-key tile, K is packed
 * transposed (kt[d][j]) and V row-major with the head dimension padded to hdp (multiple of 16);
 * then RB rows at a time: scores → running max/sum update → O = O·alpha + P·V.
 * Key tiles beyond the last key any row of the task may see are skipped; partly visible tiles
 * are masked per row. Tasks with the most work (late queries under a causal mask) go first. */
#include <math.h>
#include <string.h>

#include "backend/cpu/kernels.h"

/* Target rows (queries × grouped heads) per task. */
#define ATTN_ROWS 512

/* ---- portable kernels ---- */

void hd_vexp_scalar(float *x, int64_t n) {
    for (int64_t i = 0; i < n; i++) x[i] = expf(x[i]);
}

void hd_attn_pack_kt_scalar(const float *k, int64_t ldk, int nk, int hd, float *kt) {
    for (int d = 0; d < hd; d++) {
        float *ktd = kt + d * HD_ATTN_BK;
        for (int j = 0; j < nk; j++) ktd[j] = k[j * ldk + d];
        for (int j = nk; j < HD_ATTN_BK; j++) ktd[j] = 0.0f;
    }
}

float hd_attn_softmax_scalar(float *s, int n_valid, float scale, float *m) {
    float mx = *m;
    for (int j = 0; j < n_valid; j++) {
        s[j] *= scale;
        if (s[j] > mx) mx = s[j];
    }
    float sum = 0.0f;
    for (int j = 0; j < n_valid; j++) sum += s[j] = expf(s[j] - mx);
    for (int j = n_valid; j < HD_ATTN_BK; j++) s[j] = 0.0f;
    *m = mx;
    return sum;
}

#define SRB 4 /* rows per call: attn_rb of the scalar table in cpu_backend.c */

void hd_attn_scores_scalar(int hd, const float *q, int64_t ldq, const float *kt, float *s) {
    for (int r = 0; r < SRB; r++) {
        float acc[HD_ATTN_BK];
        for (int j = 0; j < HD_ATTN_BK; j++) acc[j] = 0.0f;
        const float *qr = q + r * ldq;
        for (int d = 0; d < hd; d++) {
            const float qd = qr[d], *kd = kt + d * HD_ATTN_BK;
            for (int j = 0; j < HD_ATTN_BK; j++) acc[j] += qd * kd[j];
        }
        memcpy(s + r * HD_ATTN_BK, acc, sizeof acc);
    }
}

void hd_attn_pv_scalar(int hdp, int nk, const float *p, const float *v, float *o,
                       const float *alpha) {
    for (int r = 0; r < SRB; r++) {
        float *orow = o + (int64_t)r * hdp;
        const float *pr = p + r * HD_ATTN_BK;
        for (int d = 0; d < hdp; d++) orow[d] *= alpha[r];
        for (int j = 0; j < nk; j++) {
            const float pj = pr[j], *vj = v + (int64_t)j * hdp;
            if (pj == 0.0f) continue;
            for (int d = 0; d < hdp; d++) orow[d] += pj * vj[d];
        }
    }
}

/* ---- driver ---- */

typedef struct attn_job {
    hd_cpu *cpu;
    const float *q, *k, *v;
    float *out;
    float *lse; /* NULL, or [Sq, Hq] log-sum-exp of the scaled scores (attention_lse) */
    int64_t ldq, ldk, ldv, ldo, ldl;
    int64_t Sq, Sk;
    int Hkv, G, hd, hdp;
    float scale;
    hd_attn_mask mask;
    int bf16;     /* the bf16 kernels (hd_cpu.attn_bf16 or attn_amx, even head dim) */
    int amx;      /* ... on AMX tiles, 16 rows per call */
    int64_t bq;   /* queries per task */
    int64_t n_qt; /* query tiles */
} attn_job;

/* Number of keys query i (0-based within q) may see. */
static inline int64_t key_limit(const attn_job *a, int64_t i) {
    int64_t p = a->mask.q_offset + i;
    if (p >= a->mask.n_causal) return a->Sk;
    return p + 1 < a->Sk ? (p + 1 > 0 ? p + 1 : 0) : a->Sk;
}

static void attn_task(void *ctx, int64_t t, int thread) {
    const attn_job *a = ctx;
    const hd_cpu_kernels *kn = a->cpu->k;
    const int G = a->G, hd = a->hd, hdp = a->hdp, RB = a->amx ? HD_ATTN_AMX_RB : kn->attn_rb;
    const int h2 = hd / 2, h2p = (h2 + 15) / 16 * 16; /* pairs of a row, and padded for tiles */
    const int64_t BK = HD_ATTN_BK;

    int64_t qt = a->n_qt - 1 - t / a->Hkv; /* heavy (late) query tiles first */
    int kvh = (int)(t % a->Hkv);
    int64_t i0 = qt * a->bq, i1 = i0 + a->bq < a->Sq ? i0 + a->bq : a->Sq;
    if (i0 >= i1) return;
    int64_t nq = i1 - i0, rows = nq * G, rows_pad = (rows + RB - 1) / RB * RB;

    float *sc = a->cpu->scratch[thread];
    float *qp = sc;                      /* rows_pad × hdp */
    float *o = qp + rows_pad * hdp;      /* rows_pad × hdp */
    float *kt = o + rows_pad * hdp;      /* hdp × BK */
    float *vp = kt + hdp * BK;           /* BK × hdp */
    float *s = vp + BK * hdp;            /* RB × BK */
    float *m = s + RB * BK;              /* rows_pad: running max (scaled scores) */
    float *l = m + rows_pad;             /* rows_pad: running sum */
    float *alpha = l + rows_pad;         /* rows_pad */
    int64_t *lim = (int64_t *)(void *)(alpha + rows_pad); /* rows_pad key limits */

    for (int64_t r = 0; r < rows_pad; r++) {
        float *qr = qp + r * hdp;
        if (r < rows) {
            int64_t i = r / G;
            int h = kvh * G + (int)(r % G);
            memcpy(qr, a->q + (i0 + i) * a->ldq + (int64_t)h * hd, (size_t)hd * sizeof(float));
            memset(qr + hd, 0, (size_t)(hdp - hd) * sizeof(float));
            lim[r] = key_limit(a, i0 + i);
        } else {
            memset(qr, 0, (size_t)hdp * sizeof(float));
            lim[r] = 0;
        }
        if (a->bf16) hd_attn_bf16_pairs(qr, hd);
        if (a->amx) memset(qr + h2, 0, (size_t)(h2p - h2) * sizeof(float));
        m[r] = -INFINITY;
        l[r] = 0.0f;
    }
    memset(o, 0, (size_t)(rows_pad * hdp) * sizeof(float));
    int64_t kend = key_limit(a, i1 - 1); /* limits grow with i */

    const float *kbase = a->k + (int64_t)kvh * hd, *vbase = a->v + (int64_t)kvh * hd;
    for (int64_t j0 = 0; j0 < kend; j0 += BK) {
        int nk = (int)(kend - j0 < BK ? kend - j0 : BK);
        if (a->bf16) {
            hd_attn_bf16_pack_kt(kbase + j0 * a->ldk, a->ldk, nk, hd, kt);
            if (a->amx) memset(kt + h2 * BK, 0, (size_t)((h2p - h2) * BK) * sizeof(float));
            hd_attn_bf16_pack_v(vbase + j0 * a->ldv, a->ldv, nk, hd, hdp, vp);
        } else {
            kn->attn_pack_kt(kbase + j0 * a->ldk, a->ldk, nk, hd, kt);
        }
        for (int j = 0; j < BK && !a->bf16; j++) {
            float *vj = vp + (int64_t)j * hdp;
            if (j < nk) {
                memcpy(vj, vbase + (j0 + j) * a->ldv, (size_t)hd * sizeof(float));
                memset(vj + hd, 0, (size_t)(hdp - hd) * sizeof(float));
            } else {
                memset(vj, 0, (size_t)hdp * sizeof(float));
            }
        }
        for (int64_t rb = 0; rb < rows_pad; rb += RB) {
            /* limits grow with the row index; padded rows have limit 0 */
            int64_t last = (rb + RB < rows ? rb + RB : rows) - 1;
            if (lim[last] <= j0) continue;
            if (a->amx) hd_attn_amx_scores(hd, qp + rb * hdp, hdp, kt, s);
            else if (a->bf16) hd_attn_bf16_scores(hd, qp + rb * hdp, hdp, kt, s);
            else kn->attn_scores(hd, qp + rb * hdp, hdp, kt, s);
            for (int r = 0; r < RB; r++) {
                float *sr = s + r * BK;
                int64_t nv = lim[rb + r] - j0;
                int n_valid = nv <= 0 ? 0 : (nv < nk ? (int)nv : nk);
                if (n_valid == 0) {
                    memset(sr, 0, (size_t)BK * sizeof(float));
                    alpha[r] = 1.0f;
                    continue;
                }
                float m_old = m[rb + r], m_new = m_old;
                float sum = kn->attn_softmax(sr, n_valid, a->scale, &m_new);
                float al = m_old == -INFINITY ? 0.0f : expf(m_old - m_new);
                alpha[r] = al;
                l[rb + r] = l[rb + r] * al + sum;
                m[rb + r] = m_new;
            }
            if (a->amx) hd_attn_amx_pv(hdp, nk, s, vp, o + rb * hdp, alpha);
            else if (a->bf16) hd_attn_bf16_pv(hdp, nk, s, vp, o + rb * hdp, alpha);
            else kn->attn_pv(hdp, nk, s, vp, o + rb * hdp, alpha);
        }
    }

    for (int64_t r = 0; r < rows; r++) {
        int64_t i = r / G;
        int h = kvh * G + (int)(r % G);
        float *dst = a->out + (i0 + i) * a->ldo + (int64_t)h * hd;
        const float *orow = o + r * hdp;
        float inv = l[r] > 0.0f ? 1.0f / l[r] : 0.0f;
        for (int d = 0; d < hd; d++) dst[d] = orow[d] * inv;
        /* m is the running max of the scaled scores and l = Σ exp(score − m) */
        if (a->lse) a->lse[(i0 + i) * a->ldl + h] = l[r] > 0.0f ? m[r] + logf(l[r]) : -INFINITY;
    }
}

static void attention_run(hd_backend *be, hd_tensor *out, hd_tensor *lse, const hd_tensor *q,
                          const hd_tensor *k, const hd_tensor *v, int n_heads, int n_kv_heads,
                          int head_dim, float scale, hd_attn_mask mask, int allow_bf16) {
    hd_cpu *cpu = hd_cpu_of(be);
    int64_t Sq = q->rows, Sk = k->rows;
    if (Sq <= 0 || n_heads <= 0 || n_kv_heads <= 0 || head_dim <= 0) return;
    int G = n_heads / n_kv_heads;
    int hdp = (head_dim + 15) / 16 * 16;
    const int amx = allow_bf16 && cpu->attn_amx && head_dim % 2 == 0;
    const int RB = amx ? HD_ATTN_AMX_RB : cpu->k->attn_rb;
    /* Queries per task: ~ATTN_ROWS rows, within the scratch budget. */
    int64_t fixed = 2 * (int64_t)hdp * HD_ATTN_BK + (int64_t)RB * HD_ATTN_BK + 64;
    int64_t per_row = 2 * (int64_t)hdp + 5; /* qp, o, m, l, alpha, lim (2 floats) */
    int64_t max_rows = (HD_CPU_SCRATCH_FLOATS - fixed) / per_row - RB;
    int64_t bq = ATTN_ROWS / G;
    if (bq < 1) bq = 1;
    if (bq * G > max_rows) bq = max_rows / G;
    if (bq < 1 || Sk <= 0) { /* head_dim too large for the scratch, or no keys at all */
        for (int64_t r = 0; r < Sq; r++) {
            float *row = (float *)out->data + r * out->stride;
            for (int64_t c = 0; c < (int64_t)n_heads * head_dim; c++) row[c] = Sk <= 0 ? 0.0f : NAN;
            for (int64_t c = 0; lse && c < n_heads; c++)
                ((float *)lse->data)[r * lse->stride + c] = Sk <= 0 ? -INFINITY : NAN;
        }
        return;
    }
    attn_job a = {
        .cpu = cpu, .q = q->data, .k = k->data, .v = v->data, .out = out->data,
        .lse = lse ? lse->data : NULL, .ldl = lse ? lse->stride : 0,
        .ldq = q->stride, .ldk = k->stride, .ldv = v->stride, .ldo = out->stride,
        .Sq = Sq, .Sk = Sk, .Hkv = n_kv_heads, .G = G, .hd = head_dim, .hdp = hdp,
        .scale = scale, .mask = mask, .bq = bq, .n_qt = (Sq + bq - 1) / bq,
        .bf16 = amx || (allow_bf16 && cpu->attn_bf16 && head_dim % 2 == 0 && RB == 6),
        .amx = amx,
    };
    hd_pool_run(cpu->pool, a.n_qt * n_kv_heads, attn_task, &a);
}

void hd_cpu_attention(hd_backend *be, hd_tensor *out, const hd_tensor *q, const hd_tensor *k,
                      const hd_tensor *v, int n_heads, int n_kv_heads, int head_dim, float scale,
                      hd_attn_mask mask) {
    attention_run(be, out, NULL, q, k, v, n_heads, n_kv_heads, head_dim, scale, mask, 1);
}

/* The forward for training: also saves lse[i][h] for attention_backward. */
void hd_cpu_attention_lse(hd_backend *be, hd_tensor *out, hd_tensor *lse, const hd_tensor *q,
                          const hd_tensor *k, const hd_tensor *v, int n_heads, int n_kv_heads,
                          int head_dim, float scale, hd_attn_mask mask) {
    attention_run(be, out, lse, q, k, v, n_heads, n_kv_heads, head_dim, scale, mask, 0);
}
