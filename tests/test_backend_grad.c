/* CPU backend training ops: every gradient op against a double-precision analytic gradient,
 * which is itself checked against central finite differences of a double-precision forward
 * written here (so the references cannot share a mistake with the kernels). Every ISA this CPU
 * has (scalar, AVX2, AVX-512) × 1, 2, 3 threads; odd shapes, strided views, GEMM shapes that
 * cross the cache blocks, grouped-query attention with every mask pattern, accumulate on/off,
 * outputs aliasing dy where the contract allows it. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "core/cpu_features.h"
#include "testutil.h"

/* ---- random numbers ---- */
static uint64_t rng_state = 0x2545F4914F6CDD1Dull;
static double urand(void) {
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (double)(rng_state >> 11) * (1.0 / 9007199254740992.0);
}
/* uniform in [lo, hi), rounded to float so the device sees exactly the reference's inputs */
static double frand(double lo, double hi) { return (double)(float)(lo + (hi - lo) * urand()); }

/* ---- backends under test ---- */
typedef struct cfg {
    hd_backend *be;
    int isa, threads;
    int gemm_bf16; /* the bf16 linear option: gradients must stay float32 regardless */
} cfg;
static cfg cfgs[10];
static int n_cfg;

/* ---- host matrices (double) ---- */
typedef struct mat {
    int64_t r, c;
    double *v;
} mat;
#define AT(m, i, j) ((m).v[(int64_t)(i) * (m).c + (j)])

static mat mat_zero(int64_t r, int64_t c) {
    mat m = {r, c, calloc((size_t)(r * c > 0 ? r * c : 1), sizeof(double))};
    if (!m.v) abort();
    return m;
}
static mat mat_rand(int64_t r, int64_t c, double lo, double hi) {
    mat m = mat_zero(r, c);
    for (int64_t i = 0; i < r * c; i++) m.v[i] = frand(lo, hi);
    return m;
}
static void mat_free(mat *m) {
    free(m->v);
    m->v = NULL;
}

/* ---- device tensors: optionally a view into a larger parent filled with garbage ---- */
typedef struct dev {
    hd_tensor parent, t;
} dev;

static dev dev_from(hd_backend *be, const mat *m, int strided) {
    dev d;
    hd_error e = {0};
    int64_t pr = m->r + (strided ? 3 : 0), pc = m->c + (strided ? 7 : 0);
    if (be->ops->alloc(be, &d.parent, HD_F32, pr, pc, &e) != 0) abort();
    float *p = d.parent.data;
    for (int64_t i = 0; i < pr * pc; i++) p[i] = 1e30f; /* poison outside the view */
    d.t = d.parent;
    if (strided) {
        d.t = hd_view_rows(&d.parent, 2, m->r);
        d.t = hd_view_cols(&d.t, 5, m->c);
    }
    for (int64_t i = 0; i < m->r; i++)
        for (int64_t j = 0; j < m->c; j++)
            ((float *)d.t.data)[i * d.t.stride + j] = (float)AT(*m, i, j);
    return d;
}
static double dev_at(const dev *d, int64_t i, int64_t j) {
    return ((const float *)d->t.data)[i * d->t.stride + j];
}
static void dev_free(hd_backend *be, dev *d) { hd_tensor_free(be, &d->parent); }

/* 1 if the parent of a strided view is untouched outside the view */
static int dev_border_intact(const dev *d) {
    const float *p = d->parent.data;
    int64_t r0 = ((const float *)d->t.data - p) / d->parent.stride;
    int64_t c0 = ((const float *)d->t.data - p) % d->parent.stride;
    for (int64_t i = 0; i < d->parent.rows; i++)
        for (int64_t j = 0; j < d->parent.cols; j++) {
            int inside = i >= r0 && i < r0 + d->t.rows && j >= c0 && j < c0 + d->t.cols;
            if (!inside && p[i * d->parent.stride + j] != 1e30f) return 0;
        }
    return 1;
}

/* Fails if any |got − ref| > tol·(rms(ref) + |ref| + mag) (+ a tiny floor); mag is the size of
 * terms that cancel in the result (a gradient that is exactly 0 in double, say), else 0. */
static void check_close_mag(const cfg *c, const char *what, const dev *got, const mat *ref,
                            double tol, double mag) {
    double ss = 0;
    for (int64_t i = 0; i < ref->r * ref->c; i++) ss += ref->v[i] * ref->v[i];
    double rms = ref->r * ref->c > 0 ? sqrt(ss / (double)(ref->r * ref->c)) : 0;
    double worst = 0, g_at = 0, r_at = 0;
    int64_t wi = -1, wj = -1;
    for (int64_t i = 0; i < ref->r; i++)
        for (int64_t j = 0; j < ref->c; j++) {
            double g = dev_at(got, i, j), r = AT(*ref, i, j);
            double q = fabs(g - r) / (tol * (rms + fabs(r) + mag) + 1e-30);
            if (!(q <= worst)) {
                worst = isnan(q) ? INFINITY : q;
                wi = i, wj = j, g_at = g, r_at = r;
            }
        }
    CHECKF(worst <= 1.0, "%s [%s%s, %d threads]: worst %.3g at (%lld,%lld) got %.9g want %.9g",
           what, hd_cpu_isa_name(c->isa), c->gemm_bf16 ? "+bf16" : "", c->threads, worst,
           (long long)wi, (long long)wj, g_at, r_at);
}
static void check_close(const cfg *c, const char *what, const dev *got, const mat *ref,
                        double tol) {
    check_close_mag(c, what, got, ref, tol, 0);
}

/* ================= double-precision references ================= */

static void ref_linear(const mat *x, const mat *w, const mat *b, mat *y) {
    for (int64_t m = 0; m < x->r; m++)
        for (int64_t n = 0; n < w->r; n++) {
            double s = b ? AT(*b, 0, n) : 0;
            for (int64_t k = 0; k < x->c; k++) s += AT(*x, m, k) * AT(*w, n, k);
            AT(*y, m, n) = s;
        }
}
/* dx = dy·W, dW = dyᵀ·x, db = Σ_rows dy */
static void ref_linear_grad(const mat *dy, const mat *x, const mat *w, mat *dx, mat *dw,
                            mat *db) {
    for (int64_t m = 0; m < x->r; m++)
        for (int64_t k = 0; k < x->c; k++) {
            double s = 0;
            for (int64_t n = 0; n < w->r; n++) s += AT(*dy, m, n) * AT(*w, n, k);
            AT(*dx, m, k) = s;
        }
    for (int64_t n = 0; n < w->r; n++) {
        double sb = 0;
        for (int64_t m = 0; m < x->r; m++) sb += AT(*dy, m, n);
        AT(*db, 0, n) = sb;
        for (int64_t k = 0; k < x->c; k++) {
            double s = 0;
            for (int64_t m = 0; m < x->r; m++) s += AT(*dy, m, n) * AT(*x, m, k);
            AT(*dw, n, k) = s;
        }
    }
}

static void ref_rmsnorm(const mat *x, const mat *w, double eps, mat *y) {
    int64_t g = w->c;
    for (int64_t r = 0; r < x->r; r++)
        for (int64_t c0 = 0; c0 < x->c; c0 += g) {
            double ss = 0;
            for (int64_t i = 0; i < g; i++) ss += AT(*x, r, c0 + i) * AT(*x, r, c0 + i);
            double inv = 1.0 / sqrt(ss / (double)g + eps);
            for (int64_t i = 0; i < g; i++) AT(*y, r, c0 + i) = AT(*x, r, c0 + i) * inv * AT(*w, 0, i);
        }
}
static void ref_rmsnorm_grad(const mat *dy, const mat *x, const mat *w, double eps, mat *dx,
                             mat *dw) {
    int64_t g = w->c;
    for (int64_t i = 0; i < g; i++) AT(*dw, 0, i) = 0;
    for (int64_t r = 0; r < x->r; r++)
        for (int64_t c0 = 0; c0 < x->c; c0 += g) {
            double ss = 0, dot = 0;
            for (int64_t i = 0; i < g; i++) {
                ss += AT(*x, r, c0 + i) * AT(*x, r, c0 + i);
                dot += AT(*w, 0, i) * AT(*dy, r, c0 + i) * AT(*x, r, c0 + i);
            }
            double inv = 1.0 / sqrt(ss / (double)g + eps);
            for (int64_t i = 0; i < g; i++) {
                double xi = AT(*x, r, c0 + i), dyi = AT(*dy, r, c0 + i);
                AT(*dx, r, c0 + i) = inv * AT(*w, 0, i) * dyi - xi * inv * inv * inv * dot / (double)g;
                AT(*dw, 0, i) += dyi * xi * inv;
            }
        }
}

typedef struct attn_shape {
    int Hq, Hkv, hd;
    double scale;
    hd_attn_mask mask;
} attn_shape;

static int64_t ref_key_limit(const attn_shape *a, int64_t i, int64_t Sk) {
    int64_t p = a->mask.q_offset + i;
    if (p >= a->mask.n_causal) return Sk;
    return p + 1 < Sk ? p + 1 : Sk;
}

/* P (probabilities) of head h as a dense Sq×Sk matrix; lse per row (−inf with no key). */
static void ref_probs(const attn_shape *a, const mat *q, const mat *k, int h, mat *P, double *lse) {
    int kvh = h / (a->Hq / a->Hkv);
    for (int64_t i = 0; i < q->r; i++) {
        int64_t lim = ref_key_limit(a, i, k->r);
        double mx = -INFINITY;
        for (int64_t j = 0; j < k->r; j++) {
            double s = 0;
            for (int d = 0; d < a->hd; d++)
                s += AT(*q, i, h * a->hd + d) * AT(*k, j, kvh * a->hd + d);
            AT(*P, i, j) = j < lim ? s * a->scale : -INFINITY;
            if (AT(*P, i, j) > mx) mx = AT(*P, i, j);
        }
        double sum = 0;
        for (int64_t j = 0; j < k->r; j++) sum += j < lim ? exp(AT(*P, i, j) - mx) : 0;
        lse[i] = lim > 0 ? mx + log(sum) : -INFINITY;
        for (int64_t j = 0; j < k->r; j++) AT(*P, i, j) = j < lim ? exp(AT(*P, i, j) - lse[i]) : 0;
    }
}

static void ref_attention(const attn_shape *a, const mat *q, const mat *k, const mat *v, mat *out,
                          mat *lse) {
    mat P = mat_zero(q->r, k->r);
    double *l = malloc((size_t)(q->r + 1) * sizeof(double));
    int kvh_of = a->Hq / a->Hkv;
    for (int h = 0; h < a->Hq; h++) {
        ref_probs(a, q, k, h, &P, l);
        for (int64_t i = 0; i < q->r; i++) {
            if (lse) AT(*lse, i, h) = l[i];
            for (int d = 0; d < a->hd; d++) {
                double s = 0;
                for (int64_t j = 0; j < k->r; j++) s += AT(P, i, j) * AT(*v, j, (h / kvh_of) * a->hd + d);
                AT(*out, i, h * a->hd + d) = s;
            }
        }
    }
    free(l);
    mat_free(&P);
}

static void ref_attention_grad(const attn_shape *a, const mat *dout, const mat *q, const mat *k,
                               const mat *v, mat *dq, mat *dk, mat *dv) {
    mat P = mat_zero(q->r, k->r), dS = mat_zero(q->r, k->r);
    double *l = malloc((size_t)(q->r + 1) * sizeof(double));
    int G = a->Hq / a->Hkv, hd = a->hd;
    memset(dk->v, 0, (size_t)(dk->r * dk->c) * sizeof(double));
    memset(dv->v, 0, (size_t)(dv->r * dv->c) * sizeof(double));
    for (int h = 0; h < a->Hq; h++) {
        int kvh = h / G;
        ref_probs(a, q, k, h, &P, l);
        for (int64_t i = 0; i < q->r; i++) {
            double D = 0; /* Σ_j P_ij dP_ij */
            for (int64_t j = 0; j < k->r; j++) {
                double dp = 0;
                for (int d = 0; d < hd; d++) dp += AT(*dout, i, h * hd + d) * AT(*v, j, kvh * hd + d);
                AT(dS, i, j) = dp;
                D += AT(P, i, j) * dp;
            }
            for (int64_t j = 0; j < k->r; j++) AT(dS, i, j) = AT(P, i, j) * (AT(dS, i, j) - D);
        }
        for (int64_t i = 0; i < q->r; i++)
            for (int d = 0; d < hd; d++) {
                double s = 0;
                for (int64_t j = 0; j < k->r; j++) s += AT(dS, i, j) * AT(*k, j, kvh * hd + d);
                AT(*dq, i, h * hd + d) = s * a->scale;
            }
        for (int64_t j = 0; j < k->r; j++)
            for (int d = 0; d < hd; d++) {
                double sk = 0, sv = 0;
                for (int64_t i = 0; i < q->r; i++) {
                    sk += AT(dS, i, j) * AT(*q, i, h * hd + d);
                    sv += AT(P, i, j) * AT(*dout, i, h * hd + d);
                }
                AT(*dk, j, kvh * hd + d) += sk * a->scale;
                AT(*dv, j, kvh * hd + d) += sv;
            }
    }
    free(l);
    mat_free(&P);
    mat_free(&dS);
}

static double sigmoid(double x) { return 1.0 / (1.0 + exp(-x)); }
static double silu(double x) { return x * sigmoid(x); }
static double silu_d(double x) {
    double s = sigmoid(x);
    return s * (1 + x * (1 - s));
}

/* ================= references against finite differences ================= */

/* Σ dy ∘ f(inputs) for the op under test; the inputs are the matrices in *in. */
typedef struct fd_case {
    int op; /* 0 linear, 1 rmsnorm, 2 attention, 3 silu_mul, 4 silu */
    mat *in[3];
    mat dy;
    attn_shape as;
    double eps;
} fd_case;

static double fd_loss(const fd_case *f) {
    mat y = mat_zero(f->dy.r, f->dy.c);
    switch (f->op) {
    case 0: ref_linear(f->in[0], f->in[1], f->in[2], &y); break;
    case 1: ref_rmsnorm(f->in[0], f->in[1], f->eps, &y); break;
    case 2: ref_attention(&f->as, f->in[0], f->in[1], f->in[2], &y, NULL); break;
    case 3:
        for (int64_t i = 0; i < y.r * y.c; i++) y.v[i] = silu(f->in[0]->v[i]) * f->in[1]->v[i];
        break;
    default:
        for (int64_t i = 0; i < y.r * y.c; i++) y.v[i] = silu(f->in[0]->v[i]);
        break;
    }
    double s = 0;
    for (int64_t i = 0; i < y.r * y.c; i++) s += y.v[i] * f->dy.v[i];
    mat_free(&y);
    return s;
}

/* Worst |analytic − central difference| / (1e-6·(1 + |analytic|)) over all elements of input
 * `which`; must stay below 1. */
static double fd_worst(fd_case *f, int which, const mat *grad) {
    const double h = 1e-5;
    double worst = 0;
    mat *p = f->in[which];
    for (int64_t i = 0; i < p->r * p->c; i++) {
        double keep = p->v[i];
        p->v[i] = keep + h;
        double lp = fd_loss(f);
        p->v[i] = keep - h;
        double lm = fd_loss(f);
        p->v[i] = keep;
        double q = fabs((lp - lm) / (2 * h) - grad->v[i]) / (1e-6 * (1 + fabs(grad->v[i])));
        if (!(q <= worst)) worst = isnan(q) ? INFINITY : q;
    }
    return worst;
}

static void test_reference_gradients_match_finite_differences(void) {
    /* linear with bias */
    {
        mat x = mat_rand(5, 7, -1, 1), w = mat_rand(4, 7, -1, 1), b = mat_rand(1, 4, -1, 1);
        fd_case f = {0, {&x, &w, &b}, mat_rand(5, 4, -1, 1), {0}, 0};
        mat dx = mat_zero(5, 7), dw = mat_zero(4, 7), db = mat_zero(1, 4);
        ref_linear_grad(&f.dy, &x, &w, &dx, &dw, &db);
        CHECKF(fd_worst(&f, 0, &dx) <= 1, "linear dx");
        CHECKF(fd_worst(&f, 1, &dw) <= 1, "linear dw");
        CHECKF(fd_worst(&f, 2, &db) <= 1, "linear db");
        mat_free(&x), mat_free(&w), mat_free(&b), mat_free(&f.dy);
        mat_free(&dx), mat_free(&dw), mat_free(&db);
    }
    /* grouped rmsnorm (2 groups of 6) */
    {
        mat x = mat_rand(3, 12, -1, 1), w = mat_rand(1, 6, 0.5, 1.5);
        fd_case f = {1, {&x, &w, NULL}, mat_rand(3, 12, -1, 1), {0}, 1e-3};
        mat dx = mat_zero(3, 12), dw = mat_zero(1, 6);
        ref_rmsnorm_grad(&f.dy, &x, &w, f.eps, &dx, &dw);
        CHECKF(fd_worst(&f, 0, &dx) <= 1, "rmsnorm dx");
        CHECKF(fd_worst(&f, 1, &dw) <= 1, "rmsnorm dw");
        mat_free(&x), mat_free(&w), mat_free(&f.dy), mat_free(&dx), mat_free(&dw);
    }
    /* attention: GQA 4/2, hybrid mask with a query offset (every masking rule at once) */
    {
        attn_shape as = {4, 2, 3, 0.6, {1, 4}};
        int64_t Sq = 5, Sk = 6;
        mat q = mat_rand(Sq, 12, -1, 1), k = mat_rand(Sk, 6, -1, 1), v = mat_rand(Sk, 6, -1, 1);
        fd_case f = {2, {&q, &k, &v}, mat_rand(Sq, 12, -1, 1), as, 0};
        mat dq = mat_zero(Sq, 12), dk = mat_zero(Sk, 6), dv = mat_zero(Sk, 6);
        ref_attention_grad(&as, &f.dy, &q, &k, &v, &dq, &dk, &dv);
        CHECKF(fd_worst(&f, 0, &dq) <= 1, "attention dq");
        CHECKF(fd_worst(&f, 1, &dk) <= 1, "attention dk");
        CHECKF(fd_worst(&f, 2, &dv) <= 1, "attention dv");
        mat_free(&q), mat_free(&k), mat_free(&v), mat_free(&f.dy);
        mat_free(&dq), mat_free(&dk), mat_free(&dv);
    }
    /* silu·up and silu */
    {
        mat g = mat_rand(3, 9, -6, 6), u = mat_rand(3, 9, -2, 2);
        fd_case f = {3, {&g, &u, NULL}, mat_rand(3, 9, -1, 1), {0}, 0};
        mat dg = mat_zero(3, 9), du = mat_zero(3, 9), dx = mat_zero(3, 9);
        for (int64_t i = 0; i < 27; i++) {
            dg.v[i] = f.dy.v[i] * u.v[i] * silu_d(g.v[i]);
            du.v[i] = f.dy.v[i] * silu(g.v[i]);
            dx.v[i] = f.dy.v[i] * silu_d(g.v[i]);
        }
        CHECKF(fd_worst(&f, 0, &dg) <= 1, "silu_mul dgate");
        CHECKF(fd_worst(&f, 1, &du) <= 1, "silu_mul dup");
        f.op = 4;
        CHECKF(fd_worst(&f, 0, &dx) <= 1, "silu dx");
        mat_free(&g), mat_free(&u), mat_free(&f.dy), mat_free(&dg), mat_free(&du), mat_free(&dx);
    }
}

/* ================= the backend ops ================= */

static void check_linear_grads(const cfg *c, int64_t M, int64_t N, int64_t K, hd_dtype wdt,
                               int accumulate, int with_db, int strided) {
    hd_backend *be = c->be;
    hd_error e = {0};
    mat x = mat_rand(M, K, -1, 1), dy = mat_rand(M, N, -1, 1), w = mat_rand(N, K, -1, 1);
    mat dx0 = mat_rand(M, K, -1, 1), dw0 = mat_rand(N, K, -1, 1), db0 = mat_rand(1, N, -1, 1);
    /* a BF16/F16 weight: the reference uses the rounded values */
    uint16_t *wh = malloc((size_t)(N * K + 1) * sizeof(uint16_t));
    float *wf = malloc((size_t)(N * K + 1) * sizeof(float));
    for (int64_t i = 0; i < N * K; i++) {
        if (wdt == HD_BF16) {
            wh[i] = hd_f32_to_bf16((float)w.v[i]);
            w.v[i] = hd_bf16_to_f32(wh[i]);
        } else if (wdt == HD_F16) {
            wh[i] = hd_f32_to_f16((float)w.v[i]);
            w.v[i] = hd_f16_to_f32(wh[i]);
        }
        wf[i] = (float)w.v[i];
    }
    hd_tensor wt;
    CHECK(be->ops->weight(be, &wt, wdt, N, K, wdt == HD_F32 ? (void *)wf : (void *)wh, &e) == 0);
    mat rdx = mat_zero(M, K), rdw = mat_zero(N, K), rdb = mat_zero(1, N);
    ref_linear_grad(&dy, &x, &w, &rdx, &rdw, &rdb);
    for (int64_t i = 0; i < M * K; i++) rdx.v[i] += accumulate ? dx0.v[i] : 0;
    for (int64_t i = 0; i < N * K; i++) rdw.v[i] += dw0.v[i];
    for (int64_t i = 0; i < N; i++) rdb.v[i] += db0.v[i];

    dev dX = dev_from(be, &x, strided), dDY = dev_from(be, &dy, strided);
    dev dDX = dev_from(be, &dx0, strided), dDW = dev_from(be, &dw0, strided);
    dev dDB = dev_from(be, &db0, strided);
    be->ops->linear_dx(be, &dDX.t, &dDY.t, &wt, accumulate);
    be->ops->linear_dw(be, &dDW.t, with_db ? &dDB.t : NULL, &dDY.t, &dX.t);
    char what[160];
    snprintf(what, sizeof what, "linear M=%lld N=%lld K=%lld %s acc=%d strided=%d",
             (long long)M, (long long)N, (long long)K, hd_dtype_name(wdt), accumulate, strided);
    check_close(c, what, &dDX, &rdx, 1e-5);
    check_close(c, what, &dDW, &rdw, 1e-5);
    if (with_db) check_close(c, what, &dDB, &rdb, 1e-5);
    else check_close(c, what, &dDB, &db0, 0);
    if (strided) CHECKF(dev_border_intact(&dDX) && dev_border_intact(&dDW), "%s: border", what);
    dev_free(be, &dX), dev_free(be, &dDY), dev_free(be, &dDX), dev_free(be, &dDW);
    dev_free(be, &dDB);
    free(wh), free(wf);
    mat_free(&x), mat_free(&dy), mat_free(&w), mat_free(&dx0), mat_free(&dw0), mat_free(&db0);
    mat_free(&rdx), mat_free(&rdw), mat_free(&rdb);
}

static void test_linear_dx_dw_match_double_reference(const cfg *c) {
    /* odd sizes; one shape crossing the KC/NC cache blocks of every ISA in each dimension */
    static const struct { int64_t M, N, K; } shapes[] = {
        {1, 1, 1}, {5, 7, 3}, {37, 29, 45}, {15, 33, 257}, {393, 401, 389}, {3, 70, 600},
    };
    hd_dtype dts[] = {HD_F32, HD_BF16, HD_F16};
    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++)
        check_linear_grads(c, shapes[si].M, shapes[si].N, shapes[si].K, dts[si % 3],
                           (int)(si % 2), si != 2, (int)(si % 3 != 1));
    check_linear_grads(c, 37, 29, 45, HD_F32, 1, 1, 1);
}

static void check_rmsnorm_grad(const cfg *c, int64_t rows, int64_t cols, int64_t g, int accumulate,
                               int alias, int strided) {
    hd_backend *be = c->be;
    const double eps = 1e-5;
    mat x = mat_rand(rows, cols, -2, 2), w = mat_rand(1, g, 0.5, 1.5), dy = mat_rand(rows, cols, -1, 1);
    mat dx0 = mat_rand(rows, cols, -1, 1), dw0 = mat_rand(1, g, -1, 1);
    mat rdx = mat_zero(rows, cols), rdw = mat_zero(1, g);
    ref_rmsnorm_grad(&dy, &x, &w, eps, &rdx, &rdw);
    for (int64_t i = 0; i < rows * cols; i++) rdx.v[i] += accumulate ? dx0.v[i] : 0;
    for (int64_t i = 0; i < g; i++) rdw.v[i] += dw0.v[i];
    dev dX = dev_from(be, &x, strided), dW = dev_from(be, &w, 0), dDY = dev_from(be, &dy, strided);
    dev dDX = dev_from(be, &dx0, strided), dDW = dev_from(be, &dw0, 0);
    hd_tensor *out = alias ? &dDY.t : &dDX.t;
    be->ops->rmsnorm_backward(be, out, &dDW.t, &dDY.t, &dX.t, &dW.t, (float)eps, accumulate);
    char what[160];
    snprintf(what, sizeof what, "rmsnorm_backward %lldx%lld g=%lld acc=%d alias=%d strided=%d",
             (long long)rows, (long long)cols, (long long)g, accumulate, alias, strided);
    check_close(c, what, alias ? &dDY : &dDX, &rdx, 2e-5);
    check_close(c, what, &dDW, &rdw, 2e-5);
    dev_free(be, &dX), dev_free(be, &dW), dev_free(be, &dDY), dev_free(be, &dDX), dev_free(be, &dDW);
    mat_free(&x), mat_free(&w), mat_free(&dy), mat_free(&dx0), mat_free(&dw0);
    mat_free(&rdx), mat_free(&rdw);
}

static void test_rmsnorm_backward_matches_double_reference(const cfg *c) {
    check_rmsnorm_grad(c, 7, 48, 48, 0, 0, 1);
    check_rmsnorm_grad(c, 7, 48, 48, 1, 0, 0);
    check_rmsnorm_grad(c, 9, 52, 13, 0, 1, 1);  /* per-head groups, dx aliasing dy */
    check_rmsnorm_grad(c, 301, 256, 256, 1, 0, 1); /* large enough to be threaded */
    check_rmsnorm_grad(c, 130, 512, 64, 0, 1, 0);
}

typedef struct attn_case {
    int64_t Sq, Sk;
    attn_shape a;
} attn_case;

static const attn_case attn_cases[] = {
    {1, 1, {2, 1, 8, 0.5, {0, 1}}},           /* one query, one key */
    {9, 9, {2, 1, 8, 0.35, {0, 0}}},          /* full */
    {70, 70, {4, 2, 16, 0.25, {0, 70}}},      /* causal, GQA 4/2 */
    {150, 150, {2, 1, 24, 0.2, {0, 40}}},     /* hybrid n_causal = A, GQA 2/1 */
    {33, 100, {4, 2, 13, 0.3, {67, 100}}},    /* prefix cache: q_offset > 0, odd head_dim */
    {20, 133, {3, 3, 32, 0.17, {90, 120}}},   /* offset hybrid: rows before and after A */
    {130, 66, {2, 2, 64, 0.125, {0, 0}}},     /* Sq > Sk, full */
    {5, 7, {2, 1, 900, 0.03, {0, 5}}},        /* head_dim beyond the tiles' scratch */
    {3, 4, {70, 1, 4, 0.5, {0, 3}}},          /* more grouped heads than a tile has rows */
};

static void test_attention_lse_matches_double_reference(const cfg *c) {
    hd_backend *be = c->be;
    for (size_t ci = 0; ci < sizeof attn_cases / sizeof attn_cases[0]; ci++) {
        const attn_case *ac = &attn_cases[ci];
        const attn_shape *a = &ac->a;
        mat q = mat_rand(ac->Sq, a->Hq * a->hd, -1, 1), k = mat_rand(ac->Sk, a->Hkv * a->hd, -1, 1);
        mat v = mat_rand(ac->Sk, a->Hkv * a->hd, -1, 1);
        mat out = mat_zero(ac->Sq, a->Hq * a->hd), lse = mat_zero(ac->Sq, a->Hq);
        ref_attention(a, &q, &k, &v, &out, &lse);
        dev dQ = dev_from(be, &q, 1), dK = dev_from(be, &k, 0), dV = dev_from(be, &v, 1);
        dev dO = dev_from(be, &out, 1), dL = dev_from(be, &lse, (int)(ci % 2));
        be->ops->attention_lse(be, &dO.t, &dL.t, &dQ.t, &dK.t, &dV.t, a->Hq, a->Hkv, a->hd,
                               (float)a->scale, a->mask);
        char what[160];
        snprintf(what, sizeof what, "attention_lse case %zu", ci);
        check_close(c, what, &dO, &out, 1e-5);
        check_close(c, what, &dL, &lse, 1e-6);
        dev_free(be, &dQ), dev_free(be, &dK), dev_free(be, &dV), dev_free(be, &dO), dev_free(be, &dL);
        mat_free(&q), mat_free(&k), mat_free(&v), mat_free(&out), mat_free(&lse);
    }
}

static void test_attention_backward_matches_double_reference(const cfg *c) {
    hd_backend *be = c->be;
    for (size_t ci = 0; ci < sizeof attn_cases / sizeof attn_cases[0]; ci++) {
        const attn_case *ac = &attn_cases[ci];
        const attn_shape *a = &ac->a;
        int64_t Dq = a->Hq * a->hd, Dk = a->Hkv * a->hd;
        mat q = mat_rand(ac->Sq, Dq, -2, 2), k = mat_rand(ac->Sk, Dk, -2, 2);
        mat v = mat_rand(ac->Sk, Dk, -1, 1), dout = mat_rand(ac->Sq, Dq, -1, 1);
        mat out = mat_zero(ac->Sq, Dq), lse = mat_zero(ac->Sq, a->Hq);
        mat dq = mat_zero(ac->Sq, Dq), dk = mat_zero(ac->Sk, Dk), dv = mat_zero(ac->Sk, Dk);
        ref_attention(a, &q, &k, &v, &out, &lse);
        ref_attention_grad(a, &dout, &q, &k, &v, &dq, &dk, &dv);
        int st = (int)(ci % 2);
        dev dQ = dev_from(be, &q, st), dK = dev_from(be, &k, !st), dV = dev_from(be, &v, st);
        dev dOut = dev_from(be, &out, st), dL = dev_from(be, &lse, st);
        dev dDO = dev_from(be, &dout, !st);
        /* the backward takes the forward's own out and lse */
        be->ops->attention_lse(be, &dOut.t, &dL.t, &dQ.t, &dK.t, &dV.t, a->Hq, a->Hkv, a->hd,
                               (float)a->scale, a->mask);
        mat junk_q = mat_rand(ac->Sq, Dq, -9, 9), junk_k = mat_rand(ac->Sk, Dk, -9, 9);
        dev dDQ = dev_from(be, &junk_q, st), dDK = dev_from(be, &junk_k, !st);
        dev dDV = dev_from(be, &junk_k, st);
        be->ops->attention_backward(be, &dDQ.t, &dDK.t, &dDV.t, &dDO.t, &dQ.t, &dK.t, &dV.t,
                                    &dOut.t, &dL.t, a->Hq, a->Hkv, a->hd, (float)a->scale,
                                    a->mask);
        char what[160];
        snprintf(what, sizeof what, "attention_backward case %zu (Hq %d, Hkv %d, hd %d)", ci,
                 a->Hq, a->Hkv, a->hd);
        /* with a single visible key dS = P·(dP − D) is 0 by cancellation of O(1) terms */
        check_close_mag(c, what, &dDQ, &dq, 1e-4, 1.0);
        check_close_mag(c, what, &dDK, &dk, 1e-4, 1.0);
        check_close_mag(c, what, &dDV, &dv, 1e-4, 1.0);
        if (st) CHECKF(dev_border_intact(&dDQ) && dev_border_intact(&dDV), "%s: border", what);
        dev_free(be, &dQ), dev_free(be, &dK), dev_free(be, &dV), dev_free(be, &dOut);
        dev_free(be, &dL), dev_free(be, &dDO), dev_free(be, &dDQ), dev_free(be, &dDK);
        dev_free(be, &dDV);
        mat_free(&q), mat_free(&k), mat_free(&v), mat_free(&dout), mat_free(&out);
        mat_free(&lse), mat_free(&dq), mat_free(&dk), mat_free(&dv);
        mat_free(&junk_q), mat_free(&junk_k);
    }
}

static void test_silu_backward_ops_match_reference_with_aliasing(const cfg *c) {
    hd_backend *be = c->be;
    static const int64_t shapes[][2] = {{3, 7}, {65, 700}, {200, 301}};
    for (int si = 0; si < 3; si++) {
        int64_t r = shapes[si][0], n = shapes[si][1];
        mat g = mat_rand(r, n, -12, 12), u = mat_rand(r, n, -2, 2), dy = mat_rand(r, n, -1, 1);
        mat rg = mat_zero(r, n), ru = mat_zero(r, n), rx = mat_zero(r, n);
        for (int64_t i = 0; i < r * n; i++) {
            rg.v[i] = dy.v[i] * u.v[i] * silu_d(g.v[i]);
            ru.v[i] = dy.v[i] * silu(g.v[i]);
            rx.v[i] = dy.v[i] * silu_d(g.v[i]);
        }
        for (int alias = 0; alias < 3; alias++) { /* 0: none, 1: dgate = dy, 2: dup = dy */
            dev G = dev_from(be, &g, 1), U = dev_from(be, &u, 0), DY = dev_from(be, &dy, alias == 1);
            dev DG = dev_from(be, &g, 0), DU = dev_from(be, &u, 1);
            hd_tensor *og = alias == 1 ? &DY.t : &DG.t, *ou = alias == 2 ? &DY.t : &DU.t;
            be->ops->silu_mul_backward(be, og, ou, &DY.t, &G.t, &U.t);
            char what[96];
            snprintf(what, sizeof what, "silu_mul_backward %lldx%lld alias=%d", (long long)r,
                     (long long)n, alias);
            check_close(c, what, alias == 1 ? &DY : &DG, &rg, 1e-5);
            check_close(c, what, alias == 2 ? &DY : &DU, &ru, 1e-5);
            dev_free(be, &G), dev_free(be, &U), dev_free(be, &DY), dev_free(be, &DG), dev_free(be, &DU);
        }
        for (int alias = 0; alias < 2; alias++) {
            dev X = dev_from(be, &g, 1), DY = dev_from(be, &dy, alias), DX = dev_from(be, &u, 0);
            hd_tensor *o = alias ? &DY.t : &DX.t;
            be->ops->silu_backward(be, o, &DY.t, &X.t);
            char what[96];
            snprintf(what, sizeof what, "silu_backward %lldx%lld alias=%d", (long long)r,
                     (long long)n, alias);
            check_close(c, what, alias ? &DY : &DX, &rx, 1e-5);
            dev_free(be, &X), dev_free(be, &DY), dev_free(be, &DX);
        }
        mat_free(&g), mat_free(&u), mat_free(&dy), mat_free(&rg), mat_free(&ru), mat_free(&rx);
    }
}

static void test_axpby_sum_squares_adamw_match_double_reference(const cfg *c) {
    hd_backend *be = c->be;
    static const int64_t shapes[][2] = {{1, 5}, {77, 513}, {400, 300}};
    for (int si = 0; si < 3; si++) {
        int64_t r = shapes[si][0], n = shapes[si][1], N = r * n;
        mat x = mat_rand(r, n, -1, 1), y = mat_rand(r, n, -1, 1);
        /* axpby, y != x and y == x (gradient scaling) */
        mat ref = mat_zero(r, n), ref2 = mat_zero(r, n);
        for (int64_t i = 0; i < N; i++) {
            ref.v[i] = 0.75 * x.v[i] + -1.5 * y.v[i];
            ref2.v[i] = (0.25 + 0.5) * x.v[i];
        }
        dev X = dev_from(be, &x, 1), Y = dev_from(be, &y, 0);
        be->ops->axpby(be, &Y.t, 0.75f, &X.t, -1.5f);
        check_close(c, "axpby", &Y, &ref, 1e-6);
        be->ops->axpby(be, &X.t, 0.25f, &X.t, 0.5f);
        check_close(c, "axpby x == y", &X, &ref2, 1e-6);
        CHECK(dev_border_intact(&X));
        /* sum_squares of a strided view */
        double ss = 0;
        for (int64_t i = 0; i < N; i++) ss += y.v[i] * y.v[i];
        dev Y2 = dev_from(be, &y, 1);
        double got = be->ops->sum_squares(be, &Y2.t);
        CHECKF(fabs(got - ss) <= 1e-12 * ss, "sum_squares [%s, %d threads]: got %.17g want %.17g",
               hd_cpu_isa_name(c->isa), c->threads, got, ss);
        /* three AdamW steps, moments included */
        hd_adamw_step p = {.lr = 1e-2f, .beta1 = 0.9f, .beta2 = 0.95f, .eps = 1e-8f,
                           .weight_decay = 0.1f, .grad_scale = 0.5f};
        mat w = mat_rand(r, n, -1, 1), m = mat_zero(r, n), v = mat_zero(r, n);
        dev W = dev_from(be, &w, 1), M = dev_from(be, &m, 0), V = dev_from(be, &v, 1);
        dev Gd = dev_from(be, &x, 0);
        for (int step = 1; step <= 3; step++) {
            double b1 = p.beta1, b2 = p.beta2;
            p.bc1 = (float)(1 - pow(b1, step));
            p.bc2 = (float)(1 - pow(b2, step));
            for (int64_t i = 0; i < N; i++) {
                double g = x.v[i] * p.grad_scale;
                m.v[i] = b1 * m.v[i] + (1 - b1) * g;
                v.v[i] = b2 * v.v[i] + (1 - b2) * g * g;
                w.v[i] -= p.lr * ((m.v[i] / p.bc1) / (sqrt(v.v[i] / p.bc2) + p.eps) +
                                  p.weight_decay * w.v[i]);
            }
            be->ops->adamw(be, &W.t, &Gd.t, &M.t, &V.t, &p);
        }
        check_close(c, "adamw w", &W, &w, 1e-6);
        check_close(c, "adamw m", &M, &m, 1e-6);
        check_close(c, "adamw v", &V, &v, 1e-6);
        dev_free(be, &X), dev_free(be, &Y), dev_free(be, &Y2), dev_free(be, &W);
        dev_free(be, &M), dev_free(be, &V), dev_free(be, &Gd);
        mat_free(&x), mat_free(&y), mat_free(&ref), mat_free(&ref2), mat_free(&w), mat_free(&m);
        mat_free(&v);
    }
}

int main(void) {
    RUN_TEST(test_reference_gradients_match_finite_differences);
    int threads[] = {1, 2, 3};
    for (int isa = HD_ISA_SCALAR; isa <= HD_ISA_AVX512; isa++) {
        if (!hd_cpu_isa_supported(isa)) {
            printf("skip %s (not supported by this CPU)\n", hd_cpu_isa_name(isa));
            continue;
        }
        for (int ti = 0; ti < 3; ti++) {
            hd_backend_options o = {.n_threads = threads[ti], .isa = isa};
            hd_error e = {0};
            cfg *c = &cfgs[n_cfg];
            c->isa = isa;
            c->threads = threads[ti];
            CHECKF(hd_backend_create(&c->be, "cpu", &o, &e) == 0, "%s", e.msg);
            if (!c->be) continue;
            n_cfg++;
            CHECK(hd_backend_can_train(c->be));
        }
    }
    hd_cpu_features f;
    hd_cpu_features_detect(&f);
    if (hd_cpu_isa_supported(HD_ISA_AVX512) && f.avx512bf16) {
        hd_backend_options o = {.n_threads = 2, .isa = HD_ISA_AVX512, .gemm_bf16 = 1};
        hd_error e = {0};
        cfg *c = &cfgs[n_cfg];
        *c = (cfg){NULL, HD_ISA_AVX512, 2, 1};
        CHECKF(hd_backend_create(&c->be, "cpu", &o, &e) == 0, "%s", e.msg);
        if (c->be) n_cfg++;
    }
#define RUN_ALL(fn)                                                                    \
    do {                                                                               \
        int before_ = hd_test_failures;                                               \
        for (int i = 0; i < n_cfg; i++) fn(&cfgs[i]);                                  \
        printf("%s %s\n", hd_test_failures == before_ ? "ok  " : "FAIL", #fn);         \
    } while (0)
    RUN_ALL(test_linear_dx_dw_match_double_reference);
    RUN_ALL(test_rmsnorm_backward_matches_double_reference);
    RUN_ALL(test_attention_lse_matches_double_reference);
    RUN_ALL(test_attention_backward_matches_double_reference);
    RUN_ALL(test_silu_backward_ops_match_reference_with_aliasing);
    RUN_ALL(test_axpby_sum_squares_adamw_match_double_reference);
    for (int i = 0; i < n_cfg; i++) hd_backend_destroy(cfgs[i].be);
    return hd_test_finish();
}
