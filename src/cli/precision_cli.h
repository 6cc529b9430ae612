/* The precision flags of every command that loads a model (generate, serve, eval):
 * --precision auto|exact|bf16|int8 and its shorthands --exact, --bf16-gemm, --int8. Two
 * different precisions on one command line are an error, not "the last one wins". */
#ifndef HD_CLI_PRECISION_CLI_H
#define HD_CLI_PRECISION_CLI_H

#include <stdio.h>

#include "hidream.h"

typedef struct precision_cli {
    hd_precision value; /* HD_PRECISION_AUTO until a flag sets it */
    const char *flag;   /* the flag that set it (NULL: none given) */
} precision_cli;

/* Consumes argv[*i] (and the value of --precision, advancing *i) when it is a precision flag:
 * 1 consumed, 0 not one, -1 bad or conflicting (one line printed, prefixed with cmd). */
int precision_cli_flag(precision_cli *c, const char *cmd, int argc, char **argv, int *i);
/* 1 if s is a precision flag (for parsers that tell a forgotten value from an option). */
int precision_cli_is_flag(const char *s);
/* The --help lines, indented to `col` columns of flag text. */
void precision_cli_usage(FILE *f, int col);

#endif
