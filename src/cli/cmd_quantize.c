/* `hidream quantize IN OUT --type T`: a model directory with its matrices quantized to a GGUF
 * block format (library: hd_quantize). OUT becomes a model directory (model.gguf, config.json,
 * tokenizer) that every other command loads like the original. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/exit_codes.h"
#include "hidream.h"

static void usage(FILE *f) {
    fprintf(f, "usage: hidream quantize IN_DIR OUT_DIR --type q8_0|q4_0|q4_k|q5_k|q6_k\n"
               "  Writes OUT_DIR/model.gguf with the model's matrices quantized (GGML block\n"
               "  formats: readable by other GGUF tools) and copies config.json and the\n"
               "  tokenizer beside it. Norm weights and biases keep their dtype; a matrix whose\n"
               "  rows are not whole blocks of a K format is stored as Q8_0.\n");
}

int cmd_quantize(int argc, char **argv) {
    const char *in = NULL, *out = NULL, *type = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return HD_EXIT_OK;
        } else if (!strcmp(a, "--type") && i + 1 < argc) {
            type = argv[++i];
        } else if (a[0] != '-' && !in) {
            in = a;
        } else if (a[0] != '-' && !out) {
            out = a;
        } else {
            fprintf(stderr, "hidream quantize: unknown option or missing value '%s' (see --help)\n",
                    a);
            return HD_EXIT_USAGE;
        }
    }
    if (!in || !out || !type) {
        fprintf(stderr, "hidream quantize: IN_DIR, OUT_DIR and --type are required (see --help)\n");
        return HD_EXIT_USAGE;
    }
    hd_quantize_report rep;
    hd_error e = {0};
    int rc = hd_quantize(in, out, type, &rep, &e);
    if (rc < 0) {
        fprintf(stderr, "hidream quantize: %s\n", e.msg);
        return rc == HD_EIO && strstr(e.msg, out) ? HD_EXIT_OUTPUT : hd_exit_code(rc);
    }
    printf("%s/model.gguf: %d matrices %s, %d as Q8_0 (rows not whole blocks), %d tensors kept; "
           "%.1f MB -> %.1f MB\n", out, rep.quantized, type, rep.fallback, rep.kept,
           rep.bytes_in / 1e6, rep.bytes_out / 1e6);
    return HD_EXIT_OK;
}
