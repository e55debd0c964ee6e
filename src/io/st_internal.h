/* st_internal.h — what the safetensors reader (safetensors.c) and writer
 * (safetensors_write.c) share: the format's limits and the helpers that keep messages short. */
#ifndef ANAMO_IO_ST_INTERNAL_H
#define ANAMO_IO_ST_INTERNAL_H

#include "io/safetensors.h"

#define ST_LEN_BYTES 8                   /* the u64 header length before the JSON */
#define ST_HEADER_MAX 100000000ULL       /* the reference reader's limit on N */
#define ST_DIM_MAX ((uint64_t)1 << 40)   /* larger dimensions are certainly corruption */
#define ST_NUMEL_MAX ((uint64_t)1 << 60) /* so numel × 8 bytes cannot overflow */
#define ST_OFFSET_MAX 9007199254740992.0 /* 2^53: JSON numbers reach us as doubles */
#define ST_DATA_ALIGN 8                  /* data section alignment the writer keeps */
#define ST_META_KEY "__metadata__"
#define ST_SHOW_MAX 64 /* bytes of a name quoted in a message */

/* Names may hold quotes, newlines or megabytes of text; messages stay one short line. */
typedef struct {
    char s[ST_SHOW_MAX + 4];
} shown;
shown st_show(const char *name);
typedef struct {
    char s[ANAMO_MAX_DIMS * 24 + 4];
} shape_text;
shape_text st_format_shape(const int64_t *shape, int ndim);
/* numel of a shape whose dimensions are each at most ST_DIM_MAX; *overflow is set when it
 * exceeds ST_NUMEL_MAX (an empty dimension makes the others harmless). */
uint64_t st_shape_numel(const int64_t *shape, int ndim, int *overflow);
/* Index in names of a name that occurs twice, or -1. Sorts names in place. */
int st_find_duplicate(const char **names, int n);

#endif
