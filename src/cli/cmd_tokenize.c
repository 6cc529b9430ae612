/* PLACEHOLDER: replaced by the real implementation. */
#include <stdio.h>
#include "cli/cli.h"
int cmd_tokenize(int argc, char **argv) { (void)argc; fprintf(stderr, "hidream %s: not available in this build\n", argv[0]); return 2; }
int cmd_check_tokenizer(int argc, char **argv) { (void)argc; fprintf(stderr, "hidream %s: not available in this build\n", argv[0]); return 2; }
