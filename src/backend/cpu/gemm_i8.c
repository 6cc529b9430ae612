/* int8 linear (gemm_i8.h): weight preparation, the portable kernels and the driver.
 *
 * The driver quantizes x once per call into row panels shared by every task (its scratch grows
 * with the largest call and is kept), then splits the work like the float GEMM: tasks of (row
 * range × HD_I8_NC columns), each sweeping K in slices of HD_I8_KC so that the weight block it
 * reuses for all its row panels stays in L2. Weights are packed at bind time, so a call never
 * converts or copies W. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/gemm_i8.h"
#include "backend/cpu/kernels.h"
#include "core/error.h"

/* ---- portable kernels ---- */

static inline int32_t quantize(float v, float inv) {
    float r = nearbyintf(v * inv); /* round half to even, as the vector conversion */
    if (!(r <= HD_I8_QMAX)) r = r > HD_I8_QMAX ? HD_I8_QMAX : 0; /* NaN -> 0 */
    if (r < -HD_I8_QMAX) r = -HD_I8_QMAX;
    return (int32_t)r;
}

void hd_i8_pack_row_scalar(const float *x, int64_t k, int64_t kp, int64_t block, int8_t *dst,
                           int64_t stride, float *scale, int64_t scale_stride) {
    for (int64_t b0 = 0; b0 < kp; b0 += block) {
        int64_t b1 = b0 + block < kp ? b0 + block : kp, e = b1 < k ? b1 : k;
        float amax = 0;
        for (int64_t c = b0; c < e; c++) amax = fmaxf(amax, fabsf(x[c]));
        float inv = hd_i8_inv(amax);
        for (int64_t c = b0; c < b1; c++)
            dst[(c / 4) * stride + c % 4] = (int8_t)(c < k ? quantize(x[c], inv) : 0);
        scale[(b0 / block) * scale_stride] = hd_i8_scale(amax);
    }
}

/* The order every kernel follows: per block s = s + (float)acc·sx, then v = s·sw, stored
 * (+ bias) or added. */
void hd_i8_ukr_scalar(int64_t steps, const int8_t *ap, const int8_t *bp, float *c, int64_t ldc,
                      int mr, int nr, const hd_i8_tile *t) {
    float s[HD_I8_MR * HD_I8_NR] = {0};
    const float *sx = t->sx;
    for (int64_t g0 = 0; g0 < steps; g0 += t->kb / 4, sx += HD_I8_MR) {
        int64_t g1 = g0 + t->kb / 4 < steps ? g0 + t->kb / 4 : steps;
        int32_t acc[HD_I8_MR * HD_I8_NR] = {0};
        for (int64_t g = g0; g < g1; g++) {
            const int8_t *a = ap + g * HD_I8_MR * 4;
            const int8_t *b = bp + g * HD_I8_NR * 4;
            for (int i = 0; i < HD_I8_MR; i++)
                for (int j = 0; j < HD_I8_NR; j++)
                    for (int u = 0; u < 4; u++) acc[i * HD_I8_NR + j] += a[i * 4 + u] * b[j * 4 + u];
        }
        for (int i = 0; i < HD_I8_MR; i++)
            for (int j = 0; j < HD_I8_NR; j++)
                s[i * HD_I8_NR + j] = s[i * HD_I8_NR + j] + (float)acc[i * HD_I8_NR + j] * sx[i];
    }
    for (int i = 0; i < mr; i++) {
        float *row = c + i * ldc;
        for (int j = 0; j < nr; j++) {
            float v = s[i * HD_I8_NR + j] * t->sw[j];
            if (t->first) row[j] = t->bias ? v + t->bias[j] : v;
            else row[j] = row[j] + v;
        }
    }
}

/* ---- weight preparation ---- */

typedef struct prep_job {
    hd_cpu *cpu;
    hd_i8_weight *w;
    hd_dtype dt;
    const char *host;
    uint64_t row_bytes;
    float wscale;
} prep_job;

/* One panel: 16 rows of W to float32, their scales, quantized into the panel layout. */
static void prep_panel(void *ctx, int64_t p, int thread) {
    const prep_job *g = ctx;
    hd_i8_weight *w = g->w;
    float *row = g->cpu->scratch[thread];
    int8_t *panel = w->panels + p * w->kp * HD_I8_NR;
    memset(panel, 0, (size_t)w->kp * HD_I8_NR); /* columns past n stay zero */
    for (int j = 0; j < HD_I8_NR && p * HD_I8_NR + j < w->n; j++) {
        int64_t n = p * HD_I8_NR + j;
        hd_cpu_load_f32(g->dt, g->host + (size_t)n * g->row_bytes, 0, w->k, row);
        if (g->wscale != 1.0f)
            for (int64_t c = 0; c < w->k; c++) row[c] *= g->wscale;
        g->cpu->i8_pack_row(row, w->k, w->kp, w->kp, panel + 4 * j, HD_I8_NR * 4, &w->scale[n], 1);
    }
    /* the column sums of each block (zeros past n and k add nothing) */
    int64_t nkb = (w->kp + w->kb - 1) / w->kb;
    int32_t *ws = w->wsum + p * nkb * HD_I8_NR;
    memset(ws, 0, (size_t)(nkb * HD_I8_NR) * sizeof *ws);
    for (int64_t c = 0; c < w->kp; c++)
        for (int j = 0; j < HD_I8_NR; j++)
            ws[(c / w->kb) * HD_I8_NR + j] += panel[(c / 4) * HD_I8_NR * 4 + j * 4 + c % 4];
}

int hd_cpu_prepare_i8(hd_cpu *cpu, hd_tensor *t, int fine_scales, hd_error *e) {
    int64_t n = t->rows, k = t->cols, kp = (k + HD_I8_KPAD - 1) / HD_I8_KPAD * HD_I8_KPAD;
    /* an even number of panels: the AMX tile reads two */
    int64_t panels = (n + HD_I8_AMX_NR - 1) / HD_I8_AMX_NR * (HD_I8_AMX_NR / HD_I8_NR);
    if (k > HD_CPU_SCRATCH_FLOATS || k > (int64_t)1 << 24)
        return hd_fail(e, HD_EUNSUPPORTED, "int8 products: rows of %lld values are too long",
                       (long long)k);
    size_t head = (sizeof(hd_i8_weight) + 63) & ~(size_t)63;
    size_t vec = ((size_t)n * 4 + 63) & ~(size_t)63;
    const int64_t kb = fine_scales ? HD_I8_KB_FINE : HD_I8_KC;
    size_t sums = (size_t)panels * (size_t)((kp + kb - 1) / kb) * HD_I8_NR * 4;
    size_t bytes = head + vec + sums + (size_t)panels * (size_t)kp * HD_I8_NR;
    char *mem = aligned_alloc(64, bytes);
    if (!mem)
        return hd_fail(e, HD_ENOMEM, "int8 products: out of memory for a %lld x %lld weight",
                       (long long)n, (long long)k);
    hd_i8_weight *w = (hd_i8_weight *)mem;
    w->n = n;
    w->k = k;
    w->kp = kp;
    w->kb = kb;
    w->scale = (float *)(mem + head);
    w->wsum = (int32_t *)(mem + head + vec);
    w->panels = (int8_t *)(mem + head + vec + sums);
    prep_job g = {cpu, w, t->dtype, t->data, hd_dtype_row_bytes(t->dtype, t->stride), t->wscale};
    hd_pool_run(cpu->pool, panels, prep_panel, &g);
    t->packed = w;
    return 0;
}

/* ---- driver ---- */

typedef struct i8_job {
    hd_cpu *cpu;
    const hd_i8_weight *w;
    float *y;
    int64_t ldy;
    int MR, NR;       /* the micro-tile: 6×16, or 32×32 on AMX */
    int64_t ldx;      /* bytes between x panels of MR rows ÷ MR (kp; AMX: between rows) */
    const float *sx;  /* per row panel: nkb blocks × MR scales */
    const int8_t *xq; /* Mp/MR row panels of MR·kp bytes (interleaved by 4, or row-major) */
    int64_t nkb;      /* blocks of w->kb per row */
    const hd_tensor *bias;
    int64_t M;
    int64_t m_range, n_mr;
} i8_job;

static void i8_task(void *ctx, int64_t t, int thread) {
    const i8_job *g = ctx;
    const hd_i8_weight *w = g->w;
    int64_t nb = t / g->n_mr, mi = t % g->n_mr;
    int64_t n0 = nb * HD_I8_NC, n1 = n0 + HD_I8_NC < w->n ? n0 + HD_I8_NC : w->n;
    int64_t m0 = mi * g->m_range, m1 = m0 + g->m_range < g->M ? m0 + g->m_range : g->M;
    if (m0 >= m1 || n0 >= n1) return;
    const int MR = g->MR, NR = g->NR;
    float *biasp = g->cpu->scratch[thread];
    if (g->bias) hd_cpu_load_f32(g->bias->dtype, g->bias->data, n0, n1 - n0, biasp);
    for (int64_t pc = 0; pc < w->kp; pc += HD_I8_KC) {
        int64_t steps = (w->kp - pc < HD_I8_KC ? w->kp - pc : HD_I8_KC) / HD_I8_KU;
        for (int64_t ir = m0; ir < m1; ir += MR) {
            int mr = (int)(m1 - ir < MR ? m1 - ir : MR);
            const int8_t *ap = g->xq + ir * g->ldx + (g->cpu->i8_amx ? pc : pc * MR);
            if (g->cpu->i8_amx) { /* the row of tiles in one call */
                int nt = (int)((n1 - n0 + NR - 1) / NR), nr_last = (int)(n1 - n0 - (nt - 1) * NR);
                hd_i8_tile tl = {g->sx + ir * g->nkb + (pc / w->kb) * MR, w->scale + n0,
                                 pc == 0 && g->bias ? biasp : NULL, pc == 0, NULL, g->ldx, w->kp,
                                 w->kb};
                hd_i8_row_amx(steps, ap, w->panels + n0 * w->kp + pc * HD_I8_NR, NR * w->kp, nt,
                              g->y + ir * g->ldy + n0, g->ldy, mr, nr_last, &tl);
                continue;
            }
            for (int64_t jr = n0; jr < n1; jr += NR) {
                int nr = (int)(n1 - jr < NR ? n1 - jr : NR);
                hd_i8_tile tl = {g->sx + ir * g->nkb + (pc / w->kb) * MR, w->scale + jr,
                                 pc == 0 && g->bias ? biasp + (jr - n0) : NULL, pc == 0,
                                 w->wsum + ((jr / HD_I8_NR) * g->nkb + pc / w->kb) * HD_I8_NR,
                                 g->ldx, w->kp, w->kb};
                g->cpu->i8_ukr(steps, ap, w->panels + jr * w->kp + pc * HD_I8_NR,
                               g->y + ir * g->ldy + jr, g->ldy, mr, nr, &tl);
            }
        }
    }
}

typedef struct pack_x_job {
    hd_cpu *cpu;
    int MR;
    const hd_tensor *x;
    int64_t kp, ldx, nkb, kb;
    int8_t *xq;
    float *sx;
} pack_x_job;

static void pack_x_rows(void *ctx, int64_t r0, int64_t r1, int thread) {
    (void)thread;
    const pack_x_job *p = ctx;
    const int MR = p->MR, amx = p->cpu->i8_amx;
    for (int64_t r = r0; r < r1; r++) {
        int64_t panel = r / MR, i = r % MR;
        int8_t *dst = amx ? p->xq + r * p->ldx : p->xq + panel * MR * p->kp + i * 4;
        p->cpu->i8_pack_row((const float *)p->x->data + r * p->x->stride, p->x->cols, p->kp,
                            p->kb, dst, amx ? 4 : MR * 4, p->sx + panel * MR * p->nkb + i, MR);
        if (p->cpu->i8_x_offset) /* x + 128 as unsigned bytes: the sign bit flipped */
            for (int64_t g = 0; g < p->kp / 4; g++) {
                uint32_t v;
                memcpy(&v, dst + g * MR * 4, 4);
                v ^= 0x80808080u;
                memcpy(dst + g * MR * 4, &v, 4);
            }
    }
}

/* Grows the per-backend buffer for the quantized x (kept between calls). */
static int ensure_xq(hd_cpu *cpu, size_t bytes) {
    if (cpu->i8_cap >= bytes) return 0;
    void *p = aligned_alloc(64, (bytes + 63) & ~(size_t)63);
    if (!p) return -1;
    free(cpu->i8_buf);
    cpu->i8_buf = p;
    cpu->i8_cap = bytes;
    return 0;
}

/* x quantized for weights of this kp and kb, in the per-backend buffer. */
typedef struct i8_input {
    int MR, NR;
    int64_t ldx, nkb;
    const int8_t *xq;
    const float *sx;
} i8_input;

static int quantize_x(hd_cpu *cpu, const hd_tensor *x, int64_t kp, int64_t kb, i8_input *in) {
    const int MR = cpu->i8_amx ? HD_I8_AMX_MR : HD_I8_MR;
    int64_t M = x->rows, Mp = (M + MR - 1) / MR * MR;
    int64_t nkb = (kp + kb - 1) / kb;
    /* AMX reads x row-major: rows a cache line longer than kp, so that the 16 rows of a tile
     * (kp a multiple of 4 KB at the model's shapes) do not all fall into one L1 set */
    const int64_t ldx = cpu->i8_amx ? kp + 64 : kp;
    size_t xq_bytes = ((size_t)Mp * (size_t)ldx + 63) & ~(size_t)63;
    if (ensure_xq(cpu, xq_bytes + (size_t)(Mp * nkb) * sizeof(float)) < 0) return -1;
    int8_t *xq = cpu->i8_buf;
    float *sx = (float *)(xq + xq_bytes);
    pack_x_job px = {cpu, MR, x, kp, ldx, nkb, kb, xq, sx};
    hd_cpu_for_rows(cpu, M, x->cols, pack_x_rows, &px);
    /* rows past M of the last panel: zeros with scale 0 (their results are never stored) */
    for (int64_t r = M; r < Mp; r++) {
        int64_t panel = r / MR, i = r % MR;
        for (int64_t b = 0; b < nkb; b++) sx[panel * MR * nkb + b * MR + i] = 0;
        if (cpu->i8_amx) memset(xq + r * ldx, 0, (size_t)kp);
        else
            for (int64_t c = 0; c < kp; c += 4)
                memset(xq + panel * MR * kp + ((c / 4) * MR + i) * 4,
                       cpu->i8_x_offset ? 0x80 : 0, 4);
    }
    *in = (i8_input){MR, cpu->i8_amx ? HD_I8_AMX_NR : HD_I8_NR, ldx, nkb, xq, sx};
    return 0;
}

/* One product's job over the quantized x; returns its task count. Column blocks first, then
 * rows split until there are ~4 tasks per thread. */
static int64_t make_job(hd_cpu *cpu, i8_job *g, const i8_input *in, hd_tensor *y,
                        const hd_i8_weight *w, const hd_tensor *bias) {
    *g = (i8_job){.cpu = cpu, .w = w, .y = y->data, .ldy = y->stride, .MR = in->MR,
                  .NR = in->NR, .ldx = in->ldx, .sx = in->sx, .xq = in->xq, .nkb = in->nkb,
                  .bias = bias, .M = y->rows};
    int64_t n_nb = (w->n + HD_I8_NC - 1) / HD_I8_NC, m_tiles = (g->M + in->MR - 1) / in->MR;
    int64_t want = (int64_t)cpu->n_threads * 4;
    int64_t n_mr = cpu->n_threads == 1 ? 1 : (want + n_nb - 1) / n_nb;
    if (n_mr > m_tiles) n_mr = m_tiles;
    if (n_mr < 1) n_mr = 1;
    g->m_range = ((m_tiles + n_mr - 1) / n_mr) * in->MR;
    g->n_mr = (g->M + g->m_range - 1) / g->m_range;
    return n_nb * g->n_mr;
}

int hd_cpu_linear_i8(hd_cpu *cpu, hd_tensor *y, const hd_tensor *x, const hd_i8_weight *w,
                     const hd_tensor *bias) {
    i8_input in;
    if (quantize_x(cpu, x, w->kp, w->kb, &in) < 0) return -1;
    i8_job g;
    hd_pool_run(cpu->pool, make_job(cpu, &g, &in, y, w, bias), i8_task, &g);
    return 0;
}

/* Products of one x as one pool job: task t belongs to the first product whose end exceeds it. */
typedef struct i8_jobs {
    i8_job job[HD_LINEARS_MAX];
    int64_t end[HD_LINEARS_MAX];
    int n;
} i8_jobs;

static void i8_jobs_task(void *ctx, int64_t t, int thread) {
    const i8_jobs *j = ctx;
    int i = 0;
    while (t >= j->end[i]) i++;
    i8_task((void *)&j->job[i], t - (i ? j->end[i - 1] : 0), thread);
}

int hd_cpu_linears_i8(hd_cpu *cpu, hd_tensor *const *ys, const hd_tensor *x,
                      const hd_i8_weight *const *ws, int n) {
    if (n < 1 || n > HD_LINEARS_MAX) return -1;
    for (int i = 0; i < n; i++)
        if (ws[i]->kp != ws[0]->kp || ws[i]->kb != ws[0]->kb) return -1;
    i8_input in;
    if (quantize_x(cpu, x, ws[0]->kp, ws[0]->kb, &in) < 0) return -1;
    i8_jobs j = {.n = n};
    for (int i = 0; i < n; i++)
        j.end[i] = (i ? j.end[i - 1] : 0) + make_job(cpu, &j.job[i], &in, ys[i], ws[i], NULL);
    hd_pool_run(cpu->pool, j.end[n - 1], i8_jobs_task, &j);
    return 0;
}
