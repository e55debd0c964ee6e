/* analysis.c — what a run's summary.json adds for particular models and data:
 *   "pca"    a model whose decoder is affine (a linear autoencoder, seed 001): the top-k
 *            principal subspace of the training set (k = the code size), the Eckart–Young
 *            optimum (the least MSE any rank-k affine reconstruction reaches on it), the
 *            model's training MSE over that optimum, PCA's own test MSE, and the principal
 *            angles between the decoder's column space and the principal subspace;
 *   "steps"  step-function data (seed 002): the R² of the code against the step position, and
 *            the reconstruction error per position, whose rows (position, codes, error) also go
 *            to RUN/positions.csv for the figures. */
#include "analysis.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STEPS_MAX_VALUES ((int64_t)1 << 26) /* larger step sets are not analysed */

static const double DEGREES = 180.0 / 3.14159265358979323846;

/* key = v into o; clears *ok when cJSON cannot (out of memory), so no part goes in cut. */
static void put(cJSON *o, const char *key, double v, int *ok)
{
    if (!o || !cJSON_AddNumberToObject(o, key, v))
        *ok = 0;
}

static cJSON *pca_json(const anamo_pca *pca, int64_t k, double train_mse, int has_test,
                       double test_mse, const double *angles)
{
    cJSON *o = cJSON_CreateObject(), *deg = cJSON_CreateArray();
    int ok = deg != NULL;
    put(o, "k", (double)k, &ok);
    put(o, "optimum_mse", pca->optimum_mse, &ok);
    put(o, "mse_over_optimum", train_mse / pca->optimum_mse, &ok);
    if (has_test)
        put(o, "test_mse", test_mse, &ok);
    for (int64_t i = 0; ok && i < k; i++) {
        cJSON *a = cJSON_CreateNumber(angles[i] * DEGREES);
        if (!a || !cJSON_AddItemToArray(deg, a))
            cJSON_Delete(a), ok = 0;
    }
    put(o, "max_angle_deg", angles[k - 1] * DEGREES, &ok);
    if (ok && o && cJSON_AddItemToObject(o, "angles_deg", deg))
        return o;
    cJSON_Delete(deg);
    cJSON_Delete(o);
    return NULL;
}

int analysis_pca(anamo_model *m, const anamo_dataset *train, const anamo_dataset *test,
                 double train_mse, cJSON **out, anamo_err *err)
{
    *out = NULL;
    if (!anamo_model_decoder_is_affine(m))
        return ANAMO_OK;
    const int64_t k = anamo_model_code_dim(m);
    anamo_pca pca;
    int rc = anamo_pca_fit(train, k, &pca, err);
    if (rc)
        return rc;
    double *angles = malloc(sizeof *angles * (size_t)k), test_mse = NAN;
    rc = angles ? anamo_pca_principal_angles(&pca, m, angles, err)
                : anamo_err_set(err, ANAMO_ERR_NOMEM, "pca: out of memory");
    if (!rc && test)
        rc = anamo_pca_mse(&pca, test, &test_mse, err);
    if (!rc && !(*out = pca_json(&pca, k, train_mse, test != NULL, test_mse, angles)))
        rc = anamo_err_set(err, ANAMO_ERR_NOMEM, "pca: out of memory");
    free(angles);
    anamo_pca_free(&pca);
    return rc;
}

/* RUN/positions.csv: position, the code units, and the sample's mean squared error. */
static int write_positions(const char *run_dir, const float *codes, int64_t code_dim,
                           const double *error, int64_t n, anamo_err *err)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/positions.csv", run_dir);
    FILE *f = fopen(path, "w");
    if (!f)
        return anamo_err_set(err, ANAMO_ERR_IO, "%s: cannot write", path);
    fputs("position", f);
    for (int64_t k = 0; k < code_dim; k++)
        fprintf(f, ",code_%lld", (long long)k);
    fputs(",error\n", f);
    for (int64_t p = 0; p < n; p++) {
        fprintf(f, "%lld", (long long)p);
        for (int64_t k = 0; k < code_dim; k++)
            fprintf(f, ",%.8g", codes[p * code_dim + k]);
        fprintf(f, ",%.8g\n", error[p]);
    }
    return fclose(f) ? anamo_err_set(err, ANAMO_ERR_IO, "%s: cannot write", path) : ANAMO_OK;
}

/* Per-sample mean squared error between ds's rows and their reconstructions. */
static int position_errors(const anamo_dataset *ds, float *x, const float *recon, double *error,
                           anamo_err *err)
{
    int rc = anamo_dataset_rows(ds, 0, ds->n, x, err);
    if (rc)
        return rc;
    for (int64_t p = 0; p < ds->n; p++) {
        double sq = 0.0;
        for (int64_t j = 0; j < ds->dim; j++) {
            double d = (double)recon[p * ds->dim + j] - x[p * ds->dim + j];
            sq += d * d;
        }
        error[p] = sq / (double)ds->dim;
    }
    return ANAMO_OK;
}

static cJSON *steps_json(double r2, const double *error, int64_t n)
{
    double worst = 0.0, sum = 0.0;
    for (int64_t p = 0; p < n; p++)
        worst = fmax(worst, error[p]), sum += error[p];
    cJSON *o = cJSON_CreateObject();
    int ok = 1;
    put(o, "r2", r2, &ok);
    put(o, "max_position_error", worst, &ok);
    put(o, "mean_position_error", sum / (double)n, &ok);
    if (!ok)
        cJSON_Delete(o), o = NULL;
    return o;
}

int analysis_steps(anamo_model *m, const anamo_dataset *ds, const char *run_dir, cJSON **out,
                   anamo_err *err)
{
    *out = NULL;
    const int64_t n = ds->n, code_dim = anamo_model_code_dim(m);
    if (n < 2 || n * ds->dim > STEPS_MAX_VALUES)
        return ANAMO_OK;
    float *codes = malloc(sizeof *codes * (size_t)(n * code_dim));
    float *recon = malloc(sizeof *recon * (size_t)(n * ds->dim));
    float *x = malloc(sizeof *x * (size_t)(n * ds->dim));
    double *error = malloc(sizeof *error * (size_t)n),
           *position = malloc(sizeof *position * (size_t)n);
    int rc = codes && recon && x && error && position
                 ? ANAMO_OK
                 : anamo_err_set(err, ANAMO_ERR_NOMEM, "steps analysis: out of memory");
    double r2 = 0.0;
    if (!rc)
        rc = anamo_model_encode(m, ds, 0, n, codes, err);
    if (!rc)
        rc = anamo_model_reconstruct(m, ds, 0, n, recon, err);
    for (int64_t p = 0; !rc && p < n; p++)
        position[p] = (double)p; /* sample p steps up at position p */
    if (!rc)
        rc = anamo_latent_linearity(codes, n, code_dim, position, &r2, err);
    if (!rc)
        rc = position_errors(ds, x, recon, error, err);
    if (!rc)
        rc = write_positions(run_dir, codes, code_dim, error, n, err);
    if (!rc && !(*out = steps_json(r2, error, n)))
        rc = anamo_err_set(err, ANAMO_ERR_NOMEM, "steps analysis: out of memory");
    free(codes), free(recon), free(x), free(error), free(position);
    return rc;
}
