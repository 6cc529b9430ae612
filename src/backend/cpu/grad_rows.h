/* Row kernels of the element-wise training ops, written once with GCC/Clang vector extensions
 * and compiled per ISA: grad_rows.c (1 lane), grad_rows_avx2.c (8), grad_rows_avx512.c (16).
 * Before including this file the includer defines VW (lanes), VSQRT(v) (lane-wise sqrt of a vf),
 * VEXP (an hd_vexp_fn of the same ISA) and ROWFN(name) (name with the ISA suffix).
 * A row's tail is processed as one zero-padded vector (zeros are harmless in every formula). */
#include <math.h>
#include <string.h>

#include "backend/cpu/kernels.h"
#include "backend/cpu/vec_lanes.h"

void ROWFN(hd_adamw_row)(int64_t n, float *w, const float *g, float *m, float *v,
                         const hd_adamw_step *p) {
    const vf b1 = vsplat(p->beta1), b2 = vsplat(p->beta2), ib1 = vsplat(1.0f - p->beta1),
             ib2 = vsplat(1.0f - p->beta2), inv_bc1 = vsplat(1.0f / p->bc1),
             inv_bc2 = vsplat(1.0f / p->bc2), gs = vsplat(p->grad_scale), lr = vsplat(p->lr),
             eps = vsplat(p->eps), wd = vsplat(p->weight_decay);
    for (int64_t i = 0; i < n; i += VW) {
        int64_t k = n - i < VW ? n - i : VW;
        vf W = vload_n(w + i, k), G = vload_n(g + i, k) * gs;
        vf M = b1 * vload_n(m + i, k) + ib1 * G, V = b2 * vload_n(v + i, k) + ib2 * G * G;
        W -= lr * ((M * inv_bc1) / (VSQRT(V * inv_bc2) + eps) + wd * W);
        vstore_n(m + i, M, k);
        vstore_n(v + i, V, k);
        vstore_n(w + i, W, k);
    }
}

/* up != NULL: o1 = dgate = dy·up·silu'(x), o2 = dup = dy·silu(x); else o1 = dy·silu'(x). */
void ROWFN(hd_silu_grad_row)(int64_t n, const float *dy, const float *x, const float *up,
                             float *o1, float *o2) {
    float t[VEXP_BLOCK];
    const vf one = vsplat(1.0f);
    for (int64_t c0 = 0; c0 < n; c0 += VEXP_BLOCK) {
        int64_t mb = n - c0 < VEXP_BLOCK ? n - c0 : VEXP_BLOCK;
        vexp_neg(x + c0, t, mb);
        for (int64_t i = 0; i < mb; i += VW) {
            int64_t k = mb - i < VW ? mb - i : VW, c = c0 + i;
            vf X = vload_n(x + c, k), D = vload_n(dy + c, k);
            vf s = one / (one + vload_n(t + i, k));
            vf ds = s * (one + X * (one - s));
            if (up) {
                vf U = vload_n(up + c, k);
                vstore_n(o2 + c, D * X * s, k);
                vstore_n(o1 + c, D * U * ds, k);
            } else {
                vstore_n(o1 + c, D * ds, k);
            }
        }
    }
}

/* One RMSNorm group of g values: dx (=|+=) r·w·dy − x·r³/g·Σ w·dy·x, dw += dy·x·r. */
void ROWFN(hd_rms_grad_row)(int64_t g, const float *x, const float *dy, const float *w,
                            float eps, int accumulate, float *dx, float *dw) {
    vf ss = {0}, dot = {0};
    for (int64_t i = 0; i < g; i += VW) {
        int64_t k = g - i < VW ? g - i : VW;
        vf X = vload_n(x + i, k);
        ss += X * X;
        dot += vload_n(w + i, k) * vload_n(dy + i, k) * X;
    }
    vd ssv = __builtin_convertvector(ss, vd), dotv = __builtin_convertvector(dot, vd);
    double ssd = vsum_d(&ssv), dotd = vsum_d(&dotv);
    double rd = 1.0 / sqrt(ssd / (double)g + (double)eps);
    const vf r = vsplat((float)rd), kk = vsplat((float)(rd * rd * rd * dotd / (double)g));
    for (int64_t i = 0; i < g; i += VW) {
        int64_t k = g - i < VW ? g - i : VW;
        vf X = vload_n(x + i, k), D = vload_n(dy + i, k);
        vf v = r * vload_n(w + i, k) * D - X * kk;
        if (accumulate) v += vload_n(dx + i, k);
        vstore_n(dw + i, vload_n(dw + i, k) + D * X * r, k);
        vstore_n(dx + i, v, k);
    }
}

/* y = a·x + b·y (x may be y) */
void ROWFN(hd_axpby_row)(int64_t n, float a, const float *x, float b, float *y) {
    const vf va = vsplat(a), vb = vsplat(b);
    for (int64_t i = 0; i < n; i += VW) {
        int64_t k = n - i < VW ? n - i : VW;
        vstore_n(y + i, va * vload_n(x + i, k) + vb * vload_n(y + i, k), k);
    }
}

/* Σ x² with double lanes */
double ROWFN(hd_sum_squares_row)(int64_t n, const float *x) {
    vd acc = {0};
    for (int64_t i = 0; i < n; i += VW) {
        int64_t k = n - i < VW ? n - i : VW;
        vd d = __builtin_convertvector(vload_n(x + i, k), vd);
        acc += d * d;
    }
    return vsum_d(&acc);
}

/* One attention-backward tile of rows × HD_ATTN_BK scores (s) and dO·V products (dp): entry
 * (r, j) is visible iff lo[r] <= j < hi[r]; with L = lse_r[r] + lse_c[j] and
 * δ = d_r[r] + d_c[j] (each array NULL when zero), it leaves s = P = exp(s·scale − L) (0 where
 * hidden) and dp = dS·scale = P·(dp − δ)·scale. */
void ROWFN(hd_attn_grad_tile)(int rows, float *s, float *dp, const float *lse_r,
                              const float *d_r, const float *lse_c, const float *d_c,
                              const int *lo, const int *hi, float scale) {
    const vf sc = vsplat(scale);
    for (int r = 0; r < rows; r++) {
        float *sr = s + r * HD_ATTN_BK;
        const vf L = vsplat(lse_r ? lse_r[r] : 0.0f);
        for (int j = 0; j < HD_ATTN_BK; j += VW) {
            vf a = vload_n(sr + j, VW) * sc - L;
            if (lse_c) a -= vload_n(lse_c + j, VW);
            vstore_n(sr + j, a, VW);
        }
        for (int j = 0; j < lo[r] && j < HD_ATTN_BK; j++) sr[j] = -INFINITY;
        for (int j = hi[r] > 0 ? hi[r] : 0; j < HD_ATTN_BK; j++) sr[j] = -INFINITY;
    }
    VEXP(s, (int64_t)rows * HD_ATTN_BK);
    for (int r = 0; r < rows; r++) {
        float *sr = s + r * HD_ATTN_BK, *dr = dp + r * HD_ATTN_BK;
        const vf D = vsplat(d_r ? d_r[r] : 0.0f);
        for (int j = 0; j < HD_ATTN_BK; j += VW) {
            vf d = vload_n(dr + j, VW) - D;
            if (d_c) d -= vload_n(d_c + j, VW);
            vstore_n(dr + j, vload_n(sr + j, VW) * d * sc, VW);
        }
    }
}

/* acc[j] += Σ_r x[r·ld + j] for j < n (bias gradients), in double lanes */
void ROWFN(hd_col_sum)(int64_t rows, int64_t n, const float *x, int64_t ld, float *acc) {
    for (int64_t j = 0; j < n; j += VW) {
        int64_t k = n - j < VW ? n - j : VW;
        vd s = {0};
        for (int64_t r = 0; r < rows; r++) s += __builtin_convertvector(vload_n(x + r * ld + j, k), vd);
        vstore_n(acc + j, vload_n(acc + j, k) + __builtin_convertvector(s, vf), k);
    }
}

/* Σ a·b in double lanes */
double ROWFN(hd_dot_row)(int64_t n, const float *a, const float *b) {
    vd acc = {0};
    for (int64_t i = 0; i < n; i += VW) {
        int64_t k = n - i < VW ? n - i : VW;
        acc += __builtin_convertvector(vload_n(a + i, k), vd) *
               __builtin_convertvector(vload_n(b + i, k), vd);
    }
    return vsum_d(&acc);
}
