/* Element types of tensors in files and in memory, and conversions between them.
 *
 * Every fact about a type lives in one table (dtype.c): its names, its block size (1 for plain
 * types; 32 or 256 for the GGUF block-quantized weight formats, which store a block of values
 * in block_bytes), its GGUF type id, whether it may hold a model weight, and how a run of it
 * becomes float32. A new weight format touches that table and the kernels that read it. */
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
    HD_F8_E4M3, /* fp8 weights ("scaled fp8": with a per-tensor scale; backend.h wscale) */
    HD_F8_E5M2,
    HD_I64,
    HD_I32,
    HD_I16,
    HD_I8,
    HD_U8,
    HD_BOOL,
    /* block-quantized weight formats (GGML layouts; quant.c) */
    HD_Q8_0, /* 32 values: f16 scale, 32 int8 */
    HD_Q4_0, /* 32 values: f16 scale, 16 bytes of 4-bit values (offset 8) */
    HD_Q4_K, /* 256 values: f16 d, dmin, 12 bytes of 6-bit scales/mins, 128 bytes of 4-bit */
    HD_Q5_K, /* 256 values: as Q4_K plus 32 bytes of high bits */
    HD_Q6_K, /* 256 values: 128 bytes low 4 bits, 64 bytes high 2 bits, 16 int8 scales, f16 d */
    HD_DTYPE_COUNT
} hd_dtype;

typedef struct hd_dtype_traits {
    const char *name;   /* as in safetensors headers ("BF16") or GGUF type names ("Q4_K") */
    int blk;            /* values per block: 1 for plain types */
    size_t block_bytes; /* bytes per block (the element size for plain types) */
    int in_safetensors; /* a dtype safetensors headers may name */
    int ggml_type;      /* GGUF tensor type id, -1 if GGUF has none */
    int weight;         /* may hold model weights (bound through hd_backend weight) */
    /* n values (a multiple of blk) starting at a block boundary -> float32; NULL: not float */
    void (*to_f32)(const void *src, float *dst, int64_t n);
} hd_dtype_traits;

/* The table entry; NULL for an invalid dtype. */
const hd_dtype_traits *hd_dtype_info(hd_dtype t);
/* Bytes per element of a plain type; 0 for a block type or an invalid dtype. */
size_t hd_dtype_size(hd_dtype t);
/* Bytes of n values (n a multiple of the block size); 0 if invalid or not whole blocks. */
uint64_t hd_dtype_row_bytes(hd_dtype t, int64_t n);
/* Values per block (1 for plain types, 0 for an invalid dtype). */
int hd_dtype_block(hd_dtype t);
const char *hd_dtype_name(hd_dtype t);
/* Parses a safetensors dtype name; returns 0 and sets *t, or -1 if unknown. */
int hd_dtype_parse(const char *name, hd_dtype *t);
/* Maps a GGUF tensor type id; returns 0 and sets *t, or -1 if unsupported. */
int hd_dtype_from_ggml(uint32_t ggml_type, hd_dtype *t);
/* True for the types that convert to float32 (plain floats and the quantized formats). */
int hd_dtype_is_float(hd_dtype t);
/* True for the block-quantized formats. */
static inline int hd_dtype_is_quantized(hd_dtype t) { return t >= HD_Q8_0 && t < HD_DTYPE_COUNT; }
/* True for the formats a model weight may be stored in. */
int hd_dtype_is_weight(hd_dtype t);

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

/* Converts n elements of a float dtype at src to float32 (n whole blocks for a quantized type).
 * Returns -1 for a non-float dtype or a partial block. */
int hd_convert_to_f32(hd_dtype t, const void *src, float *dst, size_t n);

#endif
