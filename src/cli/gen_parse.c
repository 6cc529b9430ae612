/* Value parsers of `hidream generate`, used for flags and for --from-png recipe values alike,
 * so a value the command line refuses is refused in a recipe too. */
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

const char *gen_sched_name(hd_scheduler_kind k) {
    switch (k) {
    case HD_SCHEDULER_UNIPC: return "unipc";
    case HD_SCHEDULER_FLOW_MATCH: return "flow_match";
    case HD_SCHEDULER_FLASH: return "flash";
    default: return "auto";
    }
}

int gen_parse_sched(const char *what, const char *s, hd_scheduler_kind *k) {
    if (!strcmp(s, "unipc") || !strcmp(s, "default")) *k = HD_SCHEDULER_UNIPC;
    else if (!strcmp(s, "flow_match") || !strcmp(s, "euler")) *k = HD_SCHEDULER_FLOW_MATCH;
    else if (!strcmp(s, "flash")) *k = HD_SCHEDULER_FLASH;
    else if (!strcmp(s, "auto")) *k = HD_SCHEDULER_AUTO;
    else return FAIL(what, s, "a scheduler (unipc, flow_match, flash, auto)");
    return 0;
}

int gen_parse_mode(const char *what, const char *s, hd_mode *m) {
    if (!strcmp(s, "full")) *m = HD_MODE_FULL;
    else if (!strcmp(s, "dev")) *m = HD_MODE_DEV;
    else return FAIL(what, s, "full or dev");
    return 0;
}

/* Splits "A<sep>B" into two NUL-terminated parts in buf; NULL when there is no separator. */
static const char *split(const char *s, char sep, char *buf, size_t n) {
    if (strlen(s) >= n) return NULL;
    strcpy(buf, s);
    char *at = strchr(buf, sep);
    if (!at) return NULL;
    *at = 0;
    return at + 1;
}

int gen_parse_size(const char *what, const char *s, int *w, int *h) {
    char buf[64];
    const char *b = split(s, 'x', buf, sizeof buf);
    long lw, lh;
    if (!b) return FAIL(what, s, "a size WIDTHxHEIGHT");
    if (gen_parse_int(what, buf, 1, 1 << 20, &lw) || gen_parse_int(what, b, 1, 1 << 20, &lh))
        return -1;
    *w = (int)lw;
    *h = (int)lh;
    return 0;
}

int gen_parse_pair(const char *what, const char *s, double *a, double *b) {
    char buf[128];
    const char *second = split(s, ',', buf, sizeof buf);
    if (!second) return FAIL(what, s, "a pair of numbers A,B");
    return gen_parse_double(what, buf, a) || gen_parse_double(what, second, b) ? -1 : 0;
}

int gen_parse_bool(const char *what, const char *s, int *out) {
    if (strcmp(s, "0") && strcmp(s, "1")) return FAIL(what, s, "0 or 1");
    *out = s[0] == '1';
    return 0;
}
