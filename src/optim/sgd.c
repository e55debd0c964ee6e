/* sgd.c — plain stochastic gradient descent, torch.optim.SGD without momentum:
 *     g ← ∇θ + wd·θ,   θ ← θ − lr·g */
#include "optim/optim.h"

#define OPTIM_OMP_MIN 65536

void optim_sgd_step(const optim_cfg *cfg, float *theta, const float *grad, int64_t n)
{
    const float lr = cfg->lr, wd = cfg->weight_decay;
#pragma omp parallel for simd if (n > OPTIM_OMP_MIN)
    for (int64_t i = 0; i < n; i++) {
        float g = grad[i] + wd * theta[i];
        theta[i] -= lr * g;
    }
}
