/* Precision names and the resolution of the default (hidream.h, hd_precision). */
#include "pipeline/precision.h"

#include <string.h>

static const char *const names[] = {"auto", "exact", "bf16", "int8"};

const char *hd_precision_name(hd_precision p) {
    return (unsigned)p < sizeof names / sizeof names[0] ? names[p] : NULL;
}

int hd_precision_parse(const char *name, hd_precision *out) {
    for (unsigned i = 0; name && i < sizeof names / sizeof names[0]; i++)
        if (!strcmp(name, names[i])) {
            *out = (hd_precision)i;
            return 0;
        }
    return -1;
}

hd_precision hd_precision_resolve(hd_precision p, int native_bf16) {
    if (p != HD_PRECISION_AUTO) return p;
    return native_bf16 ? HD_PRECISION_BF16 : HD_PRECISION_EXACT;
}
