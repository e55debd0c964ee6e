/* test_pca.c — principal component analysis (src/eval/pca.c) and the principal angles between
 * an affine decoder's column space and the principal subspace, each against a truth built or
 * computed here:
 *
 *   1. A set with a known subspace: x = μ + U z + ε in dim 20, U a 20 × 3 orthonormal basis,
 *      z with sample covariance exactly diag(9, 4, 1) (centered and orthogonalized columns, so
 *      sampling cannot blur the answer), ε ~ N(0, 0.01²). The mean, the variances, the
 *      components and the Eckart–Young optimum against direct computations here.
 *   2. Hand cases: four points μ ± v₁ ± 0.1 v₂ in 2-D with v₁ = (0.6, 0.8) (covariance
 *      v₁v₁ᵀ + 0.01 v₂v₂ᵀ, whose eigenvector matrix is not symmetric, so reading eigenvectors
 *      as columns instead of rows shows), and two bytes samples (0, 255), (255, 0) (scaled to
 *      [0, 1] as the model sees them: variances 0.5 and 0); exactly rank-2 data, whose zero
 *      eigenvalues must not come out negative.
 *   3. Principal angles of linear decoders whose weights are set here to a known column space:
 *      the principal subspace itself mixed by an invertible G (angles 0), one column turned by
 *      θ = 0.3 out of it (0, 0, θ), turned all the way (0, 0, π/2), rank deficient (0, 0, π/2),
 *      zero (all π/2); through three layers; with standardized inputs; in batches of 1 and 2.
 *   4. A linear autoencoder trained with Adam on a noisier set of the same kind finds the
 *      principal subspace and the Eckart–Young error, on its training set and held out.
 *   5. Error paths: non-affine decoders named by layer, k and dimensions out of range.
 *
 * Tolerances (each is stated again where it is used):
 *   EXACT_RTOL  1e-10: the library and this file sum the same float32 values in double; only
 *               summation order differs (relative error ~1e-15 · terms of one sign).
 *   SUBSPACE_TOL 1e-5 on 3 − ‖P Uᵀ‖²_F = Σ sin²θ_i: the noise tilts the fitted subspace by
 *               θ ≈ |cross-covariance| / eigengap ≈ √17 · (1 · 0.01 / √2000) / 1 ≈ 1e-3 rad
 *               for the weakest direction, so Σ sin²θ ≈ 1e-6 (observed 1.6e-6); a wrong
 *               eigenvector (an off-by-one, a transposition) gives ≥ 0.1.
 *   VAR_RTOL    5e-3 on the top variances: z's covariance is exact; what remains is the noise's
 *               variance 1e-4 and the z–ε cross term 2 s_i · 0.01 / √2000 ≈ 4.5e-4 s_i, at most
 *               ~5e-4 relative for s_i = 1 (observed 5.8e-4).
 *   ANGLE_TOL   1e-5 rad on set weights: the weights are float32 (relative rounding 6e-8, so the
 *               true angle of a rounded column space is ~1e-7) and acos in double near 1 is good
 *               to √(2·1e-16) ≈ 1.5e-8 rad (observed errors ≤ 1.4e-7).
 *   TRAINED_ANGLE_TOL 0.01 rad and TRAINED_MSE_RTOL 1e-3 for the trained model: see the test. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "nn/model.h"
#include "test_util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DIM 20
#define K 3
#define N_TRAIN 2000
#define N_TEST 1000
#define NOISE_SD 0.01
#define TRAIN_NOISE_SD 0.1 /* test 4's sets: see test_trained_linear_autoencoder */
#define DATA_SEED 2024
#define EXACT_RTOL 1e-10
#define SUBSPACE_TOL 1e-5
#define VAR_RTOL 5e-3
#define ANGLE_TOL 1e-5
#define TRAINED_ANGLE_TOL 0.01
#define TRAINED_MSE_RTOL 1e-3
#define TURN 0.3 /* θ of a column turned out of the principal subspace */

static const double SUB_SD[K] = {3.0, 2.0, 1.0}; /* sample variances 9, 4, 1 */

/* ---- the set with a known subspace -------------------------------------------------------- */

typedef struct subspace_set {
    double U[K][DIM]; /* orthonormal rows: the true principal directions */
    double mu[DIM];
    float x_train[N_TRAIN * DIM], x_test[N_TEST * DIM];
    anamo_dataset train, test;
    anamo_pca pca; /* fitted to train with k = K */
} subspace_set;

/* Gram–Schmidt of `rows` vectors of length len (stride len), in place: orthonormal rows. */
static void orthonormalize(double *v, int rows, int64_t len)
{
    for (int i = 0; i < rows; i++) {
        for (int l = 0; l < i; l++) {
            double dot = 0.0;
            for (int64_t j = 0; j < len; j++)
                dot += v[i * len + j] * v[l * len + j];
            for (int64_t j = 0; j < len; j++)
                v[i * len + j] -= dot * v[l * len + j];
        }
        double norm = 0.0;
        for (int64_t j = 0; j < len; j++)
            norm += v[i * len + j] * v[i * len + j];
        for (int64_t j = 0; j < len; j++)
            v[i * len + j] /= sqrt(norm);
    }
}

/* z (K × n, one latent variable per row), normal; exact: centered, orthogonalized and scaled
 * so that (1/n) Σ z_i z_lᵀ = s_i² δ_il exactly (up to rounding). */
static void latent(anamo_rng *rng, int64_t n, int exact, double *z)
{
    for (int64_t i = 0; i < K * n; i++)
        z[i] = anamo_rng_normal(rng);
    if (exact) {
        for (int i = 0; i < K; i++) {
            double mean = 0.0;
            for (int64_t s = 0; s < n; s++)
                mean += z[i * n + s] / (double)n;
            for (int64_t s = 0; s < n; s++)
                z[i * n + s] -= mean;
        }
        orthonormalize(z, K, n);
    }
    for (int i = 0; i < K; i++)
        for (int64_t s = 0; s < n; s++)
            z[i * n + s] *= SUB_SD[i] * (exact ? sqrt((double)n) : 1.0);
}

/* x (n × DIM) = μ + U z + noise_sd · N(0, 1). */
static void sample_set(const subspace_set *S, anamo_rng *rng, int64_t n, int exact, double noise_sd,
                       float *x)
{
    double *z = malloc((size_t)(K * n) * sizeof *z);
    assert_non_null(z);
    latent(rng, n, exact, z);
    for (int64_t s = 0; s < n; s++)
        for (int j = 0; j < DIM; j++) {
            double v = S->mu[j] + noise_sd * anamo_rng_normal(rng);
            for (int i = 0; i < K; i++)
                v += z[i * n + s] * S->U[i][j];
            x[s * DIM + j] = (float)v;
        }
    free(z);
}

static anamo_dataset table(float *x, int64_t n, int64_t dim, const char *name)
{
    anamo_dataset ds;
    memset(&ds, 0, sizeof ds);
    ds.n = n, ds.c = (int)dim, ds.h = ds.w = 1, ds.dim = dim;
    ds.dtype = ANAMO_F32;
    ds.data = x;
    snprintf(ds.source, sizeof ds.source, "%s", name);
    return ds;
}

static int setup(void **state)
{
    subspace_set *S = calloc(1, sizeof *S);
    if (!S)
        return -1;
    anamo_rng rng;
    anamo_rng_seed(&rng, DATA_SEED);
    for (int i = 0; i < K; i++)
        for (int j = 0; j < DIM; j++)
            S->U[i][j] = anamo_rng_normal(&rng);
    orthonormalize(&S->U[0][0], K, DIM);
    for (int j = 0; j < DIM; j++)
        S->mu[j] = anamo_rng_uniform_range(&rng, -1.0f, 1.0f);
    sample_set(S, &rng, N_TRAIN, 1, NOISE_SD, S->x_train);
    sample_set(S, &rng, N_TEST, 0, NOISE_SD, S->x_test);
    S->train = table(S->x_train, N_TRAIN, DIM, "subspace train");
    S->test = table(S->x_test, N_TEST, DIM, "subspace test");
    anamo_err err = {0};
    if (anamo_pca_fit(&S->train, K, &S->pca, &err) != ANAMO_OK) {
        fprintf(stderr, "anamo_pca_fit: %s\n", err.msg);
        free(S);
        return -1;
    }
    *state = S;
    return 0;
}

static int teardown(void **state)
{
    subspace_set *S = *state;
    anamo_pca_free(&S->pca);
    free(S);
    return 0;
}

/* ---- independent computations ------------------------------------------------------------- */

static double dot(const double *a, const double *b, int64_t n)
{
    double s = 0.0;
    for (int64_t i = 0; i < n; i++)
        s += a[i] * b[i];
    return s;
}

static void sample_mean(const float *x, int64_t n, int64_t dim, double *mean)
{
    for (int64_t j = 0; j < dim; j++) {
        mean[j] = 0.0;
        for (int64_t s = 0; s < n; s++)
            mean[j] += x[s * dim + j];
        mean[j] /= (double)n;
    }
}

/* (1/(n·dim)) Σ ‖r − Pᵀ P r‖², r = x − mean, written out row by row. */
static double projection_mse(const anamo_pca *p, const float *x, int64_t n)
{
    const int64_t dim = p->dim;
    double *r = malloc((size_t)dim * sizeof *r), sq = 0.0;
    assert_non_null(r);
    for (int64_t s = 0; s < n; s++) {
        for (int64_t j = 0; j < dim; j++)
            r[j] = (double)x[s * dim + j] - p->mean[j];
        double rr = dot(r, r, dim);
        for (int64_t i = 0; i < p->k; i++) {
            double c = dot(p->components + i * dim, r, dim);
            rr -= c * c; /* P's rows are orthonormal: ‖r − PᵀPr‖² = ‖r‖² − ‖Pr‖² */
        }
        sq += rr;
    }
    free(r);
    return sq / ((double)n * (double)dim);
}

/* ---- 1. a known subspace ------------------------------------------------------------------ */

static void test_mean_and_components(void **state)
{
    subspace_set *S = *state;
    const anamo_pca *p = &S->pca;
    assert_int_equal(p->dim, DIM);
    assert_int_equal(p->k, K);
    double mean[DIM];
    sample_mean(S->x_train, N_TRAIN, DIM, mean);
    for (int j = 0; j < DIM; j++) {
        expect_close("mean", j, p->mean[j], mean[j], EXACT_RTOL, EXACT_RTOL);
        /* z is exactly centered: what is left is ε's mean, sd 0.01/√2000 = 2.2e-4 */
        expect_close("mean vs mu", j, p->mean[j], S->mu[j], 0.0, 1e-3);
    }
    for (int i = 0; i < K; i++)
        for (int l = 0; l < K; l++)
            expect_close("P Pᵀ", i * K + l,
                         dot(p->components + i * DIM, p->components + l * DIM, DIM), i == l, 0.0,
                         1e-12);
    /* ‖P Uᵀ‖²_F = Σ cos²θ_i = 3 when the spans agree (SUBSPACE_TOL, see the header) */
    double frob = 0.0;
    for (int i = 0; i < K; i++)
        for (int l = 0; l < K; l++) {
            double c = dot(p->components + i * DIM, S->U[l], DIM);
            frob += c * c;
        }
    expect_close("||P U^T||_F^2", 0, frob, K, 0.0, SUBSPACE_TOL);
    /* distinct variances: component i is ±U_i itself (cos² ≥ 1 − 1e-5) */
    for (int i = 0; i < K; i++)
        expect_close("|<P_i, U_i>|", i, fabs(dot(p->components + i * DIM, S->U[i], DIM)), 1.0, 0.0,
                     SUBSPACE_TOL);
}

static void test_variances(void **state)
{
    subspace_set *S = *state;
    const anamo_pca *p = &S->pca;
    for (int i = 0; i < K; i++)
        expect_close("variance", i, p->variances[i], SUB_SD[i] * SUB_SD[i], VAR_RTOL, 0.0);
    /* the other 17 are the noise's 1e-4 spread by Marchenko–Pastur: (1 ± √(17/2000))² */
    for (int i = K; i < DIM; i++)
        expect_close("noise variance", i, p->variances[i], NOISE_SD * NOISE_SD, 0.5, 0.0);
    for (int i = 1; i < DIM; i++)
        assert_true(p->variances[i] <= p->variances[i - 1]);
    /* the trace: Σ λ_i = (1/N) Σ ‖x − x̄‖² */
    double mean[DIM], total = 0.0, sum = 0.0;
    sample_mean(S->x_train, N_TRAIN, DIM, mean);
    for (int64_t s = 0; s < N_TRAIN; s++)
        for (int j = 0; j < DIM; j++) {
            double d = S->x_train[s * DIM + j] - mean[j];
            total += d * d / N_TRAIN;
        }
    for (int i = 0; i < DIM; i++)
        sum += p->variances[i];
    expect_close("trace", 0, sum, total, EXACT_RTOL, 0.0);
}

/* Eckart–Young: the optimum from the eigenvalues is the error of the projection. */
static void test_optimum_is_projection_error(void **state)
{
    subspace_set *S = *state;
    const anamo_pca *p = &S->pca;
    double tail = 0.0, mse = -1.0;
    for (int i = K; i < DIM; i++)
        tail += p->variances[i];
    expect_close("optimum_mse", 0, p->optimum_mse, tail / DIM, EXACT_RTOL, 0.0);
    anamo_err err = {0};
    assert_int_equal(anamo_pca_mse(p, &S->train, &mse, &err), ANAMO_OK);
    /* 1e-6: ‖r‖² − ‖Pr‖² cancels 14 of 14.0017 per sample, losing ~4 of 16 digits */
    expect_close("pca_mse(train) vs optimum", 0, mse, p->optimum_mse, 1e-6, 0.0);
    expect_close("pca_mse(train) vs here", 0, mse, projection_mse(p, S->x_train, N_TRAIN), 1e-6,
                 0.0);
    assert_int_equal(anamo_pca_mse(p, &S->test, &mse, &err), ANAMO_OK);
    expect_close("pca_mse(test) vs here", 0, mse, projection_mse(p, S->x_test, N_TEST), 1e-6, 0.0);
}

/* k = dim reconstructs everything; k = 1 leaves the second and third directions out. */
static void test_other_k(void **state)
{
    subspace_set *S = *state;
    for (int64_t k = 1; k <= DIM; k += DIM - 1) {
        anamo_pca p;
        anamo_err err = {0};
        double mse = -1.0;
        assert_int_equal(anamo_pca_fit(&S->train, k, &p, &err), ANAMO_OK);
        assert_int_equal(anamo_pca_mse(&p, &S->train, &mse, &err), ANAMO_OK);
        double want = 0.0;
        for (int64_t i = k; i < DIM; i++)
            want += S->pca.variances[i] / DIM;
        expect_close("optimum(k)", k, p.optimum_mse, want, 1e-9, 1e-15);
        expect_close("pca_mse(k)", k, mse, want, 1e-6, 1e-12);
        anamo_pca_free(&p);
        assert_null(p.components);
    }
}

/* ---- 2. hand cases ------------------------------------------------------------------------ */

static void test_four_points(void **state)
{
    (void)state;
    const double v1[2] = {0.6, 0.8}, v2[2] = {-0.8, 0.6}, mu[2] = {2.0, -1.0};
    float x[4 * 2];
    for (int s = 0; s < 4; s++) {
        double a = s & 1 ? 1.0 : -1.0, b = s & 2 ? 0.1 : -0.1;
        for (int j = 0; j < 2; j++)
            x[s * 2 + j] = (float)(mu[j] + a * v1[j] + b * v2[j]);
    }
    anamo_dataset ds = table(x, 4, 2, "four points");
    anamo_pca p;
    anamo_err err = {0};
    assert_int_equal(anamo_pca_fit(&ds, 1, &p, &err), ANAMO_OK);
    /* float32 points: exact to ~1e-7 */
    expect_close("mean", 0, p.mean[0], 2.0, 0.0, 1e-7);
    expect_close("mean", 1, p.mean[1], -1.0, 0.0, 1e-7);
    expect_close("variance", 0, p.variances[0], 1.0, 0.0, 1e-6);
    expect_close("variance", 1, p.variances[1], 0.01, 0.0, 1e-6);
    /* the entry of largest magnitude is positive: +v1 */
    expect_close("component", 0, p.components[0], 0.6, 0.0, 1e-6);
    expect_close("component", 1, p.components[1], 0.8, 0.0, 1e-6);
    expect_close("optimum_mse", 0, p.optimum_mse, 0.005, 0.0, 1e-7);
    double mse = -1.0;
    assert_int_equal(anamo_pca_mse(&p, &ds, &mse, &err), ANAMO_OK);
    expect_close("mse", 0, mse, 0.005, 0.0, 1e-7);
    anamo_pca_free(&p);
}

static void test_bytes_are_scaled(void **state)
{
    (void)state;
    uint8_t x[2 * 2] = {0, 255, 255, 0};
    anamo_dataset ds;
    memset(&ds, 0, sizeof ds);
    ds.n = 2, ds.c = 2, ds.h = ds.w = 1, ds.dim = 2, ds.dtype = ANAMO_U8, ds.data = x;
    anamo_pca p;
    anamo_err err = {0};
    assert_int_equal(anamo_pca_fit(&ds, 1, &p, &err), ANAMO_OK);
    /* samples (0, 1), (1, 0): μ = (½, ½), C = ¼ [[1, −1], [−1, 1]], λ = ½, 0, v = (1, −1)/√2 */
    for (int j = 0; j < 2; j++)
        expect_close("mean", j, p.mean[j], 0.5, 0.0, 1e-7);
    expect_close("variance", 0, p.variances[0], 0.5, 0.0, 1e-7);
    expect_close("variance", 1, p.variances[1], 0.0, 0.0, 1e-7);
    assert_true(p.variances[1] >= 0.0); /* rounding below 0 is clamped */
    expect_close("|component|", 0, fabs(p.components[0]), M_SQRT1_2, 0.0, 1e-7);
    expect_close("component sum", 0, p.components[0] + p.components[1], 0.0, 0.0, 1e-7);
    double mse = -1.0;
    assert_int_equal(anamo_pca_mse(&p, &ds, &mse, &err), ANAMO_OK);
    expect_close("mse", 0, mse, 0.0, 0.0, 1e-12);
    anamo_pca_free(&p);
}

/* Exactly rank-2 data: x_s = a_s c + b_s d, c and d integer vectors, a_s and b_s multiples of
 * 1/64, N = 64, so every value, the mean and the covariance are exact in floating point. The
 * eigensolver returns the 18 zero eigenvalues as ±1e-15 rounding; the negative ones must come
 * out as 0 and the optimum as 0 (nothing is left outside the span of c and d). */
static void test_rank_deficient_data(void **state)
{
    (void)state;
    enum { N = 64 };
    float x[N * DIM];
    double c[DIM], d[DIM];
    anamo_rng rng;
    anamo_rng_seed(&rng, DATA_SEED + 2);
    for (int j = 0; j < DIM; j++) {
        c[j] = (double)anamo_rng_below(&rng, 5) - 2.0;
        d[j] = (double)anamo_rng_below(&rng, 3) - 1.0;
    }
    for (int s = 0; s < N; s++) {
        double a = ((double)anamo_rng_below(&rng, 512) - 256.0) / 64.0;
        double b = ((double)anamo_rng_below(&rng, 128) - 64.0) / 64.0;
        for (int j = 0; j < DIM; j++)
            x[s * DIM + j] = (float)(a * c[j] + b * d[j]);
    }
    anamo_dataset ds = table(x, N, DIM, "rank 2");
    anamo_pca p;
    anamo_err err = {0};
    assert_int_equal(anamo_pca_fit(&ds, 2, &p, &err), ANAMO_OK);
    for (int i = 0; i < DIM; i++)
        if (!(p.variances[i] >= 0.0))
            fail_msg("variances[%d] = %g, not clamped to 0", i, p.variances[i]);
    assert_true(p.variances[1] > 0.1);
    /* rounding of the 18 zeros: ~1e-15 each */
    expect_close("optimum_mse", 0, p.optimum_mse, 0.0, 0.0, 1e-13);
    anamo_pca_free(&p);
}

/* ---- 3. principal angles of set decoders -------------------------------------------------- */

static anamo_model *make_model(const char *decoder, int code, int max_batch)
{
    char encoder[32];
    snprintf(encoder, sizeof encoder, "linear %d", code);
    anamo_model_spec spec = {.in_c = DIM,
                             .in_h = 1,
                             .in_w = 1,
                             .encoder = encoder,
                             .decoder = decoder,
                             .init = ANAMO_INIT_PYTORCH,
                             .seed = 3,
                             .max_batch = max_batch};
    anamo_model *m = NULL;
    anamo_err err = {0};
    if (anamo_model_create(&spec, &m, &err) != ANAMO_OK)
        fail_msg("anamo_model_create(%s): %s", decoder, err.msg);
    return m;
}

/* A unit vector orthogonal to P's rows: e_0 with its projection removed. */
static void orthogonal_direction(const anamo_pca *p, double *v)
{
    for (int j = 0; j < DIM; j++)
        v[j] = j == 0;
    for (int i = 0; i < K; i++) {
        double c = dot(v, p->components + i * DIM, DIM);
        for (int j = 0; j < DIM; j++)
            v[j] -= c * p->components[i * DIM + j];
    }
    double norm = sqrt(dot(v, v, DIM));
    for (int j = 0; j < DIM; j++)
        v[j] /= norm;
}

/* Columns (K rows of DIM): P's rows, with column 2 turned by theta towards an orthogonal v. */
static void turned_columns(const anamo_pca *p, double theta, double cols[K][DIM])
{
    double v[DIM];
    orthogonal_direction(p, v);
    for (int i = 0; i < K; i++)
        for (int j = 0; j < DIM; j++)
            cols[i][j] = i < K - 1 ? p->components[i * DIM + j]
                                   : cos(theta) * p->components[i * DIM + j] + sin(theta) * v[j];
}

/* Sets the linear layer at index li of the decoder to weight W[j][i] = cols[i][j] / scale_j
 * and a bias of no consequence (the shift cancels). */
static void set_layer(anamo_model *m, int li, double cols[K][DIM], const float *scale)
{
    layer *l = &m->dec.layers[li];
    assert_int_equal(l->kind, LAYER_LINEAR);
    assert_int_equal(l->out_dim, DIM);
    for (int j = 0; j < DIM; j++) {
        for (int i = 0; i < K; i++)
            l->weight[j * l->in_dim + i] = (float)(cols[i][j] / (scale ? scale[j] : 1.0));
        l->bias[j] = 0.7f - 0.05f * (float)j;
    }
}

static void expect_angles(const char *what, const anamo_pca *p, anamo_model *m,
                          const double want[K])
{
    double angles[K];
    anamo_err err = {0};
    if (anamo_pca_principal_angles(p, m, angles, &err) != ANAMO_OK)
        fail_msg("%s: anamo_pca_principal_angles: %s", what, err.msg);
    for (int i = 0; i < K; i++)
        expect_close(what, i, angles[i], want[i], 0.0, ANGLE_TOL);
}

static void test_angles_known(void **state)
{
    subspace_set *S = *state;
    const anamo_pca *p = &S->pca;
    const double zero[K] = {0, 0, 0}, turned[K] = {0, 0, TURN};
    const double right[K] = {0, 0, M_PI_2}, none[K] = {M_PI_2, M_PI_2, M_PI_2};
    const double G[K][K] = {{1.0, 0.5, 0.0}, {0.0, 2.0, -1.0}, {0.3, 0.0, 1.0}}; /* det 1.85 */
    double cols[K][DIM];
    anamo_model *m = make_model("linear 20", K, 16);
    assert_true(anamo_model_decoder_is_affine(m));
    for (int i = 0; i < K; i++)
        for (int j = 0; j < DIM; j++)
            cols[i][j] = G[i][0] * p->components[j] + G[i][1] * p->components[DIM + j] +
                         G[i][2] * p->components[2 * DIM + j];
    set_layer(m, 0, cols, NULL);
    expect_angles("mixed P", p, m, zero);
    turned_columns(p, TURN, cols);
    set_layer(m, 0, cols, NULL);
    expect_angles("turned", p, m, turned);
    turned_columns(p, M_PI_2, cols);
    set_layer(m, 0, cols, NULL);
    expect_angles("orthogonal column", p, m, right);
    turned_columns(p, 0.0, cols);
    for (int j = 0; j < DIM; j++)
        cols[1][j] = 2.0 * cols[0][j]; /* span{P_0, P_2}: rank 2 */
    set_layer(m, 0, cols, NULL);
    expect_angles("rank 2", p, m, right);
    memset(cols, 0, sizeof cols);
    set_layer(m, 0, cols, NULL);
    expect_angles("zero", p, m, none);
    anamo_model_free(m);
}

/* The unit codes go through the decoder max_batch at a time: batches of 1 and 2 for k = 3. */
static void test_angles_small_batches(void **state)
{
    subspace_set *S = *state;
    const double turned[K] = {0, 0, TURN};
    double cols[K][DIM];
    turned_columns(&S->pca, TURN, cols);
    for (int max_batch = 1; max_batch <= 2; max_batch++) {
        anamo_model *m = make_model("linear 20", K, max_batch);
        set_layer(m, 0, cols, NULL);
        expect_angles("small batches", &S->pca, m, turned);
        anamo_model_free(m);
    }
}

/* linear 8, identity, linear 20: layer 0 = [I₃; 0] with a bias, layer 2's first three columns
 * the wanted ones and the rest (which only meet layer 0's bias) arbitrary. */
static void test_angles_three_layers(void **state)
{
    subspace_set *S = *state;
    const double turned[K] = {0, 0, TURN};
    double cols[K][DIM];
    anamo_model *m = make_model("linear 8, identity, linear 20", K, 4);
    assert_true(anamo_model_decoder_is_affine(m));
    layer *first = &m->dec.layers[0];
    for (int o = 0; o < 8; o++) {
        for (int i = 0; i < K; i++)
            first->weight[o * K + i] = o == i ? 1.0f : 0.0f;
        first->bias[o] = 0.1f * (float)(o + 1);
    }
    turned_columns(&S->pca, TURN, cols);
    set_layer(m, 2, cols, NULL);
    expect_angles("three layers", &S->pca, m, turned);
    anamo_model_free(m);
}

/* Standardized inputs: the decoder's columns are divided by std here, and the library must
 * multiply them back; without that the angles move by more than 1e-3 (checked, so that the
 * data's std is uneven enough for this test to see a missing correction). */
static void test_angles_standardized(void **state)
{
    subspace_set *S = *state;
    const double turned[K] = {0, 0, TURN};
    double cols[K][DIM], angles[K];
    anamo_err err = {0};
    anamo_model *m = make_model("linear 20", K, 16);
    assert_int_equal(anamo_model_fit_standardize(m, &S->train, &err), ANAMO_OK);
    assert_true(m->standardize);
    turned_columns(&S->pca, TURN, cols);
    set_layer(m, 0, cols, m->norm_std);
    expect_angles("standardized", &S->pca, m, turned);
    m->standardize = 0;
    assert_int_equal(anamo_pca_principal_angles(&S->pca, m, angles, &err), ANAMO_OK);
    double moved = 0.0;
    for (int i = 0; i < K; i++)
        moved = fmax(moved, fabs(angles[i] - turned[i]));
    assert_true(moved > 1e-3);
    m->standardize = 1;
    anamo_model_free(m);
}

/* ---- 4. a trained linear autoencoder ------------------------------------------------------ */

static anamo_train_spec adam_spec(void)
{
    anamo_phase ph = anamo_phase_default("joint", ANAMO_PHASE_JOINT, ANAMO_OPT_ADAM, 0.01f, 100,
                                         1.0);
    ph.schedule.kind = ANAMO_SCHEDULE_STEP;
    ph.schedule.step_size = 100;
    ph.schedule.gamma = 0.1f;
    anamo_train_spec s;
    memset(&s, 0, sizeof s);
    s.loss = ANAMO_LOSS_MSE;
    s.nphases = 1;
    s.phases[0] = ph;
    s.epochs = 300;
    s.seed = 5;
    s.log_every = 1000;
    return s;
}

static void train_model(anamo_model *m, const anamo_dataset *train)
{
    anamo_train_spec spec = adam_spec();
    anamo_trainer *t = NULL;
    anamo_err err = {0};
    if (anamo_trainer_create(m, &spec, train, NULL, &t, &err) != ANAMO_OK)
        fail_msg("anamo_trainer_create: %s", err.msg);
    if (anamo_trainer_run(t, NULL, &err) != ANAMO_OK)
        fail_msg("anamo_trainer_run: %s", err.msg);
    anamo_trainer_free(t);
}

/* Linear E and D minimizing the MSE span the principal subspace (Baldi & Hornik 1989) and reach
 * the Eckart–Young error. The sets here have noise sd TRAIN_NOISE_SD = 0.1, not 0.01: the
 * encoder's components off the subspace only see the noise, so their curvature is the noise
 * variance, and at 1e-4 (against 9 along the subspace) Adam leaves them where they started
 * (training MSE stuck 14% above the optimum after 3000 full-batch epochs); at 1e-2 they
 * converge. Adam at 0.01, cut by 10 every 100 epochs, 300 epochs of batches of 100 (0.05 s):
 * observed angles ≤ 4.5e-4 rad, training MSE 1.6e-5 (relative) above the optimum, held-out MSE
 * within 4.2e-5 of the PCA's own. TRAINED_ANGLE_TOL = 0.01 rad and TRAINED_MSE_RTOL = 1e-3 leave
 * a margin of 20 or more for another BLAS's rounding and threading; an untrained model (angles
 * ~1 rad, checked below) or one stopped early fails them. */
static void test_trained_linear_autoencoder(void **state)
{
    subspace_set *S = *state;
    anamo_rng rng;
    anamo_rng_seed(&rng, DATA_SEED + 1);
    float *x_train = malloc(N_TRAIN * DIM * sizeof *x_train);
    float *x_test = malloc(N_TEST * DIM * sizeof *x_test);
    assert_true(x_train && x_test);
    sample_set(S, &rng, N_TRAIN, 0, TRAIN_NOISE_SD, x_train);
    sample_set(S, &rng, N_TEST, 0, TRAIN_NOISE_SD, x_test);
    anamo_dataset train = table(x_train, N_TRAIN, DIM, "noisier train");
    anamo_dataset test = table(x_test, N_TEST, DIM, "noisier test");
    anamo_pca p;
    anamo_err err = {0};
    double angles[K], pca_test = -1.0;
    assert_int_equal(anamo_pca_fit(&train, K, &p, &err), ANAMO_OK);
    anamo_model *m = make_model("linear 20", K, 100);
    assert_int_equal(anamo_pca_principal_angles(&p, m, angles, &err), ANAMO_OK);
    assert_true(angles[K - 1] > 10 * TRAINED_ANGLE_TOL); /* untrained: far from it */
    train_model(m, &train);
    assert_int_equal(anamo_pca_principal_angles(&p, m, angles, &err), ANAMO_OK);
    for (int i = 0; i < K; i++)
        expect_close("trained angle", i, angles[i], 0.0, 0.0, TRAINED_ANGLE_TOL);
    anamo_metrics got;
    const anamo_eval_spec mse = {.loss = ANAMO_LOSS_MSE, .jacobian_samples = -1};
    assert_int_equal(anamo_evaluate(m, &train, &mse, &got, &err), ANAMO_OK);
    /* Eckart–Young: no rank-3 affine map beats the optimum (1e-6: float reconstructions) */
    assert_true(got.mse >= p.optimum_mse * (1.0 - 1e-6));
    expect_close("train mse vs optimum", 0, got.mse, p.optimum_mse, TRAINED_MSE_RTOL, 0.0);
    assert_int_equal(anamo_evaluate(m, &test, &mse, &got, &err), ANAMO_OK);
    assert_int_equal(anamo_pca_mse(&p, &test, &pca_test, &err), ANAMO_OK);
    expect_close("test mse vs pca's", 0, got.mse, pca_test, TRAINED_MSE_RTOL, 0.0);
    anamo_model_free(m);
    anamo_pca_free(&p);
    free(x_train);
    free(x_test);
}

/* ---- 5. errors ---------------------------------------------------------------------------- */

static void expect_failure(int rc, const anamo_err *err, const char *part1, const char *part2)
{
    assert_int_equal(rc, ANAMO_ERR_ARG);
    assert_int_equal(err->code, ANAMO_ERR_ARG);
    if (!strstr(err->msg, part1) || (part2 && !strstr(err->msg, part2)))
        fail_msg("message '%s' lacks '%s' or '%s'", err->msg, part1, part2 ? part2 : "");
}

static void test_not_affine(void **state)
{
    subspace_set *S = *state;
    const char *bad[][3] = {{"linear 20, relu", "layer 1 is relu", NULL},
                            {"linear 8, sigmoid, linear 20", "layer 1 is sigmoid", NULL},
                            {"batchnorm, linear 20", "layer 0 is batchnorm", NULL}};
    for (size_t c = 0; c < sizeof bad / sizeof bad[0]; c++) {
        anamo_model *m = make_model(bad[c][0], K, 8);
        anamo_err err = {0};
        double angles[K];
        assert_false(anamo_model_decoder_is_affine(m));
        expect_failure(anamo_pca_principal_angles(&S->pca, m, angles, &err), &err, "not affine",
                       bad[c][1]);
        anamo_model_free(m);
    }
    const char *good[] = {"linear 20", "flatten, linear 20, identity",
                          "linear 20, unflatten 20 1 1"};
    for (size_t c = 0; c < sizeof good / sizeof good[0]; c++) {
        anamo_model *m = make_model(good[c], K, 8);
        double angles[K];
        anamo_err err = {0};
        assert_true(anamo_model_decoder_is_affine(m));
        assert_int_equal(anamo_pca_principal_angles(&S->pca, m, angles, &err), ANAMO_OK);
        anamo_model_free(m);
    }
}

static void test_sizes_checked(void **state)
{
    subspace_set *S = *state;
    anamo_err err = {0};
    double angles[K], mse;
    anamo_model *m = make_model("linear 20", 2, 8);
    expect_failure(anamo_pca_principal_angles(&S->pca, m, angles, &err), &err, "codes of 2 values",
                   "k = 3");
    anamo_model_free(m);
    const int64_t bad_k[] = {0, -1, DIM + 1};
    for (size_t c = 0; c < sizeof bad_k / sizeof bad_k[0]; c++) {
        anamo_pca p;
        char want[32];
        snprintf(want, sizeof want, "k = %lld", (long long)bad_k[c]);
        expect_failure(anamo_pca_fit(&S->train, bad_k[c], &p, &err), &err, want, "1 to 20");
        assert_null(p.components);
        anamo_pca_free(&p); /* harmless on a failed fit */
    }
    anamo_dataset narrow = table(S->x_train, N_TRAIN / 2, DIM / 2, "narrow set");
    expect_failure(anamo_pca_mse(&S->pca, &narrow, &mse, &err), &err, "narrow set", "10 values");
    anamo_dataset empty = table(S->x_train, 0, DIM, "empty set");
    anamo_pca p;
    expect_failure(anamo_pca_fit(&empty, 1, &p, &err), &err, "empty set", "0 samples");
    anamo_pca unfitted;
    memset(&unfitted, 0, sizeof unfitted);
    expect_failure(anamo_pca_mse(&unfitted, &S->train, &mse, &err), &err, "not a fitted", NULL);
}

static void test_non_finite_data(void **state)
{
    (void)state;
    float x[3 * 2] = {1, 2, 3, NAN, 5, 6};
    anamo_dataset ds = table(x, 3, 2, "nan set");
    anamo_pca p;
    anamo_err err = {0};
    expect_failure(anamo_pca_fit(&ds, 1, &p, &err), &err, "nan set", "feature 1");
    assert_null(p.mean);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mean_and_components),
        cmocka_unit_test(test_variances),
        cmocka_unit_test(test_optimum_is_projection_error),
        cmocka_unit_test(test_other_k),
        cmocka_unit_test(test_four_points),
        cmocka_unit_test(test_bytes_are_scaled),
        cmocka_unit_test(test_rank_deficient_data),
        cmocka_unit_test(test_angles_known),
        cmocka_unit_test(test_angles_small_batches),
        cmocka_unit_test(test_angles_three_layers),
        cmocka_unit_test(test_angles_standardized),
        cmocka_unit_test(test_trained_linear_autoencoder),
        cmocka_unit_test(test_not_affine),
        cmocka_unit_test(test_sizes_checked),
        cmocka_unit_test(test_non_finite_data),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
