/* accel.c — accelerated gradient and FISTA (A. Beck, M. Teboulle, "A fast iterative
 * shrinkage-thresholding algorithm for linear inverse problems", SIAM J. Imaging Sci. 2009,
 * FISTA with constant step), with O'Donoghue & Candès' adaptive restart ("Adaptive restart for
 * accelerated gradient schemes", 2015). The parameters hold y_j, the point where the gradient
 * is taken; the state holds x_j and s_j:
 *     x_{j+1} = prox_{lr·λ h}(y_j − lr·∇f(y_j))
 *     s_{j+1} = (1 + √(1 + 4 s_j²))/2,   s_0 = 1
 *     y_{j+1} = x_{j+1} + ((s_j − 1)/s_{j+1})·(x_{j+1} − x_j)
 * Gradient restart: if (y_j − x_{j+1})·(x_{j+1} − x_j) > 0, the step went against the momentum:
 * s_{j+1} = 1 and y_{j+1} = x_{j+1}. Function restart is the caller's (accel_restart), since
 * only it can evaluate F. `accelerated` (OPTIM_ACCELERATED) is FISTA without a prox: Nesterov's
 * 1983 accelerated gradient with the s_j sequence, restarted at every phase entry — not
 * torch.optim.SGD's nesterov momentum, which is `nesterov` (momentum.c). */
#include "optim/optim.h"

#include <math.h>
#include <string.h>

#define OPTIM_OMP_MIN 65536

double accel_next_s(double s)
{
    return (1.0 + sqrt(1.0 + 4.0 * s * s)) / 2.0;
}

void accel_extrapolate(float *y, const float *x_new, const float *x_old, float beta, int64_t n)
{
#pragma omp parallel for simd if (n > OPTIM_OMP_MIN)
    for (int64_t i = 0; i < n; i++)
        y[i] = x_new[i] + beta * (x_new[i] - x_old[i]);
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

void optim_fista_step(const optim_cfg *cfg, float *y, const float *grad, float *state,
                      int64_t n, int64_t t)
{
    float *x = ACCEL_X(state), *x_prev = ACCEL_X_PREV(state, n);
    if (t <= 1) { /* x_0 = y_0, s_0 = 1 */
        memcpy(x, y, (size_t)n * sizeof *x);
        ACCEL_S(state, n) = 1.0f;
    }
    const prox_kind prox = cfg->kind == OPTIM_FISTA ? cfg->prox : PROX_NONE;
    const double s_j = ACCEL_S(state, n), s_next = accel_next_s(s_j);
    /* pass 1: y ← x_{j+1} (the old y is needed only for the restart test, done here) */
    const double against = gradient_step(cfg, prox, y, grad, x, x_prev, n);
    const int restart = cfg->restart == RESTART_GRADIENT && against > 0.0;
    const float beta = restart ? 0.0f : (float)((s_j - 1.0) / s_next);
    /* pass 2: y_{j+1} = x_{j+1} + β(x_{j+1} − x_j), then x_{j−1} ← x_j ← x_{j+1} */
#pragma omp parallel for simd if (n > OPTIM_OMP_MIN)
    for (int64_t i = 0; i < n; i++) {
        float x_next = y[i];
        y[i] = x_next + beta * (x_next - x[i]);
        x_prev[i] = x[i];
        x[i] = x_next;
    }
    ACCEL_S(state, n) = restart ? 1.0f : (float)s_next;
}
