/* AVX2 + F16C decoders of the most used block formats (Q8_0, Q4_K), chosen at run time by
 * quant.c. Same bits as the portable decoders: every product is exact in float32 (quant.c), so
 * the vector order changes nothing. */
#include <immintrin.h>
#include <stdint.h>
#include <string.h>

#include "core/quant_isa.h"

static inline float f16_at(const uint8_t *p) {
    uint16_t h;
    memcpy(&h, p, 2);
    return _cvtsh_ss(h);
}

/* 8 signed bytes at p as 8 floats. */
static inline __m256 s8x8(const uint8_t *p) {
    __m128i v = _mm_loadl_epi64((const __m128i *)p);
    return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(v));
}

void hd_dequant_q8_0_avx2(const void *src, float *dst, int64_t n) {
    const uint8_t *b = src;
    for (int64_t i = 0; i < n / 32; i++, b += 34, dst += 32) {
        __m256 d = _mm256_set1_ps(f16_at(b));
        for (int j = 0; j < 32; j += 8) _mm256_storeu_ps(dst + j, _mm256_mul_ps(d, s8x8(b + 2 + j)));
    }
}

/* 8 unsigned 4-bit codes (already isolated in bytes) at p as 8 floats. */
static inline __m256 u8x8(__m128i bytes) { return _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(bytes)); }

/* Scale and min j of a Q4_K/Q5_K super-block (ggml's get_scale_min_k4). */
static inline void scale_min(const uint8_t *s, int j, int *sc, int *m) {
    if (j < 4) {
        *sc = s[j] & 63, *m = s[j + 4] & 63;
    } else {
        *sc = (s[j + 4] & 15) | (s[j - 4] >> 6) << 4;
        *m = (s[j + 4] >> 4) | (s[j] >> 6) << 4;
    }
}

void hd_dequant_q4_k_avx2(const void *src, float *dst, int64_t n) {
    const uint8_t *b = src;
    const __m128i low = _mm_set1_epi8(15);
    for (int64_t i = 0; i < n / 256; i++, b += 144, dst += 256) {
        float d = f16_at(b), dmin = f16_at(b + 2);
        const uint8_t *qs = b + 16;
        for (int g = 0; g < 4; g++) { /* 32 bytes: values 64g.. (low nibbles), 64g+32.. (high) */
            int sc0, m0, sc1, m1;
            scale_min(b + 4, 2 * g, &sc0, &m0);
            scale_min(b + 4, 2 * g + 1, &sc1, &m1);
            __m256 ds0 = _mm256_set1_ps(d * (float)sc0), dm0 = _mm256_set1_ps(dmin * (float)m0);
            __m256 ds1 = _mm256_set1_ps(d * (float)sc1), dm1 = _mm256_set1_ps(dmin * (float)m1);
            float *y = dst + 64 * g;
            for (int l = 0; l < 32; l += 8) {
                __m128i q = _mm_loadl_epi64((const __m128i *)(qs + 32 * g + l));
                __m128i lo = _mm_and_si128(q, low), hi = _mm_and_si128(_mm_srli_epi16(q, 4), low);
                _mm256_storeu_ps(y + l, _mm256_sub_ps(_mm256_mul_ps(ds0, u8x8(lo)), dm0));
                _mm256_storeu_ps(y + 32 + l, _mm256_sub_ps(_mm256_mul_ps(ds1, u8x8(hi)), dm1));
            }
        }
    }
}
