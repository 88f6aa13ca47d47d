/*
 * error.c — status names, the error-message helpers every layer uses, and lg_abort for broken
 * invariants.
 */
#include "core.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *lg_status_str(lg_status st) {
    switch (st) {
    case LG_OK:
        return "ok";
    case LG_E_NOMEM:
        return "out of memory";
    case LG_E_IO:
        return "i/o error";
    case LG_E_FORMAT:
        return "format error";
    case LG_E_UNSUPPORTED:
        return "unsupported";
    case LG_E_LIMIT:
        return "limit exceeded";
    case LG_E_ARG:
        return "invalid argument";
    case LG_E_INTERNAL:
        return "internal error";
    case LG_E_BUSY:
        return "busy";
    case LG_E_CANCELLED:
        return "cancelled";
    }
    return "unknown status";
}

const char *lg_version(void) {
    return LG_VERSION_STRING;
}

lg_status lg_err_setv(lg_error *err, lg_status st, const char *fmt, va_list ap) {
    if (err) {
        err->status = st;
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    }
    return st;
}

lg_status lg_err_set(lg_error *err, lg_status st, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    lg_err_setv(err, st, fmt, ap);
    va_end(ap);
    return st;
}

void lg_err_prefix(lg_error *err, const char *fmt, ...) {
    if (!err) return;
    char prefix[LG_ERROR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    char old[LG_ERROR_MSG_MAX];
    memcpy(old, err->msg, sizeof old);
    old[sizeof old - 1] = '\0';
    /* Truncation of an over-long message is acceptable; build it piecewise to say so. */
    size_t n = strlen(prefix);
    if (n > sizeof err->msg - 3) n = sizeof err->msg - 3;
    memcpy(err->msg, prefix, n);
    memcpy(err->msg + n, ": ", 2);
    size_t room = sizeof err->msg - n - 3, m = strlen(old);
    if (m > room) m = room;
    memcpy(err->msg + n + 2, old, m);
    err->msg[n + 2 + m] = '\0';
}

void lg_err_clear(lg_error *err) {
    if (!err) return;
    err->status = LG_OK;
    err->msg[0] = '\0';
}

_Noreturn void lg_abort(const char *file, int line, const char *what) {
    fprintf(stderr, "llavaguard: internal error at %s:%d: assertion failed: %s\n", file, line,
            what);
    abort();
}
