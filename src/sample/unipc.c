/* FlowUniPC step (spec 05 §5): bh2, solver order 2, data prediction, corrector on, lower order at
 * the end. Scalars and arrays are float32 with the rounding points of the upstream tensor code.
 *
 * The two transcendental scalars follow what PyTorch computes for its 0-dim float32 tensors:
 *   expm1: PyTorch always takes SLEEF's expm1f (1-ulp, "u10") here — its MKL route for expm1 is
 *          disabled — so we evaluate the same double-float algorithm (FMA variant) below. It is
 *          bit-identical to torch.expm1 on 400k test inputs and makes the golden shift-3 case
 *          bit-exact; the correctly rounded expm1 differs from it on ~0.1 % of inputs, which moves
 *          the trajectory by 1 ulp.
 *   log:   correctly rounded (the double result rounded once). x86 PyTorch builds with MKL use
 *          MKL's high-accuracy vsLn here; builds without MKL use SLEEF's logf_u10 instead, which
 *          differs by 1 ulp on ~1 % of inputs (a 1-ulp, ~5e-7, trajectory difference). */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "sample/scheduler.h"

#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__) && !defined(__STRICT_ANSI__)
#pragma GCC optimize("fp-contract=off")
#endif

static float log_f32(float x) { return (float)log((double)x); }

/* ---- expm1 as SLEEF's float u10 kernel computes it (double-float arithmetic with FMAs) ---------- */

typedef struct f2 {
    float hi, lo; /* the unevaluated sum hi + lo */
} f2;

static f2 f2_make(float hi, float lo) {
    f2 r = {hi, lo};
    return r;
}

/* a + b for any magnitudes (two-sum), then the low parts. */
static f2 f2_add_f(f2 a, float b) {
    float s = a.hi + b, v = s - a.hi;
    float t = (a.hi - (s - v)) + (b - v);
    return f2_make(s, t + a.lo);
}

static f2 f2_add_f2(f2 a, f2 b) {
    float s = a.hi + b.hi, v = s - a.hi;
    float t = (a.hi - (s - v)) + (b.hi - v);
    return f2_make(s, t + (a.lo + b.lo));
}

/* a + b with |a| >= |b.hi| (fast two-sum). */
static f2 f_add_f2(float a, f2 b) {
    float s = a + b.hi;
    return f2_make(s, ((a - s) + b.hi) + b.lo);
}

static f2 f2_mul_f(f2 a, float b) {
    float s = a.hi * b;
    return f2_make(s, fmaf(a.lo, b, fmaf(a.hi, b, -s)));
}

static f2 f2_mul_f2(f2 a, f2 b) {
    float s = a.hi * b.hi;
    return f2_make(s, fmaf(a.hi, b.lo, fmaf(a.lo, b.hi, fmaf(a.hi, b.hi, -s))));
}

static f2 f2_sqr(f2 a) {
    float s = a.hi * a.hi;
    return f2_make(s, fmaf(a.hi + a.hi, a.lo, fmaf(a.hi, a.hi, -s)));
}

static float pow2i(int q) { /* 2^q for a normal result */
    uint32_t bits = (uint32_t)(q + 127) << 23;
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

/* x·2^q in two exact steps (q split as floor(q/2) + the rest). */
static float ldexp2(float x, int q) {
    int half = q >= 0 ? q / 2 : -((1 - q) / 2);
    return (x * pow2i(half)) * pow2i(q - half);
}

static float expm1_f32(float a) {
    if (a != a) return a;
    if (a > 88.72283172607421875f) return INFINITY;
    if (a < -16.635532333438687426013570f) return -1.0f; /* also λ = +∞ at σ = 0 */
    if (a == 0.0f) return a;                              /* keeps −0 */
    /* e^a = 2^q·e^s with s = a − q·ln2 in double-float (ln2 split in two). */
    float u = a * 1.442695040888963407359924681001892137426645954152985934135449406931f;
    int q = (int)rintf(u);
    f2 s = f2_add_f(f2_make(a, 0.0f), (float)q * -0.693145751953125f);
    s = f2_add_f(s, (float)q * -1.428606765330187045e-06f);
    u = 0.1980960224e-3f;
    u = fmaf(u, s.hi, 0.1394256484e-2f);
    u = fmaf(u, s.hi, 0.8333456703e-2f);
    u = fmaf(u, s.hi, 0.4166637361e-1f);
    f2 t = f2_add_f(f2_mul_f(s, u), 0.166666659414234244790680580464f);
    t = f2_add_f(f2_mul_f2(s, t), 0.5f);
    t = f2_add_f2(s, f2_mul_f2(f2_sqr(s), t));
    t = f_add_f2(1.0f, t);
    t = f2_make(ldexp2(t.hi, q), ldexp2(t.lo, q));
    f2 r = f2_add_f(t, -1.0f);
    return r.hi + r.lo;
}

/* λ(σ) = log(1 − σ) − log(σ); +∞ at σ = 0. */
float hd_unipc_lambda(float sigma) {
    return log_f32(1.0f - sigma) - log_f32(sigma);
}

/* The scalar coefficients of one update from σ_s (λ_s) to σ_t (λ_t). */
typedef struct uni_coef {
    float h, hh, phi, ratio, a_phi, a_b;
} uni_coef;

static uni_coef coef(float sigma_s, float lambda_s, float sigma_t, float lambda_t) {
    uni_coef c;
    c.h = lambda_t - lambda_s;
    c.hh = -c.h;
    c.phi = expm1_f32(c.hh); /* h·φ1(h); bh2 also uses B(h) = expm1(hh) = φ */
    float alpha_t = 1.0f - sigma_t;
    c.ratio = sigma_t / sigma_s;
    c.a_phi = alpha_t * c.phi;
    c.a_b = alpha_t * c.phi;
    return c;
}

void hd_unipc_step(hd_scheduler *s, int i, const float *mo, const float *x, float *next, size_t n) {
    const float *sg = s->sigmas, *lam = s->lambdas;
    const int N = s->n_steps;
    const float sigma = sg[i];

    /* Corrector (from step 1 on) with the previous predictor's order. */
    const int use_corr = i > 0;
    const int pc = s->prev_order;
    uni_coef cc = {0};
    float rho0 = 0.0f, rho1 = 0.5f, rk_c = 1.0f;
    if (use_corr) {
        cc = coef(sg[i - 1], lam[i - 1], sigma, lam[i]);
        if (pc == 2) {
            rk_c = (lam[i - 2] - lam[i - 1]) / cc.h;
            float b_h = cc.phi;
            float k1 = cc.phi / cc.hh - 1.0f;
            float b1 = k1 / b_h;
            float k2 = k1 / cc.hh - 0.5f;
            float b2 = (k2 * 2.0f) / b_h;
            /* [[1, 1], [rk, 1]]·ρ = [b1, b2] as torch.linalg.solve does it: LU of the transpose
             * [[1, rk], [1, 1]] (no pivoting: l = 1, u22 = 1 − rk), then Uᵀw = b, Lᵀρ = w. This
             * reproduces PyTorch's float32 result exactly (LAPACK without FMA); the algebraically
             * equal closed form ρ0 = (b1 − b2)/(1 − rk) is off by 1-2 ulp. */
            rho1 = (b2 - rk_c * b1) / (1.0f - rk_c);
            rho0 = b1 - rho1;
        }
    }

    /* Predictor order: min(2, steps left, warm-up). */
    int p = s->lower_order + 1;
    if (p > 2) p = 2;
    if (p > N - i) p = N - i;
    uni_coef pc_ = coef(sigma, lam[i], sg[i + 1], lam[i + 1]);
    float rk_p = 1.0f;
    if (p == 2) rk_p = (lam[i - 1] - lam[i]) / pc_.h;

    float *m_old = s->m_old, *m_new = s->m_new, *x_last = s->x_last;
    for (size_t k = 0; k < n; k++) {
        float xk = x[k];
        float x0 = xk - sigma * mo[k]; /* data prediction with the scheduler's exact σ */
        if (use_corr) {
            float base = cc.ratio * x_last[k] - cc.a_phi * m_new[k];
            float d1t = x0 - m_new[k];
            float corr;
            if (pc == 2) {
                float d1 = (m_old[k] - m_new[k]) / rk_c;
                corr = rho0 * d1 + rho1 * d1t;
            } else {
                corr = 0.5f * d1t;
            }
            xk = base - cc.a_b * corr;
        }
        m_old[k] = m_new[k];
        m_new[k] = x0;
        x_last[k] = xk;

        float z = pc_.ratio * xk - pc_.a_phi * x0;
        if (p == 2) {
            float d1 = (m_old[k] - x0) / rk_p;
            z = z - pc_.a_b * (0.5f * d1);
        }
        next[k] = z;
    }
    if (s->lower_order < 2) s->lower_order++;
    s->prev_order = p;
}
