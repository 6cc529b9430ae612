/* PLACEHOLDER: replaced by the real implementation. */
#include "cli/golden.h"
void golden_run_rng(golden_ctx *g) { golden_skip(g, "rng", "*", "not implemented yet"); }
void golden_run_sched(golden_ctx *g) { golden_skip(g, "sched", "*", "not implemented yet"); }
