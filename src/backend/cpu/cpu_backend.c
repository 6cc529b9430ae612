/* The CPU backend: construction, the op table, memory ops and the helpers shared by the ops. */
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/kernels.h"
#include "core/cpu_features.h"
#include "core/error.h"

/* ---- kernel tables ---- */
static void pack_a_scalar(const float *x, int64_t ldx, int mr, int64_t kc, float *ap);
static void pack_b_scalar(hd_dtype dt, const void *w, int64_t ldw, int nr, int64_t kc, float *bp);
static void pack_at_scalar(const float *a, int64_t lda, int mr, int64_t kc, float *ap);

/* Must match the tile sizes hard-wired in gemm.c's scalar micro-kernel. */
#define SCALAR_MR 4
#define SCALAR_NR 8

static void pack_a_scalar(const float *x, int64_t ldx, int mr, int64_t kc, float *ap) {
    hd_gemm_pack_a_generic(x, ldx, mr, kc, ap, SCALAR_MR);
}
static void pack_b_scalar(hd_dtype dt, const void *w, int64_t ldw, int nr, int64_t kc, float *bp) {
    hd_gemm_pack_b_generic(dt, w, ldw, nr, kc, bp, SCALAR_NR);
}
static void pack_at_scalar(const float *a, int64_t lda, int mr, int64_t kc, float *ap) {
    hd_gemm_pack_at_generic(a, lda, mr, kc, ap, SCALAR_MR, 1);
}

const hd_cpu_kernels hd_cpu_kernels_scalar = {
    .isa = HD_ISA_SCALAR,
    .mr = SCALAR_MR, .nr = SCALAR_NR, .ku = 1, .kc = 256, .nc = 256,
    .gemm_ukr = hd_gemm_ukr_scalar, .pack_a = pack_a_scalar, .pack_b = pack_b_scalar,
    .pack_a_t = pack_at_scalar,
    .attn_rb = 4, .attn_pack_kt = hd_attn_pack_kt_scalar, .attn_scores = hd_attn_scores_scalar,
    .attn_softmax = hd_attn_softmax_scalar, .attn_pv = hd_attn_pv_scalar,
    .vexp = hd_vexp_scalar,
    .train = {hd_adamw_row_scalar, hd_silu_grad_row_scalar, hd_rms_grad_row_scalar, hd_axpby_row_scalar,
              hd_sum_squares_row_scalar, hd_attn_grad_tile_scalar,
              hd_col_sum_scalar, hd_dot_row_scalar},
    .rows = {hd_silu_mul_row_scalar, hd_add_row_scalar, hd_rms_row_scalar},
};

const hd_cpu_kernels hd_cpu_kernels_avx2 = {
    .isa = HD_ISA_AVX2,
    .mr = 6, .nr = 16, .ku = 8, .kc = 256, .nc = 512,
    .gemm_ukr = hd_gemm_ukr_avx2, .pack_a = hd_gemm_pack_a_avx2, .pack_b = hd_gemm_pack_b_avx2,
    .pack_a_t = hd_gemm_pack_at_avx2,
    .attn_rb = 4, .attn_pack_kt = hd_attn_pack_kt_avx2, .attn_scores = hd_attn_scores_avx2,
    .attn_softmax = hd_attn_softmax_avx2, .attn_pv = hd_attn_pv_avx2,
    .vexp = hd_vexp_avx2,
    .train = {hd_adamw_row_avx2, hd_silu_grad_row_avx2, hd_rms_grad_row_avx2, hd_axpby_row_avx2,
              hd_sum_squares_row_avx2, hd_attn_grad_tile_avx2,
              hd_col_sum_avx2, hd_dot_row_avx2},
    .rows = {hd_silu_mul_row_avx2, hd_add_row_avx2, hd_rms_row_avx2},
    .gemv_bf16 = hd_gemv_bf16_avx2,
};

/* What the AVX-512 tables share besides linear: attention, exp and the row kernels. */
#define AVX512_REST                                                                            \
    .attn_rb = 6, .attn_pack_kt = hd_attn_pack_kt_avx512, .attn_scores = hd_attn_scores_avx512, \
    .attn_softmax = hd_attn_softmax_avx512, .attn_pv = hd_attn_pv_avx512,                      \
    .vexp = hd_vexp_avx512,                                                                    \
    .train = {hd_adamw_row_avx512, hd_silu_grad_row_avx512, hd_rms_grad_row_avx512,           \
              hd_axpby_row_avx512, hd_sum_squares_row_avx512, hd_attn_grad_tile_avx512,        \
              hd_col_sum_avx512, hd_dot_row_avx512},                                       \
    .rows = {hd_silu_mul_row_avx512, hd_add_row_avx512, hd_rms_row_avx512}

const hd_cpu_kernels hd_cpu_kernels_avx512 = {
    .isa = HD_ISA_AVX512,
    .mr = 14, .nr = 32, .ku = 16, .kc = 384, .nc = 384,
    .gemm_ukr = hd_gemm_ukr_avx512, .pack_a = hd_gemm_pack_a_avx512,
    .pack_b = hd_gemm_pack_b_avx512, .pack_a_t = hd_gemm_pack_at_avx512,
    AVX512_REST,
    .gemv_bf16 = hd_gemv_bf16_avx512,
};

/* Same as AVX-512 except linear, which rounds its operands to bf16 (gemm_bf16 option). */
const hd_cpu_kernels hd_cpu_kernels_avx512_bf16 = {
    .isa = HD_ISA_AVX512,
    .mr = 14, .nr = 32, .ku = 32, .kc = 768, .nc = 384, .pairs = 1,
    .gemm_ukr = hd_gemm_ukr_bf16_avx512, .pack_a = hd_gemm_pack_a_bf16_avx512,
    .pack_b = hd_gemm_pack_b_bf16_avx512,
    AVX512_REST,
};

/* The same with linear on AMX tiles (gemm_amx.c): 32×32 tiles, the same W panels. */
const hd_cpu_kernels hd_cpu_kernels_amx_bf16 = {
    .isa = HD_ISA_AVX512,
    .mr = 32, .nr = 32, .ku = 32, .kc = 256, .nc = 1024, .pairs = 1,
    .gemm_ukr = hd_gemm_ukr_bf16_amx, .pack_a = hd_gemm_pack_a_bf16_amx,
    .pack_b = hd_gemm_pack_b_bf16_avx512,
    AVX512_REST,
};

/* ---- helpers ---- */
void hd_cpu_load_f32(hd_dtype dt, const void *base, int64_t i0, int64_t n, float *dst) {
    if (dt == HD_F32) {
        memcpy(dst, (const float *)base + i0, (size_t)n * sizeof(float));
        return;
    }
    /* i0 and n are whole blocks for a quantized format (hd_backend_bind_weight checks rows) */
    hd_dtype_info(dt)->to_f32((const char *)base + hd_dtype_row_bytes(dt, i0), dst, n);
}

typedef struct rows_job {
    hd_cpu_rows_fn fn;
    void *ctx;
    int64_t rows, chunk;
} rows_job;

static void rows_task(void *ctx, int64_t t, int thread) {
    rows_job *j = ctx;
    int64_t r0 = t * j->chunk, r1 = r0 + j->chunk;
    if (r1 > j->rows) r1 = j->rows;
    if (r0 < r1) j->fn(j->ctx, r0, r1, thread);
}

void hd_cpu_for_rows(hd_cpu *cpu, int64_t rows, int64_t cols, hd_cpu_rows_fn fn, void *ctx) {
    if (rows <= 0) return;
    /* Below ~32k elements a dispatch costs more than it saves. */
    if (cpu->n_threads == 1 || rows == 1 || rows * (cols > 0 ? cols : 1) < 32768) {
        fn(ctx, 0, rows, 0);
        return;
    }
    int64_t n_chunks = (int64_t)cpu->n_threads * 4;
    if (n_chunks > rows) n_chunks = rows;
    rows_job j = {fn, ctx, rows, (rows + n_chunks - 1) / n_chunks};
    hd_pool_run(cpu->pool, (rows + j.chunk - 1) / j.chunk, rows_task, &j);
}

/* ---- memory ---- */
static int cpu_alloc(hd_backend *be, hd_tensor *t, hd_dtype dtype, int64_t rows, int64_t cols,
                     hd_error *e) {
    (void)be;
    memset(t, 0, sizeof *t);
    size_t es = hd_dtype_size(dtype);
    if (es == 0) return hd_fail(e, HD_EINVAL, "cpu backend: alloc: invalid dtype %d", (int)dtype);
    if (rows < 0 || cols < 0 || (cols > 0 && rows > INT64_MAX / cols) ||
        (uint64_t)(rows * cols) > (SIZE_MAX / 2) / es)
        return hd_fail(e, HD_EINVAL, "cpu backend: alloc: bad shape %lld x %lld",
                       (long long)rows, (long long)cols);
    size_t bytes = (size_t)(rows * cols) * es;
    bytes = (bytes + 63) & ~(size_t)63;
    if (bytes == 0) bytes = 64;
    void *p = aligned_alloc(64, bytes);
    if (!p)
        return hd_fail(e, HD_ENOMEM, "cpu backend: alloc: out of memory for %lld x %lld %s",
                       (long long)rows, (long long)cols, hd_dtype_name(dtype));
    t->dtype = dtype;
    t->rows = rows;
    t->cols = cols;
    t->stride = cols;
    t->data = p;
    t->owned = 1;
    return 0;
}

static void cpu_free(hd_backend *be, hd_tensor *t) {
    (void)be;
    if (t->owned) free(t->data);
    free(t->packed);
    t->data = NULL;
    t->packed = NULL;
    t->owned = 0;
}

static int cpu_weight(hd_backend *be, hd_tensor *t, hd_dtype dtype, int64_t rows, int64_t cols,
                      const void *host, hd_error *e) {
    (void)be;
    memset(t, 0, sizeof *t);
    if (!hd_dtype_is_weight(dtype))
        return hd_fail(e, HD_EUNSUPPORTED, "cpu backend: dtype %s is not a weight format",
                       hd_dtype_name(dtype));
    if (rows < 0 || cols < 0 || cols % hd_dtype_block(dtype) != 0 || (!host && rows * cols > 0))
        return hd_fail(e, HD_EINVAL, "cpu backend: weight: bad shape %lld x %lld or no data",
                       (long long)rows, (long long)cols);
    t->dtype = dtype;
    t->rows = rows;
    t->cols = cols;
    t->stride = cols;
    t->data = (void *)host; /* wrapped, not copied: host outlives the backend (mmap) */
    t->owned = 0;
    t->wscale = 1.0f;
    return 0;
}

/* Every weight format serves products (dequantized inside the kernels); block formats serve
 * lookups too; vector parameters are read element-wise, so they stay BF16/F16/F32, and scaled
 * fp8 weights serve products only (their scale is applied in the product's packing). */
static int cpu_supports(hd_backend *be, hd_weight_use use, hd_dtype dtype) {
    (void)be;
    if (!hd_dtype_is_weight(dtype)) return 0;
    int plain = hd_cpu_packs_directly(dtype);
    if (use == HD_USE_VECTOR) return plain;
    if (use == HD_USE_ROWS) return plain || hd_dtype_is_quantized(dtype);
    return 1;
}

/* Q8_0 takes the same memory as int8 panels and multiplies ~5x faster there than dequantized per
 * call; the 4-6-bit block formats would take twice their memory as int8. */
int hd_backend_cpu_int8_packs(hd_dtype dtype) {
    return hd_dtype_is_weight(dtype) && (!hd_dtype_is_quantized(dtype) || dtype == HD_Q8_0);
}

/* gemm_int8: weights hd_backend_cpu_int8_packs takes become int8 panels (gemm_i8.h), the others
 * keep their dequantizing path. gemm_bf16 with bf16 pairs: float weights are packed once into
 * the bf16 kernel's panels (gemm_prepack.c) instead of on every call. */
static int cpu_prepare_linear(hd_backend *be, hd_tensor *t, hd_weight_use use, hd_error *e) {
    hd_cpu *cpu = hd_cpu_of(be);
    if (t->rows * t->cols == 0) return 0;
    if (cpu->int8)
        return hd_backend_cpu_int8_packs(t->dtype)
                   ? hd_cpu_prepare_i8(cpu, t, use == HD_USE_LINEAR_OUTLIERS, e)
                   : 0;
    if (cpu->k->pairs && hd_cpu_packs_directly(t->dtype))
        return hd_cpu_prepack(cpu, t, e);
    return 0;
}

static void cpu_write(hd_backend *be, hd_tensor *dst, const float *src) {
    (void)be;
    for (int64_t r = 0; r < dst->rows; r++)
        memcpy((float *)dst->data + r * dst->stride, src + r * dst->cols,
               (size_t)dst->cols * sizeof(float));
}

static void cpu_read(hd_backend *be, const hd_tensor *src, float *dst) {
    (void)be;
    for (int64_t r = 0; r < src->rows; r++)
        memcpy(dst + r * src->cols, (const float *)src->data + r * src->stride,
               (size_t)src->cols * sizeof(float));
}

typedef struct copy_ctx {
    hd_tensor *dst;
    const hd_tensor *src;
    float value;
} copy_ctx;

static void copy_rows(void *ctx, int64_t r0, int64_t r1, int thread) {
    copy_ctx *c = ctx;
    size_t es = hd_dtype_size(c->src->dtype);
    for (int64_t r = r0; r < r1; r++) {
        float *d = (float *)c->dst->data + r * c->dst->stride;
        const char *s = (const char *)c->src->data + (size_t)(r * c->src->stride) * es;
        if (c->src->dtype == HD_F32) memmove(d, s, (size_t)c->dst->cols * sizeof(float));
        else hd_cpu_load_f32(c->src->dtype, s, 0, c->dst->cols, d);
    }
}

/* src may be float32 or a BF16/F16 weight (widened); dst is float32. */
static void cpu_copy(hd_backend *be, hd_tensor *dst, const hd_tensor *src) {
    copy_ctx c = {dst, src, 0};
    if (dst->data == src->data && dst->stride == src->stride && src->dtype == HD_F32) return;
    hd_cpu_for_rows(hd_cpu_of(be), dst->rows, dst->cols, copy_rows, &c);
}

static void fill_rows(void *ctx, int64_t r0, int64_t r1, int thread) {
    copy_ctx *c = ctx;
    for (int64_t r = r0; r < r1; r++) {
        float *d = (float *)c->dst->data + r * c->dst->stride;
        for (int64_t i = 0; i < c->dst->cols; i++) d[i] = c->value;
    }
}

static void cpu_fill(hd_backend *be, hd_tensor *dst, float value) {
    copy_ctx c = {dst, NULL, value};
    hd_cpu_for_rows(hd_cpu_of(be), dst->rows, dst->cols, fill_rows, &c);
}

/* ---- construction ---- */
static void cpu_destroy(hd_backend *be) {
    if (!be) return;
    hd_cpu *cpu = be->impl;
    if (cpu) {
        hd_pool_destroy(cpu->pool);
        if (cpu->scratch)
            for (int i = 0; i < cpu->n_threads; i++) free(cpu->scratch[i]);
        free(cpu->scratch);
        free(cpu->i8_buf);
        free(cpu->xa_buf);
        free(cpu);
    }
    free(be);
}

static const hd_backend_ops cpu_ops = {
    .name = "cpu",
    .destroy = cpu_destroy,
    .alloc = cpu_alloc,
    .free = cpu_free,
    .weight = cpu_weight,
    .supports = cpu_supports,
    .prepare_linear = cpu_prepare_linear,
    .write = cpu_write,
    .read = cpu_read,
    .copy = cpu_copy,
    .fill = cpu_fill,
    .linear = hd_cpu_linear,
    .linears = hd_cpu_linears,
    .rmsnorm = hd_cpu_rmsnorm,
    .layernorm = hd_cpu_layernorm,
    .rope = hd_cpu_rope,
    .attention = hd_cpu_attention,
    .add = hd_cpu_add,
    .silu = hd_cpu_silu,
    .silu_mul = hd_cpu_silu_mul,
    .gelu_tanh = hd_cpu_gelu_tanh,
    .gelu_erf = hd_cpu_gelu_erf,
    .gather_rows = hd_cpu_gather_rows,
    .set_rows = hd_cpu_set_rows,
    .add_rows = hd_cpu_add_rows,
    .linear_dx = hd_cpu_linear_dx,
    .linear_dw = hd_cpu_linear_dw,
    .rmsnorm_backward = hd_cpu_rmsnorm_backward,
    .attention_lse = hd_cpu_attention_lse,
    .attention_backward = hd_cpu_attention_backward,
    .silu_mul_backward = hd_cpu_silu_mul_backward,
    .silu_backward = hd_cpu_silu_backward,
    .axpby = hd_cpu_axpby,
    .sum_squares = hd_cpu_sum_squares,
    .adamw = hd_cpu_adamw,
};

/* What multiplies bf16 for kernels of family isa: *dot = VDPBF16PS exists (AVX512-BF16), *amx =
 * the AMX tiles are used (present, granted by the OS, not declined with no_amx). */
static void bf16_engine(int isa, const hd_cpu_features *f, const hd_backend_options *o, int *dot,
                        int *amx) {
    *dot = isa == HD_ISA_AVX512 && f->avx512bf16;
    *amx = *dot && f->amx && !o->no_amx;
}

int hd_backend_cpu_native_bf16(const hd_backend_options *opt) {
    hd_backend_options o = {0};
    if (opt) o = *opt;
    hd_cpu_features f;
    hd_cpu_features_detect(&f);
    int dot, amx;
    bf16_engine(o.isa != HD_ISA_BEST ? o.isa : hd_cpu_best_isa(), &f, &o, &dot, &amx);
    /* CPUs with AMX run VDPBF16PS at half the float32 FMA rate: bf16 is fast there only on
     * the tiles, which the OS may withhold */
    return dot && (amx || !f.amx_cpu);
}

int hd_backend_cpu_create(hd_backend **out, const hd_backend_options *opt, hd_error *e) {
    *out = NULL;
    hd_backend_options o = {0};
    if (opt) o = *opt;
    int isa = o.isa == HD_ISA_BEST ? hd_cpu_best_isa() : o.isa;
    if (isa < HD_ISA_SCALAR || isa > HD_ISA_AVX512)
        return hd_fail(e, HD_EINVAL, "cpu backend: isa %d out of range 0..3", o.isa);
    if (!hd_cpu_isa_supported(isa))
        return hd_fail(e, HD_EUNSUPPORTED, "cpu backend: this CPU cannot run the %s kernels",
                       hd_cpu_isa_name(isa));
    int n = o.n_threads > 0 ? o.n_threads : hd_cpu_count();
    if (o.n_threads < 0 || n > 1024)
        return hd_fail(e, HD_EINVAL, "cpu backend: n_threads %d out of range 0..1024",
                       o.n_threads);

    hd_backend *be = calloc(1, sizeof *be);
    hd_cpu *cpu = calloc(1, sizeof *cpu);
    if (!be || !cpu) {
        free(be);
        free(cpu);
        return hd_fail(e, HD_ENOMEM, "cpu backend: out of memory");
    }
    be->ops = &cpu_ops;
    be->impl = cpu;
    cpu->n_threads = n;
    cpu->k = isa == HD_ISA_AVX512 ? &hd_cpu_kernels_avx512
             : isa == HD_ISA_AVX2 ? &hd_cpu_kernels_avx2
                                  : &hd_cpu_kernels_scalar;
    hd_cpu_features feat;
    hd_cpu_features_detect(&feat);
    int native_bf16, amx;
    bf16_engine(isa, &feat, &o, &native_bf16, &amx);
    if (o.gemm_bf16) {
        if (native_bf16) cpu->k = amx ? &hd_cpu_kernels_amx_bf16 : &hd_cpu_kernels_avx512_bf16;
        else cpu->round_bf16 = 1;
    }
    /* the approximate modes run the forward attention in bf16: on AMX tiles where they are
     * used (CPUs with AMX run VDPBF16PS at half the float32 FMA rate), else on VDPBF16PS */
    cpu->attn_bf16 = native_bf16 && !amx && (o.gemm_bf16 || o.gemm_int8);
    cpu->attn_amx = amx && (o.gemm_bf16 || o.gemm_int8);
    if (o.gemm_int8) {
        cpu->int8 = 1;
        int avx2 = isa >= HD_ISA_AVX2;
        cpu->i8_amx = amx;
        cpu->i8_x_offset = !amx && isa == HD_ISA_AVX512 && feat.avx512vnni;
        cpu->i8_ukr = amx                ? NULL /* hd_i8_row_amx, called by the driver */
                      : cpu->i8_x_offset ? hd_i8_ukr_avx512vnni
                      : avx2             ? hd_i8_ukr_avx2
                                         : hd_i8_ukr_scalar;
        cpu->i8_pack_row = isa == HD_ISA_AVX512 ? hd_i8_pack_row_avx512
                           : avx2                ? hd_i8_pack_row_avx2
                                                 : hd_i8_pack_row_scalar;
    }
    /* gemm.c carves the packed W block, one x panel and the bias out of the thread scratch */
    const hd_cpu_kernels *k = cpu->k;
    if ((int64_t)k->kc * k->nc + (int64_t)k->mr * k->kc + k->nc + (int64_t)k->nr * k->kc >
        HD_CPU_SCRATCH_FLOATS) {
        cpu_destroy(be);
        return hd_fail(e, HD_EINVAL, "cpu backend: GEMM blocks of the %s kernels exceed the scratch",
                       hd_cpu_isa_name(isa));
    }
    cpu->scratch = calloc((size_t)n, sizeof *cpu->scratch);
    if (!cpu->scratch) {
        cpu_destroy(be);
        return hd_fail(e, HD_ENOMEM, "cpu backend: out of memory");
    }
    for (int i = 0; i < n; i++) {
        cpu->scratch[i] = aligned_alloc(64, HD_CPU_SCRATCH_FLOATS * sizeof(float));
        if (!cpu->scratch[i]) {
            cpu_destroy(be);
            return hd_fail(e, HD_ENOMEM, "cpu backend: out of memory for thread scratch");
        }
    }
    int rc = hd_pool_create(&cpu->pool, n, e);
    if (rc < 0) {
        cpu_destroy(be);
        return rc;
    }
    *out = be;
    return 0;
}
