/* momentum.c — the heavy-ball method (B. T. Polyak, "Some methods of speeding up the
 * convergence of iteration methods", 1964), in the seeds' form:
 *     w_{t+1} = w_t − lr·∇f(w_t) + β·(w_t − w_{t−1}),   w_{−1} = w_0
 * state: w_{t−1}. (torch.optim.SGD's momentum is the same method with the velocity as state.) */
#include "optim/optim.h"

#include <string.h>

#define OPTIM_OMP_MIN 65536

void optim_momentum_step(const optim_cfg *cfg, float *w, const float *grad, float *w_prev,
                         int64_t n, int64_t t)
{
    const float lr = cfg->lr, beta = cfg->momentum, wd = cfg->weight_decay;
    if (t <= 1)
        memcpy(w_prev, w, (size_t)n * sizeof *w);
#pragma omp parallel for simd if (n > OPTIM_OMP_MIN)
    for (int64_t i = 0; i < n; i++) {
        float g = grad[i] + wd * w[i];
        float w_next = w[i] - lr * g + beta * (w[i] - w_prev[i]);
        w_prev[i] = w[i];
        w[i] = w_next;
    }
}
