/* test_jacobian.c — the decoder-Jacobian-weighted code ℓ1 (src/eval/jacobian.c) against truths
 * that do not share its code:
 *   - closed forms: a linear decoder's column norms ‖W[:, j]‖₂ (with and without a final
 *     sigmoid, which z stops before), W₂·diag(f′(W₁h + b₁))·W₁ for relu, step, step_ste and
 *     identity between two linear layers (f′ written here from the definitions), and a decoder
 *     that is only an activation (z = h, every norm 1);
 *   - central finite differences of z through smooth decoders: dense with tanh, a transposed
 *     convolution with batch norm (non-trivial running statistics, γ and β) and tanh, and a mixed
 *     one (batch norm 1d and 2d, unflatten, ConvTranspose2d, Conv2d, flatten of a channel-major
 *     batch, no final activation);
 *   - invariance of the weighted sum under the two rescalings that leave the decoder's function
 *     unchanged, while raw ℓ1 moves by c;
 *   - the sum over n samples equals the per-sample sums, with tangents in several chunks
 *     (code_dim > max_batch) and n not a multiple of the chunk, and a small max_batch gives the
 *     norms of a large one;
 *   - parameters, running statistics and the decoder's mode as they were, bit for bit;
 *   - timing on the MNIST and CIFAR decoders (printed; see JACOBIAN TIMING below).
 *
 * JACOBIAN TIMING (Release, random weights, every code non-zero so that no column is skipped;
 * this machine: 2 AMD EPYC cores, OpenBLAS 0.3.21, OpenMP build):
 *   MNIST dense decoder 64→128→784: 64 tangents per sample, one pass
 *       0.40 ms per sample (1 thread), 0.7–0.8 ms (2 threads)
 *   CIFAR decoder convT 48→24→12→3 on 48×4×4 codes: 768 tangents, 3 passes of 256
 *       96–108 ms per sample (1 thread), 97–104 ms (2 threads, GOMP_SPINCOUNT=1000)
 * With a second busy process on the two cores and the default OpenMP spin, 2 threads measured
 * 2–30 ms (MNIST) and 340–380 ms (CIFAR): programs should call anamo_program_setup.
 * The CIFAR time is sgemm (~30%), col2im (~20%) and OpenMP waiting, all inside the layer
 * kernels; 1,000 CIFAR samples take ~100 s here.
 * (the test prints the figures it measures on each run). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "test_util.h"

#include "eval/jacobian.h"
#include "nn/block.h"
#include "nn/layer.h"
#include "nn/model.h"

#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Closed forms: the tangent of e_j through a linear map is the float column W[:, j] exactly
 * (1·w plus zeros), and the norms are taken in double on both sides; what is left is float
 * rounding of one product per layer when two maps are chained (~1e-7 relative). */
#define CLOSED_RTOL 1e-6
/* Finite differences with step FD_H on codes of O(1): truncation h²/6·|z'''|/|z'| ≈ 2e-5
 * relative (tanh and batch-norm scales of O(1)); rounding: each float z carries ~1e-7·|z| and
 * the quotient by 2h turns that into ~5e-6 per element, a few 1e-5 on norms of O(0.1–1).
 * Measured worst: 1.7e-5 (dense, convT) and 1.2e-4 (the mixed decoder, rounding-bound: 2.5e-4
 * at h = 5e-3, 7.6e-5 at h = 2e-2). FD_RTOL = 1e-3 sits well above both; a wrong factor (a missing γ/√var, f′ at the wrong
 * element, a transposed kernel) is off by O(1) and fails by orders of magnitude. FD_ATOL
 * covers norms near 0. */
#define FD_H 1e-2f
#define FD_RTOL 1e-3
#define FD_ATOL 1e-5
/* Invariance: the rescaled decoder computes the same z up to float rounding of the rescaled
 * products (~1e-7 relative per layer); 1e-5 leaves room for sums of many terms. */
#define INV_RTOL 1e-5
#define SCALE_C 3.7f
/* Chunking: the same columns computed in passes of different sizes; sgemm may block the rows
 * differently, so allow float rounding. */
#define CHUNK_RTOL 1e-6

/* ---- helpers ------------------------------------------------------------------------------ */

static anamo_model *make_model(int c, int h, int w, const char *enc, const char *dec, int max_batch,
                               uint64_t seed)
{
    anamo_model_spec spec = {.in_c = c,
                             .in_h = h,
                             .in_w = w,
                             .encoder = enc,
                             .decoder = dec,
                             .init = ANAMO_INIT_PYTORCH,
                             .seed = seed,
                             .max_batch = max_batch};
    anamo_model *m = NULL;
    anamo_err err = {0};
    if (anamo_model_create(&spec, &m, &err) != ANAMO_OK)
        fail_msg("model create: %s", err.msg);
    return m;
}

static void *alloc_or_fail(size_t bytes)
{
    void *p = calloc(1, bytes ? bytes : 1);
    assert_non_null(p);
    return p;
}

/* Gives every batch-norm layer of the decoder running statistics and γ, β away from the
 * defaults (mean 0, var 1, γ 1, β 0), so that a tangent that ignores them is wrong. */
static void randomize_batchnorm(anamo_model *m, anamo_rng *rng)
{
    for (int i = 0; i < m->dec.nlayers; i++) {
        layer *l = &m->dec.layers[i];
        if (l->kind != LAYER_BATCHNORM)
            continue;
        fill_uniform(rng, l->running_mean, l->in_c, -0.5f, 0.5f);
        fill_uniform(rng, l->running_var, l->in_c, 0.2f, 3.0f);
        fill_weights(rng, l->weight, l->in_c); /* γ: |γ| in [0.5, 1], both signs */
        fill_uniform(rng, l->bias, l->in_c, -0.5f, 0.5f);
    }
}

/* The number of decoder layers that make z: all but a final activation. */
static int z_layers(const anamo_model *m)
{
    return m->dec.layers[m->dec.nlayers - 1].kind == LAYER_ACT ? m->dec.nlayers - 1
                                                               : m->dec.nlayers;
}

static double *norms_of(anamo_model *m, const float *h)
{
    double *n = alloc_or_fail((size_t)anamo_model_code_dim(m) * sizeof *n);
    anamo_err err = {0};
    if (decoder_jacobian_norms(m, h, n, &err) != ANAMO_OK)
        fail_msg("decoder_jacobian_norms: %s", err.msg);
    return n;
}

static double weighted_of(anamo_model *m, const float *codes, int64_t n)
{
    double s = -1.0;
    anamo_err err = {0};
    if (decoder_jacobian_weighted_l1(m, codes, n, &s, &err) != ANAMO_OK)
        fail_msg("decoder_jacobian_weighted_l1: %s", err.msg);
    return s;
}

static double raw_l1(const float *codes, int64_t n)
{
    double s = 0.0;
    for (int64_t i = 0; i < n; i++)
        s += fabs((double)codes[i]);
    return s;
}

/* ---- 1. closed forms ---------------------------------------------------------------------- */

/* ‖W[:, j]‖₂ of a (out, in) weight, in double. */
static double column_norm(const float *W, int64_t out, int64_t in, int64_t j)
{
    double s = 0.0;
    for (int64_t i = 0; i < out; i++)
        s += (double)W[i * in + j] * W[i * in + j];
    return sqrt(s);
}

static void test_linear_closed_form(void **state)
{
    (void)state;
    const char *decs[] = {"linear 5", "linear 5, sigmoid"};
    const float h[3] = {0.7f, -1.3f, 0.2f};
    for (int d = 0; d < 2; d++) {
        anamo_model *m = make_model(5, 1, 1, "linear 3", decs[d], 8, 11);
        const layer *l = &m->dec.layers[0];
        double *n = norms_of(m, h);
        for (int64_t j = 0; j < 3; j++)
            expect_close(decs[d], j, n[j], column_norm(l->weight, 5, 3, j), CLOSED_RTOL, 0.0);
        free(n);
        anamo_model_free(m);
    }
}

/* f′ from the definitions in activation.c's header, written apart from the library. */
static double act_prime(act_kind act, double x)
{
    switch (act) {
    case ACT_RELU: return x > 0.0 ? 1.0 : 0.0;
    case ACT_STEP: return 0.0;
    case ACT_STEP_STE: return fabs(x) <= 1.0 ? 1.0 : 0.0;
    default: return 1.0;
    }
}

/* "linear 6, ACT, linear 4" on 3 codes: column j of J = W₂ diag(f′(W₁h + b₁)) W₁[:, j]. */
static void two_layer_case(const char *dec, act_kind act)
{
    enum { M = 3, H = 6, O = 4 };
    anamo_model *m = make_model(O, 1, 1, "linear 3", dec, 8, 23);
    const layer *l1 = &m->dec.layers[0], *l2 = &m->dec.layers[2];
    const float h[M] = {1.5f, -0.8f, 2.1f}; /* pre-activations spread over ±2: both sides of
                                               relu's 0 and step_ste's ±1 */
    double d[H];
    for (int i = 0; i < H; i++) {
        double a = l1->bias[i];
        for (int j = 0; j < M; j++)
            a += (double)l1->weight[i * M + j] * h[j];
        d[i] = act_prime(act, a);
    }
    double *n = norms_of(m, h);
    for (int j = 0; j < M; j++) {
        double s = 0.0;
        for (int o = 0; o < O; o++) {
            double col = 0.0;
            for (int i = 0; i < H; i++)
                col += (double)l2->weight[o * H + i] * d[i] * l1->weight[i * M + j];
            s += col * col;
        }
        expect_close(dec, j, n[j], sqrt(s), CLOSED_RTOL, 1e-12);
    }
    free(n);
    anamo_model_free(m);
}

static void test_two_layer_closed_form(void **state)
{
    (void)state;
    two_layer_case("linear 6, relu, linear 4", ACT_RELU);
    two_layer_case("linear 6, step, linear 4, sigmoid", ACT_STEP);
    two_layer_case("linear 6, step_ste, linear 4", ACT_STEP_STE);
    two_layer_case("linear 6, identity, linear 4, tanh", ACT_IDENTITY);
}

/* A decoder that is only its final activation: z = h, so ∂z/∂h = I. */
static void test_activation_only_decoder(void **state)
{
    (void)state;
    anamo_model *m = make_model(5, 1, 1, "linear 5", "sigmoid", 4, 3);
    const float h[5] = {0.1f, -2.0f, 0.0f, 3.0f, 0.5f};
    double *n = norms_of(m, h);
    for (int j = 0; j < 5; j++)
        expect_close("activation-only", j, n[j], 1.0, 0.0, 0.0);
    expect_close("activation-only S", 0, weighted_of(m, h, 1), raw_l1(h, 5), 1e-12, 0.0);
    free(n);
    anamo_model_free(m);
}

/* ---- 2. finite differences ---------------------------------------------------------------- */

/* z(h) into z (double), sample-major, from the decoder's own forward with B = 1. */
static void z_at(anamo_model *m, const float *h, double *z)
{
    const int upto = z_layers(m);
    memcpy(m->codebuf, h, (size_t)m->dec.in_dim * sizeof(float));
    const float *out = block_forward_upto(&m->dec, m->codebuf, 1, upto);
    const int64_t nz = upto ? m->dec.layers[upto - 1].out_dim : m->dec.in_dim;
    for (int64_t i = 0; i < nz; i++)
        z[i] = out[i];
}

/* ‖(z(h + δe_j) − z(h − δe_j)) / (x₊ − x₋)‖₂ for every j, with the float steps as stored. */
static void fd_norms(anamo_model *m, const float *h, double *fd)
{
    /* z has x̂'s width: a final activation keeps the width */
    const int64_t K = m->dec.in_dim, zdim = m->dec.out_dim;
    float *hp = alloc_or_fail((size_t)K * sizeof *hp);
    double *zp = alloc_or_fail((size_t)zdim * sizeof *zp);
    double *zm = alloc_or_fail((size_t)zdim * sizeof *zm);
    for (int64_t j = 0; j < K; j++) {
        memcpy(hp, h, (size_t)K * sizeof *hp);
        const float xp = h[j] + FD_H, xm = h[j] - FD_H;
        hp[j] = xp;
        z_at(m, hp, zp);
        hp[j] = xm;
        z_at(m, hp, zm);
        double s = 0.0;
        for (int64_t i = 0; i < zdim; i++) {
            const double g = (zp[i] - zm[i]) / ((double)xp - (double)xm);
            s += g * g;
        }
        fd[j] = sqrt(s);
    }
    free(hp), free(zp), free(zm);
}

static void fd_case(int c, int hh, int ww, const char *enc, const char *dec, uint64_t seed)
{
    anamo_model *m = make_model(c, hh, ww, enc, dec, 16, seed);
    anamo_rng rng;
    anamo_rng_seed(&rng, seed + 100);
    randomize_batchnorm(m, &rng);
    model_set_eval(m);
    const int64_t K = anamo_model_code_dim(m);
    float *h = alloc_or_fail((size_t)K * sizeof *h);
    double *fd = alloc_or_fail((size_t)K * sizeof *fd);
    fill_uniform(&rng, h, K, -1.0f, 1.0f);
    double *n = norms_of(m, h);
    fd_norms(m, h, fd);
    double worst = 0.0;
    for (int64_t j = 0; j < K; j++) {
        expect_close(dec, j, n[j], fd[j], FD_RTOL, FD_ATOL);
        worst = fmax(worst, fabs(n[j] - fd[j]) / fmax(fd[j], 1e-30));
    }
    printf("jacobian fd: %-60.60s worst relative %.2g\n", dec, worst);
    free(h), free(fd), free(n);
    anamo_model_free(m);
}

static void test_finite_differences(void **state)
{
    (void)state;
    fd_case(6, 1, 1, "linear 4", "linear 7, tanh, linear 6, sigmoid", 5);
    /* codes 2×2×2; the first transposed convolution reads a sample-major input */
    fd_case(2, 4, 4, "conv2d 2 k4 s2 p1",
            "convtranspose2d 3 k4 s2 p1, batchnorm, tanh, convtranspose2d 2 k3 s1 p1, sigmoid", 6);
    /* batch norm on features and on channels, activations in both layouts, unflatten, Conv2d,
     * flatten of a channel-major batch, and no final activation (z = x̂) */
    fd_case(8, 1, 1, "linear 4",
            "linear 12, batchnorm, tanh, unflatten 3 2 2, convtranspose2d 4 k3 s1 p1, batchnorm, "
            "tanh, conv2d 2 k3 s1 p1, flatten, linear 8",
            7);
}

/* ---- 3. invariance ------------------------------------------------------------------------ */

/* Scales n floats by a. */
static void scale(float *x, int64_t n, float a)
{
    for (int64_t i = 0; i < n; i++)
        x[i] *= a;
}

/* The weighted sum and x̂ of the codes, for comparing a rescaled decoder with the original. */
static double weighted_and_output(anamo_model *m, const float *codes, int64_t n, float *xhat)
{
    double s = weighted_of(m, codes, n);
    const float *out = block_forward(&m->dec, codes, (int)n);
    memcpy(xhat, out, (size_t)(n * m->dec.out_dim) * sizeof(float));
    return s;
}

typedef struct inv_case {
    anamo_model *m;
    float *codes, *xhat0, *xhat1, *params0;
    int64_t n, K, D;
    double S0, L0;
} inv_case;

static void inv_begin(inv_case *ic, anamo_model *m, int64_t n, uint64_t seed)
{
    memset(ic, 0, sizeof *ic);
    ic->m = m, ic->n = n, ic->K = anamo_model_code_dim(m), ic->D = m->dec.out_dim;
    ic->codes = alloc_or_fail((size_t)(n * ic->K) * sizeof(float));
    ic->xhat0 = alloc_or_fail((size_t)(n * ic->D) * sizeof(float));
    ic->xhat1 = alloc_or_fail((size_t)(n * ic->D) * sizeof(float));
    ic->params0 = alloc_or_fail((size_t)m->dec.nparams * sizeof(float));
    memcpy(ic->params0, m->dec.params, (size_t)m->dec.nparams * sizeof(float));
    anamo_rng rng;
    anamo_rng_seed(&rng, seed);
    fill_uniform(&rng, ic->codes, n * ic->K, -1.0f, 1.0f);
    ic->codes[1] = ic->codes[ic->K + 3] = 0.0f; /* sparse codes: skipped columns too */
    ic->S0 = weighted_and_output(m, ic->codes, n, ic->xhat0);
    ic->L0 = raw_l1(ic->codes, n * ic->K);
    assert_true(ic->S0 > 0.0 && isfinite(ic->S0));
}

/* After a rescaling: x̂ unchanged (so it was a reparametrization), S unchanged; then the
 * original parameters back. */
static void inv_check(inv_case *ic, const char *what)
{
    double S1 = weighted_and_output(ic->m, ic->codes, ic->n, ic->xhat1);
    for (int64_t i = 0; i < ic->n * ic->D; i++)
        expect_close("rescaled x̂", i, ic->xhat1[i], ic->xhat0[i], 1e-5, 1e-6);
    expect_close(what, 0, S1, ic->S0, INV_RTOL, 0.0);
    memcpy(ic->m->dec.params, ic->params0, (size_t)ic->m->dec.nparams * sizeof(float));
}

static void inv_end(inv_case *ic)
{
    free(ic->codes), free(ic->xhat0), free(ic->xhat1), free(ic->params0);
    anamo_model_free(ic->m);
}

/* (a) h → c·h with the first map's code columns scaled by 1/c; raw ℓ1 moves by c. `cols`
 * scales the first layer's columns. */
static void scale_codes(inv_case *ic, void (*cols)(layer *, float))
{
    scale(ic->codes, ic->n * ic->K, SCALE_C);
    cols(&ic->m->dec.layers[0], 1.0f / SCALE_C);
    expect_close("raw l1 ratio", 0, raw_l1(ic->codes, ic->n * ic->K) / ic->L0, SCALE_C, 1e-6, 0);
    inv_check(ic, "S under h -> c h");
    scale(ic->codes, ic->n * ic->K, 1.0f / SCALE_C);
}

/* Dense: W (out, in), column j strided by in. */
static void dense_cols(layer *l, float a)
{
    for (int64_t i = 0; i < l->out_dim; i++)
        scale(l->weight + i * l->in_dim, l->in_dim, a);
}

static void dense_rows(layer *l, float a)
{
    scale(l->weight, l->out_dim * l->in_dim, a);
    scale(l->bias, l->out_dim, a);
}

/* ConvTranspose2d: W (in_c, out_c, k, k); input channel ci's slice is contiguous. */
static void convt_cols(layer *l, float a)
{
    scale(l->weight, (int64_t)l->in_c * l->out_c * l->k * l->k, a);
}

/* Output channel co: W[ci][co][:][:] for every ci, and bias[co]; all channels alike. */
static void convt_rows(layer *l, float a)
{
    const int64_t kk = (int64_t)l->k * l->k;
    for (int ci = 0; ci < l->in_c; ci++)
        for (int co = 0; co < l->out_c; co++)
            scale(l->weight + ((int64_t)ci * l->out_c + co) * kk, kk, a);
    scale(l->bias, l->out_c, a);
}

static void test_invariance_dense(void **state)
{
    (void)state;
    inv_case ic;
    inv_begin(&ic, make_model(10, 1, 1, "linear 6", "linear 16, relu, linear 10, sigmoid", 16, 31),
              9, 32);
    scale_codes(&ic, dense_cols);
    /* (b) hidden rows (and bias) by c, the next layer's columns by 1/c: relu(c·a) = c·relu(a) */
    dense_rows(&ic.m->dec.layers[0], SCALE_C);
    dense_cols(&ic.m->dec.layers[2], 1.0f / SCALE_C);
    inv_check(&ic, "S under hidden rescaling");
    /* the measure is not blind to the decoder: rows scaled by c without the compensation
     * scale every column of J, and so S, by c (relu and the linear layer after it) */
    dense_rows(&ic.m->dec.layers[0], SCALE_C);
    expect_close("S, uncompensated rows", 0, weighted_of(ic.m, ic.codes, ic.n), SCALE_C * ic.S0,
                 INV_RTOL, 0.0);
    inv_end(&ic);
}

static void test_invariance_convt(void **state)
{
    (void)state;
    inv_case ic;
    inv_begin(&ic,
              make_model(2, 8, 8, "conv2d 4 k4 s2 p1, relu, conv2d 4 k4 s2 p1",
                         "convtranspose2d 3 k4 s2 p1, relu, convtranspose2d 2 k4 s2 p1, "
                         "sigmoid",
                         16, 41),
              5, 42);
    scale_codes(&ic, convt_cols);
    convt_rows(&ic.m->dec.layers[0], SCALE_C);
    convt_cols(&ic.m->dec.layers[2], 1.0f / SCALE_C);
    inv_check(&ic, "S under hidden rescaling (convT)");
    inv_end(&ic);
}

/* ---- 4. batching over samples and over tangents ------------------------------------------- */

/* small (max_batch 5) and large (64) are the same decoder: code_dim 12 goes in chunks 5, 5, 2
 * in small. n = 7 codes, a few of them 0. */
static void batching_case(anamo_model *small, anamo_model *large)
{
    enum { N = 7 };
    assert_int_equal(small->dec.nparams, large->dec.nparams);
    assert_memory_equal(small->dec.params, large->dec.params,
                        (size_t)small->dec.nparams * sizeof(float));
    anamo_rng rng;
    anamo_rng_seed(&rng, 77);
    randomize_batchnorm(small, &rng);
    memcpy(large->dec.buffers, small->dec.buffers,
           (size_t)small->dec.nbuffer_floats * sizeof(float));
    memcpy(large->dec.params, small->dec.params, (size_t)small->dec.nparams * sizeof(float));
    const int64_t K = anamo_model_code_dim(small);
    assert_true(K > small->max_batch && K % small->max_batch != 0);
    float *codes = alloc_or_fail((size_t)(N * K) * sizeof *codes);
    fill_uniform(&rng, codes, N * K, -1.0f, 1.0f);
    codes[0] = codes[K + 5] = codes[3 * K + 11] = 0.0f;
    double per_sample = 0.0;
    for (int b = 0; b < N; b++) {
        double *ns = norms_of(small, codes + b * K), *nl = norms_of(large, codes + b * K);
        for (int64_t j = 0; j < K; j++) {
            expect_close("chunked norms", b * K + j, ns[j], nl[j], CHUNK_RTOL, 1e-12);
            per_sample += fabs((double)codes[b * K + j]) * ns[j];
        }
        free(ns), free(nl);
    }
    expect_close("S over n samples", 0, weighted_of(small, codes, N), per_sample, CHUNK_RTOL, 0);
    expect_close("S, large batch", 0, weighted_of(large, codes, N), per_sample, CHUNK_RTOL, 0);
    double s = -1.0;
    anamo_err err = {0};
    assert_int_equal(decoder_jacobian_weighted_l1(small, codes, 0, &s, &err), ANAMO_OK);
    assert_true(s == 0.0);
    assert_int_equal(decoder_jacobian_weighted_l1(small, codes, -1, &s, &err), ANAMO_ERR_ARG);
    free(codes);
}

static void test_batching(void **state)
{
    (void)state;
    const char *dense = "linear 9, tanh, linear 6";
    /* codes 3×2×2 */
    const char *conv = "convtranspose2d 3 k4 s2 p1, batchnorm, relu, convtranspose2d 2 k3 s1 p1, "
                       "sigmoid";
    anamo_model *ms[4] = {make_model(6, 1, 1, "linear 12", dense, 5, 51),
                          make_model(6, 1, 1, "linear 12", dense, 64, 51),
                          make_model(2, 4, 4, "conv2d 3 k4 s2 p1", conv, 5, 52),
                          make_model(2, 4, 4, "conv2d 3 k4 s2 p1", conv, 64, 52)};
    batching_case(ms[0], ms[1]);
    batching_case(ms[2], ms[3]);
    for (int i = 0; i < 4; i++)
        anamo_model_free(ms[i]);
}

/* ---- 5. nothing changed ------------------------------------------------------------------- */

static void test_parameters_unchanged(void **state)
{
    (void)state;
    anamo_model *m = make_model(2, 4, 4, "conv2d 3 k4 s2 p1",
                                "convtranspose2d 3 k4 s2 p1, batchnorm, tanh, "
                                "convtranspose2d 2 k3 s1 p1, sigmoid",
                                5, 61);
    anamo_rng rng;
    anamo_rng_seed(&rng, 62);
    randomize_batchnorm(m, &rng);
    block_set_training(&m->dec, 1); /* a caller mid-training: the mode must come back */
    block *d = &m->dec;
    float *p0 = alloc_or_fail((size_t)d->nparams * sizeof *p0);
    float *b0 = alloc_or_fail((size_t)d->nbuffer_floats * sizeof *b0);
    float *e0 = alloc_or_fail((size_t)m->enc.nparams * sizeof *e0);
    int64_t counts0[BLOCK_MAX_LAYERS];
    float *bias0[BLOCK_MAX_LAYERS];
    memcpy(p0, d->params, (size_t)d->nparams * sizeof *p0);
    memcpy(b0, d->buffers, (size_t)d->nbuffer_floats * sizeof *b0);
    memcpy(e0, m->enc.params, (size_t)m->enc.nparams * sizeof *e0);
    memcpy(counts0, d->counts, sizeof counts0);
    for (int i = 0; i < d->nlayers; i++)
        bias0[i] = d->layers[i].bias;
    const int64_t K = anamo_model_code_dim(m);
    float *codes = alloc_or_fail((size_t)(3 * K) * sizeof *codes);
    fill_uniform(&rng, codes, 3 * K, -1.0f, 1.0f);
    free(norms_of(m, codes));
    assert_true(weighted_of(m, codes, 3) > 0.0);
    assert_memory_equal(d->params, p0, (size_t)d->nparams * sizeof *p0);
    assert_memory_equal(d->buffers, b0, (size_t)d->nbuffer_floats * sizeof *b0);
    assert_memory_equal(m->enc.params, e0, (size_t)m->enc.nparams * sizeof *e0);
    assert_memory_equal(d->counts, counts0, sizeof counts0);
    assert_int_equal(d->training, 1);
    for (int i = 0; i < d->nlayers; i++) {
        assert_int_equal(d->layers[i].training, 1);
        assert_ptr_equal(d->layers[i].bias, bias0[i]);
    }
    free(p0), free(b0), free(e0), free(codes);
    anamo_model_free(m);
}

/* ---- timing ------------------------------------------------------------------------------- */

/* Seconds per sample of the weighted sum over n dense (all non-zero) codes. */
static double time_per_sample(anamo_model *m, int64_t n, const char *what)
{
    const int64_t K = anamo_model_code_dim(m);
    float *codes = alloc_or_fail((size_t)(n * K) * sizeof *codes);
    anamo_rng rng;
    anamo_rng_seed(&rng, 91);
    fill_uniform(&rng, codes, n * K, 0.1f, 1.0f);
    weighted_of(m, codes, 1); /* first touch of the buffers, OpenBLAS's threads */
    const double t0 = now_s();
    double S = weighted_of(m, codes, n);
    const double per = (now_s() - t0) / (double)n;
    assert_true(S > 0.0 && isfinite(S));
    printf("jacobian timing: %s: %lld tangents per sample, %.3f ms per sample (%d threads)\n", what,
           (long long)K, 1e3 * per, omp_get_max_threads());
    free(codes);
    return per;
}

static void test_timing(void **state)
{
    (void)state;
    anamo_model *mn = make_model(784, 1, 1, "linear 128, relu, linear 64",
                                 "linear 128, relu, linear 784, sigmoid", 256, 1);
    time_per_sample(mn, 200, "MNIST decoder 64-128-784");
    anamo_model_free(mn);
    anamo_model *cf = make_model(3, 32, 32,
                                 "conv2d 12 k4 s2 p1, relu, conv2d 24 k4 s2 p1, relu, "
                                 "conv2d 48 k4 s2 p1",
                                 "convtranspose2d 24 k4 s2 p1, relu, convtranspose2d 12 k4 s2 p1, "
                                 "relu, convtranspose2d 3 k4 s2 p1, sigmoid",
                                 256, 2);
    assert_int_equal(anamo_model_code_dim(cf), 48 * 4 * 4);
    time_per_sample(cf, 4, "CIFAR decoder convT 48-24-12-3");
    anamo_model_free(cf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_linear_closed_form),
        cmocka_unit_test(test_two_layer_closed_form),
        cmocka_unit_test(test_activation_only_decoder),
        cmocka_unit_test(test_finite_differences),
        cmocka_unit_test(test_invariance_dense),
        cmocka_unit_test(test_invariance_convt),
        cmocka_unit_test(test_batching),
        cmocka_unit_test(test_parameters_unchanged),
        cmocka_unit_test(test_timing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
