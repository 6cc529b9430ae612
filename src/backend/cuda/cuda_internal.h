/* Internal interface of the CUDA backend (C++ for nvcc): the backend state, failure recording,
 * launch helpers, device-side element loads, and the op entry points of the files in this folder.
 *
 * Execution model: every op is queued on the backend's one stream, so ops run in call order;
 * read(), write(), weight(), free() and status() synchronise with it. Ops have no error return:
 * the first failure (a CUDA or cuBLAS error, a shape this backend cannot run) is recorded, later
 * ops do nothing, read() fills NaN, and status() reports it (backend.h). */
#ifndef HD_BACKEND_CUDA_INTERNAL_H
#define HD_BACKEND_CUDA_INTERNAL_H

#include <cublasLt.h>
#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

extern "C" {
#include "backend/backend.h"
#include "core/error.h"
}

/* A cublasLt plan for one linear shape (gemm.cu): built once, with its heuristic algorithm. */
typedef struct hd_cuda_lt_plan {
    int64_t M, N, K, ldw, ldy;
    uint32_t al_w, al_y;
    int beta_one;
    int usable; /* 0: cublasLt offered no algorithm (the classic API runs instead) */
    cublasLtMatmulDesc_t op;
    cublasLtMatrixLayout_t la, lb, lc;
    cublasLtMatmulAlgo_t algo;
} hd_cuda_lt_plan;

#define HD_CUDA_MAX_PLANS 64

typedef struct hd_cuda {
    int device;
    /* gemm_bf16 option: BF16 weights stay BF16 on the device and linear with such a weight
     * rounds x to bf16 and runs cublasLt bf16 x bf16 -> f32 (the official GPU numerics). */
    int fast;
    cudaStream_t stream;
    cublasHandle_t blas;
    cublasLtHandle_t lt;
    void *lt_ws; /* cublasLt workspace */
    size_t lt_ws_size;
    /* Device scratch, grown on demand; stream order makes reuse safe between ops. */
    void *idx;    /* row indices of gather/set/add_rows */
    size_t idx_cap;
    void *act;    /* fast path: x rounded to bf16 */
    size_t act_cap;
    /* act holds x = (act_x, act_rows x act_cols, row stride act_ld) rounded, valid while
     * act_seq == op_seq - 1, i.e. when no op ran since the linear that rounded it (the q/k/v
     * and gate/up products share one input). op_seq counts every op and memory call. */
    const void *act_x;
    int64_t act_rows, act_cols, act_ld;
    uint64_t act_seq, op_seq;
    void *attn_bf16; /* fast attention: q, k, v rounded to bf16 */
    size_t attn_bf16_cap;
    int attn_f32;    /* HIDREAM_CUDA_ATTN=f32: the fast option keeps the float32 attention */
    hd_cuda_lt_plan plans[HD_CUDA_MAX_PLANS];
    int n_plans, next_evict;
    unsigned attn_smem_set; /* bit n: attention kernel variant n has its shared-memory limit */
    /* first failure */
    int err_code;
    char err_msg[512];
} hd_cuda;

static inline hd_cuda *hd_cuda_of(hd_backend *be) { return (hd_cuda *)be->impl; }

/* ---- failures (cuda_backend.cu) ---- */
/* Records a failure unless one is recorded already; always returns -1. */
int hd_cuda_fail(hd_cuda *c, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* 0 if rc is cudaSuccess, else records "<what>: <CUDA error>" and returns -1. */
int hd_cuda_check(hd_cuda *c, cudaError_t rc, const char *what);
int hd_cuda_check_blas(hd_cuda *c, cublasStatus_t rc, const char *what);
/* Checks the launch of the kernel just queued (bad configuration, missing kernel image). */
int hd_cuda_launched(hd_cuda *c, const char *what);
/* Start of every op: makes the backend's device current. NULL when a failure is recorded (the
 * op then does nothing). */
hd_cuda *hd_cuda_begin(hd_backend *be);
/* Makes *buf hold at least `bytes` of device memory (stream-synchronised before freeing the
 * old buffer). 0 or -1 (recorded). */
int hd_cuda_scratch(hd_cuda *c, void **buf, size_t *cap, size_t bytes, const char *what);

/* ---- launch helpers ---- */
#define HD_CUDA_THREADS 256

/* Grid for kernels that walk rows × cols with grid-stride loops: y over rows, x over columns. */
static inline dim3 hd_cuda_grid_2d(int64_t rows, int64_t cols) {
    int64_t gx = (cols + HD_CUDA_THREADS - 1) / HD_CUDA_THREADS;
    if (gx > 1024) gx = 1024;
    if (gx < 1) gx = 1;
    int64_t gy = rows < 65535 ? rows : 65535;
    if (gy < 1) gy = 1;
    return dim3((unsigned)gx, (unsigned)gy, 1);
}

/* Grid for a 1-D grid-stride loop over n items. */
static inline unsigned hd_cuda_grid_1d(int64_t n) {
    int64_t g = (n + HD_CUDA_THREADS - 1) / HD_CUDA_THREADS;
    if (g > 65536) g = 65536;
    return (unsigned)(g < 1 ? 1 : g);
}

/* ---- device-side loads ---- */
/* Element i of a BF16, F16 or F32 array as float32 (exact widening). */
static __device__ __forceinline__ float hd_cu_load(int dtype, const void *base, int64_t i) {
    if (dtype == HD_BF16)
        return __uint_as_float((unsigned)((const uint16_t *)base)[i] << 16);
    if (dtype == HD_F16) return __half2float(((const __half *)base)[i]);
    return ((const float *)base)[i];
}

/* ---- ops ---- */
void hd_cuda_linear(hd_backend *be, hd_tensor *y, const hd_tensor *x, const hd_tensor *w,
                    const hd_tensor *bias);
void hd_cuda_attention(hd_backend *be, hd_tensor *out, const hd_tensor *q, const hd_tensor *k,
                       const hd_tensor *v, int n_heads, int n_kv_heads, int head_dim, float scale,
                       hd_attn_mask mask);
void hd_cuda_rmsnorm(hd_backend *be, hd_tensor *y, const hd_tensor *x, const hd_tensor *w,
                     float eps);
void hd_cuda_layernorm(hd_backend *be, hd_tensor *y, const hd_tensor *x, const hd_tensor *w,
                       const hd_tensor *b, float eps);
void hd_cuda_rope(hd_backend *be, hd_tensor *x, const hd_tensor *cos, const hd_tensor *sin,
                  int head_dim);
void hd_cuda_add(hd_backend *be, hd_tensor *y, const hd_tensor *a, const hd_tensor *b);
void hd_cuda_silu(hd_backend *be, hd_tensor *y, const hd_tensor *x);
void hd_cuda_silu_mul(hd_backend *be, hd_tensor *y, const hd_tensor *gate, const hd_tensor *up);
void hd_cuda_gelu_tanh(hd_backend *be, hd_tensor *y, const hd_tensor *x);
void hd_cuda_gelu_erf(hd_backend *be, hd_tensor *y, const hd_tensor *x);
void hd_cuda_gather_rows(hd_backend *be, hd_tensor *y, const hd_tensor *table, const int32_t *ids,
                         int64_t n);
void hd_cuda_set_rows(hd_backend *be, hd_tensor *y, const hd_tensor *src, const int32_t *idx,
                      int64_t n);
void hd_cuda_add_rows(hd_backend *be, hd_tensor *y, const hd_tensor *src, const int32_t *idx,
                      int64_t n);

/* Shared by copy (cuda_backend.cu) and linear (gemm.cu): y[r][c] = float(src[r][c]) for a
 * BF16/F16/F32 source, or bias[c] (0 when bias is NULL) broadcast over the rows. */
void hd_cuda_convert_rows(hd_cuda *c, float *y, int64_t ldy, int dtype, const void *src,
                          int64_t lds, int64_t rows, int64_t cols);
/* dst [rows, cols] (dense) = bf16(round to nearest even of src [rows, cols], row stride lds). */
void hd_cuda_round_bf16(hd_cuda *c, __nv_bfloat16 *dst, const float *src, int64_t lds,
                        int64_t rows, int64_t cols);
/* Tensor-core attention of the fast option (attention_tc.cu): 0 when queued, -1 on a recorded
 * failure, 1 when the shape is not one it runs (the float32 kernel then runs). */
int hd_cuda_attention_tc(hd_cuda *c, hd_tensor *out, const hd_tensor *q, const hd_tensor *k,
                         const hd_tensor *v, int n_heads, int n_kv_heads, int head_dim,
                         float scale, hd_attn_mask mask);
/* Releases the cached cublasLt plans (destroy). */
void hd_cuda_plans_free(hd_cuda *c);
void hd_cuda_broadcast_row(hd_cuda *c, float *y, int64_t ldy, const hd_tensor *bias,
                           int64_t rows, int64_t cols);

#endif
