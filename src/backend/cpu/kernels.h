/* Internal interface of the CPU backend: the per-ISA kernel table, the backend state, and the
 * op entry points implemented in the files of this folder. */
#ifndef HD_BACKEND_CPU_KERNELS_H
#define HD_BACKEND_CPU_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include "backend/backend.h"
#include "backend/cpu/gemm_i8.h"
#include "core/threadpool.h"

/* Per-thread scratch memory, allocated once with the backend (floats, 64-byte aligned). GEMM
 * packing buffers and attention tiles are carved out of it, so ops never allocate. */
#define HD_CPU_SCRATCH_FLOATS (384 * 1024)

/* Attention key tile (keys per packed K/V tile); a multiple of 16. */
#define HD_ATTN_BK 64

/* GEMM micro-kernel: C[mr, nr] (=|+=) Ap · Bp over kcp = kc rounded up to the ISA's k-unroll
 * (ku), where Ap is a packed MR×kcp panel and Bp a packed kcp×NR panel, both zero-padded (rows
 * past mr, columns past nr, k past kc). The element order inside a panel is private to the
 * ISA's packers and micro-kernel; the driver only knows the panel sizes (MR·kcp, kcp·NR).
 * first != 0 overwrites C (adding bias[0..nr) if bias != NULL), otherwise accumulates. */
typedef void (*hd_gemm_ukr_fn)(int64_t kcp, const float *ap, const float *bp, float *c,
                               int64_t ldc, int mr, int nr, int first, const float *bias);
/* Packs rows 0..nr-1 (nr <= NR) of a weight block (dtype dt, row stride ldw elements, first
 * element at w) over kc columns into a kcp×NR panel, converting to float32. */
typedef void (*hd_gemm_pack_b_fn)(hd_dtype dt, const void *w, int64_t ldw, int nr, int64_t kc,
                                  float *bp);
/* Packs rows 0..mr-1 (mr <= MR) of x (row stride ldx) over kc columns into an MR×kcp panel.
 * The pack_a_t variant reads a k-major source instead: row i, column k at x[k*ldx + i]. */
typedef void (*hd_gemm_pack_a_fn)(const float *x, int64_t ldx, int mr, int64_t kc, float *ap);

/* Attention: s[r][j] = Σ_d q[r][d]·kt[d][j] for r < RB, j < HD_ATTN_BK, d < hd; q rows at
 * q + r*ldq, kt rows of HD_ATTN_BK keys. */
typedef void (*hd_attn_scores_fn)(int hd, const float *q, int64_t ldq, const float *kt, float *s);
/* o[r] = o[r]·alpha[r] + Σ_{j<nk} p[r][j]·v[j] for r < RB; o rows of hdp (multiple of 16)
 * floats at o + r*hdp, p rows of HD_ATTN_BK, v rows of hdp. */
typedef void (*hd_attn_pv_fn)(int hdp, int nk, const float *p, const float *v, float *o,
                              const float *alpha);
/* kt[d][j] = k[j][d] for d < hd, j < HD_ATTN_BK (k rows at k + j*ldk; zeros for j >= nk). */
typedef void (*hd_attn_pack_kt_fn)(const float *k, int64_t ldk, int nk, int hd, float *kt);
/* One row of an attention tile: v_j = s[j]·scale for j < n_valid (n_valid >= 1); updates the
 * running max *m to max(*m, max v_j); s[j] = exp(v_j - *m) for j < n_valid, 0 for the rest of
 * the HD_ATTN_BK entries; returns Σ s[j]. */
typedef float (*hd_attn_softmax_fn)(float *s, int n_valid, float scale, float *m);
/* x[i] = exp(x[i]) for i < n, at most 2 ulp from the correctly rounded result; inputs below the
 * float range (including -inf) give 0. */
typedef void (*hd_vexp_fn)(float *x, int64_t n);

/* Training row kernels (grad_rows.h, one instance per ISA); see the ops in backend.h. */
typedef struct hd_cpu_train_rows {
    void (*adamw)(int64_t n, float *w, const float *g, float *m, float *v,
                  const hd_adamw_step *p);
    /* up != NULL: o1 = dy·up·silu'(x), o2 = dy·silu(x); up == NULL: o1 = dy·silu'(x) */
    void (*silu_grad)(int64_t n, const float *dy, const float *x, const float *up, float *o1,
                      float *o2);
    /* one RMSNorm group of g values; dw accumulates */
    void (*rms_grad)(int64_t g, const float *x, const float *dy, const float *w, float eps,
                     int accumulate, float *dx, float *dw);
    void (*axpby)(int64_t n, float a, const float *x, float b, float *y);
    double (*sum_squares)(int64_t n, const float *x);
    /* attention backward: probabilities and score gradients of a tile (grad_rows.h) */
    void (*attn_grad_tile)(int rows, float *s, float *dp, const float *lse_r, const float *d_r,
                           const float *lse_c, const float *d_c, const int *lo, const int *hi,
                           float scale);
    /* acc[j] += Σ_r x[r·ld + j] for j < n */
    void (*col_sum)(int64_t rows, int64_t n, const float *x, int64_t ld, float *acc);
    double (*dot)(int64_t n, const float *a, const float *b);
} hd_cpu_train_rows;

#define HD_TRAIN_ROWS_DECL(sfx)                                                              \
    void hd_adamw_row_##sfx(int64_t n, float *w, const float *g, float *m, float *v,        \
                            const hd_adamw_step *p);                                        \
    void hd_silu_grad_row_##sfx(int64_t n, const float *dy, const float *x, const float *up, \
                                float *o1, float *o2);                                      \
    void hd_rms_grad_row_##sfx(int64_t g, const float *x, const float *dy, const float *w,  \
                               float eps, int accumulate, float *dx, float *dw);            \
    void hd_axpby_row_##sfx(int64_t n, float a, const float *x, float b, float *y);         \
    double hd_sum_squares_row_##sfx(int64_t n, const float *x);                             \
    void hd_attn_grad_tile_##sfx(int rows, float *s, float *dp, const float *lse_r,          \
                                 const float *d_r, const float *lse_c, const float *d_c,     \
                                 const int *lo, const int *hi, float scale);                 \
    void hd_col_sum_##sfx(int64_t rows, int64_t n, const float *x, int64_t ld, float *acc); \
    double hd_dot_row_##sfx(int64_t n, const float *a, const float *b);
HD_TRAIN_ROWS_DECL(scalar)
HD_TRAIN_ROWS_DECL(avx2)
HD_TRAIN_ROWS_DECL(avx512)

/* Forward row kernels (fwd_rows.h, one instance per ISA): eltwise.c and norm.c. */
typedef struct hd_cpu_fwd_rows {
    void (*silu_mul)(int64_t n, const float *a, const float *b, float *y); /* b NULL: silu */
    void (*add)(int64_t n, const float *a, const float *b, float *y);
    void (*rms)(int64_t g, const float *x, const float *w, float eps, float *y);
} hd_cpu_fwd_rows;

#define HD_FWD_ROWS_DECL(sfx)                                                                \
    void hd_silu_mul_row_##sfx(int64_t n, const float *a, const float *b, float *y);        \
    void hd_add_row_##sfx(int64_t n, const float *a, const float *b, float *y);             \
    void hd_rms_row_##sfx(int64_t g, const float *x, const float *w, float eps, float *y);
HD_FWD_ROWS_DECL(scalar)
HD_FWD_ROWS_DECL(avx2)
HD_FWD_ROWS_DECL(avx512)

typedef struct hd_cpu_kernels {
    int isa;
    int mr, nr;     /* GEMM micro-tile */
    int ku;         /* k-unroll: packed panels hold kc rounded up to a multiple of ku */
    int kc, nc;     /* GEMM cache blocks: K slice (multiple of ku), W columns (multiple of nr) */
    int pairs;      /* the GEMM panels hold bf16 pairs: weights are packed once, at bind */
    hd_gemm_ukr_fn gemm_ukr;
    hd_gemm_pack_a_fn pack_a;
    hd_gemm_pack_b_fn pack_b;
    hd_gemm_pack_a_fn pack_a_t; /* gradients (grad_linear.c); NULL in the bf16 table */
    int attn_rb; /* query rows per attention kernel call */
    hd_attn_pack_kt_fn attn_pack_kt;
    hd_attn_scores_fn attn_scores;
    hd_attn_softmax_fn attn_softmax;
    hd_attn_pv_fn attn_pv;
    hd_vexp_fn vexp;
    hd_cpu_train_rows train;
    hd_cpu_fwd_rows rows;
    /* y[j] = x · w[j] for j < n, one float32 row x of K values and bf16 rows w (row stride ldw):
     * linear's path for a single input row (decoding); NULL: the GEMM handles it */
    void (*gemv_bf16)(int64_t K, const float *x, const uint16_t *w, int64_t ldw, int64_t n,
                      float *y);
} hd_cpu_kernels;

extern const hd_cpu_kernels hd_cpu_kernels_scalar;
extern const hd_cpu_kernels hd_cpu_kernels_avx2;
extern const hd_cpu_kernels hd_cpu_kernels_avx512;
extern const hd_cpu_kernels hd_cpu_kernels_avx512_bf16; /* AVX-512 with the bf16 GEMM */
extern const hd_cpu_kernels hd_cpu_kernels_amx_bf16;    /* AVX-512 with the bf16 GEMM on AMX */

/* Portable kernels (also used by the ISA tables where no faster version exists). */
void hd_gemm_pack_a_generic(const float *x, int64_t ldx, int mr, int64_t kc, float *ap, int MR);
void hd_gemm_pack_b_generic(hd_dtype dt, const void *w, int64_t ldw, int nr, int64_t kc,
                            float *bp, int NR);
void hd_gemm_pack_at_generic(const float *a, int64_t lda, int mr, int64_t kc, float *ap, int MR,
                             int KU);
void hd_gemm_pack_at_avx2(const float *a, int64_t lda, int mr, int64_t kc, float *ap);
void hd_gemm_pack_at_avx512(const float *a, int64_t lda, int mr, int64_t kc, float *ap);
void hd_gemm_ukr_scalar(int64_t kcp, const float *ap, const float *bp, float *c, int64_t ldc,
                        int mr, int nr, int first, const float *bias);
void hd_attn_scores_scalar(int hd, const float *q, int64_t ldq, const float *kt, float *s);
void hd_attn_pv_scalar(int hdp, int nk, const float *p, const float *v, float *o,
                       const float *alpha);
void hd_vexp_scalar(float *x, int64_t n);
void hd_attn_pack_kt_scalar(const float *k, int64_t ldk, int nk, int hd, float *kt);
float hd_attn_softmax_scalar(float *s, int n_valid, float scale, float *m);

/* ISA kernels (gemm_avx2.c, gemm_avx512.c, attention_avx2.c, attention_avx512.c). */
void hd_gemm_ukr_avx2(int64_t kc, const float *ap, const float *bp, float *c, int64_t ldc, int mr,
                      int nr, int first, const float *bias);
void hd_gemm_pack_a_avx2(const float *x, int64_t ldx, int mr, int64_t kc, float *ap);
void hd_gemm_pack_b_avx2(hd_dtype dt, const void *w, int64_t ldw, int nr, int64_t kc, float *bp);
void hd_attn_pack_kt_avx2(const float *k, int64_t ldk, int nk, int hd, float *kt);
float hd_attn_softmax_avx2(float *s, int n_valid, float scale, float *m);
void hd_attn_scores_avx2(int hd, const float *q, int64_t ldq, const float *kt, float *s);
void hd_attn_pv_avx2(int hdp, int nk, const float *p, const float *v, float *o,
                     const float *alpha);
void hd_vexp_avx2(float *x, int64_t n);
void hd_gemv_bf16_avx2(int64_t K, const float *x, const uint16_t *w, int64_t ldw, int64_t n,
                       float *y);
void hd_gemv_bf16_avx512(int64_t K, const float *x, const uint16_t *w, int64_t ldw, int64_t n,
                         float *y);

void hd_gemm_ukr_avx512(int64_t kc, const float *ap, const float *bp, float *c, int64_t ldc,
                        int mr, int nr, int first, const float *bias);
void hd_gemm_pack_a_avx512(const float *x, int64_t ldx, int mr, int64_t kc, float *ap);
void hd_gemm_pack_b_avx512(hd_dtype dt, const void *w, int64_t ldw, int nr, int64_t kc,
                           float *bp);
void hd_gemm_ukr_bf16_avx512(int64_t kcp, const float *ap, const float *bp, float *c,
                             int64_t ldc, int mr, int nr, int first, const float *bias);
void hd_gemm_pack_a_bf16_avx512(const float *x, int64_t ldx, int mr, int64_t kc, float *ap);
void hd_gemm_pack_b_bf16_avx512(hd_dtype dt, const void *w, int64_t ldw, int nr, int64_t kc,
                                float *bp);
/* The bf16 A panel of `rows` rows (the bf16 kernels' layout, gemm_bf16_avx512.c). */
void hd_gemm_pack_a_pairs_avx512(const float *x, int64_t ldx, int mr, int64_t kc, float *ap,
                                 int rows);
/* AMX tiles (gemm_amx.c): the 32×32 tile of the bf16 GEMM on TDPBF16PS. */
void hd_gemm_ukr_bf16_amx(int64_t kcp, const float *ap, const float *bp, float *c, int64_t ldc,
                          int mr, int nr, int first, const float *bias);
void hd_gemm_pack_a_bf16_amx(const float *x, int64_t ldx, int mr, int64_t kc, float *ap);
void hd_attn_pack_kt_avx512(const float *k, int64_t ldk, int nk, int hd, float *kt);
float hd_attn_softmax_avx512(float *s, int n_valid, float scale, float *m);
void hd_attn_scores_avx512(int hd, const float *q, int64_t ldq, const float *kt, float *s);
void hd_attn_pv_avx512(int hdp, int nk, const float *p, const float *v, float *o,
                       const float *alpha);
void hd_vexp_avx512(float *x, int64_t n);

/* ---- backend state ----
 * One pool and one scratch set per backend: ops on one backend must not run concurrently (the
 * model code calls them in sequence); use one backend per calling thread otherwise. */
typedef struct hd_cpu {
    hd_pool *pool;
    int n_threads;
    const hd_cpu_kernels *k;
    float **scratch; /* n_threads buffers of HD_CPU_SCRATCH_FLOATS */
    /* gemm_bf16 on an ISA without bf16 dot products: linear rounds its packed operands to bf16
     * and multiplies them in float32 (exact products), so the option means the same numerics
     * on every machine instead of silently being the exact path. */
    int round_bf16;
    /* gemm_int8: linear weights are prepared as int8 panels at bind (gemm_i8.h) */
    int int8;
    hd_i8_ukr_fn i8_ukr; /* NULL with i8_amx (the driver calls hd_i8_row_amx) */
    hd_i8_pack_row_fn i8_pack_row;
    int i8_x_offset; /* the kernel reads the packed x as unsigned x + 128 (sign bits flipped) */
    int i8_amx;      /* the AMX kernel: 32×32 tiles, x quantized row-major */
    /* the forward attention in bf16 (Q, K, V, P rounded; float32 sums and softmax): gemm_bf16
     * or gemm_int8 on a CPU with AVX512-BF16 (attention_bf16_avx512.c) */
    int attn_bf16;
    int attn_amx; /* the same attention on AMX tiles (attention_amx.c): CPUs with AMX */
    void *i8_buf; /* the quantized x of the last int8 product, grown as needed */
    float *xa_buf; /* x packed once per product for W packed at bind (gemm.c), grown as needed */
    size_t xa_cap; /* its size in floats */
    size_t i8_cap;
} hd_cpu;

/* The K-slice of linear for weights stored as dt: the kernels' kc, cut to whole blocks of a
 * quantized format (so a slice never splits a block). */
static inline int64_t hd_gemm_kc(const hd_cpu_kernels *k, hd_dtype dt) {
    int64_t blk = hd_dtype_block(dt);
    return k->kc >= blk ? k->kc / blk * blk : blk;
}

/* K values of a weight stored as dt once each slice is padded to the kernels' ku (Σ kcp over
 * the slices): what a row of packed panels spans. */
static inline int64_t hd_gemm_kp(const hd_cpu_kernels *k, hd_dtype dt, int64_t K) {
    const int64_t KC = hd_gemm_kc(k, dt), last = K - (K - 1) / KC * KC;
    return (K - last) + (last + k->ku - 1) / k->ku * k->ku;
}

/* The formats the ISA packers read as they are (others are dequantized to float32 first). */
static inline int hd_cpu_packs_directly(hd_dtype dt) {
    return dt == HD_F32 || dt == HD_F16 || dt == HD_BF16;
}

static inline hd_cpu *hd_cpu_of(hd_backend *be) { return (hd_cpu *)be->impl; }

/* Runs fn over row ranges [r0, r1) covering 0..rows-1, threaded when the work (rows × cols
 * elements) is large enough to pay for a dispatch. One dispatch per call. */
typedef void (*hd_cpu_rows_fn)(void *ctx, int64_t r0, int64_t r1, int thread);
void hd_cpu_for_rows(hd_cpu *cpu, int64_t rows, int64_t cols, hd_cpu_rows_fn fn, void *ctx);

/* Converts n elements of a weight row (BF16, F16 or F32) starting at element i0 to float32. */
void hd_cpu_load_f32(hd_dtype dt, const void *base, int64_t i0, int64_t n, float *dst);

/* bf16 attention (attention_bf16_avx512.c: the layouts), for the forward driver of attention.c
 * when hd_cpu.attn_bf16 is set and the head dim is even; 6 query rows per call. */
/* a row of n floats rounded to bf16 in place, as n/2 pairs (Q rows; P rows on AMX) */
void hd_attn_bf16_pairs(float *row, int n);
void hd_attn_bf16_pack_kt(const float *k, int64_t ldk, int nk, int hd, float *kt);
void hd_attn_bf16_pack_v(const float *v, int64_t ldv, int nk, int hd, int hdp, float *vp);
void hd_attn_bf16_scores(int hd, const float *q, int64_t ldq, const float *kt, float *s);
void hd_attn_bf16_pv(int hdp, int nk, float *p, const float *vp, float *o, const float *alpha);
/* The same products on AMX tiles (attention_amx.c), 16 query rows per call; the pairs of Q and
 * kt past hd/2 up to a multiple of 16 must be zero. */
#define HD_ATTN_AMX_RB 16
void hd_attn_amx_scores(int hd, const float *q, int64_t ldq, const float *kt, float *s);
void hd_attn_amx_pv(int hdp, int nk, float *p, const float *vp, float *o, const float *alpha);

/* A weight packed at bind for the bf16 kernels (gemm_prepack.c: the layout): t->packed of a
 * CPU backend without the int8 option. */
typedef struct hd_cpu_prepacked {
    int64_t np;    /* N rounded up to whole panels of NR */
    float *panels; /* bf16 pairs, slice by slice, panel by panel */
} hd_cpu_prepacked;
/* Packs t (a BF16/F16/F32 weight) into t->packed for cpu->k; returns 0 or an error. */
int hd_cpu_prepack(hd_cpu *cpu, hd_tensor *t, hd_error *e);

/* int8 products (gemm_i8.c): packs t (a float weight) into t->packed; returns 0 or an error.
 * linear_i8 returns -1 (nothing done) when its buffer cannot grow: the caller falls back. */
int hd_cpu_prepare_i8(hd_cpu *cpu, hd_tensor *t, int fine_scales, hd_error *e);
int hd_cpu_linear_i8(hd_cpu *cpu, hd_tensor *y, const hd_tensor *x, const hd_i8_weight *w,
                     const hd_tensor *bias);
/* The products of one x (ops->linears) with x quantized once; -1 (nothing done) when the
 * weights differ in K or block size, or the buffer cannot grow. */
int hd_cpu_linears_i8(hd_cpu *cpu, hd_tensor *const *ys, const hd_tensor *x,
                      const hd_i8_weight *const *ws, int n);

/* ---- ops (one file each) ---- */
void hd_cpu_linear(hd_backend *be, hd_tensor *y, const hd_tensor *x, const hd_tensor *w,
                   const hd_tensor *bias);
void hd_cpu_linears(hd_backend *be, hd_tensor *const *ys, const hd_tensor *x,
                    const hd_tensor *const *ws, int n);
void hd_cpu_attention(hd_backend *be, hd_tensor *out, const hd_tensor *q, const hd_tensor *k,
                      const hd_tensor *v, int n_heads, int n_kv_heads, int head_dim, float scale,
                      hd_attn_mask mask);
void hd_cpu_rmsnorm(hd_backend *be, hd_tensor *y, const hd_tensor *x, const hd_tensor *w,
                    float eps);
void hd_cpu_layernorm(hd_backend *be, hd_tensor *y, const hd_tensor *x, const hd_tensor *w,
                      const hd_tensor *b, float eps);
void hd_cpu_rope(hd_backend *be, hd_tensor *x, const hd_tensor *cos, const hd_tensor *sin,
                 int head_dim);
void hd_cpu_add(hd_backend *be, hd_tensor *y, const hd_tensor *a, const hd_tensor *b);
void hd_cpu_silu(hd_backend *be, hd_tensor *y, const hd_tensor *x);
void hd_cpu_silu_mul(hd_backend *be, hd_tensor *y, const hd_tensor *gate, const hd_tensor *up);
void hd_cpu_gelu_tanh(hd_backend *be, hd_tensor *y, const hd_tensor *x);
void hd_cpu_gelu_erf(hd_backend *be, hd_tensor *y, const hd_tensor *x);
void hd_cpu_gather_rows(hd_backend *be, hd_tensor *y, const hd_tensor *table, const int32_t *ids,
                        int64_t n);
void hd_cpu_set_rows(hd_backend *be, hd_tensor *y, const hd_tensor *src, const int32_t *idx,
                     int64_t n);
void hd_cpu_add_rows(hd_backend *be, hd_tensor *y, const hd_tensor *src, const int32_t *idx,
                     int64_t n);

/* ---- training ops (grad_linear.c, grad_norm.c, attention.c, attention_backward.c,
 * grad_eltwise.c, optimizer.c) ---- */
void hd_cpu_linear_dx(hd_backend *be, hd_tensor *dx, const hd_tensor *dy, const hd_tensor *w,
                      int accumulate);
void hd_cpu_linear_dw(hd_backend *be, hd_tensor *dw, hd_tensor *db, const hd_tensor *dy,
                      const hd_tensor *x);
void hd_cpu_rmsnorm_backward(hd_backend *be, hd_tensor *dx, hd_tensor *dw, const hd_tensor *dy,
                             const hd_tensor *x, const hd_tensor *w, float eps, int accumulate);
void hd_cpu_attention_lse(hd_backend *be, hd_tensor *out, hd_tensor *lse, const hd_tensor *q,
                          const hd_tensor *k, const hd_tensor *v, int n_heads, int n_kv_heads,
                          int head_dim, float scale, hd_attn_mask mask);
void hd_cpu_attention_backward(hd_backend *be, hd_tensor *dq, hd_tensor *dk, hd_tensor *dv,
                               const hd_tensor *dout, const hd_tensor *q, const hd_tensor *k,
                               const hd_tensor *v, const hd_tensor *out, const hd_tensor *lse,
                               int n_heads, int n_kv_heads, int head_dim, float scale,
                               hd_attn_mask mask);
void hd_cpu_silu_mul_backward(hd_backend *be, hd_tensor *dgate, hd_tensor *dup,
                              const hd_tensor *dy, const hd_tensor *gate, const hd_tensor *up);
void hd_cpu_silu_backward(hd_backend *be, hd_tensor *dx, const hd_tensor *dy, const hd_tensor *x);
void hd_cpu_axpby(hd_backend *be, hd_tensor *y, float a, const hd_tensor *x, float b);
double hd_cpu_sum_squares(hd_backend *be, const hd_tensor *x);
void hd_cpu_adamw(hd_backend *be, hd_tensor *w, const hd_tensor *g, hd_tensor *m, hd_tensor *v,
                  const hd_adamw_step *p);

#endif
