/* AVX512-VNNI micro-kernel of the int8 linear (gemm_i8.h): the 6×16 tile on VPDPBUSD, one zmm of
 * int32 sums per row (the 16 columns of a panel group are one 64-byte load). VPDPBUSD multiplies
 * unsigned by signed bytes and has no sign trick in AVX-512 (no VPSIGNB), so x arrives offset to
 * x + 128 (the driver flips its sign bits, hd_cpu.i8_x_offset) and each block's sum drops
 * 128·Σw (the weight's per-block column sums, made at bind): the int32 sums are the exact signed
 * ones again, and the float epilogue runs in the portable kernel's order — bit-identical.
 * Also the AVX-512 row quantizer (the AVX2 one's operations, 16 values at a time). */
#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "backend/cpu/gemm_i8.h"

#define MR HD_I8_MR
#define NR HD_I8_NR

void hd_i8_ukr_avx512vnni(int64_t steps, const int8_t *ap, const int8_t *bp, float *c,
                          int64_t ldc, int mr, int nr, const hd_i8_tile *t) {
    __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0, s4 = s0, s5 = s0;
    const float *sx = t->sx;
    const int32_t *wsum = t->wsum;
    for (int64_t g0 = 0; g0 < steps; g0 += t->kb / 4, sx += MR, wsum += NR) {
        int64_t n = steps - g0 < t->kb / 4 ? steps - g0 : t->kb / 4;
        __m512i q0 = _mm512_setzero_si512(), q1 = q0, q2 = q0, q3 = q0, q4 = q0, q5 = q0;
        /* one group of 4 k per step: the 16 columns' bytes in one load, each row's 4 bytes
         * broadcast from memory. In asm because the compilers copy every accumulator around
         * each VPDPBUSD of the intrinsic version (2x the instructions). */
        for (int64_t g = 0; g < n; g++) {
            __asm__("vmovdqa64 (%[b]), %%zmm31\n\t"
                    "vpbroadcastd 0(%[a]), %%zmm30\n\t"
                    "vpdpbusd %%zmm31, %%zmm30, %[q0]\n\t"
                    "vpbroadcastd 4(%[a]), %%zmm30\n\t"
                    "vpdpbusd %%zmm31, %%zmm30, %[q1]\n\t"
                    "vpbroadcastd 8(%[a]), %%zmm30\n\t"
                    "vpdpbusd %%zmm31, %%zmm30, %[q2]\n\t"
                    "vpbroadcastd 12(%[a]), %%zmm30\n\t"
                    "vpdpbusd %%zmm31, %%zmm30, %[q3]\n\t"
                    "vpbroadcastd 16(%[a]), %%zmm30\n\t"
                    "vpdpbusd %%zmm31, %%zmm30, %[q4]\n\t"
                    "vpbroadcastd 20(%[a]), %%zmm30\n\t"
                    "vpdpbusd %%zmm31, %%zmm30, %[q5]"
                    : [q0] "+v"(q0), [q1] "+v"(q1), [q2] "+v"(q2), [q3] "+v"(q3), [q4] "+v"(q4),
                      [q5] "+v"(q5)
                    : [a] "r"(ap), [b] "r"(bp), "m"(*(const char(*)[MR * 4])ap),
                      "m"(*(const char(*)[NR * 4])bp)
                    : "xmm30", "xmm31");
            ap += MR * 4;
            bp += NR * 4;
        }
        /* the offset's share, 128·Σw of this block, then s = s + (float)acc·sx */
        const __m512i off = _mm512_slli_epi32(_mm512_loadu_si512((const void *)wsum), 7);
#define ADD(i)                                                                                 \
    s##i = _mm512_add_ps(s##i, _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(q##i, off)),  \
                                             _mm512_set1_ps(sx[i])));
        ADD(0) ADD(1) ADD(2) ADD(3) ADD(4) ADD(5)
#undef ADD
    }
    /* v = s·sw, then stored (+ bias) or added; columns past nr are masked off */
    const __mmask16 m = (__mmask16)((1u << nr) - 1u);
    const __m512 sw = _mm512_maskz_loadu_ps(m, t->sw);
    const __m512 bias = t->bias ? _mm512_maskz_loadu_ps(m, t->bias) : _mm512_setzero_ps();
    const __m512 s[MR] = {s0, s1, s2, s3, s4, s5};
    for (int i = 0; i < mr; i++) {
        float *row = c + i * ldc;
        __m512 v = _mm512_mul_ps(s[i], sw);
        if (t->first && t->bias) v = _mm512_add_ps(v, bias);
        else if (!t->first) v = _mm512_add_ps(_mm512_maskz_loadu_ps(m, row), v);
        _mm512_mask_storeu_ps(row, m, v);
    }
}

/* One block [b0, b1) of a row: quantized into its groups, its scale returned. The operations
 * and their order are the AVX2 quantizer's (gemm_i8_avx2.c), 16 values at a time. */
static float pack_block(const float *x, int64_t k, int64_t b0, int64_t b1, int8_t *dst,
                        int64_t stride) {
    const int64_t e = b1 < k ? b1 : k;
    __m512 vmax = _mm512_setzero_ps();
    int64_t c = b0;
    /* the running max second: a NaN lane keeps it, as fmaxf does */
    for (; c + 16 <= e; c += 16) vmax = _mm512_max_ps(_mm512_abs_ps(_mm512_loadu_ps(x + c)), vmax);
    /* no lane of vmax is NaN (a NaN input left the lane as it was): a plain reduction */
    float amax = _mm512_reduce_max_ps(vmax);
    for (int64_t r = c; r < e; r++) amax = fmaxf(amax, fabsf(x[r]));
    const __m512 inv = _mm512_set1_ps(hd_i8_inv(amax));
    const __m512 lo = _mm512_set1_ps(-HD_I8_QMAX), hi = _mm512_set1_ps(HD_I8_QMAX);
    dst += (b0 / 4) * stride;
    for (c = b0; c < b1; c += 16) { /* 16 values = four groups (past b1: not stored) */
        int64_t n = k - c < 16 ? (k - c > 0 ? k - c : 0) : 16;
        __m512 p = _mm512_mul_ps(_mm512_maskz_loadu_ps((__mmask16)((1u << n) - 1u), x + c), inv);
        p = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(p, p, _CMP_ORD_Q), p); /* NaN -> 0 */
        p = _mm512_min_ps(_mm512_max_ps(p, lo), hi);                      /* before converting */
        const __m128i q = _mm512_cvtsepi32_epi8(_mm512_cvtps_epi32(p));
        if (stride == 4 && c + 16 <= b1) { /* a row-major row (the AMX kernel's x) */
            _mm_storeu_si128((__m128i *)(void *)dst, q);
        } else {
            int32_t g[4];
            _mm_storeu_si128((__m128i *)g, q);
            for (int t = 0; t < 4 && c + 4 * t < b1; t++) memcpy(dst + t * stride, &g[t], 4);
        }
        dst += 4 * stride;
    }
    return hd_i8_scale(amax);
}

void hd_i8_pack_row_avx512(const float *x, int64_t k, int64_t kp, int64_t block, int8_t *dst,
                           int64_t stride, float *scale, int64_t scale_stride) {
    for (int64_t b0 = 0; b0 < kp; b0 += block)
        scale[(b0 / block) * scale_stride] =
            pack_block(x, k, b0, b0 + block < kp ? b0 + block : kp, dst, stride);
}
