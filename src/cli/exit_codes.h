/* Exit status of every `hidream` command: one table, printed by `hidream --help` and
 * `hidream generate --help` and repeated in the README. */
#ifndef HD_CLI_EXIT_CODES_H
#define HD_CLI_EXIT_CODES_H

#include "hidream.h"

enum {
    HD_EXIT_OK = 0,      /* success */
    HD_EXIT_CHECK = 1,   /* a check ran and failed (check-golden, check-tokenizer, eval,
                            refine --strict) */
    HD_EXIT_USAGE = 2,   /* bad usage or bad input: options, recipe, files, model, limits */
    HD_EXIT_OUTPUT = 3,  /* an output file could not be written */
    HD_EXIT_COMPUTE = 4, /* the computation failed: out of memory, cancelled */
};

#define HD_EXIT_CODES_TEXT                                                                   \
    "  0    success\n"                                                                       \
    "  1    a check ran and failed (check-golden, check-tokenizer, eval; refine --strict\n"  \
    "       that fell back)\n"                                                               \
    "  2    bad usage or bad input: options, --from-png recipe, files, model directory,\n"   \
    "       prompt or size limits (nothing is written)\n"                                    \
    "  3    an output file could not be written (nothing is left behind)\n"                  \
    "  4    the computation failed: out of memory, cancelled\n"                              \
    "  130  interrupted (SIGINT), 143 terminated (SIGTERM); no partial output is left\n"

/* Exit status for a failed library call: input errors 2, I/O 2 (reading), memory and
 * cancellation 4. */
static inline int hd_exit_code(int hd_status) {
    return hd_status == HD_ENOMEM || hd_status == HD_ECANCELLED ? HD_EXIT_COMPUTE : HD_EXIT_USAGE;
}

#endif
