/* accel.c — accelerated gradient and FISTA (A. Beck, M. Teboulle, "A fast iterative
 * shrinkage-thresholding algorithm for linear inverse problems", SIAM J. Imaging Sci. 2009,
 * FISTA with constant step), with O'Donoghue & Candès' adaptive restart ("Adaptive restart for
 * accelerated gradient schemes", 2015). The parameters hold y_j, the point where the gradient
 * is taken; the state holds x_j and s_j:
 *     x_{j+1} = prox_{lr·λ h}(y_j − lr·∇f(y_j))
 *     s_{j+1} = (1 + √(1 + 4 s_j²))/2,   s_0 = 1
 *     y_{j+1} = x_{j+1} + ((s_j − 1)/s_{j+1})·(x_{j+1} − x_j)
 * The sequence (accel_start, accel_advance) is one piece whoever makes x_{j+1}: FISTA here, on
 * its own gradient step, and ANAMO in src/train, whose encoder's prox is iterative.
 * Gradient restart: if (y_j − x_{j+1})·(x_{j+1} − x_j) > 0, the step went against the momentum:
 * s_{j+1} = 1 and y_{j+1} = x_{j+1}. Function restart is the caller's (accel_restart), since
 * only it can evaluate F. `accelerated` (OPTIM_ACCELERATED) is FISTA without a prox: Nesterov's
 * 1983 accelerated gradient with the s_j sequence, restarted at every phase entry — not
 * torch.optim.SGD's nesterov momentum, which is `nesterov` (momentum.c). */
#include "optim/optim.h"

#include <math.h>
#include <string.h>

#define OPTIM_OMP_MIN 65536

double accel_next_s(double s) { return (1.0 + sqrt(1.0 + 4.0 * s * s)) / 2.0; }

void accel_start(const float *theta, float *state, int64_t n)
{
    memcpy(ACCEL_X(state), theta, (size_t)n * sizeof *state); /* x_0 = y_0 = θ */
    ACCEL_S(state, n) = 1.0f;                                 /* s_0 = 1 */
}

void accel_finish(float *theta, const float *state, int64_t n)
{
    memcpy(theta, ACCEL_X(state), (size_t)n * sizeof *theta); /* the iterate x_j, not y_j */
}

/* A plain loop: the sum's order is the same on every build, so is the test's verdict. */
int accel_against_momentum(const float *y_j, const float *x_next, const float *state, int64_t n)
{
    const float *x = ACCEL_X(state);
    double against = 0.0;
    for (int64_t i = 0; i < n; i++)
        against += (double)(y_j[i] - x_next[i]) * (double)(x_next[i] - x[i]);
    return against > 0.0;
}

void accel_advance(float *theta, float *state, int64_t n, int restart)
{
    float *x = ACCEL_X(state);
    const double s_j = ACCEL_S(state, n), s_next = accel_next_s(s_j);
    const float beta = restart ? 0.0f : (float)((s_j - 1.0) / s_next);
#pragma omp parallel for simd if (n > OPTIM_OMP_MIN)
    for (int64_t i = 0; i < n; i++) {
        const float x_next = theta[i];
        theta[i] = x_next + beta * (x_next - x[i]); /* y_{j+1} */
        x[i] = x_next;
    }
    ACCEL_S(state, n) = restart ? 1.0f : (float)s_next;
}

void accel_restart(float *y, float *state, int64_t n)
{
    float *x = ACCEL_X(state);
    const float *x_prev = ACCEL_X_PREV(state, n);
    memcpy(x, x_prev, (size_t)n * sizeof *x); /* undo: x_{j+1} = x_j */
    memcpy(y, x_prev, (size_t)n * sizeof *y); /* y_{j+1} = x_j */
    ACCEL_S(state, n) = 1.0f;
}

/* With unit-norm groups the constraint is part of the prox: x_{j+1} = P(prox(y_j − lr·∇f)),
 * projected before the restart test and the extrapolation, so the momentum sequence runs on
 * feasible iterates (y_{j+1} itself may leave the set, as FISTA's y does). x_{j−1}'s span holds
 * y_j meanwhile: pass 2 overwrites it anyway. Returns (y_j − x_{j+1})·(x_{j+1} − x_j). */
static double projected_gradient_step(const optim_cfg *cfg, prox_kind prox, float *y,
                                      const float *grad, const float *x, float *y_old, int64_t n)
{
    const float lr = cfg->lr, wd = cfg->weight_decay, tau = cfg->lr * cfg->prox_lambda;
    double against = 0.0;
#pragma omp parallel for simd if (n > OPTIM_OMP_MIN)
    for (int64_t i = 0; i < n; i++) {
        y_old[i] = y[i];
        y[i] = prox_scalar(prox, tau, y[i] - lr * (grad[i] + wd * y[i]));
    }
    norm_groups_project(cfg->unit_norm, y);
#pragma omp parallel for simd reduction(+ : against) if (n > OPTIM_OMP_MIN)
    for (int64_t i = 0; i < n; i++)
        against += (double)(y_old[i] - y[i]) * (double)(y[i] - x[i]);
    return against;
}

/* The prox with τ_i = τ·w[i mod period]: the weighted soft threshold of a penalty
 * Σ_i w_i·|v_i| (free codes under the decoder-weighted penalty). */
static double weighted_gradient_step(const optim_cfg *cfg, prox_kind prox, float *y,
                                     const float *grad, const float *x, int64_t n)
{
    const float lr = cfg->lr, wd = cfg->weight_decay, tau = cfg->lr * cfg->prox_lambda;
    const float *w = cfg->prox_weight;
    const int64_t period = cfg->prox_period;
    double against = 0.0;
    for (int64_t i = 0; i < n; i++) {
        float x_next = prox_scalar(prox, tau * w[i % period], y[i] - lr * (grad[i] + wd * y[i]));
        against += (double)(y[i] - x_next) * (double)(x_next - x[i]);
        y[i] = x_next;
    }
    return against;
}

/* y ← x_{j+1}; returns (y_j − x_{j+1})·(x_{j+1} − x_j) for the restart test. */
static double gradient_step(const optim_cfg *cfg, prox_kind prox, float *y, const float *grad,
                            const float *x, float *x_prev, int64_t n)
{
    if (cfg->unit_norm && cfg->unit_norm->kind != NORM_NONE)
        return projected_gradient_step(cfg, prox, y, grad, x, x_prev, n);
    if (cfg->prox_weight && cfg->prox_period > 0)
        return weighted_gradient_step(cfg, prox, y, grad, x, n);
    const float lr = cfg->lr, wd = cfg->weight_decay, tau = cfg->lr * cfg->prox_lambda;
    double against = 0.0;
#pragma omp parallel for simd reduction(+ : against) if (n > OPTIM_OMP_MIN)
    for (int64_t i = 0; i < n; i++) {
        float x_next = prox_scalar(prox, tau, y[i] - lr * (grad[i] + wd * y[i]));
        against += (double)(y[i] - x_next) * (double)(x_next - x[i]);
        y[i] = x_next;
    }
    return against;
}

void optim_fista_step(const optim_cfg *cfg, float *y, const float *grad, float *state, int64_t n,
                      int64_t t)
{
    float *x = ACCEL_X(state), *x_prev = ACCEL_X_PREV(state, n);
    if (t <= 1)
        accel_start(y, state, n);
    const prox_kind prox = cfg->kind == OPTIM_FISTA ? cfg->prox : PROX_NONE;
    /* y ← x_{j+1} (the old y is needed only for the restart test, done here) */
    const double against = gradient_step(cfg, prox, y, grad, x, x_prev, n);
    /* x_{j−1} ← x_j, which a caller's function restart (accel_restart) goes back to */
    memcpy(x_prev, x, (size_t)n * sizeof *x);
    accel_advance(y, state, n, cfg->restart == RESTART_GRADIENT && against > 0.0);
}
