/* GGML block-quantized formats (core/quant.c): quantize -> dequantize round trips with error
 * bounds per format, and hand-built blocks whose decoded values are worked out by hand, so a
 * layout mistake fails here even though pack and unpack would agree with each other.
 *
 * `test_quant --parity DIR` instead compares with gguf-py on files written by
 * tests/quant_parity.py: for each format DIR/<fmt>.blocks and gguf-py's float32 decoding of
 * them, DIR/<fmt>.f32 (bit for bit); for Q8_0 and Q4_0 also DIR/<fmt>.in.f32 and gguf-py's
 * quantize() of it, DIR/<fmt>.quant (byte for byte). */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/dtype.h"
#include "core/quant.h"
#include "testutil.h"

typedef struct fmt {
    const char *name;
    int blk;          /* values per block */
    size_t bytes;     /* bytes per block */
    float gauss_rms;  /* bound on the relative RMS error for Gaussian data (and the others) */
    float tiny_rms;   /* ... for values ~1e-4, where f16 scales are subnormal */
    void (*quant)(const float *, void *, int64_t);
    void (*dequant)(const void *, float *, int64_t);
} fmt;

/* Bounds are ~1.2x the errors measured on these (fixed-seed) rows, which the round-trip test
 * prints: Gaussian q8_0 0.0053, q4_0 0.083, q4_k 0.071, q5_k 0.034, q6_k 0.017. */
static const fmt FORMATS[] = {
    {"q8_0", 32, 34, 0.0065f, 0.013f, hd_quant_q8_0, hd_dequant_q8_0},
    {"q4_0", 32, 18, 0.10f, 0.10f, hd_quant_q4_0, hd_dequant_q4_0},
    {"q4_k", 256, 144, 0.085f, 0.085f, hd_quant_q4_k, hd_dequant_q4_k},
    {"q5_k", 256, 176, 0.042f, 0.042f, hd_quant_q5_k, hd_dequant_q5_k},
    {"q6_k", 256, 210, 0.020f, 0.020f, hd_quant_q6_k, hd_dequant_q6_k},
};
#define N_FORMATS (int)(sizeof FORMATS / sizeof *FORMATS)
#define ROW 4096 /* values per test row: 128 small blocks or 16 super-blocks */

/* ---- helpers ------------------------------------------------------------------------------ */

static uint64_t rng_state = 0x9e3779b97f4a7c15u;

static double uniform(void) { /* splitmix64 -> (0, 1) */
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return ((double)((z ^ (z >> 31)) >> 11) + 0.5) / 9007199254740992.0;
}

static float gauss(void) { /* Box-Muller */
    double r = sqrt(-2.0 * log(uniform()));
    return (float)(r * cos(6.283185307179586 * uniform()));
}

static float rel_rms(const float *x, const float *y, int n) {
    double num = 0, den = 0;
    for (int i = 0; i < n; i++) {
        double e = (double)x[i] - y[i];
        num += e * e, den += (double)x[i] * x[i];
    }
    return den > 0 ? (float)sqrt(num / den) : (float)sqrt(num);
}

/* Quantizes and dequantizes n values with f; returns the block bytes (caller frees). */
static uint8_t *round_trip(const fmt *f, const float *x, float *y, int n) {
    uint8_t *b = malloc((size_t)(n / f->blk) * f->bytes);
    f->quant(x, b, n);
    f->dequant(b, y, n);
    return b;
}

static void put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v, p[1] = (uint8_t)(v >> 8); }

/* ---- round trips -------------------------------------------------------------------------- */

enum { GAUSS, ZERO, CONSTANT, OUTLIER, TINY, NEGATIVE, SKEWED, N_DISTS };
static const char *DIST_NAMES[N_DISTS] = {"gaussian", "all-zero", "constant", "outlier",
                                          "tiny",     "negative", "skewed"};

static void fill(int dist, float *x, int n) {
    for (int i = 0; i < n; i++) {
        float g = gauss();
        x[i] = dist == GAUSS      ? g
               : dist == ZERO     ? 0.0f
               : dist == CONSTANT ? (i / 256 % 2 ? -0.37f : 1.25f) /* both signs */
               : dist == OUTLIER  ? g * 0.02f
               : dist == TINY     ? g * 1e-4f
               : dist == NEGATIVE ? -fabsf(g) - 0.5f
                                  : 3.0f + g * 0.5f; /* SKEWED: all positive, off zero */
    }
    if (dist == OUTLIER) x[777] = 40.0f, x[3000] = -25.0f;
}

/* Relative RMS bound of f for a distribution; the layouts bound what is reachable. */
static float rms_bound(const fmt *f, int dist) {
    switch (dist) {
    case ZERO: return 0.0f;
    case CONSTANT: return 2e-3f; /* only f16 and 6-bit scale rounding */
    case TINY: return f->tiny_rms;
    default: return f->gauss_rms;
    }
}

/* Q8_0 / Q4_0: per block, the error is half a step (a whole step for Q4_0's clamped side) plus
 * what storing d as f16 moves the largest code. */
static void check_small_block_errors(const fmt *f, const float *x, const float *y, const uint8_t *b,
                                     int n) {
    int q4 = f->bytes == 18;
    for (int k = 0; k < n / 32; k++) {
        float amax = 0.0f, err = 0.0f;
        for (int i = 32 * k; i < 32 * k + 32; i++)
            amax = fmaxf(amax, fabsf(x[i])), err = fmaxf(err, fabsf(x[i] - y[i]));
        float d16 = fabsf(hd_f16_to_f32((uint16_t)(b[f->bytes * k] | b[f->bytes * k + 1] << 8)));
        float d = amax / (q4 ? 8.0f : 127.0f);
        float bound = (q4 ? 1.0f : 0.5f) * d16 + (q4 ? 9.0f : 128.0f) * fabsf(d16 - d);
        CHECKF(err <= bound * 1.0001f + 1e-30f, "%s block %d: max error %g > %g", f->name, k,
               err, bound);
    }
}

/* The outliers survive, and only their own blocks pay for them: the rest of the row (the
 * blocks before the first outlier's) is quantized as well as Gaussian data. */
static void check_outliers_stay_in_their_blocks(const fmt *f, const float *x, const float *y) {
    CHECK(fabsf(y[777] - 40.0f) < 0.2f && fabsf(y[3000] + 25.0f) < 0.2f);
    int clean = 777 / f->blk * f->blk;
    float e = rel_rms(x, y, clean);
    CHECKF(e <= f->gauss_rms, "%s: blocks without outliers: relative RMS %g", f->name, e);
}

static void test_round_trips_stay_within_each_formats_error_bound(void) {
    float *x = malloc(ROW * sizeof *x), *y = malloc(ROW * sizeof *y);
    for (int fi = 0; fi < N_FORMATS; fi++) {
        const fmt *f = &FORMATS[fi];
        printf("  %s relative RMS error:", f->name);
        for (int dist = 0; dist < N_DISTS; dist++) {
            fill(dist, x, ROW);
            uint8_t *b = round_trip(f, x, y, ROW);
            float e = rel_rms(x, y, ROW);
            printf(" %s %.4g%s", DIST_NAMES[dist], e, dist + 1 < N_DISTS ? "," : "\n");
            CHECKF(e <= rms_bound(f, dist), "%s %s: relative RMS %g > %g", f->name,
                   DIST_NAMES[dist], e, rms_bound(f, dist));
            if (f->blk == 32) check_small_block_errors(f, x, y, b, ROW);
            if (dist == OUTLIER) check_outliers_stay_in_their_blocks(f, x, y);
            free(b);
        }
    }
    free(x), free(y);
}

/* Error of y against x relative to the spread of x around its mean. */
static float rel_to_spread(const float *x, const float *y, int n) {
    double mean = 0, num = 0, den = 0;
    for (int i = 0; i < n; i++) mean += x[i] / (double)n;
    for (int i = 0; i < n; i++) {
        double e = (double)x[i] - y[i], c = x[i] - mean;
        num += e * e, den += c * c;
    }
    return (float)sqrt(num / den);
}

/* Each of the eight sub-blocks of a K super-block gets its own scale and offset: sub-blocks
 * whose spreads differ by up to 11x and whose means sit at -2, 0 or +2 spreads are each
 * reproduced to within a small multiple of the Gaussian error (scale or min bits read from the
 * wrong sub-block give errors of the order of the spread). */
static void test_k_formats_give_each_sub_block_its_own_scale(void) {
    float x[256], y[256];
    for (int i = 0; i < 256; i++) {
        int j = i / 32;
        float spread = ldexpf(j % 2 ? 1.4142135f : 1.0f, j / 2 - 2); /* 2^((j - 4) / 2) */
        x[i] = spread * (gauss() + (float)(2 * (j % 3) - 2));
    }
    for (int fi = 2; fi < N_FORMATS; fi++) {
        const fmt *f = &FORMATS[fi];
        free(round_trip(f, x, y, 256));
        for (int j = 0; j < 8; j++) {
            float e = rel_to_spread(x + 32 * j, y + 32 * j, 32);
            CHECKF(e < 2.5f * f->gauss_rms, "%s sub-block %d: error / spread %g", f->name, j, e);
        }
    }
}

static void test_quantization_is_deterministic_and_values_exactly_on_the_grid_survive(void) {
    /* Q8_0 with amax 127: d = 1 exactly, so the integers -127..127 come back unchanged. */
    float x[32], y[32];
    for (int i = 0; i < 32; i++) x[i] = (float)(i * 8 - 127);
    x[31] = 127.0f;
    free(round_trip(&FORMATS[0], x, y, 32));
    CHECK(memcmp(x, y, sizeof x) == 0);
    /* Q4_0 with the max-magnitude value -8: d = 1, codes x + 8 for x in -8..7 */
    for (int i = 0; i < 32; i++) x[i] = (float)(i % 16 - 8);
    free(round_trip(&FORMATS[1], x, y, 32));
    CHECK(memcmp(x, y, sizeof x) == 0);
    float big[ROW], z[ROW];
    fill(GAUSS, big, ROW);
    for (int fi = 0; fi < N_FORMATS; fi++) {
        uint8_t *a = round_trip(&FORMATS[fi], big, z, ROW);
        uint8_t *c = round_trip(&FORMATS[fi], big, z, ROW);
        CHECK(memcmp(a, c, (size_t)(ROW / FORMATS[fi].blk) * FORMATS[fi].bytes) == 0);
        free(a), free(c);
    }
}

/* ---- hand-built blocks -------------------------------------------------------------------- */

static void test_q8_0_block_decodes_int8_codes_times_d(void) {
    uint8_t b[34] = {0};
    put16(b, 0x3800); /* d = 0.5 */
    for (int j = 0; j < 32; j++) b[2 + j] = (uint8_t)(j * 9); /* int8 0, 9, ..., 117, -118, .. */
    b[33] = 0x80;                                              /* -128 */
    float y[32];
    hd_dequant_q8_0(b, y, 32);
    CHECK(y[0] == 0.0f && y[1] == 4.5f && y[13] == 58.5f); /* 13*9 = 117 */
    CHECK(y[15] == -60.5f); /* 135 - 256 = -121 */
    CHECK(y[31] == -64.0f);
}

static void test_q4_0_block_puts_values_16_to_31_in_the_high_nibbles(void) {
    uint8_t b[18] = {0};
    put16(b, 0x4000);            /* d = 2 */
    b[2] = 0xF0, b[3] = 0x98;    /* byte 0: value 0 code 0, value 16 code 15; byte 1: 8 and 9 */
    float y[32];
    hd_dequant_q4_0(b, y, 32);
    CHECK(y[0] == -16.0f);  /* (0 - 8) * 2 */
    CHECK(y[16] == 14.0f);  /* (15 - 8) * 2 */
    CHECK(y[1] == 0.0f && y[17] == 2.0f);
    CHECK(y[2] == -16.0f && y[31] == -16.0f);
}

/* The Q4_K / Q5_K header used below: d = 1, dmin = 0.5, and scales/mins
 *   sub-block 0: sc 1, m 2          (byte 0 = 1, byte 4 = 2)
 *   sub-block 1: sc 2, m 0          (byte 1 low 6 bits = 2)
 *   sub-block 5: sc 42 = 0b101010, m 21 = 0b010101: low 4 bits in byte 9 (0x5A), top 2 bits in
 *                bits 6-7 of byte 1 (0b10) and of byte 5 (0b01)
 *   sub-block 7: sc 3, m 1          (byte 11 = 0x13)
 *   others: 0. */
static void put_k_header(uint8_t *b) {
    put16(b, 0x3C00), put16(b + 2, 0x3800);
    uint8_t *s = b + 4;
    s[0] = 1, s[4] = 2;
    s[1] = 2 | 0x80, s[5] = 0x40, s[9] = 0x5A;
    s[11] = 0x13;
}

static void test_q4_k_block_unpacks_6_bit_scales_and_nibble_pairs(void) {
    uint8_t b[144] = {0};
    put_k_header(b);
    uint8_t *qs = b + 16;
    qs[0] = 0x73;       /* value 0 (sub-block 0) code 3; value 32 (sub-block 1) code 7 */
    qs[64 + 3] = 0xB0;  /* group 2: value 128+3 code 0, value 160+3 (sub-block 5) code 11 */
    qs[96 + 1] = 0x50;  /* group 3, high nibble: value 224+1 (sub-block 7) code 5 */
    float y[256];
    hd_dequant_q4_k(b, y, 256);
    CHECK(y[0] == 2.0f);     /* 1*1*3 - 0.5*2 */
    CHECK(y[1] == -1.0f);    /* code 0: -0.5*2 */
    CHECK(y[32] == 14.0f);   /* 1*2*7 - 0 */
    CHECK(y[33] == 0.0f);
    CHECK(y[163] == 451.5f); /* 1*42*11 - 0.5*21 */
    CHECK(y[160] == -10.5f);
    CHECK(y[131] == 0.0f);   /* sub-block 4: sc 0, m 0 */
    CHECK(y[225] == 14.5f);  /* 1*3*5 - 0.5*1 */
    CHECK(y[224] == -0.5f);
}

static void test_q5_k_block_takes_bit_4_from_qh_bit_j(void) {
    uint8_t b[176] = {0};
    put_k_header(b);
    uint8_t *qh = b + 16, *qs = b + 48;
    qh[2] = 0x02;            /* value 32+2 (sub-block 1) gets +16 */
    qs[2] = 0x40;            /* value 2 code 0; value 34 low bits 4 */
    qh[0] = 0x80;            /* value 224 (sub-block 7) gets +16 */
    qs[96] = 0x20;           /* value 224 low bits 2; value 192 code 0 */
    qh[5] = 0x20;            /* value 160+5 (sub-block 5) gets +16, low bits 0 */
    float y[256];
    hd_dequant_q5_k(b, y, 256);
    CHECK(y[2] == -1.0f);    /* sub-block 0 code 0 */
    CHECK(y[34] == 40.0f);   /* 1*2*(4+16) */
    CHECK(y[224] == 53.5f);  /* 1*3*(2+16) - 0.5*1 */
    CHECK(y[192] == 0.0f);
    CHECK(y[165] == 661.5f); /* 1*42*16 - 0.5*21 */
    CHECK(y[164] == -10.5f);
}

static void test_q6_k_block_splits_codes_over_ql_qh_with_int8_scales(void) {
    uint8_t b[210] = {0};
    uint8_t *ql = b, *qh = b + 128;
    int8_t sc[16] = {2, 0, -1, 0, 3, 0, -4, 0, 127, 0, 0, 0, 0, 0, 0, -128};
    memcpy(b + 192, sc, 16);
    put16(b + 208, 0x3400); /* d = 0.25 */
    ql[0] = 0xA5;           /* value 0 low bits 5, value 64 low bits 10 */
    qh[0] = 0xE4;           /* 0b11'10'01'00: high bits of values 96, 64, 32, 0 */
    ql[32] = 0x0F;          /* value 32 low bits 15, value 96 low bits 0 */
    ql[64 + 5] = 0x01;      /* second half: value 128+5 low bits 1 */
    qh[32 + 5] = 0x02;      /* ... high bits 2: code 33 */
    float y[256];
    hd_dequant_q6_k(b, y, 256);
    CHECK(y[0] == -13.5f);  /* code 5: 0.25*2*(5-32) */
    CHECK(y[1] == -16.0f);  /* code 0: 0.25*2*(-32) */
    CHECK(y[32] == 0.25f);  /* code 15 | 1<<4 = 31: 0.25*(-1)*(31-32) */
    CHECK(y[64] == 7.5f);   /* code 10 | 2<<4 = 42: 0.25*3*10 */
    CHECK(y[96] == -16.0f); /* code 0 | 3<<4 = 48: 0.25*(-4)*16 */
    CHECK(y[133] == 31.75f); /* sub-block 8: 0.25*127*1 */
    CHECK(y[255] == 1024.0f); /* sub-block 15: 0.25*(-128)*(-32) */
}

/* ---- parity with gguf-py (files from tests/quant_parity.py) -------------------------------- */

/* The run-time chosen decoders (AVX2 where the CPU has it) give the portable decoders' bits on
 * random blocks, with f16 scales from subnormal to large. */
static void test_vector_decoders_match_the_portable_ones_bit_for_bit(void) {
    enum { BLOCKS = 64 };
    static const hd_dtype dts[N_FORMATS] = {HD_Q8_0, HD_Q4_0, HD_Q4_K, HD_Q5_K, HD_Q6_K};
    for (int k = 0; k < N_FORMATS; k++) {
        const fmt *f = &FORMATS[k];
        size_t bb = (size_t)f->bytes, n = (size_t)f->blk * BLOCKS;
        uint8_t *b = malloc(bb * BLOCKS);
        float *got = malloc(sizeof(float) * n), *want = malloc(sizeof(float) * n);
        for (size_t i = 0; i < bb * BLOCKS; i++) b[i] = (uint8_t)(uniform() * 256);
        for (int i = 0; i < BLOCKS; i++) { /* finite f16 scales: exponent field below 31 */
            uint8_t *blk = b + (size_t)i * bb;
            if (dts[k] == HD_Q6_K) blk[bb - 1] &= 0x7b;
            else blk[1] &= 0x7b;
            if (dts[k] == HD_Q4_K || dts[k] == HD_Q5_K) blk[3] &= 0x7b;
        }
        f->dequant(b, got, (int64_t)n);
        hd_dequant_portable(dts[k], b, want, (int64_t)n);
        CHECKF(!memcmp(got, want, sizeof(float) * n), "%s: decoders differ", f->name);
        free(b);
        free(got);
        free(want);
    }
}

static uint8_t *read_in(const char *dir, const char *name, const char *ext, size_t *len) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.%s", dir, name, ext);
    uint8_t *p = (uint8_t *)hd_test_read_file(path, len);
    CHECKF(p != NULL, "cannot read %s", path);
    return p;
}

/* Counts values whose float32 bits differ; reports the first few. */
static long count_diffs(const char *what, const float *got, const float *want, size_t n) {
    long diffs = 0;
    for (size_t i = 0; i < n; i++) {
        if (memcmp(&got[i], &want[i], 4) == 0) continue;
        if (diffs++ < 5)
            fprintf(stderr, "  %s value %zu: got %.9g, gguf-py %.9g\n", what, i, got[i], want[i]);
    }
    return diffs;
}

static void parity_dequant(const char *dir, const fmt *f) {
    size_t nb = 0, nf = 0;
    uint8_t *b = read_in(dir, f->name, "blocks", &nb);
    float *want = (float *)read_in(dir, f->name, "f32", &nf);
    size_t blocks = nb / f->bytes, n = blocks * (size_t)f->blk;
    CHECKF(b && want && nb % f->bytes == 0 && nf == n * 4, "%s: file sizes", f->name);
    if (b && want && nf == n * 4) {
        float *got = malloc(n * sizeof *got);
        f->dequant(b, got, (int64_t)n);
        long d = count_diffs(f->name, got, want, n);
        printf("parity %s dequantize: %zu blocks, %zu values, %ld differ\n", f->name, blocks, n, d);
        CHECK(blocks > 0 && d == 0);
        free(got);
    }
    free(b), free(want);
}

static void parity_quant(const char *dir, const fmt *f) {
    size_t nx = 0, nq = 0;
    float *x = (float *)read_in(dir, f->name, "in.f32", &nx);
    uint8_t *want = read_in(dir, f->name, "quant", &nq);
    size_t n = nx / 4, blocks = n / (size_t)f->blk;
    CHECKF(x && want && n % (size_t)f->blk == 0 && nq == blocks * f->bytes, "%s: sizes", f->name);
    if (x && want && nq == blocks * f->bytes) {
        uint8_t *got = malloc(nq);
        f->quant(x, got, (int64_t)n);
        size_t bad = 0;
        for (size_t k = 0; k < blocks; k++) {
            if (memcmp(got + k * f->bytes, want + k * f->bytes, f->bytes) == 0) continue;
            if (bad++ < 5) fprintf(stderr, "  %s quantize: block %zu differs\n", f->name, k);
        }
        printf("parity %s quantize: %zu blocks, %zu differ\n", f->name, blocks, bad);
        CHECK(blocks > 0 && bad == 0);
        free(got);
    }
    free(x), free(want);
}

static int run_parity(const char *dir) {
    for (int fi = 0; fi < N_FORMATS; fi++) parity_dequant(dir, &FORMATS[fi]);
    for (int fi = 0; fi < 2; fi++) parity_quant(dir, &FORMATS[fi]);
    return hd_test_finish();
}

int main(int argc, char **argv) {
    if (argc == 3 && !strcmp(argv[1], "--parity")) return run_parity(argv[2]);
    if (argc != 1) {
        fprintf(stderr, "usage: %s [--parity DIR]\n", argv[0]);
        return 2;
    }
    RUN_TEST(test_round_trips_stay_within_each_formats_error_bound);
    RUN_TEST(test_k_formats_give_each_sub_block_its_own_scale);
    RUN_TEST(test_quantization_is_deterministic_and_values_exactly_on_the_grid_survive);
    RUN_TEST(test_q8_0_block_decodes_int8_codes_times_d);
    RUN_TEST(test_q4_0_block_puts_values_16_to_31_in_the_high_nibbles);
    RUN_TEST(test_q4_k_block_unpacks_6_bit_scales_and_nibble_pairs);
    RUN_TEST(test_q5_k_block_takes_bit_4_from_qh_bit_j);
    RUN_TEST(test_q6_k_block_splits_codes_over_ql_qh_with_int8_scales);
    RUN_TEST(test_vector_decoders_match_the_portable_ones_bit_for_bit);
    return hd_test_finish();
}
