/* The GGML block-quantized weight formats: rows of values <-> blocks of bytes.
 *
 * Layouts are those of GGUF files (ggml's block_q8_0, block_q4_0, block_q4_K, block_q5_K,
 * block_q6_K; little-endian, f16 scales), so files written by other tools load here and files
 * written here load elsewhere. A row of n values (n a multiple of the block size, 32 or 256)
 * is n / blk consecutive blocks. Dequantization is exact arithmetic on the stored values and
 * matches the reference decoder of the `gguf` Python package bit for bit (tests/quant_parity.py).
 * Q8_0 and Q4_0 quantize to the same bytes as gguf-py's quantize() (and ggml's reference
 * quantizer, but for the sign of a zero scale). For the K formats each sub-block's scale (and min: 32 values for Q4_K / Q5_K,
 * 16 for Q6_K) is searched to reduce the squared error; the super-block f16 scale and the 6-bit
 * (Q6_K: int8) scale indices are then chosen against what a decoder will use, and the values
 * rounded to the nearest code under those final scales. */
#ifndef HD_CORE_QUANT_H
#define HD_CORE_QUANT_H

#include <stdint.h>

#include "core/dtype.h"

/* n values (a multiple of the block size) from the blocks at src into dst. */
void hd_dequant_q8_0(const void *src, float *dst, int64_t n);
void hd_dequant_q4_0(const void *src, float *dst, int64_t n);
void hd_dequant_q4_k(const void *src, float *dst, int64_t n);
void hd_dequant_q5_k(const void *src, float *dst, int64_t n);
void hd_dequant_q6_k(const void *src, float *dst, int64_t n);

/* n values (a multiple of the block size) into blocks at dst. Non-finite input values are
 * the caller's to reject (hd_quantize_row does). */
void hd_quant_q8_0(const float *src, void *dst, int64_t n);
void hd_quant_q4_0(const float *src, void *dst, int64_t n);
void hd_quant_q4_k(const float *src, void *dst, int64_t n);
void hd_quant_q5_k(const float *src, void *dst, int64_t n);
void hd_quant_q6_k(const float *src, void *dst, int64_t n);

/* The portable C decoder of a format (the vector decoders the ones above choose at run time
 * must give the same bits: tests compare them). */
void hd_dequant_portable(hd_dtype t, const void *src, float *dst, int64_t n);

/* The quantizer of a block format (hd_quant_q8_0 for HD_Q8_0, ...); NULL for other dtypes. */
typedef void (*hd_quant_row_fn)(const float *src, void *dst, int64_t n);
hd_quant_row_fn hd_quant_fn_for(hd_dtype t);

#endif
