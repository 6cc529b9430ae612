/* Gradients of linear: dx = dy·W and dW += dyᵀ·x, on the blocked GEMM machinery of gemm.c.
 *
 * Both are C (=|+=) A·Bᵀ products like the forward, but with operands stored transposed:
 *   dx[M,K]  = dy[M,N] · (Wᵀ)ᵀ : A = dy (as stored), B(j,k) = W[k][j]   (B transposed)
 *   dW[N,K] += (dyᵀ) · (xᵀ)ᵀ   : A(i,k) = dy[k][i], B(j,k) = x[k][j]    (both transposed)
 * The ISA micro-kernels only see packed panels, so only the packers differ: a transposed B
 * source is already "k-major" and packs by copying NR-wide row pieces (the B order bp[k·NR + j]
 * is the same for every ISA); a transposed A source goes through the ISA's pack_a_t, which
 * transposes small blocks into its A panel order (gemm_grad_avx2.c, gemm_grad_avx512.c).
 * Gradients are float32 throughout: a backend using the bf16 GEMM (gemm_bf16 option) still
 * takes its gradients through the float32 AVX-512 kernels. */
#include <string.h>

#include "backend/cpu/kernels.h"

/* One GEMM operand: element (row r, contraction index k) is at p[r*ld + k] (trans = 0) or at
 * p[k*ld + r] (trans = 1). */
typedef struct operand {
    const char *p;
    hd_dtype dt;
    int64_t ld;
    int trans;
} operand;

/* The packed A order is ap[((k/ku)·MR + i)·ku + k%ku], zero past mr rows and kc values
 * (portable version of the ISA's pack_a_t). */
void hd_gemm_pack_at_generic(const float *a, int64_t lda, int mr, int64_t kc, float *ap, int MR,
                             int KU) {
    int64_t kcp = (kc + KU - 1) / KU * KU;
    for (int64_t k = 0; k < kcp; k++) {
        float *dst = ap + (k / KU) * MR * KU + k % KU;
        const float *src = a + k * lda;
        for (int i = 0; i < MR; i++) dst[i * KU] = k < kc && i < mr ? src[i] : 0.0f;
    }
}

/* The packed B order is bp[k·NR + j] for every ISA: a k-major source packs row by row. */
static void pack_b_trans(const hd_cpu_kernels *kn, hd_dtype dt, const char *b, int64_t ldb,
                         int nr, int64_t kc, int64_t kcp, float *bp) {
    const int NR = kn->nr;
    const size_t es = hd_dtype_size(dt);
    for (int64_t k = 0; k < kcp; k++) {
        float *dst = bp + k * NR;
        int j = 0;
        if (k < kc) {
            hd_cpu_load_f32(dt, b + (size_t)(k * ldb) * es, 0, nr, dst);
            j = nr;
        }
        for (; j < NR; j++) dst[j] = 0.0f;
    }
}

typedef struct ggemm_job {
    hd_cpu *cpu;
    const hd_cpu_kernels *kn;
    float *c;
    int64_t ldc;
    operand a, b;
    int64_t M, N, K;
    int accumulate;  /* 0: the first K slice overwrites C */
    int64_t m_range; /* rows per task (multiple of MR) */
    int64_t n_mr;    /* row ranges */
} ggemm_job;

static void ggemm_task(void *ctx, int64_t t, int thread) {
    const ggemm_job *g = ctx;
    const hd_cpu_kernels *kn = g->kn;
    const int MR = kn->mr, NR = kn->nr;
    const int64_t KC = kn->kc, NC = kn->nc;
    const size_t esa = hd_dtype_size(g->a.dt), esb = hd_dtype_size(g->b.dt);

    int64_t nb = t / g->n_mr, mi = t % g->n_mr;
    int64_t n0 = nb * NC, n1 = n0 + NC < g->N ? n0 + NC : g->N;
    int64_t m0 = mi * g->m_range, m1 = m0 + g->m_range < g->M ? m0 + g->m_range : g->M;
    if (m0 >= m1 || n0 >= n1) return;

    float *bp = g->cpu->scratch[thread]; /* KC × NC */
    float *ap = bp + KC * NC;            /* MR × KC */
    for (int64_t pc = 0; pc < g->K; pc += KC) {
        int64_t kc = g->K - pc < KC ? g->K - pc : KC;
        int64_t kcp = (kc + kn->ku - 1) / kn->ku * kn->ku;
        for (int64_t jr = n0; jr < n1; jr += NR) {
            int nr = (int)(n1 - jr < NR ? n1 - jr : NR);
            float *dst = bp + ((jr - n0) / NR) * kcp * NR;
            if (g->b.trans)
                pack_b_trans(kn, g->b.dt, g->b.p + (size_t)(pc * g->b.ld + jr) * esb, g->b.ld, nr,
                             kc, kcp, dst);
            else
                kn->pack_b(g->b.dt, g->b.p + (size_t)(jr * g->b.ld + pc) * esb, g->b.ld, nr, kc,
                           dst);
        }
        for (int64_t ir = m0; ir < m1; ir += MR) {
            int mr = (int)(m1 - ir < MR ? m1 - ir : MR);
            if (g->a.trans)
                kn->pack_a_t((const float *)(g->a.p + (size_t)(pc * g->a.ld + ir) * esa),
                             g->a.ld, mr, kc, ap);
            else
                kn->pack_a((const float *)(g->a.p + (size_t)(ir * g->a.ld + pc) * esa), g->a.ld,
                           mr, kc, ap);
            for (int64_t jr = n0; jr < n1; jr += NR) {
                int nr = (int)(n1 - jr < NR ? n1 - jr : NR);
                kn->gemm_ukr(kcp, ap, bp + ((jr - n0) / NR) * kcp * NR, g->c + ir * g->ldc + jr,
                             g->ldc, mr, nr, pc == 0 && !g->accumulate, NULL);
            }
        }
    }
}

/* C[M,N] (accumulate ? += : =) A[M,K]·B[N,K]ᵀ; A is float32. */
static void grad_gemm(hd_cpu *cpu, float *c, int64_t ldc, operand a, operand b, int64_t M,
                      int64_t N, int64_t K, int accumulate) {
    const hd_cpu_kernels *kn = cpu->k->pairs ? &hd_cpu_kernels_avx512 : cpu->k;
    ggemm_job g = {.cpu = cpu, .kn = kn, .c = c, .ldc = ldc, .a = a, .b = b,
                   .M = M, .N = N, .K = K, .accumulate = accumulate};
    /* Split as the forward does: column blocks, then row ranges up to ~4 tasks per thread. */
    int64_t n_nb = (N + kn->nc - 1) / kn->nc;
    int64_t m_tiles = (M + kn->mr - 1) / kn->mr;
    int64_t want = (int64_t)cpu->n_threads * 4;
    int64_t n_mr = cpu->n_threads == 1 ? 1 : (want + n_nb - 1) / n_nb;
    if (n_mr > m_tiles) n_mr = m_tiles;
    if (n_mr < 1) n_mr = 1;
    g.m_range = ((m_tiles + n_mr - 1) / n_mr) * kn->mr;
    g.n_mr = (M + g.m_range - 1) / g.m_range;
    hd_pool_run(cpu->pool, n_nb * g.n_mr, ggemm_task, &g);
}

typedef struct zero_job {
    hd_tensor *t;
} zero_job;

static void zero_rows(void *ctx, int64_t r0, int64_t r1, int thread) {
    hd_tensor *t = ((zero_job *)ctx)->t;
    for (int64_t r = r0; r < r1; r++)
        memset((float *)t->data + r * t->stride, 0, (size_t)t->cols * sizeof(float));
}

void hd_cpu_linear_dx(hd_backend *be, hd_tensor *dx, const hd_tensor *dy, const hd_tensor *w,
                      int accumulate) {
    hd_cpu *cpu = hd_cpu_of(be);
    int64_t M = dx->rows, K = dx->cols, N = dy->cols;
    if (M <= 0 || K <= 0) return;
    if (N <= 0) { /* empty sum */
        zero_job z = {dx};
        if (!accumulate) hd_cpu_for_rows(cpu, M, K, zero_rows, &z);
        return;
    }
    operand a = {dy->data, HD_F32, dy->stride, 0};
    operand b = {w->data, w->dtype, w->stride, 1};
    grad_gemm(cpu, dx->data, dx->stride, a, b, M, K, N, accumulate);
}

typedef struct db_job {
    hd_tensor *db;
    const hd_tensor *dy;
    const hd_cpu_train_rows *k;
} db_job;

/* db[c] += Σ_rows dy[r][c] over a range of columns (threaded by column, so no races). */
static void db_cols(void *ctx, int64_t c0, int64_t c1, int thread) {
    db_job *j = ctx;
    j->k->col_sum(j->dy->rows, c1 - c0, (const float *)j->dy->data + c0, j->dy->stride,
                  (float *)j->db->data + c0);
}

void hd_cpu_linear_dw(hd_backend *be, hd_tensor *dw, hd_tensor *db, const hd_tensor *dy,
                      const hd_tensor *x) {
    hd_cpu *cpu = hd_cpu_of(be);
    int64_t N = dw->rows, K = dw->cols, M = dy->rows;
    if (M <= 0) return;
    if (db) {
        db_job j = {db, dy, &cpu->k->train};
        hd_cpu_for_rows(cpu, N, M, db_cols, &j);
    }
    if (N <= 0 || K <= 0) return;
    operand a = {dy->data, HD_F32, dy->stride, 1};
    operand b = {x->data, HD_F32, x->stride, 1};
    grad_gemm(cpu, dw->data, dw->stride, a, b, N, K, M, 1);
}
