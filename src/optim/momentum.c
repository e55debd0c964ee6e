/* momentum.c — SGD with momentum as torch.optim.SGD defines it (dampening 0), the heavy ball of
 * B. T. Polyak ("Some methods of speeding up the convergence of iteration methods", 1964), and
 * its Nesterov form (I. Sutskever, J. Martens, G. Dahl, G. Hinton, "On the importance of
 * initialization and momentum in deep learning", ICML 2013, eq. 3–4, as PyTorch writes it):
 *     g ← ∇f(θ_t) + wd·θ_t
 *     b_t = g                  at t = 1
 *     b_t = β·b_{t−1} + g      after
 *     momentum:  θ_{t+1} = θ_t − lr_t·b_t
 *     nesterov:  θ_{t+1} = θ_t − lr_t·(g + β·b_t)
 * State: the velocity b (n floats). Keeping b, not θ_{t−1}, is what makes a schedule act as in
 * PyTorch: the seeds' θ_{t+1} = θ_t − lr·∇ + β(θ_t − θ_{t−1}) is the same method only while lr
 * stays put, since θ_t − θ_{t−1} = −lr_{t−1}·b_{t−1} carries the old rate. */
#include "optim/optim.h"

#define OPTIM_OMP_MIN 65536

/* Both methods: the same velocity, and a step along b_t or, with nesterov, along g + β·b_t. */
static void velocity_step(const optim_cfg *cfg, float *theta, const float *grad, float *buf,
                          int64_t n, int64_t t, int nesterov)
{
    const float lr = cfg->lr, beta = cfg->momentum, wd = cfg->weight_decay;
#pragma omp parallel for simd if (n > OPTIM_OMP_MIN)
    for (int64_t i = 0; i < n; i++) {
        float g = grad[i] + wd * theta[i];
        buf[i] = t <= 1 ? g : beta * buf[i] + g; /* b_1 = g: what buf held is not read */
        theta[i] -= lr * (nesterov ? g + beta * buf[i] : buf[i]);
    }
}

void optim_momentum_step(const optim_cfg *cfg, float *theta, const float *grad, float *buf,
                         int64_t n, int64_t t)
{
    velocity_step(cfg, theta, grad, buf, n, t, 0);
}

void optim_nesterov_step(const optim_cfg *cfg, float *theta, const float *grad, float *buf,
                         int64_t n, int64_t t)
{
    velocity_step(cfg, theta, grad, buf, n, t, 1);
}
