/* prox.c — proximal operators of τ·h, applied to a span (see prox_scalar in optim.h):
 *   none       v
 *   l1         h = ‖·‖₁:                       sign(v)·max(|v| − τ, 0)   (soft threshold)
 *   nonneg     h = indicator{v ≥ 0}:            max(v, 0)
 *   l1_nonneg  h = ‖·‖₁ + indicator{v ≥ 0}:     max(v − τ, 0) */
#include "optim/optim.h"

#define OPTIM_OMP_MIN 65536

void prox_apply(prox_kind kind, float tau, float *v, int64_t n)
{
    if (kind == PROX_NONE)
        return;
#pragma omp parallel for simd if (n > OPTIM_OMP_MIN)
    for (int64_t i = 0; i < n; i++)
        v[i] = prox_scalar(kind, tau, v[i]);
}
