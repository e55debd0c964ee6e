/* test_grad.c — every hand-written backward against central finite differences, and the
 * losses against closed forms on hand cases.
 *
 * The independent truth is the float forward itself: for a scalar objective J(θ) we run the
 * float32 forward at θ + h and θ − h, accumulate J in double, and take
 *     ∂J/∂θ ≈ (J(θ + h) − J(θ − h)) / (θ₊ − θ₋),
 * where θ₊, θ₋ are the float values actually stored (so the rounding of θ ± h does not count
 * as error). Layers are checked through J = Σ w·out with fixed weights w, whose gradient with
 * respect to out is w: the backward then runs with dout = w.
 *
 * Step and tolerance. Two errors compete:
 *   truncation  h²/6 · |J'''| — with h = FD_H = 1e-3 and |J'''| = O(10) (tanh, sigmoid and
 *               smooth-step third derivatives, chained through weights below 1), ≲ 2e-5;
 *   rounding    J is a sum of float32 outputs (unit roundoff u = 6e-8) of size O(1); only
 *               the outputs that depend on the perturbed value change between J(θ ± h), so
 *               the difference carries ≲ 10·u·|J| ≈ 1e-6 of rounding, which the division by
 *               2h turns into ≲ 5e-4 in the worst case and ~1e-5 typically.
 * A gradient passes when |fd − analytic| ≤ FD_ATOL + FD_RTOL·max(|fd|, |analytic|), with
 * FD_RTOL = 1e-2 and FD_ATOL = 1e-3 for layers and blocks (gradients O(0.1..1); measured
 * |fd − analytic| ≤ 7e-5) and LOSS_ATOL = 1e-4 where the gradients carry the losses' 1/(B·D)
 * (O(0.01); measured ≤ 2e-5). The worst case seen uses 6% of its bound. A wrong derivative
 * (a dropped factor, a wrong sign, a transposed product) is off by O(1) relative and fails by
 * orders of magnitude. Kinks (relu and step at 0, smooth-step at 0 and ε, ℓ1 at 0) are avoided
 * by keeping every point further than FD_KINK = 2h from them. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "test_util.h"

#include "loss/loss.h"
#include "nn/block.h"
#include "nn/layer.h"
#include "nn/model.h"
#include "train/trainer.h"

#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FD_H 1e-3f
#define FD_KINK (2.0f * FD_H)
#define FD_RTOL 1e-2
#define FD_ATOL 1e-3
#define LOSS_ATOL 1e-4
/* A sentinel no backward could write by accident: "untouched" means still this. */
#define SENTINEL 12345.0f

/* ---- helpers ----------------------------------------------------------------------------- */

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

/* Compares grad (a copy: the objective overwrites the layers' buffers) with finite
 * differences of J over every element of theta. */
static void check_grad(const char *what, float *theta, const float *grad, int64_t n, objective_fn J,
                       void *ctx, double atol)
{
    for (int64_t i = 0; i < n; i++)
        expect_close(what, i, grad[i], central_diff(&theta[i], J, ctx, FD_H), FD_RTOL, atol);
}

static float *copy_of(const float *x, int64_t n)
{
    float *c = malloc((size_t)n * sizeof *c);
    assert_non_null(c);
    memcpy(c, x, (size_t)n * sizeof *c);
    return c;
}

/* ---- activations ------------------------------------------------------------------------- */

/* The library switches to OpenMP above 32768 elements (ACT_OMP_MIN, LINEAR_OMP_MIN,
 * LOSS_OMP_MIN in src/); WIDE_B × WIDE_D = 40000 is above it, so the "wide" cases run the
 * threaded paths (ctest sets OMP_NUM_THREADS=2) and check a spread-out sample of elements. */
enum { WIDE_B = 200, WIDE_D = 200, WIDE_STRIDE = 613 /* prime: samples every row offset */ };

typedef struct act_ctx {
    layer *l;
    float *x;
    const float *w;
    int B;
} act_ctx;

static double act_objective(void *p)
{
    act_ctx *c = p;
    act_forward(c->l, c->x, c->B);
    return weighted_sum(c->w, c->l->out, (int64_t)c->B * c->l->out_dim);
}

static int near_kink(act_kind act, float eps, float x)
{
    switch (act) {
    case ACT_RELU:
    case ACT_STEP: return fabsf(x) < FD_KINK;
    case ACT_SMOOTHSTEP: return fabsf(x) < FD_KINK || fabsf(x - eps) < FD_KINK;
    default: return 0;
    }
}

/* A wide run (out and din already computed) against runs of ACT_CHUNK rows, below the OpenMP
 * threshold. Element-wise, the two compute the same expression: 1e-6 relative allows only
 * for a vectorized and a scalar loop rounding differently. */
enum { ACT_CHUNK = 8 };

static void check_act_chunks(const layer *l, const float *x, const float *w, const float *din,
                             int B, const char *what)
{
    const int64_t D = l->out_dim;
    float out_c[ACT_CHUNK * WIDE_D], din_c[ACT_CHUNK * WIDE_D];
    assert_true(D <= WIDE_D && B % ACT_CHUNK == 0);
    layer lc = *l;
    lc.out = out_c;
    for (int r = 0; r < B; r += ACT_CHUNK) {
        const int64_t at = r * D;
        act_forward(&lc, x + at, ACT_CHUNK);
        act_backward(&lc, x + at, w + at, din_c, ACT_CHUNK);
        for (int64_t i = 0; i < ACT_CHUNK * D; i++) {
            expect_close(what, at + i, l->out[at + i], out_c[i], 1e-6, 1e-30);
            expect_close(what, at + i, din[at + i], din_c[i], 1e-6, 1e-30);
        }
    }
}

/* din of act on B rows of D values against central differences at every stride-th element. */
static void check_act_shape(act_kind act, float eps, int B, int64_t D, int64_t stride)
{
    const int64_t n = (int64_t)B * D;
    float *x = malloc((size_t)n * sizeof *x), *out = malloc((size_t)n * sizeof *out);
    float *w = malloc((size_t)n * sizeof *w), *din = malloc((size_t)n * sizeof *din);
    assert_true(x && out && w && din);
    layer l = {.kind = LAYER_ACT, .act = act, .eps = eps, .in_dim = D, .out_dim = D, .out = out};
    anamo_rng rng;
    anamo_rng_seed(&rng, 100 + (uint64_t)act);
    /* cover both flat sides and the inside of the smooth step; ±4 elsewhere */
    const float lo = act == ACT_SMOOTHSTEP ? -0.5f * eps : -4.0f;
    const float hi = act == ACT_SMOOTHSTEP ? 1.5f * eps : 4.0f;
    for (int64_t i = 0; i < n; i++)
        do
            x[i] = anamo_rng_uniform_range(&rng, lo, hi);
        while (near_kink(act, eps, x[i]));
    fill_weights(&rng, w, n);
    for (int64_t i = 0; i < n; i++)
        out[i] = din[i] = SENTINEL; /* an element left unwritten shows */

    act_forward(&l, x, B);
    act_backward(&l, x, w, din, B);
    char what[64];
    snprintf(what, sizeof what, "%s(eps=%g) din, %d×%lld", act_name(act), (double)eps, B,
             (long long)D);
    if (stride > 1) /* every element against the serial path, a chunk of rows at a time */
        check_act_chunks(&l, x, w, din, B, what);
    act_ctx c = {&l, x, w, B};
    for (int64_t i = 0; i < n; i += stride)
        expect_close(what, i, din[i], central_diff(&x[i], act_objective, &c, FD_H), FD_RTOL,
                     FD_ATOL);
    if (act == ACT_STEP)
        assert_true(all_equal_to(din, n, 0.0f)); /* exactly 0, not merely small */
    free(x), free(out), free(w), free(din);
}

static void check_act(act_kind act, float eps)
{
    check_act_shape(act, eps, 1, 64, 1); /* every element */
    check_act_shape(act, eps, 3, 21, 1); /* several rows */
    check_act_shape(act, eps, WIDE_B, WIDE_D, WIDE_STRIDE);
}

static void test_act_identity(void **state) { check_act(ACT_IDENTITY, 1.0f); }
static void test_act_relu(void **state) { check_act(ACT_RELU, 1.0f); }
static void test_act_sigmoid(void **state) { check_act(ACT_SIGMOID, 1.0f); }
static void test_act_tanh(void **state) { check_act(ACT_TANH, 1.0f); }
static void test_act_step(void **state) { check_act(ACT_STEP, 1.0f); }
static void test_act_smoothstep_half(void **state) { check_act(ACT_SMOOTHSTEP, 0.5f); }
static void test_act_smoothstep_two(void **state) { check_act(ACT_SMOOTHSTEP, 2.0f); }

/* The forward values against double closed forms. Tolerance 1e-6: values lie in [−4, 4] and
 * the float functions are within a few ulp (≤ 5e-7 at 4). */
static void test_act_values(void **state)
{
    const float xs[] = {-4.0f, -1.5f, -0.25f, 0.0f, 0.1f, 0.3f, 0.75f, 1.0f, 2.5f};
    for (size_t k = 0; k < sizeof xs / sizeof xs[0]; k++) {
        const double x = xs[k];
        const double u = x / 0.5; /* smooth step with ε = 0.5 */
        const double smooth = x <= 0 ? 0.0 : x >= 0.5 ? 1.0 : 3 * u * u - 2 * u * u * u;
        expect_close("identity", (int64_t)k, act_apply(ACT_IDENTITY, 1, xs[k]), x, 0, 1e-6);
        expect_close("relu", (int64_t)k, act_apply(ACT_RELU, 1, xs[k]), x > 0 ? x : 0, 0, 1e-6);
        expect_close("sigmoid", (int64_t)k, act_apply(ACT_SIGMOID, 1, xs[k]), 1 / (1 + exp(-x)), 0,
                     1e-6);
        expect_close("tanh", (int64_t)k, act_apply(ACT_TANH, 1, xs[k]), tanh(x), 0, 1e-6);
        expect_close("step", (int64_t)k, act_apply(ACT_STEP, 1, xs[k]), x > 0 ? 1 : 0, 0, 0);
        expect_close("smoothstep", (int64_t)k, act_apply(ACT_SMOOTHSTEP, 0.5f, xs[k]), smooth, 0,
                     1e-6);
    }
    /* saturated inputs give finite values at the ends: σ(100) rounds to 1, and σ(−100)
     * ≈ 3.7e−44 may come back as any tiny non-negative number (an exp clamped to avoid
     * overflow gives ~1e−38), never NaN or a negative */
    assert_true(act_apply(ACT_SIGMOID, 1, 100.0f) == 1.0f);
    float tiny = act_apply(ACT_SIGMOID, 1, -100.0f);
    assert_true(isfinite(tiny) && tiny >= 0.0f && tiny < 1e-30f);
}

/* ---- the linear layer -------------------------------------------------------------------- */

enum { LIN_IN = 5, LIN_OUT = 7, LIN_MAXB = 3 };

typedef struct lin_ctx {
    layer *l;
    float *x;
    const float *w;
    int B;
} lin_ctx;

static double lin_objective(void *p)
{
    lin_ctx *c = p;
    linear_forward(c->l, c->x, c->B);
    return weighted_sum(c->w, c->l->out, (int64_t)c->B * LIN_OUT);
}

typedef struct lin_fixture {
    float W[LIN_OUT * LIN_IN], b[LIN_OUT], dW[LIN_OUT * LIN_IN], db[LIN_OUT];
    float x[LIN_MAXB * LIN_IN], out[LIN_MAXB * LIN_OUT], w[LIN_MAXB * LIN_OUT];
    float din[LIN_MAXB * LIN_IN];
    layer l;
} lin_fixture;

static void lin_setup(lin_fixture *f, int B)
{
    anamo_rng rng;
    anamo_rng_seed(&rng, 200 + (uint64_t)B);
    fill_uniform(&rng, f->W, LIN_OUT * LIN_IN, -0.5f, 0.5f);
    fill_uniform(&rng, f->b, LIN_OUT, -0.5f, 0.5f);
    fill_uniform(&rng, f->x, (int64_t)B * LIN_IN, -1.0f, 1.0f);
    fill_weights(&rng, f->w, (int64_t)B * LIN_OUT);
    f->l = (layer){.kind = LAYER_LINEAR,
                   .in_dim = LIN_IN,
                   .out_dim = LIN_OUT,
                   .weight = f->W,
                   .bias = f->b,
                   .dweight = f->dW,
                   .dbias = f->db,
                   .out = f->out};
}

static void check_linear(int B)
{
    lin_fixture f;
    lin_setup(&f, B);
    lin_ctx c = {&f.l, f.x, f.w, B};
    char what[64];

    /* both gradients */
    linear_forward(&f.l, f.x, B);
    linear_backward(&f.l, f.x, f.w, f.din, B, 1, 1);
    float *dW = copy_of(f.dW, LIN_OUT * LIN_IN), *db = copy_of(f.db, LIN_OUT);
    float *din = copy_of(f.din, (int64_t)B * LIN_IN);
    snprintf(what, sizeof what, "linear B=%d dW", B);
    check_grad(what, f.W, dW, LIN_OUT * LIN_IN, lin_objective, &c, FD_ATOL);
    snprintf(what, sizeof what, "linear B=%d db", B);
    check_grad(what, f.b, db, LIN_OUT, lin_objective, &c, FD_ATOL);
    snprintf(what, sizeof what, "linear B=%d din", B);
    check_grad(what, f.x, din, (int64_t)B * LIN_IN, lin_objective, &c, FD_ATOL);

    /* need_dw = 0: the weight gradients are not written, din still is */
    for (int i = 0; i < LIN_OUT * LIN_IN; i++)
        f.dW[i] = SENTINEL;
    for (int i = 0; i < LIN_OUT; i++)
        f.db[i] = SENTINEL;
    memset(f.din, 0, sizeof f.din);
    linear_forward(&f.l, f.x, B);
    linear_backward(&f.l, f.x, f.w, f.din, B, 1, 0);
    assert_true(all_equal_to(f.dW, LIN_OUT * LIN_IN, SENTINEL));
    assert_true(all_equal_to(f.db, LIN_OUT, SENTINEL));
    assert_memory_equal(f.din, din, (size_t)B * LIN_IN * sizeof(float));

    /* need_din = 0: din is not written, the weight gradients still are */
    for (int i = 0; i < B * LIN_IN; i++)
        f.din[i] = SENTINEL;
    linear_backward(&f.l, f.x, f.w, f.din, B, 0, 1);
    assert_true(all_equal_to(f.din, (int64_t)B * LIN_IN, SENTINEL));
    assert_memory_equal(f.dW, dW, sizeof f.dW);
    assert_memory_equal(f.db, db, sizeof f.db);

    /* gradients overwrite, they do not accumulate: a second backward gives the same */
    linear_backward(&f.l, f.x, f.w, f.din, B, 1, 1);
    assert_memory_equal(f.dW, dW, sizeof f.dW);
    assert_memory_equal(f.db, db, sizeof f.db);
    free(dW), free(db), free(din);
}

static void test_linear_b1(void **state) { check_linear(1); }
static void test_linear_b3(void **state) { check_linear(3); }

/* The bias gradient of a layer wide enough that its columns are split across threads (125 ×
 * 300 > LINEAR_OMP_MIN, and 300 = 4·64 + 44 leaves a short last chunk): every column is the
 * in-order float sum of its rows, bit for bit, at 1 and at 2 threads, and within 1e-5 of the
 * sum in double. */
enum { WIDE_LIN_B = 125, WIDE_LIN_OUT = 300, WIDE_LIN_IN = 2 };

static void test_linear_bias_grad_wide(void **state)
{
    static float dout[WIDE_LIN_B * WIDE_LIN_OUT], x[WIDE_LIN_B * WIDE_LIN_IN];
    static float W[WIDE_LIN_OUT * WIDE_LIN_IN], dW[WIDE_LIN_OUT * WIDE_LIN_IN];
    float db[WIDE_LIN_OUT], want[WIDE_LIN_OUT];
    anamo_rng rng;
    anamo_rng_seed(&rng, 77);
    fill_uniform(&rng, dout, WIDE_LIN_B * WIDE_LIN_OUT, -1.0f, 1.0f);
    fill_uniform(&rng, x, WIDE_LIN_B * WIDE_LIN_IN, -1.0f, 1.0f);
    layer l = {.kind = LAYER_LINEAR,
               .in_dim = WIDE_LIN_IN,
               .out_dim = WIDE_LIN_OUT,
               .weight = W,
               .dweight = dW,
               .dbias = db};
    double exact[WIDE_LIN_OUT];
    for (int o = 0; o < WIDE_LIN_OUT; o++) {
        want[o] = 0.0f, exact[o] = 0.0;
        for (int b = 0; b < WIDE_LIN_B; b++) {
            want[o] += dout[b * WIDE_LIN_OUT + o];
            exact[o] += dout[b * WIDE_LIN_OUT + o];
        }
    }
    const int threads = omp_get_max_threads();
    for (int nthreads = 1; nthreads <= 2; nthreads++) {
        omp_set_num_threads(nthreads);
        for (int o = 0; o < WIDE_LIN_OUT; o++)
            db[o] = SENTINEL;
        linear_backward(&l, x, dout, NULL, WIDE_LIN_B, 0, 1);
        for (int o = 0; o < WIDE_LIN_OUT; o++)
            expect_close("wide db", o, db[o], exact[o], 0, 1e-5);
        assert_memory_equal(db, want, sizeof db);
    }
    omp_set_num_threads(threads);
}

/* The forward against a hand case: W = [[1, 2], [−1, 0.5]], b = [0.25, −1], x = [3, −2]:
 * out = [1·3 + 2·(−2) + 0.25, −1·3 + 0.5·(−2) − 1] = [−0.75, −5] (exact in float). */
static void test_linear_forward_hand(void **state)
{
    float W[4] = {1, 2, -1, 0.5f}, b[2] = {0.25f, -1}, x[2] = {3, -2}, out[2];
    layer l = {.kind = LAYER_LINEAR, .in_dim = 2, .out_dim = 2, .weight = W, .bias = b, .out = out};
    linear_forward(&l, x, 1);
    assert_true(out[0] == -0.75f && out[1] == -5.0f);
}

/* ---- a block ----------------------------------------------------------------------------- */

enum { BLK_IN = 5, BLK_B = 3 };
#define BLK_SPEC "linear 6, tanh, linear 4, sigmoid"

typedef struct blk_ctx {
    block *b;
    float *x;
    const float *w;
} blk_ctx;

static double blk_objective(void *p)
{
    blk_ctx *c = p;
    const float *out = block_forward(c->b, c->x, BLK_B);
    return weighted_sum(c->w, out, BLK_B * c->b->out_dim);
}

static void test_block_backward(void **state)
{
    block b;
    anamo_err err = {0};
    assert_int_equal(block_create(&b, "encoder", BLK_SPEC, BLK_IN, 1, 1, BLK_B, ANAMO_CONV_AUTO,
                                  &err),
                     ANAMO_OK);
    assert_int_equal(b.out_dim, 4);
    anamo_rng rng;
    anamo_rng_seed(&rng, 300);
    block_init(&b, ANAMO_INIT_PYTORCH, 0.0f, &rng);
    float x[BLK_B * BLK_IN], w[BLK_B * 4];
    fill_uniform(&rng, x, BLK_B * BLK_IN, -1.0f, 1.0f);
    fill_weights(&rng, w, BLK_B * 4);
    blk_ctx c = {&b, x, w};

    /* the truth, once: finite differences over the input and over the flat parameters */
    double fd_dx[BLK_B * BLK_IN], *fd_dw = malloc((size_t)b.nparams * sizeof *fd_dw);
    assert_non_null(fd_dw);
    for (int i = 0; i < BLK_B * BLK_IN; i++)
        fd_dx[i] = central_diff(&x[i], blk_objective, &c, FD_H);
    for (int64_t i = 0; i < b.nparams; i++)
        fd_dw[i] = central_diff(&b.params[i], blk_objective, &c, FD_H);

    for (int need_dx = 0; need_dx <= 1; need_dx++)
        for (int need_dw = 0; need_dw <= 1; need_dw++) {
            char what[64];
            for (int64_t i = 0; i < b.nparams; i++)
                b.grads[i] = SENTINEL;
            block_forward(&b, x, BLK_B);
            float *dx = block_backward(&b, w, BLK_B, need_dx, need_dw);
            if (need_dx) {
                assert_non_null(dx);
                snprintf(what, sizeof what, "block dx (need_dw=%d)", need_dw);
                for (int i = 0; i < BLK_B * BLK_IN; i++)
                    expect_close(what, i, dx[i], fd_dx[i], FD_RTOL, FD_ATOL);
            } else {
                assert_null(dx);
            }
            if (need_dw) {
                snprintf(what, sizeof what, "block grads (need_dx=%d)", need_dx);
                for (int64_t i = 0; i < b.nparams; i++)
                    expect_close(what, i, b.grads[i], fd_dw[i], FD_RTOL, FD_ATOL);
            } else {
                assert_true(all_equal_to(b.grads, b.nparams, SENTINEL));
            }
        }
    free(fd_dw);
    block_free(&b);
}

/* The threaded paths of a block: B = 200 rows through "linear 256, tanh, linear 192,
 * sigmoid" (51200 and 38400 activations, above the OpenMP thresholds) against the same block
 * run in chunks of WB_CHUNK rows, below the thresholds, whose serial path the tests above
 * check against finite differences. (Finite differences themselves are too noisy here: a
 * bias moves all 38400 outputs, and their float rounding divided by 2h swamps the estimate.)
 * Outputs must agree to 1e-6 relative (a few ulp: only the product's blocking may differ).
 * dx entries (|dx| ≤ 0.5) are sums over 256·192 paths that partly cancel, so their rounding is
 * absolute, ~1e-7 measured: we allow 2e-6 + 1e-5 relative. The weight gradients (|g| ≤ 10)
 * are sums over 200 rows, in float by the library and in double over chunks here: ~200·u of
 * the summed magnitudes, 3e-6 measured; we allow 2e-5 + 1e-4 relative. A threaded path that
 * skips, repeats or mixes rows is off by O(|g|). */
enum { WB_IN = 64, WB_B = WIDE_B, WB_CHUNK = 8, WB_WIDEST = 256 /* scratch is (B, widest) */ };

static void test_block_backward_wide(void **state)
{
    block b;
    anamo_err err = {0};
    assert_int_equal(block_create(&b, "decoder", "linear 256, tanh, linear 192, sigmoid", WB_IN, 1,
                                  1, WB_B, ANAMO_CONV_AUTO, &err),
                     ANAMO_OK);
    const int64_t OUT = b.out_dim, nx = (int64_t)WB_B * WB_IN, nout = (int64_t)WB_B * OUT;
    anamo_rng rng;
    anamo_rng_seed(&rng, 301);
    block_init(&b, ANAMO_INIT_PYTORCH, 0.0f, &rng);
    float *x = malloc((size_t)nx * sizeof *x), *w = malloc((size_t)nout * sizeof *w);
    double *gsum = calloc((size_t)b.nparams, sizeof *gsum);
    assert_true(x && w && gsum);
    fill_uniform(&rng, x, nx, -1.0f, 1.0f);
    fill_weights(&rng, w, nout);
    /* an element the threaded run leaves unwritten shows as the sentinel */
    for (int64_t i = 0; i < b.nparams; i++)
        b.grads[i] = SENTINEL;
    for (int k = 0; k < 2; k++)
        for (int64_t i = 0; i < (int64_t)WB_B * WB_WIDEST; i++)
            b.scratch[k][i] = SENTINEL;
    for (int k = 0; k < b.nlayers; k++)
        for (int64_t i = 0; i < WB_B * b.layers[k].out_dim; i++)
            b.layers[k].out[i] = SENTINEL;

    const float *out = block_forward(&b, x, WB_B);
    float *out_all = copy_of(out, nout);
    float *dx = copy_of(block_backward(&b, w, WB_B, 1, 1), nx);
    float *grads = copy_of(b.grads, b.nparams);

    for (int r = 0; r < WB_B; r += WB_CHUNK) {
        out = block_forward(&b, x + r * WB_IN, WB_CHUNK);
        for (int64_t i = 0; i < WB_CHUNK * OUT; i++)
            expect_close("wide block out", r * OUT + i, out_all[r * OUT + i], out[i], 1e-6, 0);
        const float *dxc = block_backward(&b, w + r * OUT, WB_CHUNK, 1, 1);
        for (int64_t i = 0; i < WB_CHUNK * WB_IN; i++)
            expect_close("wide block dx", r * WB_IN + i, dx[r * WB_IN + i], dxc[i], 1e-5, 2e-6);
        for (int64_t i = 0; i < b.nparams; i++)
            gsum[i] += b.grads[i];
    }
    for (int64_t i = 0; i < b.nparams; i++)
        expect_close("wide block grads", i, grads[i], gsum[i], 1e-4, 2e-5);
    free(x), free(w), free(gsum), free(out_all), free(dx), free(grads);
    block_free(&b);
}

/* A block's passes on the threads' own rows (src/nn/block.c: forward_run, backward_run), bit
 * for bit. The main job's decoder (64 → 128 → 784: its gradients narrow from 784 to 128 to 64
 * wide, so one thread's rows of a buffer overlap another's rows of the same buffer at the next
 * width), its encoder, and a block that a batch norm cuts into two runs; each way of asking
 * for gradients. On 2 threads the passes must give, TB_REPS times over, exactly what they gave
 * the first time (a race between the threads shows as a difference in some repetition), and
 * what one thread gives to 1e-6 relative (each element is the one sum a one-thread product
 * makes, so no more than the last bit may differ; whether it is bit for bit the same is
 * printed). A meeting left out where a thread writes what another still reads fails the first
 * check within a few repetitions. */
enum { TB_B = 125, TB_REPS = 100 };

typedef struct pass_arrays {
    float *out, *dx, *grads;
} pass_arrays;

static void run_passes(block *b, const float *x, const float *w, int need_dx, int need_dw,
                       pass_arrays *r)
{
    const float *out = block_forward(b, x, TB_B);
    memcpy(r->out, out, (size_t)TB_B * b->out_dim * sizeof(float));
    const float *dx = block_backward(b, w, TB_B, need_dx, need_dw);
    if (need_dx)
        memcpy(r->dx, dx, (size_t)TB_B * b->in_dim * sizeof(float));
    if (need_dw)
        memcpy(r->grads, b->grads, (size_t)b->nparams * sizeof(float));
}

static pass_arrays pass_arrays_new(const block *b)
{
    pass_arrays r = {malloc((size_t)TB_B * b->out_dim * sizeof(float)),
                     calloc((size_t)TB_B * b->in_dim, sizeof(float)),
                     calloc((size_t)b->nparams, sizeof(float))};
    assert_true(r.out && r.dx && r.grads);
    return r;
}

static void pass_arrays_free(pass_arrays *r) { free(r->out), free(r->dx), free(r->grads); }

/* the first index where a and b differ in their bits, or −1 */
static int64_t first_difference(const float *a, const float *b, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        if (memcmp(&a[i], &b[i], sizeof(float)))
            return i;
    return -1;
}

static void expect_same_bits(const char *what, int rep, const float *got, const float *want,
                             int64_t n)
{
    const int64_t i = first_difference(got, want, n);
    if (i >= 0)
        fail_msg("%s, repetition %d: element %lld is %.9g, was %.9g", what, rep, (long long)i,
                 got[i], want[i]);
}

static void check_threads(const char *spec, int in_dim, uint64_t seed)
{
    block b;
    anamo_err err = {0};
    assert_int_equal(block_create(&b, "decoder", spec, in_dim, 1, 1, TB_B, ANAMO_CONV_AUTO, &err),
                     ANAMO_OK);
    anamo_rng rng;
    anamo_rng_seed(&rng, seed);
    block_init(&b, ANAMO_INIT_PYTORCH, 0.0f, &rng);
    block_set_training(&b, 1);
    const int64_t nx = (int64_t)TB_B * in_dim, nout = (int64_t)TB_B * b.out_dim;
    float *x = malloc((size_t)nx * sizeof *x), *w = malloc((size_t)nout * sizeof *w);
    assert_true(x && w);
    fill_uniform(&rng, x, nx, -1.0f, 1.0f);
    fill_weights(&rng, w, nout);
    const int threads = omp_get_max_threads();
    static const int needs[3][2] = {{1, 0}, {1, 1}, {0, 1}}; /* need_dx, need_dw */
    for (int m = 0; m < 3; m++) {
        const int need_dx = needs[m][0], need_dw = needs[m][1];
        pass_arrays one = pass_arrays_new(&b), first = pass_arrays_new(&b),
                    again = pass_arrays_new(&b);
        omp_set_num_threads(1);
        run_passes(&b, x, w, need_dx, need_dw, &one);
        omp_set_num_threads(2);
        run_passes(&b, x, w, need_dx, need_dw, &first);
        char what[160];
        snprintf(what, sizeof what, "%s (need_dx %d, need_dw %d)", spec, need_dx, need_dw);
        for (int rep = 1; rep <= TB_REPS; rep++) {
            run_passes(&b, x, w, need_dx, need_dw, &again);
            expect_same_bits(what, rep, again.out, first.out, nout);
            expect_same_bits(what, rep, again.dx, first.dx, nx);
            expect_same_bits(what, rep, again.grads, first.grads, b.nparams);
        }
        for (int64_t i = 0; i < nout; i++)
            expect_close("2 threads against 1: out", i, first.out[i], one.out[i], 1e-6, 1e-7);
        for (int64_t i = 0; i < nx; i++)
            expect_close("2 threads against 1: dx", i, first.dx[i], one.dx[i], 1e-6, 1e-7);
        for (int64_t i = 0; i < b.nparams; i++)
            expect_close("2 threads against 1: grads", i, first.grads[i], one.grads[i], 1e-6, 1e-7);
        const int same = first_difference(first.out, one.out, nout) < 0 &&
                         first_difference(first.dx, one.dx, nx) < 0 &&
                         first_difference(first.grads, one.grads, b.nparams) < 0;
        print_message("%s: 2 threads %s 1\n", what, same ? "bit for bit as" : "within 1e-6 of");
        pass_arrays_free(&one), pass_arrays_free(&first), pass_arrays_free(&again);
    }
    omp_set_num_threads(threads);
    free(x), free(w);
    block_free(&b);
}

static void test_block_threads_decoder(void **state)
{
    check_threads("linear 128, relu, linear 784, sigmoid", 64, 310);
}

static void test_block_threads_encoder(void **state)
{
    check_threads("linear 128, relu, linear 64, relu", 784, 311);
}

static void test_block_threads_two_runs(void **state)
{
    check_threads("linear 96, relu, linear 300, batchnorm, tanh, linear 40, sigmoid", 50, 312);
}

/* ---- losses ------------------------------------------------------------------------------ */

enum { LOSS_B = 2, LOSS_D = 3 };

typedef struct loss_ctx {
    anamo_loss_kind kind;
    float *xhat;
    const float *x;
    int from_logits;
} loss_ctx;

static double loss_objective(void *p)
{
    loss_ctx *c = p;
    return loss_forward(c->kind, c->xhat, c->x, NULL, LOSS_B, LOSS_D, c->from_logits);
}

static void check_loss_fd(anamo_loss_kind kind, int from_logits)
{
    enum { N = LOSS_B * LOSS_D };
    float xhat[N], x[N], dxhat[N];
    anamo_rng rng;
    anamo_rng_seed(&rng, 400 + 10 * (uint64_t)kind + (uint64_t)from_logits);
    if (from_logits)
        fill_uniform(&rng, xhat, N, -3.0f, 3.0f);
    else
        fill_uniform(&rng, xhat, N, 0.1f, 0.9f); /* probabilities, away from the log clamp */
    fill_uniform(&rng, x, N, 0.0f, 1.0f);        /* soft targets too, not only 0/1 */
    x[0] = 0.0f, x[1] = 1.0f;
    loss_forward(kind, xhat, x, dxhat, LOSS_B, LOSS_D, from_logits);
    char what[64];
    snprintf(what, sizeof what, "%s%s dxhat", loss_name(kind), from_logits ? " (logits)" : "");
    loss_ctx c = {kind, xhat, x, from_logits};
    check_grad(what, xhat, dxhat, N, loss_objective, &c, LOSS_ATOL);
}

typedef struct wide_loss_ctx {
    anamo_loss_kind kind;
    float *xhat;
    const float *x;
    int from_logits;
} wide_loss_ctx;

static double wide_loss_objective(void *p)
{
    wide_loss_ctx *c = p;
    return loss_forward(c->kind, c->xhat, c->x, NULL, WIDE_B, WIDE_D, c->from_logits);
}

/* The threaded paths (40000 elements). Each gradient entry is 1/(B·D) = 2.5e-5 times O(1)
 * (mse_sum: 1/B = 5e-3), so the comparison is relative, 1e-2, with an absolute floor of
 * 1e-8: the objective is a double sum of terms that are exactly the same in J(θ ± h) except
 * the perturbed one. */
static void check_loss_wide(anamo_loss_kind kind, int from_logits)
{
    const int64_t n = (int64_t)WIDE_B * WIDE_D;
    float *xhat = malloc((size_t)n * sizeof *xhat), *x = malloc((size_t)n * sizeof *x);
    float *dxhat = malloc((size_t)n * sizeof *dxhat);
    assert_true(xhat && x && dxhat);
    anamo_rng rng;
    anamo_rng_seed(&rng, 450 + 10 * (uint64_t)kind + (uint64_t)from_logits);
    if (from_logits)
        fill_uniform(&rng, xhat, n, -3.0f, 3.0f);
    else
        fill_uniform(&rng, xhat, n, 0.1f, 0.9f);
    fill_uniform(&rng, x, n, 0.0f, 1.0f);
    loss_forward(kind, xhat, x, dxhat, WIDE_B, WIDE_D, from_logits);
    char what[64];
    snprintf(what, sizeof what, "wide %s%s dxhat", loss_name(kind), from_logits ? " (logits)" : "");
    wide_loss_ctx c = {kind, xhat, x, from_logits};
    for (int64_t i = 0; i < n; i += WIDE_STRIDE)
        expect_close(what, i, dxhat[i], central_diff(&xhat[i], wide_loss_objective, &c, FD_H),
                     FD_RTOL, 1e-8);
    free(xhat), free(x), free(dxhat);
}

static void test_loss_wide(void **state)
{
    check_loss_wide(ANAMO_LOSS_MSE, 0);
    check_loss_wide(ANAMO_LOSS_MSE_SUM, 0);
    check_loss_wide(ANAMO_LOSS_BCE, 0);
    check_loss_wide(ANAMO_LOSS_BCE, 1);
}

static void test_loss_mse_fd(void **state) { check_loss_fd(ANAMO_LOSS_MSE, 0); }
static void test_loss_mse_sum_fd(void **state) { check_loss_fd(ANAMO_LOSS_MSE_SUM, 0); }
static void test_loss_bce_fd(void **state) { check_loss_fd(ANAMO_LOSS_BCE, 0); }
static void test_loss_bce_logits_fd(void **state) { check_loss_fd(ANAMO_LOSS_BCE, 1); }

/* Hand case, B = 2, D = 2 (every value exact in float):
 *     x̂ = [[0.5, 0.25], [0.75, 0.5]], x = [[1, 0], [0, 1]], x̂ − x = [[−0.5, 0.25], [0.75, −0.5]]
 *     squared errors 0.25, 0.0625, 0.5625, 0.25 (sum 1.125)
 *     mse     = 1.125/4 = 0.28125     ∂/∂x̂ = 2(x̂ − x)/4 = [[−0.25, 0.125], [0.375, −0.25]]
 *     mse_sum = 1.125/2 = 0.5625      ∂/∂x̂ = 2(x̂ − x)/2 = [[−0.5, 0.25], [0.75, −0.5]]
 *     bce     = −(log 0.5 + log 0.75 + log 0.25 + log 0.5)/4
 *               ∂/∂x̂ = (x̂ − x)/(x̂(1 − x̂))/4 = [[−0.5, 1/3], [1, −0.5]]
 * The first row alone (B = 1) is the case mse = (0.25 + 0.0625)/2,
 * bce = −(log 0.5 + log 0.75)/2.
 * Values are compared to 1e-12 relative (double sums of exact terms and double logs),
 * gradients to 1e-6 relative (float32 results). */
static void test_loss_hand_case(void **state)
{
    const float xhat[4] = {0.5f, 0.25f, 0.75f, 0.5f}, x[4] = {1, 0, 0, 1};
    float g[4];
    const double mse_g[4] = {-0.25, 0.125, 0.375, -0.25};
    const double sum_g[4] = {-0.5, 0.25, 0.75, -0.5};
    const double bce_g[4] = {-0.5, 1.0 / 3.0, 1.0, -0.5};

    expect_close("mse", 0, loss_forward(ANAMO_LOSS_MSE, xhat, x, g, 2, 2, 0), 0.28125, 1e-12, 0);
    for (int i = 0; i < 4; i++)
        expect_close("mse grad", i, g[i], mse_g[i], 1e-6, 0);
    expect_close("mse_sum", 0, loss_forward(ANAMO_LOSS_MSE_SUM, xhat, x, g, 2, 2, 0), 0.5625, 1e-12,
                 0);
    for (int i = 0; i < 4; i++)
        expect_close("mse_sum grad", i, g[i], sum_g[i], 1e-6, 0);
    const double bce = -(log(0.5) + log(0.75) + log(0.25) + log(0.5)) / 4;
    expect_close("bce", 0, loss_forward(ANAMO_LOSS_BCE, xhat, x, g, 2, 2, 0), bce, 1e-12, 0);
    for (int i = 0; i < 4; i++)
        expect_close("bce grad", i, g[i], bce_g[i], 1e-6, 0);

    expect_close("mse B=1", 0, loss_forward(ANAMO_LOSS_MSE, xhat, x, NULL, 1, 2, 0),
                 (0.25 + 0.0625) / 2, 1e-12, 0);
    expect_close("mse_sum B=1", 0, loss_forward(ANAMO_LOSS_MSE_SUM, xhat, x, NULL, 1, 2, 0),
                 0.25 + 0.0625, 1e-12, 0);
    expect_close("bce B=1", 0, loss_forward(ANAMO_LOSS_BCE, xhat, x, NULL, 1, 2, 0),
                 -(log(0.5) + log(0.75)) / 2, 1e-12, 0);
}

/* BCE from logits z against BCE on p = σ(z) (σ in double, rounded to float as a decoder output
 * would be). |z| ≤ 2 keeps 1 − p ≥ 0.12, so p's rounding (≤ 3e-8) moves log(1 − p) by
 * ≤ 2.5e-7: the values agree to 1e-6. The gradients are related by the chain rule,
 * ∂/∂z = ∂/∂p · p(1 − p), to 1e-5 relative (float results, one division by p(1 − p)). */
static void test_loss_bce_logits_matches_probabilities(void **state)
{
    enum { B = 3, D = 4, N = B * D };
    float z[N], p[N], x[N], gz[N], gp[N];
    anamo_rng rng;
    anamo_rng_seed(&rng, 500);
    fill_uniform(&rng, z, N, -2.0f, 2.0f);
    fill_uniform(&rng, x, N, 0.0f, 1.0f);
    x[0] = 0.0f, x[1] = 1.0f;
    for (int i = 0; i < N; i++)
        p[i] = (float)(1.0 / (1.0 + exp(-(double)z[i])));
    double lz = loss_forward(ANAMO_LOSS_BCE, z, x, gz, B, D, 1);
    double lp = loss_forward(ANAMO_LOSS_BCE, p, x, gp, B, D, 0);
    expect_close("bce logits vs probabilities", 0, lz, lp, 0, 1e-6);
    for (int i = 0; i < N; i++)
        expect_close("bce logits grad vs chain rule", i, gz[i], (double)gp[i] * p[i] * (1.0 - p[i]),
                     1e-5, 1e-8);
}

/* Saturated logits: ℓ(z, x) = max(z, 0) − z·x + log(1 + e^−|z|), so for z = ±100
 *     ℓ(100, 1) = e^−100 ≈ 0,  ℓ(100, 0) = 100,  ℓ(−100, 1) = 100,  ℓ(−100, 0) ≈ 0,
 *     ℓ(±100, 0.5) = 50;  mean = 300/6 = 50;  ∂ℓ/∂z = σ(z) − x ∈ {0, 1, −1, 0, ±0.5}. */
static void test_loss_bce_logits_saturated(void **state)
{
    const float z[6] = {100, 100, -100, -100, 100, -100}, x[6] = {1, 0, 1, 0, 0.5f, 0.5f};
    const double dz[6] = {0, 1, -1, 0, 0.5, -0.5};
    float g[6];
    double l = loss_forward(ANAMO_LOSS_BCE, z, x, g, 1, 6, 1);
    assert_true(isfinite(l));
    expect_close("bce logits ±100", 0, l, 50.0, 1e-12, 0);
    for (int i = 0; i < 6; i++) {
        assert_true(isfinite(g[i]));
        expect_close("bce logits ±100 grad", i, g[i], dz[i] / 6, 1e-6, 1e-12);
    }
}

/* ---- the code ℓ1 penalty ----------------------------------------------------------------- */

/* h = [[0.5, −0.25, 0], [2, −1, 0]], B = 2: (1/B)Σ‖h_b‖₁ = (0.75 + 3)/2 = 1.875; with λ = 0.3
 * the added sub-gradient is λ·sign(h)/B = 0.15·[[1, −1, 0], [1, −1, 0]] (sign 0 = 0). */
static void test_code_l1(void **state)
{
    const float h[6] = {0.5f, -0.25f, 0.0f, 2.0f, -1.0f, 0.0f};
    const float sign[6] = {1, -1, 0, 1, -1, 0};
    float dh[6];
    for (int i = 0; i < 6; i++)
        dh[i] = 0.1f * (float)(i + 1); /* it adds to what is there */
    expect_close("l1", 0, code_l1_forward(h, dh, 2, 3, 0.3f), 1.875, 1e-12, 0);
    for (int i = 0; i < 6; i++)
        expect_close("l1 dh", i, dh[i], 0.1 * (i + 1) + 0.15 * sign[i], 1e-6, 0);
    assert_true(dh[2] == 0.3f && dh[5] == 0.6f); /* sign(0) = 0: untouched */
    expect_close("l1 without dh", 0, code_l1_forward(h, NULL, 2, 3, 0.3f), 1.875, 1e-12, 0);
}

/* ---- the autoencoder objective of one joint train_step ----------------------------------- */

enum { AE_D = 6, AE_M = 4, AE_B = 3, AE_N = 5 };
#define AE_LAMBDA 0.2f
#define AE_LR 0.5f
/* Codes must stay further from 0 (ℓ1's kink) than a perturbation can move them: one weight or
 * bias moved by h moves a tanh code by at most h·max|x| ≤ h. */
#define AE_CODE_MARGIN (10.0f * FD_H)

typedef struct ae_ctx {
    anamo_model *m;
    const float *x; /* (B, D) the batch */
    anamo_loss_kind loss;
} ae_ctx;

/* f(θ, φ) = loss(D_φ(E_θ(x)), x) + λ·(1/B)Σ‖E_θ(x)‖₁, written out in double from the float
 * forward; the loss is the textbook formula on the sigmoid output, not loss_forward. */
static double ae_objective(void *p)
{
    ae_ctx *c = p;
    const float *h = block_forward(&c->m->enc, c->x, AE_B);
    const float *xhat = block_forward(&c->m->dec, h, AE_B);
    double recon = 0.0, l1 = 0.0;
    for (int i = 0; i < AE_B * AE_D; i++) {
        const double y = xhat[i], t = c->x[i];
        recon += c->loss == ANAMO_LOSS_BCE ? -(t * log(y) + (1 - t) * log(1 - y))
                                           : (y - t) * (y - t);
    }
    recon /= c->loss == ANAMO_LOSS_MSE_SUM ? AE_B : AE_B * AE_D;
    for (int i = 0; i < AE_B * AE_M; i++)
        l1 += fabs((double)h[i]);
    return recon + (double)AE_LAMBDA * l1 / AE_B;
}

static void check_joint_step(anamo_loss_kind loss)
{
    anamo_model_spec ms = {.in_c = AE_D,
                           .in_h = 1,
                           .in_w = 1,
                           .encoder = "linear 4, tanh",
                           .decoder = "linear 6, sigmoid",
                           .init = ANAMO_INIT_PYTORCH,
                           .seed = 11,
                           .max_batch = AE_B};
    anamo_model *m;
    anamo_err err = {0};
    assert_int_equal(anamo_model_create(&ms, &m, &err), ANAMO_OK);
    assert_int_equal(m->enc.out_dim, AE_M);

    float data[AE_N * AE_D];
    anamo_rng rng;
    anamo_rng_seed(&rng, 600);
    fill_uniform(&rng, data, AE_N * AE_D, 0.05f, 0.95f);
    anamo_dataset ds = {
        .n = AE_N, .c = AE_D, .h = 1, .w = 1, .dim = AE_D, .dtype = ANAMO_F32, .data = data};
    snprintf(ds.source, sizeof ds.source, "test_grad");
    anamo_train_spec ts = {.loss = loss, .lambda = AE_LAMBDA, .nphases = 1, .epochs = 1};
    ts.phases[0] = anamo_phase_default("joint", ANAMO_PHASE_JOINT, ANAMO_OPT_SGD, AE_LR, AE_B, 1.0);
    anamo_trainer *t;
    assert_int_equal(anamo_trainer_create(m, &ts, &ds, NULL, &t, &err), ANAMO_OK);
    assert_int_equal(t->from_logits, loss == ANAMO_LOSS_BCE); /* BCE reads the logits */

    /* one SGD step on a gathered batch; the grads it leaves are those of θ₀ */
    const int64_t idx[AE_B] = {3, 0, 4};
    float *enc0 = copy_of(m->enc.params, m->enc.nparams);
    float *dec0 = copy_of(m->dec.params, m->dec.nparams);
    step_losses sl;
    assert_int_equal(train_enter_phase(t, 0, &err), ANAMO_OK);
    assert_int_equal(train_step(t, 0, idx, AE_B, &sl, &err), ANAMO_OK);
    float *genc = copy_of(m->enc.grads, m->enc.nparams);
    float *gdec = copy_of(m->dec.grads, m->dec.nparams);
    /* the step used these grads: θ₁ = θ₀ − lr·g, to float rounding (|θ| < 1, ulp ≤ 6e-8) */
    for (int64_t i = 0; i < m->enc.nparams; i++)
        expect_close("encoder step", i, m->enc.params[i], enc0[i] - AE_LR * genc[i], 0, 1e-7);
    for (int64_t i = 0; i < m->dec.nparams; i++)
        expect_close("decoder step", i, m->dec.params[i], dec0[i] - AE_LR * gdec[i], 0, 1e-7);

    /* back to θ₀ and the same batch, for the finite differences */
    memcpy(m->enc.params, enc0, (size_t)m->enc.nparams * sizeof(float));
    memcpy(m->dec.params, dec0, (size_t)m->dec.nparams * sizeof(float));
    float x[AE_B * AE_D];
    for (int b = 0; b < AE_B; b++)
        memcpy(x + b * AE_D, data + idx[b] * AE_D, AE_D * sizeof(float));
    ae_ctx c = {m, x, loss};
    const double f0 = ae_objective(&c);
    expect_close("train_step loss", 0, sl.loss, f0, 1e-5, 0);
    const float *h = block_forward(&m->enc, x, AE_B);
    for (int i = 0; i < AE_B * AE_M; i++)
        if (fabsf(h[i]) < AE_CODE_MARGIN)
            fail_msg("code %d = %g is within %g of ℓ1's kink: pick another seed", i, (double)h[i],
                     (double)AE_CODE_MARGIN);

    char what[64];
    snprintf(what, sizeof what, "joint %s encoder grads", loss_name(loss));
    check_grad(what, m->enc.params, genc, m->enc.nparams, ae_objective, &c, LOSS_ATOL);
    snprintf(what, sizeof what, "joint %s decoder grads", loss_name(loss));
    check_grad(what, m->dec.params, gdec, m->dec.nparams, ae_objective, &c, LOSS_ATOL);

    free(enc0), free(dec0), free(genc), free(gdec);
    anamo_trainer_free(t);
    anamo_model_free(m);
}

static void test_joint_step_mse(void **state) { check_joint_step(ANAMO_LOSS_MSE); }
static void test_joint_step_mse_sum(void **state) { check_joint_step(ANAMO_LOSS_MSE_SUM); }
static void test_joint_step_bce(void **state) { check_joint_step(ANAMO_LOSS_BCE); }

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_act_identity),
        cmocka_unit_test(test_act_relu),
        cmocka_unit_test(test_act_sigmoid),
        cmocka_unit_test(test_act_tanh),
        cmocka_unit_test(test_act_step),
        cmocka_unit_test(test_act_smoothstep_half),
        cmocka_unit_test(test_act_smoothstep_two),
        cmocka_unit_test(test_act_values),
        cmocka_unit_test(test_linear_b1),
        cmocka_unit_test(test_linear_b3),
        cmocka_unit_test(test_linear_forward_hand),
        cmocka_unit_test(test_linear_bias_grad_wide),
        cmocka_unit_test(test_block_backward),
        cmocka_unit_test(test_block_backward_wide),
        cmocka_unit_test(test_block_threads_decoder),
        cmocka_unit_test(test_block_threads_encoder),
        cmocka_unit_test(test_block_threads_two_runs),
        cmocka_unit_test(test_loss_mse_fd),
        cmocka_unit_test(test_loss_mse_sum_fd),
        cmocka_unit_test(test_loss_bce_fd),
        cmocka_unit_test(test_loss_bce_logits_fd),
        cmocka_unit_test(test_loss_wide),
        cmocka_unit_test(test_loss_hand_case),
        cmocka_unit_test(test_loss_bce_logits_matches_probabilities),
        cmocka_unit_test(test_loss_bce_logits_saturated),
        cmocka_unit_test(test_code_l1),
        cmocka_unit_test(test_joint_step_mse),
        cmocka_unit_test(test_joint_step_mse_sum),
        cmocka_unit_test(test_joint_step_bce),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
