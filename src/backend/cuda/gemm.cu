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

/* cublasLt bf16 × bf16 -> f32 on the rounded copy xb [M, K] (dense). Returns 0 when it ran,
 * 1 when cublasLt has no algorithm for these shapes/alignments (the caller falls back), -1 on
 * a recorded failure. */
static int linear_bf16_lt(hd_cuda *c, hd_tensor *y, const void *xb, const hd_tensor *w,
                          float beta, int64_t M, int64_t N, int64_t K) {
    const float one = 1.0f;
    cublasLtMatmulDesc_t op = NULL;
    cublasLtMatrixLayout_t la = NULL, lb = NULL, lc = NULL;
    cublasLtMatmulPreference_t pref = NULL;
    cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
    uint64_t ws = c->lt_ws_size;
    uint32_t al_a = alignment(w->data, w->stride, 2), al_b = alignment(xb, K, 2);
    uint32_t al_c = alignment(y->data, y->stride, 4);
    cublasLtMatmulHeuristicResult_t h;
    int found = 0, rc = -1;
    memset(&h, 0, sizeof h);
    if (hd_cuda_check_blas(c, cublasLtMatmulDescCreate(&op, CUBLAS_COMPUTE_32F, CUDA_R_32F),
                           "linear: cublasLtMatmulDescCreate") < 0 ||
        hd_cuda_check_blas(c, cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSA, &ta,
                                                             sizeof ta),
                           "linear: cublasLt TRANSA") < 0 ||
        hd_cuda_check_blas(c, cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSB, &tb,
                                                             sizeof tb),
                           "linear: cublasLt TRANSB") < 0 ||
        /* layouts describe the matrices as stored (column-major): W is K×N, xb K×M, y N×M */
        hd_cuda_check_blas(c, cublasLtMatrixLayoutCreate(&la, CUDA_R_16BF, (uint64_t)K,
                                                         (uint64_t)N, w->stride),
                           "linear: cublasLt layout W") < 0 ||
        hd_cuda_check_blas(c, cublasLtMatrixLayoutCreate(&lb, CUDA_R_16BF, (uint64_t)K,
                                                         (uint64_t)M, K),
                           "linear: cublasLt layout x") < 0 ||
        hd_cuda_check_blas(c, cublasLtMatrixLayoutCreate(&lc, CUDA_R_32F, (uint64_t)N,
                                                         (uint64_t)M, y->stride),
                           "linear: cublasLt layout y") < 0 ||
        hd_cuda_check_blas(c, cublasLtMatmulPreferenceCreate(&pref),
                           "linear: cublasLtMatmulPreferenceCreate") < 0 ||
        hd_cuda_check_blas(c, cublasLtMatmulPreferenceSetAttribute(
                                  pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof ws),
                           "linear: cublasLt workspace") < 0 ||
        hd_cuda_check_blas(c, cublasLtMatmulPreferenceSetAttribute(
                                  pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, &al_a,
                                  sizeof al_a),
                           "linear: cublasLt alignment") < 0 ||
        hd_cuda_check_blas(c, cublasLtMatmulPreferenceSetAttribute(
                                  pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, &al_b,
                                  sizeof al_b),
                           "linear: cublasLt alignment") < 0 ||
        hd_cuda_check_blas(c, cublasLtMatmulPreferenceSetAttribute(
                                  pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, &al_c,
                                  sizeof al_c),
                           "linear: cublasLt alignment") < 0 ||
        hd_cuda_check_blas(c, cublasLtMatmulPreferenceSetAttribute(
                                  pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, &al_c,
                                  sizeof al_c),
                           "linear: cublasLt alignment") < 0)
        goto done;
    if (cublasLtMatmulAlgoGetHeuristic(c->lt, op, la, lb, lc, lc, pref, 1, &h, &found) !=
            CUBLAS_STATUS_SUCCESS ||
        found < 1) {
        rc = 1;
        goto done;
    }
    /* C and D are the same matrix: in place, y = x·Wᵀ + beta·y */
    if (hd_cuda_check_blas(c, cublasLtMatmul(c->lt, op, &one, w->data, la, xb, lb, &beta, y->data,
                                             lc, y->data, lc, &h.algo, c->lt_ws, c->lt_ws_size,
                                             c->stream),
                           "linear: cublasLtMatmul (bf16)") == 0)
        rc = 0;
done:
    if (pref) cublasLtMatmulPreferenceDestroy(pref);
    if (lc) cublasLtMatrixLayoutDestroy(lc);
    if (lb) cublasLtMatrixLayoutDestroy(lb);
    if (la) cublasLtMatrixLayoutDestroy(la);
    if (op) cublasLtMatmulDescDestroy(op);
    return rc;
}

static void linear_bf16(hd_cuda *c, hd_tensor *y, const hd_tensor *x, const hd_tensor *w,
                        float beta, int64_t M, int64_t N, int64_t K) {
    if (hd_cuda_scratch(c, &c->act, &c->act_cap, (size_t)(M * K) * 2, "linear (bf16 x)") < 0)
        return;
    __nv_bfloat16 *xb = (__nv_bfloat16 *)c->act;
    round_bf16_kernel<<<hd_cuda_grid_2d(M, K), HD_CUDA_THREADS, 0, c->stream>>>(
        xb, (const float *)x->data, x->stride, M, K);
    if (hd_cuda_launched(c, "linear: bf16 rounding kernel") < 0) return;
    if (linear_bf16_lt(c, y, xb, w, beta, M, N, K) != 1) return;
    /* no cublasLt algorithm for these alignments: the classic API picks its own */
    const float one = 1.0f;
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
