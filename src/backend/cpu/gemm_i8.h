/* The int8 linear of the CPU backend (the gemm_int8 option): W8A8 with one scale per output
 * channel of W (made once, when the weight is bound) and, per row of x (made per call), one per
 * block of kb values:
 *   y[i][j] = sw[j]·Σ_b sx[i][b]·Σ_{k in b} qx[i][k]·qw[j][k] (+ bias[j]),  q in [-127, 127].
 * kb is the weight's: a whole K slice (HD_I8_KC) for most products, whose inputs are normalized
 * rows; HD_I8_KB_FINE for a weight bound as HD_USE_LINEAR_OUTLIERS (the SwiGLU product before
 * down_proj), where a row's largest values then coarsen only their own block. Each block's
 * int32 sums are folded into float sums — on AMX a tile store and reload per block, which at
 * 128 values cost more than the tile products themselves (a 384-token layer: 105 ms with kb 128
 * everywhere, 92 ms with whole slices but down_proj; its error vs exact 0.025 -> 0.028).
 * On AVX2 the products run on VPMADDUBSW, which multiplies unsigned by signed bytes: it gets
 * |qx| and qw with the sign of qx moved onto it (VPSIGNB), so a pair sum is at most
 * 2·127·127 < 32768 and never saturates; VPMADDWD widens the pairs to int32.
 * On AVX512-VNNI they run on VPDPBUSD with x offset to x + 128 (gemm_i8_avx512.c); with AMX
 * on TDPBSSD tiles of 32×32 (gemm_amx.c), which read x row-major instead of in 6-row panels.
 * Every kernel (portable, AVX2, AVX512-VNNI, AMX) computes the integer sums exactly and the
 * float epilogue in the same order, so their results are bit-identical. */
#ifndef HD_BACKEND_CPU_GEMM_I8_H
#define HD_BACKEND_CPU_GEMM_I8_H

#include <stdint.h>

#define HD_I8_MR 6     /* rows of x per micro-tile */
#define HD_I8_NR 16    /* columns of W per micro-tile (one packed panel) */
#define HD_I8_KU 4     /* k per micro-kernel step (one group of 4 bytes per row and column) */
#define HD_I8_KPAD 64  /* packed rows hold k rounded up to this: one AMX tile row */
#define HD_I8_AMX_MR 32 /* the AMX micro-tile: rows of x, */
#define HD_I8_AMX_NR 32 /* columns of W (two panels; weights hold an even number of panels) */
#define HD_I8_QMAX 127 /* |q| <= 127 for both operands */
#define HD_I8_KB_FINE 128 /* values of x per scale of HD_USE_LINEAR_OUTLIERS weights */
#define HD_I8_KC 2048  /* K slice (whole blocks; also the coarse block): a 6×KC panel of x stays
                          in L1; every kernel slices alike, as the float sums of the slices must
                          match bit for bit */
#define HD_I8_NC 128   /* W columns per task: a KC×NC block (256 KB) stays in L2 */
#define HD_I8_AMX_ROW (HD_I8_NC / HD_I8_AMX_NR) /* AMX micro-tiles per task row */

/* A weight [n, k] prepared for the int8 product (one allocation, owned by the hd_tensor's
 * `packed`). panels: ceil(n/32)·2 panels of kp/4 groups; group g of panel p holds, for each of
 * its 16 columns j, the 4 bytes qw[16p + j][4g .. 4g+3] (zeros past n and past k). */
typedef struct hd_i8_weight {
    int64_t n, k, kp; /* kp: k rounded up to HD_I8_KPAD */
    int64_t kb;       /* values of x per scale (divides HD_I8_KC) */
    float *scale;     /* [n] sw: W ≈ sw·qw */
    int8_t *panels;
    int32_t *wsum;    /* per panel, per block of kb values, its 16 column sums Σ qw (the
                         correction of the VNNI kernel's offset x): wsum[(p·nkb + b)·16 + j] */
} hd_i8_weight;

/* The scales of one micro-tile (MR×NR: 6×16, or 32×32 on AMX) and what it does with its sum.
 * Per block b of the slice the int32 sum is added as s[i][j] = s[i][j] + (float)acc·sx[MR·b + i];
 * at the end v = s·sw[j], and the first K slice stores v (+ bias), later slices add it. */
typedef struct hd_i8_tile {
    const float *sx;   /* [blocks × MR] row scales, block by block */
    const float *sw;   /* [NR] column scales */
    const float *bias; /* [NR] or NULL (first slice only) */
    int first;
    const int32_t *wsum; /* [blocks × 16] the panel's block column sums from this slice on */
    int64_t ldx;         /* AMX: bytes between rows of x */
    int64_t kp;          /* AMX: the weight's kp (its two panels are 16·kp bytes apart) */
    int64_t kb;          /* values of k per block of x scales (the weight's kb) */
} hd_i8_tile;

/* C[mr, nr] (=|+=) over steps·4 values of k (whole blocks of t->kb but the last): ap is a row
 * panel (groups of 4 bytes, the 6 rows one after the other: ap[(g·6 + i)·4 + t]; on AMX the 32
 * rows of x from column 4·g0 on, row-major, t->ldx bytes apart), bp a weight panel
 * (bp[(g·16 + j)·4 + t]; on AMX the first of two, the second 16·t->kp bytes on). */
typedef void (*hd_i8_ukr_fn)(int64_t steps, const int8_t *ap, const int8_t *bp, float *c,
                             int64_t ldc, int mr, int nr, const hd_i8_tile *t);
/* Quantizes one row of k floats (zeros past k, up to kp) in blocks of `block` values (a
 * multiple of 4), each with its scale max|x| / 127 (0 for a zero block) written to
 * scale[b·scale_stride]. Group g (values 4g..4g+3) goes to dst + g·stride: a row of x packs
 * with dst = panel + 4i, stride 24 (HD_I8_MR·4), blocks of kb; a row of W with
 * dst = panel + 4j, stride 64 and one block (block = kp). */
typedef void (*hd_i8_pack_row_fn)(const float *x, int64_t k, int64_t kp, int64_t block,
                                  int8_t *dst, int64_t stride, float *scale,
                                  int64_t scale_stride);

void hd_i8_ukr_scalar(int64_t steps, const int8_t *ap, const int8_t *bp, float *c, int64_t ldc,
                      int mr, int nr, const hd_i8_tile *t);
void hd_i8_pack_row_scalar(const float *x, int64_t k, int64_t kp, int64_t block, int8_t *dst,
                           int64_t stride, float *scale, int64_t scale_stride);
void hd_i8_ukr_avx2(int64_t steps, const int8_t *ap, const int8_t *bp, float *c, int64_t ldc,
                    int mr, int nr, const hd_i8_tile *t);
/* reads x as x + 128 (hd_cpu.i8_x_offset): AVX512-VNNI CPUs only */
void hd_i8_ukr_avx512vnni(int64_t steps, const int8_t *ap, const int8_t *bp, float *c,
                          int64_t ldc, int mr, int nr, const hd_i8_tile *t);
/* AMX tiles (gemm_amx.c): a row of nt <= HD_I8_AMX_ROW micro-tiles of 32×32 (the last nr_last
 * columns wide), W tile j at bp + j·wstep; x row-major, steps a multiple of 16. t->sw and
 * t->bias hold the row's columns; t->wsum is not read. */
void hd_i8_row_amx(int64_t steps, const int8_t *ap, const int8_t *bp, int64_t wstep, int nt,
                   float *c, int64_t ldc, int mr, int nr_last, const hd_i8_tile *t);
void hd_i8_pack_row_avx512(const float *x, int64_t k, int64_t kp, int64_t block, int8_t *dst,
                           int64_t stride, float *scale, int64_t scale_stride);
void hd_i8_pack_row_avx2(const float *x, int64_t k, int64_t kp, int64_t block, int8_t *dst,
                         int64_t stride, float *scale, int64_t scale_stride);

/* The scale of a row whose largest magnitude is amax, and the factor that quantizes it. Shared
 * by every kernel so that their results match bit for bit. */
static inline float hd_i8_scale(float amax) { return amax > 0 ? amax / (float)HD_I8_QMAX : 0.0f; }
static inline float hd_i8_inv(float amax) { return amax > 0 ? (float)HD_I8_QMAX / amax : 0.0f; }

#endif
