/* rmsnorm (grouped) and layernorm: one warp per normalised vector (a group of a row for
 * rmsnorm, a row for layernorm). As on the CPU, the statistics are accumulated in double and
 * rounded once, so they keep float32 accuracy for any length. y may alias x: a warp reads all of
 * its vector (the reduction) before it writes any of it. */
#include "backend/cuda/cuda_internal.h"

#define WARPS_PER_BLOCK (HD_CUDA_THREADS / 32)

static __device__ __forceinline__ double warp_sum(double v) {
    for (int off = 16; off > 0; off >>= 1) v += __shfl_xor_sync(0xffffffffu, v, off);
    return v;
}

/* Vector v = (row r, group g) of n_groups per row; g = w's length. */
static __global__ void rms_kernel(float *y, int64_t ldy, const float *x, int64_t ldx, int wdt,
                                  const void *w, int64_t g, int64_t n_groups, int64_t n_vec,
                                  float eps) {
    const int lane = threadIdx.x & 31;
    const int64_t n_warps = (int64_t)gridDim.x * WARPS_PER_BLOCK;
    for (int64_t v = (int64_t)blockIdx.x * WARPS_PER_BLOCK + (threadIdx.x >> 5); v < n_vec;
         v += n_warps) {
        int64_t r = v / n_groups, c0 = (v % n_groups) * g;
        const float *xr = x + r * ldx + c0;
        float *yr = y + r * ldy + c0;
        double ss = 0.0;
        for (int64_t i = lane; i < g; i += 32) ss += (double)xr[i] * xr[i];
        ss = warp_sum(ss);
        float inv = (float)(1.0 / sqrt(ss / (double)g + (double)eps));
        for (int64_t i = lane; i < g; i += 32)
            yr[i] = __fmul_rn(__fmul_rn(xr[i], inv), hd_cu_load(wdt, w, i));
    }
}

/* The same with 16-byte accesses (g, the strides and both pointers in float4s); the statistic
 * is the same double sum in another order. */
static __global__ void rms4_kernel(float *y, int64_t ldy, const float *x, int64_t ldx, int wdt,
                                   const void *w, int64_t g, int64_t n_groups, int64_t n_vec,
                                   float eps) {
    const int lane = threadIdx.x & 31;
    const int64_t n_warps = (int64_t)gridDim.x * WARPS_PER_BLOCK, g4 = g / 4;
    for (int64_t v = (int64_t)blockIdx.x * WARPS_PER_BLOCK + (threadIdx.x >> 5); v < n_vec;
         v += n_warps) {
        int64_t r = v / n_groups, c0 = (v % n_groups) * g;
        const float4 *xr = (const float4 *)(x + r * ldx + c0);
        float4 *yr = (float4 *)(y + r * ldy + c0);
        double ss = 0.0;
        for (int64_t i = lane; i < g4; i += 32) {
            float4 t = xr[i];
            ss += (double)t.x * t.x + (double)t.y * t.y + (double)t.z * t.z + (double)t.w * t.w;
        }
        ss = warp_sum(ss);
        float inv = (float)(1.0 / sqrt(ss / (double)g + (double)eps));
        for (int64_t i = lane; i < g4; i += 32) {
            float4 t = xr[i], o;
            o.x = __fmul_rn(__fmul_rn(t.x, inv), hd_cu_load(wdt, w, 4 * i));
            o.y = __fmul_rn(__fmul_rn(t.y, inv), hd_cu_load(wdt, w, 4 * i + 1));
            o.z = __fmul_rn(__fmul_rn(t.z, inv), hd_cu_load(wdt, w, 4 * i + 2));
            o.w = __fmul_rn(__fmul_rn(t.w, inv), hd_cu_load(wdt, w, 4 * i + 3));
            yr[i] = o;
        }
    }
}

void hd_cuda_rmsnorm(hd_backend *be, hd_tensor *y, const hd_tensor *x, const hd_tensor *w,
                     float eps) {
    hd_cuda *c = hd_cuda_begin(be);
    if (!c || w->cols <= 0) return;
    int64_t g = w->cols, n_groups = x->cols / g, n_vec = x->rows * n_groups;
    if (n_vec <= 0) return;
    int64_t blocks = (n_vec + WARPS_PER_BLOCK - 1) / WARPS_PER_BLOCK;
    const unsigned grid = (unsigned)(blocks < 65536 ? blocks : 65536);
    if (g % 4 == 0 && x->stride % 4 == 0 && y->stride % 4 == 0 &&
        (((uintptr_t)x->data | (uintptr_t)y->data) & 15) == 0)
        rms4_kernel<<<grid, HD_CUDA_THREADS, 0, c->stream>>>(
            (float *)y->data, y->stride, (const float *)x->data, x->stride, (int)w->dtype,
            w->data, g, n_groups, n_vec, eps);
    else
        rms_kernel<<<grid, HD_CUDA_THREADS, 0, c->stream>>>(
            (float *)y->data, y->stride, (const float *)x->data, x->stride, (int)w->dtype,
            w->data, g, n_groups, n_vec, eps);
    hd_cuda_launched(c, "rmsnorm kernel");
}

/* One row per warp; w and b may be NULL (no scale / no shift). */
static __global__ void ln_kernel(float *y, int64_t ldy, const float *x, int64_t ldx, int wdt,
                                 const void *w, int bdt, const void *b, int64_t rows,
                                 int64_t cols, float eps) {
    const int lane = threadIdx.x & 31;
    const int64_t n_warps = (int64_t)gridDim.x * WARPS_PER_BLOCK;
    for (int64_t r = (int64_t)blockIdx.x * WARPS_PER_BLOCK + (threadIdx.x >> 5); r < rows;
         r += n_warps) {
        const float *xr = x + r * ldx;
        float *yr = y + r * ldy;
        double s = 0.0;
        for (int64_t i = lane; i < cols; i += 32) s += xr[i];
        double mean = warp_sum(s) / (double)cols, d2 = 0.0;
        for (int64_t i = lane; i < cols; i += 32) {
            double d = xr[i] - mean;
            d2 += d * d;
        }
        d2 = warp_sum(d2);
        float inv = (float)(1.0 / sqrt(d2 / (double)cols + (double)eps)), mf = (float)mean;
        for (int64_t i = lane; i < cols; i += 32) {
            float t = __fmul_rn(__fsub_rn(xr[i], mf), inv);
            if (w) t = __fmul_rn(t, hd_cu_load(wdt, w, i));
            if (b) t = __fadd_rn(t, hd_cu_load(bdt, b, i));
            yr[i] = t;
        }
    }
}

void hd_cuda_layernorm(hd_backend *be, hd_tensor *y, const hd_tensor *x, const hd_tensor *w,
                       const hd_tensor *b, float eps) {
    hd_cuda *c = hd_cuda_begin(be);
    if (!c || x->cols <= 0 || x->rows <= 0) return;
    int64_t blocks = (x->rows + WARPS_PER_BLOCK - 1) / WARPS_PER_BLOCK;
    ln_kernel<<<(unsigned)(blocks < 65536 ? blocks : 65536), HD_CUDA_THREADS, 0, c->stream>>>(
        (float *)y->data, y->stride, (const float *)x->data, x->stride,
        w ? (int)w->dtype : (int)HD_F32, w ? w->data : NULL, b ? (int)b->dtype : (int)HD_F32,
        b ? b->data : NULL, x->rows, x->cols, eps);
    hd_cuda_launched(c, "layernorm kernel");
}
