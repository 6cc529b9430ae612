/* GEMM micro-kernels on AMX tiles: the bf16 GEMM (hd_backend_options.gemm_bf16) on TDPBF16PS and
 * the int8 one (gemm_int8, gemm_i8.h) on TDPBSSD. A TDPBF16PS multiplies a 16×32 bf16 tile of x
 * by a 32×16 bf16 tile of W into a 16×16 float32 tile, 16 times the work of a VDPBF16PS (on
 * CPUs with AMX, VDPBF16PS itself runs at half the float32 FMA rate, so without tiles the bf16
 * option would be slower than float32); TDPBSSD does the same with 64 signed bytes per row.
 *
 * Both micro-tiles are 32×32: four 32-bit accumulator tiles (0..3), two x tiles (4, 5) and two
 * W tiles (6, 7) — all eight tiles, each 16 rows of 64 bytes.
 *
 * bf16: the packed panels are the AVX-512 bf16 kernel's (gemm_bf16_avx512.c) with 32 rows of x:
 * per block of 16 pairs (32 k), the x panel holds rows 0..15 then 16..31, 64 bytes each — an x
 * tile is 16 consecutive rows; the W panel holds 16 rows of 32 column pairs (128 bytes) — a W
 * tile is the left or right half of them, exactly the pair-interleaved layout TDPBF16PS expects
 * of its second operand. Products of bf16 values are exact in float32, so this kernel differs
 * from the AVX-512 one only in the order of the float32 sums.
 *
 * int8: x is quantized row-major (an x tile is 64 bytes of 16 rows, ldx bytes apart) and W keeps
 * the panels of every int8 kernel (groups of 4 bytes per column: 16 groups of a panel are one
 * W tile); the tile's two panels are 16·kp bytes apart. One call runs a row of micro-tiles
 * (the task's columns), K in passes of KCH over all of them. Per block of kb values the int32
 * tiles are stored and folded into float32 sums in the portable kernel's order, so the results
 * are bit-identical to it. */
#include <immintrin.h>
#include <stdint.h>
#include <string.h>

#include "backend/cpu/amx_tiles.h"
#include "backend/cpu/gemm_i8.h"
#include "backend/cpu/kernels.h"

#define MR 32
#define NR 32
#define BLOCK 2048 /* bytes per 32 k of a panel (x or W) */

_Thread_local int hd_amx_tiles_configured;

/* The accumulators from C (4 tiles: rows 0-15 / 16-31 × columns 0-15 / 16-31 at ld floats). */
#define LOAD_C(p, ld)                                                                           \
    do {                                                                                        \
        _tile_loadd(0, (p), (ld) * 4);                                                          \
        _tile_loadd(1, (p) + 16, (ld) * 4);                                                     \
        _tile_loadd(2, (p) + 16 * (ld), (ld) * 4);                                              \
        _tile_loadd(3, (p) + 16 * (ld) + 16, (ld) * 4);                                         \
    } while (0)
#define STORE_C(p, ld)                                                                          \
    do {                                                                                        \
        _tile_stored(0, (p), (ld) * 4);                                                         \
        _tile_stored(1, (p) + 16, (ld) * 4);                                                    \
        _tile_stored(2, (p) + 16 * (ld), (ld) * 4);                                             \
        _tile_stored(3, (p) + 16 * (ld) + 16, (ld) * 4);                                        \
    } while (0)

/* The columns c0..c0+15 of a tile row that are below nr. */
static inline __mmask16 col_mask(int nr, int c0) {
    int n = nr - c0;
    return n >= 16 ? (__mmask16)0xffff : n > 0 ? (__mmask16)((1u << n) - 1u) : (__mmask16)0;
}

void hd_gemm_ukr_bf16_amx(int64_t kcp, const float *apf, const float *bpf, float *c,
                          int64_t ldc, int mr, int nr, int first, const float *bias) {
    hd_amx_tiles_ready();
    const char *ap = (const char *)apf, *bp = (const char *)bpf;
    /* an edge tile or a bias goes through a 32×32 buffer; whole tiles use C directly */
    const int direct = mr == MR && nr == NR && !(first && bias);
    _Alignas(64) float tmp[MR * NR];
    const __mmask16 m0 = col_mask(nr, 0), m1 = col_mask(nr, 16);
    if (first) {
        _tile_zero(0);
        _tile_zero(1);
        _tile_zero(2);
        _tile_zero(3);
    } else if (direct) {
        LOAD_C(c, ldc);
    } else {
        for (int i = 0; i < MR; i++) {
            const float *row = c + i * ldc;
            _mm512_store_ps(tmp + i * NR, i < mr ? _mm512_maskz_loadu_ps(m0, row)
                                                 : _mm512_setzero_ps());
            _mm512_store_ps(tmp + i * NR + 16, i < mr ? _mm512_maskz_loadu_ps(m1, row + 16)
                                                      : _mm512_setzero_ps());
        }
        HD_AMX_READS_MEMORY();
        LOAD_C(tmp, NR);
    }
    for (int64_t kb = 0; kb < kcp; kb += 32) {
        _tile_loadd(4, ap, 64);
        _tile_loadd(5, ap + BLOCK / 2, 64);
        _tile_loadd(6, bp, 128);
        _tile_loadd(7, bp + 64, 128);
        _tile_dpbf16ps(0, 4, 6);
        _tile_dpbf16ps(1, 4, 7);
        _tile_dpbf16ps(2, 5, 6);
        _tile_dpbf16ps(3, 5, 7);
        ap += BLOCK;
        bp += BLOCK;
    }
    if (direct) {
        STORE_C(c, ldc);
        return;
    }
    STORE_C(tmp, NR);
    const __m512 b0 = first && bias ? _mm512_maskz_loadu_ps(m0, bias) : _mm512_setzero_ps();
    const __m512 b1 = first && bias ? _mm512_maskz_loadu_ps(m1, bias + 16) : _mm512_setzero_ps();
    for (int i = 0; i < mr; i++) {
        float *row = c + i * ldc;
        _mm512_mask_storeu_ps(row, m0, _mm512_add_ps(_mm512_load_ps(tmp + i * NR), b0));
        _mm512_mask_storeu_ps(row + 16, m1, _mm512_add_ps(_mm512_load_ps(tmp + i * NR + 16), b1));
    }
}

void hd_gemm_pack_a_bf16_amx(const float *x, int64_t ldx, int mr, int64_t kc, float *ap) {
    hd_gemm_pack_a_pairs_avx512(x, ldx, mr, kc, ap, MR);
}

/* ---- int8 ---- */

/* The int32 tiles of one block, folded: s[i][j] = s[i][j] + (float)q[i][j]·sx[i], with s = 0
 * before the first block (not read: 0 + v as the portable kernel, signed zeros included). */
static void fold_block(float *s, const float *sx, int first) {
    _Alignas(64) int32_t q[MR * NR];
    STORE_C((float *)(void *)q, NR);
    for (int i = 0; i < MR; i++) {
        const __m512 f = _mm512_set1_ps(sx[i]);
        for (int h = 0; h < NR; h += 16) {
            __m512 v = _mm512_cvtepi32_ps(_mm512_load_si512((const void *)(q + i * NR + h)));
            __m512 old = first ? _mm512_setzero_ps() : _mm512_load_ps(s + i * NR + h);
            _mm512_store_ps(s + i * NR + h, _mm512_add_ps(old, _mm512_mul_ps(v, f)));
        }
    }
}

/* v = s·sw, stored (+ bias on the first K slice) or added; columns past nr are masked off. */
static void store_tile(const float *s, float *c, int64_t ldc, int mr, int nr, const float *sw,
                       const float *bias, int first) {
    for (int h = 0; h < 2; h++) {
        const __mmask16 m = col_mask(nr, 16 * h);
        const __m512 w = _mm512_maskz_loadu_ps(m, sw + 16 * h);
        const __m512 b = bias ? _mm512_maskz_loadu_ps(m, bias + 16 * h) : _mm512_setzero_ps();
        for (int i = 0; i < mr; i++) {
            float *row = c + i * ldc + 16 * h;
            __m512 v = _mm512_mul_ps(_mm512_load_ps(s + i * NR + 16 * h), w);
            if (first && bias) v = _mm512_add_ps(v, b);
            else if (!first) v = _mm512_add_ps(_mm512_maskz_loadu_ps(m, row), v);
            _mm512_mask_storeu_ps(row, m, v);
        }
    }
}

/* K per pass over the row of tiles: 32 rows of x (16 KB) stay in L1 for all of them. With x
 * and W both streaming from L2 the tiles ran at 3.1 TOP/s, with x in L1 at 4.5. */
#define KCH 512

void hd_i8_row_amx(int64_t steps, const int8_t *ap, const int8_t *bp, int64_t wstep, int nt,
                   float *c, int64_t ldc, int mr, int nr_last, const hd_i8_tile *t) {
    hd_amx_tiles_ready();
    const int64_t ldx = t->ldx, wp = 16 * t->kp, kb4 = t->kb / 4;
    _Alignas(64) float s[HD_I8_AMX_ROW][MR * NR];
    _Alignas(64) int32_t acc[HD_I8_AMX_ROW][MR * NR];
    const float *sx = t->sx;
    for (int64_t g0 = 0; g0 < steps; g0 += kb4, sx += MR) {
        const int64_t g1 = g0 + kb4 < steps ? g0 + kb4 : steps;
        for (int64_t c0 = g0; c0 < g1; c0 += KCH / 4) {
            const int64_t c1 = c0 + KCH / 4 < g1 ? c0 + KCH / 4 : g1;
            for (int j = 0; j < nt; j++) {
                const int8_t *b = bp + j * wstep;
                if (c0 == g0) {
                    _tile_zero(0);
                    _tile_zero(1);
                    _tile_zero(2);
                    _tile_zero(3);
                } else {
                    LOAD_C((float *)(void *)acc[j], NR);
                }
                for (int64_t g = c0; g < c1; g += 16) { /* 16 groups: 64 values of k */
                    _tile_loadd(4, ap + g * 4, ldx);
                    _tile_loadd(5, ap + 16 * ldx + g * 4, ldx);
                    _tile_loadd(6, b + g * 64, 64);
                    _tile_loadd(7, b + wp + g * 64, 64);
                    _tile_dpbssd(0, 4, 6);
                    _tile_dpbssd(1, 4, 7);
                    _tile_dpbssd(2, 5, 6);
                    _tile_dpbssd(3, 5, 7);
                }
                if (c1 == g1) fold_block(s[j], sx, g0 == 0);
                else STORE_C((float *)(void *)acc[j], NR);
            }
        }
    }
    for (int j = 0; j < nt; j++)
        store_tile(s[j], c + NR * j, ldc, mr, j == nt - 1 ? nr_last : NR, t->sw + NR * j,
                   t->bias ? t->bias + NR * j : NULL, t->first);
}
