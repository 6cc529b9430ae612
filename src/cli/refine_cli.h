/* The prompt agent's command-line options, shared by `hidream refine` (--api-base, ...) and
 * `hidream generate --refine` (the same flags with a "refine-" prefix: --refine-api-base, ...). */
#ifndef HD_CLI_REFINE_CLI_H
#define HD_CLI_REFINE_CLI_H

#include <stdio.h>

#include "agent/local.h"
#include "agent/refine.h"

typedef struct refine_cli {
    hd_refine_opts o;        /* hd_refine_defaults, then the flags */
    hd_local_opts lo;        /* --local DIR: the local agent instead (hd_local_defaults, flags) */
    int set_max_tokens;      /* --max-tokens given (the two agents' defaults differ) */
    const char *cmd;         /* "hidream refine", for messages */
    const char *prefix;      /* "" or "refine-" */
    const char *system_file; /* --system-prompt FILE */
    char *system_text;       /* its contents (refine_cli_finish) */
    int verbose;             /* every failed request is a warning, not only the final one */
    int stream;              /* local agent: echo the generated text to stderr */
} refine_cli;

void refine_cli_init(refine_cli *c, const char *cmd, const char *prefix);
/* Consumes argv[*i] (and its value, advancing *i) when it is an agent flag: 1 consumed, 0 not
 * an agent flag, -1 bad value (one line printed). */
int refine_cli_flag(refine_cli *c, int argc, char **argv, int *i);
/* Loads --system-prompt; 0 or -1 (one line printed). */
int refine_cli_finish(refine_cli *c);
void refine_cli_free(refine_cli *c);
/* Runs the chosen agent (local when --local was given, else remote). 0, or a negative HD_E*
 * with its line in e (bad arguments, an unusable local model directory). */
int refine_cli_run(refine_cli *c, const char *raw, hd_refine_result *r, hd_error *e);
/* Prints the agent flags' help, each with the prefix. */
void refine_cli_usage(FILE *f, const char *prefix);

#endif
