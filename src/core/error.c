#include "core/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int hd_fail(hd_error *e, int code, const char *fmt, ...) {
    if (e) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(e->msg, sizeof e->msg, fmt, ap);
        va_end(ap);
        e->code = code;
    }
    return code;
}

int hd_error_prefix(hd_error *e, const char *fmt, ...) {
    if (!e) return HD_EINVAL;
    char prefix[256], old[sizeof e->msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, e->msg, sizeof old);
    size_t pl = strnlen(prefix, sizeof prefix);
    if (pl + 2 >= sizeof e->msg) pl = sizeof e->msg - 3;
    memcpy(e->msg, prefix, pl);
    e->msg[pl] = ':';
    e->msg[pl + 1] = ' ';
    size_t room = sizeof e->msg - pl - 3, ol = strnlen(old, sizeof old);
    if (ol > room) ol = room;
    memcpy(e->msg + pl + 2, old, ol);
    e->msg[pl + 2 + ol] = 0;
    return e->code;
}

const char *hd_status_name(int code) {
    switch (code) {
    case HD_OK: return "ok";
    case HD_EIO: return "i/o error";
    case HD_EFORMAT: return "malformed input";
    case HD_EINVAL: return "invalid argument";
    case HD_ENOMEM: return "out of memory";
    case HD_EUNSUPPORTED: return "unsupported";
    case HD_ECANCELLED: return "cancelled";
    case HD_EMISMATCH: return "mismatch";
    default: return "unknown error";
    }
}
