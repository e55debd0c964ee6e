/* adam.c — Adam (Kingma & Ba 2015, Algorithm 1) as torch.optim.Adam documents it:
 *     g ← ∇θ + wd·θ
 *     m ← β1·m + (1 − β1)·g          v ← β2·v + (1 − β2)·g²
 *     m_hat = m/(1 − β1^t)           v_hat = v/(1 − β2^t)
 *     θ ← θ − lr·m_hat/(√v_hat + ε)
 * (ε added outside the square root, after bias correction, as in PyTorch.) */
#include "core/simd.h"
#include "optim/optim.h"

#include <math.h>

#define OPTIM_OMP_MIN 65536

/* Threads take the parameters in chunks of this many floats (a multiple of 16: whole 64-byte
 * lines), each a loop the vectorizer takes whole. */
#define ADAM_CHUNK 16384

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
#pragma omp parallel for if (n > OPTIM_OMP_MIN)
    for (int64_t i0 = 0; i0 < n; i0 += ADAM_CHUNK) {
        const int64_t i1 = i0 + ADAM_CHUNK < n ? i0 + ADAM_CHUNK : n;
        adam_span(cfg, bias_correction1, bias_correction2, theta, grad, m, v, i0, i1);
    }
}
