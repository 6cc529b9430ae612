/* bench_train_ops: GFLOP/s of the CPU backend's training ops at small-model shapes (float32
 * trainable weights), next to the forward linear/attention they differentiate. Median of
 * --reps runs; the machine may be shared, so treat the numbers as indicative.
 *
 *   bench_train_ops [--threads 1,2] [--reps 7] [--isa 0..3] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backend/backend.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void fill(hd_backend *be, hd_tensor *t, int64_t r, int64_t c) {
    hd_error e = {0};
    if (be->ops->alloc(be, t, HD_F32, r, c, &e) != 0) {
        fprintf(stderr, "%s\n", e.msg);
        exit(1);
    }
    float *p = t->data;
    for (int64_t i = 0; i < r * c; i++) p[i] = (float)((i * 2654435761u) % 1000) / 1000.0f - 0.5f;
}

typedef enum { L_FWD, L_DX, L_DW, A_FWD, A_BWD, N_FWD, N_BWD, S_BWD, ADAMW } op_kind;

typedef struct bcase {
    hd_backend *be;
    hd_tensor x, w, y, dx, dw, q, k, v, o, lse, dq, dk, dv, nw, m2, v2;
    int H, Hkv, hd;
    hd_attn_mask mask;
} bcase;

static void run_op(bcase *b, op_kind op) {
    hd_backend *be = b->be;
    switch (op) {
    case L_FWD: be->ops->linear(be, &b->y, &b->x, &b->w, NULL); break;
    case L_DX: be->ops->linear_dx(be, &b->dx, &b->y, &b->w, 0); break;
    case L_DW: be->ops->linear_dw(be, &b->dw, NULL, &b->y, &b->x); break;
    case A_FWD:
        be->ops->attention_lse(be, &b->o, &b->lse, &b->q, &b->k, &b->v, b->H, b->Hkv, b->hd,
                               0.125f, b->mask);
        break;
    case A_BWD:
        be->ops->attention_backward(be, &b->dq, &b->dk, &b->dv, &b->o, &b->q, &b->k, &b->v, &b->o,
                                    &b->lse, b->H, b->Hkv, b->hd, 0.125f, b->mask);
        break;
    case N_FWD: be->ops->rmsnorm(be, &b->y, &b->x, &b->nw, 1e-6f); break;
    case N_BWD: be->ops->rmsnorm_backward(be, &b->dx, &b->dw, &b->y, &b->x, &b->nw, 1e-6f, 1); break;
    case S_BWD: be->ops->silu_mul_backward(be, &b->dx, &b->dw, &b->y, &b->x, &b->v2); break;
    case ADAMW: {
        hd_adamw_step p = {1e-3f, 0.9f, 0.999f, 1e-8f, 0.01f, 0.5f, 0.5f, 1.0f};
        be->ops->adamw(be, &b->x, &b->y, &b->m2, &b->v2, &p);
        break;
    }
    }
}

static double time_op(bcase *b, op_kind op, int reps) {
    double t[64];
    if (reps > 64) reps = 64;
    run_op(b, op);
    for (int r = 0; r < reps; r++) {
        double t0 = now_s();
        run_op(b, op);
        t[r] = now_s() - t0;
    }
    qsort(t, (size_t)reps, sizeof t[0], cmp_d);
    return t[reps / 2];
}

int main(int argc, char **argv) {
    const char *threads = "1,2";
    int reps = 7, isa = 0;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--threads")) threads = argv[i + 1];
        else if (!strcmp(argv[i], "--reps")) reps = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--isa")) isa = atoi(argv[i + 1]);
    }
    static const struct { int64_t M, N, K; } lin[] = {
        {256, 512, 512}, {256, 1536, 512}, {256, 512, 1536}, {300, 256, 256}, {1024, 512, 512},
        {100, 512, 512}, {64, 256, 256}, {128, 1024, 256},
    };
    for (const char *p = threads; *p;) {
        int nt = atoi(p);
        hd_backend_options o = {.n_threads = nt, .isa = isa};
        hd_error e = {0};
        hd_backend *be = NULL;
        if (hd_backend_create(&be, "cpu", &o, &e) != 0) {
            fprintf(stderr, "%s\n", e.msg);
            return 1;
        }
        printf("-- %d thread(s)\n", nt);
        for (size_t s = 0; s < sizeof lin / sizeof lin[0]; s++) {
            bcase b = {.be = be};
            int64_t M = lin[s].M, N = lin[s].N, K = lin[s].K;
            fill(be, &b.x, M, K), fill(be, &b.w, N, K), fill(be, &b.y, M, N);
            fill(be, &b.dx, M, K), fill(be, &b.dw, N, K);
            double fl = 2.0 * (double)(M * N * K) * 1e-9;
            double tf = time_op(&b, L_FWD, reps), tx = time_op(&b, L_DX, reps),
                   tw = time_op(&b, L_DW, reps);
            printf("linear M=%-5lld N=%-5lld K=%-5lld fwd %6.1f  dx %6.1f  dw %6.1f GFLOP/s\n",
                   (long long)M, (long long)N, (long long)K, fl / tf, fl / tx, fl / tw);
            hd_tensor *ts[] = {&b.x, &b.w, &b.y, &b.dx, &b.dw};
            for (int i = 0; i < 5; i++) hd_tensor_free(be, ts[i]);
        }
        static const struct { int64_t S; int H, Hkv, hd; int causal; } att[] = {
            {256, 8, 8, 64, 0}, {256, 8, 4, 64, 1}, {300, 4, 2, 64, 0}, {128, 8, 8, 32, 0},
        };
        for (size_t s = 0; s < sizeof att / sizeof att[0]; s++) {
            bcase b = {.be = be, .H = att[s].H, .Hkv = att[s].Hkv, .hd = att[s].hd};
            int64_t S = att[s].S;
            b.mask = (hd_attn_mask){0, att[s].causal ? S : 0};
            fill(be, &b.q, S, b.H * b.hd), fill(be, &b.k, S, b.Hkv * b.hd);
            fill(be, &b.v, S, b.Hkv * b.hd), fill(be, &b.o, S, b.H * b.hd);
            fill(be, &b.lse, S, b.H), fill(be, &b.dq, S, b.H * b.hd);
            fill(be, &b.dk, S, b.Hkv * b.hd), fill(be, &b.dv, S, b.Hkv * b.hd);
            /* useful FLOPs, full mask: fwd QKᵀ + PV; bwd QKᵀ, dO·Vᵀ, dV, dQ, dK */
            double fl = 2.0 * (double)(S * S) * b.H * b.hd * 1e-9 * (att[s].causal ? 0.5 : 1.0);
            double tf = time_op(&b, A_FWD, reps), tb = time_op(&b, A_BWD, reps);
            printf("attention S=%-4lld H=%d/%d hd=%d %s fwd %6.1f  bwd %6.1f GFLOP/s "
                   "(%.2f / %.2f ms)\n",
                   (long long)S, b.H, b.Hkv, b.hd, att[s].causal ? "causal" : "full  ",
                   2 * fl / tf, 5 * fl / tb, tf * 1e3, tb * 1e3);
            hd_tensor *ts[] = {&b.q, &b.k, &b.v, &b.o, &b.lse, &b.dq, &b.dk, &b.dv};
            for (int i = 0; i < 8; i++) hd_tensor_free(be, ts[i]);
        }
        {
            /* element-wise training ops on a 256×512 activation (or 512×512 weight) */
            bcase b = {.be = be};
            fill(be, &b.x, 256, 512), fill(be, &b.y, 256, 512), fill(be, &b.dx, 256, 512);
            fill(be, &b.dw, 256, 512), fill(be, &b.nw, 1, 512), fill(be, &b.m2, 256, 512);
            fill(be, &b.v2, 256, 512);
            double tn = time_op(&b, N_FWD, reps), tb = time_op(&b, N_BWD, reps);
            hd_tensor_free(be, &b.dw);
            fill(be, &b.dw, 1, 512);
            tb = time_op(&b, N_BWD, reps);
            hd_tensor_free(be, &b.dw);
            fill(be, &b.dw, 256, 512);
            double ts = time_op(&b, S_BWD, reps);
            float *v2 = b.v2.data;
            for (int64_t i = 0; i < 256 * 512; i++) v2[i] = v2[i] * v2[i];
            double ta = time_op(&b, ADAMW, reps);
            printf("256x512: rmsnorm fwd %.3f ms  bwd %.3f ms  silu_mul_backward %.3f ms  "
                   "adamw %.3f ms\n", tn * 1e3, tb * 1e3, ts * 1e3, ta * 1e3);
            hd_tensor *ts_[] = {&b.x, &b.y, &b.dx, &b.dw, &b.nw, &b.m2, &b.v2};
            for (int i = 0; i < 7; i++) hd_tensor_free(be, ts_[i]);
        }
        hd_backend_destroy(be);
        while (*p && *p != ',') p++;
        if (*p == ',') p++;
    }
    return 0;
}
