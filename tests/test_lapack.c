/* test_lapack.c — the row-major wrappers of OpenBLAS's LAPACK (src/core/lapack.c) on systems
 * whose answers are known in closed form: a layout mistake (a transpose too many or too few)
 * gives the transposed system's answer, which these matrices make different; and the NaN
 * checks' return values, which are LAPACKE's. */
#include "test_util.h"

#include "core/lapack.h"

#include <math.h>

/* cmocka 1.1 has no double comparison */
#define assert_double_equal(got, want, tol) expect_near_d(#got, (got), (want), (tol), __LINE__)

static void expect_near_d(const char *what, double got, double want, double tol, int line)
{
    if (!(fabs(got - want) <= tol))
        fail_msg("line %d: %s = %.17g, expected %.17g within %g", line, what, got, want, tol);
}

/* A = [[4, 2, 0], [2, 5, 3], [0, 3, 6]] (symmetric positive definite), X = [[1, -1], [2, 0],
 * [-1, 3]]: B = A X. sposv gives X back, and A's upper triangle holds U with UᵀU = A. The lower
 * triangle, unread, is poisoned, so a wrapper that read it would fail. */
static void test_sposv_rows(void **state)
{
    (void)state;
    float a[9] = {4, 2, 0, 99, 5, 3, -99, 77, 6};
    const float x[6] = {1, -1, 2, 0, -1, 3};
    const float full[9] = {4, 2, 0, 2, 5, 3, 0, 3, 6};
    float b[6];
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 2; j++) {
            b[i * 2 + j] = 0;
            for (int k = 0; k < 3; k++)
                b[i * 2 + j] += full[i * 3 + k] * x[k * 2 + j];
        }
    assert_int_equal(lapack_sposv_rows(3, 2, a, b), 0);
    for (int i = 0; i < 6; i++)
        assert_float_equal(b[i], x[i], 1e-5f);
    /* U: row 0 = [2, 1, 0], row 1 = [2, 1.5] from column 1, row 2 = sqrt(6 − 2.25) */
    assert_float_equal(a[0], 2.0f, 1e-6f);
    assert_float_equal(a[1], 1.0f, 1e-6f);
    assert_float_equal(a[2], 0.0f, 1e-6f);
    assert_float_equal(a[4], 2.0f, 1e-6f);
    assert_float_equal(a[5], 1.5f, 1e-6f);
    assert_float_equal(a[8], sqrtf(3.75f), 1e-6f);
    assert_float_equal(a[3], 99.0f, 0.0f); /* the lower triangle is left as it was */
    assert_float_equal(a[7], 77.0f, 0.0f);
}

/* Not positive definite: LAPACK's info is the order of the failing minor; NaN in A's upper
 * triangle is argument 5 and NaN in B argument 7, as LAPACKE_sposv says. */
static void test_sposv_failures(void **state)
{
    (void)state;
    float a[4] = {1, 2, 2, 1}, b[2] = {1, 1};
    assert_int_equal(lapack_sposv_rows(2, 1, a, b), 2);
    float a_nan[4] = {1, NAN, 0, 1}, b_ok[2] = {1, 1};
    assert_int_equal(lapack_sposv_rows(2, 1, a_nan, b_ok), -5);
    float a_lower_nan[4] = {1, 0, NAN, 1}, b_nan[2] = {1, NAN};
    assert_int_equal(lapack_sposv_rows(2, 1, a_lower_nan, b_ok), 0); /* NaN where unread */
    float a_ok[4] = {1, 0, 0, 1};
    assert_int_equal(lapack_sposv_rows(2, 1, a_ok, b_nan), -7);
}

/* [[2, 1], [1, 2]] has eigenvalues 1 and 3, eigenvectors (1, −1)/√2 and (1, 1)/√2, ascending. */
static void test_dsyevd_cols(void **state)
{
    (void)state;
    double a[4] = {2, 1, NAN, 2}; /* column-major, the upper triangle unread */
    double w[2];
    assert_int_equal(lapack_dsyevd_cols(2, a, w), 0);
    assert_double_equal(w[0], 1.0, 1e-12);
    assert_double_equal(w[1], 3.0, 1e-12);
    const double r = 1.0 / sqrt(2.0);
    assert_double_equal(fabs(a[0]), r, 1e-12);
    assert_double_equal(a[0] * a[1], -0.5, 1e-12); /* column 0 ∝ (1, −1) */
    assert_double_equal(a[2] * a[3], 0.5, 1e-12);  /* column 1 ∝ (1, 1) */
    double bad[4] = {NAN, 0, 0, 1};
    assert_int_equal(lapack_dsyevd_cols(2, bad, w), -5);
}

/* A = [[3, 0], [4, 0], [0, 2]] row-major (3 × 2): orthogonal columns, so singular values 5 and
 * 2 with left vectors (3, 4, 0)/5 and e₂ (up to sign). Its buffer read column-major is
 * [[3, 0], [0, 0], [4, 2]], whose columns are not orthogonal. */
static void test_dgesvd_rows(void **state)
{
    (void)state;
    double a[6] = {3, 0, 4, 0, 0, 2}, s[2], u[6];
    assert_int_equal(lapack_dgesvd_rows(3, 2, a, s, u), 0);
    assert_double_equal(s[0], 5.0, 1e-12);
    assert_double_equal(s[1], 2.0, 1e-12);
    /* u row-major 3 × 2: column 0 = ±(0.6, 0.8, 0), column 1 = ±e₂ */
    assert_double_equal(fabs(u[0]), 0.6, 1e-12);
    assert_double_equal(u[0] * u[2], 0.48, 1e-12);
    assert_double_equal(u[4], 0.0, 1e-12);
    assert_double_equal(u[1], 0.0, 1e-12);
    assert_double_equal(u[3], 0.0, 1e-12);
    assert_double_equal(fabs(u[5]), 1.0, 1e-12);
    double b[6] = {1, 2, 3, 4, 5, 6}, t[2]; /* without u: the values alone */
    assert_int_equal(lapack_dgesvd_rows(2, 3, b, t, NULL), 0);
    /* [[1, 2, 3], [4, 5, 6]]: σ² are the roots of λ² − 91λ + 54 */
    const double disc = sqrt(91.0 * 91.0 - 4.0 * 54.0);
    assert_double_equal(t[0], sqrt((91.0 + disc) / 2.0), 1e-10);
    assert_double_equal(t[1], sqrt((91.0 - disc) / 2.0), 1e-10);
    double c[4] = {1, NAN, 0, 1};
    assert_int_equal(lapack_dgesvd_rows(2, 2, c, t, NULL), -6);
}

/* Least squares on 4 points of y = 1 + 2x with columns [1, x, 2x] (rank 2): the minimum-norm
 * solution splits the slope between the collinear columns as (1, 0.4, 0.8). */
static void test_dgelsd_rows(void **state)
{
    (void)state;
    double a[12], b[4], s[3];
    for (int i = 0; i < 4; i++) {
        a[i * 3 + 0] = 1, a[i * 3 + 1] = i, a[i * 3 + 2] = 2 * i;
        b[i] = 1 + 2 * i;
    }
    int rank = -1;
    assert_int_equal(lapack_dgelsd_rows(4, 3, a, b, s, 1e-10, &rank), 0);
    assert_int_equal(rank, 2);
    assert_double_equal(b[0], 1.0, 1e-10);
    assert_double_equal(b[1], 0.4, 1e-10);
    assert_double_equal(b[2], 0.8, 1e-10);
    double a2[4] = {1, 0, 0, 1}, b2[2] = {1, 1};
    assert_int_equal(lapack_dgelsd_rows(2, 2, a2, b2, s, NAN, &rank), -10);
    b2[1] = NAN;
    assert_int_equal(lapack_dgelsd_rows(2, 2, a2, b2, s, 1e-10, &rank), -7);
    a2[2] = NAN;
    assert_int_equal(lapack_dgelsd_rows(2, 2, a2, b2, s, 1e-10, &rank), -5);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sposv_rows),  cmocka_unit_test(test_sposv_failures),
        cmocka_unit_test(test_dsyevd_cols), cmocka_unit_test(test_dgesvd_rows),
        cmocka_unit_test(test_dgelsd_rows),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
