/* PLACEHOLDER: replaced by the real implementation. */
#include <stdio.h>
#include "cli/cli.h"
int cmd_generate(int argc, char **argv) { (void)argc; fprintf(stderr, "hidream %s: not available in this build\n", argv[0]); return 2; }
