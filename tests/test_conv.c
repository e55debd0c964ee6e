/* test_conv.c — Conv2d, ConvTranspose2d and batch norm inside blocks, each against a truth
 * that does not share their code:
 *   - central finite differences of J = Σ r·out (the approach of test_grad.c) for dx and every
 *     parameter, through blocks of odd shapes and chains of layers, with both backward
 *     switches, batch norm in training mode (the objective recomputes the batch statistics) and
 *     in evaluation mode;
 *   - the definitions of nn.Conv2d and nn.ConvTranspose2d written as direct loops in double;
 *   - adjointness ⟨conv(x), y⟩ = ⟨x, convT(y)⟩ for a shared weight;
 *   - a 1×1 convolution = a dense layer applied at every pixel;
 *   - small cases computed by hand, and the output sizes of PyTorch's documentation;
 *   - batch norm's normalization, PyTorch's running-statistics rule, evaluation with the
 *     running statistics, and a checkpoint round trip;
 *   - the threaded paths (above the OpenMP thresholds) against the same block run one sample at
 *     a time (serial paths, which the checks above cover).
 * The whole suite runs twice: on im2col + sgemm (conv.c) and on oneDNN's primitives
 * (conv_dnnl.c; model.conv = dnnl, so a layer oneDNN could not do fails the suite).
 * Tolerances are stated where they are used, with the reason for their size. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "test_util.h"

#include "io/safetensors.h"
#include "nn/block.h"
#include "nn/layer.h"
#include "nn/model.h"

#include <float.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Finite differences, as test_grad.c: J(θ ± h) from the float32 forward, accumulated in double,
 * divided by the difference of the float values actually stored.
 *   truncation  h²/6·|J'''|: 0 for a pure convolution block (J is linear in the input and in
 *               each single parameter); with tanh, sigmoid and batch norm it is small except
 *               where a training-mode batch norm's statistics rest on few values: measured,
 *               up to 7e-3 on a gradient of 4 (0.2%) for a batch norm over 5 samples, with
 *               h = 1e-3;
 *   rounding    each float output that moves carries u·|out| ≈ 6e-8·O(1) of rounding; a bias or
 *               a batch-norm input moves up to ~300 outputs of a case here, so the difference
 *               of J carries ≲ √300·6e-8 ≈ 1e-6 and the quotient by 2h ≈ 5e-4 (7e-4 the most
 *               measured, behind a training-mode batch norm).
 * A gradient passes when |fd − analytic| ≤ FD_ATOL + FD_RTOL·max(|fd|, |analytic|) with
 * FD_ATOL = 1e-3 (above the rounding) and FD_RTOL = 1e-2 (gradients here reach ~30, where the
 * rounding is relative). Measured, the worst case uses 40% of its bound (a training-mode batch
 * norm: rounding-bound, it fails at h = 5e-4, and truncation fails at h = 4e-3). A wrong
 * derivative (a missing term, a transposed kernel, a shifted window, a dropped batch-norm
 * term) is off by O(1) relative and fails by orders of magnitude.
 * Relu's kink: a perturbation that moves any relu input across 0 would mix two linear pieces;
 * every forward of the objective compares the signs of all relu inputs with those at the base
 * point, and if any flipped the whole check is redone at a fresh input. */
#define FD_H 1e-3f
#define FD_RTOL 1e-2
#define FD_ATOL 1e-3
#define FD_TRIES 40
/* A sentinel no backward could write by accident: "untouched" means still this. */
#define SENTINEL 12345.0f
/* Unit roundoff of float32. */
#define U32 (FLT_EPSILON / 2)

/* ---- helpers ----------------------------------------------------------------------------- */

static void *alloc_or_fail(size_t bytes)
{
    void *p = calloc(1, bytes ? bytes : 1);
    assert_non_null(p);
    return p;
}

static float *copy_of(const float *x, int64_t n)
{
    float *c = alloc_or_fail((size_t)n * sizeof *c);
    memcpy(c, x, (size_t)n * sizeof *c);
    return c;
}

/* The implementation every block of the suite runs its convolutions on: main runs the whole
 * suite once on im2col + sgemm and once on oneDNN (a layer oneDNN cannot do fails). */
static anamo_conv_impl suite_conv_impl = ANAMO_CONV_IM2COL;

static void create_ok(block *b, const char *spec, int c, int h, int w, int max_batch)
{
    anamo_err err = {0};
    if (block_create(b, "encoder", spec, c, h, w, max_batch, suite_conv_impl, &err) != ANAMO_OK)
        fail_msg("block_create '%s' on %d×%d×%d: %s", spec, c, h, w, err.msg);
}

typedef double (*objective_fn)(void *ctx);

/* Central difference of J with respect to *p; *p is restored. */
static double central_diff(float *p, objective_fn J, void *ctx, float h)
{
    const float v = *p, vp = v + h, vm = v - h;
    *p = vp;
    const double jp = J(ctx);
    *p = vm;
    const double jm = J(ctx);
    *p = v;
    return (jp - jm) / ((double)vp - (double)vm);
}

static layer *find_layer(block *b, layer_kind kind, int nth)
{
    for (int i = 0, seen = 0; i < b->nlayers; i++)
        if (b->layers[i].kind == kind && seen++ == nth)
            return &b->layers[i];
    fail_msg("no layer of kind %d (#%d) in the block", (int)kind, nth);
    return NULL;
}

/* Batch norm away from its initial state, so that γ, β and the running statistics all act:
 * γ ∈ [0.5, 1.5], β ∈ [−0.5, 0.5], running mean ∈ [−0.5, 0.5], running variance ∈ [0.5, 2]. */
static void randomize_batchnorm(block *b, anamo_rng *rng)
{
    for (int i = 0; i < b->nlayers; i++) {
        layer *l = &b->layers[i];
        if (l->kind != LAYER_BATCHNORM)
            continue;
        fill_uniform(rng, l->weight, l->in_c, 0.5f, 1.5f);
        fill_uniform(rng, l->bias, l->in_c, -0.5f, 0.5f);
        fill_uniform(rng, l->running_mean, l->in_c, -0.5f, 0.5f);
        fill_uniform(rng, l->running_var, l->in_c, 0.5f, 2.0f);
    }
}

/* ---- the definitions, in double ---------------------------------------------------------- */

/* nn.Conv2d (PyTorch's documentation, cross-correlation):
 *   out[b][o][y][x] = bias[o] + Σ_{c,i,j} W[o][c][i][j]·in[b][c][y·s − p + i][x·s − p + j]
 * with the input 0 outside. magnitude = 1 gives Σ|W|·|in| + |bias| instead: the size against
 * which a float32 evaluation's rounding is measured. */
typedef struct conv_shape {
    int B, ci, h, w, co, k, s, p, op, oh, ow;
} conv_shape;

static void ref_conv2d(const conv_shape *g, const float *in, const float *W, const float *bias,
                       int magnitude, double *out)
{
    for (int b = 0; b < g->B; b++)
        for (int o = 0; o < g->co; o++)
            for (int y = 0; y < g->oh; y++)
                for (int x = 0; x < g->ow; x++) {
                    double sum = magnitude ? fabs(bias[o]) : bias[o];
                    for (int c = 0; c < g->ci; c++)
                        for (int i = 0; i < g->k; i++)
                            for (int j = 0; j < g->k; j++) {
                                const int iy = y * g->s - g->p + i, ix = x * g->s - g->p + j;
                                if (iy < 0 || iy >= g->h || ix < 0 || ix >= g->w)
                                    continue;
                                const double wv = W[((o * g->ci + c) * g->k + i) * g->k + j];
                                const double xv = in[((b * g->ci + c) * g->h + iy) * g->w + ix];
                                sum += magnitude ? fabs(wv * xv) : wv * xv;
                            }
                    out[((b * g->co + o) * g->oh + y) * g->ow + x] = sum;
                }
}

/* nn.ConvTranspose2d: each input value scatters its kernel,
 *   out[b][o][y·s − p + i][x·s − p + j] += W[c][o][i][j]·in[b][c][y][x],
 * dropping what falls outside the (oh, ow) output; every output starts at bias[o]. Here
 * (ci, h, w) is the input and (co, oh, ow) the output. */
static void ref_convt2d(const conv_shape *g, const float *in, const float *W, const float *bias,
                        int magnitude, double *out)
{
    for (int b = 0; b < g->B; b++)
        for (int o = 0; o < g->co; o++)
            for (int q = 0; q < g->oh * g->ow; q++)
                out[(b * g->co + o) * g->oh * g->ow + q] = magnitude ? fabs(bias[o]) : bias[o];
    for (int b = 0; b < g->B; b++)
        for (int c = 0; c < g->ci; c++)
            for (int y = 0; y < g->h; y++)
                for (int x = 0; x < g->w; x++)
                    for (int o = 0; o < g->co; o++)
                        for (int i = 0; i < g->k; i++)
                            for (int j = 0; j < g->k; j++) {
                                const int oy = y * g->s - g->p + i, ox = x * g->s - g->p + j;
                                if (oy < 0 || oy >= g->oh || ox < 0 || ox >= g->ow)
                                    continue;
                                const double wv = W[((c * g->co + o) * g->k + i) * g->k + j];
                                const double xv = in[((b * g->ci + c) * g->h + y) * g->w + x];
                                out[((b * g->co + o) * g->oh + oy) * g->ow + ox] += magnitude
                                                                                        ? fabs(wv *
                                                                                               xv)
                                                                                        : wv * xv;
                            }
}

static void fill_abs(float *dst, const float *src, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        dst[i] = fabsf(src[i]);
}

/* ---- finite differences through blocks --------------------------------------------------- */

typedef struct fd_case {
    const char *spec;
    int c, h, w, B;
    int upto; /* backward from layer upto−1's output (0: from the block's output) */
} fd_case;

typedef struct fd_ctx {
    block *b;
    float *x;
    const float *r;
    int B, upto;
    int64_t nout, nsigns;
    unsigned char *base, *now; /* signs of every relu input: at the base point, now */
    int crossed;               /* some perturbation flipped one */
} fd_ctx;

/* Signs of the inputs of the relus among layers [0, upto) after a forward (s may be NULL to
 * count them). */
static int64_t relu_signs(const block *b, const float *x, int B, int upto, unsigned char *s)
{
    int64_t n = 0;
    for (int i = 0; i < upto; i++) {
        const layer *l = &b->layers[i];
        if (l->kind != LAYER_ACT || l->act != ACT_RELU)
            continue;
        const float *in = i ? b->layers[i - 1].out : x;
        for (int64_t k = 0; k < (int64_t)B * l->in_dim; k++, n++)
            if (s)
                s[n] = in[k] > 0.0f;
    }
    return n;
}

static double fd_objective(void *p)
{
    fd_ctx *c = p;
    const float *out = block_forward_upto(c->b, c->x, c->B, c->upto);
    relu_signs(c->b, c->x, c->B, c->upto, c->now);
    if (c->nsigns && memcmp(c->base, c->now, (size_t)c->nsigns))
        c->crossed = 1;
    return weighted_sum(c->r, out, c->nout);
}

/* The backward of the block under all four switch settings against finite differences over
 * the input and over every parameter. */
static void check_block_fd(const fd_case *fc, int training, uint64_t seed)
{
    block b;
    create_ok(&b, fc->spec, fc->c, fc->h, fc->w, fc->B);
    anamo_rng rng;
    anamo_rng_seed(&rng, seed);
    block_init(&b, ANAMO_INIT_PYTORCH, 0.0f, &rng);
    randomize_batchnorm(&b, &rng);
    block_set_training(&b, training);
    const int B = fc->B, upto = fc->upto ? fc->upto : b.nlayers;
    const int64_t nx = B * b.in_dim, np = b.nparams;
    fd_ctx c = {.b = &b, .B = B, .upto = upto, .nout = B * b.layers[upto - 1].out_dim};
    c.nsigns = relu_signs(&b, NULL, B, upto, NULL);
    c.x = alloc_or_fail((size_t)nx * sizeof *c.x);
    float *r = alloc_or_fail((size_t)c.nout * sizeof *r);
    c.r = r;
    c.base = alloc_or_fail((size_t)c.nsigns);
    c.now = alloc_or_fail((size_t)c.nsigns);
    double *fd_dx = alloc_or_fail((size_t)nx * sizeof *fd_dx);
    double *fd_dw = alloc_or_fail((size_t)np * sizeof *fd_dw);
    fill_weights(&rng, r, c.nout);
    char what[160];
    snprintf(what, sizeof what, "'%s' on %d×%d×%d, B=%d, %s", fc->spec, fc->c, fc->h, fc->w, B,
             training ? "training" : "evaluation");

    /* the truth, once per input point (a fresh one when a relu input crossed 0) */
    int tries = 0;
    do {
        if (++tries > FD_TRIES)
            fail_msg("%s: a relu input crosses 0 under a step of %g at each of %d inputs", what,
                     (double)FD_H, FD_TRIES);
        fill_uniform(&rng, c.x, nx, -1.0f, 1.0f);
        block_forward_upto(&b, c.x, B, upto);
        relu_signs(&b, c.x, B, upto, c.base);
        c.crossed = 0;
        for (int64_t i = 0; i < nx; i++)
            fd_dx[i] = central_diff(&c.x[i], fd_objective, &c, FD_H);
        for (int64_t i = 0; i < np; i++)
            fd_dw[i] = central_diff(&b.params[i], fd_objective, &c, FD_H);
    } while (c.crossed);

    for (int need_dx = 0; need_dx <= 1; need_dx++)
        for (int need_dw = 0; need_dw <= 1; need_dw++) {
            char name[200];
            for (int64_t i = 0; i < np; i++)
                b.grads[i] = SENTINEL;
            block_forward_upto(&b, c.x, B, upto);
            const float *dx = block_backward_from(&b, upto, r, B, need_dx, need_dw);
            if (need_dx) {
                assert_non_null(dx);
                snprintf(name, sizeof name, "%s: dx (need_dw=%d)", what, need_dw);
                for (int64_t i = 0; i < nx; i++)
                    expect_close(name, i, dx[i], fd_dx[i], FD_RTOL, FD_ATOL);
            } else if (dx) {
                fail_msg("%s: need_dx=0, need_dw=%d returned a dx", what, need_dw);
            }
            if (need_dw) {
                for (int t = 0; t < b.nparams_tensors; t++) {
                    const param_ref *p = &b.params_ref[t];
                    snprintf(name, sizeof name, "%s: %s grad (need_dx=%d)", what, p->name, need_dx);
                    for (int64_t i = 0; i < p->numel; i++)
                        expect_close(name, i, b.grads[p->offset + i], fd_dw[p->offset + i], FD_RTOL,
                                     FD_ATOL);
                }
            } else if (!all_equal_to(b.grads, np, SENTINEL)) {
                fail_msg("%s: need_dw=0 (need_dx=%d) wrote the parameter gradients", what, need_dx);
            }
        }
    free(c.x), free(r), free(c.base), free(c.now), free(fd_dx), free(fd_dw);
    block_free(&b);
}

static void check_cases(const fd_case *cases, size_t n, int training, uint64_t seed)
{
    for (size_t i = 0; i < n; i++)
        check_block_fd(&cases[i], training, seed + i);
}

#define NCASES(a) (sizeof(a) / sizeof((a)[0]))

/* Stride 1, 2, 3; padding 0, 1, 2; kernels 1–4; non-square inputs; batch 1 and 3; 2→3 and
 * 3→2 channels. 6×5 with k3 s2 p0 leaves the last row and column unread (their gradient is
 * 0); k2 p2 on 4×3 has outputs that see only padding (bias alone). */
static const fd_case CONV_CASES[] = {
    {"conv2d 3 k3 s1 p1", 2, 5, 7, 1, 0}, {"conv2d 3 k3 s1 p1", 2, 5, 7, 3, 0},
    {"conv2d 2 k2 s2 p0", 3, 5, 7, 3, 0}, {"conv2d 3 k4 s2 p2", 2, 5, 7, 1, 0},
    {"conv2d 2 k1 s1 p0", 3, 5, 7, 3, 0}, {"conv2d 3 k1 s2 p1", 2, 5, 7, 1, 0},
    {"conv2d 2 k3 s2 p0", 3, 6, 5, 3, 0}, {"conv2d 3 k2 s1 p2", 1, 4, 3, 3, 0},
    {"conv2d 2 k3 s3 p1", 2, 7, 5, 2, 0}, {"conv2d 3 k4 s1 p0", 2, 4, 7, 3, 0},
};

/* Output padding 0, 1 and 2 (< stride); k1 s2 op1 leaves output pixels no input reaches. */
static const fd_case CONVT_CASES[] = {
    {"convtranspose2d 3 k3 s1 p0", 2, 3, 4, 1, 0},
    {"convtranspose2d 3 k3 s1 p0", 2, 3, 4, 3, 0},
    {"convtranspose2d 2 k3 s2 p1 op1", 3, 3, 4, 3, 0},
    {"convtranspose2d 3 k2 s2 p0", 2, 3, 4, 3, 0},
    {"convtranspose2d 2 k4 s2 p1", 3, 2, 3, 1, 0},
    {"convtranspose2d 2 k4 s2 p2 op1", 3, 3, 4, 3, 0},
    {"convtranspose2d 3 k1 s1 p0", 2, 5, 7, 1, 0},
    {"convtranspose2d 2 k1 s2 p0 op1", 3, 3, 4, 3, 0},
    {"convtranspose2d 2 k3 s2 p2 op1", 3, 4, 3, 3, 0},
    {"convtranspose2d 3 k3 s3 p1 op2", 2, 2, 3, 2, 0},
};

/* Chains: channel-major between layers, flatten into a linear layer, a linear layer unflattened
 * into a transposed convolution (a sample-major input), and backward from the logits before a
 * final sigmoid (upto = nlayers − 1), as BCE from logits runs it. */
static const fd_case CHAIN_CASES[] = {
    {"conv2d 3 k3 s2 p1, relu, convtranspose2d 2 k3 s2 p1 op1", 2, 6, 8, 3, 0},
    {"conv2d 3 k3 s2 p1, relu, convtranspose2d 2 k3 s2 p1 op1", 2, 5, 7, 1, 0},
    {"conv2d 2 k3 s1 p0, tanh, flatten, linear 4", 3, 5, 7, 3, 0},
    {"conv2d 3 k2 s2 p1, flatten, linear 4", 2, 5, 7, 1, 0},
    {"linear 12, tanh, unflatten 3 2 2, convtranspose2d 2 k3 s2 p1 op1", 5, 1, 1, 3, 0},
    {"linear 12, unflatten 3 2 2, convtranspose2d 2 k3 s2 p1 op1", 5, 1, 1, 1, 0},
    {"conv2d 3 k3 s1 p1, conv2d 2 k2 s2 p0, sigmoid", 2, 5, 7, 3, 0},
    {"convtranspose2d 3 k2 s2 p0, tanh, conv2d 2 k3 s2 p1", 2, 3, 4, 3, 0},
    {"conv2d 3 k3 s2 p1, relu, convtranspose2d 1 k3 s2 p1 op1, sigmoid", 1, 6, 8, 2, 3},
    {"conv2d 2 k3 s1 p1, sigmoid", 2, 4, 5, 2, 1},
};

/* Batch norm after a convolution (2d, channel-major), on an image input (2d, sample-major),
 * after a linear layer and after flatten (1d), after a transposed convolution; batches large
 * enough that a channel's batch variance is not tiny (1/σ³ sets the truncation error). */
static const fd_case BN_CASES[] = {
    {"conv2d 3 k3 s1 p1, batchnorm", 2, 5, 7, 1, 0},
    {"conv2d 3 k3 s1 p1, batchnorm, relu, conv2d 2 k2 s2 p0", 2, 5, 7, 3, 0},
    {"batchnorm", 3, 4, 5, 2, 0},
    {"batchnorm, conv2d 2 k3 s1 p1", 3, 4, 5, 2, 0},
    {"linear 4, batchnorm", 5, 1, 1, 6, 0},
    {"linear 6, batchnorm, tanh, linear 3", 5, 1, 1, 5, 0},
    {"conv2d 2 k3 s2 p1, flatten, batchnorm, linear 3", 2, 5, 7, 5, 0},
    {"convtranspose2d 2 k3 s2 p1 op1, batchnorm, tanh", 3, 3, 4, 2, 0},
};

static void test_fd_conv2d(void **state) { check_cases(CONV_CASES, NCASES(CONV_CASES), 1, 1000); }
static void test_fd_convt2d(void **state)
{
    check_cases(CONVT_CASES, NCASES(CONVT_CASES), 1, 2000);
}
static void test_fd_chains(void **state) { check_cases(CHAIN_CASES, NCASES(CHAIN_CASES), 1, 3000); }
static void test_fd_batchnorm_training(void **state)
{
    check_cases(BN_CASES, NCASES(BN_CASES), 1, 4000);
}
static void test_fd_batchnorm_eval(void **state)
{
    check_cases(BN_CASES, NCASES(BN_CASES), 0, 5000);
}

/* ---- forward values against the definitions ---------------------------------------------- */

/* Shapes (B, ci, h, w, co, k, s, p, op); op makes the transposed convolution's output the
 * convolution's input size, op = (h + 2p − k) mod s, which must agree for h and w. */
static const conv_shape SHAPES[] = {
    {2, 2, 5, 7, 3, 3, 1, 1, 0, 0, 0},
    {2, 3, 5, 7, 2, 3, 2, 1, 0, 0, 0},
    {2, 2, 6, 8, 3, 3, 2, 1, 1, 0, 0},
    {2, 3, 6, 4, 2, 4, 2, 1, 0, 0, 0},
    {2, 1, 7, 10, 2, 2, 3, 0, 2, 0, 0},
    {2, 2, 5, 7, 2, 1, 2, 0, 0, 0, 0},
    {2, 3, 6, 6, 3, 4, 2, 2, 0, 0, 0},
    {1, 2, 4, 5, 3, 2, 1, 0, 0, 0, 0},
    /* images s times their col planes, which col2im adds on residue planes (conv.c): offsets
     * ki − p from −2 to 2, and a stride of 3 */
    {2, 2, 6, 8, 3, 5, 2, 2, 1, 0, 0},
    {2, 2, 6, 9, 2, 3, 3, 0, 0, 0, 0},
};

/* Completes the output size of a Conv2d by PyTorch's formula ⌊(H + 2p − k)/s⌋ + 1. */
static conv_shape with_out(conv_shape g)
{
    g.oh = (g.h + 2 * g.p - g.k) / g.s + 1;
    g.ow = (g.w + 2 * g.p - g.k) / g.s + 1;
    return g;
}

/* The Conv2d (x: (B, ci, h, w) → (B, co, oh, ow)) and the ConvTranspose2d (co, oh, ow) →
 * (ci, h, w) of a shape. */
static void conv_pair(const conv_shape *g, block *conv, block *convt)
{
    char spec[96];
    snprintf(spec, sizeof spec, "conv2d %d k%d s%d p%d", g->co, g->k, g->s, g->p);
    create_ok(conv, spec, g->ci, g->h, g->w, g->B);
    snprintf(spec, sizeof spec, "convtranspose2d %d k%d s%d p%d op%d", g->ci, g->k, g->s, g->p,
             g->op);
    create_ok(convt, spec, g->co, g->oh, g->ow, g->B);
    assert_int_equal(conv->out_h, g->oh);
    assert_int_equal(conv->out_w, g->ow);
    assert_int_equal(convt->out_h, g->h);
    assert_int_equal(convt->out_w, g->w);
}

/* A float32 output is a sum of at most K = ci·k² products (conv; for the transposed one, co
 * products in the sgemm, then at most k² of those added by col2im), each with relative
 * rounding u, so |float − exact| ≤ (K + k²)·u·Σ|terms| (Higham's bound for a sum). With
 * K + k² ≤ 64 that is ≤ 4e-6·magnitude; we allow 1e-5·magnitude. A wrong window, a flipped
 * kernel or a transposed weight changes outputs by O(magnitude/√K) ≥ 0.1·magnitude. */
#define REF_RTOL 1e-5

static void check_against_definition(block *b, const conv_shape *g, int transposed, anamo_rng *rng)
{
    const int64_t nin = (int64_t)g->B * b->in_dim, nout = (int64_t)g->B * b->out_dim;
    const layer *l = &b->layers[0];
    const int64_t nw = b->params_ref[0].numel, nb = b->params_ref[1].numel;
    float *x = alloc_or_fail((size_t)nin * sizeof *x),
          *ax = alloc_or_fail((size_t)nin * sizeof *ax);
    float *aw = alloc_or_fail((size_t)nw * sizeof *aw),
          *ab = alloc_or_fail((size_t)nb * sizeof *ab);
    double *want = alloc_or_fail((size_t)nout * sizeof *want);
    double *mag = alloc_or_fail((size_t)nout * sizeof *mag);
    fill_uniform(rng, x, nin, -1.0f, 1.0f);
    fill_abs(ax, x, nin), fill_abs(aw, l->weight, nw), fill_abs(ab, l->bias, nb);
    conv_shape t = {g->B, g->co, g->oh, g->ow, g->ci, g->k, g->s, g->p, g->op, g->h, g->w};
    if (transposed) {
        ref_convt2d(&t, x, l->weight, l->bias, 0, want);
        ref_convt2d(&t, ax, aw, ab, 1, mag);
    } else {
        ref_conv2d(g, x, l->weight, l->bias, 0, want);
        ref_conv2d(g, ax, aw, ab, 1, mag);
    }
    const float *out = block_forward(b, x, g->B);
    char what[96];
    snprintf(what, sizeof what, "%s %d→%d k%d s%d p%d op%d on %d×%d, B=%d vs definition",
             transposed ? "convtranspose2d" : "conv2d", transposed ? g->co : g->ci,
             transposed ? g->ci : g->co, g->k, g->s, g->p, g->op, transposed ? g->oh : g->h,
             transposed ? g->ow : g->w, g->B);
    for (int64_t i = 0; i < nout; i++)
        expect_close(what, i, out[i], want[i], 0, REF_RTOL * mag[i] + 1e-30);
    free(x), free(ax), free(aw), free(ab), free(want), free(mag);
}

static void test_forward_matches_definition(void **state)
{
    anamo_rng rng;
    anamo_rng_seed(&rng, 6000);
    for (size_t s = 0; s < NCASES(SHAPES); s++) {
        const conv_shape g = with_out(SHAPES[s]);
        block conv, convt;
        conv_pair(&g, &conv, &convt);
        block_init(&conv, ANAMO_INIT_UNIFORM, 1.0f, &rng); /* biases too: U(−1, 1) */
        block_init(&convt, ANAMO_INIT_UNIFORM, 1.0f, &rng);
        check_against_definition(&conv, &g, 0, &rng);
        check_against_definition(&convt, &g, 1, &rng);
        block_free(&conv), block_free(&convt);
    }
}

/* A ConvTranspose2d's forward runs the batch in slices of whole samples (conv.c, about 256 KiB
 * of col each): 3→8 k4 s2 p1 onto 32×32 makes 8·16·16·16 = 32768 floats of col a sample, so a
 * slice holds 2 samples and a batch of 5 takes 3 slices, the last one short. Its output is the
 * definition's, and the same bits on 1 thread as on 2 (each slice is computed alike whichever
 * thread takes it). */
static void test_convt_forward_in_slices(void **state)
{
    (void)state;
    const conv_shape g = with_out((conv_shape){5, 8, 32, 32, 3, 4, 2, 1, 0, 0, 0});
    anamo_rng rng;
    anamo_rng_seed(&rng, 6500);
    block conv, convt;
    conv_pair(&g, &conv, &convt);
    block_init(&convt, ANAMO_INIT_UNIFORM, 1.0f, &rng);
    check_against_definition(&convt, &g, 1, &rng);
    const int64_t nin = (int64_t)g.B * convt.in_dim, nout = (int64_t)g.B * convt.out_dim;
    float *x = alloc_or_fail((size_t)nin * sizeof *x);
    fill_uniform(&rng, x, nin, -1.0f, 1.0f);
    const int threads = omp_get_max_threads();
    omp_set_num_threads(1);
    float *one = copy_of(block_forward(&convt, x, g.B), nout);
    omp_set_num_threads(2);
    const float *two = block_forward(&convt, x, g.B);
    for (int64_t i = 0; i < nout; i++)
        if (memcmp(&one[i], &two[i], sizeof(float)))
            fail_msg("output %lld: %.9g on 1 thread, %.9g on 2", (long long)i, one[i], two[i]);
    omp_set_num_threads(threads);
    free(x), free(one);
    block_free(&conv), block_free(&convt);
}

/* ---- adjointness ------------------------------------------------------------------------- */

/* With W shared (the Conv2d's (co, ci, k, k) is the ConvTranspose2d's (in = co, out = ci, k, k),
 * the same bytes) and zero biases, ConvTranspose2d is the adjoint of Conv2d:
 * ⟨conv(x), y⟩ = ⟨x, convT(y)⟩. Both sides are float32 outputs summed in double; by the bound
 * above each side is within (ci·k² + co + k²)·u·M of the exact common value, where
 * M = ⟨|W| ⋆ |x|, |y|⟩ (the same for both sides), so we allow 2·(ci·k² + co + k²)·u·M. A
 * transposed convolution that is not the adjoint (a flipped kernel, swapped channel roles, a
 * shifted window) misses by O(M/√terms), orders of magnitude more. */
static void test_adjoint(void **state)
{
    anamo_rng rng;
    anamo_rng_seed(&rng, 7000);
    for (size_t s = 0; s < NCASES(SHAPES); s++) {
        const conv_shape g = with_out(SHAPES[s]);
        block conv, convt;
        conv_pair(&g, &conv, &convt);
        block_init(&conv, ANAMO_INIT_UNIFORM, 1.0f, &rng);
        assert_int_equal(conv.params_ref[0].numel, convt.params_ref[0].numel);
        memcpy(convt.layers[0].weight, conv.layers[0].weight,
               (size_t)conv.params_ref[0].numel * sizeof(float));
        memset(conv.layers[0].bias, 0, (size_t)g.co * sizeof(float));
        memset(convt.layers[0].bias, 0, (size_t)g.ci * sizeof(float));
        const int64_t nx = (int64_t)g.B * conv.in_dim, ny = (int64_t)g.B * conv.out_dim;
        float *x = alloc_or_fail((size_t)nx * sizeof *x),
              *y = alloc_or_fail((size_t)ny * sizeof *y);
        float *ax = alloc_or_fail((size_t)nx * sizeof *ax);
        float *aw = alloc_or_fail((size_t)conv.params_ref[0].numel * sizeof *aw);
        double *mag = alloc_or_fail((size_t)ny * sizeof *mag);
        fill_uniform(&rng, x, nx, -1.0f, 1.0f);
        fill_uniform(&rng, y, ny, -1.0f, 1.0f);
        const float *cx = block_forward(&conv, x, g.B);
        const double lhs = weighted_sum(y, cx, ny);
        double terms = 0.0; /* Σ|conv(x)·y|: the size of what the two sides add up */
        for (int64_t i = 0; i < ny; i++)
            terms += fabs((double)cx[i] * y[i]);
        const double rhs = weighted_sum(x, block_forward(&convt, y, g.B), nx);
        fill_abs(ax, x, nx), fill_abs(aw, conv.layers[0].weight, conv.params_ref[0].numel);
        ref_conv2d(&g, ax, aw, conv.layers[0].bias, 1, mag);
        double M = 0.0;
        for (int64_t i = 0; i < ny; i++)
            M += mag[i] * fabs(y[i]);
        const double tol = 2.0 * (g.ci * g.k * g.k + g.co + g.k * g.k) * U32 * M;
        if (!(fabs(lhs - rhs) <= tol))
            fail_msg("shape %zu: <conv(x), y> = %.12g, <x, convT(y)> = %.12g, |diff| %.3g > %.3g",
                     s, lhs, rhs, fabs(lhs - rhs), tol);
        assert_true(terms > 1e3 * tol); /* not a vacuous agreement of two zeros */
        free(x), free(y), free(ax), free(aw), free(mag);
        block_free(&conv), block_free(&convt);
    }
}

/* ---- a 1×1 convolution is a dense layer at every pixel ----------------------------------- */

/* "conv2d 4 k1" on (3, 5, 7): out[b][o][q] = b[o] + Σ_c W[o][c]·x[b][c][q] (nn.Linear on the
 * channel vector of pixel q, weight (out, in) = the conv weight (4, 3, 1, 1)), and its backward
 * is the dense one: dW[o][c] = Σ_{b,q} r[b][o][q]·x[b][c][q], db[o] = Σ r[b][o][q],
 * dx[b][c][q] = Σ_o W[o][c]·r[b][o][q]. All in double here. Tolerances by the sum bound
 * (count·u·Σ|terms|): the forward sums 3 products (1e-6·magnitude), the weight gradients
 * B·H·W = 70 (1e-5·magnitude). */
static void test_conv1x1_is_dense(void **state)
{
    enum { CI = 3, CO = 4, H = 5, W = 7, P = H * W, B = 2 };
    block b;
    create_ok(&b, "conv2d 4 k1", CI, H, W, B);
    anamo_rng rng;
    anamo_rng_seed(&rng, 8000);
    block_init(&b, ANAMO_INIT_UNIFORM, 1.0f, &rng);
    const float *Wt = b.layers[0].weight, *bias = b.layers[0].bias;
    float x[B * CI * P], r[B * CO * P];
    fill_uniform(&rng, x, B * CI * P, -1.0f, 1.0f);
    fill_weights(&rng, r, B * CO * P);
    const float *out = block_forward(&b, x, B);
    for (int s = 0; s < B; s++)
        for (int o = 0; o < CO; o++)
            for (int q = 0; q < P; q++) {
                double y = bias[o], mag = fabs(bias[o]);
                for (int c = 0; c < CI; c++) {
                    y += (double)Wt[o * CI + c] * x[(s * CI + c) * P + q];
                    mag += fabs((double)Wt[o * CI + c] * x[(s * CI + c) * P + q]);
                }
                expect_close("1×1 conv vs dense", (s * CO + o) * P + q, out[(s * CO + o) * P + q],
                             y, 0, 1e-6 * mag);
            }
    const float *dx = block_backward(&b, r, B, 1, 1);
    for (int s = 0; s < B; s++)
        for (int c = 0; c < CI; c++)
            for (int q = 0; q < P; q++) {
                double g = 0.0, mag = 0.0;
                for (int o = 0; o < CO; o++) {
                    g += (double)Wt[o * CI + c] * r[(s * CO + o) * P + q];
                    mag += fabs((double)Wt[o * CI + c] * r[(s * CO + o) * P + q]);
                }
                expect_close("1×1 conv dx vs dense", (s * CI + c) * P + q, dx[(s * CI + c) * P + q],
                             g, 0, 1e-6 * mag);
            }
    for (int o = 0; o < CO; o++) {
        double db = 0.0, dbmag = 0.0;
        for (int c = 0; c < CI; c++) {
            double g = 0.0, mag = 0.0;
            for (int s = 0; s < B; s++)
                for (int q = 0; q < P; q++) {
                    g += (double)r[(s * CO + o) * P + q] * x[(s * CI + c) * P + q];
                    mag += fabs((double)r[(s * CO + o) * P + q] * x[(s * CI + c) * P + q]);
                }
            expect_close("1×1 conv dW vs dense", o * CI + c, b.layers[0].dweight[o * CI + c], g, 0,
                         1e-5 * mag);
        }
        for (int s = 0; s < B; s++)
            for (int q = 0; q < P; q++)
                db += r[(s * CO + o) * P + q], dbmag += fabs(r[(s * CO + o) * P + q]);
        expect_close("1×1 conv db vs dense", o, b.layers[0].dbias[o], db, 0, 1e-5 * dbmag);
    }
    block_free(&b);
}

/* ---- hand cases -------------------------------------------------------------------------- */

/* Every value below is a small integer or a half, exact in float, so the comparisons are
 * exact. */
static void expect_exact(const char *what, const float *got, const float *want, int n)
{
    for (int i = 0; i < n; i++)
        if (got[i] != want[i])
            fail_msg("%s[%d]: got %g, want %g", what, i, (double)got[i], (double)want[i]);
}

/* x = [[1, 2, 3], [4, 5, 6], [7, 8, 9]] (and 10·x as a second sample), 2×2 kernels
 * K0 = [[1, 0], [0, −1]] (bias 0) and K1 = [[1, 1], [1, 1]] (bias 0.5):
 *   s1 p0   K0: x[i][j] − x[i+1][j+1] = [[−4, −4], [−4, −4]]
 *           K1: window sums + 0.5 = [[12.5, 16.5], [24.5, 28.5]]
 *   s2 p1   (3 + 2 − 2)/2 + 1 = 2 outputs a side, windows at rows/cols {−1, 0} and {1, 2}:
 *           K0: [[0 − 1, 0 − 3], [0 − 7, 5 − 9]] = [[−1, −3], [−7, −4]]
 *           K1: [[1, 2 + 3], [4 + 7, 5 + 6 + 8 + 9]] + 0.5 = [[1.5, 5.5], [11.5, 28.5]]
 * The second sample is 10× the first, except for the bias. */
static void test_conv_hand(void **state)
{
    const float x[18] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 20, 30, 40, 50, 60, 70, 80, 90};
    const float K[8] = {1, 0, 0, -1, 1, 1, 1, 1}, bias[2] = {0, 0.5f};
    const float want_s1[16] = {-4,  -4,  -4,  -4,  12.5f,  16.5f,  24.5f,  28.5f,
                               -40, -40, -40, -40, 120.5f, 160.5f, 240.5f, 280.5f};
    const float want_s2[16] = {-1,  -3,  -7,  -4,  1.5f,  5.5f,  11.5f,  28.5f,
                               -10, -30, -70, -40, 10.5f, 50.5f, 110.5f, 280.5f};
    const char *specs[2] = {"conv2d 2 k2 s1 p0", "conv2d 2 k2 s2 p1"};
    const float *wants[2] = {want_s1, want_s2};
    for (int k = 0; k < 2; k++) {
        block b;
        create_ok(&b, specs[k], 1, 3, 3, 2);
        assert_int_equal(b.out_c, 2);
        assert_int_equal(b.out_h, 2);
        assert_int_equal(b.out_w, 2);
        memcpy(b.layers[0].weight, K, sizeof K);
        memcpy(b.layers[0].bias, bias, sizeof bias);
        expect_exact(specs[k], block_forward(&b, x, 2), wants[k], 16);
        block_free(&b);
    }
}

/* x = [[1, 2], [3, 4]], kernel K = [[1, 2], [3, 4]]:
 *   s2 p0       (2 − 1)·2 + 2 = 4: each input value stamps x[i][j]·K on its own 2×2 tile,
 *               [[1, 2, 2, 4], [3, 4, 6, 8], [3, 6, 4, 8], [9, 12, 12, 16]];
 *   s2 p0 op1   5×5: the same tiles, the last row and column reached by no input (bias 0.5
 *               everywhere);
 * and with the kernel of ones:
 *   s1 p0       3×3, overlapping stamps: [[1, 3, 2], [4, 10, 6], [3, 7, 4]];
 *   s1 p1       (2 − 1) − 2 + 2 = 1: the centre of that, [[10]]. */
static void test_convt_hand(void **state)
{
    const float x[4] = {1, 2, 3, 4}, K[4] = {1, 2, 3, 4}, ones[4] = {1, 1, 1, 1};
    const float tiles[16] = {1, 2, 2, 4, 3, 4, 6, 8, 3, 6, 4, 8, 9, 12, 12, 16};
    const float overlap[9] = {1, 3, 2, 4, 10, 6, 3, 7, 4}, centre[1] = {10};
    float tiles_op[25];
    for (int i = 0; i < 5; i++)
        for (int j = 0; j < 5; j++)
            tiles_op[i * 5 + j] = (i < 4 && j < 4 ? tiles[i * 4 + j] : 0.0f) + 0.5f;
    const struct {
        const char *spec;
        const float *kernel, *want;
        float bias;
        int size;
    } cases[] = {{"convtranspose2d 1 k2 s2 p0", K, tiles, 0.0f, 4},
                 {"convtranspose2d 1 k2 s2 p0 op1", K, tiles_op, 0.5f, 5},
                 {"convtranspose2d 1 k2 s1 p0", ones, overlap, 0.0f, 3},
                 {"convtranspose2d 1 k2 s1 p1", ones, centre, 0.0f, 1}};
    for (size_t k = 0; k < NCASES(cases); k++) {
        block b;
        create_ok(&b, cases[k].spec, 1, 2, 2, 1);
        assert_int_equal(b.out_h, cases[k].size);
        assert_int_equal(b.out_w, cases[k].size);
        memcpy(b.layers[0].weight, cases[k].kernel, 4 * sizeof(float));
        b.layers[0].bias[0] = cases[k].bias;
        expect_exact(cases[k].spec, block_forward(&b, x, 1), cases[k].want,
                     cases[k].size * cases[k].size);
        block_free(&b);
    }
}

/* Output sizes, worked out by hand from PyTorch's documented formulas
 *   Conv2d           ⌊(H + 2p − k)/s⌋ + 1
 *   ConvTranspose2d  (H − 1)·s − 2p + k + op
 * and the items that must be refused: op ≥ stride, op on a Conv2d, a kernel larger than the
 * padded input, a transposed output of no pixels. */
static void test_output_sizes(void **state)
{
    const struct {
        const char *spec;
        int h, w, oh, ow;
    } sizes[] = {
        {"conv2d 1 k4 s2 p1", 28, 28, 14, 14},
        {"conv2d 1 k3 s2 p0", 5, 7, 2, 3},
        {"conv2d 1 k2 s3 p1", 7, 10, 3, 4},
        {"conv2d 1 k1 s2 p1", 5, 7, 4, 5},
        {"conv2d 1 k2 s2 p1", 3, 3, 2, 2},
        {"conv2d 1 k5 s1 p0", 5, 6, 1, 2},
        {"convtranspose2d 1 k4 s2 p1", 14, 14, 28, 28},
        {"convtranspose2d 1 k3 s2 p1 op1", 3, 4, 6, 8},
        {"convtranspose2d 1 k3 s3 p1 op2", 2, 3, 6, 9},
        {"convtranspose2d 1 k3 s2 p2 op1", 4, 3, 6, 4},
        {"convtranspose2d 1 k2 s2 p0", 2, 2, 4, 4},
        {"convtranspose2d 1 k1 s1 p0", 5, 7, 5, 7},
    };
    for (size_t i = 0; i < NCASES(sizes); i++) {
        block b;
        create_ok(&b, sizes[i].spec, 1, sizes[i].h, sizes[i].w, 1);
        if (b.out_h != sizes[i].oh || b.out_w != sizes[i].ow)
            fail_msg("'%s' on %d×%d: %d×%d, want %d×%d", sizes[i].spec, sizes[i].h, sizes[i].w,
                     b.out_h, b.out_w, sizes[i].oh, sizes[i].ow);
        block_free(&b);
    }
    const struct {
        const char *spec;
        int h, w;
    } bad[] = {
        {"convtranspose2d 1 k3 s1 p0 op1", 3, 3},
        {"convtranspose2d 1 k3 s2 p1 op2", 3, 3},
        {"conv2d 1 k3 s2 p1 op1", 5, 5},
        {"conv2d 1 k5 s1 p0", 4, 7},
        {"conv2d 1 k4 s1 p1", 1, 5},
        {"convtranspose2d 1 k1 s1 p1", 1, 1},
        {"conv2d 1 k0", 3, 3},
        {"conv2d 1 k3 s0", 3, 3},
    };
    for (size_t i = 0; i < NCASES(bad); i++) {
        block b;
        anamo_err err = {0};
        if (block_create(&b, "encoder", bad[i].spec, 1, bad[i].h, bad[i].w, 1, suite_conv_impl,
                         &err) != ANAMO_ERR_CONFIG)
            fail_msg("'%s' on %d×%d was accepted", bad[i].spec, bad[i].h, bad[i].w);
    }
}

/* ---- batch norm -------------------------------------------------------------------------- */

/* Channel c of a batch in NCHW: inputs a_c + s_c·U(−1, 1) with means and spreads far apart
 * (a = −1, 0.5, 3, −0.25; s = 0.2, 1, 5, 0.5), so a normalization that mixes channels or forgets the
 * mean shows. */
static void fill_channels(anamo_rng *rng, float *x, int B, int C, int P)
{
    static const float A[] = {-1.0f, 0.5f, 3.0f, -0.25f}, S[] = {0.2f, 1.0f, 5.0f, 0.5f};
    for (int b = 0; b < B; b++)
        for (int c = 0; c < C; c++)
            for (int q = 0; q < P; q++)
                x[(b * C + c) * P + q] = A[c % 4] + S[c % 4] * anamo_rng_uniform_range(rng, -1, 1);
}

static void channel_moments(const float *x, int B, int C, int P, int c, double *mean, double *var)
{
    double s = 0.0, ss = 0.0;
    const double n = (double)B * P;
    for (int b = 0; b < B; b++)
        for (int q = 0; q < P; q++)
            s += x[(b * C + c) * P + q];
    *mean = s / n;
    for (int b = 0; b < B; b++)
        for (int q = 0; q < P; q++)
            ss += (x[(b * C + c) * P + q] - *mean) * (x[(b * C + c) * P + q] - *mean);
    *var = ss / n;
}

/* The batch norm of spec (its input = the block input: a bare "batchnorm" reads it
 * sample-major, "conv2d C k1, batchnorm" with W = I and b = 0 hands it over channel-major).
 *
 * Training, γ = 1, β = 0: each channel of the output has mean 0 and biased variance
 * σ²/(σ² + ε) (ε = 1e-5: 0.997 for the s = 0.1 channel, ≈ 1 for the others). out = x·scale +
 * shift rounds to u·(|x·scale| + |out|) ≤ 6e-8·40 per element (|μ|/σ ≤ 35 here), so mean and
 * variance are within ~5e-6 of the exact values: tolerance 1e-5.
 * Running statistics (PyTorch's rule, momentum 0.1, unbiased variance for the update):
 *   running_mean ← 0.9·running_mean + 0.1·μ,  running_var ← 0.9·running_var + 0.1·σ²·N/(N − 1),
 * from (0, 1), after two batches of different sizes (N = B·P each), in double here; stored as
 * float, so 1e-6 relative. num_batches_tracked counts 1, 2, and evaluation leaves all three
 * alone.
 * Evaluation, with running statistics, γ and β set by hand: out = γ·(x − m)/√(v + ε) + β,
 * within a few ulp of |x·scale| + |shift|: 1e-6 relative to that magnitude. */
static void check_batchnorm_stats(const char *spec, int C, int H, int W, int B1, int B2)
{
    const int P = H * W;
    block b;
    create_ok(&b, spec, C, H, W, B1);
    anamo_rng rng;
    anamo_rng_seed(&rng, 9000 + (uint64_t)C);
    block_init(&b, ANAMO_INIT_PYTORCH, 0.0f, &rng); /* γ = 1, β = 0 */
    if (b.layers[0].kind == LAYER_CONV2D) {         /* identity 1×1 convolution */
        memset(b.layers[0].weight, 0, (size_t)C * C * sizeof(float));
        memset(b.layers[0].bias, 0, (size_t)C * sizeof(float));
        for (int c = 0; c < C; c++)
            b.layers[0].weight[c * C + c] = 1.0f;
    }
    layer *bn = find_layer(&b, LAYER_BATCHNORM, 0);
    assert_int_equal(bn->in_cm, b.layers[0].kind == LAYER_CONV2D);
    for (int c = 0; c < C; c++) { /* the initial state: γ = 1, β = 0, running (0, 1) */
        assert_true(bn->weight[c] == 1.0f && bn->bias[c] == 0.0f);
        assert_true(bn->running_mean[c] == 0.0f && bn->running_var[c] == 1.0f);
    }
    assert_int_equal(*bn->num_batches_tracked, 0);
    float *x = alloc_or_fail((size_t)B1 * C * P * sizeof *x);
    double *rm = alloc_or_fail((size_t)C * sizeof *rm), *rv = alloc_or_fail((size_t)C * sizeof *rv);
    for (int c = 0; c < C; c++)
        rm[c] = 0.0, rv[c] = 1.0;
    char what[128], name[96];
    snprintf(name, sizeof name, "'%s' on %d×%d×%d", spec, C, H, W);

    block_set_training(&b, 1);
    const int batches[2] = {B1, B2};
    for (int step = 0; step < 2; step++) {
        const int Bs = batches[step];
        const double n = (double)Bs * P;
        fill_channels(&rng, x, Bs, C, P);
        const float *out = block_forward(&b, x, Bs);
        for (int c = 0; c < C; c++) {
            double mx, vx, my, vy;
            channel_moments(x, Bs, C, P, c, &mx, &vx);
            channel_moments(out, Bs, C, P, c, &my, &vy);
            snprintf(what, sizeof what, "%s: batch %d output mean", name, step);
            expect_close(what, c, my, 0.0, 0, 1e-5);
            snprintf(what, sizeof what, "%s: batch %d output variance", name, step);
            expect_close(what, c, vy, vx / (vx + 1e-5), 0, 1e-5);
            rm[c] = 0.9 * rm[c] + 0.1 * mx;
            rv[c] = 0.9 * rv[c] + 0.1 * vx * n / (n - 1.0);
            snprintf(what, sizeof what, "%s: running_mean after %d", name, step + 1);
            expect_close(what, c, bn->running_mean[c], rm[c], 1e-6, 1e-7);
            snprintf(what, sizeof what, "%s: running_var after %d", name, step + 1);
            expect_close(what, c, bn->running_var[c], rv[c], 1e-6, 1e-7);
        }
        assert_int_equal(*bn->num_batches_tracked, step + 1);
    }

    /* evaluation: the running statistics, set by hand, in a fixed affine map */
    block_set_training(&b, 0);
    for (int c = 0; c < C; c++) {
        bn->running_mean[c] = 0.5f * (float)(c + 1) - 1.0f;
        bn->running_var[c] = 0.25f * (float)(c + 1);
        bn->weight[c] = c % 2 ? -1.5f : 2.0f;
        bn->bias[c] = 0.25f * (float)c - 0.3f;
    }
    fill_channels(&rng, x, B1, C, P);
    const float *out = block_forward(&b, x, B1);
    for (int s = 0; s < B1; s++)
        for (int c = 0; c < C; c++)
            for (int q = 0; q < P; q++) {
                const int64_t i = ((int64_t)s * C + c) * P + q;
                const double g = bn->weight[c] / sqrt((double)bn->running_var[c] + 1e-5);
                const double y = g * (x[i] - (double)bn->running_mean[c]) + bn->bias[c];
                const double mag = fabs(g * x[i]) + fabs(g * bn->running_mean[c]) +
                                   fabs(bn->bias[c]);
                snprintf(what, sizeof what, "%s: evaluation output", name);
                expect_close(what, i, out[i], y, 0, 1e-6 * mag);
            }
    for (int c = 0; c < C; c++) {
        assert_true(bn->running_mean[c] == 0.5f * (float)(c + 1) - 1.0f);
        assert_true(bn->running_var[c] == 0.25f * (float)(c + 1));
    }
    assert_int_equal(*bn->num_batches_tracked, 2);
    free(x), free(rm), free(rv);
    block_free(&b);
}

static void test_batchnorm2d_stats(void **state)
{
    check_batchnorm_stats("batchnorm", 3, 4, 5, 3, 2);
}
static void test_batchnorm2d_stats_channel_major(void **state)
{
    check_batchnorm_stats("conv2d 3 k1, batchnorm", 3, 4, 5, 3, 2);
}
/* BatchNorm1d: 4 features, per-feature statistics over the batch alone (N = B). */
static void test_batchnorm1d_stats(void **state)
{
    check_batchnorm_stats("batchnorm", 4, 1, 1, 8, 5);
}
/* Above BN_OMP_MIN = 4096 values (8·256·3 and 6·256·3): the channels on OpenMP threads. */
static void test_batchnorm2d_stats_threaded(void **state)
{
    check_batchnorm_stats("conv2d 3 k1, batchnorm", 3, 16, 16, 8, 6);
}

/* ---- a checkpoint with batch norm -------------------------------------------------------- */

#define CK_ENC "conv2d 3 k3 s2 p1, batchnorm, relu, flatten, linear 4"
#define CK_DEC \
    "linear 12, batchnorm, tanh, unflatten 3 2 2, convtranspose2d 1 k3 s2 p1 op1, sigmoid"
enum { CK_N = 10, CK_MAXB = 4, CK_TRAIN_BATCHES = 3 };

static void expect_buffers(const st_file *f, const char *prefix, int64_t C, const layer *bn)
{
    char name[96];
    snprintf(name, sizeof name, "%s.running_mean", prefix);
    const st_tensor *t = st_find(f, name);
    assert_non_null(t);
    assert_int_equal(t->dtype, ST_F32);
    assert_int_equal(t->ndim, 1);
    assert_int_equal(t->shape[0], C);
    assert_memory_equal(t->data, bn->running_mean, (size_t)C * sizeof(float));
    snprintf(name, sizeof name, "%s.running_var", prefix);
    assert_non_null(t = st_find(f, name));
    assert_int_equal(t->dtype, ST_F32);
    assert_int_equal(t->ndim, 1);
    assert_int_equal(t->shape[0], C);
    assert_memory_equal(t->data, bn->running_var, (size_t)C * sizeof(float));
    snprintf(name, sizeof name, "%s.num_batches_tracked", prefix);
    assert_non_null(t = st_find(f, name));
    assert_int_equal(t->dtype, ST_I64); /* PyTorch's: an int64 scalar */
    assert_int_equal(t->ndim, 0);
    assert_int_equal(t->nbytes, sizeof(int64_t));
    int64_t count;
    memcpy(&count, t->data, sizeof count);
    assert_int_equal(count, *bn->num_batches_tracked);
}

/* Saved and reloaded, a model with batch norm reconstructs bit for bit in evaluation mode, and
 * the file holds each batch norm's three buffers as PyTorch names and types them. The running
 * statistics are moved away from (0, 1) by training-mode forwards first, and the reload must
 * depend on them: the same model with its buffers reset reconstructs differently. */
static void test_checkpoint_batchnorm(void **state)
{
    anamo_model_spec ms = {.in_c = 1,
                           .in_h = 4,
                           .in_w = 4,
                           .encoder = CK_ENC,
                           .decoder = CK_DEC,
                           .init = ANAMO_INIT_PYTORCH,
                           .seed = 12,
                           .max_batch = CK_MAXB};
    anamo_model *m = NULL, *m2 = NULL;
    anamo_err err = {0};
    if (anamo_model_create(&ms, &m, &err) != ANAMO_OK)
        fail_msg("anamo_model_create: %s", err.msg);
    anamo_rng rng;
    anamo_rng_seed(&rng, 10000);
    randomize_batchnorm(&m->enc, &rng);
    randomize_batchnorm(&m->dec, &rng);
    float xb[CK_MAXB * 16];
    block_set_training(&m->enc, 1);
    block_set_training(&m->dec, 1);
    for (int i = 0; i < CK_TRAIN_BATCHES; i++) {
        fill_uniform(&rng, xb, CK_MAXB * 16, 0.0f, 1.0f);
        block_forward(&m->dec, block_forward(&m->enc, xb, CK_MAXB), CK_MAXB);
    }
    layer *bn_e = find_layer(&m->enc, LAYER_BATCHNORM, 0),
          *bn_d = find_layer(&m->dec, LAYER_BATCHNORM, 0);
    assert_int_equal(*bn_e->num_batches_tracked, CK_TRAIN_BATCHES);
    assert_int_equal(*bn_d->num_batches_tracked, CK_TRAIN_BATCHES);

    float data[CK_N * 16], recon[CK_N * 16], recon2[CK_N * 16];
    fill_uniform(&rng, data, CK_N * 16, 0.0f, 1.0f);
    anamo_dataset ds = {
        .n = CK_N, .c = 1, .h = 4, .w = 4, .dim = 16, .dtype = ANAMO_F32, .data = data};
    snprintf(ds.source, sizeof ds.source, "test_conv");
    assert_int_equal(anamo_model_reconstruct(m, &ds, 0, CK_N, recon, &err), ANAMO_OK);

    char dir[] = "/tmp/anamo_conv_XXXXXX", path[96];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/bn.safetensors", dir);
    if (anamo_checkpoint_save(m, NULL, "test", path, &err) != ANAMO_OK)
        fail_msg("anamo_checkpoint_save: %s", err.msg);
    st_file *f;
    if (st_open(path, &f, &err) != ANAMO_OK)
        fail_msg("st_open: %s", err.msg);
    expect_buffers(f, "encoder.1", 3, bn_e);
    expect_buffers(f, "decoder.1", 12, bn_d);
    st_close(f);

    if (anamo_checkpoint_load_model(path, CK_MAXB, &m2, &err) != ANAMO_OK)
        fail_msg("anamo_checkpoint_load_model: %s", err.msg);
    assert_int_equal(anamo_model_reconstruct(m2, &ds, 0, CK_N, recon2, &err), ANAMO_OK);
    assert_memory_equal(recon, recon2, sizeof recon);
    assert_int_equal(*find_layer(&m2->enc, LAYER_BATCHNORM, 0)->num_batches_tracked,
                     CK_TRAIN_BATCHES);

    /* the buffers matter: reset to (0, 1), the reconstructions change */
    for (int k = 0; k < 2; k++) {
        layer *bn = find_layer(k ? &m2->dec : &m2->enc, LAYER_BATCHNORM, 0);
        for (int c = 0; c < bn->in_c; c++)
            bn->running_mean[c] = 0.0f, bn->running_var[c] = 1.0f;
    }
    assert_int_equal(anamo_model_reconstruct(m2, &ds, 0, CK_N, recon2, &err), ANAMO_OK);
    assert_true(memcmp(recon, recon2, sizeof recon) != 0);

    unlink(path);
    rmdir(dir);
    anamo_model_free(m);
    anamo_model_free(m2);
}

/* ---- the threaded paths ------------------------------------------------------------------ */

/* B = 16 samples of 4×16×16 through convolutions, a transposed convolution and batch norm in
 * evaluation mode (per-sample, so a batch equals its samples run one at a time): at B = 16
 * im2col, col2im, batch norm and the layout conversions run on OpenMP threads (ctest sets
 * OMP_NUM_THREADS = 2; the work sizes exceed CONV_OMP_MIN = 16384 and BN_OMP_MIN = 4096), at
 * B = 1 none does. Outputs and dx agree to 1e-5 relative with a 1e-6 floor (both compute the
 * same sums, in an order that only the sgemm's blocking may change: a few ulp, ≤ 1.2e-7
 * measured); the weight gradients (|g| up to ~85), summed over 16 samples in float by the
 * library and over per-sample runs in double here, to 1e-4 relative with a 1e-5 floor (sums of
 * 16·256 products: ~√4096·u of the summed magnitudes; ≤ 4e-6 measured). A thread that skips, repeats or mixes planes is off by O(1). */
#define WIDE_SPEC \
    "conv2d 8 k3 s2 p1, relu, convtranspose2d 4 k4 s2 p1, batchnorm, conv2d 5 k3 s1 p1"
enum { WIDE_B = 16, WIDE_C = 4, WIDE_S = 16 };

static void test_threaded_matches_serial(void **state)
{
    block b;
    create_ok(&b, WIDE_SPEC, WIDE_C, WIDE_S, WIDE_S, WIDE_B);
    anamo_rng rng;
    anamo_rng_seed(&rng, 11000);
    block_init(&b, ANAMO_INIT_PYTORCH, 0.0f, &rng);
    randomize_batchnorm(&b, &rng);
    block_set_training(&b, 0);
    const int64_t D = b.in_dim, O = b.out_dim, np = b.nparams;
    float *x = alloc_or_fail((size_t)(WIDE_B * D) * sizeof *x);
    float *r = alloc_or_fail((size_t)(WIDE_B * O) * sizeof *r);
    double *gsum = alloc_or_fail((size_t)np * sizeof *gsum);
    fill_uniform(&rng, x, WIDE_B * D, -1.0f, 1.0f);
    fill_weights(&rng, r, WIDE_B * O);
    float *out = copy_of(block_forward(&b, x, WIDE_B), WIDE_B * O);
    float *dx = copy_of(block_backward(&b, r, WIDE_B, 1, 1), WIDE_B * D);
    float *grads = copy_of(b.grads, np);
    for (int s = 0; s < WIDE_B; s++) {
        const float *o1 = block_forward(&b, x + s * D, 1);
        for (int64_t i = 0; i < O; i++)
            expect_close("threaded out", s * O + i, out[s * O + i], o1[i], 1e-5, 1e-6);
        const float *d1 = block_backward(&b, r + s * O, 1, 1, 1);
        for (int64_t i = 0; i < D; i++)
            expect_close("threaded dx", s * D + i, dx[s * D + i], d1[i], 1e-5, 1e-6);
        for (int64_t i = 0; i < np; i++)
            gsum[i] += b.grads[i];
    }
    for (int64_t i = 0; i < np; i++)
        expect_close("threaded grads", i, grads[i], gsum[i], 1e-4, 1e-5);
    free(x), free(r), free(gsum), free(out), free(dx), free(grads);
    block_free(&b);
}

/* On oneDNN a sample's output does not depend on the batch around it: the same bits alone, at
 * every position of a full batch and inside a smaller one, on one thread, so a decoder phase
 * over codes cached in evaluation batches equals one that recomputes them per training batch,
 * bit for bit. im2col does not have this property (one sgemm over the batch's columns, which
 * OpenBLAS blocks by position: measured, sample 0 alone differs from sample 0 of 9), and is
 * not held to it. */
#define ROWS_SPEC "conv2d 6 k4 s2 p1, relu, conv2d 8 k4 s2 p1, relu, convtranspose2d 4 k4 s2 p1"
enum { ROWS_B = 9, ROWS_C = 3, ROWS_S = 16, ROWS_SMALL = 4 };

static void test_output_independent_of_batch(void **state)
{
    (void)state;
    if (suite_conv_impl != ANAMO_CONV_DNNL)
        skip();
    const int threads = omp_get_max_threads();
    omp_set_num_threads(1);
    block b;
    create_ok(&b, ROWS_SPEC, ROWS_C, ROWS_S, ROWS_S, ROWS_B);
    anamo_rng rng;
    anamo_rng_seed(&rng, 12000);
    block_init(&b, ANAMO_INIT_PYTORCH, 0.0f, &rng);
    const int64_t D = b.in_dim, O = b.out_dim;
    float *x = alloc_or_fail((size_t)(ROWS_B * D) * sizeof *x);
    fill_uniform(&rng, x, ROWS_B * D, -1.0f, 1.0f);
    float *full = copy_of(block_forward(&b, x, ROWS_B), ROWS_B * O);
    for (int s = 0; s < ROWS_B; s++) {
        const float *alone = block_forward(&b, x + s * D, 1);
        if (memcmp(alone, full + s * O, (size_t)O * sizeof(float)))
            fail_msg("sample %d: its output alone differs from its output in a batch of %d", s,
                     ROWS_B);
    }
    const float *part = block_forward(&b, x + 2 * D, ROWS_SMALL); /* samples 2 … 5 */
    if (memcmp(part, full + 2 * O, (size_t)(ROWS_SMALL * O) * sizeof(float)))
        fail_msg("samples 2-%d: their outputs in a batch of %d differ from those in one of %d",
                 1 + ROWS_SMALL, ROWS_SMALL, ROWS_B);
    omp_set_num_threads(threads);
    free(x), free(full);
    block_free(&b);
}

/* What anamo_model_conv_impl (summary.json's "convolutions") reports is what the layers run
 * on: model.conv = auto puts every layer of seed 000's shapes on oneDNN (a ConvTranspose2d's
 * forward on sgemm + col2im), im2col none. */
static void test_conv_impl_reported(void **state)
{
    (void)state;
    static const char *const ENC = "conv2d 4 k4 s2 p1, relu, conv2d 6 k4 s2 p1, relu";
    static const char *const DEC = "convtranspose2d 4 k4 s2 p1, relu, convtranspose2d 3 k4 s2 p1";
    const anamo_conv_impl impls[2] = {ANAMO_CONV_AUTO, ANAMO_CONV_IM2COL};
    for (int k = 0; k < 2; k++) {
        anamo_model_spec ms = {.in_c = 3,
                               .in_h = 8,
                               .in_w = 8,
                               .encoder = ENC,
                               .decoder = DEC,
                               .max_batch = 5,
                               .conv = impls[k]};
        anamo_model *m = NULL;
        anamo_err err = {0};
        if (anamo_model_create(&ms, &m, &err) != ANAMO_OK)
            fail_msg("anamo_model_create: %s", err.msg);
        for (int b = 0; b < 2; b++) {
            const block *blk = b ? &m->dec : &m->enc;
            for (int i = 0; i < blk->nlayers; i++)
                if (blk->layers[i].kind == LAYER_CONV2D || blk->layers[i].kind == LAYER_CONVT2D)
                    assert_int_equal(blk->layers[i].dnnl != NULL, k == 0);
        }
        char text[512];
        anamo_model_conv_impl(m, text, sizeof text);
        if (k == 0 &&
            (!strstr(text, "encoder.0 oneDNN (") || !strstr(text, "encoder.2 oneDNN (") ||
             !strstr(text, "decoder.0 oneDNN (sgemm+col2im, ") ||
             !strstr(text, "decoder.2 oneDNN (sgemm+col2im, ") || strstr(text, "im2col;")))
            fail_msg("model.conv = auto reports '%s'", text);
        if (k == 1 && strcmp(text, "encoder.0 im2col; encoder.2 im2col; decoder.0 im2col; "
                                   "decoder.2 im2col"))
            fail_msg("model.conv = im2col reports '%s'", text);
        anamo_model_free(m);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fd_conv2d),
        cmocka_unit_test(test_fd_convt2d),
        cmocka_unit_test(test_fd_chains),
        cmocka_unit_test(test_fd_batchnorm_training),
        cmocka_unit_test(test_fd_batchnorm_eval),
        cmocka_unit_test(test_forward_matches_definition),
        cmocka_unit_test(test_convt_forward_in_slices),
        cmocka_unit_test(test_adjoint),
        cmocka_unit_test(test_conv1x1_is_dense),
        cmocka_unit_test(test_conv_hand),
        cmocka_unit_test(test_convt_hand),
        cmocka_unit_test(test_output_sizes),
        cmocka_unit_test(test_batchnorm2d_stats),
        cmocka_unit_test(test_batchnorm2d_stats_channel_major),
        cmocka_unit_test(test_batchnorm1d_stats),
        cmocka_unit_test(test_batchnorm2d_stats_threaded),
        cmocka_unit_test(test_checkpoint_batchnorm),
        cmocka_unit_test(test_threaded_matches_serial),
        cmocka_unit_test(test_output_independent_of_batch),
        cmocka_unit_test(test_conv_impl_reported),
    };
    int failed = cmocka_run_group_tests_name("im2col", tests, NULL, NULL);
    suite_conv_impl = ANAMO_CONV_DNNL;
    return failed + cmocka_run_group_tests_name("dnnl", tests, NULL, NULL);
}
