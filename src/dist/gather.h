/* gather.h — the collectives data-parallel training needs beside comm.h's sums: the largest
 * value over the ranks, and the rows of a batch gathered from the ranks that computed them. */
#ifndef ANAMO_DIST_GATHER_H
#define ANAMO_DIST_GATHER_H

#include "dist/comm.h"

/* buf[0 … n) ← the largest over ranks of buf[0 … n), in place. */
int dist_allreduce_max_int64(const dist_comm *c, int64_t *buf, int64_t n, anamo_err *err);

/* A batch of `batch` rows of `row` floats in buf, of which this rank holds its share
 * (dist_shard's rows [first, first + count)) in place: after the call every rank holds every
 * row. */
int dist_allgather_batch(const dist_comm *c, float *buf, int batch, int64_t row, anamo_err *err);

/* words[0 … n) of which this rank holds its shard (dist_shard's [first, first + count)) in
 * place: after the call every rank holds all n. */
int dist_allgather_u64(const dist_comm *c, uint64_t *words, int64_t n, anamo_err *err);

#endif
