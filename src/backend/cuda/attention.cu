/* attention: flash-style tiled attention in float32 with an online softmax (never an Sq×Sk
 * matrix).
 *
 * A block handles one KV head and a tile of ATT_BQ rows, where the rows are the (query i,
 * grouped head g) pairs sharing that KV head, ordered r = i·G + g as in the CPU backend, so each
 * K/V tile in shared memory serves all G query heads. For every ATT_BK-key tile: K and V are
 * staged in shared memory, each thread computes a 4×4 block of scores (rows 4·ty.., keys tx +
 * 16·c), the 16 threads of a row agree on its running max and sum through warp shuffles, the
 * probabilities replace K in shared memory, and each thread accumulates a 4×NC block of the output
 * (columns tx + 16·n) in registers. Key tiles past the last key any row of the block may see
 * are skipped; partly visible tiles are masked per row (hd_attn_mask). Tiles of late queries
 * (the most keys under a causal mask) are launched first.
 *
 * The head dimension is padded to 16·NC (NC a template parameter, head_dim <= 256); padding is
 * zero in shared memory. Leading dimensions are padded to avoid shared-memory bank conflicts.
 * Shared memory per block: 97 KB at head_dim 128 (two blocks per SM), 193 KB at 256. */
#include "backend/cuda/cuda_internal.h"

#define ATT_BQ 64       /* rows (query × grouped head) per block */
#define ATT_BK 64       /* keys per tile */
#define ATT_THREADS 256 /* 16 × 16: ty picks 4 rows, tx 4 keys and NC output columns */
#define ATT_PSTRIDE (ATT_BK + 4)
#define ATT_MAX_NC 16 /* head_dim <= 256 */

typedef struct attn_args {
    const float *q, *k, *v;
    float *out;
    int64_t ldq, ldk, ldv, ldo;
    int64_t Sq, Sk;
    int G, hd;
    float scale;
    int64_t q_offset, n_causal;
} attn_args;

/* Number of keys query i may see (the CPU backend's rule). */
static __device__ __forceinline__ int64_t key_limit(const attn_args &a, int64_t i) {
    int64_t p = a.q_offset + i;
    if (p >= a.n_causal) return a.Sk;
    return p + 1 < a.Sk ? (p + 1 > 0 ? p + 1 : 0) : a.Sk;
}

/* max / sum over the 16 lanes of a row (lanes 0-15 and 16-31 of a warp are two rows); every
 * lane gets the same, bitwise identical, result. */
static __device__ __forceinline__ float row_max(float v) {
    for (int off = 8; off > 0; off >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, off));
    return v;
}
static __device__ __forceinline__ float row_sum(float v) {
    for (int off = 8; off > 0; off >>= 1) v += __shfl_xor_sync(0xffffffffu, v, off);
    return v;
}

/* The K tile and the probabilities P take turns in one buffer (P is written once the scores
 * are done), which lets two blocks share an SM at head_dim 128. */
template <int NC>
static __host__ __device__ constexpr size_t attn_kp_floats() {
    return (size_t)ATT_BK * (16 * NC + 1) > (size_t)ATT_BQ * ATT_PSTRIDE
               ? (size_t)ATT_BK * (16 * NC + 1)
               : (size_t)ATT_BQ * ATT_PSTRIDE;
}

template <int NC>
static constexpr size_t attn_smem_bytes() {
    return sizeof(float) *
           ((size_t)ATT_BQ * (16 * NC + 1) + attn_kp_floats<NC>() + (size_t)ATT_BK * (16 * NC));
}

template <int NC>
static __global__ void __launch_bounds__(ATT_THREADS) attn_kernel(attn_args a) {
    constexpr int HDP = 16 * NC, QS = HDP + 1, KS = HDP + 1, VS = HDP;
    extern __shared__ float smem[];
    float *sq = smem;                                    /* ATT_BQ × QS */
    float *sk = sq + ATT_BQ * QS;                        /* ATT_BK × KS, then: */
    float *sp = sk;                                      /* ATT_BQ × ATT_PSTRIDE probabilities */
    float *sv = sk + attn_kp_floats<NC>();               /* ATT_BK × VS */
    __shared__ int64_t s_lim[ATT_BQ];

    const int tid = threadIdx.x, tx = tid & 15, ty = tid >> 4;
    const int kvh = blockIdx.y;
    const int64_t rows = a.Sq * a.G;
    const int64_t r0 = (int64_t)(gridDim.x - 1 - blockIdx.x) * ATT_BQ; /* late tiles first */
    const int64_t col0 = (int64_t)kvh * a.G * a.hd; /* first column of this KV head's queries */

    for (int e = tid; e < ATT_BQ * HDP; e += ATT_THREADS) {
        int r = e / HDP, d = e % HDP;
        int64_t gr = r0 + r;
        float val = 0.0f;
        if (gr < rows && d < a.hd)
            val = a.q[(gr / a.G) * a.ldq + col0 + (gr % a.G) * a.hd + d];
        sq[r * QS + d] = val;
    }
    if (tid < ATT_BQ) s_lim[tid] = r0 + tid < rows ? key_limit(a, (r0 + tid) / a.G) : 0;
    __syncthreads();

    /* limits grow with the row index: the block's last row sees the most keys */
    const int64_t kend = s_lim[(rows - r0 < ATT_BQ ? rows - r0 : ATT_BQ) - 1];
    int64_t lim[4];
    float m[4], l[4], o[4][NC];
#pragma unroll
    for (int i = 0; i < 4; i++) {
        lim[i] = s_lim[ty * 4 + i];
        m[i] = -INFINITY;
        l[i] = 0.0f;
#pragma unroll
        for (int n = 0; n < NC; n++) o[i][n] = 0.0f;
    }
    const float *kbase = a.k + (int64_t)kvh * a.hd, *vbase = a.v + (int64_t)kvh * a.hd;

    for (int64_t j0 = 0; j0 < kend; j0 += ATT_BK) {
        const int nk = (int)(kend - j0 < ATT_BK ? kend - j0 : ATT_BK);
        __syncthreads(); /* the previous tile's V and P are no longer read */
        for (int e = tid; e < ATT_BK * HDP; e += ATT_THREADS) {
            int j = e / HDP, d = e % HDP;
            float kv = 0.0f, vv = 0.0f;
            if (j < nk && d < a.hd) {
                kv = kbase[(j0 + j) * a.ldk + d];
                vv = vbase[(j0 + j) * a.ldv + d];
            }
            sk[j * KS + d] = kv;
            sv[j * VS + d] = vv;
        }
        __syncthreads();

        float s[4][4];
#pragma unroll
        for (int i = 0; i < 4; i++)
#pragma unroll
            for (int cc = 0; cc < 4; cc++) s[i][cc] = 0.0f;
        for (int d = 0; d < HDP; d++) {
            float qv[4], kv[4];
#pragma unroll
            for (int i = 0; i < 4; i++) qv[i] = sq[(ty * 4 + i) * QS + d];
#pragma unroll
            for (int cc = 0; cc < 4; cc++) kv[cc] = sk[(tx + 16 * cc) * KS + d];
#pragma unroll
            for (int i = 0; i < 4; i++)
#pragma unroll
                for (int cc = 0; cc < 4; cc++) s[i][cc] = fmaf(qv[i], kv[cc], s[i][cc]);
        }

        /* online softmax; the shuffles run on every lane, whatever the row's mask */
#pragma unroll
        for (int i = 0; i < 4; i++) {
            int64_t nv = lim[i] - j0;
            const int n_valid = nv <= 0 ? 0 : (nv < nk ? (int)nv : nk);
            float mx = -INFINITY;
#pragma unroll
            for (int cc = 0; cc < 4; cc++) {
                s[i][cc] *= a.scale;
                if (tx + 16 * cc < n_valid) mx = fmaxf(mx, s[i][cc]);
            }
            mx = row_max(mx);
            const float m_new = fmaxf(m[i], mx);
            const float alpha = m[i] == -INFINITY ? 0.0f : expf(m[i] - m_new);
            float sum = 0.0f;
#pragma unroll
            for (int cc = 0; cc < 4; cc++) {
                s[i][cc] = tx + 16 * cc < n_valid ? expf(s[i][cc] - m_new) : 0.0f;
                sum += s[i][cc];
            }
            sum = row_sum(sum);
            l[i] = l[i] * alpha + sum;
            m[i] = m_new;
#pragma unroll
            for (int n = 0; n < NC; n++) o[i][n] *= alpha;
        }
        __syncthreads(); /* every thread is done with K: P replaces it */
#pragma unroll
        for (int i = 0; i < 4; i++)
#pragma unroll
            for (int cc = 0; cc < 4; cc++) sp[(ty * 4 + i) * ATT_PSTRIDE + tx + 16 * cc] = s[i][cc];
        __syncthreads();

        for (int j = 0; j < nk; j++) {
            float vv[NC], p[4];
#pragma unroll
            for (int n = 0; n < NC; n++) vv[n] = sv[j * VS + tx + 16 * n];
#pragma unroll
            for (int i = 0; i < 4; i++) p[i] = sp[(ty * 4 + i) * ATT_PSTRIDE + j];
#pragma unroll
            for (int i = 0; i < 4; i++)
#pragma unroll
                for (int n = 0; n < NC; n++) o[i][n] = fmaf(p[i], vv[n], o[i][n]);
        }
    }

#pragma unroll
    for (int i = 0; i < 4; i++) {
        int64_t gr = r0 + ty * 4 + i;
        if (gr >= rows) continue;
        float *dst = a.out + (gr / a.G) * a.ldo + col0 + (gr % a.G) * a.hd;
        float inv = l[i] > 0.0f ? 1.0f / l[i] : 0.0f; /* a row that sees no key gives 0 */
#pragma unroll
        for (int n = 0; n < NC; n++)
            if (tx + 16 * n < a.hd) dst[tx + 16 * n] = o[i][n] * inv;
    }
}

template <int NC>
static void launch(hd_cuda *c, const attn_args &a, int n_kv_heads) {
    const size_t smem = attn_smem_bytes<NC>();
    if (!(c->attn_smem_set & (1u << NC))) { /* above 48 KB needs an explicit opt-in */
        if (hd_cuda_check(c, cudaFuncSetAttribute(attn_kernel<NC>,
                                                  cudaFuncAttributeMaxDynamicSharedMemorySize,
                                                  (int)smem),
                          "attention: cudaFuncSetAttribute") < 0)
            return;
        c->attn_smem_set |= 1u << NC;
    }
    int64_t tiles = (a.Sq * a.G + ATT_BQ - 1) / ATT_BQ;
    attn_kernel<NC><<<dim3((unsigned)tiles, (unsigned)n_kv_heads, 1), ATT_THREADS, smem,
                      c->stream>>>(a);
    hd_cuda_launched(c, "attention kernel");
}

void hd_cuda_attention(hd_backend *be, hd_tensor *out, const hd_tensor *q, const hd_tensor *k,
                       const hd_tensor *v, int n_heads, int n_kv_heads, int head_dim, float scale,
                       hd_attn_mask mask) {
    hd_cuda *c = hd_cuda_begin(be);
    if (!c || q->rows <= 0 || n_heads <= 0 || n_kv_heads <= 0 || head_dim <= 0) return;
    if (n_heads < n_kv_heads) return; /* no query head maps to a KV head (as on the CPU) */
    if (head_dim > 16 * ATT_MAX_NC || n_kv_heads > 65535 ||
        (q->rows * (n_heads / n_kv_heads) + ATT_BQ - 1) / ATT_BQ > INT32_MAX) {
        hd_cuda_fail(c, HD_EUNSUPPORTED, "cuda backend: attention: head_dim %d (at most %d), "
                     "%d KV heads or %lld queries out of range", head_dim, 16 * ATT_MAX_NC,
                     n_kv_heads, (long long)q->rows);
        return;
    }
    if (c->fast && !c->attn_f32 &&
        hd_cuda_attention_tc(c, out, q, k, v, n_heads, n_kv_heads, head_dim, scale, mask) <= 0)
        return; /* queued on the tensor cores, or a recorded failure */
    attn_args a;
    a.q = (const float *)q->data;
    a.k = (const float *)k->data;
    a.v = (const float *)v->data;
    a.out = (float *)out->data;
    a.ldq = q->stride;
    a.ldk = k->stride;
    a.ldv = v->stride;
    a.ldo = out->stride;
    a.Sq = q->rows;
    a.Sk = k->rows > 0 ? k->rows : 0;
    a.G = n_heads / n_kv_heads;
    a.hd = head_dim;
    a.scale = scale;
    a.q_offset = mask.q_offset;
    a.n_causal = mask.n_causal;
    switch ((head_dim + 15) / 16) {
    case 1: launch<1>(c, a, n_kv_heads); break;
    case 2: launch<2>(c, a, n_kv_heads); break;
    case 3: launch<3>(c, a, n_kv_heads); break;
    case 4: launch<4>(c, a, n_kv_heads); break;
    case 5: launch<5>(c, a, n_kv_heads); break;
    case 6: launch<6>(c, a, n_kv_heads); break;
    case 7: launch<7>(c, a, n_kv_heads); break;
    case 8: launch<8>(c, a, n_kv_heads); break;
    case 9: launch<9>(c, a, n_kv_heads); break;
    case 10: launch<10>(c, a, n_kv_heads); break;
    case 11: launch<11>(c, a, n_kv_heads); break;
    case 12: launch<12>(c, a, n_kv_heads); break;
    case 13: launch<13>(c, a, n_kv_heads); break;
    case 14: launch<14>(c, a, n_kv_heads); break;
    case 15: launch<15>(c, a, n_kv_heads); break;
    default: launch<16>(c, a, n_kv_heads); break;
    }
}
