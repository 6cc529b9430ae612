/* The backend interface: tensors and the ops the networks need.
 *
 * Model code (src/model/) is written once against this table; the CPU backend (src/backend/cpu)
 * and the CUDA backend (src/backend/cuda) implement it. Model code never asks which device it runs
 * on and never touches tensor memory directly: it moves data with write/read and calls ops.
 *
 * Tensors are 2-D row-major matrices with a row stride (in elements), which is all the decoder and
 * the ViT need: a [S, H*hd] activation, a [N, K] weight. Higher-rank weights are viewed as 2-D
 * ([1152,3,2,16,16] -> [1152,1536]). Views (row ranges, column ranges) share memory with their
 * parent and are made with hd_view_rows / hd_view_cols; they must not outlive it.
 *
 * Activations are float32. Weights keep the format they were stored in (BF16, F16, F32 or a GGUF
 * block-quantized format, see core/dtype.h) and are widened inside the kernels; accumulation is
 * float32. Which formats a backend can use for which purpose it says through supports(), asked
 * when a model binds its weights (hd_backend_bind_weight), so a model the backend cannot run
 * fails at load with one line naming the tensor, never in the middle of a forward. All ops are synchronous from the caller's
 * point of view (a backend may queue work, but read() returns finished results). */
#ifndef HD_BACKEND_H
#define HD_BACKEND_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "core/dtype.h"
#include "hidream.h"

typedef struct hd_backend hd_backend;

/* What a bound weight is used for; backends support formats per use. */
typedef enum hd_weight_use {
    HD_USE_LINEAR = 0, /* the w of linear (the forward matrix product) */
    HD_USE_ROWS,       /* a table read by gather_rows (token embeddings) */
    HD_USE_VECTOR,     /* a 1×N parameter: norm weights, biases, positional tables */
    HD_USE_LINEAR_ONCE, /* the w of a product a request runs once, not per step (the vision
                           tower): as HD_USE_LINEAR, but never re-laid out by prepare_linear
                           (int8 would cost its accuracy and save no time) */
    HD_USE_LINEAR_OUTLIERS, /* as HD_USE_LINEAR, for a product whose input rows carry large
                               outliers (the SwiGLU product before down_proj): a backend that
                               quantizes its input per call keeps fine-grained scales there */
    HD_USE_COUNT
} hd_weight_use;

typedef struct hd_tensor {
    hd_dtype dtype;
    int64_t rows, cols;
    int64_t stride;   /* elements between consecutive rows (>= cols) */
    void *data;       /* device memory (host memory for the CPU backend) */
    int owned;        /* 1 if the backend allocated data and hd_tensor_free releases it */
    float wscale;     /* an F8 weight's values are the stored ones × wscale ("scaled fp8");
                         set by hd_backend_bind_weight, unused for other formats */
    void *packed;     /* a weight the backend re-laid out for its products when it was bound
                         (prepare_linear; the CPU int8 panels), owned, freed with the tensor;
                         NULL otherwise. Views drop it and read data. */
} hd_tensor;

/* Attention mask, covering every pattern the models use without materialising a matrix.
 * Query row i has global position p = q_offset + i. It may attend to key j iff
 *   p >= n_causal (a "generation" row: it sees every key), or j <= p (causal).
 * n_causal = 0 gives full attention; q_offset = 0, n_causal = S gives a causal mask;
 * the HiDream hybrid mask over one sequence is q_offset = 0, n_causal = A (the text tokens). */
typedef struct hd_attn_mask {
    int64_t q_offset;
    int64_t n_causal;
} hd_attn_mask;

/* One AdamW update (Loshchilov & Hutter), per element:
 *   g' = g·grad_scale; m = β1·m + (1−β1)·g'; v = β2·v + (1−β2)·g'²
 *   w -= lr·( (m/bc1) / (sqrt(v/bc2) + eps) + weight_decay·w )
 * with bc1 = 1 − β1^step, bc2 = 1 − β2^step computed by the caller. */
typedef struct hd_adamw_step {
    float lr, beta1, beta2, eps, weight_decay;
    float bc1, bc2;
    float grad_scale;
} hd_adamw_step;

typedef struct hd_backend_ops {
    const char *name;
    void (*destroy)(hd_backend *be);

    /* ---- memory ---- */
    int (*alloc)(hd_backend *be, hd_tensor *t, hd_dtype dtype, int64_t rows, int64_t cols,
                 hd_error *e);
    void (*free)(hd_backend *be, hd_tensor *t);
    /* Makes a weight usable by the ops. host points to rows*cols elements of dtype laid out
     * densely; it stays valid (mmap) for the backend's lifetime, so the CPU backend wraps it
     * without copying, a device backend uploads it. */
    int (*weight)(hd_backend *be, hd_tensor *t, hd_dtype dtype, int64_t rows, int64_t cols,
                  const void *host, hd_error *e);
    /* 1 if a weight stored as dtype can serve `use` on this backend (asked at bind time). */
    int (*supports)(hd_backend *be, hd_weight_use use, hd_dtype dtype);
    /* Optional: called once for each weight bound for HD_USE_LINEAR or HD_USE_LINEAR_OUTLIERS
     * (passed as use), after weight(); may set t->packed to a form its linear multiplies faster
     * (the CPU's int8 panels with the gemm_int8 option). NULL or leaving packed NULL: linear
     * reads the weight as stored. */
    int (*prepare_linear)(hd_backend *be, hd_tensor *t, hd_weight_use use, hd_error *e);
    /* Host <-> device for float32 tensors (honouring the stride). */
    void (*write)(hd_backend *be, hd_tensor *dst, const float *src);
    void (*read)(hd_backend *be, const hd_tensor *src, float *dst);
    void (*copy)(hd_backend *be, hd_tensor *dst, const hd_tensor *src); /* same shape */
    void (*fill)(hd_backend *be, hd_tensor *dst, float value);

    /* ---- dense algebra ---- */
    /* y[M,N] = x[M,K] · w[N,K]ᵀ (+ bias[N]); w is a weight of any supported dtype, bias is a
     * 1×N weight or NULL. y must not alias x. */
    void (*linear)(hd_backend *be, hd_tensor *y, const hd_tensor *x, const hd_tensor *w,
                   const hd_tensor *bias);
    /* Optional: ys[i] = x · ws[i]ᵀ for i < n <= HD_LINEARS_MAX, products of one input without
     * bias (q/k/v, gate/up): the backend may prepare x once (the CPU quantizes it once for
     * int8) and run the products as one job. Callers use hd_backend_linears, which falls
     * back to linear when this is NULL. No y may alias x. */
    void (*linears)(hd_backend *be, hd_tensor *const *ys, const hd_tensor *x,
                    const hd_tensor *const *ws, int n);

    /* ---- normalisation ---- */
    /* RMSNorm over each consecutive group of g = w->cols values of every row (g = cols for a
     * layer norm, g = head_dim for per-head QK-norm): y = (x * rsqrt(mean(x²) + eps)) * w.
     * Statistics in float32. y may alias x. */
    void (*rmsnorm)(hd_backend *be, hd_tensor *y, const hd_tensor *x, const hd_tensor *w,
                    float eps);
    /* LayerNorm over each row: (x - mean) * rsqrt(var + eps) * w + b (biased variance). */
    void (*layernorm)(hd_backend *be, hd_tensor *y, const hd_tensor *x, const hd_tensor *w,
                      const hd_tensor *b, float eps);

    /* ---- position ---- */
    /* Rotate-half rotary embedding, in place, on x [S, n_heads*head_dim]: for each head and
     * d < head_dim/2: x'[d] = x[d]c[d] - x[d+h/2]s[d]; x'[d+h/2] = x[d+h/2]c[d] + x[d]s[d]
     * with c = cos[row], s = sin[row] (float32 tables [S, head_dim]). */
    void (*rope)(hd_backend *be, hd_tensor *x, const hd_tensor *cos, const hd_tensor *sin,
                 int head_dim);

    /* ---- attention ---- */
    /* out[Sq, Hq*hd] = softmax(q kᵀ * scale + mask) v, per head, grouped-query (query head n
     * uses kv head n / (Hq/Hkv)). q [Sq, Hq*hd], k and v [Sk, Hkv*hd]. Tiled with an online
     * softmax: never materialises Sq×Sk scores. out must not alias q, k or v. */
    void (*attention)(hd_backend *be, hd_tensor *out, const hd_tensor *q, const hd_tensor *k,
                      const hd_tensor *v, int n_heads, int n_kv_heads, int head_dim, float scale,
                      hd_attn_mask mask);

    /* ---- element-wise (y may alias an input) ---- */
    void (*add)(hd_backend *be, hd_tensor *y, const hd_tensor *a, const hd_tensor *b);
    void (*silu)(hd_backend *be, hd_tensor *y, const hd_tensor *x);
    void (*silu_mul)(hd_backend *be, hd_tensor *y, const hd_tensor *gate, const hd_tensor *up);
    void (*gelu_tanh)(hd_backend *be, hd_tensor *y, const hd_tensor *x);
    void (*gelu_erf)(hd_backend *be, hd_tensor *y, const hd_tensor *x);

    /* ---- row movement (index arrays are host memory) ---- */
    /* y[i] = float(table[ids[i]]) for i < n; table is a weight [V, D]. */
    void (*gather_rows)(hd_backend *be, hd_tensor *y, const hd_tensor *table,
                        const int32_t *ids, int64_t n);
    /* y[idx[i]] = src[i] for i < n. */
    void (*set_rows)(hd_backend *be, hd_tensor *y, const hd_tensor *src, const int32_t *idx,
                     int64_t n);
    /* y[idx[i]] += src[i] for i < n. */
    void (*add_rows)(hd_backend *be, hd_tensor *y, const hd_tensor *src, const int32_t *idx,
                     int64_t n);

    /* ---- training (src/train, the backward in src/model/uit_train.c) ----
     * Optional: a backend that cannot train leaves these NULL and hd_backend_can_train says so
     * before anything runs. Gradients and optimizer state are float32 tensors from alloc;
     * trainable weights are float32 tensors from alloc (written with write), so linear & co.
     * take them like any weight. "dX = " overwrites, "dX += " accumulates. */
    /* dx[M,K] = (accumulate ? dx : 0) + dy[M,N] · w[N,K]   (w BF16, F16 or F32: frozen weights a
     * model binds for training are never block-quantized) */
    void (*linear_dx)(hd_backend *be, hd_tensor *dx, const hd_tensor *dy, const hd_tensor *w,
                      int accumulate);
    /* dw[N,K] += dy[M,N]ᵀ · x[M,K]; db[1,N] += Σ_rows dy (db may be NULL) */
    void (*linear_dw)(hd_backend *be, hd_tensor *dw, hd_tensor *db, const hd_tensor *dy,
                      const hd_tensor *x);
    /* Backward of y = rmsnorm(x, w, eps) (groups of g = w->cols, as rmsnorm):
     * dx = (accumulate ? dx : 0) + ∂/∂x, dw[1,g] += ∂/∂w (dw may be NULL). x is the forward
     * input; dx may alias dy when accumulate is 0. */
    void (*rmsnorm_backward)(hd_backend *be, hd_tensor *dx, hd_tensor *dw, const hd_tensor *dy,
                             const hd_tensor *x, const hd_tensor *w, float eps, int accumulate);
    /* attention (same contract) that also writes lse[Sq, Hq]: the natural-log sum of
     * exp(score) over the keys row i may see, score = q·k * scale (saved for the backward). */
    void (*attention_lse)(hd_backend *be, hd_tensor *out, hd_tensor *lse, const hd_tensor *q,
                          const hd_tensor *k, const hd_tensor *v, int n_heads, int n_kv_heads,
                          int head_dim, float scale, hd_attn_mask mask);
    /* Flash-style backward (recomputes probabilities from lse, never Sq×Sk): dq = , dk = ,
     * dv = (overwritten; dk/dv summed over the query heads that share a kv head). out and lse
     * are the forward's. dq, dk, dv must not alias each other or any input. */
    void (*attention_backward)(hd_backend *be, hd_tensor *dq, hd_tensor *dk, hd_tensor *dv,
                               const hd_tensor *dout, const hd_tensor *q, const hd_tensor *k,
                               const hd_tensor *v, const hd_tensor *out, const hd_tensor *lse,
                               int n_heads, int n_kv_heads, int head_dim, float scale,
                               hd_attn_mask mask);
    /* Backward of y = silu(gate) * up: dgate = dy·up·silu'(gate), dup = dy·silu(gate)
     * (overwritten; dgate/dup may alias dy, not each other). */
    void (*silu_mul_backward)(hd_backend *be, hd_tensor *dgate, hd_tensor *dup,
                              const hd_tensor *dy, const hd_tensor *gate, const hd_tensor *up);
    /* dx = dy · silu'(x) (dx may alias dy) */
    void (*silu_backward)(hd_backend *be, hd_tensor *dx, const hd_tensor *dy, const hd_tensor *x);
    /* y = a·x + b·y, element-wise (EMA, gradient scaling with x == y) */
    void (*axpby)(hd_backend *be, hd_tensor *y, float a, const hd_tensor *x, float b);
    /* Σ x² in double (global-norm clipping) */
    double (*sum_squares)(hd_backend *be, const hd_tensor *x);
    /* One AdamW step on w with gradient g·p->grad_scale, moments m, v (decoupled decay). */
    void (*adamw)(hd_backend *be, hd_tensor *w, const hd_tensor *g, hd_tensor *m, hd_tensor *v,
                  const struct hd_adamw_step *p);

    /* ---- failures ---- */
    /* Ops have no error return. A device backend records the first failure of an op (a device
     * or library error, a shape it cannot run); from then on its ops do nothing and read()
     * fills NaN. status() waits for queued work and returns 0, or that failure's code with its
     * one-line message in e (it stays recorded). NULL where ops cannot fail (the CPU backend);
     * callers use hd_backend_status. */
    int (*status)(hd_backend *be, hd_error *e);
} hd_backend_ops;

struct hd_backend {
    const hd_backend_ops *ops;
    void *impl;
};

/* ---- construction ---- */
typedef struct hd_backend_options {
    int n_threads;   /* CPU: worker threads (0 = number of online CPUs) */
    int isa;         /* CPU: 0 = best available, 1 = scalar, 2 = AVX2, 3 = AVX-512 (tests) */
    int device;      /* CUDA: device index */
    /* CPU: round activations to bf16 inside linear, bf16-level accuracy like the official GPU
     * code. With the AVX-512 kernels on a CPU with AVX512-BF16 the products run on dpbf16ps
     * (faster); elsewhere x is rounded and the float32 kernels run (same numerics, no gain).
     * Off (0) by default.
     * CUDA: BF16 weights stay BF16 on the device (half the memory) and linear with such a
     * weight rounds x to bf16 and runs cublasLt bf16 x bf16 -> float32. */
    int gemm_bf16;
    /* CPU: linear with a BF16/F16/F32/F8 weight runs in int8 (gemm_i8.h): W quantized per
     * output channel once at bind (then held as int8: half of bf16), x per row at each call,
     * integer products, float32 epilogue. About 1e-2 relative error per product; tied
     * embedding lookups keep the stored weights. Block-quantized weights keep their path. */
    int gemm_int8;
    /* CPU: gemm_bf16 and gemm_int8 on the AVX-512 kernels (VDPBF16PS, VPDPBUSD) even where
     * AMX tiles exist (tests and benchmarks compare the two) */
    int no_amx;
} hd_backend_options;

int hd_backend_cpu_create(hd_backend **out, const hd_backend_options *opt, hd_error *e);
/* hd_backend_native_bf16 for the CPU backend (cpu_backend.c). */
int hd_backend_cpu_native_bf16(const hd_backend_options *opt);
/* 1 if the CPU's gemm_int8 option re-lays a product's weight of this dtype out as int8 panels
 * (float formats and Q8_0; the 4-6-bit block formats keep their stored form). */
int hd_backend_cpu_int8_packs(hd_dtype dtype);
/* The CUDA backend lives in a module, libhidream_cuda.so, loaded on first use so that CPU runs
 * never map the CUDA libraries. It exports these two symbols; hd_backend_create checks that the
 * module was built from the same interface (hd_backend_abi) before calling it. The module is
 * looked for at $HIDREAM_CUDA_MODULE, beside the running program, then in the install folder. */
typedef int (*hd_backend_create_fn)(hd_backend **out, const hd_backend_options *opt,
                                    hd_error *e);
#define HD_BACKEND_CUDA_CREATE "hd_backend_cuda_create"
#define HD_BACKEND_CUDA_ABI "hd_backend_cuda_abi"
#define HD_BACKEND_CUDA_MODULE "libhidream_cuda.so"
/* A fingerprint of the structures both sides share (a stale module is refused, not run). */
static inline uint32_t hd_backend_abi(void) {
    return (uint32_t)(sizeof(hd_backend_ops) * 131u + sizeof(hd_backend_options) * 31u +
                      sizeof(hd_tensor) * 7u + sizeof(hd_error) + (uint32_t)HD_DTYPE_COUNT);
}
/* Creates the backend named "cpu" or "cuda". */
int hd_backend_create(hd_backend **out, const char *name, const hd_backend_options *opt,
                      hd_error *e);
void hd_backend_destroy(hd_backend *be);
/* 1 if the backend `name` created with opt would multiply bf16 natively with gemm_bf16 (cuda:
 * tensor cores; cpu: the AVX-512 kernels on a CPU with AVX512-BF16, on AMX tiles where the CPU
 * has them — without the tiles such a CPU is slower in bf16), so that bf16 products are faster
 * than float32 ones; 0 otherwise (also for an unknown name). Starts nothing. */
int hd_backend_native_bf16(const char *name, const hd_backend_options *opt);

/* Binds a model weight of `rows`×`cols` values stored as dtype at host: checks that dtype is a
 * weight format whose blocks tile the rows and that the backend supports it for `use`, then
 * calls ops->weight. scale multiplies every value of an F8 weight (1 for any other format).
 * Errors are one line (the caller prefixes the tensor name). */
int hd_backend_bind_weight(hd_backend *be, hd_tensor *t, hd_weight_use use, hd_dtype dtype,
                           int64_t rows, int64_t cols, const void *host, float scale,
                           hd_error *e);
const char *hd_weight_use_name(hd_weight_use use);

#define HD_LINEARS_MAX 4
/* ys[i] = x · ws[i]ᵀ for i < n (see ops->linears): one call where the backend has it, else n
 * calls of linear. */
void hd_backend_linears(hd_backend *be, hd_tensor *const *ys, const hd_tensor *x,
                        const hd_tensor *const *ws, int n);

/* ---- helpers shared by every backend (no device access) ---- */
/* (For a block-quantized weight, offsets are whole blocks: c0 a multiple of the block size.) */
static inline hd_tensor hd_view_rows(const hd_tensor *t, int64_t r0, int64_t n) {
    hd_tensor v = *t;
    v.data = (char *)t->data + (size_t)r0 * (size_t)hd_dtype_row_bytes(t->dtype, t->stride);
    v.rows = n;
    v.owned = 0;
    v.packed = NULL;
    return v;
}

static inline hd_tensor hd_view_cols(const hd_tensor *t, int64_t c0, int64_t n) {
    hd_tensor v = *t;
    v.data = (char *)t->data + (size_t)hd_dtype_row_bytes(t->dtype, c0);
    v.cols = n;
    v.owned = 0;
    v.packed = NULL;
    return v;
}

/* Frees t if it owns memory (data or a packed form) and zeroes it (safe on a zeroed tensor). */
static inline void hd_tensor_free(hd_backend *be, hd_tensor *t) {
    if ((t->owned || t->packed) && be) be->ops->free(be, t);
    memset(t, 0, sizeof *t); /* not "= {0}": this header is also compiled as C++ (nvcc) */
}

/* 1 if every training op is implemented (checked before a training run starts). */
static inline int hd_backend_can_train(const hd_backend *be) {
    const hd_backend_ops *o = be->ops;
    return o->linear_dx && o->linear_dw && o->rmsnorm_backward && o->attention_lse &&
           o->attention_backward && o->silu_mul_backward && o->silu_backward && o->axpby &&
           o->sum_squares && o->adamw;
}

/* 0, or the first failure an op of this backend recorded (message in e); see ops->status. */
static inline int hd_backend_status(hd_backend *be, hd_error *e) {
    return be && be->ops->status ? be->ops->status(be, e) : 0;
}

#endif
