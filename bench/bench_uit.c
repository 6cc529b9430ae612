/* bench_uit: speed of the Unified Transformer forward at the real 8B shapes on the CPU backend,
 * side by side with the PyTorch baseline (shared/bench/torch_uit_baseline.py).
 *
 * Without --model, random bf16 weights for ONE decoder layer (hidden 4096, 32/8 heads of 128,
 * MLP 12288) plus the HiDream embeddings/head are built in memory, and a 1-layer model is timed:
 * the decoder layer alone (between the probe calls that bracket it) and the whole 1-layer
 * forward (what `torch_uit_baseline.py --layers 1` times). The 36-layer forward is then
 * ESTIMATED as (1-layer forward - layer) + 36 x layer. With --model DIR (e.g. a random 8B model
 * from `hd_make_model --preset 8b`) the real forward of every layer is timed instead.
 *
 * Token counts match the baseline's --text/--sizes: 384 = 128 text + (512/32)^2 patches,
 * 1280 = 256 text + (1024/32)^2 patches. */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define HAVE_X86 1
#endif

#ifdef HIDREAM_HAVE_CUDA
#include <cuda_runtime.h>
#endif

#include "backend/backend.h"
#include "io/config.h"
#include "io/safetensors.h"
#include "core/cpu_features.h"
#include "core/quant.h"
#include "core/threadpool.h"
#include "model/uit.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

typedef struct stats {
    double med, min, max;
} stats;

static stats stats_of(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_d);
    stats s = {v[n / 2], v[0], v[n - 1]};
    return s;
}

/* ---- the machine's fp32 FMA peak ---------------------------------------------------------- */

typedef struct peak_job {
    double seconds;
    double flops;
    int amx; /* 0: the FMA loop; 1, 2: AMX tiles, bf16 or int8 */
} peak_job;

#ifdef HAVE_X86
/* 12 independent FMA chains in named registers hide the FMA latency on two pipes. */
#define FMA12(op)                                                                           \
    do {                                                                                    \
        a0 = op(a0, m, c), a1 = op(a1, m, c), a2 = op(a2, m, c), a3 = op(a3, m, c);         \
        a4 = op(a4, m, c), a5 = op(a5, m, c), a6 = op(a6, m, c), a7 = op(a7, m, c);         \
        a8 = op(a8, m, c), a9 = op(a9, m, c), a10 = op(a10, m, c), a11 = op(a11, m, c);     \
    } while (0)

__attribute__((target("avx512f"))) static double fma_loop_avx512(double seconds) {
    __m512 m = _mm512_set1_ps(0.999999f), c = _mm512_set1_ps(1e-7f);
    __m512 a0 = _mm512_set1_ps(0), a1 = _mm512_set1_ps(1), a2 = _mm512_set1_ps(2),
           a3 = _mm512_set1_ps(3), a4 = _mm512_set1_ps(4), a5 = _mm512_set1_ps(5),
           a6 = _mm512_set1_ps(6), a7 = _mm512_set1_ps(7), a8 = _mm512_set1_ps(8),
           a9 = _mm512_set1_ps(9), a10 = _mm512_set1_ps(10), a11 = _mm512_set1_ps(11);
    double t0 = now_s(), flops = 0;
    do {
        for (int it = 0; it < 100000; it++) FMA12(_mm512_fmadd_ps);
        flops += 100000.0 * 12 * 16 * 2;
    } while (now_s() - t0 < seconds);
    __m512 s = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)),
                             _mm512_add_ps(_mm512_add_ps(a4, a5), _mm512_add_ps(a6, a7)));
    s = _mm512_add_ps(s, _mm512_add_ps(_mm512_add_ps(a8, a9), _mm512_add_ps(a10, a11)));
    float sink[16];
    _mm512_storeu_ps(sink, s);
    return sink[0] == 12345.f ? 0 : flops / (now_s() - t0);
}

__attribute__((target("avx2,fma"))) static double fma_loop_avx2(double seconds) {
    __m256 m = _mm256_set1_ps(0.999999f), c = _mm256_set1_ps(1e-7f);
    __m256 a0 = _mm256_set1_ps(0), a1 = _mm256_set1_ps(1), a2 = _mm256_set1_ps(2),
           a3 = _mm256_set1_ps(3), a4 = _mm256_set1_ps(4), a5 = _mm256_set1_ps(5),
           a6 = _mm256_set1_ps(6), a7 = _mm256_set1_ps(7), a8 = _mm256_set1_ps(8),
           a9 = _mm256_set1_ps(9), a10 = _mm256_set1_ps(10), a11 = _mm256_set1_ps(11);
    double t0 = now_s(), flops = 0;
    do {
        for (int it = 0; it < 100000; it++) FMA12(_mm256_fmadd_ps);
        flops += 100000.0 * 12 * 8 * 2;
    } while (now_s() - t0 < seconds);
    __m256 s = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)),
                             _mm256_add_ps(_mm256_add_ps(a4, a5), _mm256_add_ps(a6, a7)));
    s = _mm256_add_ps(s, _mm256_add_ps(_mm256_add_ps(a8, a9), _mm256_add_ps(a10, a11)));
    float sink[8];
    _mm256_storeu_ps(sink, s);
    return sink[0] == 12345.f ? 0 : flops / (now_s() - t0);
}
#undef FMA12

/* AMX tile peak: four independent TDPBF16PS (TDPBSSD) chains on tiles already loaded, as the
 * 32×32 micro-tile runs them; 16·16·32 bf16 (16·16·64 int8) products of 2 ops each. */
__attribute__((target("amx-tile,amx-bf16,amx-int8"))) static double amx_loop(double seconds,
                                                                             int int8) {
    struct {
        unsigned char palette, start, reserved[14];
        unsigned short colsb[16];
        unsigned char rows[16];
    } cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.palette = 1;
    for (int t = 0; t < 8; t++) cfg.colsb[t] = 64, cfg.rows[t] = 16;
    __asm__ volatile("" ::: "memory"); /* _tile_loadconfig does not declare that it reads cfg */
    _tile_loadconfig(&cfg);
    _tile_zero(0);
    _tile_zero(1);
    _tile_zero(2);
    _tile_zero(3);
    _tile_zero(4);
    _tile_zero(5);
    _tile_zero(6);
    _tile_zero(7);
    double t0 = now_s(), ops = 0;
    do {
        if (int8)
            for (int it = 0; it < 10000; it++) {
                _tile_dpbssd(0, 4, 6);
                _tile_dpbssd(1, 4, 7);
                _tile_dpbssd(2, 5, 6);
                _tile_dpbssd(3, 5, 7);
            }
        else
            for (int it = 0; it < 10000; it++) {
                _tile_dpbf16ps(0, 4, 6);
                _tile_dpbf16ps(1, 4, 7);
                _tile_dpbf16ps(2, 5, 6);
                _tile_dpbf16ps(3, 5, 7);
            }
        ops += 10000.0 * 4 * 16 * 16 * (int8 ? 64 : 32) * 2;
    } while (now_s() - t0 < seconds);
    _tile_release();
    return ops / (now_s() - t0);
}
#endif

static double fma_loop_scalar(double seconds) {
    float a[8] = {0, 1, 2, 3, 4, 5, 6, 7};
    double t0 = now_s(), flops = 0;
    do {
        for (int it = 0; it < 1000000; it++)
            for (int i = 0; i < 8; i++) a[i] = fmaf(a[i], 0.999999f, 1e-7f);
        flops += 1000000.0 * 8 * 2;
    } while (now_s() - t0 < seconds);
    return a[0] == 12345.f ? 0 : flops / (now_s() - t0);
}

static const char *peak_isa = "scalar";

static void *peak_thread(void *arg) {
    peak_job *j = arg;
#ifdef HAVE_X86
    if (j->amx) j->flops = amx_loop(j->seconds, j->amx == 2);
    else if (__builtin_cpu_supports("avx512f")) j->flops = fma_loop_avx512(j->seconds);
    else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        j->flops = fma_loop_avx2(j->seconds);
    else
#endif
        j->flops = fma_loop_scalar(j->seconds);
    return NULL;
}

/* Sum over n_threads concurrent FMA loops (or AMX loops, amx 1: bf16, 2: int8) in GFLOP/s, one
 * 0.3 s trial. */
static double measure_peak_once(int n_threads, int amx) {
#ifdef HAVE_X86
    if (__builtin_cpu_supports("avx512f")) peak_isa = "AVX-512";
    else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) peak_isa = "AVX2";
#endif
    pthread_t th[256];
    peak_job jobs[256];
    if (n_threads > 256) n_threads = 256;
    int started = 0;
    for (int i = 0; i < n_threads; i++) {
        jobs[i].seconds = 0.3;
        jobs[i].flops = 0;
        jobs[i].amx = amx;
        if (pthread_create(&th[i], NULL, peak_thread, &jobs[i]) == 0) started++;
        else break;
    }
    double total = 0;
    for (int i = 0; i < started; i++) {
        pthread_join(th[i], NULL);
        total += jobs[i].flops;
    }
    return total / 1e9;
}

/* The best of five trials: the machine is shared, and a peak is a best case by definition. */
static double measure_peak(int n_threads, int amx) {
    double best = 0;
    for (int i = 0; i < 5; i++) {
        double p = measure_peak_once(n_threads, amx);
        if (p > best) best = p;
    }
    return best;
}

/* ---- a random 8B-shaped model with one decoder layer, in memory --------------------------- */

#define MM_MAX_TENSORS 512

typedef struct mem_model {
    hd_config cfg;
    hd_safetensors st;
    void *bufs[MM_MAX_TENSORS];
    int n_bufs;
} mem_model;

static uint64_t rng = 0x243f6a8885a308d3ull;
static inline uint32_t rnd32(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng >> 16);
}

/* bf16 values uniform in about ±scale: random mantissa, fixed exponent range. */
static void fill_bf16(uint16_t *p, size_t n, float scale) {
    for (size_t i = 0; i < n; i++) {
        float v = ((float)(rnd32() & 0xffff) / 32768.0f - 1.0f) * scale;
        uint32_t u;
        memcpy(&u, &v, 4);
        p[i] = (uint16_t)(u >> 16);
    }
}

static int cmp_tensor(const void *a, const void *b) {
    return strcmp(((const hd_st_tensor *)a)->name, ((const hd_st_tensor *)b)->name);
}

static int mm_add(mem_model *mm, const char *name, int64_t rows, int64_t cols, float scale,
                  float offset, int lazy) {
    size_t n = (size_t)(rows ? rows : 1) * (size_t)cols;
    uint16_t *p = lazy ? calloc(n, 2) : malloc(n * 2);
    if (!p || mm->n_bufs == MM_MAX_TENSORS) {
        free(p);
        return -1;
    }
    if (!lazy) {
        fill_bf16(p, n, scale);
        if (offset != 0)
            for (size_t i = 0; i < n; i++) {
                uint32_t u = (uint32_t)p[i] << 16;
                float f;
                memcpy(&f, &u, 4);
                f += offset;
                memcpy(&u, &f, 4);
                p[i] = (uint16_t)(u >> 16);
            }
    }
    mm->bufs[mm->n_bufs++] = p;
    hd_st_tensor *t = &mm->st.tensors[mm->st.n_tensors++];
    memset(t, 0, sizeof *t);
    t->name = strdup(name);
    t->dtype = HD_BF16;
    t->ndim = rows ? 2 : 1;
    t->shape[0] = rows ? rows : cols;
    t->shape[1] = rows ? cols : 0;
    t->numel = (int64_t)n;
    t->nbytes = n * 2;
    t->data = p;
    t->file = -1;
    return t->name ? 0 : -1;
}

/* Another name for tensor i's data (layers 1.. share layer 0's random values: the speed does
 * not depend on them, and the model is built in a moment; each layer is still uploaded to
 * the backend as its own weights). */
static int mm_alias(mem_model *mm, const char *name, int i) {
    if (mm->st.n_tensors == MM_MAX_TENSORS) return -1;
    hd_st_tensor *t = &mm->st.tensors[mm->st.n_tensors++];
    *t = mm->st.tensors[i];
    t->name = strdup(name);
    return t->name ? 0 : -1;
}

static int mm_build(mem_model *mm, int n_layers) {
    memset(mm, 0, sizeof *mm);
    hd_text_config *c = &mm->cfg.text;
    c->hidden_size = 4096;
    c->intermediate_size = 12288;
    c->num_layers = n_layers;
    c->num_heads = 32;
    c->num_kv_heads = 8;
    c->head_dim = 128;
    c->vocab_size = 151936;
    c->rms_norm_eps = 1e-6;
    c->rope_theta = 5000000.0;
    c->mrope_section[0] = 24;
    c->mrope_section[1] = 20;
    c->mrope_section[2] = 20;
    c->mrope_interleaved = 1;
    mm->cfg.ids.image_pad = 151655;
    mm->cfg.ids.vision_start = 151652;
    mm->cfg.ids.tms = 151673;
    mm->cfg.ids.boi = 151669;
    mm->st.tensors = calloc(MM_MAX_TENSORS, sizeof *mm->st.tensors);
    if (!mm->st.tensors) return -1;
    const int64_t D = 4096, F = 12288, Q = 4096, KV = 1024;
    int rc = 0;
    /* the embedding table is allocated lazily (zero pages) and only the used rows are filled */
    rc |= mm_add(mm, "model.language_model.embed_tokens.weight", 151936, D, 0, 0, 1);
    rc |= mm_add(mm, "model.t_embedder1.mlp.0.weight", D, 256, 0.06f, 0, 0);
    rc |= mm_add(mm, "model.t_embedder1.mlp.0.bias", 0, D, 0.02f, 0, 0);
    rc |= mm_add(mm, "model.t_embedder1.mlp.2.weight", D, D, 0.015f, 0, 0);
    rc |= mm_add(mm, "model.t_embedder1.mlp.2.bias", 0, D, 0.02f, 0, 0);
    rc |= mm_add(mm, "model.x_embedder.proj1.weight", 1024, 3072, 0.018f, 0, 0);
    rc |= mm_add(mm, "model.x_embedder.proj2.weight", D, 1024, 0.03f, 0, 0);
    rc |= mm_add(mm, "model.x_embedder.proj2.bias", 0, D, 0.02f, 0, 0);
    rc |= mm_add(mm, "model.language_model.norm.weight", 0, D, 0.1f, 1.0f, 0);
    rc |= mm_add(mm, "model.final_layer2.linear.weight", 3072, D, 0.015f, 0, 0);
    rc |= mm_add(mm, "model.final_layer2.linear.bias", 0, 3072, 0.02f, 0, 0);
    const char *p = "model.language_model.layers.0.";
    char n[160];
#define L(suffix, r, cc, sc, off) \
    (snprintf(n, sizeof n, "%s%s", p, suffix), mm_add(mm, n, r, cc, sc, off, 0))
    rc |= L("input_layernorm.weight", 0, D, 0.1f, 1.0f);
    rc |= L("self_attn.q_proj.weight", Q, D, 0.027f, 0);
    rc |= L("self_attn.k_proj.weight", KV, D, 0.027f, 0);
    rc |= L("self_attn.v_proj.weight", KV, D, 0.027f, 0);
    rc |= L("self_attn.o_proj.weight", D, Q, 0.027f, 0);
    rc |= L("self_attn.q_norm.weight", 0, 128, 0.1f, 1.0f);
    rc |= L("self_attn.k_norm.weight", 0, 128, 0.1f, 1.0f);
    rc |= L("post_attention_layernorm.weight", 0, D, 0.1f, 1.0f);
    rc |= L("mlp.gate_proj.weight", F, D, 0.027f, 0);
    rc |= L("mlp.up_proj.weight", F, D, 0.027f, 0);
    rc |= L("mlp.down_proj.weight", D, F, 0.016f, 0);
#undef L
    int first = mm->st.n_tensors - 11;
    for (int l = 1; l < n_layers && rc == 0; l++)
        for (int i = first; i < first + 11; i++) {
            const char *suffix = mm->st.tensors[i].name + strlen(p);
            snprintf(n, sizeof n, "model.language_model.layers.%d.%s", l, suffix);
            rc |= mm_alias(mm, n, i);
        }
    qsort(mm->st.tensors, (size_t)mm->st.n_tensors, sizeof *mm->st.tensors, cmp_tensor);
    return rc ? -1 : 0;
}

static void mm_free(mem_model *mm) {
    for (int i = 0; i < mm->st.n_tensors; i++) free(mm->st.tensors[i].name); /* aliases too */
    free(mm->st.tensors);
    for (int i = 0; i < mm->n_bufs; i++) free(mm->bufs[i]);
    memset(mm, 0, sizeof *mm);
}

/* ---- one timed configuration -------------------------------------------------------------- */

typedef struct bench_seq {
    int64_t text, side, L, S, A;
    int64_t n_out; /* values of the predicted patches (L × patch_dim) */
    int32_t *ids, *pos, *out_rows;
    float *vin, *out;
} bench_seq;

static int seq_make(bench_seq *b, int64_t text, int64_t side, const hd_uit *m) {
    memset(b, 0, sizeof *b);
    b->text = text;
    b->side = side;
    int64_t g = side / 32;
    b->L = g * g;
    b->S = text + b->L;
    b->A = text - 1;
    b->ids = malloc((size_t)text * sizeof *b->ids);
    b->pos = malloc((size_t)(3 * b->S) * sizeof *b->pos);
    b->out_rows = malloc((size_t)b->L * sizeof *b->out_rows);
    b->vin = malloc((size_t)(b->L * m->patch_dim) * sizeof *b->vin);
    b->out = malloc((size_t)(b->L * m->patch_dim) * sizeof *b->out);
    b->n_out = b->L * m->patch_dim;
    if (!b->ids || !b->pos || !b->out_rows || !b->vin || !b->out) return -1;
    uint32_t n_ids = m->cfg.vocab_size < 150000 ? (uint32_t)m->cfg.vocab_size : 150000;
    for (int64_t s = 0; s < text; s++) {
        do b->ids[s] = (int32_t)(rnd32() % n_ids);
        while (b->ids[s] == m->ids.image_pad || b->ids[s] == m->ids.tms);
    }
    b->ids[text - 1] = m->ids.tms;
    for (int64_t s = 0; s < b->S; s++) {
        int64_t j = s - text;
        b->pos[s] = (int32_t)(s < text ? s : 4096);
        b->pos[b->S + s] = (int32_t)(s < text ? s : 4096 + j / g);
        b->pos[2 * b->S + s] = (int32_t)(s < text ? s : 4096 + j % g);
    }
    for (int64_t i = 0; i < b->L; i++) b->out_rows[i] = (int32_t)(text + i);
    for (int64_t i = 0; i < b->L * m->patch_dim; i++) b->vin[i] = (float)(rnd32() % 2001) / 1000.f - 1.f;
    return 0;
}

static void seq_free(bench_seq *b) {
    free(b->ids);
    free(b->pos);
    free(b->out_rows);
    free(b->vin);
    free(b->out);
}

/* ||got − ref|| / ||ref|| over n values (the predicted patches of two modes). */
static double rel_err(const float *got, const float *ref, int64_t n) {
    double d2 = 0, r2 = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = (double)got[i] - ref[i];
        d2 += d * d;
        r2 += (double)ref[i] * ref[i];
    }
    return r2 > 0 ? sqrt(d2 / r2) : 0;
}

/* FLOPs of one decoder layer over S rows with A causal rows (multiply-add = 2). */
static double layer_flops(const hd_text_config *c, int64_t S, int64_t A) {
    double D = c->hidden_size, F = c->intermediate_size, Q = (double)c->num_heads * c->head_dim;
    double KV = (double)c->num_kv_heads * c->head_dim;
    double gemm = 2.0 * (double)S * (D * (Q + 2 * KV) + Q * D + 3 * D * F);
    double keys = (double)A * (double)(A + 1) / 2 + (double)(S - A) * (double)S;
    double attn = 4.0 * keys * Q; /* q·k and p·v over every head */
    return gemm + attn;
}

/* FLOPs outside the layers: timestep MLP, patch embedding of L rows, head on L rows. */
static double io_flops(const hd_uit *m, int64_t L) {
    double D = (double)m->dim, pd = (double)m->patch_dim, bn = (double)m->bottleneck_dim;
    return 2.0 * ((double)m->freq_dim * D + D * D) + 2.0 * (double)L * (pd * bn + bn * D) +
           2.0 * (double)L * D * pd;
}

typedef struct layer_clock {
    double t_embed, t_layer[64];
} layer_clock;

static void clock_probe(void *ctx, int layer, int64_t row0, int64_t n, const float *hidden) {
    layer_clock *lc = ctx;
    double t = now_s();
    if (layer < 0) lc->t_embed = t;
    else if (layer < 64) lc->t_layer[layer] = t;
}

/* Times reps forwards; fills per-rep full forward and (1-layer model) decoder-layer times (ms). */
static int time_forward(hd_uit *m, bench_seq *b, int reps, double *fwd_ms, double *layer_ms) {
    hd_error e = {0};
    hd_uit_seq seq = {b->ids, b->text, b->S, b->pos, b->A, NULL};
    layer_clock lc;
    hd_uit_probe probe = {clock_probe, &lc, 0};
    /* one warm-up call sizes the scratch and faults in the weights */
    if (hd_uit_forward(m, &seq, b->vin, 0.5, b->out_rows, b->L, b->out, &probe, &e) < 0) {
        fprintf(stderr, "bench_uit: forward: %s\n", e.msg);
        return -1;
    }
    for (int r = 0; r < reps; r++) {
        double t0 = now_s();
        hd_uit_forward(m, &seq, b->vin, 0.5, b->out_rows, b->L, b->out, &probe, &e);
        double t1 = now_s();
        fwd_ms[r] = (t1 - t0) * 1e3;
        layer_ms[r] = (lc.t_layer[0] - lc.t_embed) * 1e3;
    }
    return 0;
}

/* ---- the PyTorch baseline ----------------------------------------------------------------- */

typedef struct torch_result {
    int ok;
    double med, min;
} torch_result;

/* The baseline gets the same thread count as the C backend (OMP_NUM_THREADS). */
static torch_result run_torch(const char *shared, const char *dtype, int64_t text, int64_t side,
                              int reps, int threads) {
    torch_result r = {0};
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             "OMP_NUM_THREADS=%d /usr/bin/python3 '%s/bench/torch_uit_baseline.py' --device cpu "
             "--layers 1 --dtype %s --text %lld --sizes %lld --reps %d 2>&1",
             threads, shared, dtype, (long long)text, (long long)side, reps);
    FILE *p = popen(cmd, "r");
    if (!p) return r;
    char line[4096];
    while (fgets(line, sizeof line, p)) {
        const char *a = strstr(line, "\"ms_median\":"), *b = strstr(line, "\"ms_min\":");
        if (a && b) {
            r.med = strtod(a + 12, NULL);
            r.min = strtod(b + 9, NULL);
            r.ok = 1;
        }
    }
    pclose(p);
    return r;
}


/* ---- the GPU path: --backend cuda ----------------------------------------------------------- */

#define GPU_SIZES 2
static const int64_t gpu_text = 200, gpu_sides[GPU_SIZES] = {1024, 2048}; /* 1224, 4296 tokens */

typedef struct torch_gpu {
    int ok[GPU_SIZES];
    double ms[GPU_SIZES], peak_gib[GPU_SIZES];
} torch_gpu;

/* torch_uit_baseline.py on the GPU, bf16 (the official numerics), both sizes in one process. */
static torch_gpu run_torch_gpu(const char *shared, int layers, int reps) {
    torch_gpu r;
    memset(&r, 0, sizeof r);
    const char *py = getenv("HIDREAM_PYTHON");
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             "%s '%s/bench/torch_uit_baseline.py' --device cuda --layers %d --dtype bf16 "
             "--text %lld --sizes %lld,%lld --reps %d 2>&1",
             py ? py : "python3", shared, layers, (long long)gpu_text, (long long)gpu_sides[0],
             (long long)gpu_sides[1], reps);
    FILE *p = popen(cmd, "r");
    if (!p) return r;
    char line[4096];
    while (fgets(line, sizeof line, p)) {
        const char *side = strstr(line, "\"side\":"), *med = strstr(line, "\"ms_median\":");
        const char *peak = strstr(line, "\"peak_GiB\":");
        if (!side || !med) {
            fprintf(stderr, "torch: %s", line);
            continue;
        }
        long long sd = strtoll(side + 7, NULL, 10);
        for (int k = 0; k < GPU_SIZES; k++)
            if (sd == gpu_sides[k]) {
                r.ok[k] = 1;
                r.ms[k] = strtod(med + 12, NULL);
                r.peak_gib[k] = peak ? strtod(peak + 11, NULL) : 0;
            }
    }
    pclose(p);
    return r;
}

/* Hidden state after the embeddings and after every layer: kept (exact mode) or compared with
 * the kept one (bf16 modes), so an error can be followed through the layers. */
typedef struct layer_err {
    int n_layers, keep;
    int64_t numel;
    float *ref[37]; /* index layer + 1 */
    double err[37];
} layer_err;

static void layer_err_probe(void *ctx, int layer, int64_t row0, int64_t n, const float *hidden) {
    layer_err *le = ctx;
    int i = layer + 1;
    (void)row0;
    if (!hidden || i < 0 || i > le->n_layers) return;
    le->numel = n * 4096;
    if (le->keep) {
        le->ref[i] = malloc((size_t)le->numel * sizeof(float));
        if (le->ref[i]) memcpy(le->ref[i], hidden, (size_t)le->numel * sizeof(float));
        return;
    }
    double d2 = 0, r2 = 0;
    if (le->ref[i])
        for (int64_t k = 0; k < le->numel; k++) {
            double d = (double)hidden[k] - le->ref[i][k];
            d2 += d * d;
            r2 += (double)le->ref[i][k] * le->ref[i][k];
        }
    le->err[i] = r2 > 0 ? sqrt(d2 / r2) : -1;
}

/* Milliseconds (median of reps) of one backend op at the model's shapes; the queue is drained
 * (hd_backend_status) before and after each call. */
typedef struct op_job {
    hd_backend *be;
    const hd_uit *m;
    hd_tensor x, q, k, v, att, big, big2, cs, sn;
    hd_attn_mask mask;
} op_job;

static void op_run(op_job *j, int which) {
    const hd_backend_ops *op = j->be->ops;
    const hd_uit_layer *L = &j->m->layers[0];
    switch (which) {
    case 0:
        op->attention(j->be, &j->att, &j->q, &j->k, &j->v, 32, 8, 128, 0.08838834764f, j->mask);
        break;
    case 1: op->linear(j->be, &j->big, &j->x, &L->w_gate, NULL); break;
    case 2: op->linear(j->be, &j->q, &j->big, &L->w_down, NULL); break;
    case 3: op->rmsnorm(j->be, &j->q, &j->x, &L->mlp_norm, 1e-6f); break;
    case 4: op->silu_mul(j->be, &j->big, &j->big, &j->big2); break;
    case 5: op->add(j->be, &j->x, &j->x, &j->q); break;
    case 6: op->rmsnorm(j->be, &j->q, &j->q, &L->q_norm, 1e-6f); break;
    default: op->rope(j->be, &j->q, &j->cs, &j->sn, 128); break;
    }
}

/* One JSON line with the time of each op kind of a decoder layer at S tokens. */
static void gpu_op_times(hd_backend *be, const hd_uit *m, const char *mode, int64_t S, int64_t A,
                         int reps) {
    static const char *names[8] = {"attention", "linear_4096x12288", "linear_12288x4096",
                                   "rmsnorm", "silu_mul_12288", "add_4096", "q_norm", "rope_q"};
    op_job j;
    memset(&j, 0, sizeof j);
    j.be = be;
    j.m = m;
    j.mask = (hd_attn_mask){0, A};
    hd_error e = {0};
    const hd_backend_ops *op = be->ops;
    hd_tensor *ts[9] = {&j.x, &j.q, &j.k, &j.v, &j.att, &j.big, &j.big2, &j.cs, &j.sn};
    const int64_t cols[9] = {4096, 4096, 1024, 1024, 4096, 12288, 12288, 128, 128};
    float *host = malloc((size_t)(S * 12288) * sizeof(float));
    int ok = host != NULL;
    for (int64_t i = 0; ok && i < S * 12288; i++) host[i] = (float)(rnd32() % 2001) / 1000.f - 1.f;
    for (int t = 0; t < 9 && ok; t++) {
        ok = op->alloc(be, ts[t], HD_F32, S, cols[t], &e) == 0;
        if (ok) op->write(be, ts[t], host);
    }
    if (ok) {
        printf("{\"tokens\": %lld, \"mode\": \"%s\", \"op_ms\": {", (long long)S, mode);
        for (int w = 0; w < 8; w++) {
            double v[64];
            op_run(&j, w); /* warm-up: plans, shared-memory limits */
            for (int r = 0; r < reps; r++) {
                hd_backend_status(be, &e);
                double t0 = now_s();
                op_run(&j, w);
                hd_backend_status(be, &e);
                v[r] = (now_s() - t0) * 1e3;
            }
            printf("%s\"%s\": %.3f", w ? ", " : "", names[w], stats_of(v, reps).med);
        }
        printf("}}\n");
    }
    for (int t = 0; t < 9; t++)
        if (ts[t]->data) hd_tensor_free(be, ts[t]);
    free(host);
}

/* Device memory in use (GiB, the CUDA context included), -1 where unknown. */
static double gpu_used_gib(void) {
#ifdef HIDREAM_HAVE_CUDA
    size_t free_b = 0, total_b = 0;
    if (cudaMemGetInfo(&free_b, &total_b) == cudaSuccess)
        return (double)(total_b - free_b) / (1024.0 * 1024.0 * 1024.0);
    cudaGetLastError();
#endif
    return -1;
}

/* One mode: "exact" (float32), "bf16" (gemm_bf16: bf16 GEMMs and tensor-core attention) or
 * "bf16-f32attn" (gemm_bf16 with the float32 attention kernel, the state before it). */
static int gpu_mode(const char *mode, int layers, int reps, const torch_gpu *tg,
                    float *ref_out[GPU_SIZES], layer_err *le, int json) {
    int exact = !strcmp(mode, "exact");
    if (!exact && strcmp(mode, "bf16") && strcmp(mode, "bf16-f32attn") &&
        strcmp(mode, "bf16-tc1")) {
        fprintf(stderr, "bench_uit: unknown mode '%s' (exact, bf16, bf16-f32attn, bf16-tc1)\n",
                mode);
        return -1;
    }
    rng = 0x243f6a8885a308d3ull; /* every mode gets the same weights and inputs */
    if (!strcmp(mode, "bf16-f32attn")) setenv("HIDREAM_CUDA_ATTN", "f32", 1);
    else if (!strcmp(mode, "bf16-tc1")) setenv("HIDREAM_CUDA_ATTN", "tc1", 1);
    else unsetenv("HIDREAM_CUDA_ATTN");
    hd_error e = {0};
    hd_backend *be = NULL;
    hd_backend_options opt = {0};
    opt.gemm_bf16 = !exact;
    mem_model mm;
    memset(&mm, 0, sizeof mm);
    hd_uit *m = NULL;
    int rc = -1;
    double t0 = now_s();
    if (hd_backend_create(&be, "cuda", &opt, &e) < 0 || mm_build(&mm, layers) < 0 ||
        hd_uit_create(&m, be, &mm.cfg, &mm.st, &e) < 0) {
        fprintf(stderr, "bench_uit: %s: %s\n", mode, e.msg[0] ? e.msg : "out of memory");
        goto done;
    }
    fprintf(stderr, "bench_uit: %s: %d layers uploaded in %.1f s\n", mode, layers, now_s() - t0);
    for (int k = 0; k < GPU_SIZES; k++) {
        bench_seq b;
        if (seq_make(&b, gpu_text, gpu_sides[k], m) < 0) {
            seq_free(&b);
            goto done;
        }
        for (int64_t s = 0; s < b.text; s++) /* give the gathered embedding rows values */
            fill_bf16((uint16_t *)mm.bufs[0] + (size_t)b.ids[s] * 4096, 4096, 1.0f);
        double fwd[64], lay[64];
        /* a forward ends by reading its output back, so the host clock brackets the GPU work */
        if (time_forward(m, &b, reps, fwd, lay) < 0) {
            seq_free(&b);
            goto done;
        }
        int64_t n_out = b.L * m->patch_dim;
        double err = -1;
        if (exact) {
            ref_out[k] = malloc((size_t)n_out * sizeof(float));
            if (ref_out[k]) memcpy(ref_out[k], b.out, (size_t)n_out * sizeof(float));
        } else if (ref_out[k]) {
            double d2 = 0, r2 = 0;
            for (int64_t i = 0; i < n_out; i++) {
                double d = (double)b.out[i] - ref_out[k][i];
                d2 += d * d;
                r2 += (double)ref_out[k][i] * ref_out[k][i];
            }
            err = r2 > 0 ? sqrt(d2 / r2) : -1;
        }
        char lerr[37 * 12 + 8] = "[]";
        if (k == 0) { /* the hidden states through the layers, at 1224 tokens */
            hd_uit_seq seq = {b.ids, b.text, b.S, b.pos, b.A, NULL};
            hd_uit_probe probe = {layer_err_probe, le, layers};
            le->n_layers = layers;
            le->keep = exact;
            if (hd_uit_forward(m, &seq, b.vin, 0.5, b.out_rows, b.L, b.out, &probe, &e) < 0) {
                fprintf(stderr, "bench_uit: forward: %s\n", e.msg);
                seq_free(&b);
                goto done;
            }
            if (!exact) {
                size_t at = 0;
                for (int i = 0; i <= layers; i++)
                    at += (size_t)snprintf(lerr + at, sizeof lerr - at, "%s%.2e", i ? ", " : "[",
                                           le->err[i]);
                snprintf(lerr + at, sizeof lerr - at, "]");
            }
        }
        /* host <-> device traffic of a forward (patches in, predictions out), timed alone:
         * torch's baseline keeps its input on the GPU and does not read its output back */
        double xfer_ms = -1;
        {
            hd_tensor t;
            hd_backend_ops const *op = be->ops;
            if (op->alloc(be, &t, HD_F32, b.L, m->patch_dim, &e) == 0) {
                double xs[64];
                for (int r = 0; r < reps; r++) {
                    double t0x = now_s();
                    op->write(be, &t, b.vin);
                    op->read(be, &t, b.out);
                    xs[r] = (now_s() - t0x) * 1e3;
                }
                xfer_ms = stats_of(xs, reps).med;
                hd_tensor_free(be, &t);
            }
        }
        stats sf = stats_of(fwd, reps);
        if (k == GPU_SIZES - 1 && json) gpu_op_times(be, m, mode, b.S, b.A, reps);
        double flops = layers * layer_flops(&mm.cfg.text, b.S, b.A) + io_flops(m, b.L);
        double tms = tg->ok[k] ? tg->ms[k] : -1;
        if (json)
            printf("{\"tokens\": %lld, \"layers\": %d, \"mode\": \"%s\", \"c_ms\": %.3f, "
                   "\"c_min_ms\": %.3f, \"torch_ms\": %.3f, \"c_over_torch\": %.3f, "
                   "\"tflops\": %.1f, \"rel_err_vs_exact\": %.3g, \"gpu_used_GiB\": %.2f, "
                   "\"torch_peak_GiB\": %.2f, \"xfer_ms\": %.3f, \"layer_rel_err\": %s}\n",
                   (long long)b.S, layers, mode, sf.med, sf.min, tms,
                   tms > 0 ? sf.med / tms : -1, flops / 1e9 / sf.med, err, gpu_used_gib(),
                   tg->ok[k] ? tg->peak_gib[k] : -1, xfer_ms, lerr);
        else
            printf("%-6lld %-14s %3d layers  C %9.2f ms (min %9.2f)  torch %9.2f ms  C/torch %6.2f"
                   "  %6.1f TFLOP/s  rel.err %.3g  GPU %.1f GiB\n",
                   (long long)b.S, mode, layers, sf.med, sf.min, tms, tms > 0 ? sf.med / tms : -1,
                   flops / 1e9 / sf.med, err, gpu_used_gib());
        fflush(stdout);
        seq_free(&b);
    }
    rc = 0;
done:
    hd_uit_free(m);
    mm_free(&mm);
    hd_backend_destroy(be);
    return rc;
}

/* --backend cuda: every mode at 1224 and 4296 tokens (the baseline's --text 200 --sizes
 * 1024,2048) with a LAYERS-layer random model at the 8B shapes, torch bf16 in the same run. */
static int run_gpu(const char *shared, int layers, int reps, const char *modes, int torch,
                   int json) {
    torch_gpu tg;
    memset(&tg, 0, sizeof tg);
    if (torch) tg = run_torch_gpu(shared, layers, reps);
    float *ref_out[GPU_SIZES] = {NULL};
    layer_err le;
    memset(&le, 0, sizeof le);
    char list[256];
    snprintf(list, sizeof list, "%s", modes);
    int rc = 0;
    for (char *save = NULL, *tok = strtok_r(list, ",", &save); tok && rc == 0;
         tok = strtok_r(NULL, ",", &save))
        rc = gpu_mode(tok, layers, reps, &tg, ref_out, &le, json);
    for (int k = 0; k < GPU_SIZES; k++) free(ref_out[k]);
    for (int i = 0; i < 37; i++) free(le.ref[i]);
    return rc < 0 ? 1 : 0;
}

/* ---- the CPU path: one row (or JSON object) per tokens x mode ---------------------------- */

typedef struct cpu_opts {
    const char *model_dir, *shared, *modes;
    int reps, n_threads, threads, torch, torch_fp32, only, json;
    int vs_exact; /* --model: also one exact forward of the same sequence, and the error
                     (2, --per-layer: also of the hidden state after every layer) */
    double peak;      /* measured fp32 FMA peak, GFLOP/s */
    int native_bf16;  /* AVX512-BF16 dot products: the bf16 mode's peak is twice the FMA peak */
    int native_vnni;  /* AVX512-VNNI: the int8 mode's peak is 4x the FMA peak (else 2x) */
    double amx_bf16, amx_int8; /* AMX tiles: their measured peaks (0 without AMX) */
} cpu_opts;

/* The product option of a mode (*bf16): GEMM_EXACT, GEMM_BF16 (gemm_bf16) or GEMM_INT8. */
enum { GEMM_EXACT = 0, GEMM_BF16 = 1, GEMM_INT8 = 2 };

/* The peak a mode's products can reach here: the fp32 FMA peak times what its instructions do
 * per lane (bf16 dot products: 2 per fp32 lane; VPDPBUSD: 4 int8 per lane; VPMADDUBSW: 2). */
static double mode_peak(const cpu_opts *o, int gemm) {
    if (gemm == GEMM_BF16 && o->amx_bf16 > 0) return o->amx_bf16;
    if (gemm == GEMM_INT8 && o->amx_int8 > 0) return o->amx_int8;
    if (gemm == GEMM_BF16 && o->native_bf16) return 2.0 * o->peak;
    if (gemm == GEMM_INT8) return (o->native_vnni ? 4.0 : 2.0) * o->peak;
    return o->peak;
}


/* Weight format and GEMM option of a mode. */
static int mode_format(const char *mode, hd_dtype *dt, int *bf16) {
    static const struct { const char *name; hd_dtype dt; int bf16; } modes[] = {
        {"exact", HD_BF16, GEMM_EXACT}, {"bf16", HD_BF16, GEMM_BF16}, {"int8", HD_BF16, GEMM_INT8},
        {"q8_0", HD_Q8_0, 0}, {"q4_0", HD_Q4_0, 0}, {"q4_k", HD_Q4_K, 0},  {"q5_k", HD_Q5_K, 0},
        {"q6_k", HD_Q6_K, 0}};
    for (size_t i = 0; i < sizeof modes / sizeof *modes; i++)
        if (!strcmp(mode, modes[i].name)) {
            *dt = modes[i].dt;
            *bf16 = modes[i].bf16;
            return 0;
        }
    return -1;
}

typedef struct conv_job {
    const hd_st_tensor *t;
    uint8_t *dst;
    hd_dtype dt;
    float *rows; /* threads × cols */
} conv_job;

static void conv_row(void *ctx, int64_t r, int thread) {
    conv_job *j = ctx;
    int64_t cols = j->t->shape[1];
    float *row = j->rows + (size_t)thread * (size_t)cols;
    hd_convert_to_f32(j->t->dtype, (const uint16_t *)j->t->data + r * cols, row, (size_t)cols);
    hd_quant_fn_for(j->dt)(row, j->dst + (size_t)r * hd_dtype_row_bytes(j->dt, cols), cols);
}

/* dst = src with every matrix (2-D, rows whole blocks; not the lazily zero token table)
 * quantized to dt; other tensors share src's buffers. */
static int mm_quantized(const mem_model *src, mem_model *dst, hd_dtype dt, hd_pool *pool) {
    memset(dst, 0, sizeof *dst);
    dst->cfg = src->cfg;
    dst->st.tensors = calloc(MM_MAX_TENSORS, sizeof *dst->st.tensors);
    if (!dst->st.tensors) return -1;
    for (int i = 0; i < src->st.n_tensors; i++) {
        const hd_st_tensor *t = &src->st.tensors[i];
        hd_st_tensor *o = &dst->st.tensors[dst->st.n_tensors++];
        *o = *t;
        o->name = strdup(t->name);
        if (!o->name) return -1;
        if (t->ndim != 2 || t->shape[1] % hd_dtype_block(dt) || strstr(t->name, "embed_tokens"))
            continue;
        uint64_t bytes = hd_dtype_row_bytes(dt, t->shape[1]) * (uint64_t)t->shape[0];
        conv_job j = {t, malloc(bytes), dt,
                      malloc((size_t)t->shape[1] * sizeof(float) * (size_t)hd_pool_threads(pool))};
        if (j.dst) dst->bufs[dst->n_bufs++] = j.dst;
        if (!j.dst || !j.rows) {
            free(j.rows);
            return -1;
        }
        hd_pool_run(pool, t->shape[0], conv_row, &j);
        free(j.rows);
        o->dtype = dt;
        o->data = j.dst;
        o->nbytes = bytes;
    }
    return 0;
}

/* Times the 1-layer random model in one mode; 0 and the stats, or -1. */
static int time_mode(const cpu_opts *o, const mem_model *mm, int bf16, bench_seq *b,
                     stats *sf, stats *sl, double *fl_io) {
    hd_error e = {0};
    hd_backend *be = NULL;
    hd_backend_options opt = {0};
    opt.n_threads = o->n_threads;
    opt.gemm_bf16 = bf16 == GEMM_BF16;
    opt.gemm_int8 = bf16 == GEMM_INT8;
    hd_uit *m = NULL;
    int rc = -1;
    double fwd[64], lay[64];
    if (hd_backend_create(&be, "cpu", &opt, &e) < 0 ||
        hd_uit_create(&m, be, &mm->cfg, &mm->st, &e) < 0) {
        fprintf(stderr, "bench_uit: %s\n", e.msg);
    } else if (time_forward(m, b, o->reps, fwd, lay) == 0) {
        *fl_io = io_flops(m, b->L);
        *sf = stats_of(fwd, o->reps);
        *sl = stats_of(lay, o->reps);
        rc = 0;
    }
    hd_uit_free(m);
    hd_backend_destroy(be);
    return rc;
}

static void print_mode(const cpu_opts *o, const char *mode, int bf16, const bench_seq *b,
                       const hd_config *cfg, double fl_io, stats sf, stats sl, torch_result tb,
                       torch_result tf, double err) {
    double fl = layer_flops(&cfg->text, b->S, b->A) + fl_io;
    /* int8: two int8 products per fp32 FMA lane (VPMADDUBSW's rate where it has one port) */
    double peak = mode_peak(o, bf16);
    double gflops = fl / 1e6 / sf.med;
    if (o->json) {
        char torch_ms[32] = "null", torch_fp32_ms[32] = "null", err_s[32] = "null";
        if (err >= 0) snprintf(err_s, sizeof err_s, "%.3g", err);
        if (tb.ok) snprintf(torch_ms, sizeof torch_ms, "%.2f", tb.med);
        if (tf.ok) snprintf(torch_fp32_ms, sizeof torch_fp32_ms, "%.2f", tf.med);
        printf("{\"tokens\": %lld, \"mode\": \"%s\", \"c_ms\": %.2f, \"c_ms_min\": %.2f, "
               "\"c_ms_max\": %.2f, \"layer_ms\": %.2f, \"torch_ms\": %s, "
               "\"torch_fp32_ms\": %s, \"gflops\": %.1f, \"peak_gflops\": %.1f, "
               "\"peak_frac\": %.3f, \"rel_err_vs_exact\": %s}\n",
               (long long)b->S, mode, sf.med, sf.min, sf.max, sl.med, torch_ms, torch_fp32_ms,
               gflops, peak, gflops / peak, err_s);
        fflush(stdout);
        return;
    }
    char label[96], ratio[32] = "", err_s[32] = "";
    snprintf(label, sizeof label, "C: 1-layer model forward, %s", mode);
    if (tb.ok) snprintf(ratio, sizeof ratio, "%.2fx", sf.med / tb.med);
    if (err >= 0) snprintf(err_s, sizeof err_s, "%.3g", err);
    printf("%-6lld %-44s %10.1f %10.1f %10.1f %9.1f %9.1f %5.1f%% %8s %9s\n", (long long)b->S, label,
           sf.med, sf.min, sf.max, fl / 1e9, gflops, 100.0 * gflops / peak, ratio, err_s);
}

/* ---- main --------------------------------------------------------------------------------- */

static void usage(void) {
    fprintf(stderr,
            "usage: bench_uit [--modes exact,bf16,int8,q8_0,q4_k] [--json] [--reps N>=3] [--threads N]\n"
            "                 [--no-torch] [--no-torch-fp32] [--shared DIR] [--only 384|1280]\n"
            "       bench_uit --model DIR [--bf16-gemm|--int8 [--vs-exact|--per-layer]] [--reps N]\n"
            "                 [--threads N] [--only ...]\n"
            "       bench_uit --backend cuda [--layers N] [--modes exact,bf16-f32attn,bf16]\n"
            "                 [--reps N] [--json] [--no-torch] [--shared DIR]\n"
            "Times a 1-layer UiT forward at the 8B shapes for 384 and 1280 tokens on the CPU\n"
            "backend in each mode (exact: float32 products of bf16 weights; bf16: --bf16-gemm;\n"
            "int8: --int8, W8A8 products, its peak_gflops 4x the fp32 FMA peak with VNNI, else 2x;\n"
            "with AMX tiles the bf16 and int8 peaks are the tiles' measured rates;\n"
            "q8_0, q4_0, q4_k, q5_k, q6_k: the matrices quantized to that GGUF format), beside\n"
            "shared/bench/torch_uit_baseline.py (--device cpu --layers 1, bf16 and fp32) at the\n"
            "same token counts; --json: one object per tokens x mode (tokens, mode, c_ms, c_ms_min,\n"
            "c_ms_max, layer_ms, torch_ms (bf16), torch_fp32_ms, gflops, peak_gflops, peak_frac).\n"
            "With --model DIR the real forward of a model directory is timed instead; --vs-exact\n"
            "adds one exact forward of the same sequence and the relative error of the mode's;\n"
            "--per-layer also that of the hidden state after every layer (one more forward each).\n"
            "With --backend cuda: forwards of an N-layer random model at the 8B shapes (8) for\n"
            "1224 and 4296 tokens in each mode, and the baseline on the GPU (bf16, same layers);\n"
            "one line (or JSON object) per tokens x mode: tokens, mode, c_ms, torch_ms, tflops,\n"
            "rel_err_vs_exact (bf16 modes, of the predicted patches).\n");
}

/* One exact (float32) forward of b on a fresh backend over the same weights, into ref. */
/* The hidden state after every layer of one forward (--per-layer): layer l at buf + l·per. */
typedef struct hidden_log {
    float *buf;
    int64_t per;
    int n_layers;
} hidden_log;

static void log_hidden(void *ctx, int layer, int64_t row0, int64_t n, const float *hidden) {
    (void)row0;
    hidden_log *h = ctx;
    if (layer >= 0 && layer < h->n_layers && hidden && n > 0)
        memcpy(h->buf + (size_t)layer * (size_t)h->per, hidden, (size_t)h->per * sizeof(float));
}

static int exact_forward(const cpu_opts *o, const hd_config *cfg, const hd_safetensors *st,
                         bench_seq *b, float *ref, const hd_uit_probe *probe) {
    hd_error e = {0};
    hd_backend *be = NULL;
    hd_backend_options opt = {.n_threads = o->n_threads};
    hd_uit *m = NULL;
    hd_uit_seq seq = {b->ids, b->text, b->S, b->pos, b->A, NULL};
    int rc = hd_backend_create(&be, "cpu", &opt, &e) < 0 || hd_uit_create(&m, be, cfg, st, &e) < 0 ||
                     hd_uit_forward(m, &seq, b->vin, 0.5, b->out_rows, b->L, ref, probe, &e) < 0
                 ? -1
                 : 0;
    if (rc < 0) fprintf(stderr, "bench_uit: exact forward: %s\n", e.msg);
    hd_uit_free(m);
    hd_backend_destroy(be);
    return rc;
}

/* --vs-exact: the relative error of the mode's predicted patches (b->out, from the timed
 * forwards) against one exact forward; --per-layer: first the hidden state after every layer of
 * one more forward in each. */
static int compare_to_exact(const cpu_opts *o, hd_uit *m, const hd_config *cfg,
                            const hd_safetensors *st, bench_seq *b) {
    int nl = cfg->text.num_layers, rc = 0;
    int64_t per = b->S * cfg->text.hidden_size;
    float *ref = malloc((size_t)b->n_out * sizeof *ref);
    hidden_log hm = {NULL, per, nl}, he = {NULL, per, nl};
    if (o->vs_exact == 2) {
        hm.buf = malloc((size_t)(nl * per) * sizeof(float));
        he.buf = malloc((size_t)(nl * per) * sizeof(float));
    }
    hd_uit_probe pm = {log_hidden, &hm, nl}, pe = {log_hidden, &he, nl};
    hd_error e = {0};
    hd_uit_seq seq = {b->ids, b->text, b->S, b->pos, b->A, NULL};
    if (!ref || (o->vs_exact == 2 && (!hm.buf || !he.buf))) {
        fprintf(stderr, "bench_uit: out of memory for the comparison\n");
        rc = 1;
    } else if (o->vs_exact == 2 &&
               hd_uit_forward(m, &seq, b->vin, 0.5, b->out_rows, b->L, b->out, &pm, &e) < 0) {
        fprintf(stderr, "bench_uit: %s\n", e.msg);
        rc = 1;
    } else if (exact_forward(o, cfg, st, b, ref, o->vs_exact == 2 ? &pe : NULL) < 0) {
        rc = 1;
    } else {
        for (int l = 0; o->vs_exact == 2 && l < nl; l++)
            printf("%-6lld relative error of the hidden state after layer %2d: %.4g\n",
                   (long long)b->S, l,
                   rel_err(hm.buf + (size_t)l * per, he.buf + (size_t)l * per, per));
        printf("%-6lld relative error of the predicted patches vs the exact path: %.4g\n",
               (long long)b->S, rel_err(b->out, ref, b->n_out));
    }
    free(ref);
    free(hm.buf);
    free(he.buf);
    return rc;
}

/* --model DIR: the real forward of every layer of a model directory (any weight format). */
static int run_cpu_model(const cpu_opts *o, int gemm) {
    hd_error e = {0};
    hd_backend *be = NULL;
    hd_backend_options opt = {0};
    opt.n_threads = o->n_threads;
    opt.gemm_bf16 = gemm == GEMM_BF16;
    opt.gemm_int8 = gemm == GEMM_INT8;
    hd_config cfg;
    hd_safetensors st = {0};
    hd_uit *m = NULL;
    if (hd_backend_create(&be, "cpu", &opt, &e) < 0 || hd_config_load_dir(&cfg, o->model_dir, &e) < 0 ||
        hd_st_open_dir(&st, o->model_dir, &e) < 0 || hd_uit_create(&m, be, &cfg, &st, &e) < 0) {
        fprintf(stderr, "bench_uit: %s\n", e.msg);
        hd_st_close(&st);
        hd_backend_destroy(be);
        return 1;
    }
    int nl = cfg.text.num_layers;
    /* the mode's peak, as print_mode's */
    double peak = mode_peak(o, gemm);
    printf("model: %s (%d layers, real forward timed; products %s)\n\n%-6s %-44s %10s %10s %10s "
           "%9s %9s %6s\n", o->model_dir, nl,
           gemm == GEMM_BF16 ? "bf16" : gemm == GEMM_INT8 ? "int8" : "exact", "tokens", "what",
           "median ms", "min ms", "max ms", "GFLOP", "GFLOP/s", "%peak");
    const int64_t texts[2] = {128, 256}, sides[2] = {512, 1024};
    int rc = 0;
    for (int k = 0; k < 2 && rc == 0; k++) {
        bench_seq b;
        double fwd[64], lay[64];
        if (o->only && o->only != texts[k] + (sides[k] / 32) * (sides[k] / 32)) continue;
        if (seq_make(&b, texts[k], sides[k], m) < 0 || time_forward(m, &b, o->reps, fwd, lay) < 0) {
            seq_free(&b);
            rc = 1;
            break;
        }
        double fl_layer = layer_flops(&cfg.text, b.S, b.A), fl = nl * fl_layer + io_flops(m, b.L);
        stats sf = stats_of(fwd, o->reps), sl = stats_of(lay, o->reps);
        char what[96];
        snprintf(what, sizeof what, "C: %d-layer forward (model dir)", nl);
        printf("%-6lld %-44s %10.1f %10.1f %10.1f %9.1f %9.1f %5.1f%%\n", (long long)b.S, what,
               sf.med, sf.min, sf.max, fl / 1e9, fl / 1e6 / sf.med, 100.0 * fl / 1e6 / sf.med / peak);
        printf("%-6lld %-44s %10.1f %10.1f %10.1f %9.1f %9.1f %5.1f%%\n", (long long)b.S,
               "C: decoder layer 0 inside it", sl.med, sl.min, sl.max, fl_layer / 1e9,
               fl_layer / 1e6 / sl.med, 100.0 * fl_layer / 1e6 / sl.med / peak);
        if (o->vs_exact && gemm != GEMM_EXACT) rc = compare_to_exact(o, m, &cfg, &st, &b);
        seq_free(&b);
    }
    hd_uit_free(m);
    hd_st_close(&st);
    hd_backend_destroy(be);
    return rc;
}

/* One token count: the torch baselines, then each mode. */
static int run_tokens(const cpu_opts *o, mem_model *mm, hd_pool *pool, int64_t text,
                      int64_t side) {
    bench_seq b;
    hd_error e = {0};
    hd_backend *be = NULL;
    hd_uit *m = NULL;
    hd_backend_options opt = {0};
    /* the sequence is built against a model of the same shapes (its ids and positions) */
    int rc = hd_backend_create(&be, "cpu", &opt, &e) < 0 ||
                     hd_uit_create(&m, be, &mm->cfg, &mm->st, &e) < 0 ||
                     seq_make(&b, text, side, m) < 0
                 ? -1
                 : 0;
    hd_uit_free(m);
    hd_backend_destroy(be);
    if (rc < 0) {
        fprintf(stderr, "bench_uit: %s\n", e.msg[0] ? e.msg : "out of memory");
        return 1;
    }
    for (int64_t s = 0; s < b.text; s++) /* give the gathered embedding rows values */
        fill_bf16((uint16_t *)mm->bufs[0] + (size_t)b.ids[s] * 4096, 4096, 1.0f);
    torch_result tb = {0}, tf = {0};
    if (o->torch) tb = run_torch(o->shared, "bf16", b.text, b.side, o->reps, o->threads);
    if (o->torch && o->torch_fp32)
        tf = run_torch(o->shared, "fp32", b.text, b.side, o->reps, o->threads);
    if (!o->json) {
        if (tb.ok) printf("%-6lld %-44s %10.1f %10.1f\n", (long long)b.S, "torch: 1-layer forward, bf16", tb.med, tb.min);
        if (tf.ok) printf("%-6lld %-44s %10.1f %10.1f\n", (long long)b.S, "torch: 1-layer forward, fp32", tf.med, tf.min);
        if (o->torch && !tb.ok) printf("%-6lld torch baseline did not run (python3 + torch needed)\n", (long long)b.S);
    }
    char modes[256];
    snprintf(modes, sizeof modes, "%s", o->modes);
    float *ref = NULL; /* the exact mode's predicted patches, when it ran first */
    const int64_t n_out = b.n_out;
    for (char *save = NULL, *mode = strtok_r(modes, ",", &save); mode && rc == 0;
         mode = strtok_r(NULL, ",", &save)) {
        hd_dtype dt = HD_BF16;
        int bf16 = 0;
        mode_format(mode, &dt, &bf16); /* checked in main */
        mem_model q, *use = mm;
        if (dt != HD_BF16) {
            if (mm_quantized(mm, &q, dt, pool) < 0) {
                fprintf(stderr, "bench_uit: out of memory quantizing to %s\n", mode);
                mm_free(&q);
                rc = 1;
                break;
            }
            use = &q;
        }
        stats sf, sl;
        double fl_io = 0;
        if (time_mode(o, use, bf16, &b, &sf, &sl, &fl_io) < 0) {
            rc = 1;
        } else {
            double err = -1;
            if (!strcmp(mode, "exact") && !ref && (ref = malloc((size_t)n_out * sizeof *ref)))
                memcpy(ref, b.out, (size_t)n_out * sizeof *ref);
            else if (ref)
                err = rel_err(b.out, ref, n_out);
            print_mode(o, mode, bf16, &b, &mm->cfg, fl_io, sf, sl, tb, tf, err);
        }
        if (use == &q) mm_free(&q);
    }
    free(ref);
    seq_free(&b);
    return rc;
}

/* The random 1-layer model in every mode of o->modes, torch bf16 (and fp32) beside it. */
static int run_cpu_modes(const cpu_opts *o) {
    mem_model mm;
    double t0 = now_s();
    if (mm_build(&mm, 1) < 0) {
        fprintf(stderr, "bench_uit: out of memory building the random layer\n");
        return 1;
    }
    if (!o->json)
        printf("model: random bf16 weights, ONE decoder layer at the 8B shapes (built in %.1f s)\n"
               "\n%-6s %-44s %10s %10s %10s %9s %9s %6s %8s %9s\n", now_s() - t0, "tokens", "what",
               "median ms", "min ms", "max ms", "GFLOP", "GFLOP/s", "%peak", "C/torch", "vs exact");
    hd_pool *pool = NULL;
    hd_error e = {0};
    if (hd_pool_create(&pool, o->threads, &e) < 0) {
        fprintf(stderr, "bench_uit: %s\n", e.msg);
        mm_free(&mm);
        return 1;
    }
    const int64_t texts[2] = {128, 256}, sides[2] = {512, 1024};
    int rc = 0;
    for (int k = 0; k < 2 && rc == 0; k++) {
        if (o->only && o->only != texts[k] + (sides[k] / 32) * (sides[k] / 32)) continue;
        rc = run_tokens(o, &mm, pool, texts[k], sides[k]);
    }
    hd_pool_destroy(pool);
    mm_free(&mm);
    return rc;
}
int main(int argc, char **argv) {
    const char *model_dir = NULL, *shared = getenv("HIDREAM_SHARED");
    int reps = 3, n_threads = 0, torch = 1, torch_fp32 = 1, only = 0, bf16_gemm = 0;
    int layers = 8, json = 0, vs_exact = 0;
    const char *backend = "cpu", *modes = "exact,bf16";
    int modes_given = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--model") && i + 1 < argc) model_dir = argv[++i];
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc) reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc) n_threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--shared") && i + 1 < argc) shared = argv[++i];
        else if (!strcmp(argv[i], "--only") && i + 1 < argc) only = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--no-torch")) torch = 0;
        else if (!strcmp(argv[i], "--no-torch-fp32")) torch_fp32 = 0;
        else if (!strcmp(argv[i], "--bf16-gemm")) bf16_gemm = GEMM_BF16;
        else if (!strcmp(argv[i], "--int8")) bf16_gemm = GEMM_INT8;
        else if (!strcmp(argv[i], "--vs-exact")) vs_exact = vs_exact ? vs_exact : 1;
        else if (!strcmp(argv[i], "--per-layer")) vs_exact = 2;
        else if (!strcmp(argv[i], "--backend") && i + 1 < argc) backend = argv[++i];
        else if (!strcmp(argv[i], "--layers") && i + 1 < argc) layers = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--modes") && i + 1 < argc) modes = argv[++i], modes_given = 1;
        else if (!strcmp(argv[i], "--json")) json = 1;
        else {
            usage();
            return 2;
        }
    }
    if (reps < 3) reps = 3;
    if (reps > 50) reps = 50;
    if (!shared) shared = "../shared";
    if (!strcmp(backend, "cuda")) {
        if (layers < 1 || layers > 36) {
            fprintf(stderr, "bench_uit: --layers %d: 1 to 36\n", layers);
            return 2;
        }
        return run_gpu(shared, layers, reps, modes, torch, json);
    }
    if (strcmp(backend, "cpu")) {
        usage();
        return 2;
    }
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    int threads = n_threads > 0 ? n_threads : (int)(ncpu > 0 ? ncpu : 1);
    cpu_opts o = {model_dir, shared, modes_given ? modes : "exact,bf16,int8,q8_0,q4_k", reps, n_threads,
                  threads, torch, torch_fp32, only, json, vs_exact, 0, 0, 0, 0, 0};
    for (char *save = NULL, *copy = strdup(o.modes), *md = strtok_r(copy, ",", &save); copy;
         md = strtok_r(NULL, ",", &save)) {
        hd_dtype dt = HD_BF16;
        int bf16 = 0;
        if (!md) {
            free(copy);
            break;
        }
        if (mode_format(md, &dt, &bf16) < 0) {
            fprintf(stderr, "bench_uit: --modes: unknown mode '%s' (exact, bf16, int8, q8_0, q4_0, "
                            "q4_k, q5_k, q6_k)\n", md);
            free(copy);
            return 2;
        }
    }
    hd_cpu_features f;
    hd_cpu_features_detect(&f);
    o.native_bf16 = f.avx512bf16 && hd_cpu_isa_supported(HD_ISA_AVX512);
    o.native_vnni = f.avx512vnni && hd_cpu_isa_supported(HD_ISA_AVX512);
    o.peak = measure_peak(threads, 0);
    if (f.amx) {
        o.amx_bf16 = measure_peak(threads, 1);
        o.amx_int8 = measure_peak(threads, 2);
    }
    if (!json) {
        printf("bench_uit: %d threads, measured fp32 FMA peak %.1f GFLOP/s (%s)\n", threads,
               o.peak, peak_isa);
        if (f.amx)
            printf("bf16 mode: AMX TDPBF16PS tiles (measured peak %.0f GFLOP/s); int8 mode: AMX "
                   "TDPBSSD tiles (measured peak %.0f GOP/s)\n", o.amx_bf16, o.amx_int8);
        else
            printf("bf16 mode: %s\nint8 mode: %s\n",
                   o.native_bf16 ? "AVX512-BF16 dot products (peak 2x)"
                                 : "operands rounded to bf16 on the fp32 FMAs (no AVX512-BF16)",
                   o.native_vnni ? "AVX512-VNNI VPDPBUSD (peak 4x)"
                                 : "VPMADDUBSW (no VNNI; peak taken as 2x)");
        if (torch)
            printf("baseline: %s/bench/torch_uit_baseline.py --device cpu --layers 1, "
                   "OMP_NUM_THREADS=%d; C/torch = C median / torch bf16 median\n", shared, threads);
    }
    if (model_dir) return run_cpu_model(&o, bf16_gemm);
    return run_cpu_modes(&o);
}
