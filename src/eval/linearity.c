/* linearity.c — how linear a code is in a known quantity (seed 002: the step position).
 *
 * R² of the ordinary least-squares fit  target ≈ c₀ + Σ_k c_k code_k  over n samples:
 *     R² = 1 − SS_res / SS_tot,  SS_tot = Σ_i (t_i − t̄)²,  SS_res = Σ_i (t_i − t̂_i)².
 * The intercept is removed by centering target and code columns (the OLS slopes on centered
 * data are those of the fit with c₀, and c₀ = t̄ − Σ_k c_k m_k). Columns whose values are all
 * equal carry nothing once centered and are left out (dead code units are common). With one
 * column left, R² is the squared Pearson correlation S_xy² / (S_xx S_yy), computed as such;
 * with more, the centered system is solved by LAPACK's dgelsd (SVD, so collinear codes are fine:
 * a rank-deficient fit is still the least-squares one). A constant target, or codes with no
 * non-constant column, give R² = 0. */
#include "core/err.h"
#include "core/lapack.h"

#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Singular values below this fraction of the largest are taken as zero (dgelsd's rcond):
 * well above double rounding (1e-16) so that exactly collinear float codes count as rank-
 * deficient, well below any real spread of a code. */
#define LINEARITY_RCOND 1e-12

/* The work for one call: the column means and which columns vary. */
typedef struct fit_input {
    const float *codes;
    const double *target;
    int64_t n, code_dim;
    double target_mean;
    double *col_mean; /* code_dim */
    int64_t *cols;    /* indices of the non-constant columns */
    int64_t ncols;
} fit_input;

static int all_finite(const fit_input *in, anamo_err *err)
{
    for (int64_t i = 0; i < in->n; i++) {
        if (!isfinite(in->target[i]))
            return anamo_err_set(err, ANAMO_ERR_ARG, "latent linearity: target[%lld] is not finite",
                                 (long long)i);
        for (int64_t k = 0; k < in->code_dim; k++)
            if (!isfinite(in->codes[i * in->code_dim + k]))
                return anamo_err_set(err, ANAMO_ERR_ARG,
                                     "latent linearity: code %lld of sample %lld is not finite",
                                     (long long)k, (long long)i);
    }
    return ANAMO_OK;
}

/* Means of the target and of every code column; the list of columns that are not constant. */
static void describe_columns(fit_input *in)
{
    const int64_t n = in->n, d = in->code_dim;
    double t_sum = 0.0;
    for (int64_t i = 0; i < n; i++)
        t_sum += in->target[i];
    in->target_mean = t_sum / (double)n;
    in->ncols = 0;
    for (int64_t k = 0; k < d; k++) {
        double sum = 0.0;
        int varies = 0;
        for (int64_t i = 0; i < n; i++) {
            sum += in->codes[i * d + k];
            varies |= in->codes[i * d + k] != in->codes[k];
        }
        in->col_mean[k] = sum / (double)n;
        if (varies)
            in->cols[in->ncols++] = k;
    }
}

static double centered_code(const fit_input *in, int64_t i, int64_t j)
{
    int64_t k = in->cols[j];
    return (double)in->codes[i * in->code_dim + k] - in->col_mean[k];
}

/* One varying column: the squared Pearson correlation. */
static double r2_one_column(const fit_input *in)
{
    double sxy = 0.0, sxx = 0.0, syy = 0.0;
    for (int64_t i = 0; i < in->n; i++) {
        double x = centered_code(in, i, 0), y = in->target[i] - in->target_mean;
        sxy += x * y, sxx += x * x, syy += y * y;
    }
    return sxx > 0.0 && syy > 0.0 ? sxy * sxy / (sxx * syy) : 0.0;
}

/* Several varying columns: slopes by dgelsd, then R² from the residuals of the original data. */
static int r2_least_squares(const fit_input *in, double *r2, anamo_err *err)
{
    const int64_t n = in->n, p = in->ncols, rows = n > p ? n : p;
    double *a = malloc((size_t)(n * p) * sizeof *a), *b = calloc((size_t)rows, sizeof *b);
    double *sv = malloc((size_t)(n < p ? n : p) * sizeof *sv);
    if (!a || !b || !sv) {
        free(a), free(b), free(sv);
        return anamo_err_set(err, ANAMO_ERR_NOMEM,
                             "latent linearity: cannot allocate the %lld × "
                             "%lld system",
                             (long long)n, (long long)p);
    }
    for (int64_t i = 0; i < n; i++) {
        for (int64_t j = 0; j < p; j++)
            a[i * p + j] = centered_code(in, i, j);
        b[i] = in->target[i] - in->target_mean;
    }
    int rank = 0;
    int info = lapack_dgelsd_rows((int)n, (int)p, a, b, sv, LINEARITY_RCOND, &rank);
    int rc = ANAMO_OK;
    if (info == LAPACK_NO_MEMORY)
        rc = anamo_err_set(err, ANAMO_ERR_NOMEM, "latent linearity: dgelsd has no memory");
    else if (info != 0)
        rc = anamo_err_set(err, ANAMO_ERR_ARG,
                           "latent linearity: dgelsd failed (info %d) "
                           "on %lld samples of %lld varying codes",
                           (int)info, (long long)n, (long long)p);
    double ss_res = 0.0, ss_tot = 0.0;
    for (int64_t i = 0; i < n && !rc; i++) {
        double y = in->target[i] - in->target_mean, fit = 0.0;
        for (int64_t j = 0; j < p; j++)
            fit += b[j] * centered_code(in, i, j);
        ss_res += (y - fit) * (y - fit);
        ss_tot += y * y;
    }
    if (!rc)
        *r2 = ss_tot > 0.0 ? 1.0 - ss_res / ss_tot : 0.0;
    free(a), free(b), free(sv);
    return rc;
}

static int target_is_constant(const double *target, int64_t n)
{
    for (int64_t i = 1; i < n; i++)
        if (target[i] != target[0])
            return 0;
    return 1;
}

int anamo_latent_linearity(const float *codes, int64_t n, int64_t code_dim, const double *target,
                           double *r2, anamo_err *err)
{
    if (!codes || !target || !r2)
        return anamo_err_set(err, ANAMO_ERR_ARG,
                             "latent linearity: codes, target and r2 must not "
                             "be NULL");
    if (n < 2 || code_dim < 1 || n > INT_MAX || code_dim > INT_MAX)
        return anamo_err_set(err, ANAMO_ERR_ARG,
                             "latent linearity: needs 2 <= n <= %d samples "
                             "and 1 <= code_dim <= %d (got n = %lld, code_dim = %lld)",
                             INT_MAX, INT_MAX, (long long)n, (long long)code_dim);
    fit_input in = {.codes = codes, .target = target, .n = n, .code_dim = code_dim};
    int rc = all_finite(&in, err);
    if (rc)
        return rc;
    in.col_mean = malloc((size_t)code_dim * sizeof *in.col_mean);
    in.cols = malloc((size_t)code_dim * sizeof *in.cols);
    if (!in.col_mean || !in.cols)
        rc = anamo_err_set(err, ANAMO_ERR_NOMEM,
                           "latent linearity: cannot allocate %lld column "
                           "means",
                           (long long)code_dim);
    *r2 = 0.0;
    if (!rc && !target_is_constant(target, n)) {
        describe_columns(&in);
        if (in.ncols == 1)
            *r2 = r2_one_column(&in);
        else if (in.ncols > 1)
            rc = r2_least_squares(&in, r2, err);
    }
    if (!rc) /* R² of an OLS fit with intercept lies in [0, 1]; clip rounding just outside */
        *r2 = *r2 < 0.0 ? 0.0 : *r2 > 1.0 ? 1.0 : *r2;
    free(in.col_mean);
    free(in.cols);
    return rc;
}
