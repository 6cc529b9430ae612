/* hidream — command-line front end of libhidream. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/exit_codes.h"
#include "hidream.h"

static const struct {
    const char *name;
    int (*fn)(int, char **);
    const char *help;
} commands[] = {
    {"generate", cmd_generate, "generate an image from a prompt (and reference images)"},
    {"info", cmd_info, "describe a model directory, or say why it is unusable"},
    {"tokenize", cmd_tokenize, "encode text to token ids (or --decode ids)"},
    {"check-tokenizer", cmd_check_tokenizer, "run a tokenizer case file (golden layout)"},
    {"check-golden", cmd_check_golden, "verify a golden directory against this implementation"},
    {"shapes", cmd_shapes, "write the shapes world (spec 09) as captioned images, or its tokenizer"},
    {"eval", cmd_eval, "score a model (or a folder of images) on the shapes world"},
    {"serve", cmd_serve, "serve the model over HTTP: OpenAI Images, A1111, jobs API, web page"},
    {"quantize", cmd_quantize, "write a model directory with GGUF-quantized weights (q8_0 .. q6_k)"},
    {"train", cmd_train, "train a model from a recipe (JSON): loss, checkpoints, samples, export"},
    {"refine", cmd_refine, "rewrite a raw request into a detailed prompt (prompt agent, spec 07)"},
};

static void usage(FILE *f) {
    fprintf(f, "hidream %s — HiDream-O1-Image in C\n\nusage: hidream COMMAND [options]\n\n",
            hd_version());
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
        fprintf(f, "  %-16s %s\n", commands[i].name, commands[i].help);
    fprintf(f, "\n'hidream COMMAND --help' describes a command.\n\nexit status:\n%s",
            HD_EXIT_CODES_TEXT);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "version")) {
        printf("hidream %s\n", hd_version());
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
        if (!strcmp(argv[1], commands[i].name)) return commands[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "hidream: unknown command '%s' (see 'hidream --help')\n", argv[1]);
    return 2;
}
