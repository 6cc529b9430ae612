/* Times the vision tower at the real 8B shapes (depth 27, hidden 1152, 16 heads, MLP 4304,
 * out 4096, DeepStack after blocks 8/16/24) with random bf16 weights built in memory, for the
 * condition-image sets of 1, 2 and 10 references (spec 06 §2 and 04 §2: 1–4 refs -> 384×384 =
 * 576 ViT tokens each, 5–8 refs -> 288×288 = 324, >= 9 refs -> 192×192 enlarged by the processor to
 * 256×256 = 256). Prints median, min and max over repetitions.
 *
 *   bench_vit [--backend cpu|cuda] [--threads N] [--reps R] [--refs 1,2,10]
 */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backend/backend.h"
#include "io/config.h"
#include "io/safetensors.h"
#include "model/vit.h"

#define MAX_REFS 64
#define MAX_TENSORS 512

/* One tensor of the in-memory checkpoint. */
typedef struct bench_tensor {
    char name[128];
    int64_t rows, cols; /* rows == 0: a 1-D tensor of cols */
    float init;         /* 0: random ±scale; else a constant (LayerNorm weights) */
    int zero;           /* constant 0 (biases of LayerNorms) */
} bench_tensor;

typedef struct bench_model {
    bench_tensor t[MAX_TENSORS];
    int n;
} bench_model;

static void add(bench_model *m, const char *name, int64_t rows, int64_t cols, float init,
                int zero) {
    bench_tensor *b = &m->t[m->n++];
    snprintf(b->name, sizeof b->name, "model.visual.%s", name);
    b->rows = rows;
    b->cols = cols;
    b->init = init;
    b->zero = zero;
}

static void describe_8b(bench_model *m, const hd_vision_config *v) {
    int64_t vh = v->hidden_size, inter = v->intermediate_size, wide = 4 * vh;
    int64_t out = v->out_hidden_size;
    int64_t pd = (int64_t)v->in_channels * v->temporal_patch_size * v->patch_size * v->patch_size;
    add(m, "patch_embed.proj.weight", vh, pd, 0, 0);
    add(m, "patch_embed.proj.bias", 0, vh, 0, 0);
    add(m, "pos_embed.weight", v->num_position_embeddings, vh, 0, 0);
    const struct { const char *suffix; int64_t rows, cols; float init; int zero; } blk[] = {
        {"norm1.weight", 0, vh, 1, 0},          {"norm1.bias", 0, vh, 0, 1},
        {"attn.qkv.weight", 3 * vh, vh, 0, 0},  {"attn.qkv.bias", 0, 3 * vh, 0, 0},
        {"attn.proj.weight", vh, vh, 0, 0},     {"attn.proj.bias", 0, vh, 0, 0},
        {"norm2.weight", 0, vh, 1, 0},          {"norm2.bias", 0, vh, 0, 1},
        {"mlp.linear_fc1.weight", inter, vh, 0, 0}, {"mlp.linear_fc1.bias", 0, inter, 0, 0},
        {"mlp.linear_fc2.weight", vh, inter, 0, 0}, {"mlp.linear_fc2.bias", 0, vh, 0, 0},
    };
    char n[96];
    for (int b = 0; b < v->depth; b++)
        for (size_t i = 0; i < sizeof blk / sizeof blk[0]; i++) {
            snprintf(n, sizeof n, "blocks.%d.%s", b, blk[i].suffix);
            add(m, n, blk[i].rows, blk[i].cols, blk[i].init, blk[i].zero);
        }
    for (int j = -1; j < v->n_deepstack; j++) {
        char p[64];
        if (j < 0)
            snprintf(p, sizeof p, "merger");
        else
            snprintf(p, sizeof p, "deepstack_merger_list.%d", j);
        int64_t nw = j < 0 ? vh : wide;
        const struct { const char *suffix; int64_t rows, cols; float init; int zero; } mg[] = {
            {"norm.weight", 0, nw, 1, 0},          {"norm.bias", 0, nw, 0, 1},
            {"linear_fc1.weight", wide, wide, 0, 0}, {"linear_fc1.bias", 0, wide, 0, 0},
            {"linear_fc2.weight", out, wide, 0, 0},  {"linear_fc2.bias", 0, out, 0, 0},
        };
        for (size_t i = 0; i < sizeof mg / sizeof mg[0]; i++) {
            snprintf(n, sizeof n, "%s.%s", p, mg[i].suffix);
            add(m, n, mg[i].rows, mg[i].cols, mg[i].init, mg[i].zero);
        }
    }
}

/* A safetensors image of the model in one malloc'd buffer: bf16 weights, uniform in ±0.03
 * (roughly the trained scale), LayerNorm weights 1 and biases 0. */
static void *build_image(const bench_model *m, size_t *len) {
    json_t *hdr = json_object();
    uint64_t off = 0;
    for (int i = 0; i < m->n; i++) {
        const bench_tensor *b = &m->t[i];
        uint64_t n = (uint64_t)(b->rows ? b->rows : 1) * (uint64_t)b->cols;
        json_t *shape = b->rows ? json_pack("[II]", (json_int_t)b->rows, (json_int_t)b->cols)
                                : json_pack("[I]", (json_int_t)b->cols);
        json_object_set_new(hdr, b->name,
                            json_pack("{s:s,s:o,s:[II]}", "dtype", "BF16", "shape", shape,
                                      "data_offsets", (json_int_t)off,
                                      (json_int_t)(off + 2 * n)));
        off += 2 * n;
    }
    char *text = json_dumps(hdr, JSON_COMPACT);
    json_decref(hdr);
    if (!text) return NULL;
    size_t hlen = (strlen(text) + 7) / 8 * 8;
    *len = 8 + hlen + off;
    uint8_t *buf = malloc(*len);
    if (!buf) {
        free(text);
        return NULL;
    }
    uint64_t h64 = hlen;
    memcpy(buf, &h64, 8);
    memset(buf + 8, ' ', hlen);
    memcpy(buf + 8, text, strlen(text));
    free(text);
    uint16_t *w = (uint16_t *)(buf + 8 + hlen);
    uint32_t s = 12345;
    for (int i = 0; i < m->n; i++) {
        const bench_tensor *b = &m->t[i];
        uint64_t n = (uint64_t)(b->rows ? b->rows : 1) * (uint64_t)b->cols;
        for (uint64_t k = 0; k < n; k++) {
            float v = b->zero ? 0.0f : b->init;
            if (!b->zero && b->init == 0) {
                s ^= s << 13;
                s ^= s >> 17;
                s ^= s << 5;
                v = ((float)(s >> 8) / 8388608.0f - 1.0f) * 0.03f;
            }
            *w++ = hd_f32_to_bf16(v);
        }
    }
    return buf;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* ViT grid side (patches) of one condition image for K references (spec 06 §2, 04 §2). */
static int grid_side_for(int k) {
    if (k <= 4) return 384 / 16;
    if (k <= 8) return 288 / 16;
    return 256 / 16; /* 192×192 is below min_pixels: the processor enlarges it to 256×256 */
}

int main(int argc, char **argv) {
    const char *backend = "cpu", *refs = "1,2,10";
    int threads = 0, reps = 3;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--backend") && i + 1 < argc) backend = argv[++i];
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc) reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--refs") && i + 1 < argc) refs = argv[++i];
        else {
            fprintf(stderr, "usage: %s [--backend cpu|cuda] [--threads N] [--reps R] [--refs 1,2,10]\n",
                    argv[0]);
            return 2;
        }
    }
    if (reps < 1) reps = 1;

    hd_config cfg;
    memset(&cfg, 0, sizeof cfg);
    hd_vision_config *v = &cfg.vision;
    *v = (hd_vision_config){.present = 1, .depth = 27, .hidden_size = 1152, .num_heads = 16,
                            .intermediate_size = 4304, .patch_size = 16,
                            .temporal_patch_size = 2, .spatial_merge_size = 2,
                            .in_channels = 3, .out_hidden_size = 4096,
                            .num_position_embeddings = 2304, .n_deepstack = 3,
                            .deepstack_indexes = {8, 16, 24}};
    snprintf(v->hidden_act, sizeof v->hidden_act, "gelu_pytorch_tanh");

    static bench_model model;
    describe_8b(&model, v);
    size_t len = 0;
    void *image = build_image(&model, &len);
    if (!image) {
        fprintf(stderr, "bench_vit: out of memory building the weights\n");
        return 1;
    }
    hd_error e = {0};
    hd_safetensors st;
    hd_backend *be = NULL;
    hd_vit *vit = NULL;
    hd_backend_options opt = {.n_threads = threads};
    int rc = hd_st_open_buffer(&st, image, len, "bench-vit-8b", &e);
    if (!rc) rc = hd_backend_create(&be, backend, &opt, &e);
    if (!rc) rc = hd_vit_create(&vit, be, &cfg, &st, &e);
    if (rc) {
        fprintf(stderr, "bench_vit: %s\n", e.msg);
        return 1;
    }
    double params = 0;
    for (int i = 0; i < model.n; i++)
        params += (double)(model.t[i].rows ? model.t[i].rows : 1) * (double)model.t[i].cols;
    printf("ViT 8B shapes (%.1f M params, bf16), backend %s, %d repetitions\n", params / 1e6,
           backend, reps);
    printf("| refs | grid / image | ViT tokens | LLM tokens | median s | min s | max s |\n");
    printf("| --- | --- | --- | --- | --- | --- | --- |\n");

    const char *p = refs;
    while (*p && !rc) {
        char *end;
        long k = strtol(p, &end, 10);
        if (end == p) break; /* not a number */
        p = *end == ',' ? end + 1 : end;
        if (k < 1 || k > MAX_REFS) continue;
        int side = grid_side_for((int)k);
        int64_t grid[MAX_REFS][3], n_tok = (int64_t)k * side * side;
        for (int i = 0; i < k; i++) {
            grid[i][0] = 1;
            grid[i][1] = side;
            grid[i][2] = side;
        }
        int64_t pd = 1536;
        float *px = malloc((size_t)(n_tok * pd) * sizeof(float));
        double *t = malloc((size_t)reps * sizeof(double));
        float *row = malloc((size_t)(n_tok / 4) * 4096 * sizeof(float));
        if (!px || !t || !row) {
            fprintf(stderr, "bench_vit: out of memory\n");
            return 1;
        }
        uint32_t s = 7;
        for (int64_t i = 0; i < n_tok * pd; i++) {
            s = s * 1664525u + 1013904223u;
            px[i] = hd_round_bf16((float)(s >> 9) / 4194304.0f - 1.0f);
        }
        for (int r = 0; r < reps && !rc; r++) {
            hd_vit_output out;
            double t0 = now_s();
            rc = hd_vit_forward(vit, px, (const int64_t(*)[3])grid, (int)k, &out, &e);
            if (!rc) be->ops->read(be, &out.embeds, row); /* the result is ready: synchronised */
            t[r] = now_s() - t0;
            hd_vit_output_free(be, &out);
        }
        if (rc) {
            fprintf(stderr, "bench_vit: %s\n", e.msg);
        } else {
            qsort(t, (size_t)reps, sizeof *t, cmp_double);
            double med = reps % 2 ? t[reps / 2] : 0.5 * (t[reps / 2 - 1] + t[reps / 2]);
            printf("| %ld | %dx%d | %lld | %lld | %.3f | %.3f | %.3f |\n", k, side, side,
                   (long long)n_tok, (long long)(n_tok / 4), med, t[0], t[reps - 1]);
            fflush(stdout);
        }
        free(px);
        free(t);
        free(row);
    }
    hd_vit_free(vit);
    hd_backend_destroy(be);
    hd_st_close(&st);
    free(image);
    return rc ? 1 : 0;
}
