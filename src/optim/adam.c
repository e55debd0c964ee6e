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

/* elements [i0, i1): the update above, as a loop the vectorizer takes whole */
ANAMO_CLONES static void adam_span(float *theta, const float *grad, float *m, float *v, int64_t i0,
                                   int64_t i1, const float c[7])
{
    const float beta1 = c[0], beta2 = c[1], eps = c[2], lr = c[3], wd = c[4];
    const float bias_correction1 = c[5], bias_correction2 = c[6];
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
    const float c[7] = {cfg->beta1,
                        cfg->beta2,
                        cfg->eps,
                        cfg->lr,
                        cfg->weight_decay,
                        1.0f - (float)pow(cfg->beta1, (double)t),
                        1.0f - (float)pow(cfg->beta2, (double)t)};
    /* one span per thread, cut at multiples of 16 floats (a 64-byte line) */
#pragma omp parallel if (n > OPTIM_OMP_MIN)
    {
        const int64_t parts = omp_get_num_threads(), k = omp_get_thread_num();
        const int64_t per = (n / parts + 15) / 16 * 16;
        const int64_t i0 = k * per < n ? k * per : n;
        const int64_t i1 = i0 + per < n ? i0 + per : n;
        adam_span(theta, grad, m, v, i0, i1, c);
    }
}
