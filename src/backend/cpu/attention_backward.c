/* attention_backward: gradients of out = softmax(q kᵀ·scale + mask) v, flash style.
 * With P = exp(S − lse) recomputed from the forward's lse and D_i = dO_i·O_i:
 *   dV_j = Σ_i P_ij dO_i,  dS_ij = P_ij (dO_i·V_j − D_i),  dQ_i = scale Σ_j dS_ij K_j,
 *   dK_j = scale Σ_i dS_ij Q_i   (summed over the query heads sharing a kv head).
 * Two passes so that every output element has a single writer (no races, deterministic):
 * tasks of (kv head × key block) for dK and dV, then tasks of (kv head × query tile) for dQ;
 * both recompute P and dS tile by tile on the forward's ISA kernels (attn_scores, attn_pv,
 * attn_pack_kt) and the attn_grad_tile row kernel. The recomputation costs 7 tile products
 * where a racy single pass would need 5. Head dims too large for the scratch tiles take the
 * row-by-row passes below instead. */
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

/* ---- row-by-row passes (fallback) ---- */

static void naive_dq_rows(void *ctx, int64_t r0, int64_t r1, int thread) {
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

static void naive_dkv_rows(void *ctx, int64_t r0, int64_t r1, int thread) {
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

/* ---- tiled passes on the forward's ISA kernels ----
 * Rows of a task are (query i, head g) pairs of one kv head, ordered r = i·G + g as in the
 * forward. A tile is RB rows × HD_ATTN_BK keys: S = Q·Kᵀ and dP = dO·Vᵀ come from attn_scores
 * against K and V packed transposed (attn_pack_kt), products with P or dS from attn_pv. */

#define QROWS 128 /* target rows per dQ task */

typedef struct tiles {
    hd_cpu *cpu;
    const attnb_job *a;
    const hd_cpu_kernels *kn;
    int hdp, RB;
    int64_t bq, n_qt; /* dQ pass: queries per task, query tiles */
    int64_t bk, n_kb; /* dK/dV pass: keys per task (<= HD_ATTN_BK), key blocks */
} tiles;

/* Packs rows_pad rows starting at query i0 of kv head kvh: q and dO (zero-padded to hdp),
 * lse, D (stashed in dq by d_rows) and the key limit (0 for padding rows and rows without any
 * key). */
static void pack_rows(const tiles *t, int kvh, int64_t i0, int64_t rows, int64_t rows_pad,
                      float *qp, float *dop, float *lse, float *D, int64_t *lim) {
    const attnb_job *a = t->a;
    const int hd = a->hd, hdp = t->hdp, G = a->G;
    for (int64_t r = 0; r < rows_pad; r++) {
        float *qr = qp + r * hdp, *dr = dop + r * hdp;
        lim[r] = 0;
        lse[r] = 0.0f;
        D[r] = 0.0f;
        if (r >= rows) {
            memset(qr, 0, (size_t)hdp * sizeof(float));
            memset(dr, 0, (size_t)hdp * sizeof(float));
            continue;
        }
        int64_t i = i0 + r / G;
        int h = kvh * G + (int)(r % G);
        memcpy(qr, a->q + i * a->ldq + (int64_t)h * hd, (size_t)hd * sizeof(float));
        memcpy(dr, a->dout + i * a->lddo + (int64_t)h * hd, (size_t)hd * sizeof(float));
        memset(qr + hd, 0, (size_t)(hdp - hd) * sizeof(float));
        memset(dr + hd, 0, (size_t)(hdp - hd) * sizeof(float));
        D[r] = a->dq[i * a->lddq + (int64_t)h * hd];
        lse[r] = a->lse[i * a->ldl + h];
        lim[r] = lse[r] > -INFINITY ? key_limit(a, i) : 0;
    }
}

/* D[i][h] = dO·O, computed once and stashed in dq[i][h·hd] (dq is written last, by the dQ pass,
 * whose tasks each read only the D of the rows and heads they later overwrite). */
static void d_rows(void *ctx, int64_t r0, int64_t r1, int thread) {
    const tiles *t = ctx;
    const attnb_job *a = t->a;
    for (int64_t i = r0; i < r1; i++)
        for (int h = 0; h < a->Hq; h++) {
            int64_t c = (int64_t)h * a->hd;
            a->dq[i * a->lddq + c] =
                (float)t->kn->train.dot(a->hd, a->dout + i * a->lddo + c, a->out + i * a->ldo + c);
        }
}

/* dQ of one kv head × one tile of queries: dQ = Σ over key blocks of dS·K, with S = Q·Kᵀ and
 * dP = dO·Vᵀ computed RB query rows at a time against K and V packed transposed. */
static void dq_task(void *ctx, int64_t task, int thread) {
    const tiles *t = ctx;
    const attnb_job *a = t->a;
    const hd_cpu_kernels *kn = t->kn;
    const int G = a->G, hd = a->hd, hdp = t->hdp, RB = t->RB;
    const int64_t BK = HD_ATTN_BK;
    int64_t qt = t->n_qt - 1 - task / a->Hkv; /* late (causal: heavy) tiles first */
    int kvh = (int)(task % a->Hkv);
    int64_t i0 = qt * t->bq, i1 = i0 + t->bq < a->Sq ? i0 + t->bq : a->Sq;
    if (i0 >= i1) return;
    int64_t rows = (i1 - i0) * G, rows_pad = (rows + RB - 1) / RB * RB;

    float *qp = t->cpu->scratch[thread]; /* rows_pad × hdp */
    float *dop = qp + rows_pad * hdp;    /* rows_pad × hdp */
    float *dq = dop + rows_pad * hdp;    /* rows_pad × hdp */
    float *kt = dq + rows_pad * hdp;     /* hdp × BK */
    float *vt = kt + hdp * BK;           /* hdp × BK */
    float *kp = vt + hdp * BK;           /* BK × hdp */
    float *s = kp + BK * hdp;            /* RB × BK */
    float *dp = s + RB * BK;             /* RB × BK */
    float *lse = dp + RB * BK, *D = lse + rows_pad, *ones = D + rows_pad; /* rows_pad, RB */
    int *lo = (int *)(void *)(ones + RB), *hi = lo + RB;                   /* RB, RB */
    int64_t *lim = (int64_t *)(void *)(hi + RB + (RB & 1));                /* rows_pad */

    pack_rows(t, kvh, i0, rows, rows_pad, qp, dop, lse, D, lim);
    memset(dq, 0, (size_t)(rows_pad * hdp) * sizeof(float));
    for (int r = 0; r < RB; r++) ones[r] = 1.0f, lo[r] = 0;
    int64_t kend = lim[rows - 1]; /* limits grow with the row index */
    const float *kbase = a->k + (int64_t)kvh * hd, *vbase = a->v + (int64_t)kvh * hd;
    for (int64_t j0 = 0; j0 < kend; j0 += BK) {
        int nk = (int)(kend - j0 < BK ? kend - j0 : BK);
        kn->attn_pack_kt(kbase + j0 * a->ldk, a->ldk, nk, hd, kt);
        kn->attn_pack_kt(vbase + j0 * a->ldv, a->ldv, nk, hd, vt);
        for (int j = 0; j < BK; j++) {
            float *kj = kp + (int64_t)j * hdp;
            memset(kj, 0, (size_t)hdp * sizeof(float));
            if (j < nk) memcpy(kj, kbase + (j0 + j) * a->ldk, (size_t)hd * sizeof(float));
        }
        for (int64_t rb = 0; rb < rows_pad; rb += RB) {
            int64_t last = (rb + RB < rows ? rb + RB : rows) - 1;
            if (lim[last] <= j0) continue;
            kn->attn_scores(hd, qp + rb * hdp, hdp, kt, s);
            kn->attn_scores(hd, dop + rb * hdp, hdp, vt, dp);
            for (int r = 0; r < RB; r++) {
                int64_t nv = lim[rb + r] - j0;
                hi[r] = nv <= 0 ? 0 : (nv < nk ? (int)nv : nk);
            }
            kn->train.attn_grad_tile(RB, s, dp, lse + rb, D + rb, NULL, NULL, lo, hi, a->scale);
            kn->attn_pv(hdp, nk, dp, kp, dq + rb * hdp, ones);
        }
    }
    for (int64_t r = 0; r < rows; r++) {
        int64_t i = i0 + r / G;
        int h = kvh * G + (int)(r % G);
        memcpy(a->dq + i * a->lddq + (int64_t)h * hd, dq + r * hdp, (size_t)hd * sizeof(float));
    }
}

/* Packs keys j0 .. j0+nk−1 of one kv head row-major into kpad rows of hdp (zero-padded). */
static void pack_keys(const float *src, int64_t ld, int nk, int hd, int hdp, int64_t kpad,
                      float *dst) {
    memset(dst, 0, (size_t)(kpad * hdp) * sizeof(float));
    for (int j = 0; j < nk; j++) memcpy(dst + (int64_t)j * hdp, src + j * ld, (size_t)hd * sizeof(float));
}

/* dK, dV of one kv head × one block of BK keys, transposed: RB keys are the tile rows and a
 * chunk of up to BK query rows its columns, so Sᵀ = K·Qᵀ, dPᵀ = V·dOᵀ come from attn_scores
 * against Q and dO packed transposed, and dV += Pᵀ·dO, dK += dSᵀ·Q from attn_pv with the
 * chunk's rows as the contraction. */
static void dkv_task(void *ctx, int64_t task, int thread) {
    const tiles *t = ctx;
    const attnb_job *a = t->a;
    const hd_cpu_kernels *kn = t->kn;
    const int G = a->G, hd = a->hd, hdp = t->hdp, RB = t->RB;
    const int64_t BK = HD_ATTN_BK, kpad = (BK + RB - 1) / RB * RB;
    int64_t kb = task / a->Hkv; /* early (causal: heavy) key blocks first */
    int kvh = (int)(task % a->Hkv);
    int64_t j0 = kb * t->bk;
    int nk = (int)(a->Sk - j0 < t->bk ? a->Sk - j0 : t->bk);
    if (nk <= 0) return;

    float *kp = t->cpu->scratch[thread]; /* kpad × hdp */
    float *vp = kp + kpad * hdp;         /* kpad × hdp */
    float *dk = vp + kpad * hdp;         /* kpad × hdp */
    float *dv = dk + kpad * hdp;         /* kpad × hdp */
    float *qp = dv + kpad * hdp;         /* BK × hdp */
    float *dop = qp + BK * hdp;          /* BK × hdp */
    float *qt = dop + BK * hdp;          /* hdp × BK */
    float *dot = qt + hdp * BK;          /* hdp × BK */
    float *s = dot + hdp * BK;           /* RB × BK */
    float *dp = s + RB * BK;             /* RB × BK */
    float *lse = dp + RB * BK, *D = lse + BK, *ones = D + BK; /* BK, BK, RB */
    int *lo = (int *)(void *)(ones + RB), *hi = lo + RB;      /* RB, RB */
    int64_t *lim = (int64_t *)(void *)(hi + RB + (RB & 1));   /* BK */

    pack_keys(a->k + j0 * a->ldk + (int64_t)kvh * hd, a->ldk, nk, hd, hdp, kpad, kp);
    pack_keys(a->v + j0 * a->ldv + (int64_t)kvh * hd, a->ldv, nk, hd, hdp, kpad, vp);
    memset(dk, 0, (size_t)(2 * kpad * hdp) * sizeof(float));
    for (int r = 0; r < RB; r++) ones[r] = 1.0f;

    /* the first query that sees key j0 (limits grow with the query index) */
    int64_t first = 0, hi_q = a->Sq;
    while (first < hi_q) {
        int64_t mid = first + (hi_q - first) / 2;
        if (key_limit(a, mid) > j0) hi_q = mid;
        else first = mid + 1;
    }
    int64_t qpc = BK / G; /* queries per chunk (G <= BK) */
    for (int64_t i0 = first; i0 < a->Sq; i0 += qpc) {
        int64_t nq = a->Sq - i0 < qpc ? a->Sq - i0 : qpc;
        int rows = (int)(nq * G);
        memset(lse, 0, (size_t)(2 * BK) * sizeof(float)); /* lse, D of the padding columns */
        pack_rows(t, kvh, i0, rows, rows, qp, dop, lse, D, lim);
        kn->attn_pack_kt(qp, hdp, rows, hd, qt);
        kn->attn_pack_kt(dop, hdp, rows, hd, dot);
        int c = 0; /* first column that sees the current key */
        for (int jb = 0; jb < nk; jb += RB) {
            for (int r = 0; r < RB; r++) {
                int64_t j = j0 + jb + r;
                while (c < rows && lim[c] <= j) c++;
                lo[r] = c;
                hi[r] = jb + r < nk ? rows : 0;
            }
            if (lo[0] >= rows) break; /* later keys are hidden too */
            kn->attn_scores(hd, kp + (int64_t)jb * hdp, hdp, qt, s);
            kn->attn_scores(hd, vp + (int64_t)jb * hdp, hdp, dot, dp);
            kn->train.attn_grad_tile(RB, s, dp, NULL, NULL, lse, D, lo, hi, a->scale);
            kn->attn_pv(hdp, rows, s, dop, dv + (int64_t)jb * hdp, ones);
            kn->attn_pv(hdp, rows, dp, qp, dk + (int64_t)jb * hdp, ones);
        }
    }
    for (int j = 0; j < nk; j++) {
        memcpy(a->dk + (j0 + j) * a->lddk + (int64_t)kvh * hd, dk + (int64_t)j * hdp,
               (size_t)hd * sizeof(float));
        memcpy(a->dv + (j0 + j) * a->lddv + (int64_t)kvh * hd, dv + (int64_t)j * hdp,
               (size_t)hd * sizeof(float));
    }
}

/* Scratch floats of each pass for head_dim padded to hdp, with rows_pad dQ rows. */
static int64_t dq_floats(int64_t rows_pad, int hdp, int RB) {
    return 3 * rows_pad * hdp + 3 * (int64_t)hdp * HD_ATTN_BK + 2 * RB * HD_ATTN_BK +
           4 * rows_pad + 3 * RB + 2;
}
static int64_t dkv_floats(int hdp, int RB) {
    int64_t kpad = (HD_ATTN_BK + RB - 1) / RB * RB;
    return 4 * kpad * hdp + 4 * (int64_t)HD_ATTN_BK * hdp + 2 * RB * HD_ATTN_BK +
           4 * HD_ATTN_BK + 3 * RB + 2;
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
    const int RB = cpu->k->attn_rb, hdp = (head_dim + 15) / 16 * 16;
    tiles t = {.cpu = cpu, .a = &a, .kn = cpu->k, .hdp = hdp, .RB = RB};
    t.bq = QROWS / a.G > 0 ? QROWS / a.G : 1;
    while (t.bq > 1 && dq_floats((t.bq * a.G + RB - 1) / RB * RB, hdp, RB) > HD_CPU_SCRATCH_FLOATS)
        t.bq /= 2;
    if (dq_floats((t.bq * a.G + RB - 1) / RB * RB, hdp, RB) > HD_CPU_SCRATCH_FLOATS ||
        dkv_floats(hdp, RB) > HD_CPU_SCRATCH_FLOATS || a.G > HD_ATTN_BK) {
        /* head_dim too large for the scratch tiles, or more query heads per kv head than rows
         * in a dK/dV chunk: the row-by-row passes */
        hd_cpu_for_rows(cpu, a.Sq * n_heads, a.Sk * head_dim, naive_dq_rows, &a);
        hd_cpu_for_rows(cpu, a.Sk * n_kv_heads, a.Sq * head_dim, naive_dkv_rows, &a);
        return;
    }
    /* Smaller tiles when the shape gives too few tasks to keep the threads busy (each task
     * repacks its operands, so tiles are not made smaller than that needs). */
    int64_t want = 4 * (int64_t)cpu->n_threads;
    if (cpu->n_threads > 1) {
        int64_t per_head = (want + n_kv_heads - 1) / n_kv_heads;
        int64_t bq = (a.Sq + per_head - 1) / per_head, min_bq = (16 + a.G - 1) / a.G;
        if (bq < min_bq) bq = min_bq;
        if (bq < t.bq) t.bq = bq;
    }
    t.bk = HD_ATTN_BK;
    while (cpu->n_threads > 1 && t.bk > 16 && (a.Sk + t.bk - 1) / t.bk * n_kv_heads < want)
        t.bk /= 2;
    t.n_qt = (a.Sq + t.bq - 1) / t.bq;
    t.n_kb = (a.Sk + t.bk - 1) / t.bk;
    hd_cpu_for_rows(cpu, a.Sq, (int64_t)n_heads * head_dim, d_rows, &t);
    if (a.Sk > 0) hd_pool_run(cpu->pool, t.n_kb * n_kv_heads, dkv_task, &t);
    if (a.Sq > 0) hd_pool_run(cpu->pool, t.n_qt * n_kv_heads, dq_task, &t);
}
