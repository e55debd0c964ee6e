/* adam.c — Adam (Kingma & Ba 2015, Algorithm 1) as torch.optim.Adam documents it:
 *     g ← ∇θ + wd·θ
 *     m ← β1·m + (1 − β1)·g          v ← β2·v + (1 − β2)·g²
 *     m_hat = m/(1 − β1^t)           v_hat = v/(1 − β2^t)
 *     θ ← θ − lr·m_hat/(√v_hat + ε)
 * (ε added outside the square root, after bias correction, as in PyTorch.) */
#include "core/simd.h"
#include "optim/optim.h"

#include <math.h>
#include <omp.h>

#define OPTIM_OMP_MIN 65536

/* Each thread takes one span of the parameters, whole 64-byte lines (16 floats) but the last,
 * the spans equal to within a line: a thread that finished early and waited past libgomp's
 * short spin (src/program/setup.c) would fall asleep, and waking it costs more than the wait.
 * (Chunks of 16,384 floats left one thread 4 and the other 2.6 of a 108,736-float block.) */
#define ADAM_LINE 16

/* elements [i0, i1): the update above */
ANAMO_CLONES static void adam_span(const optim_cfg *cfg, float bias_correction1,
                                   float bias_correction2, float *theta, const float *grad,
                                   float *m, float *v, int64_t i0, int64_t i1)
{
    const float beta1 = cfg->beta1, beta2 = cfg->beta2, eps = cfg->eps;
    const float lr = cfg->lr, wd = cfg->weight_decay;
#pragma omp simd
    for (int64_t i = i0; i < i1; i++) {
        float g = grad[i] + wd * theta[i];
        m[i] = beta1 * m[i] + (1.0f - beta1) * g;
        v[i] = beta2 * v[i] + (1.0f - beta2) * g * g;
        float m_hat = m[i] / bias_correction1;
        float v_hat = v[i] / bias_correction2;
        theta[i] -= lr * m_hat / (sqrtf(v_hat) + eps);
    }
}

void optim_adam_step(const optim_cfg *cfg, float *theta, const float *grad, float *m, float *v,
                     int64_t n, int64_t t)
{
    const float bias_correction1 = 1.0f - (float)pow(cfg->beta1, (double)t);
    const float bias_correction2 = 1.0f - (float)pow(cfg->beta2, (double)t);
#pragma omp parallel if (n > OPTIM_OMP_MIN)
    {
        const int64_t lines = (n + ADAM_LINE - 1) / ADAM_LINE;
        const int64_t thread = omp_get_thread_num(), nthr = omp_get_num_threads();
        const int64_t i0 = lines * thread / nthr * ADAM_LINE;
        const int64_t i1 = lines * (thread + 1) / nthr * ADAM_LINE;
        adam_span(cfg, bias_correction1, bias_correction2, theta, grad, m, v, i0, i1 < n ? i1 : n);
    }
}
