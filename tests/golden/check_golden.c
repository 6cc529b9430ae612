#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cli.h"
#include "golden/golden.h"

void golden_result(golden_ctx *g, int pass, const char *kind, const char *name,
                   const char *fmt, ...) {
    printf("%s %s.%s", pass ? "PASS" : "FAIL", kind, name);
    if (fmt && *fmt) {
        va_list ap;
        va_start(ap, fmt);
        putchar(' ');
        vprintf(fmt, ap);
        va_end(ap);
    }
    putchar('\n');
    fflush(stdout);
    if (pass) g->passed++;
    else g->failed++;
}

void golden_skip(golden_ctx *g, const char *kind, const char *name, const char *fmt, ...) {
    printf("SKIP %s.%s (", kind, name);
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf(")\n");
    fflush(stdout);
    g->skipped++;
}

double golden_rel_err(const float *a, const double *b, size_t n) {
    double num = 0, den = 0, na = 0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)a[i] - b[i];
        num += d * d;
        den += b[i] * b[i];
        na += (double)a[i] * a[i];
    }
    if (den == 0) return sqrt(na);
    return sqrt(num / den);
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int golden_case_names(const hd_safetensors *st, const char *prefix, char **out, int max) {
    int n = 0;
    size_t pl = strlen(prefix);
    for (int i = 0; i < st->n_tensors; i++) {
        const char *nm = st->tensors[i].name;
        if (strncmp(nm, prefix, pl) != 0) continue;
        const char *rest = nm + pl;
        const char *dot = strchr(rest, '.');
        if (!dot) continue;
        size_t len = (size_t)(dot - rest);
        int dup = 0;
        for (int j = 0; j < n; j++)
            if (strlen(out[j]) == len && strncmp(out[j], rest, len) == 0) dup = 1;
        if (dup || n >= max) continue;
        out[n] = strndup(rest, len);
        if (out[n]) n++;
    }
    qsort(out, (size_t)n, sizeof *out, cmp_str);
    return n;
}

static int file_exists(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0;
}

static void usage(FILE *f) {
    fprintf(f,
            "usage: hidream check-golden DIR [--only forward|rng|sched|pipeline] [--threads N] "
            "[--backend cpu|cuda] [-v]\n"
            "       hidream check-golden DIR --only forward [--weights QDIR] [--bf16-gemm|--int8] [--tol X]\n"
            "Verifies a golden directory (model + golden.safetensors, pipeline.safetensors, "
            "cases.json) against this implementation.\n"
            "Prints PASS|FAIL|SKIP <kind>.<case> per case and a final 'N passed, M failed, K "
            "skipped'; exit 0 iff nothing failed and something passed.\n"
            "--weights runs the forward cases with the weights of another model directory (a\n"
            "quantized copy from `hidream quantize`) and --tol sets their relative-error bound\n"
            "(default 1e-4), so the error each format adds per forward is measured; --bf16-gemm and\n"
            "--int8 run them in that precision (as `generate --precision bf16|int8`). Everything\n"
            "else runs in the exact precision (float32 products), whatever the machine's default.\n");
}

int cmd_check_golden(int argc, char **argv) {
    const char *dir = NULL, *only = NULL;
    golden_ctx g = {0};
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--only") && i + 1 < argc) only = argv[++i];
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc) g.n_threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--backend") && i + 1 < argc) g.backend = argv[++i];
        else if (!strcmp(argv[i], "--weights") && i + 1 < argc) g.weights_dir = argv[++i];
        else if (!strcmp(argv[i], "--int8")) g.int8 = 1;
        else if (!strcmp(argv[i], "--bf16-gemm")) g.bf16 = 1;
        else if (!strcmp(argv[i], "--tol") && i + 1 < argc) {
            char *end;
            g.fwd_tol = strtod(argv[++i], &end);
            if (*end || !(g.fwd_tol > 0)) {
                fprintf(stderr, "hidream check-golden: --tol: '%s' is not a positive number\n", argv[i]);
                return 2;
            }
        }
        else if (!strcmp(argv[i], "-v") || !strcmp(argv[i], "--verbose")) g.verbose = 1;
        else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            usage(stdout);
            return 0;
        } else if (argv[i][0] == '-') {
            fprintf(stderr, "hidream check-golden: unknown option '%s'\n", argv[i]);
            return 2;
        } else if (!dir) dir = argv[i];
        else {
            fprintf(stderr, "hidream check-golden: unexpected argument '%s'\n", argv[i]);
            return 2;
        }
    }
    if (!dir) {
        usage(stderr);
        return 2;
    }
    static const char *kinds[] = {"forward", "rng", "sched", "pipeline"};
    if (only) {
        int ok = 0;
        for (size_t k = 0; k < sizeof kinds / sizeof *kinds; k++) ok |= !strcmp(only, kinds[k]);
        if (!ok) {
            fprintf(stderr, "hidream check-golden: --only: unknown kind '%s' (forward, rng, sched, pipeline)\n", only);
            return 2;
        }
    }
    if (g.int8 && g.bf16) {
        fprintf(stderr, "hidream check-golden: --bf16-gemm and --int8 exclude each other\n");
        return 2;
    }
    if ((g.weights_dir || g.fwd_tol > 0 || g.int8 || g.bf16) && (!only || strcmp(only, "forward"))) {
        fprintf(stderr, "hidream check-golden: --weights, --bf16-gemm, --int8 and --tol apply to "
                        "--only forward\n");
        return 2;
    }
    g.dir = dir;
    if (!g.backend) g.backend = "cpu";
    char path[4096];
    hd_error e = {0};
    snprintf(path, sizeof path, "%s/golden.safetensors", dir);
    if (file_exists(path) && hd_st_open(&g.golden, path, &e) < 0) {
        fprintf(stderr, "hidream check-golden: %s\n", e.msg);
        return 2;
    }
    snprintf(path, sizeof path, "%s/pipeline.safetensors", dir);
    if (file_exists(path) && hd_st_open(&g.pipeline, path, &e) < 0) {
        fprintf(stderr, "hidream check-golden: %s\n", e.msg);
        hd_st_close(&g.golden);
        return 2;
    }
    snprintf(path, sizeof path, "%s/cases.json", dir);
    if (file_exists(path)) {
        json_error_t je;
        g.cases = json_load_file(path, JSON_DECODE_ANY, &je);
        if (!g.cases) {
            fprintf(stderr, "hidream check-golden: %s:%d:%d: %s\n", path, je.line, je.column,
                    je.text);
            hd_st_close(&g.golden);
            hd_st_close(&g.pipeline);
            return 2;
        }
    }
    if (!g.golden.n_tensors && !g.pipeline.n_tensors) {
        fprintf(stderr, "hidream check-golden: %s: no golden.safetensors or pipeline.safetensors\n",
                dir);
        json_decref(g.cases);
        return 2;
    }
    if (!only || !strcmp(only, "forward")) golden_run_forward(&g);
    if (!only || !strcmp(only, "rng")) golden_run_rng(&g);
    if (!only || !strcmp(only, "sched")) golden_run_sched(&g);
    if (!only || !strcmp(only, "pipeline")) golden_run_pipeline(&g);

    printf("%d passed, %d failed, %d skipped\n", g.passed, g.failed, g.skipped);
    json_decref(g.cases);
    hd_st_close(&g.golden);
    hd_st_close(&g.pipeline);
    return (g.failed == 0 && g.passed > 0) ? 0 : 1;
}
