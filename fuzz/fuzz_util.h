/* fuzz_util.h — what every libFuzzer target shares.
 *
 * Files: the readers take paths, so each input is written to an in-memory file (memfd_create;
 * a file under /tmp when that is not available) and handed over as its /proc/self/fd path.
 * Slot 0 holds the input, slot 1 what a harness derives from it (the inflated content of a
 * gzip input, a re-encoding of what was read).
 *
 * Oracles: a violated expectation calls fuzz_fail (abort), which libFuzzer reports as a crash
 * with the input that caused it. Shared here: a failure's message is one line naming the file;
 * an accepted dataset is as long as it claims; and gzip, checked against zlib's inflate run
 * directly (fuzz_content_of), independently of the readers' own loop (src/data/read.c): a
 * reader may accept a gzip input only when every member inflates to Z_STREAM_END with its
 * CRC-32 and length trailer correct and nothing follows the last one, and must then read what
 * that inflate produced. */
#ifndef ANAMO_FUZZ_UTIL_H
#define ANAMO_FUZZ_UTIL_H

#include "anamo.h"

#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <zlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_PATH_MAX 64
#define FUZZ_SLOTS 2
#define FUZZ_SLOT_INPUT 0
#define FUZZ_SLOT_DERIVED 1

/* An oracle failure: the message, then abort() so that libFuzzer keeps the input. */
static inline void fuzz_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static inline void fuzz_fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("fuzz: oracle: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    abort();
}

/* memfd_create through syscall(2): glibc's wrapper needs _GNU_SOURCE, which C11 builds lack. */
static inline int fuzz_open_file(char *path, int slot)
{
#ifdef SYS_memfd_create
    int fd = (int)syscall(SYS_memfd_create, "anamo-fuzz", 0u);
    if (fd >= 0) {
        snprintf(path, FUZZ_PATH_MAX, "/proc/self/fd/%d", fd);
        return fd;
    }
#endif
    snprintf(path, FUZZ_PATH_MAX, "/tmp/anamo-fuzz-%ld-%d", (long)getpid(), slot);
    return open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
}

/* The path of a file holding exactly data[0..size), one file per slot. */
static inline const char *fuzz_file_at(int slot, const uint8_t *data, size_t size)
{
    static char paths[FUZZ_SLOTS][FUZZ_PATH_MAX];
    static int fds[FUZZ_SLOTS] = {-1, -1};
    if (fds[slot] < 0 && (fds[slot] = fuzz_open_file(paths[slot], slot)) < 0) {
        perror("fuzz: cannot create the input file");
        abort();
    }
    size_t done = 0;
    if (ftruncate(fds[slot], 0) != 0)
        abort();
    while (done < size) {
        ssize_t w = pwrite(fds[slot], data + done, size - done, (off_t)done);
        if (w <= 0)
            abort();
        done += (size_t)w;
    }
    return paths[slot];
}

static inline const char *fuzz_file(const uint8_t *data, size_t size)
{
    return fuzz_file_at(FUZZ_SLOT_INPUT, data, size);
}

/* A failure must say something, on one line, and name the file it is about. */
static inline void fuzz_check_error(int rc, const anamo_err *err, const char *path)
{
    if (rc == ANAMO_OK)
        return;
    if (err->code != rc || !err->msg[0]) {
        fprintf(stderr, "fuzz: status %d with err.code %d and message '%s'\n", rc, err->code,
                err->msg);
        abort();
    }
    if (strpbrk(err->msg, "\n\r")) {
        fprintf(stderr, "fuzz: message is not one line: '%s'\n", err->msg);
        abort();
    }
    if (path && !strstr(err->msg, path)) {
        fprintf(stderr, "fuzz: message does not name %s: '%s'\n", path, err->msg);
        abort();
    }
}

/* Bytes per value of a dataset. */
static inline size_t fuzz_value_size(const anamo_dataset *ds)
{
    return ds->dtype == ANAMO_U8 ? 1 : sizeof(float);
}

/* A dataset a reader accepted must be what it claims: touching every byte lets ASan see an
 * allocation shorter than n × dim. */
static inline void fuzz_check_dataset(const anamo_dataset *ds)
{
    if (ds->n < 1 || ds->dim < 1 || ds->dim != (int64_t)ds->c * ds->h * ds->w || !ds->data) {
        fprintf(stderr, "fuzz: dataset n %lld dim %lld c %d h %d w %d data %p\n", (long long)ds->n,
                (long long)ds->dim, ds->c, ds->h, ds->w, ds->data);
        abort();
    }
    size_t bytes = (size_t)(ds->n * ds->dim) * fuzz_value_size(ds);
    const volatile uint8_t *p = ds->data;
    uint8_t acc = 0;
    for (size_t i = 0; i < bytes; i += 61)
        acc ^= p[i];
    acc ^= p[bytes - 1];
    (void)acc;
}

/* Two datasets hold the same samples: shape, dtype, labels and every value bit for bit (a NaN
 * equals a NaN of the same bits). what names the comparison in the failure. */
static inline void fuzz_check_same(const anamo_dataset *a, const anamo_dataset *b, const char *what)
{
    if (a->n != b->n || a->dim != b->dim || a->c != b->c || a->h != b->h || a->w != b->w ||
        a->dtype != b->dtype)
        fuzz_fail("%s: shape %lld x %d x %d x %d (dtype %d) against %lld x %d x %d x %d "
                  "(dtype %d)",
                  what, (long long)a->n, a->c, a->h, a->w, (int)a->dtype, (long long)b->n, b->c,
                  b->h, b->w, (int)b->dtype);
    size_t bytes = (size_t)(a->n * a->dim) * fuzz_value_size(a);
    if (memcmp(a->data, b->data, bytes) != 0)
        fuzz_fail("%s: the values differ", what);
    if (!a->labels != !b->labels || (a->labels && memcmp(a->labels, b->labels, (size_t)a->n)))
        fuzz_fail("%s: the labels differ", what);
}

/* ---- gzip: what zlib's inflate makes of an input ---------------------------------------- */

enum fuzz_kind {
    FUZZ_PLAIN,   /* no gzip magic: gzread passes the bytes through */
    FUZZ_GZIP_OK, /* every member complete, trailers correct, nothing after them */
    FUZZ_GZIP_BAD /* truncated, corrupt or followed by other bytes: no reader may accept it */
};

/* What a reader must see of an input: the input itself, or its gzip members inflated and
 * concatenated. A file is gzip when its first two bytes are 1f 8b, as zlib's gzread decides (a
 * single 1f byte is a plain file). A gzip file is good when it is members back to back (RFC
 * 1952, 2.2; what `cat a.gz b.gz` makes), each inflated to Z_STREAM_END, which means its CRC-32
 * and ISIZE trailer were checked, and nothing after the last: bytes that do not start another
 * member are refused, where gzread would ignore them ("trailing garbage", which is how a
 * damaged download or a wrong file looks). */
typedef struct fuzz_content {
    enum fuzz_kind kind;
    const uint8_t *p; /* FUZZ_PLAIN: the input; FUZZ_GZIP_OK: the inflated bytes */
    size_t n;
    int members; /* gzip members inflated */
    uint8_t *owned;
    char why[96]; /* FUZZ_GZIP_BAD: what inflate found */
} fuzz_content;

#define FUZZ_GZIP_MAX_RATIO 1032 /* deflate's largest expansion, with room for headers */

static inline int fuzz_is_gzip(const uint8_t *p, size_t n)
{
    return n >= 2 && p[0] == 0x1f && p[1] == 0x8b;
}

static inline void fuzz_content_free(fuzz_content *c)
{
    free(c->owned);
    c->owned = NULL;
}

static inline void fuzz_content_of(const uint8_t *data, size_t size, fuzz_content *c)
{
    memset(c, 0, sizeof *c);
    c->p = data;
    c->n = size;
    if (!fuzz_is_gzip(data, size))
        return;
    z_stream s;
    memset(&s, 0, sizeof s);
    if (inflateInit2(&s, 16 + MAX_WBITS) != Z_OK) /* 16: gzip wrapper only, as gzread */
        abort();
    size_t cap = 4096, limit = size * FUZZ_GZIP_MAX_RATIO + 4096;
    uint8_t *out = malloc(cap);
    if (!out)
        abort();
    s.next_in = (Bytef *)data;
    s.avail_in = (uInt)size;
    c->kind = FUZZ_GZIP_BAD;
    c->members = 1;
    for (;;) {
        size_t used = (size_t)(s.next_out ? s.next_out - out : 0);
        if (used == cap) {
            if (cap >= limit)
                fuzz_fail("inflate made more than %zu bytes of %zu", limit, size);
            cap *= 2;
            if (!(out = realloc(out, cap)))
                abort();
        }
        s.next_out = out + used;
        s.avail_out = (uInt)(cap - used);
        int r = inflate(&s, Z_NO_FLUSH);
        if (r == Z_STREAM_END && s.avail_in > 0 && !fuzz_is_gzip(s.next_in, s.avail_in)) {
            snprintf(c->why, sizeof c->why, "followed by %u bytes that are no gzip member",
                     s.avail_in);
            break;
        }
        if (r == Z_STREAM_END && s.avail_in > 0) {
            size_t kept = (size_t)(s.next_out - out);
            inflateReset(&s);
            s.next_out = out + kept;
            c->members++;
            continue;
        }
        if (r == Z_STREAM_END) {
            c->kind = FUZZ_GZIP_OK;
            break;
        }
        if (r == Z_OK || (r == Z_BUF_ERROR && s.avail_out == 0))
            continue;         /* progress, or only room was missing */
        if (r == Z_BUF_ERROR) /* no input left before the member's end */
            snprintf(c->why, sizeof c->why, "truncated (member %d ends early)", c->members);
        else if (r == Z_DATA_ERROR)
            snprintf(c->why, sizeof c->why, "corrupt (member %d: %s)", c->members,
                     s.msg ? s.msg : "data error");
        else
            fuzz_fail("inflate returned %d", r);
        break;
    }
    c->n = (size_t)(s.next_out - out);
    c->p = c->owned = out;
    inflateEnd(&s);
}

/* The gzip oracle for a reader's verdict on the input behind c. */
static inline void fuzz_check_gzip(int accepted, const fuzz_content *c, const char *reader)
{
    if (accepted && c->kind == FUZZ_GZIP_BAD)
        fuzz_fail("%s accepted a gzip input that zlib's inflate finds %s", reader, c->why);
}

/* The path of a plain file holding the inflated content of a good gzip input, to be read
 * again and compared; NULL when there is none (a plain input, a bad gzip, or content that
 * itself starts with the gzip magic and so would not be read as plain). */
static inline const char *fuzz_plain_copy(const fuzz_content *c)
{
    if (c->kind != FUZZ_GZIP_OK || fuzz_is_gzip(c->p, c->n))
        return NULL;
    return fuzz_file_at(FUZZ_SLOT_DERIVED, c->p, c->n);
}

/* A gzip input and its inflated content in a plain file must read the same, through the
 * reader read (named name in messages): both accepted and equal, or both refused. rc is the
 * reader's verdict on the gzip input, ds what it read. */
typedef int (*fuzz_reader)(const char *path, anamo_dataset *out, anamo_err *err);
static inline void fuzz_check_plain_copy(const fuzz_content *c, int rc, const anamo_dataset *ds,
                                         fuzz_reader read, const char *name)
{
    const char *plain = fuzz_plain_copy(c);
    if (!plain)
        return;
    anamo_dataset again;
    anamo_err err = {0};
    int rc2 = read(plain, &again, &err);
    if ((rc == ANAMO_OK) != (rc2 == ANAMO_OK))
        fuzz_fail("%s: gzip %s, its content %s (%s)", name, rc ? "refused" : "accepted",
                  rc2 ? "refused" : "accepted", rc2 ? err.msg : "");
    if (rc2 == ANAMO_OK) {
        char what[128];
        snprintf(what, sizeof what, "%s: gzip against its content", name);
        fuzz_check_same(ds, &again, what);
        anamo_dataset_free(&again);
    }
}

static inline uint32_t fuzz_be32(const uint8_t *b)
{
    return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

#endif
