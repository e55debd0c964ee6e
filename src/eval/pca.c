/* pca.c — principal component analysis, the linear baseline of seed 001, and how far an affine
 * decoder's column space lies from the principal subspace.
 *
 * Fit. Over the N samples x_n of a dataset (in the model's raw scale: bytes / 255), in double:
 *     μ = (1/N) Σ x_n,   C = (1/N) Σ (x_n − μ)(x_n − μ)ᵀ,
 * C accumulated by dsyrk over chunks of centered rows, then C = V Λ Vᵀ by LAPACK's dsyevd.
 * variances = λ_1 ≥ … ≥ λ_dim (tiny negative rounding clamped to 0); components = the top-k
 * eigenvectors v_1 … v_k as the rows of P (k × dim), each signed so that its entry of largest
 * magnitude is positive (a reproducible choice; eigenvectors are defined up to sign).
 *
 * Eckart–Young. Among all reconstructions x̂ = c + A h with rank A ≤ k, the least mean squared
 * error per element over the set is reached by c = μ, A = Pᵀ, h = P (x − μ), and it is
 *     optimum_mse = (1/dim) Σ_{i>k} λ_i,
 * which anamo_pca_mse recomputes directly as (1/(N·dim)) Σ_n ‖r_n − Pᵀ P r_n‖², r_n = x_n − μ.
 *
 * Principal angles (Björck & Golub 1973). For subspaces with orthonormal bases Q_A (dim × r)
 * and Q_B (dim × k), the cosines of the principal angles are the singular values σ_i of
 * Q_Aᵀ Q_B, and θ_i = acos σ_i. Here Q_B = Pᵀ, and Q_A spans the columns of the decoder's
 * linear part L: an affine decoder is D(h) = D(0) + L h, so column i is D(e_i) − D(0), read
 * off by running the decoder on the codes 0, e_1, …, e_k (no layer internals needed; like
 * anamo_evaluate, this overwrites the decoder's last forward and the model's code buffer). With
 * standardized inputs the decoder speaks in (x − mean)/std, so row j of L is multiplied by
 * std_j to return to the input's scale (the mean is part of the shift and cancels).
 * Q_A comes from the thin SVD L = U S Wᵀ: the columns of U whose singular value exceeds
 * s_max · max(dim, k) · FLT_EPSILON (the decoder computes in float32, so a smaller one is
 * rounding, not a direction). A rank-r decoder (r < k) has r angles; the k − r directions of
 * the principal subspace it leaves unmatched are reported as π/2. In double, acos near σ = 1
 * is accurate to about sqrt(2·1e-16) ≈ 1.5e-8 rad. */
#include "core/err.h"
#include "core/lapack.h"
#include "data/data.h"
#include "nn/model.h"

#include <cblas.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Rows read, centered and multiplied at a time: 1024 MNIST rows are 3 MiB of floats and 6 MiB
 * of doubles, enough for dsyrk to run at full speed. */
#define PCA_CHUNK_ROWS 1024
/* Largest dimension fitted: the covariance is dim² doubles (2 GiB here) and dsyevd's work
 * space, 2·dim² more, must fit in LAPACK's 32-bit int. */
#define PCA_MAX_DIM 16384

/* ---- fit --------------------------------------------------------------------------------- */

static int check_fit_args(const anamo_dataset *ds, int64_t k, anamo_err *err)
{
    if (ds->n < 1 || ds->dim < 1)
        return anamo_err_set(err, ANAMO_ERR_ARG,
                             "pca: %s has %lld samples of %lld values; need at "
                             "least one of one",
                             ds->source, (long long)ds->n, (long long)ds->dim);
    if (ds->dim > PCA_MAX_DIM)
        return anamo_err_set(err, ANAMO_ERR_ARG,
                             "pca: %s has %lld values per sample, at most %d "
                             "allowed",
                             ds->source, (long long)ds->dim, PCA_MAX_DIM);
    if (k < 1 || k > ds->dim)
        return anamo_err_set(err, ANAMO_ERR_ARG,
                             "pca: k = %lld components, allowed 1 to %lld "
                             "(the samples' dimension)",
                             (long long)k, (long long)ds->dim);
    return ANAMO_OK;
}

/* The buffers of one fit: a chunk of float rows, the same rows centered in double, and C. */
typedef struct fit_work {
    float *rows;      /* (PCA_CHUNK_ROWS, dim) */
    double *centered; /* (PCA_CHUNK_ROWS, dim) */
    double *cov;      /* (dim, dim); the upper triangle row-major is filled */
} fit_work;

static void fit_work_free(fit_work *w)
{
    anamo_free(w->rows), anamo_free(w->centered), anamo_free(w->cov);
}

static int chunk_rows(int64_t n, int64_t first)
{
    return (int)(n - first < PCA_CHUNK_ROWS ? n - first : PCA_CHUNK_ROWS);
}

/* Elements of a chunk buffer for ds: its first chunk's rows of dim values. */
static size_t chunk_elems(const anamo_dataset *ds)
{
    return (size_t)chunk_rows(ds->n, 0) * (size_t)ds->dim;
}

/* mean (dim) = (1/N) Σ x_n; fails if a feature's mean is not finite (NaN or Inf in the data). */
static int dataset_mean(const anamo_dataset *ds, float *rows, double *mean, anamo_err *err)
{
    const int64_t dim = ds->dim;
    memset(mean, 0, (size_t)dim * sizeof *mean);
    for (int64_t first = 0; first < ds->n; first += PCA_CHUNK_ROWS) {
        int count = chunk_rows(ds->n, first);
        data_rows(ds, first, count, rows);
        for (int b = 0; b < count; b++)
            for (int64_t j = 0; j < dim; j++)
                mean[j] += rows[b * dim + j];
    }
    for (int64_t j = 0; j < dim; j++) {
        mean[j] /= (double)ds->n;
        if (!isfinite(mean[j]))
            return anamo_err_set(err, ANAMO_ERR_ARG,
                                 "pca: %s: feature %lld is not finite on some "
                                 "sample",
                                 ds->source, (long long)j);
    }
    return ANAMO_OK;
}

/* out (count, dim) = rows − mean, in double. */
static void center_rows(const float *rows, const double *mean, int count, int64_t dim, double *out)
{
    for (int b = 0; b < count; b++)
        for (int64_t j = 0; j < dim; j++)
            out[b * dim + j] = (double)rows[b * dim + j] - mean[j];
}

/* cov (upper triangle) = (1/N) Σ (x_n − μ)(x_n − μ)ᵀ, one dsyrk per chunk. */
static void covariance(const anamo_dataset *ds, const double *mean, fit_work *w)
{
    const int64_t dim = ds->dim;
    for (int64_t first = 0; first < ds->n; first += PCA_CHUNK_ROWS) {
        int count = chunk_rows(ds->n, first);
        data_rows(ds, first, count, w->rows);
        center_rows(w->rows, mean, count, dim, w->centered);
        cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, (int)dim, count, 1.0 / (double)ds->n,
                    w->centered, (int)dim, 1.0, w->cov, (int)dim);
    }
}

/* Flips v (dim) so that its entry of largest magnitude is positive. */
static void fix_sign(double *v, int64_t dim)
{
    int64_t big = 0;
    for (int64_t j = 1; j < dim; j++)
        if (fabs(v[j]) > fabs(v[big]))
            big = j;
    if (v[big] < 0.0)
        for (int64_t j = 0; j < dim; j++)
            v[j] = -v[j];
}

/* The error for LAPACK's info (not 0) from routine on the rows × cols matrix named what. */
static int lapack_failed(anamo_err *err, int info, const char *context, const char *routine,
                         int64_t rows, int64_t cols, const char *what)
{
    if (info == LAPACK_NO_MEMORY)
        return anamo_err_set(err, ANAMO_ERR_NOMEM, "%s: %s has no memory for the %lld × %lld %s",
                             context, routine, (long long)rows, (long long)cols, what);
    return anamo_err_set(err, ANAMO_ERR_ARG, "%s: %s failed (info %d) on the %lld × %lld %s",
                         context, routine, info, (long long)rows, (long long)cols, what);
}

/* C = V Λ Vᵀ; fills out->variances (decreasing) and out->components (top k, as rows).
 * The row-major upper triangle is the column-major lower one, and column-major eigenvectors
 * come back as contiguous rows: eigenvector i (ascending order) is cov[i·dim ..]. */
static int eigen_top_k(double *cov, int64_t dim, int64_t k, anamo_pca *out, anamo_err *err)
{
    double *w = anamo_alloc((size_t)dim * sizeof *w);
    if (!w)
        return anamo_err_set(err, ANAMO_ERR_NOMEM, "pca: cannot allocate %lld eigenvalues",
                             (long long)dim);
    int info = lapack_dsyevd_cols((int)dim, cov, w);
    if (info != 0) {
        anamo_free(w);
        return lapack_failed(err, info, "pca", "dsyevd", dim, dim, "covariance");
    }
    for (int64_t i = 0; i < dim; i++)
        out->variances[i] = w[dim - 1 - i] > 0.0 ? w[dim - 1 - i] : 0.0;
    for (int64_t i = 0; i < k; i++) {
        double *row = out->components + i * dim;
        memcpy(row, cov + (dim - 1 - i) * dim, (size_t)dim * sizeof *row);
        fix_sign(row, dim);
    }
    anamo_free(w);
    return ANAMO_OK;
}

static double tail_mse(const double *variances, int64_t dim, int64_t k)
{
    double tail = 0.0;
    for (int64_t i = dim - 1; i >= k; i--) /* smallest first: less rounding */
        tail += variances[i];
    return tail / (double)dim;
}

int anamo_pca_fit(const anamo_dataset *ds, int64_t k, anamo_pca *out, anamo_err *err)
{
    memset(out, 0, sizeof *out);
    int rc = check_fit_args(ds, k, err);
    if (rc)
        return rc;
    const int64_t dim = ds->dim;
    fit_work w = {
        .rows = anamo_alloc(chunk_elems(ds) * sizeof(float)),
        .centered = anamo_alloc(chunk_elems(ds) * sizeof(double)),
        .cov = anamo_alloc((size_t)(dim * dim) * sizeof(double)),
    };
    out->dim = dim, out->k = k;
    out->mean = anamo_alloc((size_t)dim * sizeof(double));
    out->components = anamo_alloc((size_t)(k * dim) * sizeof(double));
    out->variances = anamo_alloc((size_t)dim * sizeof(double));
    if (!w.rows || !w.centered || !w.cov || !out->mean || !out->components || !out->variances)
        rc = anamo_err_set(err, ANAMO_ERR_NOMEM,
                           "pca: cannot allocate a %lld × %lld covariance "
                           "and its work space",
                           (long long)dim, (long long)dim);
    if (!rc)
        rc = dataset_mean(ds, w.rows, out->mean, err);
    if (!rc) {
        covariance(ds, out->mean, &w);
        rc = eigen_top_k(w.cov, dim, k, out, err);
    }
    fit_work_free(&w);
    if (rc) {
        anamo_pca_free(out);
        return rc;
    }
    out->optimum_mse = tail_mse(out->variances, dim, k);
    return ANAMO_OK;
}

void anamo_pca_free(anamo_pca *p)
{
    if (!p)
        return;
    anamo_free(p->mean), anamo_free(p->components), anamo_free(p->variances);
    memset(p, 0, sizeof *p);
}

/* ---- reconstruction error ---------------------------------------------------------------- */

static int check_pca(const anamo_pca *p, anamo_err *err)
{
    if (!p->mean || !p->components || !p->variances || p->k < 1 || p->k > p->dim)
        return anamo_err_set(err, ANAMO_ERR_ARG, "pca: not a fitted PCA (k = %lld, dim = %lld)",
                             (long long)p->k, (long long)p->dim);
    return ANAMO_OK;
}

/* Σ over the chunk's rows of ‖r − Pᵀ P r‖², r = x − μ: codes (count, k) = R Pᵀ, then
 * R −= codes · P, both by dgemm. */
static double chunk_sq_error(const anamo_pca *p, double *r, double *codes, int count)
{
    const int dim = (int)p->dim, k = (int)p->k;
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, count, k, dim, 1.0, r, dim, p->components,
                dim, 0.0, codes, k);
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, count, dim, k, -1.0, codes, k,
                p->components, dim, 1.0, r, dim);
    double sq = 0.0;
    for (int64_t i = 0; i < (int64_t)count * dim; i++)
        sq += r[i] * r[i];
    return sq;
}

int anamo_pca_mse(const anamo_pca *p, const anamo_dataset *ds, double *mse, anamo_err *err)
{
    int rc = check_pca(p, err);
    if (rc)
        return rc;
    if (ds->dim != p->dim || ds->n < 1)
        return anamo_err_set(err, ANAMO_ERR_ARG,
                             "pca mse: %s has %lld samples of %lld values; the "
                             "PCA was fitted to %lld values",
                             ds->source, (long long)ds->n, (long long)ds->dim, (long long)p->dim);
    const int64_t dim = p->dim;
    float *rows = anamo_alloc(chunk_elems(ds) * sizeof(float));
    double *r = anamo_alloc(chunk_elems(ds) * sizeof(double));
    double *codes = anamo_alloc((size_t)chunk_rows(ds->n, 0) * (size_t)p->k * sizeof(double));
    if (!rows || !r || !codes) {
        anamo_free(rows), anamo_free(r), anamo_free(codes);
        return anamo_err_set(err, ANAMO_ERR_NOMEM,
                             "pca mse: cannot allocate %d rows of %lld "
                             "values",
                             PCA_CHUNK_ROWS, (long long)dim);
    }
    double sq = 0.0;
    for (int64_t first = 0; first < ds->n; first += PCA_CHUNK_ROWS) {
        int count = chunk_rows(ds->n, first);
        data_rows(ds, first, count, rows);
        center_rows(rows, p->mean, count, dim, r);
        sq += chunk_sq_error(p, r, codes, count);
    }
    *mse = sq / ((double)ds->n * (double)dim);
    anamo_free(rows), anamo_free(r), anamo_free(codes);
    return ANAMO_OK;
}

/* ---- affine decoders --------------------------------------------------------------------- */

static int layer_is_affine(const layer *l)
{
    return l->kind == LAYER_LINEAR || l->kind == LAYER_FLATTEN || l->kind == LAYER_UNFLATTEN ||
           (l->kind == LAYER_ACT && l->act == ACT_IDENTITY);
}

/* Index of the decoder's first layer that is not affine, or −1. */
static int first_non_affine(const anamo_model *m)
{
    for (int i = 0; i < m->dec.nlayers; i++)
        if (!layer_is_affine(&m->dec.layers[i]))
            return i;
    return -1;
}

static const char *layer_word(const layer *l)
{
    switch (l->kind) {
    case LAYER_LINEAR: return "linear";
    case LAYER_CONV2D: return "conv2d";
    case LAYER_CONVT2D: return "convtranspose2d";
    case LAYER_BATCHNORM: return "batchnorm";
    case LAYER_FLATTEN: return "flatten";
    case LAYER_UNFLATTEN: return "unflatten";
    case LAYER_ACT:
    default: return act_name(l->act);
    }
}

int anamo_model_decoder_is_affine(const anamo_model *m) { return first_non_affine(m) < 0; }

static int check_angle_args(const anamo_pca *p, const anamo_model *m, anamo_err *err)
{
    int rc = check_pca(p, err);
    if (rc)
        return rc;
    int bad = first_non_affine(m);
    if (bad >= 0)
        return anamo_err_set(err, ANAMO_ERR_ARG,
                             "principal angles: decoder is not affine: layer %d "
                             "is %s (allowed: linear, identity, flatten, unflatten)",
                             bad, layer_word(&m->dec.layers[bad]));
    if (m->dec.in_dim != p->k)
        return anamo_err_set(err, ANAMO_ERR_ARG,
                             "principal angles: the decoder takes codes of %lld "
                             "values, the PCA has k = %lld components",
                             (long long)m->dec.in_dim, (long long)p->k);
    if (m->in_dim != p->dim)
        return anamo_err_set(err, ANAMO_ERR_ARG,
                             "principal angles: the model's samples have %lld "
                             "values, the PCA's %lld",
                             (long long)m->in_dim, (long long)p->dim);
    return ANAMO_OK;
}

/* L (dim, k) row-major: column i = (D(e_i) − D(0)) · std, the decoder's linear part in the
 * input's scale. The codes go through the decoder max_batch at a time from the model's own
 * code buffer (max_batch × k), as evaluation does, so that the decoder never keeps a pointer
 * to memory freed here. */
static void decoder_columns(anamo_model *m, int64_t k, double *d0, double *L)
{
    const int64_t dim = m->in_dim;
    float *codes = m->codebuf;
    memset(codes, 0, (size_t)k * sizeof *codes);
    const float *out = block_forward(&m->dec, codes, 1);
    for (int64_t j = 0; j < dim; j++)
        d0[j] = out[j];
    for (int64_t first = 0; first < k; first += m->max_batch) {
        int B = (int)(k - first < m->max_batch ? k - first : m->max_batch);
        memset(codes, 0, (size_t)(B * k) * sizeof *codes);
        for (int b = 0; b < B; b++)
            codes[b * k + first + b] = 1.0f;
        out = block_forward(&m->dec, codes, B);
        for (int b = 0; b < B; b++)
            for (int64_t j = 0; j < dim; j++) {
                double scale = m->standardize ? m->norm_std[j] : 1.0;
                L[j * k + first + b] = ((double)out[b * dim + j] - d0[j]) * scale;
            }
    }
}

static int all_finite(const double *L, int64_t dim, int64_t k, anamo_err *err)
{
    for (int64_t j = 0; j < dim; j++)
        for (int64_t i = 0; i < k; i++)
            if (!isfinite(L[j * k + i]))
                return anamo_err_set(err, ANAMO_ERR_ARG,
                                     "principal angles: output %lld of the "
                                     "decoder is not finite at code e_%lld",
                                     (long long)j, (long long)i);
    return ANAMO_OK;
}

/* Overwrites L (dim, k) with the left singular vectors U (dim, k) of its thin SVD, in order of
 * decreasing singular value; *rank = how many of them span L's columns (see the header). */
static int column_basis(double *L, int64_t dim, int64_t k, int64_t *rank, anamo_err *err)
{
    double *s = anamo_alloc((size_t)k * sizeof *s);
    double *u = anamo_alloc((size_t)(dim * k) * sizeof *u);
    if (!s || !u) {
        anamo_free(s), anamo_free(u);
        return anamo_err_set(err, ANAMO_ERR_NOMEM,
                             "principal angles: cannot allocate the SVD of a "
                             "%lld × %lld decoder",
                             (long long)dim, (long long)k);
    }
    int info = lapack_dgesvd_rows((int)dim, (int)k, L, s, u), rc = ANAMO_OK;
    if (info != 0)
        rc = lapack_failed(err, info, "principal angles", "dgesvd", dim, k, "decoder");
    const double tol = s[0] * (double)(dim > k ? dim : k) * FLT_EPSILON;
    *rank = 0;
    while (!rc && *rank < k && s[*rank] > tol)
        ++*rank;
    if (!rc)
        memcpy(L, u, (size_t)(dim * k) * sizeof *u);
    anamo_free(s), anamo_free(u);
    return rc;
}

/* cosines (r) = the singular values of Q_decᵀ Pᵀ (r × k), Q_dec the first r columns of Q. */
static int cosines(const anamo_pca *p, const double *Q, int64_t r, double *cos_out, anamo_err *err)
{
    const int64_t dim = p->dim, k = p->k;
    double *M = anamo_alloc((size_t)(r * k) * sizeof *M);
    if (!M)
        return anamo_err_set(err, ANAMO_ERR_NOMEM,
                             "principal angles: cannot allocate a %lld × %lld matrix", (long long)r,
                             (long long)k);
    cblas_dgemm(CblasRowMajor, CblasTrans, CblasTrans, (int)r, (int)k, (int)dim, 1.0, Q, (int)k,
                p->components, (int)dim, 0.0, M, (int)k);
    int info = lapack_dgesvd_rows((int)r, (int)k, M, cos_out, NULL);
    anamo_free(M);
    if (info != 0)
        return lapack_failed(err, info, "principal angles", "dgesvd", r, k, "cosine matrix");
    return ANAMO_OK;
}

/* angles (k) = acos of the r cosines, then π/2 for the k − r unmatched directions: ascending,
 * since dgesvd returns the cosines in decreasing order. */
static void angles_from_cosines(const double *cos_in, int64_t r, int64_t k, double *angles)
{
    for (int64_t i = 0; i < k; i++)
        angles[i] = i < r ? acos(fmin(1.0, fmax(-1.0, cos_in[i]))) : acos(0.0);
}

int anamo_pca_principal_angles(const anamo_pca *p, anamo_model *m, double *angles, anamo_err *err)
{
    int rc = check_angle_args(p, m, err);
    if (rc)
        return rc;
    const int64_t dim = p->dim, k = p->k;
    double *d0 = anamo_alloc((size_t)dim * sizeof *d0);
    double *L = anamo_alloc((size_t)(dim * k) * sizeof *L);
    double *cos_sv = anamo_alloc((size_t)k * sizeof *cos_sv);
    if (!d0 || !L || !cos_sv)
        rc = anamo_err_set(err, ANAMO_ERR_NOMEM,
                           "principal angles: cannot allocate %lld decoder "
                           "columns of %lld values",
                           (long long)k, (long long)dim);
    int64_t rank = 0;
    if (!rc) {
        decoder_columns(m, k, d0, L);
        rc = all_finite(L, dim, k, err);
    }
    if (!rc)
        rc = column_basis(L, dim, k, &rank, err);
    if (!rc && rank > 0)
        rc = cosines(p, L, rank, cos_sv, err);
    if (!rc)
        angles_from_cosines(cos_sv, rank, k, angles);
    anamo_free(d0), anamo_free(L), anamo_free(cos_sv);
    return rc;
}
