/* linear: y[M,N] = x[M,K] · W[N,K]ᵀ (+ bias), a blocked GEMM in the BLIS style.
 *
 * Work is split into tasks of (row range × NC-column block) with one pool dispatch per call.
 * Inside a task, for each KC-slice of K the W block is converted to float32 and packed into
 * NR-wide panels (kc×NC floats, kept in L2 for all rows of the task); then one MR-row panel of x
 * at a time is packed (it stays in L1) and the ISA micro-kernel sweeps it across the W panels,
 * computing MR×NR tiles of y in FMA registers. The first K-slice overwrites y (plus bias), the
 * others accumulate, so no separate pass over y is needed. */
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/kernels.h"

/* ---- portable packers and micro-kernel ---- */

void hd_gemm_pack_a_generic(const float *x, int64_t ldx, int mr, int64_t kc, float *ap, int MR) {
    for (int i = 0; i < MR; i++) {
        if (i < mr) {
            const float *row = x + i * ldx;
            for (int64_t k = 0; k < kc; k++) ap[k * MR + i] = row[k];
        } else {
            for (int64_t k = 0; k < kc; k++) ap[k * MR + i] = 0.0f;
        }
    }
}

void hd_gemm_pack_b_generic(hd_dtype dt, const void *w, int64_t ldw, int nr, int64_t kc,
                            float *bp, int NR) {
    for (int j = 0; j < NR; j++) {
        float *col = bp + j;
        if (j >= nr) {
            for (int64_t k = 0; k < kc; k++) col[k * NR] = 0.0f;
        } else if (dt == HD_BF16) {
            const uint16_t *row = (const uint16_t *)w + j * ldw;
            for (int64_t k = 0; k < kc; k++) col[k * NR] = hd_bf16_to_f32(row[k]);
        } else if (dt == HD_F16) {
            const uint16_t *row = (const uint16_t *)w + j * ldw;
            for (int64_t k = 0; k < kc; k++) col[k * NR] = hd_f16_to_f32(row[k]);
        } else {
            const float *row = (const float *)w + j * ldw;
            for (int64_t k = 0; k < kc; k++) col[k * NR] = row[k];
        }
    }
}

#define SMR 4
#define SNR 8

void hd_gemm_ukr_scalar(int64_t kc, const float *ap, const float *bp, float *c, int64_t ldc, int mr,
                        int nr, int first, const float *bias) {
    float acc[SMR][SNR];
    memset(acc, 0, sizeof acc);
    for (int64_t k = 0; k < kc; k++) {
        const float *a = ap + k * SMR, *b = bp + k * SNR;
        for (int i = 0; i < SMR; i++)
            for (int j = 0; j < SNR; j++) acc[i][j] += a[i] * b[j];
    }
    for (int i = 0; i < mr; i++) {
        float *row = c + i * ldc;
        for (int j = 0; j < nr; j++) {
            if (first) row[j] = acc[i][j] + (bias ? bias[j] : 0.0f);
            else row[j] += acc[i][j];
        }
    }
}

/* In place: every float becomes the value its bf16 rounding leaves. */
static void round_bf16_panel(float *p, int64_t n) {
    for (int64_t i = 0; i < n; i++) p[i] = hd_round_bf16(p[i]);
}

/* ---- driver ---- */

typedef struct gemm_job {
    hd_cpu *cpu;
    float *y;
    int64_t ldy;
    const float *x;
    int64_t ldx;
    const char *w; /* bytes */
    hd_dtype wdt;
    float wscale; /* fp8 weights: the value scale */
    int64_t ldw;  /* elements */
    const hd_tensor *bias;
    const hd_cpu_prepacked *pre; /* W packed at bind (gemm_prepack.c), or NULL: pack per call */
    const float *xa;   /* with pre: x packed once (pack_x_once), else NULL */
    int64_t xa_panel;  /* floats per MR-row panel of xa */
    int64_t M, N, K;
    int64_t m_range; /* rows per task (multiple of MR) */
    int64_t n_mr;    /* row ranges */
} gemm_job;

static void gemm_task(void *ctx, int64_t t, int thread) {
    const gemm_job *g = ctx;
    const hd_cpu_kernels *kn = g->cpu->k;
    const int MR = kn->mr, NR = kn->nr;
    const int64_t NC = kn->nc, KC = hd_gemm_kc(kn, g->wdt);
    /* the ISA packers read BF16/F16/F32; other formats are dequantized row by row first */
    const int direct = hd_cpu_packs_directly(g->wdt);
    const uint64_t ldw_bytes = hd_dtype_row_bytes(g->wdt, g->ldw);

    int64_t nb = t / g->n_mr, mi = t % g->n_mr;
    int64_t n0 = nb * NC, n1 = n0 + NC < g->N ? n0 + NC : g->N;
    int64_t m0 = mi * g->m_range, m1 = m0 + g->m_range < g->M ? m0 + g->m_range : g->M;
    if (m0 >= m1 || n0 >= n1) return;

    float *scratch = g->cpu->scratch[thread];
    float *bp = scratch;            /* KC × NC */
    float *ap = bp + KC * NC;       /* MR × KC */
    float *biasp = ap + MR * kn->kc; /* NC */
    float *deq = biasp + NC;         /* NR × KC: one panel's quantized rows, dequantized */
    const float *bias = NULL;
    if (g->bias) {
        hd_cpu_load_f32(g->bias->dtype, g->bias->data, n0, n1 - n0, biasp);
        bias = biasp;
    }

    for (int64_t pc = 0; pc < g->K; pc += KC) {
        int64_t kc = g->K - pc < KC ? g->K - pc : KC;
        int64_t kcp = (kc + kn->ku - 1) / kn->ku * kn->ku;
        /* the W block of this slice: its panels (pstride floats apart) from column n0 */
        const float *blk = bp;
        int64_t pstride = kcp * NR;
        if (g->pre) {
            pstride = kcp / 2 * NR;
            blk = g->pre->panels + pc / 2 * g->pre->np + n0 / NR * pstride;
        }
        for (int64_t jr = n0; jr < n1 && !g->pre; jr += NR) {
            int nr = (int)(n1 - jr < NR ? n1 - jr : NR);
            float *panel = bp + ((jr - n0) / NR) * kcp * NR;
            const char *wp = g->w + jr * ldw_bytes + hd_dtype_row_bytes(g->wdt, pc);
            if (direct) {
                kn->pack_b(g->wdt, wp, g->ldw, nr, kc, panel);
            } else { /* dequantize this panel's rows (× the fp8 scale), pack them as float32 */
                for (int j = 0; j < nr; j++)
                    hd_dtype_info(g->wdt)->to_f32(wp + (size_t)j * ldw_bytes, deq + j * kc, kc);
                if (g->wscale != 1.0f)
                    for (int64_t i = 0; i < (int64_t)nr * kc; i++) deq[i] *= g->wscale;
                kn->pack_b(HD_F32, deq, kc, nr, kc, panel);
            }
            if (g->cpu->round_bf16 && g->wdt != HD_BF16) round_bf16_panel(panel, kcp * NR);
        }
        /* One MR-row panel of x at a time: it stays in L1 while the micro-kernel sweeps the
         * packed W block (in L2) from left to right. */
        for (int64_t ir = m0; ir < m1; ir += MR) {
            int mr = (int)(m1 - ir < MR ? m1 - ir : MR);
            const float *apx = ap;
            if (g->xa) {
                apx = g->xa + ir / MR * g->xa_panel + pc / 2 * MR;
            } else {
                kn->pack_a(g->x + ir * g->ldx + pc, g->ldx, mr, kc, ap);
                if (g->cpu->round_bf16) round_bf16_panel(ap, kcp * MR);
            }
            for (int64_t jr = n0; jr < n1; jr += NR) {
                int nr = (int)(n1 - jr < NR ? n1 - jr : NR);
                kn->gemm_ukr(kcp, apx, blk + ((jr - n0) / NR) * pstride, g->y + ir * g->ldy + jr,
                             g->ldy, mr, nr, pc == 0, bias ? bias + (jr - n0) : NULL);
            }
        }
    }
}

/* With W packed at bind (the bf16 kernels, whose x panels hold bf16 pairs: MR·kcp/2 floats per
 * K slice), x is packed once per call for every column block instead of once per block: row
 * panel p, slice pc at xa + p·xa_panel + pc/2·MR. */
typedef struct pack_x_job {
    const hd_cpu_kernels *kn;
    const float *x;
    int64_t ldx, M, K, KC, panel;
    float *xa;
} pack_x_job;

static void pack_x_panel(void *ctx, int64_t p, int thread) {
    (void)thread;
    const pack_x_job *j = ctx;
    const int MR = j->kn->mr;
    int mr = (int)(j->M - p * MR < MR ? j->M - p * MR : MR);
    for (int64_t pc = 0; pc < j->K; pc += j->KC) {
        int64_t kc = j->K - pc < j->KC ? j->K - pc : j->KC;
        j->kn->pack_a(j->x + p * MR * j->ldx + pc, j->ldx, mr, kc, j->xa + p * j->panel + pc / 2 * MR);
    }
}

/* 0, or -1 when the buffer cannot grow (the caller then packs per block). */
static int pack_x_once(hd_cpu *cpu, gemm_job *g) {
    const hd_cpu_kernels *kn = cpu->k;
    const int64_t KC = hd_gemm_kc(kn, g->wdt), kp = hd_gemm_kp(kn, g->wdt, g->K);
    const int64_t panels = (g->M + kn->mr - 1) / kn->mr, panel = kp / 2 * kn->mr;
    const size_t need = (size_t)(panels * panel);
    if (cpu->xa_cap < need) {
        float *p = aligned_alloc(64, (need * sizeof(float) + 63) & ~(size_t)63);
        if (!p) return -1;
        free(cpu->xa_buf);
        cpu->xa_buf = p;
        cpu->xa_cap = need;
    }
    pack_x_job j = {kn, g->x, g->ldx, g->M, g->K, KC, panel, cpu->xa_buf};
    hd_pool_run(cpu->pool, panels, pack_x_panel, &j);
    g->xa = cpu->xa_buf;
    g->xa_panel = panel;
    return 0;
}

typedef struct bias_fill {
    hd_tensor *y;
    const hd_tensor *bias;
} bias_fill;

static void bias_rows(void *ctx, int64_t r0, int64_t r1, int thread) {
    bias_fill *b = ctx;
    for (int64_t r = r0; r < r1; r++) {
        float *row = (float *)b->y->data + r * b->y->stride;
        if (b->bias) hd_cpu_load_f32(b->bias->dtype, b->bias->data, 0, b->y->cols, row);
        else memset(row, 0, (size_t)b->y->cols * sizeof(float));
    }
}

/* ---- one input row, bf16 weights: a threaded GEMV over blocks of output columns ---- */
typedef struct gemv_job {
    const hd_cpu_kernels *k;
    float *y;
    const float *x;
    const uint16_t *w;
    int64_t ldw, N, K, block;
    const hd_tensor *bias;
} gemv_job;

static void gemv_task(void *ctx, int64_t t, int thread) {
    const gemv_job *g = ctx;
    int64_t j0 = t * g->block, n = g->N - j0 < g->block ? g->N - j0 : g->block;
    if (n <= 0) return;
    g->k->gemv_bf16(g->K, g->x, g->w + j0 * g->ldw, g->ldw, n, g->y + j0);
    if (g->bias) {
        float b[64];
        for (int64_t i = 0; i < n; i += 64) {
            int64_t m = n - i < 64 ? n - i : 64;
            hd_cpu_load_f32(g->bias->dtype, g->bias->data, j0 + i, m, b);
            for (int64_t c = 0; c < m; c++) g->y[j0 + i + c] += b[c];
        }
    }
}

static void gemv(hd_cpu *cpu, hd_tensor *y, const hd_tensor *x, const hd_tensor *w,
                 const hd_tensor *bias) {
    gemv_job g = {cpu->k, y->data, x->data, w->data, w->stride, y->cols, x->cols, 0, bias};
    int64_t tasks = (int64_t)cpu->n_threads * 4;
    g.block = (g.N + tasks - 1) / tasks;
    if (g.block < 16) g.block = 16;
    hd_pool_run(cpu->pool, (g.N + g.block - 1) / g.block, gemv_task, &g);
}

/* int8: x quantized once for all when every weight is packed and the products are not empty. */
void hd_cpu_linears(hd_backend *be, hd_tensor *const *ys, const hd_tensor *x,
                    const hd_tensor *const *ws, int n) {
    hd_cpu *cpu = hd_cpu_of(be);
    int shared = cpu->int8 && n >= 1 && n <= HD_LINEARS_MAX && x->rows > 0 && x->cols > 0;
    const hd_i8_weight *pw[HD_LINEARS_MAX];
    for (int i = 0; shared && i < n; i++) {
        pw[i] = ws[i]->packed;
        shared = pw[i] && ys[i]->rows > 0 && ys[i]->cols > 0;
    }
    if (shared && hd_cpu_linears_i8(cpu, ys, x, pw, n) == 0) return;
    for (int i = 0; i < n; i++) hd_cpu_linear(be, ys[i], x, ws[i], NULL);
}

void hd_cpu_linear(hd_backend *be, hd_tensor *y, const hd_tensor *x, const hd_tensor *w,
                   const hd_tensor *bias) {
    hd_cpu *cpu = hd_cpu_of(be);
    const hd_cpu_kernels *kn = cpu->k;
    int64_t M = y->rows, N = y->cols, K = x->cols;
    if (M <= 0 || N <= 0) return;
    if (K <= 0) { /* empty sum: y = bias */
        bias_fill b = {y, bias};
        hd_cpu_for_rows(cpu, M, N, bias_rows, &b);
        return;
    }
    if (w->packed && cpu->int8 && hd_cpu_linear_i8(cpu, y, x, w->packed, bias) == 0) return;
    const hd_cpu_prepacked *pre = w->packed && !cpu->int8 ? w->packed : NULL;
    if (M == 1 && w->dtype == HD_BF16 && kn->gemv_bf16 && !cpu->round_bf16 && !pre) {
        gemv(cpu, y, x, w, bias);
        return;
    }
    gemm_job g = {
        .cpu = cpu, .y = y->data, .ldy = y->stride, .x = x->data, .ldx = x->stride,
        .w = w->data, .wdt = w->dtype, .wscale = w->wscale, .ldw = w->stride, .bias = bias,
        .pre = pre, .M = M, .N = N, .K = K,
    };
    /* Column blocks first; then split rows until there are ~4 tasks per thread, so that W
     * panels are packed as few times as possible while the threads stay balanced. */
    int64_t n_nb = (N + kn->nc - 1) / kn->nc;
    int64_t m_tiles = (M + kn->mr - 1) / kn->mr;
    int64_t want = (int64_t)cpu->n_threads * 4;
    int64_t n_mr = cpu->n_threads == 1 ? 1 : (want + n_nb - 1) / n_nb;
    if (n_mr > m_tiles) n_mr = m_tiles;
    if (n_mr < 1) n_mr = 1;
    /* prefer a task count that divides evenly over the threads */
    for (int64_t c = n_mr; c <= 2 * n_mr + cpu->n_threads && c <= m_tiles; c++)
        if ((n_nb * c) % cpu->n_threads == 0) {
            n_mr = c;
            break;
        }
    g.m_range = ((m_tiles + n_mr - 1) / n_mr) * kn->mr;
    g.n_mr = (M + g.m_range - 1) / g.m_range;
    if (pre && n_nb > 1) (void)pack_x_once(cpu, &g); /* on failure: packed per block */
    hd_pool_run(cpu->pool, n_nb * g.n_mr, gemm_task, &g);
}
