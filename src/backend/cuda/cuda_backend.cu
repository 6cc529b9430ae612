/* The CUDA backend: construction, failure recording, memory (alloc, weight upload, read/write,
 * copy, fill) and the op table. The ops themselves live in the other files of this folder.
 *
 * Numerics (default): every weight is widened to float32 once, at upload, and linear runs
 * cuBLAS SGEMM-class kernels with the pedantic float32 compute type (never TF32), so results
 * match the CPU backend at float32 accuracy. The 8B model then takes ~33 GB of device memory.
 * With gemm_bf16 BF16 weights stay BF16 (~17 GB) and linear rounds x to bf16 (gemm.cu). */
#include "backend/cuda/cuda_internal.h"

#include <stdlib.h>

/* ---- failures ---- */

int hd_cuda_fail(hd_cuda *c, int code, const char *fmt, ...) {
    if (c->err_code == 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(c->err_msg, sizeof c->err_msg, fmt, ap);
        va_end(ap);
        c->err_code = code;
    }
    return -1;
}

int hd_cuda_check(hd_cuda *c, cudaError_t rc, const char *what) {
    if (rc == cudaSuccess) return 0;
    return hd_cuda_fail(c, HD_EIO, "cuda backend: %s: %s (%s)", what, cudaGetErrorString(rc),
                        cudaGetErrorName(rc));
}

static const char *blas_status_name(cublasStatus_t rc) {
    switch (rc) {
    case CUBLAS_STATUS_NOT_INITIALIZED: return "not initialized";
    case CUBLAS_STATUS_ALLOC_FAILED: return "allocation failed";
    case CUBLAS_STATUS_INVALID_VALUE: return "invalid value";
    case CUBLAS_STATUS_ARCH_MISMATCH: return "architecture mismatch";
    case CUBLAS_STATUS_MAPPING_ERROR: return "mapping error";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "execution failed";
    case CUBLAS_STATUS_INTERNAL_ERROR: return "internal error";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "not supported";
    default: return "error";
    }
}

int hd_cuda_check_blas(hd_cuda *c, cublasStatus_t rc, const char *what) {
    if (rc == CUBLAS_STATUS_SUCCESS) return 0;
    return hd_cuda_fail(c, HD_EIO, "cuda backend: %s: cuBLAS status %d (%s)", what, (int)rc,
                        blas_status_name(rc));
}

int hd_cuda_launched(hd_cuda *c, const char *what) {
    return hd_cuda_check(c, cudaGetLastError(), what);
}

hd_cuda *hd_cuda_begin(hd_backend *be) {
    hd_cuda *c = hd_cuda_of(be);
    c->op_seq++; /* ends the validity of a rounded linear input (gemm.cu) */
    if (c->err_code != 0) return NULL;
    /* the device is per host thread: the caller may use the backend from another thread */
    if (hd_cuda_check(c, cudaSetDevice(c->device), "cudaSetDevice") < 0) return NULL;
    return c;
}

int hd_cuda_scratch(hd_cuda *c, void **buf, size_t *cap, size_t bytes, const char *what) {
    if (*cap >= bytes && *buf) return 0;
    /* earlier ops may still read the old buffer */
    if (hd_cuda_check(c, cudaStreamSynchronize(c->stream), what) < 0) return -1;
    if (*buf) cudaFree(*buf);
    *buf = NULL;
    *cap = 0;
    size_t want = bytes < 4096 ? 4096 : bytes;
    cudaError_t rc = cudaMalloc(buf, want);
    if (rc != cudaSuccess) {
        *buf = NULL;
        cudaGetLastError();
        return hd_cuda_fail(c, HD_ENOMEM, "cuda backend: %s: out of device memory for %zu bytes "
                            "of scratch", what, want);
    }
    *cap = want;
    return 0;
}

/* ---- element conversion kernels ---- */

static __global__ void convert_rows_kernel(float *y, int64_t ldy, int dtype, const void *src,
                                           int64_t lds, int64_t rows, int64_t cols) {
    for (int64_t r = blockIdx.y; r < rows; r += gridDim.y)
        for (int64_t col = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; col < cols;
             col += (int64_t)gridDim.x * blockDim.x)
            y[r * ldy + col] = hd_cu_load(dtype, src, r * lds + col);
}

void hd_cuda_convert_rows(hd_cuda *c, float *y, int64_t ldy, int dtype, const void *src,
                          int64_t lds, int64_t rows, int64_t cols) {
    if (rows <= 0 || cols <= 0) return;
    convert_rows_kernel<<<hd_cuda_grid_2d(rows, cols), HD_CUDA_THREADS, 0, c->stream>>>(
        y, ldy, dtype, src, lds, rows, cols);
    hd_cuda_launched(c, "convert kernel");
}

static __global__ void broadcast_row_kernel(float *y, int64_t ldy, int dtype, const void *row,
                                            int64_t rows, int64_t cols) {
    for (int64_t r = blockIdx.y; r < rows; r += gridDim.y)
        for (int64_t col = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; col < cols;
             col += (int64_t)gridDim.x * blockDim.x)
            y[r * ldy + col] = row ? hd_cu_load(dtype, row, col) : 0.0f;
}

void hd_cuda_broadcast_row(hd_cuda *c, float *y, int64_t ldy, const hd_tensor *bias,
                           int64_t rows, int64_t cols) {
    if (rows <= 0 || cols <= 0) return;
    broadcast_row_kernel<<<hd_cuda_grid_2d(rows, cols), HD_CUDA_THREADS, 0, c->stream>>>(
        y, ldy, bias ? (int)bias->dtype : (int)HD_F32, bias ? bias->data : NULL, rows, cols);
    hd_cuda_launched(c, "bias kernel");
}

static __global__ void fill_kernel(float *y, int64_t ldy, float value, int64_t rows,
                                   int64_t cols) {
    for (int64_t r = blockIdx.y; r < rows; r += gridDim.y)
        for (int64_t col = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; col < cols;
             col += (int64_t)gridDim.x * blockDim.x)
            y[r * ldy + col] = value;
}

static __global__ void widen_kernel(float *dst, int dtype, const void *src, int64_t n) {
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x)
        dst[i] = hd_cu_load(dtype, src, i);
}

/* ---- memory ---- */

static int shape_ok(int64_t rows, int64_t cols, size_t es) {
    return rows >= 0 && cols >= 0 && (cols == 0 || rows <= INT64_MAX / cols) &&
           (uint64_t)(rows * cols) <= (SIZE_MAX / 2) / es;
}

/* cudaMalloc of at least 256 bytes (so an empty tensor still has a non-NULL address). */
static int device_alloc(void **p, size_t bytes, hd_error *e, const char *what, int64_t rows,
                        int64_t cols, hd_dtype dt) {
    *p = NULL;
    if (bytes < 256) bytes = 256;
    cudaError_t rc = cudaMalloc(p, bytes);
    if (rc != cudaSuccess) {
        *p = NULL;
        cudaGetLastError(); /* an allocation failure is not sticky: clear it */
        return hd_fail(e, HD_ENOMEM, "cuda backend: %s: out of device memory for %lld x %lld %s "
                       "(%s)", what, (long long)rows, (long long)cols, hd_dtype_name(dt),
                       cudaGetErrorString(rc));
    }
    return 0;
}

static int cuda_alloc(hd_backend *be, hd_tensor *t, hd_dtype dtype, int64_t rows, int64_t cols,
                      hd_error *e) {
    hd_cuda *c = hd_cuda_of(be);
    c->op_seq++;
    memset(t, 0, sizeof *t);
    size_t es = hd_dtype_size(dtype);
    if (es == 0) return hd_fail(e, HD_EINVAL, "cuda backend: alloc: invalid dtype %d", (int)dtype);
    if (!shape_ok(rows, cols, es))
        return hd_fail(e, HD_EINVAL, "cuda backend: alloc: bad shape %lld x %lld",
                       (long long)rows, (long long)cols);
    cudaError_t rc = cudaSetDevice(c->device);
    if (rc != cudaSuccess)
        return hd_fail(e, HD_EIO, "cuda backend: alloc: cudaSetDevice: %s", cudaGetErrorString(rc));
    size_t bytes = (size_t)(rows * cols) * es;
    void *p;
    HD_TRY(device_alloc(&p, bytes, e, "alloc", rows, cols, dtype));
    /* zeroed, so padding and never-written rows hold no stale data */
    rc = cudaMemsetAsync(p, 0, bytes, c->stream);
    if (rc != cudaSuccess) {
        cudaFree(p);
        return hd_fail(e, HD_EIO, "cuda backend: alloc: cudaMemsetAsync: %s",
                       cudaGetErrorString(rc));
    }
    t->dtype = dtype;
    t->rows = rows;
    t->cols = cols;
    t->stride = cols;
    t->data = p;
    t->owned = 1;
    return 0;
}

static void cuda_free(hd_backend *be, hd_tensor *t) {
    hd_cuda *c = hd_cuda_of(be);
    c->op_seq++;
    if (t->owned && t->data) {
        cudaSetDevice(c->device);
        /* queued ops may still use the memory */
        hd_cuda_check(c, cudaStreamSynchronize(c->stream), "free: cudaStreamSynchronize");
        hd_cuda_check(c, cudaFree(t->data), "cudaFree");
    }
    t->data = NULL;
    t->owned = 0;
}

/* The device kernels read BF16/F16/F32 weights; block-quantized formats are CPU-only for now. */
static int cuda_supports(hd_backend *be, hd_weight_use use, hd_dtype dtype) {
    (void)be;
    (void)use;
    return dtype == HD_BF16 || dtype == HD_F16 || dtype == HD_F32;
}

/* Elements per staged chunk when a weight is widened on upload (32 MB of BF16/F16). */
#define UPLOAD_CHUNK ((int64_t)16 << 20)

/* Uploads a weight. BF16/F16 weights are widened to float32 on the device (kept BF16 with the
 * gemm_bf16 option); the result is owned by the caller (hd_tensor_free releases it). */
static int cuda_weight(hd_backend *be, hd_tensor *t, hd_dtype dtype, int64_t rows, int64_t cols,
                       const void *host, hd_error *e) {
    hd_cuda *c = hd_cuda_of(be);
    c->op_seq++;
    memset(t, 0, sizeof *t);
    if (dtype != HD_BF16 && dtype != HD_F16 && dtype != HD_F32)
        return hd_fail(e, HD_EUNSUPPORTED,
                       "cuda backend: weight dtype %s is not supported (BF16, F16, F32 only)",
                       hd_dtype_name(dtype));
    if (!shape_ok(rows, cols, 4) || (!host && rows * cols > 0))
        return hd_fail(e, HD_EINVAL, "cuda backend: weight: bad shape %lld x %lld or no data",
                       (long long)rows, (long long)cols);
    if (c->err_code != 0)
        return hd_fail(e, c->err_code, "%s", c->err_msg);
    cudaError_t rc = cudaSetDevice(c->device);
    if (rc != cudaSuccess)
        return hd_fail(e, HD_EIO, "cuda backend: weight: cudaSetDevice: %s", cudaGetErrorString(rc));

    hd_dtype stored = (dtype == HD_BF16 && c->fast) ? HD_BF16 : HD_F32;
    int64_t n = rows * cols;
    void *p;
    HD_TRY(device_alloc(&p, (size_t)n * hd_dtype_size(stored), e, "weight", rows, cols, stored));
    if (n > 0 && stored == dtype) {
        rc = cudaMemcpyAsync(p, host, (size_t)n * hd_dtype_size(dtype), cudaMemcpyHostToDevice,
                             c->stream);
    } else if (n > 0) {
        /* 16-bit host data through a staging buffer, widened chunk by chunk */
        int64_t chunk = n < UPLOAD_CHUNK ? n : UPLOAD_CHUNK;
        void *stage = NULL;
        rc = cudaMalloc(&stage, (size_t)chunk * 2);
        for (int64_t i0 = 0; i0 < n && rc == cudaSuccess; i0 += chunk) {
            int64_t m = n - i0 < chunk ? n - i0 : chunk;
            rc = cudaMemcpyAsync(stage, (const uint16_t *)host + i0, (size_t)m * 2,
                                 cudaMemcpyHostToDevice, c->stream);
            if (rc != cudaSuccess) break;
            widen_kernel<<<hd_cuda_grid_1d(m), HD_CUDA_THREADS, 0, c->stream>>>(
                (float *)p + i0, (int)dtype, stage, m);
            rc = cudaGetLastError();
        }
        if (rc == cudaSuccess) rc = cudaStreamSynchronize(c->stream);
        if (stage) cudaFree(stage);
        if (rc == cudaErrorMemoryAllocation) {
            cudaGetLastError();
            cudaFree(p);
            return hd_fail(e, HD_ENOMEM, "cuda backend: weight: out of device memory for the "
                           "upload of %lld x %lld %s", (long long)rows, (long long)cols,
                           hd_dtype_name(dtype));
        }
    }
    if (rc == cudaSuccess) rc = cudaStreamSynchronize(c->stream);
    if (rc != cudaSuccess) {
        cudaFree(p);
        hd_cuda_check(c, rc, "weight upload");
        return hd_fail(e, HD_EIO, "cuda backend: weight upload of %lld x %lld %s: %s",
                       (long long)rows, (long long)cols, hd_dtype_name(dtype),
                       cudaGetErrorString(rc));
    }
    t->dtype = stored;
    t->rows = rows;
    t->cols = cols;
    t->stride = cols;
    t->data = p;
    t->owned = 1;
    return 0;
}

static void cuda_write(hd_backend *be, hd_tensor *dst, const float *src) {
    hd_cuda *c = hd_cuda_begin(be);
    if (!c || dst->rows <= 0 || dst->cols <= 0) return;
    if (dst->dtype != HD_F32) {
        hd_cuda_fail(c, HD_EINVAL, "cuda backend: write: destination is %s, not F32",
                     hd_dtype_name(dst->dtype));
        return;
    }
    size_t w = (size_t)dst->cols * sizeof(float);
    if (hd_cuda_check(c, cudaMemcpy2DAsync(dst->data, (size_t)dst->stride * sizeof(float), src, w,
                                           w, (size_t)dst->rows, cudaMemcpyHostToDevice,
                                           c->stream), "write: cudaMemcpy2DAsync") < 0)
        return;
    /* the caller may reuse src as soon as we return */
    hd_cuda_check(c, cudaStreamSynchronize(c->stream), "write: cudaStreamSynchronize");
}

static void fill_nan(const hd_tensor *src, float *dst) {
    for (int64_t i = 0; i < src->rows * src->cols; i++) dst[i] = NAN;
}

static void cuda_read(hd_backend *be, const hd_tensor *src, float *dst) {
    if (src->rows <= 0 || src->cols <= 0) return;
    hd_cuda *c = hd_cuda_begin(be);
    if (c && src->dtype != HD_F32)
        hd_cuda_fail(c, HD_EINVAL, "cuda backend: read: source is %s, not F32",
                     hd_dtype_name(src->dtype));
    if (!c || c->err_code != 0) {
        fill_nan(src, dst);
        return;
    }
    size_t w = (size_t)src->cols * sizeof(float);
    if (hd_cuda_check(c, cudaMemcpy2DAsync(dst, w, src->data, (size_t)src->stride * sizeof(float),
                                           w, (size_t)src->rows, cudaMemcpyDeviceToHost,
                                           c->stream), "read: cudaMemcpy2DAsync") < 0 ||
        hd_cuda_check(c, cudaStreamSynchronize(c->stream), "read: cudaStreamSynchronize") < 0)
        fill_nan(src, dst);
}

/* src may be float32 or a BF16/F16 weight (widened); dst is float32. */
static void cuda_copy(hd_backend *be, hd_tensor *dst, const hd_tensor *src) {
    hd_cuda *c = hd_cuda_begin(be);
    if (!c || dst->rows <= 0 || dst->cols <= 0) return;
    if (src->dtype == HD_F32) {
        if (dst->data == src->data && dst->stride == src->stride) return;
        size_t w = (size_t)dst->cols * sizeof(float);
        hd_cuda_check(c, cudaMemcpy2DAsync(dst->data, (size_t)dst->stride * sizeof(float),
                                           src->data, (size_t)src->stride * sizeof(float), w,
                                           (size_t)dst->rows, cudaMemcpyDeviceToDevice,
                                           c->stream), "copy: cudaMemcpy2DAsync");
        return;
    }
    hd_cuda_convert_rows(c, (float *)dst->data, dst->stride, (int)src->dtype, src->data,
                         src->stride, dst->rows, dst->cols);
}

static void cuda_fill(hd_backend *be, hd_tensor *dst, float value) {
    hd_cuda *c = hd_cuda_begin(be);
    if (!c || dst->rows <= 0 || dst->cols <= 0) return;
    fill_kernel<<<hd_cuda_grid_2d(dst->rows, dst->cols), HD_CUDA_THREADS, 0, c->stream>>>(
        (float *)dst->data, dst->stride, value, dst->rows, dst->cols);
    hd_cuda_launched(c, "fill kernel");
}

/* Waits for the queued ops and reports the first failure (kept recorded). */
static int cuda_status(hd_backend *be, hd_error *e) {
    hd_cuda *c = hd_cuda_of(be);
    if (c->err_code == 0 && hd_cuda_check(c, cudaSetDevice(c->device), "cudaSetDevice") == 0)
        hd_cuda_check(c, cudaStreamSynchronize(c->stream), "cudaStreamSynchronize");
    if (c->err_code == 0) return 0;
    return hd_fail(e, c->err_code, "%s", c->err_msg);
}

/* ---- construction ---- */

static void cuda_destroy(hd_backend *be) {
    if (!be) return;
    hd_cuda *c = (hd_cuda *)be->impl;
    if (c) {
        cudaSetDevice(c->device);
        if (c->stream) cudaStreamSynchronize(c->stream);
        if (c->blas) cublasDestroy(c->blas);
        if (c->lt) cublasLtDestroy(c->lt);
        if (c->lt_ws) cudaFree(c->lt_ws);
        if (c->idx) cudaFree(c->idx);
        if (c->act) cudaFree(c->act);
        if (c->attn_bf16) cudaFree(c->attn_bf16);
        hd_cuda_plans_free(c);
        if (c->stream) cudaStreamDestroy(c->stream);
        free(c);
    }
    free(be);
}

static const hd_backend_ops cuda_ops = {
    .name = "cuda",
    .destroy = cuda_destroy,
    .alloc = cuda_alloc,
    .free = cuda_free,
    .weight = cuda_weight,
    .supports = cuda_supports,
    .prepare_linear = NULL, /* weights are used as stored */
    .write = cuda_write,
    .read = cuda_read,
    .copy = cuda_copy,
    .fill = cuda_fill,
    .linear = hd_cuda_linear,
    .linears = NULL, /* hd_backend_linears calls linear for each */
    .rmsnorm = hd_cuda_rmsnorm,
    .layernorm = hd_cuda_layernorm,
    .rope = hd_cuda_rope,
    .attention = hd_cuda_attention,
    .add = hd_cuda_add,
    .silu = hd_cuda_silu,
    .silu_mul = hd_cuda_silu_mul,
    .gelu_tanh = hd_cuda_gelu_tanh,
    .gelu_erf = hd_cuda_gelu_erf,
    .gather_rows = hd_cuda_gather_rows,
    .set_rows = hd_cuda_set_rows,
    .add_rows = hd_cuda_add_rows,
    /* training ops: not on this backend (hd_backend_can_train says no) */
    .linear_dx = NULL,
    .linear_dw = NULL,
    .rmsnorm_backward = NULL,
    .attention_lse = NULL,
    .attention_backward = NULL,
    .silu_mul_backward = NULL,
    .silu_backward = NULL,
    .axpby = NULL,
    .sum_squares = NULL,
    .adamw = NULL,
    .status = cuda_status,
};

/* cublasLt workspace: enough for the split-K algorithms of the model's shapes. */
#define LT_WORKSPACE ((size_t)32 << 20)

/* The module's two exports (backend.h): everything else in it is hidden. */
extern "C" __attribute__((visibility("default"))) uint32_t hd_backend_cuda_abi(void) {
    return hd_backend_abi();
}

extern "C" __attribute__((visibility("default"))) int
hd_backend_cuda_create(hd_backend **out, const hd_backend_options *opt, hd_error *e) {
    *out = NULL;
    hd_backend_options o;
    memset(&o, 0, sizeof o);
    if (opt) o = *opt;
    int n = 0;
    cudaError_t rc = cudaGetDeviceCount(&n);
    if (rc != cudaSuccess || n <= 0) {
        cudaGetLastError();
        return hd_fail(e, HD_EUNSUPPORTED, "cuda backend: no CUDA device available (%s)",
                       rc != cudaSuccess ? cudaGetErrorString(rc) : "0 devices");
    }
    if (o.device < 0 || o.device >= n)
        return hd_fail(e, HD_EINVAL, "cuda backend: device %d out of range 0..%d", o.device,
                       n - 1);
    int major = 0, minor = 0;
    if (cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, o.device) !=
            cudaSuccess ||
        cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, o.device) !=
            cudaSuccess) {
        cudaGetLastError();
        return hd_fail(e, HD_EIO, "cuda backend: device %d: cannot query its compute capability",
                       o.device);
    }
    /* the kernels are built for sm_90 (plus PTX that newer GPUs compile at load time) */
    if (major < 9)
        return hd_fail(e, HD_EUNSUPPORTED, "cuda backend: device %d has compute capability "
                       "%d.%d; this build needs 9.0 or newer (H100/H200)", o.device, major, minor);

    hd_backend *be = (hd_backend *)calloc(1, sizeof *be);
    hd_cuda *c = (hd_cuda *)calloc(1, sizeof *c);
    if (!be || !c) {
        free(be);
        free(c);
        return hd_fail(e, HD_ENOMEM, "cuda backend: out of memory");
    }
    be->ops = &cuda_ops;
    be->impl = c;
    c->device = o.device;
    c->fast = o.gemm_bf16 != 0;
    /* measuring aids (docs/CUDA.md): the fast option with the float32 attention kernel (f32)
     * or the 16-rows-per-warp tensor-core kernel (tc1) */
    const char *attn = getenv("HIDREAM_CUDA_ATTN");
    c->attn_f32 = attn && strcmp(attn, "f32") == 0;
    c->attn_variant = attn && strcmp(attn, "tc1") == 0;
    const char *step = "cudaSetDevice";
    rc = cudaSetDevice(c->device);
    if (rc == cudaSuccess) {
        step = "cudaStreamCreate";
        rc = cudaStreamCreateWithFlags(&c->stream, cudaStreamNonBlocking);
    }
    if (rc == cudaSuccess) {
        step = "cudaMalloc (cublasLt workspace)";
        rc = cudaMalloc(&c->lt_ws, LT_WORKSPACE);
        if (rc == cudaSuccess) c->lt_ws_size = LT_WORKSPACE;
    }
    if (rc != cudaSuccess) {
        cudaGetLastError();
        cuda_destroy(be);
        return hd_fail(e, HD_EIO, "cuda backend: device %d: %s: %s", o.device, step,
                       cudaGetErrorString(rc));
    }
    /* handles go through locals: a failed create leaves nothing for destroy to release */
    cublasHandle_t blas = NULL;
    cublasLtHandle_t lt = NULL;
    step = "cublasCreate";
    cublasStatus_t bs = cublasCreate(&blas);
    if (bs == CUBLAS_STATUS_SUCCESS) {
        c->blas = blas;
        step = "cublasSetStream";
        bs = cublasSetStream(c->blas, c->stream);
    }
    if (bs == CUBLAS_STATUS_SUCCESS) {
        /* float32 stays float32: no TF32 or emulated tensor-core paths */
        step = "cublasSetMathMode";
        bs = cublasSetMathMode(c->blas, CUBLAS_PEDANTIC_MATH);
    }
    if (bs == CUBLAS_STATUS_SUCCESS) {
        step = "cublasLtCreate";
        bs = cublasLtCreate(&lt);
        if (bs == CUBLAS_STATUS_SUCCESS) c->lt = lt;
    }
    if (bs != CUBLAS_STATUS_SUCCESS) {
        cuda_destroy(be);
        return hd_fail(e, HD_EIO, "cuda backend: device %d: %s: cuBLAS status %d (%s)", o.device,
                       step, (int)bs, blas_status_name(bs));
    }
    *out = be;
    return 0;
}
