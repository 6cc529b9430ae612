/* PLACEHOLDER: replaced by the real implementation. */
#include "cli/golden.h"
void golden_run_forward(golden_ctx *g) { golden_skip(g, "forward", "*", "not implemented yet"); }
