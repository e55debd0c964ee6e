/* comm.h — the communicator of data-parallel training: N processes, each with a contiguous
 * shard of every batch, sum their gradients with an all-reduce after each backward, and every
 * rank then takes the same optimizer step on the same (summed) gradient.
 *
 * No global state: a dist_comm is a value the program owns and passes down. Built with MPI
 * (ANAMO_HAVE_MPI, CMake's ANAMO_MPI) and started by mpirun/mpiexec, dist_init initializes MPI
 * and works on a duplicate of MPI_COMM_WORLD whose error handler is MPI_ERRORS_RETURN, so a
 * failing call comes back as an anamo_err naming the call and MPI's message. Otherwise
 * (built without MPI, or run as a plain program) it is rank 0 of 1 and never touches MPI;
 * every function then works as it would for one rank.
 *
 * bytes_reduced counts n · sizeof(element) for every all-reduce call, whatever the size and
 * however the call was chunked: the count is the same for 1 rank as for N, so a test can check
 * what each training step reduces without a second process.
 *
 * Splitting the work (dist_shard, dist_batch_share): items are split contiguously and
 * reproducibly, ranks 0 … n%size−1 one item more than the rest. When size does not divide a
 * batch B, the global batch stays B (the config's), rank r computes the mean gradient g_r of its
 * b_r = dist_batch_share(B, r, size) samples, and the ranks combine (b_r / B) · g_r by a sum:
 * Σ_r (b_r / B) g_r = (1/B) Σ_samples g, the whole batch's mean, exactly as one process would
 * take it (up to the order of float additions). A rank whose share is 0 (size > B) contributes
 * zeros to the sum and still takes part in it. */
#ifndef ANAMO_DIST_COMM_H
#define ANAMO_DIST_COMM_H

#include "core/err.h"

#include <stdint.h>

typedef struct dist_comm {
    int rank, size;
    int64_t bytes_reduced; /* Σ over all-reduce calls of n · sizeof(element) */
    int64_t reductions;    /* all-reduce calls */
    /* largest count of one MPI call (0: INT_MAX, MPI's int count); tests set it small to check
     * that a large buffer is reduced in pieces correctly */
    int64_t max_chunk;
    /* the MPI communicator (malloc'd MPI_Comm; NULL: one rank without MPI), kept behind a
     * pointer so that this struct is the same whether or not the includer sees mpi.h */
    void *mpi_comm;
    int owns_mpi; /* dist_init called MPI_Init_thread; dist_finalize calls MPI_Finalize */
} dist_comm;

/* Whether this library was built with MPI (1) or has the one-rank functions only (0). */
int dist_built_with_mpi(void);
/* "Open MPI v4.1.4 (built in)", or "not built in (…)" into out. */
void dist_describe(char *out, size_t size);

/* The number of processes the launcher says it started, from OMPI_COMM_WORLD_SIZE or PMI_SIZE
 * (0 when neither is set: not started by mpirun; PMIX_RANK alone counts as started, size 0). */
int dist_launched(int *size);

/* Fills *c. Started by mpirun (dist_launched) and built with MPI: initializes MPI (thread level
 * MPI_THREAD_FUNNELED: OpenMP threads compute, only the calling thread talks to MPI) unless
 * the program already did, and takes its rank and size. Otherwise rank 0 of 1. Started by
 * mpirun for more than one process but built without MPI: ANAMO_ERR_CONFIG (every process
 * would train alone on the whole data). argc/argv go to MPI_Init_thread (may be NULL). */
int dist_init(dist_comm *c, int *argc, char ***argv, anamo_err *err);
/* Frees the communicator and, when dist_init initialized MPI, finalizes it; *c becomes rank 0
 * of 1 again. Collective: every rank calls it. */
int dist_finalize(dist_comm *c, anamo_err *err);

/* buf[0 … n) ← Σ over ranks of buf[0 … n), in place, the same on every rank (pieces of at most
 * max_chunk elements). Counts n · 4 (n · 8) bytes in bytes_reduced. n < 0 or a NULL buf with
 * n > 0 is ANAMO_ERR_ARG, checked before any communication. */
int dist_allreduce_sum(dist_comm *c, float *buf, int64_t n, anamo_err *err);
int dist_allreduce_sum_double(dist_comm *c, double *buf, int64_t n, anamo_err *err);
/* buf[0 … n) bytes ← root's, on every rank. root must lie in [0, size). */
int dist_bcast_bytes(const dist_comm *c, void *buf, int64_t n, int root, anamo_err *err);
int dist_barrier(const dist_comm *c, anamo_err *err);
/* For main only (the library returns errors): ends every rank with code (MPI_Abort), or this
 * process when there is no MPI. Does not return. */
_Noreturn void dist_abort(const dist_comm *c, int code);

/* For src/dist's MPI calls: the error of MPI call `call` (rc not MPI_SUCCESS) as an anamo_err
 * naming the rank (size 0: before there is one) and MPI's message; returns its code. */
int dist_mpi_error(anamo_err *err, int rc, const char *call, int rank, int size);

/* Items [*first, *first + *count) of n for rank of size: n/size each, the first n%size ranks one
 * more, in rank order. ANAMO_ERR_ARG (first = count = 0) when n < 0, size < 1 or rank outside
 * [0, size). */
int dist_shard(int64_t n, int rank, int size, int64_t *first, int64_t *count);
/* rank's share of a batch of batch samples, by dist_shard's rule (see the header comment for
 * how gradients of unequal shares are combined); −1 when batch < 0, size < 1 or rank outside
 * [0, size). */
int dist_batch_share(int batch, int rank, int size);

#endif
