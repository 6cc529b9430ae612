/* Element types of tensors in files and in memory, and scalar conversions between them. */
#ifndef HD_CORE_DTYPE_H
#define HD_CORE_DTYPE_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef enum hd_dtype {
    HD_F32 = 0,
    HD_F16,
    HD_BF16,
    HD_F64,
    HD_F8_E4M3, /* recognised in files; not computed with yet */
    HD_F8_E5M2,
    HD_I64,
    HD_I32,
    HD_I16,
    HD_I8,
    HD_U8,
    HD_BOOL,
    HD_DTYPE_COUNT
} hd_dtype;

/* Bytes per element; 0 for an invalid dtype. */
size_t hd_dtype_size(hd_dtype t);
/* Name as written in safetensors headers ("BF16", "F32", ...). */
const char *hd_dtype_name(hd_dtype t);
/* Parses a safetensors dtype name; returns 0 and sets *t, or -1 if unknown. */
int hd_dtype_parse(const char *name, hd_dtype *t);
/* True for the floating-point types a float32 reader can convert (F32, F16, BF16, F64, F8*). */
int hd_dtype_is_float(hd_dtype t);

static inline float hd_bf16_to_f32(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* Round-to-nearest-even, as PyTorch's float -> bfloat16 cast (NaN stays NaN). */
static inline uint16_t hd_f32_to_bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

/* bf16(x) as a float: the value a bf16 round trip leaves. */
static inline float hd_round_bf16(float f) { return hd_bf16_to_f32(hd_f32_to_bf16(f)); }

float hd_f16_to_f32(uint16_t h);
uint16_t hd_f32_to_f16(float f);
float hd_f8e4m3_to_f32(uint8_t v);
float hd_f8e5m2_to_f32(uint8_t v);

/* Converts n elements of a float dtype at src to float32. Returns -1 for a non-float dtype. */
int hd_convert_to_f32(hd_dtype t, const void *src, float *dst, size_t n);

#endif
