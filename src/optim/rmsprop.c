/* rmsprop.c — RMSProp (Tieleman & Hinton 2012) as torch.optim.RMSprop documents it, with
 * momentum 0 and centered False:
 *     g ← ∇θ + wd·θ;   v ← α·v + (1 − α)·g²;   θ ← θ − lr·g/(√v + ε)
 * (ε outside the square root, as in PyTorch). */
#include "optim/optim.h"

#include <math.h>

#define OPTIM_OMP_MIN 65536

void optim_rmsprop_step(const optim_cfg *cfg, float *theta, const float *grad, float *v, int64_t n)
{
    const float lr = cfg->lr, alpha = cfg->alpha, eps = cfg->eps, wd = cfg->weight_decay;
#pragma omp parallel for simd if (n > OPTIM_OMP_MIN)
    for (int64_t i = 0; i < n; i++) {
        float g = grad[i] + wd * theta[i];
        v[i] = alpha * v[i] + (1.0f - alpha) * g * g;
        theta[i] -= lr * g / (sqrtf(v[i]) + eps);
    }
}
