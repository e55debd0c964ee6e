/* test_code_cache.c — a decoder phase's code cache (src/train/code_cache.c), which keeps each
 * row as the mask of its entries that are not +0.0 and those entries.
 *
 * 1. Rows of every width around the 16-lane and 32-bit words (1 … 769), from all zeros to none,
 *    with −0.0, NaN, infinities and subnormals among them, put 7 at a time in a shuffled order
 *    (by number, and through an index array) come back bit for bit: one by one into a buffer
 *    that held other values, and all at once. The cache keeps ⌈dim/32⌉ mask words a row and
 *    exactly as many entries as the rows have that are not +0.0 (counted here from the bits).
 * 2. On a CPU with AVX-512 the 16-wide path writes the same span and offsets as the one-entry
 *    path, and each reads what the other wrote.
 * 3. After a clear, a second fill with other rows reads back the second fill's rows alone.
 * 4. A batch large enough for put and get to split its rows between the threads (100 × 769)
 *    comes back bit for bit, read in another order than it was put.
 * The truths are the rows themselves: no tolerance is involved. */
#include "test_util.h"

#include "train/trainer.h"

#define ROWS 37
#define PUT 7 /* rows a put takes */

/* Entry j of row i: one of the special patterns, +0.0 with probability 1 − density, or a
 * value of either sign. */
static float entry(uint64_t *state, double density)
{
    *state = *state * 6364136223846793005ULL + 1442695040888963407ULL;
    const double u = (double)(*state >> 11) / 9007199254740992.0;
    const unsigned pick = (unsigned)(*state >> 3) & 31u;
    static const uint32_t SPECIAL[] = {0x80000000u /* −0.0 */, 0x7fc00000u /* NaN */,
                                       0x7f800000u /* +∞ */, 0x00000001u /* subnormal */};
    if (pick < 4) {
        float f;
        memcpy(&f, &SPECIAL[pick], sizeof f);
        return f;
    }
    return u < density ? (float)(u - 0.5 * density) : 0.0f;
}

static int64_t not_plus_zero(const float *h, int64_t count)
{
    int64_t kept = 0;
    for (int64_t j = 0; j < count; j++) {
        uint32_t bits;
        memcpy(&bits, h + j, sizeof bits);
        kept += bits != 0;
    }
    return kept;
}

static void fill_rows(float *rows, int64_t dim, double density, uint64_t seed)
{
    uint64_t state = seed;
    for (int64_t k = 0; k < ROWS * dim; k++)
        rows[k] = entry(&state, density);
    for (int64_t j = 0; j < dim; j++) /* row 0 all +0.0, row 1 without one */
        rows[j] = 0.0f, rows[dim + j] = 1.0f + (float)j;
}

/* Puts the rows in a shuffled order, a few at a time (those of the first call by their number,
 * the others through an index array); checks what the cache kept and reads every row back. */
static void put_and_check(code_cache *c, const float *rows, float *out)
{
    const int64_t dim = c->dim;
    int64_t order[ROWS];
    for (int64_t i = 0; i < ROWS; i++)
        order[i] = i < PUT ? i : (i * 17 + 5) % (ROWS - PUT) + PUT; /* 17, 30 coprime */
    float *shuffled = malloc((size_t)(ROWS * dim) * sizeof *shuffled);
    assert_non_null(shuffled);
    for (int64_t i = 0; i < ROWS; i++)
        memcpy(shuffled + i * dim, rows + order[i] * dim, (size_t)dim * sizeof *rows);
    code_cache_clear(c);
    code_cache_put_rows(c, NULL, 0, PUT, shuffled);
    for (int64_t i = PUT; i < ROWS; i += PUT) {
        const int count = (int)(ROWS - i < PUT ? ROWS - i : PUT);
        code_cache_put_rows(c, order + i, 0, count, shuffled + i * dim);
    }
    free(shuffled);
    assert_int_equal(c->used, ROWS * c->words + not_plus_zero(rows, ROWS * dim));
    for (int64_t i = 0; i < ROWS; i++) {
        memset(out, 0xa5, (size_t)dim * sizeof *out);
        code_cache_get(c, i, out);
        if (memcmp(out, rows + i * dim, (size_t)dim * sizeof *out) != 0)
            fail_msg("dim %lld, row %lld: not the bits put", (long long)dim, (long long)i);
    }
    float *all = malloc((size_t)(ROWS * dim) * sizeof *all); /* the rows at once, reversed */
    int64_t reversed[ROWS];
    for (int64_t i = 0; i < ROWS; i++)
        reversed[i] = ROWS - 1 - i;
    assert_non_null(all);
    code_cache_get_rows(c, reversed, ROWS, all);
    for (int64_t i = 0; i < ROWS; i++)
        if (memcmp(all + i * dim, rows + reversed[i] * dim, (size_t)dim * sizeof *all) != 0)
            fail_msg("dim %lld, rows at once, row %lld: not the bits put", (long long)dim,
                     (long long)reversed[i]);
    free(all);
}

static const int64_t DIMS[] = {1, 15, 16, 17, 31, 32, 33, 63, 64, 65, 100, 768, 769};
static const double DENSITIES[] = {0.0, 0.3, 0.7, 1.0};

static void test_rows_come_back_bit_for_bit(void **state)
{
    (void)state;
    for (size_t d = 0; d < sizeof DIMS / sizeof DIMS[0]; d++) {
        const int64_t dim = DIMS[d];
        float *rows = malloc((size_t)(ROWS * dim) * sizeof *rows);
        float *out = malloc((size_t)dim * sizeof *out);
        assert_non_null(rows), assert_non_null(out);
        code_cache c;
        anamo_err err = {0};
        assert_int_equal(code_cache_init(&c, ROWS, dim, PUT, &err), ANAMO_OK);
        for (int path = 0; path < 2; path++) { /* the CPU's own path, then one entry at a time */
            c.avx512 = path == 0 ? c.avx512 : 0;
            for (size_t k = 0; k < sizeof DENSITIES / sizeof DENSITIES[0]; k++) {
                fill_rows(rows, dim, DENSITIES[k], 11 + k);
                put_and_check(&c, rows, out);
            }
        }
        code_cache_free(&c);
        free(rows), free(out);
    }
}

static void test_both_paths_write_the_same(void **state)
{
    (void)state;
    code_cache probe;
    anamo_err err = {0};
    assert_int_equal(code_cache_init(&probe, 1, 1, 1, &err), ANAMO_OK);
    const int has_avx512 = probe.avx512;
    code_cache_free(&probe);
    if (!has_avx512)
        skip(); /* this CPU has the one-entry path alone */
    for (size_t d = 0; d < sizeof DIMS / sizeof DIMS[0]; d++) {
        const int64_t dim = DIMS[d];
        float *rows = malloc((size_t)(ROWS * dim) * sizeof *rows);
        float *out = malloc((size_t)dim * sizeof *out);
        assert_non_null(rows), assert_non_null(out);
        fill_rows(rows, dim, 0.7, 5);
        code_cache wide, narrow;
        assert_int_equal(code_cache_init(&wide, ROWS, dim, ROWS, &err), ANAMO_OK);
        assert_int_equal(code_cache_init(&narrow, ROWS, dim, ROWS, &err), ANAMO_OK);
        narrow.avx512 = 0;
        code_cache_put_rows(&wide, NULL, 0, ROWS, rows);
        code_cache_put_rows(&narrow, NULL, 0, ROWS, rows);
        assert_int_equal(wide.used, narrow.used);
        assert_memory_equal(wide.start, narrow.start, (size_t)ROWS * sizeof *wide.start);
        assert_memory_equal(wide.span, narrow.span, (size_t)wide.used * sizeof *wide.span);
        for (int64_t i = 0; i < ROWS; i++) { /* each reads the other's rows, one by one */
            wide.avx512 = 0, narrow.avx512 = 1;
            code_cache_get(&wide, i, out);
            assert_memory_equal(out, rows + i * dim, (size_t)dim * sizeof *out);
            code_cache_get(&narrow, i, out);
            assert_memory_equal(out, rows + i * dim, (size_t)dim * sizeof *out);
        }
        code_cache_free(&wide), code_cache_free(&narrow);
        free(rows), free(out);
    }
}

static void test_a_clear_forgets_the_first_fill(void **state)
{
    (void)state;
    const int64_t dim = 100;
    float *first = malloc((size_t)(ROWS * dim) * sizeof *first);
    float *second = malloc((size_t)(ROWS * dim) * sizeof *second);
    float *out = malloc((size_t)dim * sizeof *out);
    assert_non_null(first), assert_non_null(second), assert_non_null(out);
    fill_rows(first, dim, 1.0, 1);
    fill_rows(second, dim, 0.3, 2); /* fewer values: the first fill's tail stays in the span */
    code_cache c;
    anamo_err err = {0};
    assert_int_equal(code_cache_init(&c, ROWS, dim, PUT, &err), ANAMO_OK);
    put_and_check(&c, first, out);
    put_and_check(&c, second, out);
    assert_true(c.used < ROWS * c.words + not_plus_zero(first, ROWS * dim));
    code_cache_free(&c);
    free(first), free(second), free(out);
}

static void test_a_batch_split_between_threads(void **state)
{
    (void)state;
    enum { MANY = 100, DIM = 769 }; /* 100 × 769 entries: put and get split the rows */
    float *rows = malloc((size_t)MANY * DIM * sizeof *rows),
          *out = malloc(sizeof *rows * MANY * DIM);
    assert_non_null(rows), assert_non_null(out);
    uint64_t state_rng = 3;
    for (int64_t k = 0; k < (int64_t)MANY * DIM; k++)
        rows[k] = entry(&state_rng, 0.6);
    int64_t order[MANY];
    for (int64_t i = 0; i < MANY; i++)
        order[i] = (i * 31 + 7) % MANY; /* 31 and 100 coprime */
    code_cache c;
    anamo_err err = {0};
    assert_int_equal(code_cache_init(&c, MANY, DIM, MANY, &err), ANAMO_OK);
    code_cache_put_rows(&c, NULL, 0, MANY, rows);
    assert_int_equal(c.used, MANY * c.words + not_plus_zero(rows, (int64_t)MANY * DIM));
    code_cache_get_rows(&c, order, MANY, out);
    for (int64_t i = 0; i < MANY; i++)
        if (memcmp(out + i * DIM, rows + order[i] * DIM, DIM * sizeof *out) != 0)
            fail_msg("row %lld: not the bits put", (long long)order[i]);
    code_cache_free(&c);
    free(rows), free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rows_come_back_bit_for_bit),
        cmocka_unit_test(test_both_paths_write_the_same),
        cmocka_unit_test(test_a_clear_forgets_the_first_fill),
        cmocka_unit_test(test_a_batch_split_between_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
