/* Precision flags (precision_cli.h). */
#include "cli/precision_cli.h"

#include <string.h>

static const struct {
    const char *flag;
    hd_precision value;
} shorthands[] = {
    {"--exact", HD_PRECISION_EXACT},
    {"--bf16-gemm", HD_PRECISION_BF16},
    {"--int8", HD_PRECISION_INT8},
};

int precision_cli_is_flag(const char *s) {
    if (!strcmp(s, "--precision")) return 1;
    for (size_t k = 0; k < sizeof shorthands / sizeof *shorthands; k++)
        if (!strcmp(s, shorthands[k].flag)) return 1;
    return 0;
}

static int set(precision_cli *c, const char *cmd, const char *flag, hd_precision v) {
    if (c->flag && c->value != v) {
        fprintf(stderr, "%s: %s conflicts with %s (one precision per run)\n", cmd, flag, c->flag);
        return -1;
    }
    c->value = v;
    c->flag = flag;
    return 1;
}

int precision_cli_flag(precision_cli *c, const char *cmd, int argc, char **argv, int *i) {
    const char *a = argv[*i];
    for (size_t k = 0; k < sizeof shorthands / sizeof *shorthands; k++)
        if (!strcmp(a, shorthands[k].flag)) return set(c, cmd, a, shorthands[k].value);
    if (strcmp(a, "--precision")) return 0;
    if (*i + 1 >= argc) {
        fprintf(stderr, "%s: --precision needs a value (auto, exact, bf16 or int8)\n", cmd);
        return -1;
    }
    const char *v = argv[++*i];
    hd_precision p;
    if (hd_precision_parse(v, &p) < 0) {
        fprintf(stderr, "%s: --precision: '%s' is not auto, exact, bf16 or int8\n", cmd, v);
        return -1;
    }
    return set(c, cmd, "--precision", p);
}

void precision_cli_usage(FILE *f, int col) {
    fprintf(f,
            "  %-*s matrix products (default auto: bf16 where the backend multiplies bf16\n"
            "  %-*s natively, as the official code runs: cuda, or a CPU with AVX512-BF16 (on\n"
            "  %-*s AMX tiles where present); exact float32 elsewhere, where bf16 is no faster)\n"
            "  %-*s float32 products, exact against the official code (= --precision exact)\n"
            "  %-*s bf16 activations in products, ~5e-3 relative error per step (= bf16)\n"
            "  %-*s int8 products in the decoder (CPU): half the weight memory of bf16,\n"
            "  %-*s ~2e-2 relative error per step (= --precision int8)\n",
            col, "--precision MODE", col, "", col, "", col, "--exact", col, "--bf16-gemm", col,
            "--int8", col, "");
}
