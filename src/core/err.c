/* err.c — error codes and messages. */
#include "core/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const char *anamo_status_name(int code)
{
    switch (code) {
    case ANAMO_OK: return "ok";
    case ANAMO_ERR_IO: return "I/O error";
    case ANAMO_ERR_FORMAT: return "format error";
    case ANAMO_ERR_CONFIG: return "configuration error";
    case ANAMO_ERR_ARG: return "invalid argument";
    case ANAMO_ERR_NOMEM: return "out of memory";
    case ANAMO_ERR_DIVERGED: return "diverged";
    case ANAMO_ERR_INTERRUPTED: return "interrupted";
    default: return "unknown error";
    }
}

int anamo_fail(anamo_err *err, int code, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
        err->code = code;
    }
    return code;
}

int anamo_fail_context(anamo_err *err, const char *fmt, ...)
{
    if (!err)
        return ANAMO_ERR_ARG; /* the code is lost with the struct: never report success */
    char prefix[ANAMO_ERR_MSG_MAX], old[ANAMO_ERR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, err->msg, sizeof old);
    size_t used = strlen(prefix);
    if (used > sizeof err->msg - 3)
        used = sizeof err->msg - 3;
    memcpy(err->msg, prefix, used);
    memcpy(err->msg + used, ": ", 2);
    size_t room = sizeof err->msg - used - 3;
    size_t tail = strnlen(old, room);
    memcpy(err->msg + used + 2, old, tail);
    err->msg[used + 2 + tail] = '\0';
    return err->code;
}

void anamo_err_clear(anamo_err *err)
{
    if (err) {
        err->code = ANAMO_OK;
        err->msg[0] = '\0';
    }
}
