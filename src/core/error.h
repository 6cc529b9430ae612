/* Status codes and the error record every fallible call fills in.
 *
 * Convention (SQLite-style): a function that can fail returns int, 0 on success and a negative
 * HD_E* code on failure, and takes an `hd_error *` as its last argument into which it writes one
 * line naming the file and the field at fault. Callers check every return value. */
#ifndef HD_CORE_ERROR_H
#define HD_CORE_ERROR_H

#include "hidream.h"

/* Writes the formatted message into e (if non-NULL) and returns code. Never allocates. */
int hd_fail(hd_error *e, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Prefixes the message already in e with "prefix: " (e.g. the file name). Returns e->code. */
int hd_error_prefix(hd_error *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define HD_TRY(expr)                  \
    do {                              \
        int hd_try_rc_ = (expr);      \
        if (hd_try_rc_ < 0) return hd_try_rc_; \
    } while (0)

#endif
