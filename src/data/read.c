/* read.c — opening and reading data files for the IDX and NPY readers. Files go through zlib's
 * gzread, which passes plain files through unchanged, so gzipped and unpacked files both work.
 * Nothing here trusts a header: buffers are sized by what the file can hold and grow as bytes
 * actually arrive. */
#include "core/err.h"
#include "data/data.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

/* gzread takes an unsigned length and returns an int, so large reads go in pieces */
#define DATA_CHUNK ((uint64_t)1 << 30)
#define DATA_GZ_BUFFER (128u << 10) /* larger than zlib's 8 KiB default: fewer syscalls */
#define DATA_FIRST_CAP ((int64_t)1 << 20) /* least first buffer; it doubles as data arrives */
#define DATA_GZ_MAX_RATIO 1032            /* deflate expands its input at most ~1032 times */

int anamo_data_open(const char *path, const char *expected, struct gzFile_s **out,
                    int64_t *size, anamo_err *err)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return anamo_fail(err, ANAMO_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    if (S_ISDIR(st.st_mode))
        return anamo_fail(err, ANAMO_ERR_IO, "%s: is a directory, expected %s", path, expected);
    if (S_ISREG(st.st_mode) && st.st_size == 0)
        return anamo_fail(err, ANAMO_ERR_FORMAT, "%s: empty file, expected %s", path, expected);
    *size = S_ISREG(st.st_mode) ? (int64_t)st.st_size : 0;
    *out = gzopen(path, "rb");
    if (!*out)
        return anamo_fail(err, ANAMO_ERR_IO, "%s: cannot open: %s", path,
                          errno ? strerror(errno) : "out of memory");
    gzbuffer(*out, DATA_GZ_BUFFER);
    return ANAMO_OK;
}

int anamo_data_read(struct gzFile_s *gz, const char *path, uint64_t offset, void *buf,
                    uint64_t len, uint64_t *got, anamo_err *err)
{
    uint8_t *p = buf;
    *got = 0;
    while (*got < len) {
        uint64_t want = len - *got < DATA_CHUNK ? len - *got : DATA_CHUNK;
        int r = gzread(gz, p + *got, (unsigned)want);
        if (r < 0) {
            int zerr;
            const char *msg = gzerror(gz, &zerr);
            return anamo_fail(err, zerr == Z_ERRNO ? ANAMO_ERR_IO : ANAMO_ERR_FORMAT,
                              "%s: offset %llu: %s", path, (unsigned long long)(offset + *got),
                              zerr == Z_ERRNO ? strerror(errno) : msg);
        }
        if (r == 0)
            break;
        *got += (uint64_t)r;
    }
    return ANAMO_OK;
}

int64_t anamo_data_room(struct gzFile_s *gz, int64_t size, uint64_t start)
{
    if (!gzdirect(gz))
        return size > INT64_MAX / DATA_GZ_MAX_RATIO ? INT64_MAX : size * DATA_GZ_MAX_RATIO;
    return size > (int64_t)start ? size - (int64_t)start : 0;
}

int64_t anamo_data_reserve(uint8_t **buf, int64_t *cap, int64_t used, int64_t need,
                           int64_t first, int64_t limit)
{
    if (need <= *cap && *buf)
        return 0;
    int64_t next = *buf ? *cap : first > DATA_FIRST_CAP ? first : DATA_FIRST_CAP;
    next = next < limit ? next : limit;
    while (next < need)
        next = next > limit / 2 ? limit : 2 * next;
    uint8_t *grown = anamo_alloc((size_t)next);
    if (!grown)
        return next;
    if (*buf)
        memcpy(grown, *buf, (size_t)used);
    anamo_free(*buf);
    *buf = grown;
    *cap = next;
    return 0;
}
