/* test_comm.c — the communicator of data-parallel training (src/dist/comm.c).
 *
 * Run alone (CTest test_comm): the split rules against their closed forms (every item exactly
 * once, in rank order, shares differing by at most one, the first n%size ranks the larger), the
 * weighted combination of unequal shares against the whole batch's mean, and the one-rank
 * communicator a program gets when it was not started by mpirun.
 *
 * Run by mpiexec with ANAMO_TEST_COMM_NP=N set (CTest test_comm_mpi2, N = 2), every rank runs
 * the collective tests: sums whose exact values each rank knows (integers and quarters, exact
 * in float far below 2^24), reduced whole and in small pieces, the byte counter, broadcasts
 * from each root, the double sum. Built without MPI, each rank checks instead that dist_init
 * refuses to train alone. All comparisons are exact: the inputs are chosen so no sum rounds. */
#include "test_util.h"

#include "dist/comm.h"

#define FLOAT_N (1000000 + 3) /* not a multiple of any piece size below */
#define DOUBLE_N (100000 + 7)
#define BCAST_N (1000000 + 5)
#define SMALL_PIECE 4093 /* a prime: the last piece is a partial one */

/* ---- the split rules --------------------------------------------------------------------- */

/* dist_shard over every rank of size: contiguous from 0 to n in rank order, sizes n/size or
 * n/size + 1, the first n%size ranks the larger. */
static void expect_shards(int64_t n, int size)
{
    int64_t next = 0;
    for (int r = 0; r < size; r++) {
        int64_t first = -1, count = -1;
        assert_int_equal(dist_shard(n, r, size, &first, &count), ANAMO_OK);
        const int64_t want = n / size + (r < n % size ? 1 : 0);
        if (first != next || count != want)
            fail_msg("n %lld size %d rank %d: [%lld, +%lld), want [%lld, +%lld)", (long long)n,
                     size, r, (long long)first, (long long)count, (long long)next, (long long)want);
        next += count;
    }
    assert_int_equal(next, n); /* with contiguity: every item exactly once */
}

static void test_shard_closed_form(void **state)
{
    (void)state;
    for (int64_t n = 0; n <= 300; n++)
        for (int size = 1; size <= 70; size++)
            expect_shards(n, size);
    const int64_t big[] = {60000, 50000, (int64_t)INT32_MAX + 3, INT64_MAX / 2 + 1, INT64_MAX};
    const int sizes[] = {1, 2, 3, 7, 64, 1000, 65537};
    for (size_t i = 0; i < sizeof big / sizeof big[0]; i++)
        for (size_t j = 0; j < sizeof sizes / sizeof sizes[0]; j++)
            expect_shards(big[i], sizes[j]);
    /* the largest size at the ranks where the rule turns: no overflow, the last shard ends at n */
    const int64_t n = INT64_MAX, base = n / INT32_MAX, extra = n % INT32_MAX;
    const int ranks[] = {0, (int)extra - 1, (int)extra, INT32_MAX - 1};
    for (size_t k = 0; k < sizeof ranks / sizeof ranks[0]; k++) {
        int64_t first, count;
        const int r = ranks[k];
        assert_int_equal(dist_shard(n, r, INT32_MAX, &first, &count), ANAMO_OK);
        assert_int_equal(count, base + (r < extra));
        assert_int_equal(first, base * r + (r < extra ? r : extra));
    }
    int64_t first, count;
    assert_int_equal(dist_shard(n, INT32_MAX - 1, INT32_MAX, &first, &count), ANAMO_OK);
    assert_int_equal(first + count, n);
}

static void test_shard_bad_arguments(void **state)
{
    (void)state;
    int64_t first = 5, count = 5;
    assert_int_equal(dist_shard(-1, 0, 2, &first, &count), ANAMO_ERR_ARG);
    assert_true(first == 0 && count == 0);
    assert_int_equal(dist_shard(10, 0, 0, &first, &count), ANAMO_ERR_ARG);
    assert_int_equal(dist_shard(10, 2, 2, &first, &count), ANAMO_ERR_ARG);
    assert_int_equal(dist_shard(10, -1, 2, &first, &count), ANAMO_ERR_ARG);
    assert_int_equal(dist_batch_share(-1, 0, 2), -1);
    assert_int_equal(dist_batch_share(125, 3, 3), -1);
    assert_int_equal(dist_batch_share(125, 0, 0), -1);
}

/* Shares sum to the batch, differ by at most one, the larger first; equal to dist_shard's. */
static void test_batch_share(void **state)
{
    (void)state;
    for (int batch = 0; batch <= 600; batch++) {
        for (int size = 1; size <= 70; size++) {
            int sum = 0, lo = batch, hi = 0, prev = batch;
            for (int r = 0; r < size; r++) {
                const int b = dist_batch_share(batch, r, size);
                int64_t first, count;
                assert_int_equal(dist_shard(batch, r, size, &first, &count), ANAMO_OK);
                assert_int_equal(b, count);
                assert_true(b <= prev); /* rank order: larger shares first */
                sum += b, prev = b;
                lo = b < lo ? b : lo, hi = b > hi ? b : hi;
            }
            if (sum != batch || hi - lo > 1)
                fail_msg("batch %d size %d: shares sum to %d, spread %d", batch, size, sum,
                         hi - lo);
        }
    }
    assert_int_equal(dist_batch_share(125, 0, 2), 63); /* the main job's batch */
    assert_int_equal(dist_batch_share(125, 1, 2), 62);
    assert_int_equal(dist_batch_share(125, 7, 8), 15); /* 5 ranks of 16, 3 of 15 */
    assert_int_equal(dist_batch_share(125, 4, 8), 16);
    assert_int_equal(dist_batch_share(2, 2, 3), 0); /* more ranks than samples */
}

/* The documented rule: rank r's mean gradient g_r over its b_r samples, weighted by b_r / B and
 * summed over ranks, is the whole batch's mean. Per-sample "gradients" are integers, so each
 * side is computed exactly in double (B ≤ 600, values < 2^20) apart from the division: the
 * tolerance is a few ulps of the mean. */
static void test_weighted_shares_give_batch_mean(void **state)
{
    (void)state;
    const int batches[] = {1, 2, 7, 125, 128, 600};
    const int sizes[] = {1, 2, 3, 4, 8, 16, 64};
    double g[600];
    for (int i = 0; i < 600; i++)
        g[i] = (double)((i * 7919) % 1000003 % 4096) - 2000.0;
    for (size_t i = 0; i < sizeof batches / sizeof batches[0]; i++) {
        const int B = batches[i];
        double whole = 0.0;
        for (int s = 0; s < B; s++)
            whole += g[s];
        whole /= B;
        for (size_t j = 0; j < sizeof sizes / sizeof sizes[0]; j++) {
            double combined = 0.0;
            for (int r = 0; r < sizes[j]; r++) {
                int64_t first, b;
                assert_int_equal(dist_shard(B, r, sizes[j], &first, &b), ANAMO_OK);
                double local = 0.0;
                for (int64_t s = first; s < first + b; s++)
                    local += g[s];
                if (b > 0)
                    combined += ((double)b / B) * (local / (double)b);
            }
            expect_close("weighted mean", B * 100 + sizes[j], combined, whole, 1e-14, 1e-12);
        }
    }
}

/* ---- one rank, no mpirun ----------------------------------------------------------------- */

static void test_one_rank(void **state)
{
    (void)state;
    dist_comm c;
    anamo_err err = {0};
    int launched_size;
    assert_false(dist_launched(&launched_size)); /* CTest runs this one without mpirun */
    assert_int_equal(dist_init(&c, NULL, NULL, &err), ANAMO_OK);
    assert_int_equal(c.rank, 0);
    assert_int_equal(c.size, 1);
    assert_null(c.mpi_comm); /* MPI is not touched */
    float x[5] = {1.5f, -2.0f, 0.0f, 3.25f, 1e30f};
    const float want[5] = {1.5f, -2.0f, 0.0f, 3.25f, 1e30f};
    assert_int_equal(dist_allreduce_sum(&c, x, 5, &err), ANAMO_OK);
    assert_memory_equal(x, want, sizeof x); /* the sum over one rank */
    double d[3] = {1.0, 2.0, 3.0};
    assert_int_equal(dist_allreduce_sum_double(&c, d, 3, &err), ANAMO_OK);
    assert_true(d[0] == 1.0 && d[1] == 2.0 && d[2] == 3.0);
    /* counted as N ranks would count them: 5 floats and 3 doubles */
    assert_int_equal(c.bytes_reduced, 5 * 4 + 3 * 8);
    assert_int_equal(c.reductions, 2);
    assert_int_equal(dist_allreduce_sum(&c, NULL, 0, &err), ANAMO_OK); /* empty: counts 0 */
    assert_int_equal(c.bytes_reduced, 5 * 4 + 3 * 8);
    char bytes[4] = "abc";
    assert_int_equal(dist_bcast_bytes(&c, bytes, 4, 0, &err), ANAMO_OK);
    assert_string_equal(bytes, "abc");
    assert_int_equal(dist_barrier(&c, &err), ANAMO_OK);
    assert_int_equal(dist_finalize(&c, &err), ANAMO_OK);
    assert_int_equal(c.size, 1);
}

static void test_one_rank_bad_arguments(void **state)
{
    (void)state;
    dist_comm c;
    anamo_err err = {0};
    assert_int_equal(dist_init(&c, NULL, NULL, &err), ANAMO_OK);
    float x = 1.0f;
    assert_int_equal(dist_allreduce_sum(&c, &x, -1, &err), ANAMO_ERR_ARG);
    assert_non_null(strstr(err.msg, "dist_allreduce_sum: -1 elements"));
    assert_int_equal(dist_allreduce_sum_double(&c, NULL, 3, &err), ANAMO_ERR_ARG);
    assert_non_null(strstr(err.msg, "NULL"));
    assert_int_equal(c.bytes_reduced, 0); /* refused calls count nothing */
    assert_int_equal(dist_bcast_bytes(&c, &x, 4, 1, &err), ANAMO_ERR_ARG);
    assert_non_null(strstr(err.msg, "root 1 of 1"));
    assert_int_equal(dist_finalize(&c, &err), ANAMO_OK);
}

/* Built without MPI, a launcher's environment for two processes is refused (each would train
 * alone on all the data); for one it is rank 0 of 1. With MPI built in the same environment
 * would start MPI for real, so this runs only without it. */
static void test_without_mpi_refuses_mpirun(void **state)
{
    (void)state;
    if (dist_built_with_mpi())
        skip();
    dist_comm c;
    anamo_err err = {0};
    assert_int_equal(setenv("OMPI_COMM_WORLD_SIZE", "2", 1), 0);
    assert_int_equal(dist_init(&c, NULL, NULL, &err), ANAMO_ERR_CONFIG);
    assert_non_null(strstr(err.msg, "built without MPI"));
    assert_int_equal(c.size, 1);
    assert_int_equal(setenv("OMPI_COMM_WORLD_SIZE", "1", 1), 0);
    assert_int_equal(dist_init(&c, NULL, NULL, &err), ANAMO_OK);
    assert_int_equal(c.size, 1);
    unsetenv("OMPI_COMM_WORLD_SIZE");
    assert_int_equal(setenv("PMI_SIZE", "4", 1), 0);
    assert_int_equal(dist_init(&c, NULL, NULL, &err), ANAMO_ERR_CONFIG);
    assert_non_null(strstr(err.msg, "(4 processes)"));
    unsetenv("PMI_SIZE");
    /* PMIx gives a rank only: rank 0 may be alone, a higher rank is not */
    assert_int_equal(setenv("PMIX_RANK", "0", 1), 0);
    assert_int_equal(dist_init(&c, NULL, NULL, &err), ANAMO_OK);
    assert_int_equal(setenv("PMIX_RANK", "3", 1), 0);
    assert_int_equal(dist_init(&c, NULL, NULL, &err), ANAMO_ERR_CONFIG);
    unsetenv("PMIX_RANK");
}

/* ---- N ranks under mpiexec --------------------------------------------------------------- */

typedef struct mpi_fixture {
    dist_comm c;
    int want_size;
} mpi_fixture;

static int mpi_setup(void **state)
{
    mpi_fixture *fx = calloc(1, sizeof *fx);
    anamo_err err = {0};
    if (!fx)
        return -1;
    fx->want_size = atoi(getenv("ANAMO_TEST_COMM_NP"));
    if (dist_init(&fx->c, NULL, NULL, &err)) {
        fprintf(stderr, "dist_init: %s\n", err.msg);
        free(fx);
        return -1;
    }
    *state = fx;
    return 0;
}

static int mpi_teardown(void **state)
{
    mpi_fixture *fx = *state;
    anamo_err err = {0};
    int rc = dist_finalize(&fx->c, &err);
    if (rc)
        fprintf(stderr, "dist_finalize: %s\n", err.msg);
    free(fx);
    return rc ? -1 : 0;
}

/* The size mpiexec was asked for (not a silent fall-back to one rank), and distinct ranks: a
 * one-hot vector at each rank sums to all ones. */
static void test_mpi_ranks(void **state)
{
    mpi_fixture *fx = *state;
    dist_comm *c = &fx->c;
    anamo_err err = {0};
    assert_int_equal(c->size, fx->want_size);
    assert_non_null(c->mpi_comm);
    assert_true(c->rank >= 0 && c->rank < c->size);
    double *hot = calloc((size_t)c->size, sizeof *hot);
    assert_non_null(hot);
    hot[c->rank] = 1.0;
    if (dist_allreduce_sum_double(c, hot, c->size, &err))
        fail_msg("%s", err.msg);
    for (int r = 0; r < c->size; r++)
        if (hot[r] != 1.0)
            fail_msg("rank %d: slot %d holds %g, want 1 (ranks not distinct)", c->rank, r, hot[r]);
    free(hot);
    assert_int_equal(dist_barrier(c, &err), ANAMO_OK);
}

/* Element i of rank r: an integer in [−2048, 2047] plus r quarters, so that a sum over up to
 * 64 ranks is exact in float and a misplaced piece changes the values. */
static float float_value(int64_t i, int r)
{
    return (float)((i * 37 + r * 1009) % 4096 - 2048) + 0.25f * (float)r;
}

static void expect_float_sums(const dist_comm *c, const float *x, int64_t n, const char *how)
{
    for (int64_t i = 0; i < n; i++) {
        double want = 0.0;
        for (int r = 0; r < c->size; r++)
            want += float_value(i, r);
        if ((double)x[i] != want)
            fail_msg("rank %d, %s: element %lld is %.9g, want %.9g", c->rank, how, (long long)i,
                     x[i], want);
    }
}

/* The float sum of 1e6+3 elements in place, whole and in pieces of SMALL_PIECE; each call
 * counts exactly n · 4 bytes, whatever the pieces. */
static void test_mpi_allreduce_float(void **state)
{
    mpi_fixture *fx = *state;
    dist_comm *c = &fx->c;
    anamo_err err = {0};
    float *x = malloc(FLOAT_N * sizeof *x);
    assert_non_null(x);
    const char *how[2] = {"one piece", "pieces of 4093"};
    for (int pass = 0; pass < 2; pass++) {
        c->max_chunk = pass ? SMALL_PIECE : 0;
        for (int64_t i = 0; i < FLOAT_N; i++)
            x[i] = float_value(i, c->rank);
        const int64_t before = c->bytes_reduced, calls = c->reductions;
        if (dist_allreduce_sum(c, x, FLOAT_N, &err))
            fail_msg("%s", err.msg);
        assert_int_equal(c->bytes_reduced - before, (int64_t)FLOAT_N * 4);
        assert_int_equal(c->reductions - calls, 1);
        expect_float_sums(c, x, FLOAT_N, how[pass]);
    }
    c->max_chunk = 0;
    free(x);
}

/* Doubles: integers up to 2^40 plus r halves, exact in double; n · 8 bytes counted. */
static void test_mpi_allreduce_double(void **state)
{
    mpi_fixture *fx = *state;
    dist_comm *c = &fx->c;
    anamo_err err = {0};
    double *x = malloc(DOUBLE_N * sizeof *x);
    assert_non_null(x);
    c->max_chunk = SMALL_PIECE;
    for (int64_t i = 0; i < DOUBLE_N; i++)
        x[i] = (double)(i * 10995116277LL % 1099511627776LL) + 0.5 * c->rank;
    const int64_t before = c->bytes_reduced;
    if (dist_allreduce_sum_double(c, x, DOUBLE_N, &err))
        fail_msg("%s", err.msg);
    c->max_chunk = 0;
    assert_int_equal(c->bytes_reduced - before, (int64_t)DOUBLE_N * 8);
    const double halves = 0.5 * c->size * (c->size - 1) / 2.0;
    for (int64_t i = 0; i < DOUBLE_N; i++) {
        const double want = (double)(i * 10995116277LL % 1099511627776LL) * c->size + halves;
        if (x[i] != want)
            fail_msg("rank %d: element %lld is %.17g, want %.17g", c->rank, (long long)i, x[i],
                     want);
    }
    free(x);
}

/* From every root in turn: the root's bytes (a pattern naming the root) reach every rank over
 * whatever the rank held, whole and in pieces. */
static void test_mpi_bcast(void **state)
{
    mpi_fixture *fx = *state;
    dist_comm *c = &fx->c;
    anamo_err err = {0};
    unsigned char *b = malloc(BCAST_N);
    assert_non_null(b);
    for (int root = 0; root < c->size; root++) {
        c->max_chunk = root % 2 ? SMALL_PIECE : 0;
        for (int64_t i = 0; i < BCAST_N; i++)
            b[i] = c->rank == root ? (unsigned char)((i * 131 + root) & 0xff) : 0xee;
        if (dist_bcast_bytes(c, b, BCAST_N, root, &err))
            fail_msg("%s", err.msg);
        for (int64_t i = 0; i < BCAST_N; i++)
            if (b[i] != (unsigned char)((i * 131 + root) & 0xff))
                fail_msg("rank %d, root %d: byte %lld is %d", c->rank, root, (long long)i, b[i]);
    }
    c->max_chunk = 0;
    assert_int_equal(dist_bcast_bytes(c, b, 1, c->size, &err), ANAMO_ERR_ARG);
    free(b);
}

/* Built without MPI but started by mpiexec for several processes: each refuses to go on. */
static int run_mpi_refusal(void)
{
    dist_comm c;
    anamo_err err = {0};
    int rc = dist_init(&c, NULL, NULL, &err);
    if (rc == ANAMO_ERR_CONFIG && strstr(err.msg, "built without MPI")) {
        printf("built without MPI: dist_init refuses mpiexec's %s processes, as it should\n",
               getenv("ANAMO_TEST_COMM_NP"));
        return 0;
    }
    fprintf(stderr, "built without MPI, under mpiexec: dist_init gave %d (%s)\n", rc, err.msg);
    return 1;
}

int main(void)
{
    if (getenv("ANAMO_TEST_COMM_NP")) {
        if (!dist_built_with_mpi())
            return run_mpi_refusal();
        const struct CMUnitTest mpi_tests[] = {
            cmocka_unit_test(test_mpi_ranks),
            cmocka_unit_test(test_mpi_allreduce_float),
            cmocka_unit_test(test_mpi_allreduce_double),
            cmocka_unit_test(test_mpi_bcast),
        };
        return cmocka_run_group_tests(mpi_tests, mpi_setup, mpi_teardown);
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shard_closed_form),
        cmocka_unit_test(test_shard_bad_arguments),
        cmocka_unit_test(test_batch_share),
        cmocka_unit_test(test_weighted_shares_give_batch_mean),
        cmocka_unit_test(test_one_rank),
        cmocka_unit_test(test_one_rank_bad_arguments),
        cmocka_unit_test(test_without_mpi_refuses_mpirun),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
