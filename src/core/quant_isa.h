/* ISA-specific block decoders (quant_avx2.c), chosen at run time by quant.c. */
#ifndef HD_CORE_QUANT_ISA_H
#define HD_CORE_QUANT_ISA_H

#include <stdint.h>

void hd_dequant_q8_0_avx2(const void *src, float *dst, int64_t n);
void hd_dequant_q4_k_avx2(const void *src, float *dst, int64_t n);

#endif
