/* data.h — internal helpers shared by the dataset readers and the batcher. */
#ifndef ANAMO_DATA_DATA_H
#define ANAMO_DATA_DATA_H

#include "anamo.h"

/* Largest file size any reader accepts from a header's dimensions (guards against a hostile
 * header asking for a huge allocation). */
#define ANAMO_DATA_MAX_BYTES ((int64_t)16 << 30)

/* Copies rows idx[0..count) of ds into out (count × dim floats), bytes scaled by 1/255. */
void anamo_data_gather(const anamo_dataset *ds, const int64_t *idx, int64_t count, float *out);
/* Copies rows [first, first+count) of ds into out, bytes scaled by 1/255. */
void anamo_data_rows(const anamo_dataset *ds, int64_t first, int64_t count, float *out);

/* CIFAR-10 binary batches (cifar.c): each path a plain or gzipped file of 3073-byte records
 * (label, then 1024 red, green and blue bytes); one dataset of all their records in order,
 * 3 × 32 × 32 bytes each, labels kept. */
int anamo_cifar_read(const char *const *paths, int npaths, anamo_dataset *out, anamo_err *err);
/* cifar10:SPLIT (split "train" or "test"), looked up under data_root/cifar10/
 * cifar-10-batches-bin/, then data_root/cifar-10-batches-bin/; spec names it in messages. */
int anamo_cifar_open(const char *split, const char *spec, const char *data_root,
                     anamo_dataset *out, anamo_err *err);

#endif
