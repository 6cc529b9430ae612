/* Row movement: gather_rows (embedding lookup from a weight table), set_rows, add_rows.
 * The index arrays are host memory: they are copied into a device scratch buffer on the stream
 * (a pageable copy, so the caller may reuse them when the op returns). As on the CPU, an index
 * outside the destination/table leaves that row untouched (set/add) or writes zeros (gather).
 * set/add follow the CPU's order for repeated indices (the last set wins, adds accumulate in
 * index order): strictly increasing indices run fully parallel, any others one thread per
 * column walking the indices in order. */
#include "backend/cuda/cuda_internal.h"

/* Copies n host indices to the device scratch; NULL on a (recorded) failure. */
static const int32_t *upload_idx(hd_cuda *c, const int32_t *idx, int64_t n) {
    size_t bytes = (size_t)n * sizeof(int32_t);
    if (hd_cuda_scratch(c, &c->idx, &c->idx_cap, bytes, "row indices") < 0) return NULL;
    if (hd_cuda_check(c, cudaMemcpyAsync(c->idx, idx, bytes, cudaMemcpyHostToDevice, c->stream),
                      "row indices: cudaMemcpyAsync") < 0)
        return NULL;
    return (const int32_t *)c->idx;
}

static __global__ void gather_kernel(float *y, int64_t ldy, int tdt, const void *table,
                                     int64_t ldt, int64_t trows, const int32_t *ids, int64_t n,
                                     int64_t cols) {
    for (int64_t i = blockIdx.y; i < n; i += gridDim.y) {
        int64_t id = ids[i];
        for (int64_t col = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; col < cols;
             col += (int64_t)gridDim.x * blockDim.x)
            y[i * ldy + col] = id < 0 || id >= trows ? 0.0f : hd_cu_load(tdt, table, id * ldt + col);
    }
}

void hd_cuda_gather_rows(hd_backend *be, hd_tensor *y, const hd_tensor *table, const int32_t *ids,
                         int64_t n) {
    hd_cuda *c = hd_cuda_begin(be);
    if (!c || n <= 0 || y->cols <= 0) return;
    const int32_t *d_ids = upload_idx(c, ids, n);
    if (!d_ids) return;
    gather_kernel<<<hd_cuda_grid_2d(n, y->cols), HD_CUDA_THREADS, 0, c->stream>>>(
        (float *)y->data, y->stride, (int)table->dtype, table->data, table->stride, table->rows,
        d_ids, n, y->cols);
    hd_cuda_launched(c, "gather_rows kernel");
}

/* Distinct destination rows: every (i, column) pair independently. */
static __global__ void scatter_parallel_kernel(float *y, int64_t ldy, int64_t yrows,
                                               const float *src, int64_t lds,
                                               const int32_t *idx, int64_t n, int64_t cols,
                                               int add) {
    for (int64_t i = blockIdx.y; i < n; i += gridDim.y) {
        int64_t id = idx[i];
        if (id < 0 || id >= yrows) continue;
        for (int64_t col = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; col < cols;
             col += (int64_t)gridDim.x * blockDim.x) {
            float s = src[i * lds + col];
            y[id * ldy + col] = add ? y[id * ldy + col] + s : s;
        }
    }
}

/* Any indices: one thread per column applies the rows in order. */
static __global__ void scatter_ordered_kernel(float *y, int64_t ldy, int64_t yrows,
                                              const float *src, int64_t lds, const int32_t *idx,
                                              int64_t n, int64_t cols, int add) {
    for (int64_t col = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; col < cols;
         col += (int64_t)gridDim.x * blockDim.x)
        for (int64_t i = 0; i < n; i++) {
            int64_t id = idx[i];
            if (id < 0 || id >= yrows) continue;
            float s = src[i * lds + col];
            y[id * ldy + col] = add ? y[id * ldy + col] + s : s;
        }
}

static void scatter(hd_backend *be, hd_tensor *y, const hd_tensor *src, const int32_t *idx,
                    int64_t n, int add) {
    hd_cuda *c = hd_cuda_begin(be);
    if (!c || n <= 0 || y->cols <= 0) return;
    int increasing = 1;
    for (int64_t i = 1; i < n && increasing; i++) increasing = idx[i] > idx[i - 1];
    const int32_t *d_idx = upload_idx(c, idx, n);
    if (!d_idx) return;
    if (increasing)
        scatter_parallel_kernel<<<hd_cuda_grid_2d(n, y->cols), HD_CUDA_THREADS, 0, c->stream>>>(
            (float *)y->data, y->stride, y->rows, (const float *)src->data, src->stride, d_idx, n,
            y->cols, add);
    else
        scatter_ordered_kernel<<<hd_cuda_grid_1d(y->cols), HD_CUDA_THREADS, 0, c->stream>>>(
            (float *)y->data, y->stride, y->rows, (const float *)src->data, src->stride, d_idx, n,
            y->cols, add);
    hd_cuda_launched(c, add ? "add_rows kernel" : "set_rows kernel");
}

void hd_cuda_set_rows(hd_backend *be, hd_tensor *y, const hd_tensor *src, const int32_t *idx,
                      int64_t n) {
    scatter(be, y, src, idx, n, 0);
}

void hd_cuda_add_rows(hd_backend *be, hd_tensor *y, const hd_tensor *src, const int32_t *idx,
                      int64_t n) {
    scatter(be, y, src, idx, n, 1);
}
