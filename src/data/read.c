/* read.c — opening and reading data files for the IDX, NPY, CSV and CIFAR-10 readers. A file is
 * plain or gzip (RFC 1952), told apart by gzip's magic bytes 1f 8b at its start, as zlib's
 * gzread tells them apart. Gzip is inflated here rather than through gzread, because gzread
 * forgives what a damaged file looks like: a stream cut inside its 8-byte trailer (CRC-32 and
 * ISIZE, the length) reads as a clean end, reported only to a caller that asks gzerror or
 * gzclose_r; bytes after the last member are dropped without a word; and its messages carry
 * the path a second time ("PATH: incorrect data check"). Here a stream ends cleanly only at the
 * end of the file, straight after a member whose trailer inflate has checked (Z_STREAM_END);
 * a further member may follow, as `cat a.gz b.gz` makes, anything else is an error naming the
 * file, the offset in it and what is wrong. Every reader calls data_src_end after the last
 * byte it needs, so no reader stops before the trailer.
 * Nothing here trusts a header: buffers are sized by what the file can hold and grow as bytes
 * actually arrive. */
#include "core/err.h"
#include "data/data.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#define DATA_CHUNK ((uint64_t)1 << 30) /* inflate takes an unsigned length: large reads in pieces */
#define DATA_IN_BUFFER (128u << 10)    /* compressed bytes per fread */
#define DATA_SKIP_BUFFER (16u << 10)   /* bytes read and dropped per step when counting */
#define DATA_FIRST_CAP ((int64_t)1 << 20) /* least first buffer; it doubles as data arrive */
#define DATA_GZ_MAX_RATIO 1032            /* deflate expands its input at most ~1032 times */
#define DATA_GZ_WINDOW (15 + 16)          /* inflate: 32 KiB window, gzip wrapper only */
#define DATA_GZ_TRAILER 8                 /* CRC-32, then ISIZE (the length mod 2^32) */
#define DATA_GZ_FIELD 4

/* Where a gzip stream stands: inside a member, just after a member's checked trailer, or at
 * the file's clean end. */
typedef enum data_state { DATA_MEMBER, DATA_BETWEEN, DATA_END } data_state;

struct data_src {
    FILE *fp;
    const char *path;
    int64_t size; /* a regular file's size, 0 for anything else */
    int gzip;     /* 0: plain, its bytes pass through */
    data_state state;
    z_stream zs;     /* next_in and avail_in: the unread part of in, for plain files too */
    int zs_ready;    /* inflateInit2 succeeded: inflateEnd owes a call */
    uint8_t *in;     /* DATA_IN_BUFFER bytes */
    uint64_t taken;  /* bytes fread from the file so far */
    uint64_t member; /* file offset where the current member starts */
    int eof;         /* fread has met the file's end */
    uint64_t pos;    /* bytes of data delivered so far */
};

/* The file offset of the next byte not yet consumed. */
static uint64_t data_in_offset(const data_src *s) { return s->taken - s->zs.avail_in; }

/* fread of up to len bytes into dst (*r of them), keeping the file's position and end. */
static int data_fread(data_src *s, void *dst, size_t len, size_t *r, anamo_err *err)
{
    errno = 0;
    *r = fread(dst, 1, len, s->fp);
    s->taken += *r;
    if (ferror(s->fp))
        return anamo_err_set(err, ANAMO_ERR_IO, "%s: offset %llu: cannot read: %s", s->path,
                             (unsigned long long)s->taken, strerror(errno ? errno : EIO));
    s->eof = feof(s->fp);
    return ANAMO_OK;
}

/* Moves the unread input to the front of the buffer and reads more behind it. */
static int data_fill(data_src *s, anamo_err *err)
{
    if (s->zs.avail_in && s->zs.next_in != s->in)
        memmove(s->in, s->zs.next_in, s->zs.avail_in);
    s->zs.next_in = s->in;
    size_t r;
    int rc = data_fread(s, s->in + s->zs.avail_in, DATA_IN_BUFFER - s->zs.avail_in, &r, err);
    s->zs.avail_in += (uInt)r;
    return rc;
}

/* Reads until at least need unread bytes are buffered or the file ends. */
static int data_want(data_src *s, uInt need, anamo_err *err)
{
    while (s->zs.avail_in < need && !s->eof) {
        int rc = data_fill(s, err);
        if (rc)
            return rc;
    }
    return ANAMO_OK;
}

static int data_is_gzip(const data_src *s)
{
    return s->zs.avail_in >= 2 && s->zs.next_in[0] == 0x1f && s->zs.next_in[1] == 0x8b;
}

/* The 4-byte little-endian field that ends just before the next unread byte, when it is still
 * in the buffer (inflate consumes a trailer field whole before checking it). */
static int data_last_field(const data_src *s, uint32_t *v)
{
    if (s->zs.next_in - s->in < DATA_GZ_FIELD)
        return 0;
    const uint8_t *b = s->zs.next_in - DATA_GZ_FIELD;
    *v = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
    return 1;
}

/* A trailer field that disagrees with the data. inflate consumes a field whole before checking
 * it, so the trailer starts 4 (CRC) or 8 (length) bytes before the next unread byte; the stored
 * value is quoted when those bytes are still in the buffer. */
static int data_bad_trailer(data_src *s, int crc, anamo_err *err)
{
    uint64_t at = data_in_offset(s), held = (uint64_t)s->zs.total_out;
    uint32_t stored = 0;
    char said[40] = "something else", mod[40] = "";
    if (data_last_field(s, &stored))
        snprintf(said, sizeof said, crc ? "0x%08lx" : "%lu", (unsigned long)stored);
    if (crc)
        return anamo_err_set(err, ANAMO_ERR_FORMAT,
                             "%s: gzip trailer CRC mismatch at offset %llu: "
                             "the member's %llu bytes give CRC-32 0x%08lx, the trailer says %s "
                             "(damaged file)",
                             s->path, (unsigned long long)(at - DATA_GZ_FIELD),
                             (unsigned long long)held, (unsigned long)s->zs.adler, said);
    if (held > 0xffffffffu) /* ISIZE is the length mod 2^32 */
        snprintf(mod, sizeof mod, " (%lu mod 2^32)", (unsigned long)(held & 0xffffffffu));
    return anamo_err_set(err, ANAMO_ERR_FORMAT,
                         "%s: gzip trailer length mismatch at offset %llu: "
                         "the member holds %llu bytes%s, the trailer says %s (damaged file)",
                         s->path, (unsigned long long)(at - DATA_GZ_TRAILER),
                         (unsigned long long)held, mod, said);
}

/* What inflate refused, in words; done is the data's offset where it stopped. inflate tells
 * its trailer checks apart from other faults only by these two messages (zlib's inflate.c). */
static int data_bad_stream(data_src *s, int z, uint64_t done, anamo_err *err)
{
    const char *msg = s->zs.msg ? s->zs.msg : "unknown error";
    int crc = strcmp(msg, "incorrect data check") == 0;
    if (z == Z_MEM_ERROR)
        return anamo_err_set(err, ANAMO_ERR_NOMEM, "%s: out of memory for inflating", s->path);
    if (crc || strcmp(msg, "incorrect length check") == 0)
        return data_bad_trailer(s, crc, err);
    return anamo_err_set(err, ANAMO_ERR_FORMAT,
                         "%s: corrupt gzip data near offset %llu, %llu bytes "
                         "into the data: %s",
                         s->path, (unsigned long long)data_in_offset(s), (unsigned long long)done,
                         msg);
}

/* After a member's trailer: the file ends (clean), another member starts, or what follows is
 * not gzip (an error: a damaged or wrong file must not pass for a shorter good one). */
static int data_next_member(data_src *s, anamo_err *err)
{
    int rc = data_want(s, 2, err);
    if (rc)
        return rc;
    uint64_t at = data_in_offset(s);
    if (s->zs.avail_in == 0) {
        s->state = DATA_END;
        return ANAMO_OK;
    }
    if (!data_is_gzip(s)) {
        if (s->size > 0 && (uint64_t)s->size > at)
            return anamo_err_set(
                err, ANAMO_ERR_FORMAT,
                "%s: offset %llu: trailing garbage after "
                "the gzip stream: %llu bytes that do not start another gzip member",
                s->path, (unsigned long long)at, (unsigned long long)((uint64_t)s->size - at));
        return anamo_err_set(err, ANAMO_ERR_FORMAT,
                             "%s: offset %llu: trailing garbage after the "
                             "gzip stream: bytes that do not start another gzip member",
                             s->path, (unsigned long long)at);
    }
    if (inflateReset(&s->zs) != Z_OK)
        return anamo_err_set(err, ANAMO_ERR_FORMAT, "%s: offset %llu: cannot restart inflate",
                             s->path, (unsigned long long)at);
    s->member = at;
    s->state = DATA_MEMBER;
    return ANAMO_OK;
}

/* Inflates up to len bytes into buf; *got is less than len only at the file's clean end. */
static int data_inflate(data_src *s, uint8_t *buf, uInt len, uInt *got, anamo_err *err)
{
    int rc = ANAMO_OK;
    s->zs.next_out = buf;
    s->zs.avail_out = len;
    while (!rc && s->zs.avail_out > 0 && s->state != DATA_END) {
        if (s->state == DATA_BETWEEN) {
            rc = data_next_member(s, err);
            continue;
        }
        if (s->zs.avail_in == 0 && (rc = data_want(s, 1, err)) != ANAMO_OK)
            break;
        if (s->zs.avail_in == 0) {
            rc = anamo_err_set(err, ANAMO_ERR_FORMAT,
                               "%s: compressed stream ends early (truncated "
                               "file?): the file ends at offset %llu inside the gzip member that "
                               "starts at offset %llu, after %llu bytes of data",
                               s->path, (unsigned long long)s->taken, (unsigned long long)s->member,
                               (unsigned long long)(s->pos + (len - s->zs.avail_out)));
            break;
        }
        /* with input and room for output inflate always moves on: Z_BUF_ERROR would be a
         * stream it cannot go on with, not a wait for input */
        int z = inflate(&s->zs, Z_NO_FLUSH);
        if (z == Z_STREAM_END)
            s->state = DATA_BETWEEN;
        else if (z != Z_OK)
            rc = data_bad_stream(s, z, s->pos + (len - s->zs.avail_out), err);
    }
    *got = len - s->zs.avail_out;
    return rc;
}

/* Copies up to len bytes of a plain file into buf: the buffered ones, then straight from it. */
static int data_copy(data_src *s, uint8_t *buf, uInt len, uInt *got, anamo_err *err)
{
    uInt n = s->zs.avail_in < len ? s->zs.avail_in : len;
    memcpy(buf, s->zs.next_in, n);
    s->zs.next_in += n;
    s->zs.avail_in -= n;
    *got = n;
    if (n == len || s->eof)
        return ANAMO_OK;
    size_t r;
    int rc = data_fread(s, buf + n, len - n, &r, err);
    *got += (uInt)r;
    return rc;
}

int data_src_open(const char *path, const char *expected, data_src **out, anamo_err *err)
{
    struct stat st;
    *out = NULL;
    if (stat(path, &st) != 0)
        return anamo_err_set(err, ANAMO_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    if (S_ISDIR(st.st_mode))
        return anamo_err_set(err, ANAMO_ERR_IO, "%s: is a directory, expected %s", path, expected);
    if (S_ISREG(st.st_mode) && st.st_size == 0)
        return anamo_err_set(err, ANAMO_ERR_FORMAT, "%s: empty file, expected %s", path, expected);
    data_src *s = calloc(1, sizeof *s);
    if (!s || !(s->in = malloc(DATA_IN_BUFFER))) {
        free(s);
        return anamo_err_set(err, ANAMO_ERR_NOMEM, "%s: cannot allocate a read buffer", path);
    }
    s->path = path;
    s->size = S_ISREG(st.st_mode) ? (int64_t)st.st_size : 0;
    s->zs.next_in = s->in;
    int rc = (s->fp = fopen(path, "rb")) != NULL
                 ? data_want(s, 2, err)
                 : anamo_err_set(err, ANAMO_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    s->gzip = !rc && data_is_gzip(s);
    if (s->gzip) {
        s->zs_ready = inflateInit2(&s->zs, DATA_GZ_WINDOW) == Z_OK;
        if (!s->zs_ready)
            rc = anamo_err_set(err, ANAMO_ERR_NOMEM, "%s: cannot start inflate", path);
    }
    if (rc) {
        data_src_close(s);
        return rc;
    }
    *out = s;
    return ANAMO_OK;
}

int data_src_read(data_src *s, void *buf, uint64_t len, uint64_t *got, anamo_err *err)
{
    uint8_t scratch[DATA_SKIP_BUFFER], *p = buf;
    int rc = ANAMO_OK;
    *got = 0;
    while (!rc && *got < len) {
        uint64_t left = len - *got, cap = p ? DATA_CHUNK : sizeof scratch;
        uInt want = (uInt)(left < cap ? left : cap), n = 0;
        uint8_t *dst = p ? p + *got : scratch;
        rc = s->gzip ? data_inflate(s, dst, want, &n, err) : data_copy(s, dst, want, &n, err);
        *got += n;
        s->pos += n;
        if (n < want)
            break;
    }
    return rc;
}

int data_src_end(data_src *s, uint64_t *extra, anamo_err *err)
{
    return data_src_read(s, NULL, UINT64_MAX, extra, err);
}

void data_src_close(data_src *s)
{
    if (!s)
        return;
    if (s->zs_ready)
        inflateEnd(&s->zs);
    if (s->fp)
        fclose(s->fp);
    free(s->in);
    free(s);
}

int64_t data_src_room(const data_src *s)
{
    if (s->gzip)
        return s->size > INT64_MAX / DATA_GZ_MAX_RATIO ? INT64_MAX : s->size * DATA_GZ_MAX_RATIO;
    return s->size > (int64_t)s->pos ? s->size - (int64_t)s->pos : 0;
}

int64_t data_reserve(uint8_t **buf, int64_t *cap, int64_t used, int64_t need, int64_t first,
                     int64_t limit)
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
