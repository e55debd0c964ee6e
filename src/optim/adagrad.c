/* adagrad.c — AdaGrad (Duchi, Hazan & Singer 2011) as torch.optim.Adagrad documents it, with
 * lr_decay 0 and initial_accumulator_value 0:
 *     g ← ∇θ + wd·θ;   sum ← sum + g²;   θ ← θ − lr·g/(√sum + ε) */
#include "optim/optim.h"

#include <math.h>

#define OPTIM_OMP_MIN 65536

void optim_adagrad_step(const optim_cfg *cfg, float *theta, const float *grad, float *sum,
                        int64_t n)
{
    const float lr = cfg->lr, eps = cfg->eps, wd = cfg->weight_decay;
#pragma omp parallel for simd if (n > OPTIM_OMP_MIN)
    for (int64_t i = 0; i < n; i++) {
        float g = grad[i] + wd * theta[i];
        sum[i] += g * g;
        theta[i] -= lr * g / (sqrtf(sum[i]) + eps);
    }
}
