/* `hidream check-golden DIR`: verifies a golden directory (layout of shared/golden/model-tiny)
 * against the implementation. Cases are discovered from the files (cases.json, tensor names
 * `forward.<case>.*`, `sched.<case>.*`, `rng.*`, `<case>.z_steps` in pipeline.safetensors);
 * nothing depends on particular case names, sizes or configs.
 *
 * Each kind has its own runner file (golden_forward.c, golden_sampling.c, golden_pipeline.c);
 * they report through golden_result / golden_skip, which print one line per case. */
#ifndef HD_TESTS_GOLDEN_H
#define HD_TESTS_GOLDEN_H

#include <jansson.h>

#include "io/safetensors.h"

typedef struct golden_ctx {
    const char *dir;          /* the golden directory (also the model directory) */
    hd_safetensors golden;    /* golden.safetensors (empty if absent) */
    hd_safetensors pipeline;  /* pipeline.safetensors (empty if absent) */
    json_t *cases;            /* cases.json (NULL if absent) */
    const char *backend;      /* "cpu" (default) or "cuda" */
    const char *weights_dir;  /* forward cases: weights from this model directory (a quantized
                                 copy) instead of dir; NULL = dir */
    double fwd_tol;           /* forward cases: relative error bound (default 1e-4) */
    int int8;                 /* forward cases: the CPU backend's int8 products (gemm_int8) */
    int bf16;                 /* forward cases: bf16 activations in products (gemm_bf16) */
    int n_threads;
    int verbose;
    int passed, failed, skipped;
} golden_ctx;

/* Prints "PASS|FAIL <kind>.<name> <details>" and counts it. */
void golden_result(golden_ctx *g, int pass, const char *kind, const char *name,
                   const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* Prints "SKIP <kind>.<name> (<why>)" and counts it (neither passed nor failed). */
void golden_skip(golden_ctx *g, const char *kind, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Relative L2 error ‖a−b‖/‖b‖ in double (‖a‖ if b is all zero). */
double golden_rel_err(const float *a, const double *b, size_t n);

/* Collects the distinct <case> names of tensors named "<prefix><case>.<anything>" in st, in
 * sorted order. Returns the count; names (malloc'd) go to out[0..max). */
int golden_case_names(const hd_safetensors *st, const char *prefix, char **out, int max);

/* Runners: each iterates over the cases of its kind present in the directory. */
void golden_run_forward(golden_ctx *g);
void golden_run_rng(golden_ctx *g);
void golden_run_sched(golden_ctx *g);
void golden_run_pipeline(golden_ctx *g);

#endif
