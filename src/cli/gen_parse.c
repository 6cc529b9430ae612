/* Value parsers of `hidream generate`'s flags. They are as strict as the library's recipe
 * parser (src/pipeline/recipe.c), so a value the command line refuses is refused in a
 * --from-png recipe too. */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/gen_opts.h"

#define FAIL(what, s, kind)                                                              \
    (fprintf(stderr, "hidream generate: %s: '%.200s' is not %s\n", what, s, kind), -1)

int gen_parse_int(const char *what, const char *s, long lo, long hi, long *out) {
    char kind[96];
    snprintf(kind, sizeof kind, "an integer in [%ld, %ld]", lo, hi);
    /* strtol would accept leading blanks and '+' */
    if (!(isdigit((unsigned char)s[0]) || (s[0] == '-' && lo < 0 && isdigit((unsigned char)s[1]))))
        return FAIL(what, s, kind);
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || v < lo || v > hi) return FAIL(what, s, kind);
    *out = v;
    return 0;
}

int gen_parse_u64(const char *what, const char *s, uint64_t *out) {
    /* strtoull would accept " -1" and wrap it to 2^64-1 */
    if (!isdigit((unsigned char)s[0])) return FAIL(what, s, "an unsigned integer");
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end) return FAIL(what, s, "an unsigned integer below 2^64");
    *out = v;
    return 0;
}

int gen_parse_double(const char *what, const char *s, double *out) {
    if (!s[0] || isspace((unsigned char)s[0])) return FAIL(what, s, "a number");
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || *end || !isfinite(v)) return FAIL(what, s, "a finite number");
    *out = v;
    return 0;
}

int gen_parse_timesteps(const char *what, const char *s, hd_generate_params *p) {
    int n = 0;
    const char *c = s;
    const char *kind = "a comma-separated list of integers in 0..999";
    while (*c) {
        if (!isdigit((unsigned char)*c) || n >= HD_MAX_TIMESTEPS) return FAIL(what, s, kind);
        char *end;
        errno = 0;
        long v = strtol(c, &end, 10);
        if (errno || v > 999) return FAIL(what, s, kind);
        p->timesteps[n++] = (int)v;
        c = end;
        if (*c == ',') {
            c++;
            if (!*c) return FAIL(what, s, kind); /* "999,500," */
        } else if (*c) {
            return FAIL(what, s, kind);
        }
    }
    if (n == 0) return FAIL(what, s, kind);
    p->n_timesteps = n;
    return 0;
}

int gen_parse_sched(const char *what, const char *s, hd_scheduler_kind *k) {
    if (hd_scheduler_from_name(s, k) == 0) return 0;
    return FAIL(what, s, "a scheduler (unipc, flow_match, flash, auto)");
}

int gen_parse_mode(const char *what, const char *s, hd_mode *m) {
    if (!strcmp(s, "full")) *m = HD_MODE_FULL;
    else if (!strcmp(s, "dev")) *m = HD_MODE_DEV;
    else return FAIL(what, s, "full or dev");
    return 0;
}
