/* bf16 attention on AMX tiles (16 query rows per call): the numerics of the AVX512-BF16 kernels
 * (attention_bf16_avx512.c: Q, K, V and P rounded to bf16, float32 sums, the online softmax in
 * float32 in attention.c's driver) with the products on TDPBF16PS, for the gemm_bf16 and
 * gemm_int8 options on CPUs with AMX (hd_cpu.attn_amx), where VDPBF16PS runs at half the
 * float32 FMA rate.
 *
 * The layouts are those of the AVX512-BF16 kernels, and they are already tiles:
 *   Q rows of hd/2 pairs (ldq floats apart): a Q tile is 16 rows × 16 pairs;
 *   kt[d2·BK + j] = (k[j][2·d2], k[j][2·d2+1]): a K tile is 16 pair-rows × 16 keys;
 *   P rows of BK/2 pairs along the keys: a P tile is 16 rows × 32 keys;
 *   vp[j2·hdp + c] = (v[2·j2][c], v[2·j2+1][c]): a V tile is 16 key pairs × 16 columns.
 * The pairs of Q and kt past hd/2, up to a multiple of 16, must be zero (the driver clears
 * them). */
#include <immintrin.h>
#include <stdint.h>

#include "backend/cpu/amx_tiles.h"
#include "backend/cpu/kernels.h"

#define RB HD_ATTN_AMX_RB
#define BK HD_ATTN_BK

/* s[r][j] = Σ_d q[r][d]·k[j][d] for 16 rows and the BK = 64 keys: four score tiles. */
void hd_attn_amx_scores(int hd, const float *q, int64_t ldq, const float *kt, float *s) {
    hd_amx_tiles_ready();
    HD_AMX_READS_MEMORY();
    const int d2n = (hd / 2 + 15) / 16 * 16;
    _tile_zero(0);
    _tile_zero(1);
    _tile_zero(2);
    _tile_zero(3);
    for (int d2 = 0; d2 < d2n; d2 += 16) {
        const float *kd = kt + d2 * BK;
        _tile_loadd(4, q + d2, ldq * 4);
        _tile_loadd(5, kd, BK * 4);
        _tile_loadd(6, kd + 16, BK * 4);
        _tile_loadd(7, kd + 32, BK * 4);
        _tile_dpbf16ps(0, 4, 5);
        _tile_dpbf16ps(1, 4, 6);
        _tile_dpbf16ps(2, 4, 7);
        _tile_loadd(5, kd + 48, BK * 4);
        _tile_dpbf16ps(3, 4, 5);
    }
    _tile_stored(0, s, BK * 4);
    _tile_stored(1, s + 16, BK * 4);
    _tile_stored(2, s + 32, BK * 4);
    _tile_stored(3, s + 48, BK * 4);
}

/* o[r] = o[r]·alpha[r] + Σ_j p[r][j]·v[j] for 16 rows; p becomes bf16 pairs in place. */
void hd_attn_amx_pv(int hdp, int nk, float *p, const float *vp, float *o, const float *alpha) {
    hd_amx_tiles_ready();
    for (int r = 0; r < RB; r++) {
        hd_attn_bf16_pairs(p + r * BK, BK);
        const __m512 al = _mm512_set1_ps(alpha[r]);
        float *orow = o + (int64_t)r * hdp;
        for (int c = 0; c < hdp; c += 16)
            _mm512_store_ps(orow + c, _mm512_mul_ps(al, _mm512_load_ps(orow + c)));
    }
    HD_AMX_READS_MEMORY();
    const int two = nk > BK / 2; /* keys 32..63 hold a value */
    _tile_loadd(4, p, BK * 4);
    if (two) _tile_loadd(5, p + 16, BK * 4);
    /* two column blocks at a time, each in its own accumulator and V tiles */
    for (int c = 0; c < hdp; c += 32) {
        const int pair = c + 16 < hdp;
        _tile_loadd(0, o + c, hdp * 4);
        _tile_loadd(6, vp + c, hdp * 4);
        _tile_dpbf16ps(0, 4, 6);
        if (pair) {
            _tile_loadd(1, o + c + 16, hdp * 4);
            _tile_loadd(7, vp + c + 16, hdp * 4);
            _tile_dpbf16ps(1, 4, 7);
        }
        if (two) {
            _tile_loadd(2, vp + 16 * hdp + c, hdp * 4);
            _tile_dpbf16ps(0, 5, 2);
            if (pair) {
                _tile_loadd(3, vp + 16 * hdp + c + 16, hdp * 4);
                _tile_dpbf16ps(1, 5, 3);
            }
        }
        _tile_stored(0, o + c, hdp * 4);
        if (pair) _tile_stored(1, o + c + 16, hdp * 4);
    }
}
