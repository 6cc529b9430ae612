/* attention for the fast option (gemm_bf16): bf16 tensor cores with a float32 online softmax,
 * the numerics of the official code's bf16 SDPA (bf16 Q, K, V and probabilities, float32
 * accumulation, scores and softmax statistics).
 *
 * A pre-pass rounds Q, K and V (float32, any row stride) into one dense bf16 scratch buffer, so
 * the kernel can stage tiles with 16-byte cp.async copies. A block is one KV head and 64·MT
 * rows, where a row is a (query i, grouped head g) pair, r = i·G + g (as in attention.cu), so
 * every K/V tile serves the G query heads that share it. 4 warps, each owning 16·MT rows:
 *   S = Q·Kᵀ  mma.sync m16n8k16 (Q and K fragments by ldmatrix),
 *   masking by each row's key limit, online softmax in float32 (exp2 with log2(e) folded into
 *   the scale), P rounded to bf16 straight from the accumulator layout into A fragments,
 *   O += P·V  mma.sync with V by ldmatrix.trans.
 * K/V tiles are double-buffered (the copy of tile t+1 runs while tile t is computed). Shared
 * rows are padded by 16 bytes so the 8 rows an ldmatrix reads fall into different banks.
 * Head dims 64 and 128 only; other shapes go to the float32 kernel (hd_cuda_attention). */
#include "backend/cuda/cuda_internal.h"

#include <cuda_bf16.h>

#define TC_BK 64 /* keys per tile */
#define TC_THREADS 128

typedef struct tc_args {
    const __nv_bfloat16 *q, *k, *v; /* dense: rows of Hq·HD (q) and Hkv·HD (k, v) */
    float *out;
    int64_t ldq, ldkv, ldo;
    int64_t Sq, Sk;
    int G;
    float scale_log2; /* scale · log2(e) */
    int64_t q_offset, n_causal;
} tc_args;

/* Number of keys query i may see (the CPU backend's rule, as in attention.cu). */
static __device__ __forceinline__ int64_t tc_key_limit(const tc_args &a, int64_t i) {
    int64_t p = a.q_offset + i;
    if (p >= a.n_causal) return a.Sk;
    return p + 1 < a.Sk ? (p + 1 > 0 ? p + 1 : 0) : a.Sk;
}

static __device__ __forceinline__ uint32_t smem_u32(const void *p) {
    return (uint32_t)__cvta_generic_to_shared(p);
}

/* 16 bytes global -> shared; src_bytes 0 writes zeros (rows past the end). */
static __device__ __forceinline__ void cp_async16(void *dst, const void *src, int src_bytes) {
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem_u32(dst)),
                 "l"(src), "r"(src_bytes));
}
static __device__ __forceinline__ void cp_async_commit() {
    asm volatile("cp.async.commit_group;\n" ::);
}
template <int N>
static __device__ __forceinline__ void cp_async_wait() {
    asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}

static __device__ __forceinline__ void ldsm_x4(uint32_t &r0, uint32_t &r1, uint32_t &r2,
                                               uint32_t &r3, const void *p) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r0), "=r"(r1), "=r"(r2), "=r"(r3)
                 : "r"(smem_u32(p)));
}
static __device__ __forceinline__ void ldsm_x4_t(uint32_t &r0, uint32_t &r1, uint32_t &r2,
                                                 uint32_t &r3, const void *p) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r0), "=r"(r1), "=r"(r2), "=r"(r3)
                 : "r"(smem_u32(p)));
}

/* d += a (16×16, row) · b (16×8, col), bf16 in, float32 accumulate. */
static __device__ __forceinline__ void mma_bf16(float *d, const uint32_t *a, uint32_t b0,
                                                uint32_t b1) {
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, "
                 "{%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

static __device__ __forceinline__ uint32_t pack_bf16(float lo, float hi) {
    __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
    uint32_t r;
    memcpy(&r, &v, sizeof r);
    return r;
}

/* MT m-tiles of 16 rows per warp. MT 2 (the default) makes each K/V fragment read from shared
 * memory serve 32 rows, half the shared-memory traffic per product of MT 1, and reads the Q
 * fragments from shared memory once per key tile; MT 1 keeps them in registers
 * (HIDREAM_CUDA_ATTN=tc1). H200, 4,296 tokens, 32/8 heads of 128: 1.10 ms (MT 2) against
 * 1.19 ms (MT 1); both run 2 blocks of 4 warps per SM. */
template <int HD, int MT>
static constexpr size_t tc_smem_bytes() {
    return sizeof(__nv_bfloat16) * (size_t)(HD + 8) * (64 * MT + 4 * TC_BK);
}

/* Stages keys [j0, j0 + TC_BK) of KV head kvh into sk/sv (zeros past Sk). */
template <int HD>
static __device__ __forceinline__ void load_kv(const tc_args &a, int kvh, int64_t j0,
                                               __nv_bfloat16 *sk, __nv_bfloat16 *sv) {
    constexpr int LD = HD + 8, CH = HD / 8;
    for (int e = threadIdx.x; e < TC_BK * CH; e += TC_THREADS) {
        int r = e / CH, cc = e % CH;
        int64_t j = j0 + r;
        int ok = j < a.Sk;
        int64_t off = ok ? j * a.ldkv + (int64_t)kvh * HD + cc * 8 : 0;
        cp_async16(sk + r * LD + cc * 8, a.k + off, ok ? 16 : 0);
        cp_async16(sv + r * LD + cc * 8, a.v + off, ok ? 16 : 0);
    }
}

template <int HD, int MT>
static __global__ void __launch_bounds__(TC_THREADS) tc_attn_kernel(tc_args a) {
    constexpr int LD = HD + 8, CH = HD / 8, KS = HD / 16, DT = HD / 8, NT = TC_BK / 8;
    constexpr int BQ = 64 * MT; /* 4 warps × 16·MT rows */
    extern __shared__ __align__(16) unsigned char tc_smem[];
    __nv_bfloat16 *sq = (__nv_bfloat16 *)tc_smem;        /* BQ × LD */
    __nv_bfloat16 *skv = sq + BQ * LD;                   /* [buf][K, V] × TC_BK × LD */
    __shared__ int64_t s_lim[BQ];

    const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
    const int gq = lane >> 2, tq = lane & 3; /* the mma fragments' row group and column pair */
    const int kvh = blockIdx.y;
    const int64_t rows = a.Sq * a.G;
    const int64_t r0 = (int64_t)(gridDim.x - 1 - blockIdx.x) * BQ; /* late tiles first */

    for (int r = tid; r < BQ; r += TC_THREADS)
        s_lim[r] = r0 + r < rows ? tc_key_limit(a, (r0 + r) / a.G) : 0;
    __syncthreads();
    const int64_t last = (rows - r0 < BQ ? rows - r0 : BQ) - 1;
    const int64_t kend = s_lim[last], kmin = s_lim[0]; /* limits grow with the row */
    const int n_tiles = (int)((kend + TC_BK - 1) / TC_BK);
    /* this thread's rows: m-tile mt, half h (0: row gq, 1: row gq + 8) */
    int64_t lim[MT][2];
    float m[MT][2], l[MT][2], o[MT][DT][4];
#pragma unroll
    for (int mt = 0; mt < MT; mt++) {
#pragma unroll
        for (int h = 0; h < 2; h++) {
            lim[mt][h] = s_lim[warp * 16 * MT + mt * 16 + gq + 8 * h];
            m[mt][h] = -INFINITY;
            l[mt][h] = 0.0f;
        }
#pragma unroll
        for (int n = 0; n < DT; n++) o[mt][n][0] = o[mt][n][1] = o[mt][n][2] = o[mt][n][3] = 0.0f;
    }

    if (n_tiles > 0) {
        for (int e = tid; e < BQ * CH; e += TC_THREADS) {
            int r = e / CH, cc = e % CH;
            int64_t gr = r0 + r;
            int ok = gr < rows;
            int64_t off = ok ? (gr / a.G) * a.ldq + ((int64_t)kvh * a.G + gr % a.G) * HD + cc * 8
                             : 0;
            cp_async16(sq + r * LD + cc * 8, a.q + off, ok ? 16 : 0);
        }
        load_kv<HD>(a, kvh, 0, skv, skv + TC_BK * LD);
        cp_async_commit();
    }

    /* Q fragment source of m-tile mt: matrices (rows 0-7 | 8-15) × (cols k | k+8) */
    const __nv_bfloat16 *qp =
        sq + (warp * 16 * MT + (lane & 7) + 8 * ((lane >> 3) & 1)) * LD + 8 * (lane >> 4);
    uint32_t qf[MT == 1 ? KS : 1][4]; /* MT 1: all of this warp's Q fragments, loaded once */
    for (int t = 0; t < n_tiles; t++) {
        const int64_t j0 = (int64_t)t * TC_BK;
        __nv_bfloat16 *sk = skv + (t & 1) * 2 * TC_BK * LD, *sv = sk + TC_BK * LD;
        if (t + 1 < n_tiles) {
            __nv_bfloat16 *nk = skv + ((t + 1) & 1) * 2 * TC_BK * LD;
            load_kv<HD>(a, kvh, j0 + TC_BK, nk, nk + TC_BK * LD);
            cp_async_commit();
            cp_async_wait<1>();
        } else {
            cp_async_wait<0>();
        }
        __syncthreads();
        if (MT == 1 && t == 0) {
#pragma unroll
            for (int kk = 0; kk < (MT == 1 ? KS : 0); kk++)
                ldsm_x4(qf[kk][0], qf[kk][1], qf[kk][2], qf[kk][3], qp + kk * 16);
        }

        /* S = Q·Kᵀ: 16·MT rows × 64 keys per warp, two k-steps at a time */
        float s[MT][NT][4];
#pragma unroll
        for (int mt = 0; mt < MT; mt++)
#pragma unroll
            for (int j = 0; j < NT; j++) s[mt][j][0] = s[mt][j][1] = s[mt][j][2] = s[mt][j][3] = 0.0f;
        /* K matrices: keys j·8.. × dims (k, k+8, k+16, k+24) */
        const __nv_bfloat16 *kp = sk + (lane & 7) * LD + 8 * (lane >> 3);
        if (MT == 1) { /* Q in registers: key tiles outer */
#pragma unroll
            for (int j = 0; j < NT; j++)
#pragma unroll
                for (int kk = 0; kk < KS; kk += 2) {
                    uint32_t b0, b1, b2, b3;
                    ldsm_x4(b0, b1, b2, b3, kp + j * 8 * LD + kk * 16);
                    mma_bf16(s[0][j], qf[MT == 1 ? kk : 0], b0, b1);
                    mma_bf16(s[0][j], qf[MT == 1 ? kk + 1 : 0], b2, b3);
                }
        } else { /* Q from shared memory: k-steps outer, each Q fragment read once per tile */
#pragma unroll
            for (int kk = 0; kk < KS; kk += 2) {
                uint32_t qa[MT][2][4];
#pragma unroll
                for (int mt = 0; mt < MT; mt++)
#pragma unroll
                    for (int h = 0; h < 2; h++)
                        ldsm_x4(qa[mt][h][0], qa[mt][h][1], qa[mt][h][2], qa[mt][h][3],
                                qp + mt * 16 * LD + (kk + h) * 16);
#pragma unroll
                for (int j = 0; j < NT; j++) {
                    uint32_t b0, b1, b2, b3;
                    ldsm_x4(b0, b1, b2, b3, kp + j * 8 * LD + kk * 16);
#pragma unroll
                    for (int mt = 0; mt < MT; mt++) {
                        mma_bf16(s[mt][j], qa[mt][0], b0, b1);
                        mma_bf16(s[mt][j], qa[mt][1], b2, b3);
                    }
                }
            }
        }

        /* mask, online softmax; a quad of lanes shares a row */
        const bool masked = j0 + TC_BK > kmin;
#pragma unroll
        for (int mt = 0; mt < MT; mt++) {
            float mx[2] = {-INFINITY, -INFINITY};
#pragma unroll
            for (int j = 0; j < NT; j++)
#pragma unroll
                for (int i = 0; i < 4; i++) {
                    const int h = i >> 1;
                    float v = s[mt][j][i] * a.scale_log2;
                    if (masked && j0 + j * 8 + 2 * tq + (i & 1) >= lim[mt][h]) v = -INFINITY;
                    s[mt][j][i] = v;
                    mx[h] = fmaxf(mx[h], v);
                }
            float al[2], base[2], sum[2] = {0.0f, 0.0f};
#pragma unroll
            for (int h = 0; h < 2; h++) {
                mx[h] = fmaxf(mx[h], __shfl_xor_sync(0xffffffffu, mx[h], 1));
                mx[h] = fmaxf(mx[h], __shfl_xor_sync(0xffffffffu, mx[h], 2));
                const float mn = fmaxf(m[mt][h], mx[h]);
                /* a row with no visible key yet keeps m = -inf: subtract 0, exp2 gives 0 */
                base[h] = mn == -INFINITY ? 0.0f : mn;
                al[h] = exp2f(m[mt][h] - base[h]);
                m[mt][h] = mn;
            }
#pragma unroll
            for (int j = 0; j < NT; j++)
#pragma unroll
                for (int i = 0; i < 4; i++) {
                    s[mt][j][i] = exp2f(s[mt][j][i] - base[i >> 1]);
                    sum[i >> 1] += s[mt][j][i];
                }
#pragma unroll
            for (int h = 0; h < 2; h++) l[mt][h] = l[mt][h] * al[h] + sum[h]; /* lane partials */
#pragma unroll
            for (int n = 0; n < DT; n++) {
                o[mt][n][0] *= al[0];
                o[mt][n][1] *= al[0];
                o[mt][n][2] *= al[1];
                o[mt][n][3] *= al[1];
            }
        }

        /* O += P·V: the accumulators of key tiles 2kk and 2kk+1 are the A fragment of step kk */
#pragma unroll
        for (int kk = 0; kk < TC_BK / 16; kk++) {
            uint32_t pa[MT][4];
#pragma unroll
            for (int mt = 0; mt < MT; mt++) {
                pa[mt][0] = pack_bf16(s[mt][2 * kk][0], s[mt][2 * kk][1]);
                pa[mt][1] = pack_bf16(s[mt][2 * kk][2], s[mt][2 * kk][3]);
                pa[mt][2] = pack_bf16(s[mt][2 * kk + 1][0], s[mt][2 * kk + 1][1]);
                pa[mt][3] = pack_bf16(s[mt][2 * kk + 1][2], s[mt][2 * kk + 1][3]);
            }
            /* V matrices: keys (kk·16.. | +8) × dims (n·8.. | +8), transposed */
            const __nv_bfloat16 *vp =
                sv + (kk * 16 + (lane & 7) + 8 * ((lane >> 3) & 1)) * LD + 8 * (lane >> 4);
#pragma unroll
            for (int n = 0; n < DT; n += 2) {
                uint32_t b0, b1, b2, b3;
                ldsm_x4_t(b0, b1, b2, b3, vp + n * 8);
#pragma unroll
                for (int mt = 0; mt < MT; mt++) {
                    mma_bf16(o[mt][n], pa[mt], b0, b1);
                    mma_bf16(o[mt][n + 1], pa[mt], b2, b3);
                }
            }
        }
        __syncthreads(); /* this buffer is refilled two tiles on */
    }

#pragma unroll
    for (int mt = 0; mt < MT; mt++)
#pragma unroll
        for (int h = 0; h < 2; h++) {
            float lh = l[mt][h];
            lh += __shfl_xor_sync(0xffffffffu, lh, 1);
            lh += __shfl_xor_sync(0xffffffffu, lh, 2);
            const float inv = lh > 0.0f ? 1.0f / lh : 0.0f; /* a row that sees no key gives 0 */
            const int64_t gr = r0 + warp * 16 * MT + mt * 16 + gq + 8 * h;
            if (gr >= rows) continue;
            float *dst = a.out + (gr / a.G) * a.ldo + ((int64_t)kvh * a.G + gr % a.G) * HD + 2 * tq;
#pragma unroll
            for (int n = 0; n < DT; n++) {
                dst[n * 8] = o[mt][n][2 * h] * inv;
                dst[n * 8 + 1] = o[mt][n][2 * h + 1] * inv;
            }
        }
}

template <int HD, int MT>
static void tc_launch(hd_cuda *c, const tc_args &a, int n_kv_heads) {
    const size_t smem = tc_smem_bytes<HD, MT>();
    const unsigned bit = 1u << (20 + (HD == 64) + 2 * (MT == 2));
    if (!(c->attn_smem_set & bit)) { /* above 48 KB needs an explicit opt-in */
        if (hd_cuda_check(c, cudaFuncSetAttribute(tc_attn_kernel<HD, MT>,
                                                  cudaFuncAttributeMaxDynamicSharedMemorySize,
                                                  (int)smem),
                          "attention (bf16): cudaFuncSetAttribute") < 0)
            return;
        c->attn_smem_set |= bit;
    }
    int64_t tiles = (a.Sq * a.G + 64 * MT - 1) / (64 * MT);
    tc_attn_kernel<HD, MT><<<dim3((unsigned)tiles, (unsigned)n_kv_heads, 1), TC_THREADS, smem,
                             c->stream>>>(a);
    hd_cuda_launched(c, "attention kernel (bf16)");
}

template <int HD>
static void tc_launch_variant(hd_cuda *c, const tc_args &a, int n_kv_heads) {
    if (c->attn_variant == 1) tc_launch<HD, 1>(c, a, n_kv_heads);
    else tc_launch<HD, 2>(c, a, n_kv_heads);
}

int hd_cuda_attention_tc(hd_cuda *c, hd_tensor *out, const hd_tensor *q, const hd_tensor *k,
                         const hd_tensor *v, int n_heads, int n_kv_heads, int head_dim,
                         float scale, hd_attn_mask mask) {
    if (head_dim != 64 && head_dim != 128) return 1;
    const int64_t Sq = q->rows, Sk = k->rows > 0 ? k->rows : 0;
    const int64_t qc = (int64_t)n_heads * head_dim, kc = (int64_t)n_kv_heads * head_dim;
    if ((Sq * (n_heads / n_kv_heads) + 63) / 64 > INT32_MAX || n_kv_heads > 65535)
        return 1;
    size_t bytes = (size_t)(Sq * qc + 2 * Sk * kc) * sizeof(__nv_bfloat16);
    if (hd_cuda_scratch(c, &c->attn_bf16, &c->attn_bf16_cap, bytes, "attention (bf16 q, k, v)") <
        0)
        return -1;
    __nv_bfloat16 *qb = (__nv_bfloat16 *)c->attn_bf16, *kb = qb + Sq * qc, *vb = kb + Sk * kc;
    hd_cuda_round_bf16(c, qb, (const float *)q->data, q->stride, Sq, qc);
    hd_cuda_round_bf16(c, kb, (const float *)k->data, k->stride, Sk, kc);
    hd_cuda_round_bf16(c, vb, (const float *)v->data, v->stride, Sk, kc);
    tc_args a;
    a.q = qb;
    a.k = kb;
    a.v = vb;
    a.out = (float *)out->data;
    a.ldq = qc;
    a.ldkv = kc;
    a.ldo = out->stride;
    a.Sq = Sq;
    a.Sk = Sk;
    a.G = n_heads / n_kv_heads;
    a.scale_log2 = scale * 1.4426950408889634f;
    a.q_offset = mask.q_offset;
    a.n_causal = mask.n_causal;
    if (head_dim == 64) tc_launch_variant<64>(c, a, n_kv_heads);
    else tc_launch_variant<128>(c, a, n_kv_heads);
    return 0;
}
