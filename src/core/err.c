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

/* Length of the well-formed UTF-8 sequence of a printable character at s (1 for printable
 * ASCII), or 0 for a control byte, DEL or a byte that does not start one. */
static size_t printable_length(const unsigned char *s)
{
    if (s[0] >= 0x20 && s[0] < 0x7f)
        return 1;
    size_t n = s[0] >= 0xc2 && s[0] <= 0xdf   ? 2
               : s[0] >= 0xe0 && s[0] <= 0xef ? 3
               : s[0] >= 0xf0 && s[0] <= 0xf4 ? 4
                                              : 0;
    for (size_t i = 1; i < n; i++)
        if ((s[i] & 0xc0) != 0x80)
            return 0;
    if ((n == 3 && s[0] == 0xe0 && s[1] < 0xa0) || (n == 4 && s[0] == 0xf0 && s[1] < 0x90) ||
        (n == 4 && s[0] == 0xf4 && s[1] > 0x8f) || (n == 3 && s[0] == 0xed && s[1] > 0x9f))
        return 0; /* overlong forms, surrogates, beyond U+10FFFF */
    return n;
}

/* A message from bytes a file or a user gave (a config's value, a path) must not drive the
 * terminal it is printed on: control bytes and bytes that are not UTF-8 become \xNN. */
static void escape_unprintable(char *msg, size_t size)
{
    char out[ANAMO_ERR_MSG_MAX];
    size_t o = 0;
    const unsigned char *s = (const unsigned char *)msg;
    while (*s && o + 5 < sizeof out) {
        size_t n = printable_length(s);
        if (n == 0) {
            o += (size_t)snprintf(out + o, sizeof out - o, "\\x%02x", *s);
            s++;
            continue;
        }
        memcpy(out + o, s, n);
        o += n, s += n;
    }
    out[o] = '\0';
    snprintf(msg, size, "%s", out);
}

int anamo_err_set(anamo_err *err, int code, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
        escape_unprintable(err->msg, sizeof err->msg);
        err->code = code;
    }
    return code;
}

int anamo_err_context(anamo_err *err, const char *fmt, ...)
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
    escape_unprintable(err->msg, sizeof err->msg);
    return err->code;
}

void anamo_err_clear(anamo_err *err)
{
    if (err) {
        err->code = ANAMO_OK;
        err->msg[0] = '\0';
    }
}
