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
    if (__builtin_cpu_supports("avx512f")) j->flops = fma_loop_avx512(j->seconds);
    else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        j->flops = fma_loop_avx2(j->seconds);
    else
#endif
        j->flops = fma_loop_scalar(j->seconds);
    return NULL;
}

/* Sum over n_threads concurrent FMA loops (GFLOP/s), one 0.3 s trial. */
static double measure_peak_once(int n_threads) {
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
static double measure_peak(int n_threads) {
    double best = 0;
    for (int i = 0; i < 5; i++) {
        double p = measure_peak_once(n_threads);
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
    hd_tensor x, q, k, v, att, big, big2;
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
    default: op->add(j->be, &j->x, &j->x, &j->q); break;
    }
}

/* One JSON line with the time of each op kind of a decoder layer at S tokens. */
static void gpu_op_times(hd_backend *be, const hd_uit *m, const char *mode, int64_t S, int64_t A,
                         int reps) {
    static const char *names[6] = {"attention", "linear_4096x12288", "linear_12288x4096",
                                   "rmsnorm", "silu_mul_12288", "add_4096"};
    op_job j;
    memset(&j, 0, sizeof j);
    j.be = be;
    j.m = m;
    j.mask = (hd_attn_mask){0, A};
    hd_error e = {0};
    const hd_backend_ops *op = be->ops;
    hd_tensor *ts[7] = {&j.x, &j.q, &j.k, &j.v, &j.att, &j.big, &j.big2};
    const int64_t cols[7] = {4096, 4096, 1024, 1024, 4096, 12288, 12288};
    float *host = malloc((size_t)(S * 12288) * sizeof(float));
    int ok = host != NULL;
    for (int64_t i = 0; ok && i < S * 12288; i++) host[i] = (float)(rnd32() % 2001) / 1000.f - 1.f;
    for (int t = 0; t < 7 && ok; t++) {
        ok = op->alloc(be, ts[t], HD_F32, S, cols[t], &e) == 0;
        if (ok) op->write(be, ts[t], host);
    }
    if (ok) {
        printf("{\"tokens\": %lld, \"mode\": \"%s\", \"op_ms\": {", (long long)S, mode);
        for (int w = 0; w < 6; w++) {
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
    for (int t = 0; t < 7; t++)
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
    if (!exact && strcmp(mode, "bf16") && strcmp(mode, "bf16-f32attn")) {
        fprintf(stderr, "bench_uit: unknown mode '%s' (exact, bf16, bf16-f32attn)\n", mode);
        return -1;
    }
    rng = 0x243f6a8885a308d3ull; /* every mode gets the same weights and inputs */
    if (!strcmp(mode, "bf16-f32attn")) setenv("HIDREAM_CUDA_ATTN", "f32", 1);
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

/* ---- main --------------------------------------------------------------------------------- */

static void usage(void) {
    fprintf(stderr,
            "usage: bench_uit [--model DIR] [--reps N>=3] [--threads N] [--no-torch]\n"
            "                 [--no-torch-fp32] [--bf16-gemm]\n"
            "                 [--shared DIR] [--only 384|1280]\n"
            "       bench_uit --backend cuda [--layers N] [--modes exact,bf16-f32attn,bf16]\n"
            "                 [--reps N] [--json] [--no-torch] [--shared DIR]\n"
            "Times the UiT forward at the 8B shapes for 384 and 1280 tokens on the CPU backend\n"
            "and runs shared/bench/torch_uit_baseline.py (--device cpu --layers 1, bf16 and fp32)\n"
            "with the same token counts.\n"
            "With --backend cuda: forwards of an N-layer random model at the 8B shapes (8) for\n"
            "1224 and 4296 tokens in each mode, and the baseline on the GPU (bf16, same layers);\n"
            "one line (or JSON object) per tokens x mode: tokens, mode, c_ms, torch_ms, tflops,\n"
            "rel_err_vs_exact (bf16 modes, of the predicted patches).\n");
}

int main(int argc, char **argv) {
    const char *model_dir = NULL, *shared = getenv("HIDREAM_SHARED");
    int reps = 3, n_threads = 0, torch = 1, torch_fp32 = 1, only = 0, bf16_gemm = 0;
    int layers = 8, json = 0;
    const char *backend = "cpu", *modes = "exact,bf16";
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--model") && i + 1 < argc) model_dir = argv[++i];
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc) reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc) n_threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--shared") && i + 1 < argc) shared = argv[++i];
        else if (!strcmp(argv[i], "--only") && i + 1 < argc) only = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--no-torch")) torch = 0;
        else if (!strcmp(argv[i], "--no-torch-fp32")) torch_fp32 = 0;
        else if (!strcmp(argv[i], "--bf16-gemm")) bf16_gemm = 1;
        else if (!strcmp(argv[i], "--backend") && i + 1 < argc) backend = argv[++i];
        else if (!strcmp(argv[i], "--layers") && i + 1 < argc) layers = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--modes") && i + 1 < argc) modes = argv[++i];
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

    double peak = measure_peak(threads);
    printf("bench_uit: %d threads, measured fp32 FMA peak %.1f GFLOP/s (%s, %d threads)\n",
           threads, peak, peak_isa, threads);
    if (torch)
        printf("baseline: %s/bench/torch_uit_baseline.py --device cpu --layers 1, "
               "OMP_NUM_THREADS=%d; GFLOP/s of every row use the same useful-work FLOP count;\n"
               "C/torch = C 1-layer forward median / torch median (> 1: C is slower)\n",
               shared, threads);

    hd_error e = {0};
    hd_backend *be = NULL;
    hd_backend_options opt = {0};
    opt.n_threads = n_threads;
    opt.gemm_bf16 = bf16_gemm; /* bf16 activations in GEMM: the numerics torch bf16 uses */
    if (hd_backend_create(&be, "cpu", &opt, &e) < 0) {
        fprintf(stderr, "bench_uit: backend: %s\n", e.msg);
        return 1;
    }
    mem_model mm;
    hd_config cfg;
    hd_safetensors st = {0};
    const hd_safetensors *stp;
    int have_model = model_dir != NULL;
    if (have_model) {
        if (hd_config_load_dir(&cfg, model_dir, &e) < 0 || hd_st_open_dir(&st, model_dir, &e) < 0) {
            fprintf(stderr, "bench_uit: %s\n", e.msg);
            hd_backend_destroy(be);
            return 1;
        }
        stp = &st;
        printf("model: %s (%d layers, real forward timed)\n", model_dir, cfg.text.num_layers);
    } else {
        double t0 = now_s();
        if (mm_build(&mm, 1) < 0) {
            fprintf(stderr, "bench_uit: out of memory building the random layer\n");
            hd_backend_destroy(be);
            return 1;
        }
        cfg = mm.cfg;
        stp = &mm.st;
        printf("model: random bf16 weights, ONE decoder layer at the 8B shapes (built in %.1f s);"
               " 36-layer figure = estimate\n", now_s() - t0);
    }
    hd_uit *m = NULL;
    if (hd_uit_create(&m, be, &cfg, stp, &e) < 0) {
        fprintf(stderr, "bench_uit: %s\n", e.msg);
        if (have_model) hd_st_close(&st);
        else mm_free(&mm);
        hd_backend_destroy(be);
        return 1;
    }
    const int64_t texts[2] = {128, 256}, sides[2] = {512, 1024};
    int nl = cfg.text.num_layers;
    printf("matrix products: %s\n", bf16_gemm ? "bf16 activations x bf16 weights (--bf16-gemm, "
                                                 "AVX512-BF16; torch bf16's numerics)"
                                               : "float32 activations x bf16 weights (exact path)");
    printf("\n%-6s %-44s %10s %10s %10s %9s %9s %6s %8s\n", "tokens", "what", "median ms",
           "min ms", "max ms", "GFLOP", "GFLOP/s", "%peak", "C/torch");
    for (int k = 0; k < 2; k++) {
        bench_seq b;
        if (only && only != texts[k] + (sides[k] / 32) * (sides[k] / 32)) continue;
        if (seq_make(&b, texts[k], sides[k], m) < 0) {
            fprintf(stderr, "bench_uit: out of memory\n");
            seq_free(&b);
            break;
        }
        if (!have_model) /* give the gathered embedding rows values */
            for (int64_t s = 0; s < b.text; s++)
                fill_bf16((uint16_t *)mm.bufs[0] + (size_t)b.ids[s] * 4096, 4096, 1.0f);
        double fwd[64], lay[64];
        if (time_forward(m, &b, reps, fwd, lay) < 0) {
            seq_free(&b);
            break;
        }
        double fl_layer = layer_flops(&cfg.text, b.S, b.A), fl_io = io_flops(m, b.L), est_ms[64];
        for (int r = 0; r < reps; r++) est_ms[r] = fwd[r] + 35.0 * lay[r]; /* io + 36 x layer */
        stats sf = stats_of(fwd, reps), sl = stats_of(lay, reps), est = stats_of(est_ms, reps);
        char what[96];
        torch_result tb = {0}, tf = {0};
        if (torch) {
            tb = run_torch(shared, "bf16", b.text, b.side, reps, threads);
            if (torch_fp32) tf = run_torch(shared, "fp32", b.text, b.side, reps, threads);
        }
#define ROW(label, st_, flops, ratio_str)                                                      \
    printf("%-6lld %-44s %10.1f %10.1f %10.1f %9.1f %9.1f %5.1f%% %8s\n", (long long)b.S, label,  \
           (st_).med, (st_).min, (st_).max, (flops) / 1e9, (flops) / 1e6 / (st_).med,              \
           100.0 * (flops) / 1e6 / (st_).med / peak, ratio_str)
        if (!have_model) {
            char rb[32] = "", rf[32] = "";
            if (tb.ok) snprintf(rb, sizeof rb, "%.2fx", sf.med / tb.med);
            if (tf.ok) snprintf(rf, sizeof rf, "%.2fx", sf.med / tf.med);
            ROW("C: one decoder layer", sl, fl_layer, "");
            ROW(bf16_gemm ? "C: 1-layer model forward (bf16 GEMM)" : "C: 1-layer model forward (f32 act, bf16 w)", sf, fl_layer + fl_io, "");
            if (tb.ok)
                printf("%-6lld %-44s %10.1f %10.1f %10s %9.1f %9.1f %5.1f%% %8s\n", (long long)b.S,
                       "torch: 1-layer model forward, bf16", tb.med, tb.min, "-",
                       (fl_layer + fl_io) / 1e9, (fl_layer + fl_io) / 1e6 / tb.med,
                       100.0 * (fl_layer + fl_io) / 1e6 / tb.med / peak, rb);
            if (tf.ok)
                printf("%-6lld %-44s %10.1f %10.1f %10s %9.1f %9.1f %5.1f%% %8s\n", (long long)b.S,
                       "torch: 1-layer model forward, fp32", tf.med, tf.min, "-",
                       (fl_layer + fl_io) / 1e9, (fl_layer + fl_io) / 1e6 / tf.med,
                       100.0 * (fl_layer + fl_io) / 1e6 / tf.med / peak, rf);
            if (torch && (!tb.ok || (torch_fp32 && !tf.ok)))
                printf("%-6lld %-44s (torch baseline did not run: see python3 output)\n",
                       (long long)b.S, "torch");
            snprintf(what, sizeof what, "C: 36-layer forward ESTIMATE (io + 36 x layer)");
            ROW(what, est, 36 * fl_layer + fl_io, "");
        } else {
            snprintf(what, sizeof what, "C: %d-layer forward (model dir)", nl);
            ROW(what, sf, nl * fl_layer + fl_io, "");
            ROW("C: decoder layer 0 inside it", sl, fl_layer, "");
        }
#undef ROW
        fflush(stdout);
        seq_free(&b);
    }
    hd_uit_free(m);
    if (have_model) hd_st_close(&st);
    else mm_free(&mm);
    hd_backend_destroy(be);
    return 0;
}
