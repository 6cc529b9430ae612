/* Which precision a model's products run in: the names, and how the default (AUTO) resolves. */
#ifndef HD_PIPELINE_PRECISION_H
#define HD_PIPELINE_PRECISION_H

#include "hidream.h"

/* AUTO becomes BF16 where the backend multiplies bf16 natively (native_bf16 = 1), EXACT
 * elsewhere (emulated bf16 is slower than float32 there); the other values are kept. */
hd_precision hd_precision_resolve(hd_precision p, int native_bf16);

#endif
