/* gather.c — the largest value over the ranks, and a batch's rows gathered (gather.h). One rank,
 * or a build without MPI: both leave the buffer as it is. */
#include "dist/gather.h"

#include <limits.h>
#include <stdlib.h>

#ifdef ANAMO_HAVE_MPI
#include <mpi.h>

/* counts and displacements of n items split by dist_shard, times `unit` (malloc'd, 2·size). */
static int *shard_layout(const dist_comm *c, int64_t n, int64_t unit)
{
    int *counts = malloc(2 * (size_t)c->size * sizeof *counts);
    for (int r = 0; counts && r < c->size; r++) {
        int64_t first, count;
        dist_shard(n, r, c->size, &first, &count);
        counts[r] = (int)(count * unit), counts[c->size + r] = (int)(first * unit);
    }
    return counts;
}
#endif

int dist_allreduce_max_int64(const dist_comm *c, int64_t *buf, int64_t n, anamo_err *err)
{
    if (n < 0 || (n > 0 && !buf) || n > INT_MAX)
        return anamo_err_set(err, ANAMO_ERR_ARG, "all-reduce max: %lld elements at %p",
                             (long long)n, (void *)buf);
    if (c->size == 1 || n == 0)
        return ANAMO_OK;
#ifdef ANAMO_HAVE_MPI
    int rc = MPI_Allreduce(MPI_IN_PLACE, buf, (int)n, MPI_INT64_T, MPI_MAX,
                           *(MPI_Comm *)c->mpi_comm);
    return rc == MPI_SUCCESS ? ANAMO_OK
                             : dist_mpi_error(err, rc, "MPI_Allreduce (max)", c->rank, c->size);
#else
    return anamo_err_set(err, ANAMO_ERR_CONFIG, "all-reduce max: %d ranks without MPI", c->size);
#endif
}

int dist_allgather_u64(const dist_comm *c, uint64_t *words, int64_t n, anamo_err *err)
{
    if (n < 0 || (n > 0 && !words) || n > INT_MAX)
        return anamo_err_set(err, ANAMO_ERR_ARG, "all-gather: %lld words at %p", (long long)n,
                             (void *)words);
    if (c->size == 1 || n == 0)
        return ANAMO_OK;
#ifdef ANAMO_HAVE_MPI
    int *counts = shard_layout(c, n, 1);
    if (!counts)
        return anamo_err_set(err, ANAMO_ERR_NOMEM, "all-gather: out of memory");
    int rc = MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, words, counts, counts + c->size,
                            MPI_UINT64_T, *(MPI_Comm *)c->mpi_comm);
    free(counts);
    return rc == MPI_SUCCESS ? ANAMO_OK
                             : dist_mpi_error(err, rc, "MPI_Allgatherv", c->rank, c->size);
#else
    return anamo_err_set(err, ANAMO_ERR_CONFIG, "all-gather: %d ranks without MPI", c->size);
#endif
}

int dist_allgather_batch(const dist_comm *c, float *buf, int batch, int64_t row, anamo_err *err)
{
    if (batch < 0 || row < 1 || (batch > 0 && !buf) || (int64_t)batch * row > INT_MAX)
        return anamo_err_set(err, ANAMO_ERR_ARG, "all-gather: %d rows of %lld floats at %p", batch,
                             (long long)row, (void *)buf);
    if (c->size == 1 || batch == 0)
        return ANAMO_OK;
#ifdef ANAMO_HAVE_MPI
    int *counts = shard_layout(c, batch, row);
    if (!counts)
        return anamo_err_set(err, ANAMO_ERR_NOMEM, "all-gather: out of memory");
    int rc = MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, buf, counts, counts + c->size,
                            MPI_FLOAT, *(MPI_Comm *)c->mpi_comm);
    free(counts);
    return rc == MPI_SUCCESS ? ANAMO_OK
                             : dist_mpi_error(err, rc, "MPI_Allgatherv", c->rank, c->size);
#else
    return anamo_err_set(err, ANAMO_ERR_CONFIG, "all-gather: %d ranks without MPI", c->size);
#endif
}
