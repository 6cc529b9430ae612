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

/* The same for 4 consecutive pairs per thread with 16-byte accesses (head_dim/2, the strides
 * and the pointers in float4s). */
static __global__ void rope4_kernel(float *x, int64_t ldx, const float *cs, int64_t ldc,
                                    const float *sn, int64_t lds, int64_t rows, int64_t quads,
                                    int hd) {
    const int half = hd / 2, hq = half / 4;
    for (int64_t r = blockIdx.y; r < rows; r += gridDim.y)
        for (int64_t t = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; t < quads;
             t += (int64_t)gridDim.x * blockDim.x) {
            int64_t h = t / hq;
            int d = (int)(t % hq) * 4;
            float *xh = x + r * ldx + h * hd;
            float4 c = *(const float4 *)(cs + r * ldc + d), s = *(const float4 *)(sn + r * lds + d);
            float4 a = *(float4 *)(xh + d), b = *(float4 *)(xh + d + half), p, q;
            p.x = __fsub_rn(__fmul_rn(a.x, c.x), __fmul_rn(b.x, s.x));
            p.y = __fsub_rn(__fmul_rn(a.y, c.y), __fmul_rn(b.y, s.y));
            p.z = __fsub_rn(__fmul_rn(a.z, c.z), __fmul_rn(b.z, s.z));
            p.w = __fsub_rn(__fmul_rn(a.w, c.w), __fmul_rn(b.w, s.w));
            q.x = __fadd_rn(__fmul_rn(b.x, c.x), __fmul_rn(a.x, s.x));
            q.y = __fadd_rn(__fmul_rn(b.y, c.y), __fmul_rn(a.y, s.y));
            q.z = __fadd_rn(__fmul_rn(b.z, c.z), __fmul_rn(a.z, s.z));
            q.w = __fadd_rn(__fmul_rn(b.w, c.w), __fmul_rn(a.w, s.w));
            *(float4 *)(xh + d) = p;
            *(float4 *)(xh + d + half) = q;
        }
}

void hd_cuda_rope(hd_backend *be, hd_tensor *x, const hd_tensor *cos, const hd_tensor *sin,
                  int head_dim) {
    hd_cuda *c = hd_cuda_begin(be);
    if (!c || head_dim < 2 || x->rows <= 0) return;
    int64_t pairs = x->cols / head_dim * (head_dim / 2);
    if (pairs <= 0) return;
    if ((head_dim / 2) % 4 == 0 && x->stride % 4 == 0 && cos->stride % 4 == 0 &&
        sin->stride % 4 == 0 &&
        (((uintptr_t)x->data | (uintptr_t)cos->data | (uintptr_t)sin->data) & 15) == 0)
        rope4_kernel<<<hd_cuda_grid_2d(x->rows, pairs / 4), HD_CUDA_THREADS, 0, c->stream>>>(
            (float *)x->data, x->stride, (const float *)cos->data, cos->stride,
            (const float *)sin->data, sin->stride, x->rows, pairs / 4, head_dim);
    else
        rope_kernel<<<hd_cuda_grid_2d(x->rows, pairs), HD_CUDA_THREADS, 0, c->stream>>>(
            (float *)x->data, x->stride, (const float *)cos->data, cos->stride,
            (const float *)sin->data, sin->stride, x->rows, pairs, head_dim);
    hd_cuda_launched(c, "rope kernel");
}
