/* comm.c — the communicator of data-parallel training (comm.h): MPI when built with it
 * (ANAMO_HAVE_MPI) and started by mpirun, one rank without it. The split rules come first;
 * they need no MPI. */
#include "dist/comm.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef ANAMO_HAVE_MPI
#include <mpi.h>
#endif

/* ---- splitting the work ------------------------------------------------------------------ */

int dist_shard(int64_t n, int rank, int size, int64_t *first, int64_t *count)
{
    *first = *count = 0;
    if (n < 0 || size < 1 || rank < 0 || rank >= size)
        return ANAMO_ERR_ARG;
    const int64_t base = n / size, extra = n % size;
    *count = base + (rank < extra);
    *first = base * rank + (rank < extra ? rank : extra);
    return ANAMO_OK;
}

int dist_batch_share(int batch, int rank, int size)
{
    int64_t first, count;
    if (batch < 0 || dist_shard(batch, rank, size, &first, &count))
        return -1;
    return (int)count;
}

/* ---- who started us ---------------------------------------------------------------------- */

/* The positive integer value of environment variable name, else 0. */
static int env_positive(const char *name)
{
    const char *v = getenv(name);
    char *end;
    long x = v && *v ? strtol(v, &end, 10) : 0;
    return v && *v && !*end && x > 0 && x <= INT_MAX ? (int)x : 0;
}

int dist_launched(int *size)
{
    *size = env_positive("OMPI_COMM_WORLD_SIZE");
    if (!*size)
        *size = env_positive("PMI_SIZE");
    return *size > 0 || getenv("PMIX_RANK") != NULL;
}

int dist_built_with_mpi(void)
{
#ifdef ANAMO_HAVE_MPI
    return 1;
#else
    return 0;
#endif
}

void dist_describe(char *out, size_t size)
{
#ifdef ANAMO_HAVE_MPI
    char v[MPI_MAX_LIBRARY_VERSION_STRING] = "";
    int len = 0;
    if (MPI_Get_library_version(v, &len) != MPI_SUCCESS)
        len = 0;
    v[len < (int)sizeof v ? len : (int)sizeof v - 1] = '\0';
    snprintf(out, size, "%.*s (built in)", (int)strcspn(v, ",\n"), len ? v : "MPI");
#else
    snprintf(out, size, "not built in (configure with -DANAMO_MPI=ON, libopenmpi-dev installed)");
#endif
}

static void one_rank(dist_comm *c)
{
    memset(c, 0, sizeof *c);
    c->rank = 0, c->size = 1;
}

/* ---- MPI --------------------------------------------------------------------------------- */
#ifdef ANAMO_HAVE_MPI

int dist_mpi_error(anamo_err *err, int rc, const char *call, int rank, int size)
{
    char msg[MPI_MAX_ERROR_STRING], where[48] = "";
    int len = 0;
    if (MPI_Error_string(rc, msg, &len) != MPI_SUCCESS)
        len = 0;
    msg[len] = '\0';
    if (size > 0)
        snprintf(where, sizeof where, " (rank %d of %d)", rank, size);
    return anamo_err_set(err, ANAMO_ERR_IO, "%s%s: %s (MPI error %d)", call, where,
                         len ? msg : "no message", rc);
}

static MPI_Comm comm_of(const dist_comm *c) { return *(MPI_Comm *)c->mpi_comm; }

/* MPI_Init_thread unless the program initialized MPI itself; sets c->owns_mpi. */
static int mpi_start(dist_comm *c, int *argc, char ***argv, anamo_err *err)
{
    int ready = 0, provided = 0;
    MPI_Initialized(&ready);
    if (ready)
        return ANAMO_OK;
    int rc = MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided);
    if (rc != MPI_SUCCESS)
        return dist_mpi_error(err, rc, "MPI_Init_thread", 0, 0);
    c->owns_mpi = 1;
    if (provided < MPI_THREAD_FUNNELED)
        return anamo_err_set(err, ANAMO_ERR_CONFIG,
                             "MPI_Init_thread: this MPI gives thread level %d, below "
                             "MPI_THREAD_FUNNELED (%d) that OpenMP's threads need",
                             provided, MPI_THREAD_FUNNELED);
    return ANAMO_OK;
}

/* Our own duplicate of MPI_COMM_WORLD, errors on it returned rather than fatal; rank, size. */
static int mpi_comm_open(dist_comm *c, anamo_err *err)
{
    MPI_Comm *comm = malloc(sizeof *comm);
    if (!comm)
        return anamo_err_set(err, ANAMO_ERR_NOMEM, "dist_init: out of memory");
    int rc = MPI_Comm_dup(MPI_COMM_WORLD, comm);
    if (rc != MPI_SUCCESS) {
        free(comm);
        return dist_mpi_error(err, rc, "MPI_Comm_dup", 0, 0);
    }
    c->mpi_comm = comm;
    rc = MPI_Comm_set_errhandler(*comm, MPI_ERRORS_RETURN);
    if (rc != MPI_SUCCESS)
        return dist_mpi_error(err, rc, "MPI_Comm_set_errhandler", 0, 0);
    MPI_Comm_rank(*comm, &c->rank);
    MPI_Comm_size(*comm, &c->size);
    return ANAMO_OK;
}

/* Frees the communicator (if any) and finalizes MPI if dist_init initialized it. */
static int mpi_finalize(dist_comm *c, anamo_err *err)
{
    int status = ANAMO_OK, rc;
    if (c->mpi_comm && (rc = MPI_Comm_free((MPI_Comm *)c->mpi_comm)) != MPI_SUCCESS)
        status = dist_mpi_error(err, rc, "MPI_Comm_free", c->rank, c->size);
    free(c->mpi_comm);
    c->mpi_comm = NULL;
    if (c->owns_mpi && (rc = MPI_Finalize()) != MPI_SUCCESS && !status)
        status = dist_mpi_error(err, rc, "MPI_Finalize", c->rank, c->size);
    c->owns_mpi = 0;
    return status;
}

static int mpi_init(dist_comm *c, int *argc, char ***argv, anamo_err *err)
{
    int rc = mpi_start(c, argc, argv, err);
    if (!rc)
        rc = mpi_comm_open(c, err);
    if (rc) {
        mpi_finalize(c, NULL);
        one_rank(c);
    }
    return rc;
}

/* MPI_Allreduce(MPI_IN_PLACE, …, MPI_SUM) over n elements of esize bytes, in pieces. */
static int mpi_allreduce(const dist_comm *c, void *buf, int64_t n, MPI_Datatype type, size_t esize,
                         const char *what, anamo_err *err)
{
    const int64_t piece = c->max_chunk > 0 && c->max_chunk < INT_MAX ? c->max_chunk : INT_MAX;
    char *p = buf;
    for (int64_t done = 0; done < n;) {
        const int k = (int)(n - done < piece ? n - done : piece);
        int rc = MPI_Allreduce(MPI_IN_PLACE, p + (size_t)done * esize, k, type, MPI_SUM,
                               comm_of(c));
        if (rc != MPI_SUCCESS) {
            dist_mpi_error(err, rc, "MPI_Allreduce", c->rank, c->size);
            return anamo_err_context(err, "%s: elements [%lld, %lld) of %lld", what,
                                     (long long)done, (long long)(done + k), (long long)n);
        }
        done += k;
    }
    return ANAMO_OK;
}

#endif /* ANAMO_HAVE_MPI */

/* ---- the interface ----------------------------------------------------------------------- */

int dist_init(dist_comm *c, int *argc, char ***argv, anamo_err *err)
{
    int size = 0;
    const int launched = dist_launched(&size);
    one_rank(c);
#ifdef ANAMO_HAVE_MPI
    if (launched)
        return mpi_init(c, argc, argv, err);
#else
    /* a launcher that gives no size but a rank above 0 started several processes too */
    if (launched && (size > 1 || (size == 0 && env_positive("PMIX_RANK") > 0))) {
        char count[24] = "several";
        if (size > 1)
            snprintf(count, sizeof count, "%d", size);
        return anamo_err_set(err, ANAMO_ERR_CONFIG,
                             "started by mpirun (%s processes) but this anamo was built without "
                             "MPI: each would train alone on all the data (configure with "
                             "-DANAMO_MPI=ON and libopenmpi-dev installed)",
                             count);
    }
#endif
    return ANAMO_OK;
}

int dist_finalize(dist_comm *c, anamo_err *err)
{
    int rc = ANAMO_OK;
#ifdef ANAMO_HAVE_MPI
    if (c->mpi_comm)
        rc = mpi_finalize(c, err);
#endif
    one_rank(c);
    return rc;
}

/* Checks an all-reduce's arguments and counts its bytes; ANAMO_OK to go on. */
static int reduce_begin(dist_comm *c, const void *buf, int64_t n, size_t esize, const char *what,
                        anamo_err *err)
{
    if (n < 0 || (n > 0 && !buf))
        return anamo_err_set(err, ANAMO_ERR_ARG, "%s: %lld elements at %s", what, (long long)n,
                             buf ? "a buffer" : "NULL");
    if (n > INT64_MAX / (int64_t)esize - c->bytes_reduced)
        return anamo_err_set(err, ANAMO_ERR_ARG, "%s: byte count overflows", what);
    c->bytes_reduced += n * (int64_t)esize;
    c->reductions++;
    return ANAMO_OK;
}

int dist_allreduce_sum(dist_comm *c, float *buf, int64_t n, anamo_err *err)
{
    int rc = reduce_begin(c, buf, n, sizeof *buf, "dist_allreduce_sum", err);
#ifdef ANAMO_HAVE_MPI
    if (!rc && c->mpi_comm)
        rc = mpi_allreduce(c, buf, n, MPI_FLOAT, sizeof *buf, "dist_allreduce_sum", err);
#endif
    return rc;
}

int dist_allreduce_sum_double(dist_comm *c, double *buf, int64_t n, anamo_err *err)
{
    int rc = reduce_begin(c, buf, n, sizeof *buf, "dist_allreduce_sum_double", err);
#ifdef ANAMO_HAVE_MPI
    if (!rc && c->mpi_comm)
        rc = mpi_allreduce(c, buf, n, MPI_DOUBLE, sizeof *buf, "dist_allreduce_sum_double", err);
#endif
    return rc;
}

int dist_bcast_bytes(const dist_comm *c, void *buf, int64_t n, int root, anamo_err *err)
{
    if (n < 0 || (n > 0 && !buf) || root < 0 || root >= c->size)
        return anamo_err_set(err, ANAMO_ERR_ARG,
                             "dist_bcast_bytes: %lld bytes from root %d of %d ranks", (long long)n,
                             root, c->size);
#ifdef ANAMO_HAVE_MPI
    const int64_t piece = c->max_chunk > 0 && c->max_chunk < INT_MAX ? c->max_chunk : INT_MAX;
    for (int64_t done = 0; c->mpi_comm && done < n;) {
        const int k = (int)(n - done < piece ? n - done : piece);
        int rc = MPI_Bcast((char *)buf + done, k, MPI_BYTE, root, comm_of(c));
        if (rc != MPI_SUCCESS)
            return dist_mpi_error(err, rc, "MPI_Bcast", c->rank, c->size);
        done += k;
    }
#endif
    return ANAMO_OK;
}

int dist_barrier(const dist_comm *c, anamo_err *err)
{
#ifdef ANAMO_HAVE_MPI
    int rc = c->mpi_comm ? MPI_Barrier(comm_of(c)) : MPI_SUCCESS;
    if (rc != MPI_SUCCESS)
        return dist_mpi_error(err, rc, "MPI_Barrier", c->rank, c->size);
#else
    (void)c, (void)err;
#endif
    return ANAMO_OK;
}

_Noreturn void dist_abort(const dist_comm *c, int code)
{
#ifdef ANAMO_HAVE_MPI
    if (c->mpi_comm)
        MPI_Abort(comm_of(c), code);
#else
    (void)c;
#endif
    exit(code); /* MPI_Abort may return; one rank ends here either way */
}
