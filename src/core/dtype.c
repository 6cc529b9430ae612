#include "core/dtype.h"

#include "core/quant.h"

static void f32_to_f32(const void *src, float *dst, int64_t n) {
    memcpy(dst, src, (size_t)n * sizeof(float));
}
static void bf16_to_f32(const void *src, float *dst, int64_t n) {
    const uint16_t *s = src;
    for (int64_t i = 0; i < n; i++) dst[i] = hd_bf16_to_f32(s[i]);
}
static void f16_to_f32(const void *src, float *dst, int64_t n) {
    const uint16_t *s = src;
    for (int64_t i = 0; i < n; i++) dst[i] = hd_f16_to_f32(s[i]);
}
static void f64_to_f32(const void *src, float *dst, int64_t n) {
    const double *s = src;
    for (int64_t i = 0; i < n; i++) dst[i] = (float)s[i];
}
static void e4m3_to_f32(const void *src, float *dst, int64_t n) {
    const uint8_t *s = src;
    for (int64_t i = 0; i < n; i++) dst[i] = hd_f8e4m3_to_f32(s[i]);
}
static void e5m2_to_f32(const void *src, float *dst, int64_t n) {
    const uint8_t *s = src;
    for (int64_t i = 0; i < n; i++) dst[i] = hd_f8e5m2_to_f32(s[i]);
}

/* name, values per block, bytes per block, safetensors name, GGUF id, weight format, to_f32 */
static const hd_dtype_traits dtype_info[HD_DTYPE_COUNT] = {
    [HD_F32] = {"F32", 1, 4, 1, 0, 1, f32_to_f32},
    [HD_F16] = {"F16", 1, 2, 1, 1, 1, f16_to_f32},
    [HD_BF16] = {"BF16", 1, 2, 1, 30, 1, bf16_to_f32},
    [HD_F64] = {"F64", 1, 8, 1, 28, 0, f64_to_f32},
    [HD_F8_E4M3] = {"F8_E4M3", 1, 1, 1, -1, 1, e4m3_to_f32},
    [HD_F8_E5M2] = {"F8_E5M2", 1, 1, 1, -1, 1, e5m2_to_f32},
    [HD_I64] = {"I64", 1, 8, 1, 27, 0, NULL},
    [HD_I32] = {"I32", 1, 4, 1, 26, 0, NULL},
    [HD_I16] = {"I16", 1, 2, 1, 25, 0, NULL},
    [HD_I8] = {"I8", 1, 1, 1, 24, 0, NULL},
    [HD_U8] = {"U8", 1, 1, 1, -1, 0, NULL},
    [HD_BOOL] = {"BOOL", 1, 1, 1, -1, 0, NULL},
    [HD_Q8_0] = {"Q8_0", 32, 34, 0, 8, 1, hd_dequant_q8_0},
    [HD_Q4_0] = {"Q4_0", 32, 18, 0, 2, 1, hd_dequant_q4_0},
    [HD_Q4_K] = {"Q4_K", 256, 144, 0, 12, 1, hd_dequant_q4_k},
    [HD_Q5_K] = {"Q5_K", 256, 176, 0, 13, 1, hd_dequant_q5_k},
    [HD_Q6_K] = {"Q6_K", 256, 210, 0, 14, 1, hd_dequant_q6_k},
};

const hd_dtype_traits *hd_dtype_info(hd_dtype t) {
    return (unsigned)t < HD_DTYPE_COUNT ? &dtype_info[t] : NULL;
}

size_t hd_dtype_size(hd_dtype t) {
    return (unsigned)t < HD_DTYPE_COUNT && dtype_info[t].blk == 1 ? dtype_info[t].block_bytes : 0;
}

int hd_dtype_block(hd_dtype t) { return (unsigned)t < HD_DTYPE_COUNT ? dtype_info[t].blk : 0; }

uint64_t hd_dtype_row_bytes(hd_dtype t, int64_t n) {
    if ((unsigned)t >= HD_DTYPE_COUNT || n < 0 || n % dtype_info[t].blk) return 0;
    return (uint64_t)(n / dtype_info[t].blk) * dtype_info[t].block_bytes;
}

const char *hd_dtype_name(hd_dtype t) {
    return (unsigned)t < HD_DTYPE_COUNT ? dtype_info[t].name : "?";
}

int hd_dtype_parse(const char *name, hd_dtype *t) {
    for (int i = 0; i < HD_DTYPE_COUNT; i++)
        if (dtype_info[i].in_safetensors && strcmp(name, dtype_info[i].name) == 0) {
            *t = (hd_dtype)i;
            return 0;
        }
    return -1;
}

int hd_dtype_from_ggml(uint32_t ggml_type, hd_dtype *t) {
    for (int i = 0; i < HD_DTYPE_COUNT; i++)
        if (dtype_info[i].ggml_type >= 0 && (uint32_t)dtype_info[i].ggml_type == ggml_type) {
            *t = (hd_dtype)i;
            return 0;
        }
    return -1;
}

int hd_dtype_is_float(hd_dtype t) { return (unsigned)t < HD_DTYPE_COUNT && dtype_info[t].to_f32; }

int hd_dtype_is_weight(hd_dtype t) { return (unsigned)t < HD_DTYPE_COUNT && dtype_info[t].weight; }

float hd_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ff, u;
    if (exp == 0) {
        float f = ldexpf((float)man, -24);
        return sign ? -f : f;
    } else if (exp == 31) {
        u = sign | 0x7f800000u | (man << 13);
    } else {
        u = sign | ((exp + 112) << 23) | (man << 13);
    }
    float f;
    memcpy(&f, &u, 4);
    return f;
}

uint16_t hd_f32_to_f16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    uint16_t sign = (uint16_t)((u >> 16) & 0x8000);
    uint32_t a = u & 0x7fffffffu;
    if (a > 0x7f800000u) return sign | 0x7e00;          /* NaN */
    if (a >= 0x477ff000u) return sign | 0x7c00;         /* overflow -> inf */
    if (a < 0x38800000u) {                              /* subnormal or zero */
        float m = fabsf(f) * 16777216.0f;               /* units of 2^-24 */
        uint32_t r = (uint32_t)nearbyintf(m);
        return sign | (uint16_t)r;
    }
    uint32_t r = a + 0xfffu + ((a >> 13) & 1u);         /* round to nearest even */
    return sign | (uint16_t)((r - 0x38000000u) >> 13);
}

float hd_f8e4m3_to_f32(uint8_t v) {
    int sign = v >> 7, exp = (v >> 3) & 15, man = v & 7;
    float f;
    if (exp == 15 && man == 7) return NAN;
    if (exp == 0) f = ldexpf((float)man, -9);
    else f = ldexpf(1.0f + man / 8.0f, exp - 7);
    return sign ? -f : f;
}

float hd_f8e5m2_to_f32(uint8_t v) { return hd_f16_to_f32((uint16_t)v << 8); }

int hd_convert_to_f32(hd_dtype t, const void *src, float *dst, size_t n) {
    const hd_dtype_traits *d = hd_dtype_info(t);
    if (!d || !d->to_f32 || n % (size_t)d->blk) return -1;
    d->to_f32(src, dst, (int64_t)n);
    return 0;
}
