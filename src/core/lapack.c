/* lapack.c — LAPACK's Fortran routines from OpenBLAS, row-major where anamo's arrays are
 * (see lapack.h). */
#include "core/lapack.h"

#include <math.h>
#include <stddef.h>
#include <stdlib.h>

/* OpenBLAS's Fortran interface: every argument by reference, each CHARACTER argument's length
 * passed after the others (gfortran's convention). */
void sposv_(const char *uplo, const int *n, const int *nrhs, float *a, const int *lda, float *b,
            const int *ldb, int *info, size_t uplo_len);
void dsyevd_(const char *jobz, const char *uplo, const int *n, double *a, const int *lda, double *w,
             double *work, const int *lwork, int *iwork, const int *liwork, int *info,
             size_t jobz_len, size_t uplo_len);
void dgesvd_(const char *jobu, const char *jobvt, const int *m, const int *n, double *a,
             const int *lda, double *s, double *u, const int *ldu, double *vt, const int *ldvt,
             double *work, const int *lwork, int *info, size_t jobu_len, size_t jobvt_len);
void dgelsd_(const int *m, const int *n, const int *nrhs, double *a, const int *lda, double *b,
             const int *ldb, double *s, const double *rcond, int *rank, double *work,
             const int *lwork, int *iwork, int *info);

static int max_int(int a, int b) { return a > b ? a : b; }

/* ---- copies between layouts, and the NaN checks -------------------------------------------- */

/* out[j·out_ld + i] = in[i·in_ld + j] for i < rows, j < cols: the rows × cols matrix in (rows
 * in_ld apart) written transposed. Row-major rows × cols into column-major with leading
 * dimension ld is transpose(in, cols, rows, cols, out, ld); back again, transpose(in, ld, cols,
 * rows, out, cols). */
static void transpose_f(const float *in, int in_ld, int rows, int cols, float *out, int out_ld)
{
    for (int i = 0; i < rows; i++)
        for (int j = 0; j < cols; j++)
            out[(size_t)j * (size_t)out_ld + (size_t)i] = in[(size_t)i * (size_t)in_ld + (size_t)j];
}

static void transpose_d(const double *in, int in_ld, int rows, int cols, double *out, int out_ld)
{
    for (int i = 0; i < rows; i++)
        for (int j = 0; j < cols; j++)
            out[(size_t)j * (size_t)out_ld + (size_t)i] = in[(size_t)i * (size_t)in_ld + (size_t)j];
}

static int any_nan_f(const float *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (isnan(x[i]))
            return 1;
    return 0;
}

static int any_nan_d(const double *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (isnan(x[i]))
            return 1;
    return 0;
}

/* Whether row-major a (n × n) has NaN in its upper triangle (j ≥ i). */
static int upper_has_nan_f(const float *a, int n)
{
    for (int i = 0; i < n; i++)
        if (any_nan_f(a + (size_t)i * (size_t)n + (size_t)i, (size_t)(n - i)))
            return 1;
    return 0;
}

/* Whether column-major a (n × n) has NaN in its lower triangle (i ≥ j). */
static int lower_has_nan_d(const double *a, int n)
{
    for (int j = 0; j < n; j++)
        if (any_nan_d(a + (size_t)j * (size_t)n + (size_t)j, (size_t)(n - j)))
            return 1;
    return 0;
}

/* ---- the routines -------------------------------------------------------------------------- */

int lapack_sposv_rows(int n, int nrhs, float *a, float *b)
{
    if (upper_has_nan_f(a, n))
        return -5;
    if (any_nan_f(b, (size_t)n * (size_t)nrhs))
        return -7;
    const int ld = max_int(1, n);
    float *a_cols = malloc((size_t)ld * (size_t)max_int(1, n) * sizeof *a_cols);
    float *b_cols = malloc((size_t)ld * (size_t)max_int(1, nrhs) * sizeof *b_cols);
    int info = LAPACK_NO_MEMORY;
    if (a_cols && b_cols) {
        transpose_f(a, n, n, n, a_cols, ld); /* the lower triangle goes along, unread */
        transpose_f(b, nrhs, n, nrhs, b_cols, ld);
        sposv_("U", &n, &nrhs, a_cols, &ld, b_cols, &ld, &info, 1);
        transpose_f(a_cols, ld, n, n, a, n);
        transpose_f(b_cols, ld, nrhs, n, b, nrhs);
    }
    free(a_cols), free(b_cols);
    return info;
}

int lapack_dsyevd_cols(int n, double *a, double *w)
{
    if (lower_has_nan_d(a, n))
        return -5;
    const int ld = max_int(1, n), query = -1;
    double work_size = 0.0;
    int iwork_size = 0, info = 0;
    dsyevd_("V", "L", &n, a, &ld, w, &work_size, &query, &iwork_size, &query, &info, 1, 1);
    if (info)
        return info;
    const int lwork = (int)work_size, liwork = iwork_size;
    double *work = malloc((size_t)max_int(1, lwork) * sizeof *work);
    int *iwork = malloc((size_t)max_int(1, liwork) * sizeof *iwork);
    info = LAPACK_NO_MEMORY;
    if (work && iwork)
        dsyevd_("V", "L", &n, a, &ld, w, work, &lwork, iwork, &liwork, &info, 1, 1);
    free(work), free(iwork);
    return info;
}

int lapack_dgesvd_rows(int m, int n, double *a, double *s, double *u)
{
    if (any_nan_d(a, (size_t)m * (size_t)n))
        return -6;
    const char *jobu = u ? "S" : "N";
    const int k = m < n ? m : n, lda = max_int(1, m), ldu = u ? max_int(1, m) : 1, ldvt = 1;
    const int query = -1;
    double work_size = 0.0;
    int info = 0;
    dgesvd_(jobu, "N", &m, &n, a, &lda, s, u, &ldu, NULL, &ldvt, &work_size, &query, &info, 1, 1);
    if (info)
        return info;
    const int lwork = (int)work_size;
    double *work = malloc((size_t)max_int(1, lwork) * sizeof *work);
    double *a_cols = malloc((size_t)lda * (size_t)max_int(1, n) * sizeof *a_cols);
    double *u_cols = u ? malloc((size_t)ldu * (size_t)max_int(1, k) * sizeof *u_cols) : NULL;
    info = LAPACK_NO_MEMORY;
    if (work && a_cols && (u_cols || !u)) {
        transpose_d(a, n, m, n, a_cols, lda);
        dgesvd_(jobu, "N", &m, &n, a_cols, &lda, s, u_cols, &ldu, NULL, &ldvt, work, &lwork, &info,
                1, 1);
        transpose_d(a_cols, lda, n, m, a, n);
        if (u)
            transpose_d(u_cols, ldu, k, m, u, k);
    }
    free(work), free(a_cols), free(u_cols);
    return info;
}

int lapack_dgelsd_rows(int m, int n, double *a, double *b, double *s, double rcond, int *rank)
{
    const int rows_b = max_int(m, n), nrhs = 1;
    if (any_nan_d(a, (size_t)m * (size_t)n))
        return -5;
    if (any_nan_d(b, (size_t)rows_b))
        return -7;
    if (isnan(rcond))
        return -10;
    const int lda = max_int(1, m), ldb = max_int(1, rows_b), query = -1;
    double work_size = 0.0;
    int iwork_size = 0, info = 0;
    dgelsd_(&m, &n, &nrhs, a, &lda, b, &ldb, s, &rcond, rank, &work_size, &query, &iwork_size,
            &info);
    if (info)
        return info;
    const int lwork = (int)work_size;
    double *work = malloc((size_t)max_int(1, lwork) * sizeof *work);
    int *iwork = malloc((size_t)max_int(1, iwork_size) * sizeof *iwork);
    double *a_cols = malloc((size_t)lda * (size_t)max_int(1, n) * sizeof *a_cols);
    info = LAPACK_NO_MEMORY;
    if (work && iwork && a_cols) {
        transpose_d(a, n, m, n, a_cols, lda); /* b, one column, is the same in both layouts */
        dgelsd_(&m, &n, &nrhs, a_cols, &lda, b, &ldb, s, &rcond, rank, work, &lwork, iwork, &info);
        transpose_d(a_cols, lda, n, m, a, n);
    }
    free(work), free(iwork), free(a_cols);
    return info;
}
