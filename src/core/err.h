/* err.h — filling an anamo_err. Library code reports a failure as
 *     return anamo_err_set(err, ANAMO_ERR_FORMAT, "%s: offset %lld: expected ...", path, off);
 * The message names what failed and where (file, offset or line, key, value). The functions
 * are public (anamo.h): programs built on anamo report their errors the same way. */
#ifndef ANAMO_CORE_ERR_H
#define ANAMO_CORE_ERR_H

#include "anamo.h"

#endif
