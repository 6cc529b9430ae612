/* rope: rotate-half rotary embedding in place, tables [S, head_dim] float32. One thread per
 * rotated pair (d, d + head_dim/2) of a head, so the in-place update never races. Products and
 * sums are rounded separately (no FMA contraction), as the CPU backend computes them. */
#include "backend/cuda/cuda_internal.h"

static __global__ void rope_kernel(float *x, int64_t ldx, const float *cs, int64_t ldc,
                                   const float *sn, int64_t lds, int64_t rows, int64_t pairs,
                                   int hd) {
    const int half = hd / 2;
    for (int64_t r = blockIdx.y; r < rows; r += gridDim.y)
        for (int64_t t = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; t < pairs;
             t += (int64_t)gridDim.x * blockDim.x) {
            int64_t h = t / half;
            int d = (int)(t % half);
            float *xh = x + r * ldx + h * hd;
            float c = cs[r * ldc + d], s = sn[r * lds + d];
            float a = xh[d], b = xh[d + half];
            xh[d] = __fsub_rn(__fmul_rn(a, c), __fmul_rn(b, s));
            xh[d + half] = __fadd_rn(__fmul_rn(b, c), __fmul_rn(a, s));
        }
}

void hd_cuda_rope(hd_backend *be, hd_tensor *x, const hd_tensor *cos, const hd_tensor *sin,
                  int head_dim) {
    hd_cuda *c = hd_cuda_begin(be);
    if (!c || head_dim < 2 || x->rows <= 0) return;
    int64_t pairs = x->cols / head_dim * (head_dim / 2);
    if (pairs <= 0) return;
    rope_kernel<<<hd_cuda_grid_2d(x->rows, pairs), HD_CUDA_THREADS, 0, c->stream>>>(
        (float *)x->data, x->stride, (const float *)cos->data, cos->stride,
        (const float *)sin->data, sin->stride, x->rows, pairs, head_dim);
    hd_cuda_launched(c, "rope kernel");
}
