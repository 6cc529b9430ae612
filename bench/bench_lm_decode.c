/* bench_lm_decode: the local prompt agent's decoder (src/agent/lm.c) on a random model of
 * Qwen3-0.6B's shapes (bf16, tied embeddings): prefill GFLOP/s, and decode tokens/s against the
 * memory-bandwidth bound (bytes of weights read per token / measured read GB/s).
 *
 *   bench_lm_decode [--preset 0.6b|tiny] [--threads N] [--prompt N] [--decode N] [--dir DIR]
 * The model is written to DIR (default a temporary folder, removed afterwards; an existing
 * DIR/model.safetensors is reused). */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "agent/lm.h"
#include "core/dtype.h"
#include "io/safetensors.h"

typedef struct shape {
    int vocab, dim, layers, heads, kv_heads, head_dim, ffn;
} shape;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Random bf16 values from a counter hash: N(0, ~0.02) weights, ones for the norms. */
static int fill(void *ctx, const hd_st_write_item *it, uint64_t off, void *buf, size_t n,
                hd_error *e) {
    (void)e;
    uint16_t *o = buf;
    int norm = strstr(it->name, "norm") != NULL;
    for (size_t i = 0; i < n / 2; i++) {
        uint64_t x = (off / 2 + i) * 0x9E3779B97F4A7C15ull + (uintptr_t)ctx;
        x ^= x >> 31;
        x *= 0xBF58476D1CE4E5B9ull;
        x ^= x >> 29;
        float u = (float)(x >> 40) / 16777216.0f - 0.5f;
        o[i] = hd_f32_to_bf16(norm ? 1.0f : u * 0.07f);
    }
    return 0;
}

static int write_model(const char *dir, const shape *s) {
    char path[4200], cfg[1024];
    snprintf(cfg, sizeof cfg, "{\"model_type\":\"qwen3\",\"vocab_size\":%d,\"hidden_size\":%d,"
             "\"intermediate_size\":%d,\"num_hidden_layers\":%d,\"num_attention_heads\":%d,"
             "\"num_key_value_heads\":%d,\"head_dim\":%d,\"rms_norm_eps\":1e-6,"
             "\"rope_theta\":1000000,\"max_position_embeddings\":40960,"
             "\"tie_word_embeddings\":true}\n", s->vocab, s->dim, s->ffn, s->layers, s->heads,
             s->kv_heads, s->head_dim);
    snprintf(path, sizeof path, "%s/config.json", dir);
    FILE *f = fopen(path, "w");
    if (!f || fputs(cfg, f) < 0 || fclose(f)) return -1;
    int n = 2 + 11 * s->layers, k = 0;
    hd_st_write_item *it = calloc((size_t)n, sizeof *it);
    char (*names)[96] = calloc((size_t)n, sizeof *names);
    int64_t D = s->dim, q = (int64_t)s->heads * s->head_dim, kv = (int64_t)s->kv_heads * s->head_dim;
#define ADD(nm, r, c)                                                                              \
    do {                                                                                           \
        snprintf(names[k], sizeof names[k], "%s", nm);                                             \
        it[k] = (hd_st_write_item){names[k], HD_BF16, (r) ? 2 : 1, {(r) ? (r) : (c), (c)}, NULL,   \
                                   fill, (void *)(uintptr_t)(k + 1)};                              \
        k++;                                                                                       \
    } while (0)
    ADD("model.embed_tokens.weight", s->vocab, D);
    ADD("model.norm.weight", 0, D);
    for (int l = 0; l < s->layers; l++) {
        char p[64], nm[96];
        snprintf(p, sizeof p, "model.layers.%d.", l);
#define L(sfx, r, c)                                \
    do {                                            \
        snprintf(nm, sizeof nm, "%s%s", p, sfx);    \
        ADD(nm, r, c);                              \
    } while (0)
        L("input_layernorm.weight", 0, D);
        L("post_attention_layernorm.weight", 0, D);
        L("self_attn.q_norm.weight", 0, s->head_dim);
        L("self_attn.k_norm.weight", 0, s->head_dim);
        L("self_attn.q_proj.weight", q, D);
        L("self_attn.k_proj.weight", kv, D);
        L("self_attn.v_proj.weight", kv, D);
        L("self_attn.o_proj.weight", D, q);
        L("mlp.gate_proj.weight", s->ffn, D);
        L("mlp.up_proj.weight", s->ffn, D);
        L("mlp.down_proj.weight", D, s->ffn);
#undef L
    }
#undef ADD
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    hd_error e = {0};
    int rc = hd_st_write(path, it, k, &e);
    if (rc < 0) fprintf(stderr, "%s\n", e.msg);
    free(it);
    free(names);
    return rc;
}

/* Read bandwidth: every thread sums its slice of a large buffer; the best of a few passes. */
typedef struct slice {
    const uint64_t *p;
    size_t n;
    uint64_t sum;
} slice;

static void *sum_slice(void *arg) {
    slice *s = arg;
    uint64_t a = 0, b = 0, c = 0, d = 0;
    for (size_t i = 0; i + 4 <= s->n; i += 4) {
        a += s->p[i];
        b += s->p[i + 1];
        c += s->p[i + 2];
        d += s->p[i + 3];
    }
    s->sum = a + b + c + d;
    return NULL;
}

static double read_gbs(int threads) {
    size_t bytes = (size_t)1 << 30, n = bytes / 8;
    uint64_t *buf = malloc(bytes);
    if (!buf) return 0;
    for (size_t i = 0; i < n; i++) buf[i] = i;
    double best = 0;
    for (int rep = 0; rep < 3; rep++) {
        pthread_t th[256];
        slice sl[256];
        double t0 = now_s();
        for (int t = 0; t < threads; t++) {
            sl[t] = (slice){buf + n / threads * t, n / threads, 0};
            pthread_create(&th[t], NULL, sum_slice, &sl[t]);
        }
        uint64_t total = 0;
        for (int t = 0; t < threads; t++) {
            pthread_join(th[t], NULL);
            total += sl[t].sum;
        }
        double gbs = bytes / (now_s() - t0) / 1e9;
        if (gbs > best && total != 1) best = gbs;
    }
    free(buf);
    return best;
}

int main(int argc, char **argv) {
    shape s = {151936, 1024, 28, 16, 8, 128, 3072};
    int threads = (int)sysconf(_SC_NPROCESSORS_ONLN), prompt = 128, decode = 32;
    const char *dir = NULL;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--preset") && !strcmp(argv[i + 1], "tiny")) s = (shape){1024, 64, 2, 4, 2, 16, 128};
        else if (!strcmp(argv[i], "--threads")) threads = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--prompt")) prompt = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--decode")) decode = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--dir")) dir = argv[i + 1];
    }
    if (threads < 1 || threads > 256 || prompt < 1 || decode < 1) return 2;
    char tmp[] = "/tmp/hd-bench-lm-XXXXXX", path[4200];
    int own = !dir;
    if (own && !(dir = mkdtemp(tmp))) return 1;
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    if (access(path, R_OK) != 0 && write_model(dir, &s) < 0) return 1;
    hd_error e = {0};
    hd_backend *be;
    hd_backend_options bo = {0};
    bo.n_threads = threads;
    hd_lm *m;
    if (hd_backend_create(&be, "cpu", &bo, &e) < 0 || hd_lm_load(&m, dir, be, prompt + decode, &e) < 0) {
        fprintf(stderr, "%s\n", e.msg);
        return 1;
    }
    const hd_lm_config *c = &m->cfg;
    double layer_params = (double)c->dim * ((double)c->n_heads * c->head_dim * 2 +
                                            (double)c->n_kv_heads * c->head_dim * 2 + 3.0 * c->ffn);
    double head_params = (double)c->vocab * c->dim;
    double weight_bytes = 2 * (layer_params * c->n_layers + head_params);
    int32_t *ids = malloc((size_t)(prompt + decode) * sizeof *ids);
    float *logits = malloc((size_t)c->vocab * sizeof *logits);
    for (int i = 0; i < prompt + decode; i++) ids[i] = (i * 7919) % c->vocab;
    double t0 = now_s();
    hd_lm_forward(m, ids, prompt, logits, 0, &e);
    double t_pre = now_s() - t0;
    double pre_flops = 2.0 * layer_params * c->n_layers * prompt + 2.0 * head_params +
                       2.0 * 2.0 * c->n_layers * c->n_heads * c->head_dim * prompt * (prompt + 1) / 2.0;
    t0 = now_s();
    for (int i = 0; i < decode; i++) hd_lm_forward(m, ids + prompt + i, 1, logits, 0, &e);
    double t_dec = (now_s() - t0) / decode;
    double gbs = read_gbs(threads);
    double bound = gbs * 1e9 / weight_bytes;
    printf("model: %d layers, dim %d, vocab %d, %.0f MB of bf16 weights read per token, %d threads\n",
           c->n_layers, c->dim, c->vocab, weight_bytes / 1e6, threads);
    printf("prefill %d tokens: %.3f s, %.1f GFLOP/s\n", prompt, t_pre, pre_flops / t_pre / 1e9);
    printf("decode: %.2f ms/token, %.1f tokens/s; read bandwidth %.1f GB/s -> bound %.1f tokens/s "
           "(%.0f%% of it)\n", t_dec * 1e3, 1 / t_dec, gbs, bound, 100 / t_dec / bound);
    hd_lm_free(m);
    hd_backend_destroy(be);
    free(ids);
    free(logits);
    if (own) {
        remove(path);
        snprintf(path, sizeof path, "%s/config.json", dir);
        remove(path);
        rmdir(dir);
    }
    return 0;
}
