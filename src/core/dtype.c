#include "core/dtype.h"

static const struct {
    const char *name;
    size_t size;
} dtype_info[HD_DTYPE_COUNT] = {
    [HD_F32] = {"F32", 4},     [HD_F16] = {"F16", 2},         [HD_BF16] = {"BF16", 2},
    [HD_F64] = {"F64", 8},     [HD_F8_E4M3] = {"F8_E4M3", 1}, [HD_F8_E5M2] = {"F8_E5M2", 1},
    [HD_I64] = {"I64", 8},     [HD_I32] = {"I32", 4},         [HD_I16] = {"I16", 2},
    [HD_I8] = {"I8", 1},       [HD_U8] = {"U8", 1},           [HD_BOOL] = {"BOOL", 1},
};

size_t hd_dtype_size(hd_dtype t) { return (unsigned)t < HD_DTYPE_COUNT ? dtype_info[t].size : 0; }

const char *hd_dtype_name(hd_dtype t) {
    return (unsigned)t < HD_DTYPE_COUNT ? dtype_info[t].name : "?";
}

int hd_dtype_parse(const char *name, hd_dtype *t) {
    for (int i = 0; i < HD_DTYPE_COUNT; i++)
        if (strcmp(name, dtype_info[i].name) == 0) {
            *t = (hd_dtype)i;
            return 0;
        }
    return -1;
}

int hd_dtype_is_float(hd_dtype t) {
    return t == HD_F32 || t == HD_F16 || t == HD_BF16 || t == HD_F64 || t == HD_F8_E4M3 ||
           t == HD_F8_E5M2;
}

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
    switch (t) {
    case HD_F32: memcpy(dst, src, n * 4); return 0;
    case HD_BF16: {
        const uint16_t *s = src;
        for (size_t i = 0; i < n; i++) dst[i] = hd_bf16_to_f32(s[i]);
        return 0;
    }
    case HD_F16: {
        const uint16_t *s = src;
        for (size_t i = 0; i < n; i++) dst[i] = hd_f16_to_f32(s[i]);
        return 0;
    }
    case HD_F64: {
        const double *s = src;
        for (size_t i = 0; i < n; i++) dst[i] = (float)s[i];
        return 0;
    }
    case HD_F8_E4M3: {
        const uint8_t *s = src;
        for (size_t i = 0; i < n; i++) dst[i] = hd_f8e4m3_to_f32(s[i]);
        return 0;
    }
    case HD_F8_E5M2: {
        const uint8_t *s = src;
        for (size_t i = 0; i < n; i++) dst[i] = hd_f8e5m2_to_f32(s[i]);
        return 0;
    }
    default: return -1;
    }
}
