/* GGML block-quantized formats (quant.h). Each format has an unpack (bytes -> integer codes and
 * scales) used by dequantization and a matching pack used by quantization, so the two agree on
 * the layout by construction.
 *
 * Decoding is bit-exact with gguf-py (and ggml) by construction, not by luck of evaluation
 * order: every product is of an f16 (11 significant bits), a scale index (at most 7: 6-bit, or
 * int8 whose one 8-bit magnitude, 128, is a power of two) and a code (at most 5: |q| <= 31 or
 * 32), so it has at most 23 significant bits and is exact in float32; the only rounding is the
 * final subtraction (d*sc)*q - dmin*m of Q4_K / Q5_K. Reordering the products or fusing them
 * into an FMA gives the same bits. */
#include "core/quant.h"

#include <math.h>
#include <string.h>

#include "core/cpu_features.h"
#include "core/dtype.h"
#include "core/quant_isa.h"

#define QK 32   /* values per Q8_0 / Q4_0 block */
#define QK_K 256 /* values per K-format super-block */
enum { Q8_0_BYTES = 34, Q4_0_BYTES = 18, Q4_K_BYTES = 144, Q5_K_BYTES = 176, Q6_K_BYTES = 210 };

static float f16_at(const uint8_t *p) { return hd_f16_to_f32((uint16_t)(p[0] | p[1] << 8)); }

/* Stores f as f16 and returns the value stored, which is what a decoder will multiply by. */
static float put_f16(uint8_t *p, float f) {
    uint16_t h = hd_f32_to_f16(f);
    p[0] = (uint8_t)h, p[1] = (uint8_t)(h >> 8);
    return hd_f16_to_f32(h);
}

/* Stores the smallest f16 >= f (f >= 0 finite) and returns it: a super-block scale rounded up
 * keeps the largest sub-block scale within its 6- or 8-bit index instead of clamping it, which
 * matters most where f16 is subnormal and a rounding step is a large fraction of d. */
static float put_f16_up(uint8_t *p, float f) {
    uint16_t h = hd_f32_to_f16(f);
    if (hd_f16_to_f32(h) < f && h < 0x7c00) h++;
    p[0] = (uint8_t)h, p[1] = (uint8_t)(h >> 8);
    return hd_f16_to_f32(h);
}

static int s8(uint8_t v) { return v < 128 ? v : v - 256; }
static int clampi(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }

/* The nearest integer in 0..hi to v, which may be out of range or NaN (then 0). Clamping in
 * float first keeps the conversion defined; no libm call, as this is the quantizers' inner
 * loop. */
static int nearest(float v, int hi) {
    v = v > 0.0f ? v : 0.0f;
    v = v < (float)hi ? v : (float)hi;
    return (int)(v + 0.5f);
}

/* ---- Q8_0 and Q4_0: one f16 scale per 32 values -------------------------------------------- */

static void dequant_q8_0_portable(const void *src, float *dst, int64_t n) {
    const uint8_t *b = src;
    for (int64_t i = 0; i < n / QK; i++, b += Q8_0_BYTES, dst += QK) {
        float d = f16_at(b);
        for (int j = 0; j < QK; j++) dst[j] = (float)s8(b[2 + j]) * d;
    }
}

void hd_dequant_q4_0(const void *src, float *dst, int64_t n) {
    const uint8_t *b = src;
    for (int64_t i = 0; i < n / QK; i++, b += Q4_0_BYTES, dst += QK) {
        float d = f16_at(b);
        for (int j = 0; j < QK / 2; j++) { /* low nibbles are values 0..15, high 16..31 */
            dst[j] = d * (float)((b[2 + j] & 15) - 8);
            dst[j + QK / 2] = d * (float)((b[2 + j] >> 4) - 8);
        }
    }
}

/* ggml's quantize_row_q8_0_ref: d = amax/127 (stored as f16), codes round(x / d) half away from
 * zero, computed with the unrounded float32 reciprocal as ggml and gguf-py do. Where 1/d
 * overflows (amax below ~1e-36; the stored d is 0 then) codes are 0, as gguf-py's are on x86,
 * instead of ggml's undefined float-to-int conversion. */
void hd_quant_q8_0(const float *src, void *dst, int64_t n) {
    uint8_t *b = dst;
    for (int64_t i = 0; i < n / QK; i++, b += Q8_0_BYTES, src += QK) {
        float amax = 0.0f;
        for (int j = 0; j < QK; j++) amax = fmaxf(amax, fabsf(src[j]));
        float d = amax / 127.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
        put_f16(b, d);
        for (int j = 0; j < QK; j++) {
            float v = src[j] * id;
            b[2 + j] = isfinite(v) ? (uint8_t)(int)roundf(v) : 0;
        }
    }
}

/* ggml's quantize_row_q4_0_ref: the value of largest magnitude (the first of equals, as numpy's
 * argmax) maps to code 0 (-8), so its side of zero gets the extra level; codes truncate x/d + 8.5.
 * Starting from x[0] rather than 0 keeps the sign of d for an all-zero block as gguf-py has it;
 * non-finite x/d (1/d overflowed) gives code 0 as there (see hd_quant_q8_0). */
void hd_quant_q4_0(const float *src, void *dst, int64_t n) {
    uint8_t *b = dst;
    for (int64_t i = 0; i < n / QK; i++, b += Q4_0_BYTES, src += QK) {
        float amax = fabsf(src[0]), vmax = src[0];
        for (int j = 1; j < QK; j++)
            if (fabsf(src[j]) > amax) amax = fabsf(src[j]), vmax = src[j];
        float d = vmax / -8.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
        put_f16(b, d);
        for (int j = 0; j < QK / 2; j++) {
            float lo = src[j] * id + 8.5f, hi = src[j + QK / 2] * id + 8.5f;
            int q0 = isfinite(lo) ? clampi((int)lo, 0, 15) : 0;
            int q1 = isfinite(hi) ? clampi((int)hi, 0, 15) : 0;
            b[2 + j] = (uint8_t)(q0 | q1 << 4);
        }
    }
}

/* ---- Q4_K and Q5_K: 8 sub-blocks of 32, value = (d*sc)*q - (dmin*m) ------------------------ */

/* The 12 scale bytes hold eight 6-bit scales and eight 6-bit mins (ggml's get_scale_min_k4):
 * bytes 0-3 / 4-7 hold scales / mins 0-3 in their low 6 bits, and the top 2 bits of scales /
 * mins 4-7; bytes 8-11 hold the low 4 bits of scale (low nibble) and min (high nibble) 4-7. */
static void unpack_scales_k4(const uint8_t *s, uint8_t sc[8], uint8_t m[8]) {
    for (int j = 0; j < 4; j++) {
        sc[j] = s[j] & 63, m[j] = s[j + 4] & 63;
        sc[j + 4] = (uint8_t)((s[j + 8] & 15) | (s[j] >> 6) << 4);
        m[j + 4] = (uint8_t)((s[j + 8] >> 4) | (s[j + 4] >> 6) << 4);
    }
}

static void pack_scales_k4(const uint8_t sc[8], const uint8_t m[8], uint8_t *s) {
    for (int j = 0; j < 4; j++) {
        s[j] = (uint8_t)(sc[j] | (sc[j + 4] >> 4) << 6);
        s[j + 4] = (uint8_t)(m[j] | (m[j + 4] >> 4) << 6);
        s[j + 8] = (uint8_t)((sc[j + 4] & 15) | (m[j + 4] & 15) << 4);
    }
}

/* Codes of a Q4_K (qh NULL) or Q5_K super-block: byte l of 32-byte group g holds value 64g + l in
 * its low nibble and 64g + 32 + l in its high nibble; bit j of qh[l] is bit 4 of value 32j + l. */
static void unpack_codes_k(const uint8_t *qs, const uint8_t *qh, uint8_t q[QK_K]) {
    for (int j = 0; j < 8; j++)
        for (int l = 0; l < 32; l++) {
            int v = (qs[32 * (j / 2) + l] >> (4 * (j & 1))) & 15;
            if (qh) v |= ((qh[l] >> j) & 1) << 4;
            q[32 * j + l] = (uint8_t)v;
        }
}

static void pack_codes_k(const uint8_t q[QK_K], uint8_t *qs, uint8_t *qh) {
    if (qh) memset(qh, 0, 32);
    for (int g = 0; g < 4; g++)
        for (int l = 0; l < 32; l++)
            qs[32 * g + l] = (uint8_t)((q[64 * g + l] & 15) | (q[64 * g + 32 + l] & 15) << 4);
    for (int j = 0; qh && j < 8; j++)
        for (int l = 0; l < 32; l++) qh[l] |= (uint8_t)((q[32 * j + l] >> 4) << j);
}

/* Header common to Q4_K and Q5_K: f16 d, f16 dmin, 12 scale bytes. */
static void dequant_affine_k(const uint8_t *b, const uint8_t *qh, const uint8_t *qs, float *y) {
    uint8_t sc[8], m[8], q[QK_K];
    unpack_scales_k4(b + 4, sc, m);
    unpack_codes_k(qs, qh, q);
    float d = f16_at(b), dmin = f16_at(b + 2);
    for (int j = 0; j < 8; j++) {
        float ds = d * (float)sc[j], dm = dmin * (float)m[j];
        for (int l = 0; l < 32; l++) y[32 * j + l] = ds * (float)q[32 * j + l] - dm;
    }
}

static void dequant_q4_k_portable(const void *src, float *dst, int64_t n) {
    const uint8_t *b = src;
    for (int64_t i = 0; i < n / QK_K; i++, b += Q4_K_BYTES, dst += QK_K)
        dequant_affine_k(b, NULL, b + 16, dst);
}

void hd_dequant_q5_k(const void *src, float *dst, int64_t n) {
    const uint8_t *b = src;
    for (int64_t i = 0; i < n / QK_K; i++, b += Q5_K_BYTES, dst += QK_K)
        dequant_affine_k(b, b + 16, b + 48, dst);
}

/* Codes for x ≈ s*q - m with q in 0..nmax, rounded to nearest; returns the squared error of the
 * decoded values (computed as the decoder does). */
static float codes_affine(const float *x, int n, int nmax, float s, float m, uint8_t *q) {
    float err = 0.0f, is = s > 0.0f ? 1.0f / s : 0.0f;
    for (int i = 0; i < n; i++) {
        int c = nearest((x[i] + m) * is, nmax);
        float p = s * (float)c, e = (p - m) - x[i];
        q[i] = (uint8_t)c;
        err += e * e;
    }
    return err;
}

/* Least-squares (s, m) for fixed codes, keeping m >= 0 (the format stores mins unsigned and
 * ggml's decoders subtract them); leaves s, m alone when the codes cannot determine them. */
static void refit_affine(const float *x, const uint8_t *q, int n, float *s, float *m) {
    float sq = 0, sqq = 0, sx = 0, sqx = 0;
    for (int i = 0; i < n; i++) {
        float c = (float)q[i];
        sq += c, sqq += c * c, sx += x[i], sqx += c * x[i];
    }
    float det = (float)n * sqq - sq * sq;
    if (det <= 0.0f) return;
    float ns = ((float)n * sqx - sq * sx) / det, nb = (sqq * sx - sq * sqx) / det;
    if (nb > 0.0f) nb = 0.0f, ns = sqx / sqq; /* the offset -m may not be positive */
    if (ns > 0.0f) *s = ns, *m = -nb;
}

/* Scale and min of one sub-block: step sizes around (max - min)/nmax, each refit by least
 * squares for the codes it gives; the least squared error wins. */
static void search_affine(const float *x, int n, int nmax, float *s_out, float *m_out) {
    float lo = 0.0f, hi = x[0];
    uint8_t q[QK];
    for (int i = 0; i < n; i++) lo = fminf(lo, x[i]), hi = fmaxf(hi, x[i]);
    *s_out = 0.0f, *m_out = -lo;
    if (hi <= lo) return; /* constant sub-block at or below zero: the min alone is exact */
    float best = INFINITY;
    for (int k = -2; k <= 2; k++) {
        float s = (hi - lo) / ((float)nmax + 0.5f * (float)k), m = -lo;
        codes_affine(x, n, nmax, s, m, q);
        refit_affine(x, q, n, &s, &m);
        float err = codes_affine(x, n, nmax, s, m, q);
        if (err < best) best = err, *s_out = s, *m_out = m;
    }
}

/* 6-bit index of v on the grid of step d. */
static int grid6(float v, float d) { return d > 0.0f ? clampi((int)lroundf(v / d), 0, 63) : 0; }

/* The 6-bit (scale, min) indices of one sub-block: s/d and m/dmin rounded, or a neighbour of
 * each where the codes it gives decode with less error. Writes the winning codes to q. */
static void pick_affine(const float *x, int nmax, float s, float m, float d, float dmin,
                        uint8_t *sc, uint8_t *mn, uint8_t *q) {
    int c0 = grid6(s, d), m0 = grid6(m, dmin);
    uint8_t tmp[32];
    float best = codes_affine(x, 32, nmax, d * (float)c0, dmin * (float)m0, q);
    *sc = (uint8_t)c0, *mn = (uint8_t)m0;
    for (int c = clampi(c0 - 1, 0, 63); c <= clampi(c0 + 1, 0, 63); c++)
        for (int k = clampi(m0 - 1, 0, 63); k <= clampi(m0 + 1, 0, 63); k++) {
            float err = codes_affine(x, 32, nmax, d * (float)c, dmin * (float)k, tmp);
            if (!(err < best)) continue;
            best = err, *sc = (uint8_t)c, *mn = (uint8_t)k;
            memcpy(q, tmp, 32);
        }
}

/* One Q4_K / Q5_K super-block: per sub-block (s, m), then d = max s / 63 and dmin = max m / 63
 * stored as f16, then 6-bit indices and codes chosen against the f16 values a decoder uses. */
static void quant_affine_k(const float *x, int nmax, uint8_t *b, uint8_t *qh, uint8_t *qs) {
    float s[8], m[8], smax = 0.0f, mmax = 0.0f;
    for (int j = 0; j < 8; j++) {
        search_affine(x + 32 * j, 32, nmax, &s[j], &m[j]);
        smax = fmaxf(smax, s[j]), mmax = fmaxf(mmax, m[j]);
    }
    float d = put_f16_up(b, smax / 63.0f), dmin = put_f16_up(b + 2, mmax / 63.0f);
    uint8_t sc[8], mn[8], q[QK_K];
    for (int j = 0; j < 8; j++)
        pick_affine(x + 32 * j, nmax, s[j], m[j], d, dmin, &sc[j], &mn[j], q + 32 * j);
    pack_scales_k4(sc, mn, b + 4);
    pack_codes_k(q, qs, qh);
}

void hd_quant_q4_k(const float *src, void *dst, int64_t n) {
    uint8_t *b = dst;
    for (int64_t i = 0; i < n / QK_K; i++, b += Q4_K_BYTES, src += QK_K)
        quant_affine_k(src, 15, b, NULL, b + 16);
}

void hd_quant_q5_k(const float *src, void *dst, int64_t n) {
    uint8_t *b = dst;
    for (int64_t i = 0; i < n / QK_K; i++, b += Q5_K_BYTES, src += QK_K)
        quant_affine_k(src, 31, b, b + 16, b + 48);
}

/* ---- Q6_K: 16 sub-blocks of 16, value = (d*sc)*(q - 32), sc int8 ----------------------------- */

/* Layout: two halves of 128 values, each with 64 ql bytes and 32 qh bytes. In a half, value
 * 32k + l (k = 0..3, l = 0..31) has its low 4 bits in ql[l + 32(k & 1)] (low nibble for k < 2,
 * high for k >= 2) and its high 2 bits in bits 2k..2k+1 of qh[l]. Codes here are 0..63. */
static void unpack_codes_q6(const uint8_t *ql, const uint8_t *qh, uint8_t q[QK_K]) {
    for (int h = 0; h < 2; h++)
        for (int k = 0; k < 4; k++)
            for (int l = 0; l < 32; l++) {
                int lo = (ql[64 * h + 32 * (k & 1) + l] >> (4 * (k >> 1))) & 15;
                int hi = (qh[32 * h + l] >> (2 * k)) & 3;
                q[128 * h + 32 * k + l] = (uint8_t)(lo | hi << 4);
            }
}

static void pack_codes_q6(const uint8_t q[QK_K], uint8_t *ql, uint8_t *qh) {
    memset(ql, 0, 128), memset(qh, 0, 64);
    for (int h = 0; h < 2; h++)
        for (int k = 0; k < 4; k++)
            for (int l = 0; l < 32; l++) {
                int v = q[128 * h + 32 * k + l];
                ql[64 * h + 32 * (k & 1) + l] |= (uint8_t)((v & 15) << (4 * (k >> 1)));
                qh[32 * h + l] |= (uint8_t)((v >> 4) << (2 * k));
            }
}

void hd_dequant_q6_k(const void *src, float *dst, int64_t n) {
    const uint8_t *b = src;
    uint8_t q[QK_K];
    for (int64_t i = 0; i < n / QK_K; i++, b += Q6_K_BYTES, dst += QK_K) {
        unpack_codes_q6(b, b + 128, q);
        float d = f16_at(b + 208);
        for (int j = 0; j < 16; j++) {
            float ds = d * (float)s8(b[192 + j]);
            for (int l = 0; l < 16; l++) dst[16 * j + l] = ds * (float)(q[16 * j + l] - 32);
        }
    }
}

/* Signed codes for x ≈ s*c, c in -32..31; returns the squared error of the decoded values. */
static float codes_symmetric(const float *x, int n, float s, uint8_t *q) {
    float err = 0.0f, is = s != 0.0f ? 1.0f / s : 0.0f;
    for (int i = 0; i < n; i++) {
        int c = nearest(x[i] * is + 32.0f, 63) - 32;
        float e = s * (float)c - x[i];
        q[i] = (uint8_t)(c + 32);
        err += e * e;
    }
    return err;
}

/* Scale of one 16-value sub-block: steps that put the largest-magnitude value at -32..-28 (the
 * side with the extra level) or at 27..31, each refit by least squares; least error wins. */
static float search_symmetric(const float *x, int n) {
    float amax = 0.0f, vmax = 0.0f, best = INFINITY, best_s = 0.0f;
    uint8_t q[16];
    for (int i = 0; i < n; i++)
        if (fabsf(x[i]) > amax) amax = fabsf(x[i]), vmax = x[i];
    if (amax == 0.0f) return 0.0f;
    for (int k = 0; k < 10; k++) {
        float s = k < 5 ? vmax / -(32.0f - (float)k) : vmax / (31.0f - (float)(k - 5));
        codes_symmetric(x, n, s, q);
        float sqq = 0.0f, sqx = 0.0f;
        for (int i = 0; i < n; i++) {
            float c = (float)(q[i] - 32);
            sqq += c * c, sqx += c * x[i];
        }
        if (sqq > 0.0f) s = sqx / sqq;
        float err = codes_symmetric(x, n, s, q);
        if (err < best) best = err, best_s = s;
    }
    return best_s;
}

/* The int8 scale index of one sub-block: s/d rounded, or a neighbour where its codes decode
 * with less error. Writes the winning codes to q. */
static int8_t pick_symmetric(const float *x, float s, float d, uint8_t *q) {
    int c0 = d > 0.0f ? clampi((int)lroundf(s / d), -128, 127) : 0, best_c = c0;
    uint8_t tmp[16];
    float best = codes_symmetric(x, 16, d * (float)c0, q);
    for (int c = clampi(c0 - 1, -128, 127); c <= clampi(c0 + 1, -128, 127); c++) {
        float err = codes_symmetric(x, 16, d * (float)c, tmp);
        if (!(err < best)) continue;
        best = err, best_c = c;
        memcpy(q, tmp, 16);
    }
    return (int8_t)best_c;
}

/* One Q6_K super-block: sub-block scales, d = max |scale| / 127 stored as f16, then int8 indices
 * and codes chosen against the f16 d a decoder uses. */
static void quant_q6_k_block(const float *x, uint8_t *b) {
    float s[16], amax = 0.0f;
    for (int j = 0; j < 16; j++) {
        s[j] = search_symmetric(x + 16 * j, 16);
        amax = fmaxf(amax, fabsf(s[j]));
    }
    float d = put_f16_up(b + 208, amax / 127.0f);
    uint8_t q[QK_K];
    for (int j = 0; j < 16; j++)
        b[192 + j] = (uint8_t)pick_symmetric(x + 16 * j, s[j], d, q + 16 * j);
    pack_codes_q6(q, b, b + 128);
}

void hd_quant_q6_k(const float *src, void *dst, int64_t n) {
    uint8_t *b = dst;
    for (int64_t i = 0; i < n / QK_K; i++, b += Q6_K_BYTES, src += QK_K) quant_q6_k_block(src, b);
}

hd_quant_row_fn hd_quant_fn_for(hd_dtype t) {
    switch (t) {
    case HD_Q8_0: return hd_quant_q8_0;
    case HD_Q4_0: return hd_quant_q4_0;
    case HD_Q4_K: return hd_quant_q4_k;
    case HD_Q5_K: return hd_quant_q5_k;
    case HD_Q6_K: return hd_quant_q6_k;
    default: return NULL;
    }
}

/* ---- run-time choice of the decoders ------------------------------------------------------- */

/* 1 when the AVX2 decoders may run (checked once; a racing first call just checks twice). */
static int use_avx2(void) {
    static int state; /* 0 unknown, 1 no, 2 yes */
    int s = __atomic_load_n(&state, __ATOMIC_RELAXED);
    if (s == 0) {
        s = hd_cpu_isa_supported(HD_ISA_AVX2) ? 2 : 1;
        __atomic_store_n(&state, s, __ATOMIC_RELAXED);
    }
    return s == 2;
}

void hd_dequant_q8_0(const void *src, float *dst, int64_t n) {
    if (use_avx2()) hd_dequant_q8_0_avx2(src, dst, n);
    else dequant_q8_0_portable(src, dst, n);
}

void hd_dequant_q4_k(const void *src, float *dst, int64_t n) {
    if (use_avx2()) hd_dequant_q4_k_avx2(src, dst, n);
    else dequant_q4_k_portable(src, dst, n);
}

void hd_dequant_portable(hd_dtype t, const void *src, float *dst, int64_t n) {
    if (t == HD_Q8_0) dequant_q8_0_portable(src, dst, n);
    else if (t == HD_Q4_K) dequant_q4_k_portable(src, dst, n);
    else hd_dtype_info(t)->to_f32(src, dst, n);
}
