/* Element-wise ops on float32 tensors (views allowed; y may alias an input: every element is
 * read and written by the same thread). Same formulas as the CPU backend, including the
 * cancellation-free GELUs: 0.5·(1 + tanh u) = 1/(1 + e^(-2u)) and 1 + erf(z) = erfc(-z). */
#include "backend/cuda/cuda_internal.h"

enum { OP_ADD, OP_SILU, OP_SILU_MUL, OP_GELU_TANH, OP_GELU_ERF };

template <int OP>
static __device__ __forceinline__ float elt(float x, float b) {
    if (OP == OP_ADD) return x + b;
    if (OP == OP_SILU) return x / (1.0f + expf(-x));
    if (OP == OP_SILU_MUL) return x / (1.0f + expf(-x)) * b;
    /* x·σ(2u) with u = sqrt(2/pi)·(x + 0.044715x³) */
    if (OP == OP_GELU_TANH)
        return x / (1.0f + expf(-2.0f * 0.7978845608028654f * (x + 0.044715f * x * x * x)));
    return 0.5f * x * erfcf(-x * 0.70710678118654752f);
}

template <int OP>
static __global__ void elt_kernel(float *y, int64_t ldy, const float *a, int64_t lda,
                                  const float *b, int64_t ldb, int64_t rows, int64_t cols) {
    for (int64_t r = blockIdx.y; r < rows; r += gridDim.y)
        for (int64_t col = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; col < cols;
             col += (int64_t)gridDim.x * blockDim.x)
            y[r * ldy + col] = elt<OP>(a[r * lda + col], b ? b[r * ldb + col] : 0.0f);
}

/* The same with 16-byte accesses: every pointer 16-byte aligned, strides and cols in float4s. */
template <int OP>
static __global__ void elt4_kernel(float4 *y, int64_t ldy, const float4 *a, int64_t lda,
                                   const float4 *b, int64_t ldb, int64_t rows, int64_t cols) {
    for (int64_t r = blockIdx.y; r < rows; r += gridDim.y)
        for (int64_t col = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; col < cols;
             col += (int64_t)gridDim.x * blockDim.x) {
            float4 x = a[r * lda + col], w = b ? b[r * ldb + col] : make_float4(0, 0, 0, 0), v;
            v.x = elt<OP>(x.x, w.x);
            v.y = elt<OP>(x.y, w.y);
            v.z = elt<OP>(x.z, w.z);
            v.w = elt<OP>(x.w, w.w);
            y[r * ldy + col] = v;
        }
}

static int vec4_ok(const hd_tensor *t) {
    return !t || (((uintptr_t)t->data & 15) == 0 && t->stride % 4 == 0);
}

template <int OP>
static void run(hd_backend *be, hd_tensor *y, const hd_tensor *a, const hd_tensor *b) {
    hd_cuda *c = hd_cuda_begin(be);
    if (!c || y->rows <= 0 || y->cols <= 0) return;
    if (y->cols % 4 == 0 && vec4_ok(y) && vec4_ok(a) && vec4_ok(b))
        elt4_kernel<OP><<<hd_cuda_grid_2d(y->rows, y->cols / 4), HD_CUDA_THREADS, 0,
                          c->stream>>>((float4 *)y->data, y->stride / 4,
                                       (const float4 *)a->data, a->stride / 4,
                                       b ? (const float4 *)b->data : NULL, b ? b->stride / 4 : 0,
                                       y->rows, y->cols / 4);
    else
        elt_kernel<OP><<<hd_cuda_grid_2d(y->rows, y->cols), HD_CUDA_THREADS, 0, c->stream>>>(
            (float *)y->data, y->stride, (const float *)a->data, a->stride,
            b ? (const float *)b->data : NULL, b ? b->stride : 0, y->rows, y->cols);
    hd_cuda_launched(c, "element-wise kernel");
}

void hd_cuda_add(hd_backend *be, hd_tensor *y, const hd_tensor *a, const hd_tensor *b) {
    run<OP_ADD>(be, y, a, b);
}
void hd_cuda_silu(hd_backend *be, hd_tensor *y, const hd_tensor *x) {
    run<OP_SILU>(be, y, x, NULL);
}
void hd_cuda_silu_mul(hd_backend *be, hd_tensor *y, const hd_tensor *gate, const hd_tensor *up) {
    run<OP_SILU_MUL>(be, y, gate, up);
}
void hd_cuda_gelu_tanh(hd_backend *be, hd_tensor *y, const hd_tensor *x) {
    run<OP_GELU_TANH>(be, y, x, NULL);
}
void hd_cuda_gelu_erf(hd_backend *be, hd_tensor *y, const hd_tensor *x) {
    run<OP_GELU_ERF>(be, y, x, NULL);
}
