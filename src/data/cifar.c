/* cifar.c — CIFAR-10 in its binary distribution format (Krizhevsky, 2009,
 * https://www.cs.toronto.edu/~kriz/cifar.html): batch files of 3073-byte records, each one
 * label byte (0–9) and then 1024 red, 1024 green and 1024 blue bytes, every plane row-major
 * 32×32. A list of batch files becomes one dataset of 3×32×32 bytes per sample in the file's
 * own (NCHW) order, labels kept. Files go through read.c, which passes plain files through
 * unchanged and checks a gzip stream to its end, so the official uncompressed batches and
 * gzipped ones both work.
 *
 * The whole set (150 MB for the training batches) lives in one allocation: each file is read
 * straight into its slot, whose size is known before reading (a plain file's size, a gzip
 * file's ISIZE trailer), and the label bytes are squeezed out in place afterwards. Nothing a
 * file says is trusted until checked: its size must be a nonzero whole number of records,
 * every label below 10, the gzip stream complete. */
#include "core/err.h"
#include "data/data.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define CIFAR_CHANNELS 3
#define CIFAR_SIDE 32
#define CIFAR_PIXELS (CIFAR_CHANNELS * CIFAR_SIDE * CIFAR_SIDE) /* 3072 bytes per image */
#define CIFAR_RECORD (1 + CIFAR_PIXELS)                         /* label byte + image */
#define CIFAR_CLASSES 10
/* Deflate expands at most 1032:1, so a gzip trailer claiming more than that is not believed. */
#define GZIP_MAX_RATIO 1032
#define GZIP_TRAILER 8 /* CRC-32 and ISIZE, the uncompressed length mod 2^32 (RFC 1952) */
#define GZIP_MIN_SIZE 18
/* Below this many bytes in all, starting threads costs more than decompressing in parallel
 * saves (one CIFAR-10 batch takes about 0.2 s to inflate). */
#define CIFAR_PAR_MIN_BYTES ((uint64_t)8 << 20)
#define CIFAR_URL "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"
#define CIFAR_PATH_MAX 4096

/* One batch file: where its bytes go in the shared buffer and what reading it found. Each is
 * read by one thread, which reports into its own err; the first failure in list order wins. */
typedef struct cifar_file {
    const char *path;
    uint64_t hint;   /* bytes reserved: the decompressed size, if the file told the truth */
    uint64_t offset; /* where its slot starts in the buffer */
    uint64_t got;    /* bytes it held (at most hint) */
    uint64_t extra;  /* bytes it held past hint */
    int overflow;    /* it held more than hint: read it again into a slot of got + extra */
    int rc;
    anamo_err err;
} cifar_file;

static uint32_t le32(const uint8_t *b)
{
    return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

/* The decompressed size a gzip file announces in its trailer (exact for the usual one-member
 * file under 4 GiB), or a plain file's size. Only a guess: reading decides. */
static uint64_t cifar_size_hint(FILE *f, uint64_t size)
{
    uint8_t magic[2], trailer[4];
    if (size < GZIP_MIN_SIZE || fread(magic, 1, 2, f) != 2 || magic[0] != 0x1f || magic[1] != 0x8b)
        return size;
    if (fseek(f, -4L, SEEK_END) != 0 || fread(trailer, 1, 4, f) != 4)
        return size;
    uint64_t isize = le32(trailer);
    return isize <= size * GZIP_MAX_RATIO ? isize : size * GZIP_MAX_RATIO;
}

/* Checks that path is a nonempty regular file and guesses its decompressed size. */
static int cifar_stat(cifar_file *f, anamo_err *err)
{
    struct stat st;
    if (stat(f->path, &st) != 0)
        return anamo_err_set(err, ANAMO_ERR_IO, "%s: cannot open: %s", f->path, strerror(errno));
    if (S_ISDIR(st.st_mode))
        return anamo_err_set(err, ANAMO_ERR_IO,
                             "%s: is a directory, expected a CIFAR-10 batch "
                             "file",
                             f->path);
    if (!S_ISREG(st.st_mode)) /* a pipe could not be read twice, should its size be wrong */
        return anamo_err_set(err, ANAMO_ERR_IO,
                             "%s: not a regular file, expected a CIFAR-10 "
                             "batch file",
                             f->path);
    if (st.st_size == 0)
        return anamo_err_set(err, ANAMO_ERR_FORMAT,
                             "%s: empty file, expected CIFAR-10 records "
                             "of %d bytes",
                             f->path, CIFAR_RECORD);
    FILE *fp = fopen(f->path, "rb");
    if (!fp)
        return anamo_err_set(err, ANAMO_ERR_IO, "%s: cannot open: %s", f->path, strerror(errno));
    f->hint = cifar_size_hint(fp, (uint64_t)st.st_size);
    fclose(fp);
    return ANAMO_OK;
}

/* The size check and the label check, on a file read whole into rec. */
static int cifar_check(const cifar_file *f, const uint8_t *rec, anamo_err *err)
{
    uint64_t whole = f->got / CIFAR_RECORD, cut = f->got % CIFAR_RECORD;
    if (f->got == 0)
        return anamo_err_set(err, ANAMO_ERR_FORMAT,
                             "%s: empty: it decompresses to 0 bytes, "
                             "expected CIFAR-10 records of %d bytes",
                             f->path, CIFAR_RECORD);
    if (cut)
        return anamo_err_set(err, ANAMO_ERR_FORMAT,
                             "%s: %llu bytes is not a whole number of "
                             "%d-byte records (record %llu, at offset %llu, is cut after %llu "
                             "bytes)",
                             f->path, (unsigned long long)f->got, CIFAR_RECORD,
                             (unsigned long long)whole, (unsigned long long)(whole * CIFAR_RECORD),
                             (unsigned long long)cut);
    for (uint64_t r = 0; r < whole; r++)
        if (rec[r * CIFAR_RECORD] >= CIFAR_CLASSES)
            return anamo_err_set(err, ANAMO_ERR_FORMAT,
                                 "%s: offset %llu: record %llu has label "
                                 "%u, expected 0 to %d",
                                 f->path, (unsigned long long)(r * CIFAR_RECORD),
                                 (unsigned long long)r, rec[r * CIFAR_RECORD], CIFAR_CLASSES - 1);
    return ANAMO_OK;
}

/* Reads one file into its slot, then on to its end (which checks a gzip stream's trailer and
 * counts what did not fit), and checks it; a file longer than its slot is only flagged. */
static void cifar_load(cifar_file *f, uint8_t *buf)
{
    data_src *src;
    f->rc = data_src_open(f->path, "a CIFAR-10 batch file", &src, &f->err);
    if (f->rc)
        return;
    uint8_t *slot = buf + f->offset;
    f->extra = 0;
    f->rc = data_src_read(src, slot, f->hint, &f->got, &f->err);
    if (!f->rc)
        f->rc = data_src_end(src, &f->extra, &f->err);
    data_src_close(src);
    f->overflow = !f->rc && f->extra > 0;
    if (!f->rc && !f->overflow)
        f->rc = cifar_check(f, slot, &f->err);
}

/* Reads every file into its slot, in parallel when there is enough to read. */
static int cifar_load_all(cifar_file *files, int nfiles, uint8_t *buf, uint64_t total,
                          anamo_err *err)
{
#pragma omp parallel for schedule(dynamic, 1) if (nfiles > 1 && total >= CIFAR_PAR_MIN_BYTES)
    for (int i = 0; i < nfiles; i++)
        cifar_load(&files[i], buf);
    for (int i = 0; i < nfiles; i++)
        if (files[i].rc) {
            if (err)
                *err = files[i].err;
            return files[i].rc;
        }
    return ANAMO_OK;
}

/* Lays the slots end to end and allocates the buffer for them. */
static int cifar_plan(cifar_file *files, int nfiles, uint8_t **buf, uint64_t *total, anamo_err *err)
{
    *total = 0;
    for (int i = 0; i < nfiles; i++) {
        files[i].offset = *total;
        *total += files[i].hint;
        if (*total > (uint64_t)ANAMO_DATA_MAX_BYTES)
            return anamo_err_set(err, ANAMO_ERR_FORMAT,
                                 "%s: the CIFAR-10 files up to this one "
                                 "hold more than the %lld-byte limit",
                                 files[i].path, (long long)ANAMO_DATA_MAX_BYTES);
    }
    *buf = anamo_alloc((size_t)*total);
    if (!*buf)
        return anamo_err_set(err, ANAMO_ERR_NOMEM,
                             "%s: cannot allocate %llu bytes for %d "
                             "CIFAR-10 files",
                             files[0].path, (unsigned long long)*total, nfiles);
    return ANAMO_OK;
}

/* Reads all files into one buffer of raw records. When a trailer undersold its file, that file
 * gets the slot its first read measured and everything is read again: rare (concatenated gzip
 * members), and simpler than moving slots around. A file that grows again between the two
 * reads is an error. */
static int cifar_read_raw(cifar_file *files, int nfiles, uint8_t **out, anamo_err *err)
{
    for (int attempt = 0;; attempt++) {
        uint8_t *buf = NULL;
        uint64_t total;
        int rc = cifar_plan(files, nfiles, &buf, &total, err);
        if (!rc)
            rc = cifar_load_all(files, nfiles, buf, total, err);
        int over = -1;
        for (int i = 0; !rc && i < nfiles && over < 0; i++)
            over = files[i].overflow ? i : -1;
        if (!rc && over < 0) {
            *out = buf;
            return ANAMO_OK;
        }
        anamo_free(buf);
        if (!rc && attempt > 0)
            rc = anamo_err_set(err, ANAMO_ERR_IO,
                               "%s: now holds more than the %llu bytes it held a "
                               "moment ago (did it change while being read?)",
                               files[over].path, (unsigned long long)files[over].hint);
        if (rc)
            return rc;
        for (int i = over; i < nfiles; i++)
            if (files[i].overflow)
                files[i].hint = files[i].got + files[i].extra;
    }
}

/* Moves each record's image to its place in n × 3072 and its label to labels. Record g goes to
 * g·3072 from at least g·3073, never ahead of where it was, so a forward pass in place is safe
 * (the label is taken before the image's move may cover it). */
static void cifar_compact(const cifar_file *files, int nfiles, uint8_t *buf, uint8_t *labels)
{
    uint64_t g = 0;
    for (int i = 0; i < nfiles; i++) {
        const uint64_t records = files[i].got / CIFAR_RECORD;
        for (uint64_t r = 0; r < records; r++, g++) {
            const uint8_t *rec = buf + files[i].offset + r * CIFAR_RECORD;
            labels[g] = rec[0];
            memmove(buf + g * CIFAR_PIXELS, rec + 1, CIFAR_PIXELS);
        }
    }
}

int cifar_read(const char *const *paths, int npaths, anamo_dataset *out, anamo_err *err)
{
    if (!paths || npaths < 1 || !out)
        return anamo_err_set(err, ANAMO_ERR_ARG,
                             "cifar10: paths (at least one) and out must not "
                             "be NULL");
    memset(out, 0, sizeof *out);
    cifar_file *files = calloc((size_t)npaths, sizeof *files);
    if (!files)
        return anamo_err_set(err, ANAMO_ERR_NOMEM, "cifar10: cannot allocate for %d files", npaths);
    int rc = ANAMO_OK;
    for (int i = 0; i < npaths && !rc; i++) {
        files[i].path = paths[i];
        rc = paths[i] ? cifar_stat(&files[i], err)
                      : anamo_err_set(err, ANAMO_ERR_ARG, "cifar10: path %d is NULL", i);
    }
    uint8_t *buf = NULL, *labels = NULL;
    if (!rc)
        rc = cifar_read_raw(files, npaths, &buf, err);
    int64_t n = 0;
    for (int i = 0; !rc && i < npaths; i++)
        n += (int64_t)(files[i].got / CIFAR_RECORD);
    if (!rc && !(labels = anamo_alloc((size_t)n)))
        rc = anamo_err_set(err, ANAMO_ERR_NOMEM, "%s: cannot allocate %lld labels", paths[0],
                           (long long)n);
    if (rc) {
        anamo_free(buf);
        free(files);
        return rc;
    }
    cifar_compact(files, npaths, buf, labels);
    free(files);
    *out = (anamo_dataset){.n = n,
                           .c = CIFAR_CHANNELS,
                           .h = CIFAR_SIDE,
                           .w = CIFAR_SIDE,
                           .dim = CIFAR_PIXELS,
                           .dtype = ANAMO_U8,
                           .data = buf,
                           .labels = labels};
    if (npaths == 1)
        snprintf(out->source, sizeof out->source, "%s", paths[0]);
    else
        snprintf(out->source, sizeof out->source, "%.200s and %d more", paths[0], npaths - 1);
    return ANAMO_OK;
}

/* ---- cifar10:train and cifar10:test ------------------------------------------------------ */

static const char *const CIFAR_TRAIN[] = {"data_batch_1.bin", "data_batch_2.bin",
                                          "data_batch_3.bin", "data_batch_4.bin",
                                          "data_batch_5.bin"};
static const char *const CIFAR_TEST[] = {"test_batch.bin"};
#define CIFAR_MAX_FILES 5
/* Under the data root: ours (cifar10/ holding the tarball's folder), then the tarball's own. */
static const char *const CIFAR_DIRS[] = {"cifar10/cifar-10-batches-bin", "cifar-10-batches-bin"};
#define CIFAR_NDIRS 2

/* Looks for dir/name, then dir/name.gz; path gets the first that exists (whatever it is, so
 * the reader can say what is wrong with it). */
static int cifar_find(const char *dir, const char *name, char *path, size_t cap)
{
    static const char *const suffixes[] = {"", ".gz"};
    struct stat st;
    for (int i = 0; i < 2; i++) {
        int len = snprintf(path, cap, "%s/%s%s", dir, name, suffixes[i]);
        if (len > 0 && (size_t)len < cap && stat(path, &st) == 0)
            return 1;
    }
    return 0;
}

static int cifar_count_bits(unsigned mask)
{
    int bits = 0;
    for (; mask; mask &= mask - 1)
        bits++;
    return bits;
}

/* "a[.gz], b[.gz]" for the names whose bit is set in mask into list. */
static void cifar_names(const char *const *names, int count, unsigned mask, char *list, size_t cap)
{
    size_t used = 0;
    list[0] = '\0';
    for (int i = 0; i < count; i++)
        if (mask >> i & 1u) {
            int len = snprintf(list + used, cap - used, "%s%s[.gz]", used ? ", " : "", names[i]);
            if (len < 0 || (size_t)len >= cap - used)
                return;
            used += (size_t)len;
        }
}

int cifar_open(const char *split, const char *spec, const char *data_root, anamo_dataset *out,
               anamo_err *err)
{
    int train = strcmp(split, "train") == 0;
    if (!train && strcmp(split, "test") != 0)
        return anamo_err_set(err, ANAMO_ERR_ARG,
                             "%s: unknown split '%s'; use cifar10:train or "
                             "cifar10:test",
                             spec, split);
    const char *const *names = train ? CIFAR_TRAIN : CIFAR_TEST;
    const int count = train ? CIFAR_MAX_FILES : 1;
    char dirs[CIFAR_NDIRS][CIFAR_PATH_MAX], paths[CIFAR_MAX_FILES][CIFAR_PATH_MAX + 32];
    const char *list[CIFAR_MAX_FILES];
    unsigned missing[CIFAR_NDIRS];
    int best = 0, found = -1;
    for (int d = 0; d < CIFAR_NDIRS && found < 0; d++) {
        if (snprintf(dirs[d], sizeof dirs[d], "%s/%s", data_root, CIFAR_DIRS[d]) >=
            (int)sizeof dirs[d])
            return anamo_err_set(err, ANAMO_ERR_ARG, "%s: data root of %zu characters is too long",
                                 spec, strlen(data_root));
        missing[d] = 0;
        for (int i = 0; i < count; i++)
            if (!cifar_find(dirs[d], names[i], paths[i], sizeof paths[i]))
                missing[d] |= 1u << i;
        if (!missing[d])
            found = d;
        else if (cifar_count_bits(missing[d]) < cifar_count_bits(missing[best]))
            best = d;
    }
    if (found >= 0) {
        for (int i = 0; i < count; i++)
            list[i] = paths[i];
        int rc = cifar_read(list, count, out, err);
        if (rc && err)
            anamo_err_context(err, "%s", spec);
        return rc;
    }
    char wanted[512];
    cifar_names(names, count, missing[best], wanted, sizeof wanted);
    if (missing[best] != (1u << count) - 1)
        return anamo_err_set(err, ANAMO_ERR_IO,
                             "%s: %s has only some of the CIFAR-10 batches: "
                             "%s missing (the full set comes in %s)",
                             spec, dirs[best], wanted, CIFAR_URL);
    return anamo_err_set(err, ANAMO_ERR_IO,
                         "%s: cannot find %s in %s or %s (set ANAMO_DATA or "
                         "put the files there: download %s and extract it under $ANAMO_DATA/"
                         "cifar10/)",
                         spec, wanted, dirs[0], dirs[1], CIFAR_URL);
}
