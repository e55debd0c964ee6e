/* test_optim_family.c — the optimizer family beyond SGD and Adam (test_optim.c), each against
 * an independent truth:
 *   momentum, nesterov, accelerated, AdaGrad, RMSProp  first steps on f(θ) = ½ Σ a_i θ_i² by
 *       hand (the arithmetic is in the comments), and several steps against the torch.optim
 *       documentation formulas (SGD with momentum, Adagrad, RMSprop) evaluated in double here
 *       (tests/test_optim_torch.c replays trajectories recorded from torch.optim itself);
 *   FISTA + L1 on a LASSO instance        against cyclic coordinate descent in double, and the
 *       O(1/k²) bound of Beck & Teboulle (2009), Theorem 4.4;
 *   adaptive restart                       on a quadratic with condition number 1e4;
 *   backtracking                           the sufficient-decrease condition recomputed here;
 *   prox operators, schedules (torch StepLR and ReduceLROnPlateau), sizes, names, dispatch.
 *
 * Tolerances (each test says which it uses):
 *   THETA_TOL 1e-6 — the optimizers run in float32; parameters are O(1), where the float spacing
 *       is ≤ 1.2e-7, and a step rounds a handful of times, so a few steps are right to ≲ 5e-7.
 *       The mistakes looked for (ε inside the root, a missing (1 − α), decay left out, a wrong
 *       momentum coefficient) move a parameter by ≥ 1e-3.
 *   LASSO_TOL 1e-5 — FISTA's iterate and gradient are float32 (relative spacing 6e-8), so it
 *       settles at a float fixed point: the rounding of one step (≲ 1e-7 on |x| < 1) divided
 *       by the contraction of the iteration on the support (λ_min/L = 6.9/50.5 here), about
 *       1e-6 at worst; we see 5e-8. Coordinate descent is double and converged to 1e-12, so
 *       the difference is FISTA's float error alone; a wrong threshold (τ = λ instead of
 *       lr·λ) moves x by > 1e-2. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "test_util.h"

#include "anamo.h"
#include "optim/optim.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define THETA_TOL 1e-6
#define LASSO_TOL 1e-5

/* ---- 1. first steps on f(θ) = ½ Σ a_i θ_i², a = [1, 10], θ0 = [1, 1] ------------------------
 * ∇f(θ) = a ⊙ θ = [θ_0, 10 θ_1]. */

static const float QA[2] = {1.0f, 10.0f};

static void quad_grad(const float *a, const float *theta, float *g, int n)
{
    for (int i = 0; i < n; i++)
        g[i] = a[i] * theta[i];
}

/* Momentum (torch.optim.SGD(momentum=0.9), the heavy ball), lr = 0.05, written as the heavy
 * ball w_{t+1} = w_t − lr·∇ + β(w_t − w_{t−1}), w_{−1} = w_0, which it is at a constant lr:
 *   a = 1:  w1 = 1 − 0.05·1                                = 0.95
 *           w2 = 0.95 − 0.05·0.95 + 0.9·(0.95 − 1)          = 0.95 − 0.0475 − 0.045  = 0.8575
 *           w3 = 0.8575 − 0.05·0.8575 + 0.9·(0.8575 − 0.95) = 0.8575 − 0.042875 − 0.08325
 *                                                           = 0.731375
 *   a = 10: w1 = 1 − 0.05·10                                = 0.5
 *           w2 = 0.5 − 0.05·5 + 0.9·(0.5 − 1)               = 0.25 − 0.45   = −0.2
 *           w3 = −0.2 − 0.05·(−2) + 0.9·(−0.2 − 0.5)        = −0.1 − 0.63   = −0.73
 * The state is the velocity b_t = (w_t − w_{t+1})/lr: b1 = ∇(w0) = [1, 10],
 * b2 = 0.9·b1 + ∇(w1) = [0.9 + 0.95, 9 + 5] = [1.85, 14], b3 = 0.9·b2 + ∇(w2)
 * = [1.665 + 0.8575, 12.6 − 2] = [2.5225, 10.6]. It starts as NaN: t = 1 must not read it. */
static void test_momentum_hand(void **state)
{
    const optim_cfg cfg = optim_defaults(OPTIM_MOMENTUM, 0.05f);
    assert_true(cfg.momentum == 0.9f);
    const double want[3][2] = {{0.95, 0.5}, {0.8575, -0.2}, {0.731375, -0.73}};
    const double want_b[3][2] = {{1.0, 10.0}, {1.85, 14.0}, {2.5225, 10.6}};
    float w[2] = {1.0f, 1.0f}, buf[2] = {NAN, NAN}, g[2];
    for (int t = 1; t <= 3; t++) {
        quad_grad(QA, w, g, 2);
        optim_momentum_step(&cfg, w, g, buf, 2, t);
        for (int i = 0; i < 2; i++) {
            expect_close("momentum", i, w[i], want[t - 1][i], 0, THETA_TOL);
            expect_close("momentum b", i, buf[i], want_b[t - 1][i], THETA_TOL, THETA_TOL);
        }
    }
}

/* Nesterov (torch.optim.SGD(momentum=0.9, nesterov=True)), lr = 0.05:
 *     b_t = β·b_{t−1} + g (b_1 = g),   w_{t+1} = w_t − lr·(g + β·b_t)
 *   a = 1:  g = 1,         b = 1,                         w1 = 1 − 0.05·1.9       = 0.905
 *           g = 0.905,     b = 0.9 + 0.905    = 1.805,    w2 = 0.905 − 0.05·(0.905 + 1.6245)
 *                                                             = 0.905 − 0.126475 = 0.778525
 *           g = 0.778525,  b = 1.6245 + 0.778525 = 2.403025,
 *                          w3 = 0.778525 − 0.05·(0.778525 + 2.1627225)  = 0.631462625
 *   a = 10: g = 10,        b = 10,                        w1 = 1 − 0.05·19        = 0.05
 *           g = 0.5,       b = 9 + 0.5        = 9.5,      w2 = 0.05 − 0.05·(0.5 + 8.55)
 *                                                             = −0.4025
 *           g = −4.025,    b = 8.55 − 4.025   = 4.525,    w3 = −0.4025 − 0.05·(−4.025 + 4.0725)
 *                                                             = −0.404875
 * (torch's own values, in double: the same.) The state starts as NaN. THETA_TOL. */
static void test_nesterov_hand(void **state)
{
    const optim_cfg cfg = optim_defaults(OPTIM_NESTEROV, 0.05f);
    const double want[3][2] = {{0.905, 0.05}, {0.778525, -0.4025}, {0.631462625, -0.404875}};
    const double want_b[3][2] = {{1.0, 10.0}, {1.805, 9.5}, {2.403025, 4.525}};
    float w[2] = {1.0f, 1.0f}, buf[2] = {NAN, NAN}, g[2];
    for (int t = 1; t <= 3; t++) {
        quad_grad(QA, w, g, 2);
        optim_step(&cfg, w, g, buf, 2, t);
        for (int i = 0; i < 2; i++) {
            expect_close("nesterov", i, w[i], want[t - 1][i], 0, THETA_TOL);
            expect_close("nesterov b", i, buf[i], want_b[t - 1][i], THETA_TOL, THETA_TOL);
        }
    }
}

/* Under a learning rate that changes, momentum is torch's (the velocity keeps no old lr): two
 * steps at lr 0.1, then lr 0.01, a = 1, w0 = 1:
 *   b1 = 1, w1 = 0.9;  b2 = 0.9 + 0.9 = 1.8, w2 = 0.9 − 0.18 = 0.72;
 *   b3 = 1.62 + 0.72 = 2.34, w3 = 0.72 − 0.01·2.34 = 0.6966
 * where the seeds' heavy ball would take w3 = w2 − 0.01·0.72 + 0.9·(w2 − w1) = 0.5508. And a
 * coordinate whose state optim_reset_coords restarts steps as from rest: b = g. */
static void test_momentum_lr_change_and_reset(void **state)
{
    optim_cfg cfg = optim_defaults(OPTIM_MOMENTUM, 0.1f);
    float w[2] = {1.0f, 1.0f}, buf[2], g[2];
    const float a[2] = {1.0f, 1.0f};
    for (int t = 1; t <= 3; t++) {
        cfg.lr = t < 3 ? 0.1f : 0.01f;
        if (t == 3) { /* coordinate 1 restarts: b = 0, so b3 = ∇ = w2, w3 = 0.72·(1 − 0.01) */
            const int64_t coord = 1;
            optim_reset_coords(OPTIM_MOMENTUM, w, buf, 2, &coord, 1);
            assert_true(buf[1] == 0.0f && buf[0] != 0.0f);
        }
        quad_grad(a, w, g, 2);
        optim_momentum_step(&cfg, w, g, buf, 2, t);
    }
    expect_close("momentum after an lr change", 0, w[0], 0.6966, 0, THETA_TOL);
    expect_close("momentum after a reset", 1, w[1], 0.7128, 0, THETA_TOL);
    const int64_t coord = 0;
    buf[0] = 3.0f;
    optim_reset_coords(OPTIM_NESTEROV, w, buf, 2, &coord, 1);
    assert_true(buf[0] == 0.0f);
}

/* torch.optim.SGD with momentum μ, dampening 0, nesterov False (its documented algorithm):
 *     g ← ∇ + λθ;  b ← g at t = 1, else μ·b + g;  θ ← θ − lr·b
 * Six steps in double, weight decay off and on, against the float momentum; THETA_TOL. */
static void test_momentum_vs_torch_sgd(void **state)
{
    const float a[3] = {1.0f, 10.0f, 0.25f};
    for (int wd_on = 0; wd_on <= 1; wd_on++) {
        optim_cfg cfg = optim_defaults(OPTIM_MOMENTUM, 0.03f);
        cfg.weight_decay = wd_on ? 0.2f : 0.0f;
        float w[3] = {1.0f, -0.5f, 2.0f}, buf[3], g[3];
        double th[3] = {1.0, -0.5, 2.0}, b[3] = {0, 0, 0};
        for (int t = 1; t <= 6; t++) {
            quad_grad(a, w, g, 3);
            optim_momentum_step(&cfg, w, g, buf, 3, t);
            for (int i = 0; i < 3; i++) {
                double gr = (double)a[i] * th[i] + (double)cfg.weight_decay * th[i];
                b[i] = t == 1 ? gr : (double)cfg.momentum * b[i] + gr;
                th[i] -= (double)cfg.lr * b[i];
                expect_close(wd_on ? "momentum vs torch (wd)" : "momentum vs torch", i, w[i], th[i],
                             0, THETA_TOL);
            }
        }
    }
}

/* accelerated = FISTA without a prox, lr = 0.05. The momentum sequence:
 *   s_0 = 1,  s_1 = (1 + √5)/2 = 1.6180340,
 *   s_2 = (1 + √(1 + 4·2.6180340))/2 = (1 + √11.472136)/2 = (1 + 3.3870542)/2 = 2.1935271,
 *   s_3 = (1 + √(1 + 4 s_2²))/2 = 2.7497913
 * and the extrapolation coefficients β_j = (s_j − 1)/s_{j+1}:
 *   β_0 = 0 (step 1 is a plain gradient step), β_1 = 0.6180340/2.1935271 = 0.2817535,
 *   β_2 = 1.1935271/2.7497913 = 0.4340428.
 *   a = 1:  x1 = 1 − 0.05                = 0.95,     y1 = x1
 *           x2 = 0.95·(1 − 0.05)         = 0.9025,   y2 = 0.9025 + 0.2817535·(−0.0475)
 *                                                       = 0.8891167
 *           x3 = 0.8891167·0.95          = 0.8446609, y3 = 0.8446609 + 0.4340428·(−0.0578391)
 *                                                       = 0.8195562
 *   a = 10: x1 = 1 − 0.5                 = 0.5,      y1 = x1
 *           x2 = 0.5·(1 − 0.5)           = 0.25,     y2 = 0.25 + 0.2817535·(−0.25) = 0.1795616
 *           x3 = 0.1795616·0.5           = 0.0897808, y3 = 0.0897808 + 0.4340428·(−0.1602192)
 *                                                        = 0.0202388
 * Parameters hold y_j, the state x_j then s_j; the state starts as NaN (t = 1 must set it).
 * THETA_TOL; s to 1e-6 relative (it is stored as a float). With gradient restart the first step
 * is the same: x_0 = y_0 makes (y_0 − x_1)·(x_1 − x_0) = −‖y_0 − x_1‖² ≤ 0, no restart. */
static void test_accelerated_hand(void **state)
{
    const double s1 = (1.0 + sqrt(5.0)) / 2.0;
    expect_close("s_1", 0, accel_next_s(1.0), s1, 1e-15, 0);
    expect_close("s_2", 0, accel_next_s(s1), 2.1935271, 0, 1e-7);

    const optim_cfg cfg = optim_defaults(OPTIM_ACCELERATED, 0.05f);
    assert_int_equal(cfg.restart, RESTART_NONE);
    const double want_x[3][2] = {{0.95, 0.5}, {0.9025, 0.25}, {0.8446609, 0.0897808}};
    const double want_y[3][2] = {{0.95, 0.5}, {0.8891167, 0.1795616}, {0.8195562, 0.0202388}};
    const double want_s[3] = {s1, 2.1935271, 2.7497913};
    float y[2] = {1.0f, 1.0f}, st[5] = {NAN, NAN, NAN, NAN, NAN}, g[2], x_prev[2] = {1.0f, 1.0f};
    for (int t = 1; t <= 3; t++) {
        quad_grad(QA, y, g, 2);
        optim_fista_step(&cfg, y, g, st, 2, t);
        for (int i = 0; i < 2; i++) {
            expect_close("accelerated x", i, st[i], want_x[t - 1][i], 0, THETA_TOL);
            expect_close("accelerated y", i, y[i], want_y[t - 1][i], 0, THETA_TOL);
        }
        expect_close("accelerated s", t, ACCEL_S(st, 2), want_s[t - 1], 1e-6, 0);
        /* y_t − x_t = β_{t−1}·(x_t − x_{t−1}) with β_0 = 0 exactly at the first step */
        if (t == 1)
            assert_memory_equal(y, st, sizeof y);
        if (t == 2)
            for (int i = 0; i < 2; i++)
                expect_close("accelerated β_1", i, (y[i] - st[i]) / (st[i] - x_prev[i]),
                             (s1 - 1.0) / 2.1935271, 1e-5, 0);
        memcpy(x_prev, st, sizeof x_prev);
    }

    optim_cfg rcfg = cfg;
    rcfg.restart = RESTART_GRADIENT;
    float ry[2] = {1.0f, 1.0f},
          rst[5] = {-7.0f, -7.0f, -7.0f, -7.0f, -7.0f}; /* a stale x would restart */
    quad_grad(QA, ry, g, 2);
    optim_fista_step(&rcfg, ry, g, rst, 2, 1);
    expect_close("accelerated s_1 with gradient restart", 0, ACCEL_S(rst, 2), s1, 1e-6, 0);
}

/* Weight decay λ is L2 added to the gradient (PyTorch's weight_decay), so a run on f with
 * decay λ is a run on f + ½λ‖θ‖², i.e. on a + λ, without it. Momentum, nesterov, accelerated
 * and FISTA
 * with an L1 prox, 6 steps with λ = 0.5 against the gradient (a + λ)·θ computed here. THETA_TOL
 * (the two differ only in float rounding: g + λθ against (a + λ)θ). */
static void test_weight_decay_is_l2(void **state)
{
    const optim_kind kinds[4] = {OPTIM_MOMENTUM, OPTIM_NESTEROV, OPTIM_ACCELERATED, OPTIM_FISTA};
    const float wd = 0.5f, a_wd[2] = {QA[0] + wd, QA[1] + wd};
    for (int k = 0; k < 4; k++) {
        optim_cfg with = optim_defaults(kinds[k], 0.05f), without;
        with.prox = PROX_L1;
        with.prox_lambda = 0.1f;
        without = with;
        with.weight_decay = wd;
        float p[2] = {1.0f, -0.8f}, q[2] = {1.0f, -0.8f}, sp[5], sq[5], g[2];
        for (int t = 1; t <= 6; t++) {
            quad_grad(QA, p, g, 2);
            optim_step(&with, p, g, sp, 2, t);
            quad_grad(a_wd, q, g, 2);
            optim_step(&without, q, g, sq, 2, t);
            for (int i = 0; i < 2; i++)
                expect_close(optim_name(kinds[k]), t * 10 + i, p[i], q[i], 0, THETA_TOL);
        }
    }
}

/* AdaGrad, lr = 0.1, ε = 1e-10. AdaGrad divides by the root of the summed squared gradients,
 * so scaling a coordinate's gradient by 10 changes nothing (up to ε): both coordinates follow
 *   step 1: g = 1 (or 10),  sum = g²,  θ = 1 − 0.1·g/|g|                       = 0.9
 *   step 2: g = 0.9,  sum = 1 + 0.81 = 1.81,  √sum = 1.3453624
 *           θ = 0.9 − 0.1·0.9/1.3453624 = 0.9 − 0.0668965                       = 0.8331035
 *   step 3: g = 0.8331035, g² = 0.6940615, sum = 2.5040615, √sum = 1.5824227
 *           θ = 0.8331035 − 0.1·0.8331035/1.5824227 = 0.8331035 − 0.0526473     = 0.7804562
 * (for a = 10 every g and √sum is 10 times larger). */
static void test_adagrad_hand(void **state)
{
    const optim_cfg cfg = optim_defaults(OPTIM_ADAGRAD, 0.1f);
    assert_true(cfg.eps == 1e-10f);
    const double want[3] = {0.9, 0.8331035, 0.7804562};
    float th[2] = {1.0f, 1.0f}, sum[2] = {0, 0}, g[2];
    for (int t = 1; t <= 3; t++) {
        quad_grad(QA, th, g, 2);
        optim_adagrad_step(&cfg, th, g, sum, 2);
        for (int i = 0; i < 2; i++)
            expect_close("adagrad", i, th[i], want[t - 1], 0, THETA_TOL);
    }
    expect_close("adagrad sum", 0, sum[0], 2.5040615, 1e-6, 0);
    expect_close("adagrad sum", 1, sum[1], 250.40615, 1e-6, 0);
}

/* RMSProp, lr = 0.01, α = 0.99, ε = 1e-8 (invariant to gradient scale like AdaGrad):
 *   step 1: v = 0.01·g²,  θ = 1 − 0.01·g/(0.1·|g|)                             = 0.9
 *   step 2: g = 0.9,  v = 0.99·0.01 + 0.01·0.81 = 0.0099 + 0.0081 = 0.018, √v = 0.1341641
 *           θ = 0.9 − 0.01·0.9/0.1341641 = 0.9 − 0.0670820                      = 0.8329180
 *   step 3: g = 0.8329180, g² = 0.6937523, v = 0.99·0.018 + 0.01·0.6937523 = 0.0247575,
 *           √v = 0.1573452, θ = 0.8329180 − 0.01·0.8329180/0.1573452
 *             = 0.8329180 − 0.0529357                                           = 0.7799823 */
static void test_rmsprop_hand(void **state)
{
    const optim_cfg cfg = optim_defaults(OPTIM_RMSPROP, 0.01f);
    assert_true(cfg.alpha == 0.99f && cfg.eps == 1e-8f);
    const double want[3] = {0.9, 0.8329180, 0.7799823};
    float th[2] = {1.0f, 1.0f}, v[2] = {0, 0}, g[2];
    for (int t = 1; t <= 3; t++) {
        quad_grad(QA, th, g, 2);
        optim_rmsprop_step(&cfg, th, g, v, 2);
        for (int i = 0; i < 2; i++)
            expect_close("rmsprop", i, th[i], want[t - 1], 0, THETA_TOL);
    }
    expect_close("rmsprop v", 0, v[0], 0.0247575, 1e-5, 0);
    expect_close("rmsprop v", 1, v[1], 2.47575, 1e-5, 0);
}

/* The torch.optim documentation formulas, in double, one coordinate at a time:
 *   Adagrad (lr_decay 0, initial_accumulator_value 0):
 *       g ← g + λθ;  sum ← sum + g²;             θ ← θ − lr·g/(√sum + ε)
 *   RMSprop (momentum 0, centered False):
 *       g ← g + λθ;  v ← α v + (1 − α) g²;       θ ← θ − lr·g/(√v + ε) */
static void adagrad_reference(const optim_cfg *c, double *theta, double g, double *sum)
{
    g += (double)c->weight_decay * *theta;
    *sum += g * g;
    *theta -= (double)c->lr * g / (sqrt(*sum) + (double)c->eps);
}

static void rmsprop_reference(const optim_cfg *c, double *theta, double g, double *v)
{
    g += (double)c->weight_decay * *theta;
    *v = (double)c->alpha * *v + (1.0 - (double)c->alpha) * g * g;
    *theta -= (double)c->lr * g / (sqrt(*v) + (double)c->eps);
}

/* Eight steps on a 3-coordinate quadratic, each trajectory taking its own gradient a ⊙ θ, with
 * weight decay off and on, and at the PyTorch defaults and at a large ε = 0.05 (so ε inside
 * the root, or added to v, shows). THETA_TOL on θ; the accumulators to 1e-5 relative (they
 * sum squares of float gradients that carry the trajectories' ≤ 1e-6 differences). */
static void test_adagrad_rmsprop_vs_torch(void **state)
{
    const float a[3] = {1.0f, 10.0f, 0.25f};
    for (int kind = OPTIM_ADAGRAD; kind <= OPTIM_RMSPROP; kind++)
        for (int variant = 0; variant < 4; variant++) {
            optim_cfg cfg = optim_defaults((optim_kind)kind, kind == OPTIM_ADAGRAD ? 0.1f : 0.01f);
            cfg.weight_decay = (variant & 1) ? 0.3f : 0.0f;
            if (variant & 2)
                cfg.eps = 0.05f, cfg.alpha = 0.9f;
            float th[3] = {1.0f, -0.5f, 2.0f}, acc[3] = {0, 0, 0}, g[3];
            double thr[3] = {1.0, -0.5, 2.0}, accr[3] = {0, 0, 0};
            for (int t = 1; t <= 8; t++) {
                quad_grad(a, th, g, 3);
                optim_step(&cfg, th, g, acc, 3, t);
                for (int i = 0; i < 3; i++) {
                    const double gr = (double)a[i] * thr[i];
                    if (kind == OPTIM_ADAGRAD)
                        adagrad_reference(&cfg, &thr[i], gr, &accr[i]);
                    else
                        rmsprop_reference(&cfg, &thr[i], gr, &accr[i]);
                    expect_close(optim_name((optim_kind)kind), variant * 100 + t * 10 + i, th[i],
                                 thr[i], 0, THETA_TOL);
                    expect_close("accumulator", variant * 100 + t * 10 + i, acc[i], accr[i], 1e-5,
                                 0);
                }
            }
        }
}

/* ---- 2. FISTA + L1 on a LASSO instance -----------------------------------------------------
 * min F(x) = ½‖Ax − b‖² + μ‖x‖₁, A (M, K) and b (M) standard normal from a fixed seed. */

enum { LM = 20, LK = 10 };

typedef struct lasso {
    double A[LM][LK], b[LM], mu, L;
} lasso;

static double lasso_smooth(const lasso *p, const double *x)
{
    double f = 0.0;
    for (int r = 0; r < LM; r++) {
        double res = -p->b[r];
        for (int k = 0; k < LK; k++)
            res += p->A[r][k] * x[k];
        f += 0.5 * res * res;
    }
    return f;
}

static double lasso_objective(const lasso *p, const double *x)
{
    double l1 = 0.0;
    for (int k = 0; k < LK; k++)
        l1 += fabs(x[k]);
    return lasso_smooth(p, x) + p->mu * l1;
}

static double lasso_objective_f(const lasso *p, const float *x)
{
    double xd[LK];
    for (int k = 0; k < LK; k++)
        xd[k] = x[k];
    return lasso_objective(p, xd);
}

/* ∇(½‖Ax − b‖²) = Aᵀ(Ax − b), in double */
static void lasso_grad(const lasso *p, const double *x, double *g)
{
    double res[LM];
    for (int r = 0; r < LM; r++) {
        res[r] = -p->b[r];
        for (int k = 0; k < LK; k++)
            res[r] += p->A[r][k] * x[k];
    }
    for (int k = 0; k < LK; k++) {
        g[k] = 0.0;
        for (int r = 0; r < LM; r++)
            g[k] += p->A[r][k] * res[r];
    }
}

/* Largest eigenvalue of AᵀA (A is rows × cols, row stride `stride`) by power iteration, in
 * double: v ← AᵀA v/‖AᵀA v‖ until the Rayleigh quotient settles to 1e-15 relative. */
static double power_iteration(const double *A, int rows, int cols, int stride)
{
    double v[64], w[64], av[256], lambda = 0.0;
    assert_true(cols <= 64 && rows <= 256);
    for (int k = 0; k < cols; k++)
        v[k] = 1.0 / sqrt((double)cols) * (1.0 + 0.01 * k);
    for (int it = 0; it < 10000; it++) {
        for (int r = 0; r < rows; r++) {
            av[r] = 0.0;
            for (int k = 0; k < cols; k++)
                av[r] += A[r * stride + k] * v[k];
        }
        double norm = 0.0, rq = 0.0;
        for (int k = 0; k < cols; k++) {
            w[k] = 0.0;
            for (int r = 0; r < rows; r++)
                w[k] += A[r * stride + k] * av[r];
            rq += v[k] * w[k];
            norm += w[k] * w[k];
        }
        norm = sqrt(norm);
        for (int k = 0; k < cols; k++)
            v[k] = w[k] / norm;
        if (fabs(rq - lambda) <= 1e-15 * rq)
            return rq;
        lambda = rq;
    }
    return lambda;
}

/* Cyclic coordinate descent in double (Friedman et al. 2007): for each k,
 *     x_k ← S(A_kᵀ(b − Ax + A_k x_k), μ)/‖A_k‖²,   S(z, μ) = sign(z)·max(|z| − μ, 0),
 * sweeping until no coordinate moves by more than 1e-12. */
static void lasso_coordinate_descent(const lasso *p, double *x)
{
    double col_sq[LK], res[LM]; /* res = b − Ax */
    for (int k = 0; k < LK; k++) {
        x[k] = 0.0;
        col_sq[k] = 0.0;
        for (int r = 0; r < LM; r++)
            col_sq[k] += p->A[r][k] * p->A[r][k];
    }
    memcpy(res, p->b, sizeof res);
    for (int sweep = 0; sweep < 100000; sweep++) {
        double moved = 0.0;
        for (int k = 0; k < LK; k++) {
            double z = 0.0;
            for (int r = 0; r < LM; r++)
                z += p->A[r][k] * (res[r] + p->A[r][k] * x[k]);
            const double mag = fabs(z) - p->mu;
            const double xk = mag > 0.0 ? copysign(mag, z) / col_sq[k] : 0.0;
            for (int r = 0; r < LM; r++)
                res[r] -= p->A[r][k] * (xk - x[k]);
            moved = fmax(moved, fabs(xk - x[k]));
            x[k] = xk;
        }
        if (moved < 1e-12)
            return;
    }
    fail_msg("coordinate descent did not converge");
}

static void lasso_make(lasso *p, uint64_t seed)
{
    anamo_rng rng;
    anamo_rng_seed(&rng, seed);
    for (int r = 0; r < LM; r++)
        for (int k = 0; k < LK; k++)
            p->A[r][k] = anamo_rng_normal(&rng);
    for (int r = 0; r < LM; r++)
        p->b[r] = anamo_rng_normal(&rng);
    /* ‖Aᵀb‖∞ is the smallest μ for which x* = 0; a third of it leaves a few coordinates at 0 */
    double mu_max = 0.0;
    for (int k = 0; k < LK; k++) {
        double c = 0.0;
        for (int r = 0; r < LM; r++)
            c += p->A[r][k] * p->b[r];
        mu_max = fmax(mu_max, fabs(c));
    }
    p->mu = mu_max / 3.0;
    p->L = power_iteration(&p->A[0][0], LM, LK, LK);
}

/* One FISTA step with the gradient of the smooth part computed here (double, rounded). */
static void lasso_fista_step(const lasso *p, const optim_cfg *cfg, float *y, float *st, int t)
{
    double yd[LK], gd[LK];
    float g[LK];
    for (int k = 0; k < LK; k++)
        yd[k] = y[k];
    lasso_grad(p, yd, gd);
    for (int k = 0; k < LK; k++)
        g[k] = (float)gd[k];
    optim_step(cfg, y, g, st, LK, t);
}

/* FISTA (lr = 1/L, prox_lambda = μ) for 3000 steps against coordinate descent: LASSO_TOL on x,
 * and the coordinates that are 0 at the solution are exactly 0 in FISTA's iterate (the soft
 * threshold returns 0, and they sit well inside the threshold: |∇_k f(x*)| ≤ μ − 0.05μ). */
static void test_fista_lasso(void **state)
{
    lasso p;
    lasso_make(&p, 20240611);
    double x_star[LK], g_star[LK];
    lasso_coordinate_descent(&p, x_star);
    /* the truth is a solution: KKT, ∇_k f = −μ·sign(x_k) on the support, |∇_k f| ≤ μ off it */
    lasso_grad(&p, x_star, g_star);
    int zeros = 0;
    for (int k = 0; k < LK; k++) {
        if (x_star[k] == 0.0) {
            zeros++;
            assert_true(fabs(g_star[k]) <= 0.95 * p.mu);
        } else {
            expect_close("KKT", k, g_star[k], -copysign(p.mu, x_star[k]), 0, 1e-9);
        }
    }
    assert_true(zeros >= 2 && zeros <= LK - 2); /* a few zeros, as the instance is meant */

    optim_cfg cfg = optim_defaults(OPTIM_FISTA, (float)(1.0 / p.L));
    cfg.prox = PROX_L1;
    cfg.prox_lambda = (float)p.mu;
    float y[LK], st[2 * LK + 1];
    for (int k = 0; k < LK; k++)
        y[k] = 0.0f;
    for (int t = 1; t <= 3000; t++)
        lasso_fista_step(&p, &cfg, y, st, t);
    optim_finish(&cfg, y, st, LK);
    for (int k = 0; k < LK; k++) {
        expect_close("fista vs coordinate descent", k, y[k], x_star[k], 0, LASSO_TOL);
        if (x_star[k] == 0.0)
            assert_true(y[k] == 0.0f);
    }
}

/* Beck & Teboulle (2009), Theorem 4.4 (constant step 1/L): for k ≥ 1
 *     F(x_k) − F* ≤ 2L‖x_0 − x*‖²/(k + 1)²,
 * which implies the C/k² form with C = 2L‖x_0 − x*‖². Checked for k = 1..50 from a random x_0,
 * with F* from coordinate descent. Slack 1e-9·(1 + F*): F of a float iterate is evaluated in
 * double from values rounded to 6e-8 relative; the bound at k = 50 is ≈ 1e-2 here. */
static void test_fista_rate(void **state)
{
    lasso p;
    lasso_make(&p, 20240611);
    double x_star[LK];
    lasso_coordinate_descent(&p, x_star);
    const double F_star = lasso_objective(&p, x_star);

    anamo_rng rng;
    anamo_rng_seed(&rng, 7);
    float y[LK], st[2 * LK + 1];
    double dist_sq = 0.0;
    for (int k = 0; k < LK; k++) {
        y[k] = anamo_rng_uniform_range(&rng, -2.0f, 2.0f);
        dist_sq += ((double)y[k] - x_star[k]) * ((double)y[k] - x_star[k]);
    }
    optim_cfg cfg = optim_defaults(OPTIM_FISTA, (float)(1.0 / p.L));
    cfg.prox = PROX_L1;
    cfg.prox_lambda = (float)p.mu;
    const double C = 2.0 * p.L * dist_sq;
    for (int k = 1; k <= 50; k++) {
        lasso_fista_step(&p, &cfg, y, st, k);
        const double gap = lasso_objective_f(&p, st) - F_star; /* x_k is state[0..n) */
        const double bound = C / ((double)(k + 1) * (k + 1));
        if (!(gap <= bound + 1e-9 * (1.0 + F_star)))
            fail_msg("k = %d: F(x_k) − F* = %.6g > 2L‖x0 − x*‖²/(k+1)² = %.6g", k, gap, bound);
        assert_true(gap >= -1e-9 * (1.0 + F_star)); /* F* is the minimum */
    }
}

/* ---- 3. restart on a badly conditioned quadratic -------------------------------------------
 * f(x) = ½ Σ a_i x_i², a_i = 10^(4i/9), i = 0..9 (from 1 to 1e4), x_0 = 1, lr = 1/L = 1e-4.
 * Nesterov's iterates ripple with a period ∝ √κ = 100 (O'Donoghue & Candès 2015), so 500 steps
 * show several ripples. */

enum { RN = 10, RSTEPS = 500 };

static double restart_f(const double *a, const float *x)
{
    double f = 0.0;
    for (int i = 0; i < RN; i++)
        f += 0.5 * a[i] * (double)x[i] * (double)x[i];
    return f;
}

typedef struct restart_run {
    double F[RSTEPS + 1]; /* F(x_j), j = 0..RSTEPS */
    int restarted[RSTEPS + 1];
    int restarts;
} restart_run;

/* 500 accelerated steps; with `function_restart` the caller's restart of O'Donoghue & Candès:
 * after each step, if F(x_{j+1}) > F(x_j), accel_restart (y = x_{j+1}, s = 1). Checks that a
 * restart leaves y = x and s = 1, and that the step after it is a plain gradient step: y = x
 * (β = 0) and the descent-lemma decrease F(x − ∇f/L) ≤ F(x) − ‖∇f‖²/(2L). */
static void restart_run_accelerated(restart_kind restart, int function_restart, restart_run *out)
{
    double a[RN];
    float ga[RN];
    for (int i = 0; i < RN; i++) {
        a[i] = pow(10.0, 4.0 * i / (RN - 1));
        ga[i] = (float)a[i];
    }
    const double L = a[RN - 1];
    optim_cfg cfg = optim_defaults(OPTIM_ACCELERATED, (float)(1.0 / L));
    cfg.restart = restart;
    float y[RN], st[2 * RN + 1], g[RN];
    for (int i = 0; i < RN; i++)
        y[i] = 1.0f;
    memset(out, 0, sizeof *out);
    out->F[0] = restart_f(a, y);
    for (int j = 0; j < RSTEPS; j++) {
        quad_grad(ga, y, g, RN);
        optim_fista_step(&cfg, y, g, st, RN, j + 1);
        out->F[j + 1] = restart_f(a, st);
        if (j > 0 && out->restarted[j]) { /* the step after a restart */
            double g_sq = 0.0;
            for (int i = 0; i < RN; i++)
                g_sq += (double)g[i] * g[i];
            assert_memory_equal(y, st, sizeof y);
            assert_true(out->F[j + 1] <= out->F[j] - g_sq / (2.0 * L) * (1.0 - 1e-5));
        }
        if (function_restart && out->F[j + 1] > out->F[j]) {
            accel_restart(y, st, RN); /* undoes the step: x_{j+1} = y_{j+1} = x_j */
            assert_memory_equal(y, st, sizeof y);
            assert_true(ACCEL_S(st, RN) == 1.0f);
            out->F[j + 1] = restart_f(a, st);
            assert_true(out->F[j + 1] == out->F[j]);
            out->restarted[j + 1] = 1;
            out->restarts++;
        }
    }
}

static int count_increases(const restart_run *r)
{
    int n = 0;
    for (int j = 1; j <= RSTEPS; j++)
        n += r->F[j] > r->F[j - 1];
    return n;
}

/* The plain accelerated method is not monotone (89 increases in 500 steps here). With the
 * function-value restart, accel_restart undoes a step that raised F and restarts from the
 * better point (as monotone FISTA), so F(x_j) never increases; after each restart the next step
 * is a plain gradient step with the descent-lemma decrease, and the run ends lower than without
 * restart.
 * Gradient restart (inside optim_fista_step) also ends below it after 500 steps. */
static void test_restart_quadratic(void **state)
{
    static restart_run plain, func, grad;
    restart_run_accelerated(RESTART_NONE, 0, &plain);
    restart_run_accelerated(RESTART_FUNCTION, 1, &func); /* RESTART_FUNCTION: the caller's call */
    restart_run_accelerated(RESTART_GRADIENT, 0, &grad);

    const int plain_up = count_increases(&plain), func_up = count_increases(&func);
    assert_true(plain_up >= 1);
    assert_true(func.restarts >= 1); /* the restart path was taken */
    assert_int_equal(func_up, 0);    /* monotone */
    assert_true(grad.F[RSTEPS] < plain.F[RSTEPS]);
    assert_true(func.F[RSTEPS] < plain.F[RSTEPS]);
}

/* ---- 4. backtracking -------------------------------------------------------------------------
 * Smooth problems f on x ∈ R^BK from data D (BM × BK), labels c (BM):
 *   least squares  f(x) = ½‖Dx − c‖²,                   L = λ_max(DᵀD)
 *   logistic       f(x) = Σ_r log(1 + exp(−c_r D_r·x)), L = λ_max(DᵀD)/4, c_r = ±1 */

enum { BM = 30, BK = 8 };

typedef struct smooth_problem {
    int logistic;
    double D[BM][BK], c[BM];
    double L_true;
    int calls;
} smooth_problem;

static double smooth_value_d(const smooth_problem *p, const double *x)
{
    double f = 0.0;
    for (int r = 0; r < BM; r++) {
        double z = 0.0;
        for (int k = 0; k < BK; k++)
            z += p->D[r][k] * x[k];
        if (p->logistic) {
            const double m = -p->c[r] * z; /* log(1 + e^m), stable for either sign */
            f += m > 0.0 ? m + log1p(exp(-m)) : log1p(exp(m));
        } else {
            f += 0.5 * (z - p->c[r]) * (z - p->c[r]);
        }
    }
    return f;
}

static void smooth_grad_d(const smooth_problem *p, const double *x, double *g)
{
    for (int k = 0; k < BK; k++)
        g[k] = 0.0;
    for (int r = 0; r < BM; r++) {
        double z = 0.0;
        for (int k = 0; k < BK; k++)
            z += p->D[r][k] * x[k];
        /* d/dz: z − c, or −c·σ(−c z) */
        const double dz = p->logistic ? -p->c[r] / (1.0 + exp(p->c[r] * z)) : z - p->c[r];
        for (int k = 0; k < BK; k++)
            g[k] += p->D[r][k] * dz;
    }
}

static double smooth_at(void *ctx, const float *point)
{
    smooth_problem *p = ctx;
    double x[BK];
    for (int k = 0; k < BK; k++)
        x[k] = point[k];
    p->calls++;
    return smooth_value_d(p, x);
}

static void smooth_make(smooth_problem *p, int logistic, uint64_t seed)
{
    anamo_rng rng;
    anamo_rng_seed(&rng, seed);
    memset(p, 0, sizeof *p);
    p->logistic = logistic;
    for (int r = 0; r < BM; r++)
        for (int k = 0; k < BK; k++)
            p->D[r][k] = anamo_rng_normal(&rng);
    for (int r = 0; r < BM; r++)
        p->c[r] = logistic ? (anamo_rng_uniform(&rng) < 0.5f ? -1.0 : 1.0)
                           : 3.0 * anamo_rng_normal(&rng);
    p->L_true = power_iteration(&p->D[0][0], BM, BK, BK) / (logistic ? 4.0 : 1.0);
}

/* The candidate at L, as Beck & Teboulle define it: p = prox_{1/L}(y − ∇f(y)/L), with the
 * prox of (λ/L)·h. */
static void candidate(const float *y, const float *g, double L, prox_kind prox, float lambda,
                      float *out)
{
    const float step = (float)(1.0 / L);
    for (int k = 0; k < BK; k++)
        out[k] = prox_scalar(prox, step * lambda, y[k] - step * g[k]);
}

/* f(p) − Q_L(p, y), Q_L(p, y) = f(y) + ⟨p − y, ∇f(y)⟩ + (L/2)‖p − y‖², in double */
static double sufficient_decrease_excess(const smooth_problem *p, const float *y, const float *g,
                                         const float *pt, double L)
{
    double yd[BK], pd[BK], lin = 0.0, sq = 0.0;
    for (int k = 0; k < BK; k++) {
        yd[k] = y[k];
        pd[k] = pt[k];
        lin += (pd[k] - yd[k]) * (double)g[k];
        sq += (pd[k] - yd[k]) * (pd[k] - yd[k]);
    }
    return smooth_value_d(p, pd) - (smooth_value_d(p, yd) + lin + 0.5 * L * sq);
}

/* From L_prev = 1e-3·L_true with η = 2 on 12 random problems (least squares and logistic,
 * without and with an L1 prox): the returned L is L_prev·2^i, satisfies the condition at its
 * own candidate (which is what the function wrote), L/η (if tried) violates it at its
 * candidate, and L ≤ η·L_true (every L ≥ L_true passes, by the descent lemma). Slack on the
 * condition: 1e-12·(1 + |f(y)|), the double rounding of the sums. */
static void test_backtracking(void **state)
{
    static smooth_problem p;
    const double eta = 2.0;
    for (int inst = 0; inst < 12; inst++) {
        const int logistic = inst & 1;
        const prox_kind prox = (inst & 2) ? PROX_L1 : PROX_NONE;
        const float lambda = prox == PROX_L1 ? 0.5f : 0.0f;
        smooth_make(&p, logistic, 1000 + (uint64_t)inst);
        anamo_rng rng;
        anamo_rng_seed(&rng, 2000 + (uint64_t)inst);
        float y[BK], g[BK], out[BK], want[BK];
        double yd[BK], gd[BK];
        for (int k = 0; k < BK; k++)
            yd[k] = y[k] = anamo_rng_uniform_range(&rng, -1.5f, 1.5f);
        smooth_grad_d(&p, yd, gd);
        for (int k = 0; k < BK; k++)
            g[k] = (float)gd[k];
        const double f_y = smooth_value_d(&p, yd), slack = 1e-12 * (1.0 + fabs(f_y));
        const double L_prev = 1e-3 * p.L_true;

        int ok = -1;
        const double L = backtrack_step(y, g, f_y, L_prev, eta, prox, lambda, NULL, out, BK,
                                        smooth_at, &p, 60, &ok);
        assert_int_equal(ok, 1);
        const double tries = log2(L / L_prev);
        assert_true(fabs(tries - nearbyint(tries)) < 1e-9 && tries >= 1.0);
        assert_true(L <= eta * p.L_true * (1.0 + 1e-9));
        candidate(y, g, L, prox, lambda, want);
        assert_memory_equal(out, want, sizeof out);
        if (!(sufficient_decrease_excess(&p, y, g, out, L) <= slack))
            fail_msg("instance %d: accepted L = %g violates sufficient decrease", inst, L);
        float before[BK];
        candidate(y, g, L / eta, prox, lambda, before);
        if (!(sufficient_decrease_excess(&p, y, g, before, L / eta) > 0.0))
            fail_msg("instance %d: L/η = %g already satisfied it (not the first)", inst, L / eta);

        /* too few tries: not ok, and the last L tried (L_prev·η²) with its candidate in out */
        ok = -1;
        const double L_short = backtrack_step(y, g, f_y, L_prev, eta, prox, lambda, NULL, out, BK,
                                              smooth_at, &p, 3, &ok);
        assert_int_equal(ok, 0);
        assert_true(L_short == L_prev * eta * eta);
        candidate(y, g, L_short, prox, lambda, want);
        assert_memory_equal(out, want, sizeof out);
        assert_true(sufficient_decrease_excess(&p, y, g, out, L_short) > 0.0);

        /* from above the Lipschitz constant the first try is accepted: L = L_prev, one call */
        p.calls = 0;
        const double L_big = backtrack_step(y, g, f_y, 1.5 * p.L_true, eta, prox, lambda, NULL, out,
                                            BK, smooth_at, &p, 60, &ok);
        assert_int_equal(ok, 1);
        assert_true(L_big == 1.5 * p.L_true);
        assert_int_equal(p.calls, 1);
    }
}

/* ---- 5. prox operators ---------------------------------------------------------------------
 * τ = 0.5 on v = [−2, −0.3, 0, 0.4, 1.5]:
 *   none       v
 *   l1         sign(v)·max(|v| − 0.5, 0) = [−1.5, 0, 0, 0, 1]
 *   nonneg     max(v, 0)                 = [0, 0, 0, 0.4, 1.5]
 *   l1_nonneg  max(v − 0.5, 0)           = [0, 0, 0, 0, 1]
 * Compared exactly: the nonzero results (−2 + 0.5, 1.5 − 0.5, and inputs passed through) are
 * exact in float. */
static void test_prox_hand(void **state)
{
    const float v0[5] = {-2.0f, -0.3f, 0.0f, 0.4f, 1.5f};
    const float want[PROX_COUNT][5] = {
        {-2.0f, -0.3f, 0.0f, 0.4f, 1.5f},
        {-1.5f, 0.0f, 0.0f, 0.0f, 1.0f},
        {0.0f, 0.0f, 0.0f, 0.4f, 1.5f},
        {0.0f, 0.0f, 0.0f, 0.0f, 1.0f},
    };
    for (int kind = 0; kind < PROX_COUNT; kind++) {
        float v[5];
        memcpy(v, v0, sizeof v);
        prox_apply((prox_kind)kind, 0.5f, v, 5);
        for (int i = 0; i < 5; i++)
            if (v[i] != want[kind][i])
                fail_msg("prox %s[%d]: got %.9g, want %.9g", prox_name((prox_kind)kind), i, v[i],
                         want[kind][i]);
    }
}

/* On spans above the OpenMP threshold (65536) prox_apply is prox_scalar elementwise, bit for
 * bit, and leaves nothing out at chunk edges. */
static void test_prox_large(void **state)
{
    enum { NL = 3 * 65536 + 7 };
    float *v = malloc(NL * sizeof *v), *w = malloc(NL * sizeof *w);
    assert_non_null(v);
    assert_non_null(w);
    anamo_rng rng;
    anamo_rng_seed(&rng, 99);
    for (int i = 0; i < NL; i++)
        v[i] = anamo_rng_uniform_range(&rng, -2.0f, 2.0f);
    for (int kind = 0; kind < PROX_COUNT; kind++) {
        memcpy(w, v, NL * sizeof *w);
        prox_apply((prox_kind)kind, 0.3f, w, NL);
        for (int i = 0; i < NL; i++) {
            const float want = prox_scalar((prox_kind)kind, 0.3f, v[i]);
            if (memcmp(&w[i], &want, sizeof want))
                fail_msg("prox %s[%d]: span %.9g, scalar %.9g", prox_name((prox_kind)kind), i, w[i],
                         want);
        }
    }
    free(v);
    free(w);
}

/* ---- 6. schedules --------------------------------------------------------------------------- */

/* torch StepLR, step_size 3, γ 0.5, base 0.1: after epoch e, lr = 0.1·0.5^⌊e/3⌋:
 *   e = 1..10:  0.1 0.1 0.05 0.05 0.05 0.025 0.025 0.025 0.0125 0.0125
 * (exact in float: the factors are powers of two). The constant schedule keeps the base. */
static void test_schedule_step(void **state)
{
    schedule_cfg cfg = schedule_defaults(SCHED_STEP);
    cfg.step_size = 3;
    cfg.gamma = 0.5f;
    const float base = 0.1f;
    const float want[10] = {base,     base,     base / 2, base / 2, base / 2,
                            base / 4, base / 4, base / 4, base / 8, base / 8};
    schedule_state s;
    schedule_init(&s, base);
    assert_true(s.lr == base);
    for (int e = 1; e <= 10; e++) {
        const float lr = schedule_epoch_end(&cfg, &s, base, 1.0);
        if (lr != want[e - 1] || s.lr != lr)
            fail_msg("step: epoch %d lr %.9g, want %.9g", e, lr, want[e - 1]);
    }
    const schedule_cfg cst = schedule_defaults(SCHED_CONSTANT);
    schedule_init(&s, base);
    for (int e = 1; e <= 5; e++)
        assert_true(schedule_epoch_end(&cst, &s, base, 10.0 - e) == base);
}

/* torch ReduceLROnPlateau (mode min, threshold_mode rel, cooldown 0): loss is an improvement
 * iff loss < best·(1 − threshold); otherwise bad_epochs += 1; when bad_epochs > patience,
 * lr ← max(lr·factor, min_lr) and bad_epochs ← 0. patience 2, factor 0.1, threshold 1e-4,
 * min_lr 1e-5, base 1e-4. Losses near 100 so the relative threshold (0.01 there) and an
 * absolute one (1e-4) disagree:
 *   e1  100     < ∞                              best 100    lr 1e-4
 *   e2  90      < 100·0.9999 = 99.99             best 90     lr 1e-4
 *   e3  89.995  ≮ 90·0.9999 = 89.991  bad 1 (an absolute threshold would call it better)
 *   e4  95                            bad 2 = patience: no drop yet          lr 1e-4
 *   e5  89.992  ≮ 89.991              bad 3 > 2: drop, bad 0                 lr 1e-5
 *   e6  80      < 89.991              best 80, bad 0                         lr 1e-5
 *   e7–e9  85                         bad 1, 2, 3 > 2: drop to max(1e-6, 1e-5) lr 1e-5
 *   e10 85                            bad 1                                   lr 1e-5
 * lr to 1e-6 relative (lr·0.1 rounds in float); never below min_lr, exactly. */
static void test_schedule_plateau(void **state)
{
    schedule_cfg cfg = schedule_defaults(SCHED_PLATEAU);
    cfg.patience = 2;
    cfg.factor = 0.1f;
    cfg.threshold = 1e-4f;
    cfg.min_lr = 1e-5f;
    const float base = 1e-4f;
    const double loss[10] = {100, 90, 89.995, 95, 89.992, 80, 85, 85, 85, 85};
    const double want[10] = {1e-4, 1e-4, 1e-4, 1e-4, 1e-5, 1e-5, 1e-5, 1e-5, 1e-5, 1e-5};
    const int want_bad[10] = {0, 0, 1, 2, 0, 0, 1, 2, 0, 1};
    schedule_state s;
    schedule_init(&s, base);
    for (int e = 1; e <= 10; e++) {
        const float lr = schedule_epoch_end(&cfg, &s, base, loss[e - 1]);
        expect_close("plateau lr", e, lr, want[e - 1], 1e-6, 0);
        assert_int_equal(s.bad_epochs, want_bad[e - 1]);
        assert_true(lr >= cfg.min_lr);
    }
    assert_true(s.best == 80.0);

    /* the count restarts after each drop: from base 1e-2 with the loss never improving after
     * e1, drops come every patience + 1 = 3 epochs (e4, e7, e10), then the floor holds */
    const float base2 = 1e-2f;
    const double want2[16] = {1e-2, 1e-2, 1e-2, 1e-3, 1e-3, 1e-3, 1e-4, 1e-4,
                              1e-4, 1e-5, 1e-5, 1e-5, 1e-5, 1e-5, 1e-5, 1e-5};
    schedule_init(&s, base2);
    for (int e = 1; e <= 16; e++) {
        const float lr = schedule_epoch_end(&cfg, &s, base2, 50.0);
        expect_close("plateau drops", e, lr, want2[e - 1], 1e-6, 0);
        assert_true(lr >= cfg.min_lr);
    }
}

/* ---- 7. sizes, finish, names, dispatch ------------------------------------------------------ */

static void test_state_floats(void **state)
{
    const int64_t n = 1000;
    const int64_t want[OPTIM_COUNT] = {
        [OPTIM_SGD] = 0,                 /* none */
        [OPTIM_ADAM] = 2 * n,            /* m, v */
        [OPTIM_MOMENTUM] = n,            /* the velocity b */
        [OPTIM_NESTEROV] = n,            /* the velocity b */
        [OPTIM_ACCELERATED] = 2 * n + 1, /* x_j, x_{j−1}, s_j */
        [OPTIM_ADAGRAD] = n,             /* Σ g² */
        [OPTIM_RMSPROP] = n,             /* v */
        [OPTIM_FISTA] = 2 * n + 1,       /* x_j, x_{j−1}, s_j */
    };
    for (int kind = 0; kind < OPTIM_COUNT; kind++)
        assert_int_equal(optim_state_floats((optim_kind)kind, n), want[kind]);
}

/* accelerated and fista: theta ← x (state[0..n)); the others leave theta alone. */
static void test_finish(void **state)
{
    for (int kind = 0; kind < OPTIM_COUNT; kind++) {
        const optim_cfg cfg = optim_defaults((optim_kind)kind, 0.1f);
        float theta[4] = {1, 2, 3, 4};
        const float st[9] = {-1, -2, -3, -4, 5, 6, 7, 8, 9};
        const float orig[4] = {1, 2, 3, 4};
        optim_finish(&cfg, theta, st, 4);
        const int copies = kind == OPTIM_ACCELERATED || kind == OPTIM_FISTA;
        assert_memory_equal(theta, copies ? st : orig, sizeof theta);
    }
}

static void test_names(void **state)
{
    for (int k = 0; k < OPTIM_COUNT; k++)
        assert_int_equal(optim_parse(optim_name((optim_kind)k)), k);
    for (int k = 0; k < PROX_COUNT; k++)
        assert_int_equal(prox_parse(prox_name((prox_kind)k)), k);
    for (int k = 0; k < RESTART_COUNT; k++)
        assert_int_equal(restart_parse(restart_name((restart_kind)k)), k);
    for (int k = 0; k < SCHED_COUNT; k++)
        assert_int_equal(schedule_parse(schedule_name((schedule_kind)k)), k);
    /* the spellings configs use */
    /* (the enum's values are in checkpoints: "accelerated" keeps the number "nesterov" had) */
    const char *const optim_names[OPTIM_COUNT] = {"sgd",     "adam",    "momentum", "accelerated",
                                                  "adagrad", "rmsprop", "fista",    "nesterov"};
    for (int k = 0; k < OPTIM_COUNT; k++)
        assert_string_equal(optim_name((optim_kind)k), optim_names[k]);
    assert_string_equal(prox_name(PROX_NONE), "none");
    assert_string_equal(prox_name(PROX_L1), "l1");
    assert_string_equal(prox_name(PROX_NONNEG), "nonneg");
    assert_string_equal(prox_name(PROX_L1_NONNEG), "l1_nonneg");
    assert_string_equal(restart_name(RESTART_FUNCTION), "function");
    assert_string_equal(restart_name(RESTART_GRADIENT), "gradient");
    assert_string_equal(schedule_name(SCHED_STEP), "step");
    assert_string_equal(schedule_name(SCHED_PLATEAU), "plateau");
    /* every name is in the allowed list the CLI prints */
    for (int k = 0; k < OPTIM_COUNT; k++)
        assert_non_null(
            strstr(anamo_enum_allowed(ANAMO_ENUM_OPTIMIZER), optim_name((optim_kind)k)));
    assert_string_equal(optim_name(OPTIM_COUNT), "?");
    assert_int_equal(optim_parse("?"), -1);
    assert_int_equal(optim_parse("Adam"), -1);
    assert_int_equal(prox_parse("l2"), -1);
}

/* optim_step is the direct call, bit for bit, for every kind (with weight decay, and for FISTA
 * an L1 prox and gradient restart, so every path of the step is in play). */
static void test_dispatch_all(void **state)
{
    enum { N = 5, T = 4 };
    const float g[T][N] = {{0.1f, -0.2f, 0.3f, -0.4f, 0.5f},
                           {-0.5f, 0.25f, 0.0f, 1.0f, -0.125f},
                           {0.3f, 0.3f, -0.3f, 0.7f, 0.01f},
                           {0.6f, -0.1f, 0.2f, -0.7f, 0.3f}};
    for (int kind = 0; kind < OPTIM_COUNT; kind++) {
        optim_cfg cfg = optim_defaults((optim_kind)kind, 0.05f);
        cfg.weight_decay = 0.01f;
        cfg.prox = PROX_L1;
        cfg.prox_lambda = 0.2f;
        cfg.restart = RESTART_GRADIENT;
        float a[N] = {1, -1, 0.5f, 2, -0.25f}, b[N];
        float sa[2 * N + 1] = {0}, sb[2 * N + 1] = {0};
        memcpy(b, a, sizeof a);
        for (int t = 1; t <= T; t++) {
            optim_step(&cfg, a, g[t - 1], sa, N, t);
            switch (kind) {
            case OPTIM_SGD: optim_sgd_step(&cfg, b, g[t - 1], N); break;
            case OPTIM_ADAM: optim_adam_step(&cfg, b, g[t - 1], sb, sb + N, N, t); break;
            case OPTIM_MOMENTUM: optim_momentum_step(&cfg, b, g[t - 1], sb, N, t); break;
            case OPTIM_NESTEROV: optim_nesterov_step(&cfg, b, g[t - 1], sb, N, t); break;
            case OPTIM_ADAGRAD: optim_adagrad_step(&cfg, b, g[t - 1], sb, N); break;
            case OPTIM_RMSPROP: optim_rmsprop_step(&cfg, b, g[t - 1], sb, N); break;
            default: optim_fista_step(&cfg, b, g[t - 1], sb, N, t); break;
            }
        }
        assert_memory_equal(a, b, sizeof a);
        assert_memory_equal(sa, sb, sizeof sa);
        if (optim_state_floats((optim_kind)kind, N) > 0)
            assert_true(sa[0] != 0.0f); /* the state was written */
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_momentum_hand),
        cmocka_unit_test(test_momentum_vs_torch_sgd),
        cmocka_unit_test(test_nesterov_hand),
        cmocka_unit_test(test_momentum_lr_change_and_reset),
        cmocka_unit_test(test_accelerated_hand),
        cmocka_unit_test(test_weight_decay_is_l2),
        cmocka_unit_test(test_adagrad_hand),
        cmocka_unit_test(test_rmsprop_hand),
        cmocka_unit_test(test_adagrad_rmsprop_vs_torch),
        cmocka_unit_test(test_fista_lasso),
        cmocka_unit_test(test_fista_rate),
        cmocka_unit_test(test_restart_quadratic),
        cmocka_unit_test(test_backtracking),
        cmocka_unit_test(test_prox_hand),
        cmocka_unit_test(test_prox_large),
        cmocka_unit_test(test_schedule_step),
        cmocka_unit_test(test_schedule_plateau),
        cmocka_unit_test(test_state_floats),
        cmocka_unit_test(test_finish),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_dispatch_all),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
