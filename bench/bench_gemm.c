/* bench_gemm: GFLOP/s of the CPU backend's linear at the decoder's real shapes (bf16 weights),
 * per ISA level and thread count, as the median (min, max) of several repetitions, and as a
 * share of this machine's fp32 FMA peak measured with a register-only FMA loop.
 *
 * The last column, cpu%, is the CPU time the process got divided by wall time × threads: below
 * ~95% the machine was busy with other work and the wall-clock numbers understate the code.
 *
 * "bf16" is the AVX-512 backend with the gemm_bf16 option (its %peak is still relative to the
 * fp32 FMA peak, so it can exceed 100%).
 *
 *   bench_gemm [--reps N] [--isa scalar,avx2,avx512,bf16] [--threads 1,2] [--m 384,1280,4096]
 *              [--nk 4096x4096,1024x4096,...] [--scalar-m 384]
 * The scalar kernels are slow, so by default they only run at M = --scalar-m. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "backend/backend.h"
#include "core/cpu_features.h"
#include "core/threadpool.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* CPU time used by the whole process (all threads), seconds. */
static double cpu_s(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + 1e-6 * (double)ru.ru_utime.tv_usec +
           (double)ru.ru_stime.tv_sec + 1e-6 * (double)ru.ru_stime.tv_usec;
}

/* ---- FMA peak: 12 independent accumulator chains per thread, no memory traffic ---- */
#define PEAK_ITERS 20000000L

#if defined(__x86_64__) || defined(__i386__)
/* Explicit variables (not an array) so the accumulators live in registers at -O2. */
#define PEAK_DECL(T, set1, i) T a##i = set1((float)i);
#define PEAK_LIST(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11)

__attribute__((target("avx512f,fma"))) static float peak_avx512(long iters) {
    __m512 m = _mm512_set1_ps(0.999999f), c = _mm512_set1_ps(1e-7f);
#define D(i) PEAK_DECL(__m512, _mm512_set1_ps, i)
    PEAK_LIST(D)
#undef D
    for (long it = 0; it < iters; it++) {
#define F(i) a##i = _mm512_fmadd_ps(a##i, m, c);
        PEAK_LIST(F)
#undef F
        __asm__ volatile("" ::: "memory"); /* keep the loop */
    }
#define S(i) +_mm512_reduce_add_ps(a##i)
    return 0.0f PEAK_LIST(S);
#undef S
}
__attribute__((target("avx2,fma"))) static float peak_avx2(long iters) {
    __m256 m = _mm256_set1_ps(0.999999f), c = _mm256_set1_ps(1e-7f);
#define D(i) PEAK_DECL(__m256, _mm256_set1_ps, i)
    PEAK_LIST(D)
#undef D
    for (long it = 0; it < iters; it++) {
#define F(i) a##i = _mm256_fmadd_ps(a##i, m, c);
        PEAK_LIST(F)
#undef F
        __asm__ volatile("" ::: "memory");
    }
    float out[8], sum = 0;
#define S(i) _mm256_storeu_ps(out, a##i); sum += out[0];
    PEAK_LIST(S)
#undef S
    return sum;
}
#endif

static double thread_cpu_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static volatile float peak_sink; /* keeps the FMA loops from being optimised away */

/* fp32 FMA GFLOP/s of one core: the FMA loop timed with thread CPU time (so other processes
 * sharing the machine do not lower it), best of 3. The machine peak is this × threads. */
static double measure_core_peak(int isa) {
    int lanes = isa == HD_ISA_AVX512 ? 16 : 8, chains = 12;
    long iters = PEAK_ITERS / (isa == HD_ISA_AVX512 ? 2 : 1);
    double best = 0;
    for (int rep = 0; rep < 3; rep++) {
        double c0 = thread_cpu_s();
#if defined(__x86_64__) || defined(__i386__)
        peak_sink = isa == HD_ISA_AVX512 ? peak_avx512(iters) : peak_avx2(iters);
#endif
        double gf = 2.0 * lanes * chains * (double)iters / (thread_cpu_s() - c0) * 1e-9;
        if (gf > best) best = gf;
    }
    return best;
}

/* ---- argument lists ---- */
static int parse_list(const char *s, long *out, int max) {
    int n = 0;
    while (*s && n < max) {
        char *end;
        long v = strtol(s, &end, 10);
        if (end == s) return -1;
        out[n++] = v;
        s = *end ? end + 1 : end;
    }
    return n;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    long reps = 5, scalar_m = 384;
    enum { ISA_BF16 = 4 }; /* pseudo level: AVX-512 + gemm_bf16 */
    long isas[4] = {ISA_BF16, HD_ISA_AVX512, HD_ISA_AVX2, HD_ISA_SCALAR};
    int n_isa = 4;
    long threads[8] = {1, hd_cpu_count()};
    int n_threads = threads[1] > 1 ? 2 : 1;
    long ms[8] = {384, 1280, 4096};
    int n_m = 3;
    long nks[16] = {4096, 4096, 1024, 4096, 12288, 4096, 4096, 12288};
    int n_nk = 4;
    for (int i = 1; i < argc; i += 2) { /* every option takes one value */
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) {
            fprintf(stderr, "bench_gemm: option %s needs a value\n", a);
            return 2;
        }
        int bad = 0;
        if (!strcmp(a, "--reps")) reps = atol(v);
        else if (!strcmp(a, "--scalar-m")) scalar_m = atol(v);
        else if (!strcmp(a, "--threads")) bad = (n_threads = parse_list(v, threads, 8)) <= 0;
        else if (!strcmp(a, "--m")) bad = (n_m = parse_list(v, ms, 8)) <= 0;
        else if (!strcmp(a, "--nk")) {
            long tmp[16];
            int n = parse_list(v, tmp, 16);
            bad = n <= 0 || n % 2;
            for (int j = 0; j < n; j++) nks[j] = tmp[j];
            n_nk = n / 2;
        } else if (!strcmp(a, "--isa")) {
            n_isa = 0;
            char buf[256];
            snprintf(buf, sizeof buf, "%s", v);
            for (char *tok = strtok(buf, ","); tok && n_isa < 4; tok = strtok(NULL, ","))
                isas[n_isa++] = !strcmp(tok, "scalar") ? HD_ISA_SCALAR
                                : !strcmp(tok, "avx2") ? HD_ISA_AVX2
                                : !strcmp(tok, "avx512") ? HD_ISA_AVX512
                                : !strcmp(tok, "bf16") ? ISA_BF16
                                                       : -1;
            for (int j = 0; j < n_isa; j++) bad |= isas[j] < 0;
        } else bad = 1;
        if (bad || reps < 1) {
            fprintf(stderr, "bench_gemm: bad option %s %s\n", a, v);
            return 2;
        }
    }

    /* fp32 FMA peak of the widest unit */
    int best_isa = hd_cpu_best_isa();
    double core_peak = best_isa >= HD_ISA_AVX2 ? measure_core_peak(best_isa) : 0;
    printf("# fp32 FMA peak (register-only FMA loop, %s, timed in thread CPU time): %.1f GFLOP/s "
           "per core\n", hd_cpu_isa_name(best_isa), core_peak);
    printf("# linear y[M,N] = x[M,K]·W[N,K]^T, bf16 W, f32 x/y; median of %ld reps (min..max)\n",
           reps);
    printf("# %%peak = median / (core peak × threads); cpu%% = CPU time the process got / (wall ×"
           " threads);\n# GF/cpu-s = flops per CPU-second used, %%core = that / core peak "
           "(insensitive to other load)\n");
    printf("%-7s %3s %5s %6s %6s %9s %9s %9s %7s %6s %9s %6s\n", "isa", "thr", "M", "N", "K",
           "GFLOP/s", "min", "max", "%peak", "cpu%", "GF/cpu-s", "%core");

    for (int ii = 0; ii < n_isa; ii++) {
        int bf16 = isas[ii] == ISA_BF16, isa = bf16 ? HD_ISA_AVX512 : (int)isas[ii];
        const char *name = bf16 ? "bf16" : hd_cpu_isa_name(isa);
        hd_cpu_features f;
        hd_cpu_features_detect(&f);
        if (!hd_cpu_isa_supported(isa) || (bf16 && !f.avx512bf16)) {
            printf("# %s: not supported by this CPU\n", name);
            continue;
        }
        for (int ti = 0; ti < n_threads; ti++) {
            hd_backend *be = NULL;
            hd_error e = {0};
            hd_backend_options o = {.n_threads = (int)threads[ti], .isa = isa, .gemm_bf16 = bf16};
            if (hd_backend_create(&be, "cpu", &o, &e) != 0) {
                fprintf(stderr, "bench_gemm: %s\n", e.msg);
                return 1;
            }
            for (int mi = 0; mi < n_m; mi++) {
                long M = ms[mi];
                if (isa == HD_ISA_SCALAR && M != scalar_m) continue;
                for (int ni = 0; ni < n_nk; ni++) {
                    long N = nks[2 * ni], K = nks[2 * ni + 1];
                    uint16_t *wd = malloc((size_t)N * (size_t)K * 2);
                    hd_tensor x, y, w;
                    if (!wd || be->ops->alloc(be, &x, HD_F32, M, K, &e) ||
                        be->ops->alloc(be, &y, HD_F32, M, N, &e) ||
                        be->ops->weight(be, &w, HD_BF16, N, K, wd, &e)) {
                        fprintf(stderr, "bench_gemm: out of memory at M=%ld N=%ld K=%ld\n", M, N, K);
                        return 1;
                    }
                    uint32_t s = 1;
                    for (long i = 0; i < N * K; i++) {
                        s = s * 1664525u + 1013904223u;
                        wd[i] = hd_f32_to_bf16(((float)(s >> 8) / 16777216.0f - 0.5f) * 0.1f);
                    }
                    be->ops->fill(be, &x, 0.25f);
                    be->ops->linear(be, &y, &x, &w, NULL); /* warm-up */
                    double t[64];
                    int nr = reps > 64 ? 64 : (int)reps;
                    double c0 = cpu_s(), w0 = now_s();
                    for (int r = 0; r < nr; r++) {
                        double t0 = now_s();
                        be->ops->linear(be, &y, &x, &w, NULL);
                        t[r] = now_s() - t0;
                    }
                    double cpu_used = cpu_s() - c0;
                    double cpu_share = cpu_used / ((now_s() - w0) * (double)threads[ti]);
                    double per_cpu = 2.0 * (double)M * (double)N * (double)K * 1e-9 * nr / cpu_used;
                    qsort(t, (size_t)nr, sizeof t[0], cmp_double);
                    double flop = 2.0 * (double)M * (double)N * (double)K * 1e-9;
                    double med = nr % 2 ? t[nr / 2] : 0.5 * (t[nr / 2 - 1] + t[nr / 2]);
                    double peak = core_peak * (double)threads[ti];
                    printf("%-7s %3ld %5ld %6ld %6ld %9.1f %9.1f %9.1f %6.1f%% %5.0f%% %9.1f %5.1f%%\n",
                           name, threads[ti], M, N, K, flop / med, flop / t[nr - 1], flop / t[0],
                           peak > 0 ? 100.0 * flop / med / peak : 0.0, 100.0 * cpu_share, per_cpu,
                           core_peak > 0 ? 100.0 * per_cpu / core_peak : 0.0);
                    fflush(stdout);
                    hd_tensor_free(be, &x);
                    hd_tensor_free(be, &y);
                    free(wd);
                }
            }
            hd_backend_destroy(be);
        }
    }
    return 0;
}
