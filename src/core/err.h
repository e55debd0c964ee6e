/* err.h — filling an anamo_err. Library code reports a failure as
 *     return anamo_fail(err, ANAMO_ERR_FORMAT, "%s: offset %lld: expected ...", path, off);
 * The message names what failed and where (file, offset or line, key, value). */
#ifndef ANAMO_CORE_ERR_H
#define ANAMO_CORE_ERR_H

#include "anamo.h"

#if defined(__GNUC__)
#define ANAMO_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define ANAMO_PRINTF(a, b)
#endif

/* Sets err (if not NULL) and returns code. */
int anamo_fail(anamo_err *err, int code, const char *fmt, ...) ANAMO_PRINTF(3, 4);
/* Prepends "prefix: " to an existing message (adds context on the way up); returns err->code
 * (ANAMO_ERR_ARG when err is NULL, so it never reads as success). */
int anamo_fail_context(anamo_err *err, const char *fmt, ...) ANAMO_PRINTF(2, 3);
void anamo_err_clear(anamo_err *err);

#endif
