/* linear on the device: y[M,N] = x[M,K] · W[N,K]ᵀ (+ bias), by cuBLAS.
 *
 * Row-major y = x·Wᵀ is, in cuBLAS's column-major terms, yᵀ (N×M) = op(W) · xᵀ with W seen as a
 * K×N matrix (ld = its row stride) and op = transpose, and xᵀ a K×M matrix (ld = x's row stride):
 * strided views go straight in, nothing is copied. The bias (or nothing) is broadcast into y
 * first and the product accumulated onto it (beta = 1).
 *
 * Float32 weights: cublasGemmEx with CUBLAS_COMPUTE_32F_PEDANTIC, i.e. float32 products and sums,
 * never TF32. BF16 weights (only with gemm_bf16): x is rounded to bf16 into a dense scratch and
 * cublasLt runs bf16 × bf16 with float32 accumulation and output, as the official GPU code. */
#include "backend/cuda/cuda_internal.h"

#include <cuda_bf16.h>
#include <limits.h>

static __global__ void round_bf16_kernel(__nv_bfloat16 *dst, const float *x, int64_t ldx,
                                         int64_t rows, int64_t cols) {
    for (int64_t r = blockIdx.y; r < rows; r += gridDim.y)
        for (int64_t col = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; col < cols;
             col += (int64_t)gridDim.x * blockDim.x)
            dst[r * cols + col] = __float2bfloat16_rn(x[r * ldx + col]);
}

/* The same with 16-byte loads: 4 columns per thread (cols, ldx and x divisible by 4). */
static __global__ void round_bf16_vec4_kernel(__nv_bfloat16 *dst, const float *x, int64_t ldx,
                                              int64_t rows, int64_t cols4) {
    for (int64_t r = blockIdx.y; r < rows; r += gridDim.y)
        for (int64_t c4 = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; c4 < cols4;
             c4 += (int64_t)gridDim.x * blockDim.x) {
            float4 v = *(const float4 *)(x + r * ldx + 4 * c4);
            __nv_bfloat162 lo = __floats2bfloat162_rn(v.x, v.y), hi = __floats2bfloat162_rn(v.z, v.w);
            __nv_bfloat162 *d = (__nv_bfloat162 *)(dst + r * cols4 * 4 + 4 * c4);
            d[0] = lo;
            d[1] = hi;
        }
}

void hd_cuda_round_bf16(hd_cuda *c, __nv_bfloat16 *dst, const float *src, int64_t lds,
                        int64_t rows, int64_t cols) {
    if (rows <= 0 || cols <= 0) return;
    if (cols % 4 == 0 && lds % 4 == 0 && ((uintptr_t)src & 15) == 0)
        round_bf16_vec4_kernel<<<hd_cuda_grid_2d(rows, cols / 4), HD_CUDA_THREADS, 0,
                                 c->stream>>>(dst, src, lds, rows, cols / 4);
    else
        round_bf16_kernel<<<hd_cuda_grid_2d(rows, cols), HD_CUDA_THREADS, 0, c->stream>>>(
            dst, src, lds, rows, cols);
    hd_cuda_launched(c, "bf16 rounding kernel");
}

static int fits_int(int64_t v) { return v >= 0 && v <= INT_MAX; }

/* Largest power of two (<= 256) dividing both the address and the leading dimension in bytes:
 * what cublasLt may assume about a matrix's alignment. */
static uint32_t alignment(const void *p, int64_t ld, size_t es) {
    uintptr_t a = (uintptr_t)p | (uintptr_t)((size_t)ld * es) | (uintptr_t)256;
    return (uint32_t)(a & (~a + 1));
}

static void linear_f32(hd_cuda *c, hd_tensor *y, const hd_tensor *x, const hd_tensor *w,
                       float beta, int64_t M, int64_t N, int64_t K) {
    const float one = 1.0f;
    hd_cuda_check_blas(c, cublasGemmEx(c->blas, CUBLAS_OP_T, CUBLAS_OP_N, (int)N, (int)M, (int)K,
                                       &one, w->data, CUDA_R_32F, (int)w->stride, x->data,
                                       CUDA_R_32F, (int)x->stride, &beta, y->data, CUDA_R_32F,
                                       (int)y->stride, CUBLAS_COMPUTE_32F_PEDANTIC,
                                       CUBLAS_GEMM_DEFAULT),
                       "linear: cublasGemmEx (float32)");
}

static void plan_release(hd_cuda_lt_plan *p) {
    if (p->lc) cublasLtMatrixLayoutDestroy(p->lc);
    if (p->lb) cublasLtMatrixLayoutDestroy(p->lb);
    if (p->la) cublasLtMatrixLayoutDestroy(p->la);
    if (p->op) cublasLtMatmulDescDestroy(p->op);
    memset(p, 0, sizeof *p);
}

void hd_cuda_plans_free(hd_cuda *c) {
    for (int i = 0; i < c->n_plans; i++) plan_release(&c->plans[i]);
    c->n_plans = 0;
}

/* Builds the descriptors of y [M,N] (f32) = xb [M,K] (bf16, dense) · W [N,K]ᵀ (bf16) and asks
 * the heuristic once. 0 (p->usable says whether an algorithm was found) or -1 (recorded). */
static int plan_build(hd_cuda *c, hd_cuda_lt_plan *p, uint32_t al_b) {
    cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
    uint64_t ws = c->lt_ws_size;
    cublasLtMatmulPreference_t pref = NULL;
    cublasLtMatmulHeuristicResult_t h;
    int found = 0, rc = -1;
    memset(&h, 0, sizeof h);
    if (hd_cuda_check_blas(c, cublasLtMatmulDescCreate(&p->op, CUBLAS_COMPUTE_32F, CUDA_R_32F),
                           "linear: cublasLtMatmulDescCreate") < 0 ||
        hd_cuda_check_blas(c, cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_TRANSA,
                                                             &ta, sizeof ta),
                           "linear: cublasLt TRANSA") < 0 ||
        hd_cuda_check_blas(c, cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_TRANSB,
                                                             &tb, sizeof tb),
                           "linear: cublasLt TRANSB") < 0 ||
        /* layouts describe the matrices as stored (column-major): W is K×N, xb K×M, y N×M */
        hd_cuda_check_blas(c, cublasLtMatrixLayoutCreate(&p->la, CUDA_R_16BF, (uint64_t)p->K,
                                                         (uint64_t)p->N, p->ldw),
                           "linear: cublasLt layout W") < 0 ||
        hd_cuda_check_blas(c, cublasLtMatrixLayoutCreate(&p->lb, CUDA_R_16BF, (uint64_t)p->K,
                                                         (uint64_t)p->M, p->K),
                           "linear: cublasLt layout x") < 0 ||
        hd_cuda_check_blas(c, cublasLtMatrixLayoutCreate(&p->lc, CUDA_R_32F, (uint64_t)p->N,
                                                         (uint64_t)p->M, p->ldy),
                           "linear: cublasLt layout y") < 0 ||
        hd_cuda_check_blas(c, cublasLtMatmulPreferenceCreate(&pref),
                           "linear: cublasLtMatmulPreferenceCreate") < 0 ||
        hd_cuda_check_blas(c, cublasLtMatmulPreferenceSetAttribute(
                                  pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof ws),
                           "linear: cublasLt workspace") < 0 ||
        hd_cuda_check_blas(c, cublasLtMatmulPreferenceSetAttribute(
                                  pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, &p->al_w,
                                  sizeof p->al_w),
                           "linear: cublasLt alignment") < 0 ||
        hd_cuda_check_blas(c, cublasLtMatmulPreferenceSetAttribute(
                                  pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, &al_b,
                                  sizeof al_b),
                           "linear: cublasLt alignment") < 0 ||
        hd_cuda_check_blas(c, cublasLtMatmulPreferenceSetAttribute(
                                  pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, &p->al_y,
                                  sizeof p->al_y),
                           "linear: cublasLt alignment") < 0 ||
        hd_cuda_check_blas(c, cublasLtMatmulPreferenceSetAttribute(
                                  pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, &p->al_y,
                                  sizeof p->al_y),
                           "linear: cublasLt alignment") < 0)
        goto done;
    p->usable = cublasLtMatmulAlgoGetHeuristic(c->lt, p->op, p->la, p->lb, p->lc, p->lc, pref,
                                               1, &h, &found) == CUBLAS_STATUS_SUCCESS &&
                found >= 1;
    if (p->usable) p->algo = h.algo;
    rc = 0;
done:
    if (pref) cublasLtMatmulPreferenceDestroy(pref);
    return rc;
}

/* The cached plan for this shape (built on first use; the oldest is replaced when the cache is
 * full). NULL on a recorded failure. The scratch xb is 256-byte aligned and dense, so its
 * alignment is the same for every call with the same K. */
static hd_cuda_lt_plan *plan_for(hd_cuda *c, const hd_tensor *y, const hd_tensor *w, int beta_one,
                                 int64_t M, int64_t N, int64_t K, const void *xb) {
    uint32_t al_w = alignment(w->data, w->stride, 2), al_y = alignment(y->data, y->stride, 4);
    for (int i = 0; i < c->n_plans; i++) {
        hd_cuda_lt_plan *p = &c->plans[i];
        if (p->M == M && p->N == N && p->K == K && p->ldw == w->stride && p->ldy == y->stride &&
            p->al_w == al_w && p->al_y == al_y && p->beta_one == beta_one)
            return p;
    }
    int slot = c->n_plans < HD_CUDA_MAX_PLANS ? c->n_plans++ : c->next_evict++ % HD_CUDA_MAX_PLANS;
    hd_cuda_lt_plan *p = &c->plans[slot];
    plan_release(p);
    p->M = M, p->N = N, p->K = K, p->ldw = w->stride, p->ldy = y->stride;
    p->al_w = al_w, p->al_y = al_y, p->beta_one = beta_one;
    if (plan_build(c, p, alignment(xb, K, 2)) < 0) {
        plan_release(p);
        p->M = -1; /* matches no shape */
        return NULL;
    }
    return p;
}

/* x rounded to bf16 into the dense scratch c->act, or the copy made by the previous op when
 * it was this same x (the q/k/v and gate/up products share their input). */
static const __nv_bfloat16 *rounded_input(hd_cuda *c, const hd_tensor *x, int64_t M, int64_t K) {
    if (c->act && c->act_x == x->data && c->act_rows == M && c->act_cols == K &&
        c->act_ld == x->stride && c->act_seq + 1 == c->op_seq) {
        c->act_seq = c->op_seq;
        return (const __nv_bfloat16 *)c->act;
    }
    if (hd_cuda_scratch(c, &c->act, &c->act_cap, (size_t)(M * K) * 2, "linear (bf16 x)") < 0)
        return NULL;
    hd_cuda_round_bf16(c, (__nv_bfloat16 *)c->act, (const float *)x->data, x->stride, M, K);
    c->act_x = x->data;
    c->act_rows = M;
    c->act_cols = K;
    c->act_ld = x->stride;
    c->act_seq = c->op_seq;
    return (const __nv_bfloat16 *)c->act;
}

static void linear_bf16(hd_cuda *c, hd_tensor *y, const hd_tensor *x, const hd_tensor *w,
                        float beta, int64_t M, int64_t N, int64_t K) {
    const __nv_bfloat16 *xb = rounded_input(c, x, M, K);
    if (!xb) return;
    /* y overlapping x would make the rounded copy stale for the next product */
    const char *xs = (const char *)x->data, *ys = (const char *)y->data;
    const char *xe = xs + ((M - 1) * x->stride + K) * 4, *ye = ys + ((M - 1) * y->stride + N) * 4;
    if (ys < xe && xs < ye) c->act_seq = 0;
    const float one = 1.0f;
    hd_cuda_lt_plan *p = plan_for(c, y, w, beta != 0.0f, M, N, K, xb);
    if (!p) return;
    if (p->usable) { /* C and D are the same matrix: in place, y = x·Wᵀ + beta·y */
        hd_cuda_check_blas(c, cublasLtMatmul(c->lt, p->op, &one, w->data, p->la, xb, p->lb,
                                             &beta, y->data, p->lc, y->data, p->lc, &p->algo,
                                             c->lt_ws, c->lt_ws_size, c->stream),
                           "linear: cublasLtMatmul (bf16)");
        return;
    }
    /* no cublasLt algorithm for these alignments: the classic API picks its own */
    hd_cuda_check_blas(c, cublasGemmEx(c->blas, CUBLAS_OP_T, CUBLAS_OP_N, (int)N, (int)M, (int)K,
                                       &one, w->data, CUDA_R_16BF, (int)w->stride, xb,
                                       CUDA_R_16BF, (int)K, &beta, y->data, CUDA_R_32F,
                                       (int)y->stride, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
                       "linear: cublasGemmEx (bf16)");
}

void hd_cuda_linear(hd_backend *be, hd_tensor *y, const hd_tensor *x, const hd_tensor *w,
                    const hd_tensor *bias) {
    hd_cuda *c = hd_cuda_begin(be);
    int64_t M = y->rows, N = y->cols, K = x->cols;
    if (!c || M <= 0 || N <= 0) return;
    if (!fits_int(M) || !fits_int(N) || !fits_int(K) || !fits_int(x->stride) ||
        !fits_int(y->stride) || !fits_int(w->stride)) {
        hd_cuda_fail(c, HD_EUNSUPPORTED, "cuda backend: linear: %lld x %lld x %lld exceeds the "
                     "32-bit sizes of cuBLAS", (long long)M, (long long)N, (long long)K);
        return;
    }
    if (w->dtype != HD_F32 && w->dtype != HD_BF16) {
        hd_cuda_fail(c, HD_EUNSUPPORTED, "cuda backend: linear: weight of dtype %s (uploaded "
                     "weights are F32, or BF16 with gemm_bf16)", hd_dtype_name(w->dtype));
        return;
    }
    float beta = 0.0f;
    if (bias || K == 0) { /* K == 0: the empty sum leaves y = bias (or 0) */
        hd_cuda_broadcast_row(c, (float *)y->data, y->stride, bias, M, N);
        beta = 1.0f;
    }
    if (K == 0) return;
    if (w->dtype == HD_BF16) linear_bf16(c, y, x, w, beta, M, N, K);
    else linear_f32(c, y, x, w, beta, M, N, K);
}
