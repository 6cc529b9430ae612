/* MT19937 and torch.randn (CPU, float32), bit-exact; see rng.h and spec 05 §1. */
#include "sample/rng.h"

#include <math.h>
#include <string.h>

/* Every float operation below must round on its own except the explicit fmaf calls, which
 * reproduce the FMAs PyTorch's compiler generated. ISO C mode (-std=c17) already keeps GCC from
 * contracting; clang needs the pragma, GCC in GNU mode the optimize pragma. */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__) && !defined(__STRICT_ANSI__)
#pragma GCC optimize("fp-contract=off")
#endif

/* ---- MT19937 --------------------------------------------------------------------------------- */

#define MT_M 397
#define MT_MATRIX_A 0x9908b0dfu
#define MT_UPPER 0x80000000u
#define MT_LOWER 0x7fffffffu

void hd_mt19937_seed(hd_mt19937 *mt, uint64_t seed) {
    mt->state[0] = (uint32_t)(seed & 0xffffffffu);
    for (uint32_t k = 1; k < HD_MT19937_N; k++) {
        uint32_t prev = mt->state[k - 1];
        mt->state[k] = 1812433253u * (prev ^ (prev >> 30)) + k;
    }
    mt->index = HD_MT19937_N;
}

static void mt_twist(hd_mt19937 *mt) {
    uint32_t *s = mt->state;
    for (int i = 0; i < HD_MT19937_N; i++) {
        uint32_t y = (s[i] & MT_UPPER) | (s[(i + 1) % HD_MT19937_N] & MT_LOWER);
        s[i] = s[(i + MT_M) % HD_MT19937_N] ^ (y >> 1) ^ ((y & 1u) ? MT_MATRIX_A : 0u);
    }
    mt->index = 0;
}

uint32_t hd_mt19937_next(hd_mt19937 *mt) {
    if (mt->index >= HD_MT19937_N) mt_twist(mt);
    uint32_t y = mt->state[mt->index++];
    y ^= y >> 11;
    y ^= (y << 7) & 0x9d2c5680u;
    y ^= (y << 15) & 0xefc60000u;
    y ^= y >> 18;
    return y;
}

/* ---- generator --------------------------------------------------------------------------------- */

void hd_torch_gen_seed(hd_torch_gen *g, uint64_t seed) {
    hd_mt19937_seed(&g->mt, seed);
    g->has_next_normal = 0;
    g->next_normal = 0.0;
}

/* uniform_real_distribution<float>(0, 1): 24 random bits of one 32-bit draw. */
static float uniform_f32(hd_torch_gen *g) {
    return (float)(hd_mt19937_next(&g->mt) & 0xffffffu) * 0x1p-24f;
}

/* uniform_real_distribution<double>(0, 1): 53 bits of random64() = (first << 32) | second. */
static double uniform_f64(hd_torch_gen *g) {
    uint64_t hi = hd_mt19937_next(&g->mt);
    uint64_t lo = hd_mt19937_next(&g->mt);
    uint64_t r = (hi << 32) | lo;
    return (double)(r & ((UINT64_C(1) << 53) - 1)) * 0x1p-53;
}

/* ---- single-precision Cephes log / sincos as PyTorch's AVX2 kernel evaluates them ------------- */

static uint32_t f32_bits(float x) {
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    return u;
}

static float f32_from_bits(uint32_t u) {
    float x;
    memcpy(&x, &u, sizeof x);
    return x;
}

/* log(x) for x in (0, 1] (a = 1 - u is never 0 nor denormal). */
static float cephes_logf(float x) {
    uint32_t bits = f32_bits(x);
    int32_t k = (int32_t)(bits >> 23) - 127;
    float m = f32_from_bits((bits & ~0x7f800000u) | 0x3f000000u); /* mantissa in [0.5, 1) */
    float e = (float)k + 1.0f;
    if (m < 0.707106781186547524f) {
        e = e - 1.0f;
        m = (m - 1.0f) + m;
    } else {
        m = m - 1.0f;
    }
    float z = m * m;
    float y = 7.0376836292e-2f;
    y = fmaf(y, m, -1.1514610310e-1f);
    y = fmaf(y, m, 1.1676998740e-1f);
    y = fmaf(y, m, -1.2420140846e-1f);
    y = fmaf(y, m, 1.4249322787e-1f);
    y = fmaf(y, m, -1.6668057665e-1f);
    y = fmaf(y, m, 2.0000714765e-1f);
    y = fmaf(y, m, -2.4999993993e-1f);
    y = fmaf(y, m, 3.3333331174e-1f);
    y = y * m;
    y = fmaf(y, z, e * -2.12194440e-4f);
    y = fmaf(z, -0.5f, y);
    return fmaf(e, 0.693359375f, m + y);
}

/* sin and cos of theta >= 0. */
static void cephes_sincosf(float theta, float *sin_out, float *cos_out) {
    int32_t j = (int32_t)(theta * 1.27323954473516f); /* truncation, as cvttps */
    j = (j + 1) & ~1;
    float q = (float)j;
    float x = fmaf(q, -0.78515625f, theta);
    x = fmaf(q, -2.4187564849853515625e-4f, x);
    x = fmaf(q, -3.77489497744594108e-8f, x);
    float z = x * x;

    float c = fmaf(2.443315711809948e-5f, z, -1.388731625493765e-3f);
    c = fmaf(c, z, 4.166664568298827e-2f);
    c = c * z;
    c = fmaf(c, z, -(z * 0.5f));
    c = c + 1.0f;

    float s = fmaf(-1.9515295891e-4f, z, 8.3321608736e-3f);
    s = fmaf(s, z, -1.6666654611e-1f);
    s = s * z;
    s = fmaf(s, x, x);

    float sn = s, cs = c;
    if (j & 2) {
        sn = c;
        cs = s;
    }
    if (j & 4) sn = -sn;
    if ((((uint32_t)j - 2u) & 4u) == 0) cs = -cs;
    *sin_out = sn;
    *cos_out = cs;
}

/* Box–Muller on 16 uniforms in place: d[0..8) pair with d[8..16). */
static void box_muller_16(float *d) {
    const float two_pi = 6.2831855f; /* fl32(2*pi) */
    for (int j = 0; j < 8; j++) {
        float a = 1.0f - d[j];
        float b = d[j + 8];
        float r = sqrtf(-2.0f * cephes_logf(a));
        float theta = two_pi * b;
        float sn, cs;
        cephes_sincosf(theta, &sn, &cs);
        /* PyTorch finishes with fma(n, std, mean), std = 1, mean = 0: a -0 becomes +0. */
        d[j] = fmaf(r * cs, 1.0f, 0.0f);
        d[j + 8] = fmaf(r * sn, 1.0f, 0.0f);
    }
}

/* ---- randn ------------------------------------------------------------------------------------- */

static float scalar_normal(hd_torch_gen *g) {
    double v;
    if (g->has_next_normal) {
        g->has_next_normal = 0;
        v = g->next_normal;
    } else {
        double u1 = uniform_f64(g);
        double u2 = uniform_f64(g);
        double r = sqrt(-2.0 * log1p(-u2));
        double theta = 2.0 * 3.14159265358979323846 * u1;
        g->next_normal = r * sin(theta);
        g->has_next_normal = 1;
        v = r * cos(theta);
    }
    return (float)(v * 1.0 + 0.0); /* transformation::normal(v, mean 0, std 1) in double */
}

void hd_torch_gen_randn(hd_torch_gen *g, float *out, size_t n) {
    if (n < 16) {
        for (size_t i = 0; i < n; i++) out[i] = scalar_normal(g);
        return;
    }
    for (size_t i = 0; i < n; i++) out[i] = uniform_f32(g);
    for (size_t i = 0; i + 16 <= n; i += 16) box_muller_16(out + i);
    if (n % 16 != 0) {
        float *tail = out + n - 16;
        for (int i = 0; i < 16; i++) tail[i] = uniform_f32(g);
        box_muller_16(tail);
    }
}

void hd_torch_randn(uint64_t seed, float *out, size_t n) {
    hd_torch_gen g;
    hd_torch_gen_seed(&g, seed);
    hd_torch_gen_randn(&g, out, n);
}
