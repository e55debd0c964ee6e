/* data.h — internal helpers shared by the dataset readers and the batcher. */
#ifndef ANAMO_DATA_DATA_H
#define ANAMO_DATA_DATA_H

#include "anamo.h"

/* Largest file size any reader accepts from a header's dimensions (guards against a hostile
 * header asking for a huge allocation). */
#define ANAMO_DATA_MAX_BYTES ((int64_t)16 << 30)

/* Copies rows idx[0..count) of ds into out (count × dim floats), bytes scaled by 1/255. */
void data_gather(const anamo_dataset *ds, const int64_t *idx, int64_t count, float *out);
/* Copies rows [first, first+count) of ds into out, bytes scaled by 1/255. */
void data_rows(const anamo_dataset *ds, int64_t first, int64_t count, float *out);

/* CIFAR-10 binary batches (cifar.c): each path a plain or gzipped file of 3073-byte records
 * (label, then 1024 red, green and blue bytes); one dataset of all their records in order,
 * 3 × 32 × 32 bytes each, labels kept. */
int cifar_read(const char *const *paths, int npaths, anamo_dataset *out, anamo_err *err);
/* cifar10:SPLIT (split "train" or "test"), looked up under data_root/cifar10/
 * cifar-10-batches-bin/, then data_root/cifar-10-batches-bin/; spec names it in messages. */
int cifar_open(const char *split, const char *spec, const char *data_root, anamo_dataset *out,
               anamo_err *err);

/* Opening and reading data files, plain or gzipped (read.c). A gzip stream is checked to its
 * end: a member cut short (in its data or its trailer), a CRC-32 or length that disagrees with
 * the data, bytes after the last member that are not another member are errors naming the file
 * and the offset in it. */
typedef struct data_src data_src;
/* Checks path is not a directory nor an empty regular file (expected names the format in
 * messages, e.g. "an IDX file") and opens it; *out is closed with data_src_close. */
int data_src_open(const char *path, const char *expected, data_src **out, anamo_err *err);
/* Reads up to len bytes into buf (NULL: reads and drops them); *got says how many came. A short
 * read means the file ended cleanly: the caller reports a shortfall with the offset and the
 * count it expected. A damaged stream is an error ("PATH: ..."). */
int data_src_read(data_src *src, void *buf, uint64_t len, uint64_t *got, anamo_err *err);
/* Reads on to the end of the file, so that a compressed stream's end is checked (every reader
 * calls this after the last byte it needs); *extra gets the count of bytes that were left. */
int data_src_end(data_src *src, uint64_t *extra, anamo_err *err);
void data_src_close(data_src *src);
/* The bytes the file can hold after what has been read: the rest of a plain file, or what
 * deflate's largest ratio (about 1032) makes of a gzip file. */
int64_t data_src_room(const data_src *src);
/* Makes room for need bytes in *buf (anamo_alloc'ed, capacity *cap, its first used bytes kept),
 * doubling towards limit; the first buffer (*buf NULL) has first bytes, at least 1 MiB, at most
 * limit. Returns 0, or the size it could not allocate (*buf and *cap then unchanged). */
int64_t data_reserve(uint8_t **buf, int64_t *cap, int64_t used, int64_t need, int64_t first,
                     int64_t limit);

#endif
