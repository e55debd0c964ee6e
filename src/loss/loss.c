/* loss.c — MSE (mean and the seeds' sum form), binary cross-entropy, and the code ℓ1 penalty.
 *   mse      L = (1/(B·D)) Σ (x̂ − x)²        ∂L/∂x̂ = 2(x̂ − x)/(B·D)
 *   mse_sum  L = (1/B) Σ_b ‖x̂_b − x_b‖²      ∂L/∂x̂ = 2(x̂ − x)/B
 *   bce      L = −(1/(B·D)) Σ x log x̂ + (1 − x) log(1 − x̂)
 *            (logs clamped at −100 as PyTorch's BCELoss does, unless computed from logits) */
#include "loss/loss.h"

#include <math.h>
#include <string.h>

#define LOSS_OMP_MIN 32768
#define BCE_LOG_FLOOR (-100.0) /* PyTorch's BCELoss clamps log at −100 */

static double mse_forward(const float *xhat, const float *x, float *dxhat, int64_t n, double scale)
{
    double sum = 0.0;
    const float g = (float)(2.0 * scale);
#pragma omp parallel for simd reduction(+ : sum) if (n > LOSS_OMP_MIN)
    for (int64_t i = 0; i < n; i++) {
        float d = xhat[i] - x[i];
        sum += (double)(d * d);
        if (dxhat)
            dxhat[i] = g * d;
    }
    return sum * scale;
}

static inline double bce_logits_term(float z, float x)
{
    return (double)(z > 0.0f ? z : 0.0f) - (double)z * x + log1p(exp(-fabs((double)z)));
}

static double bce_forward(const float *xhat, const float *x, float *dxhat, int64_t n, double scale,
                          int from_logits)
{
    double sum = 0.0;
    const float s = (float)scale;
#pragma omp parallel for reduction(+ : sum) if (n > LOSS_OMP_MIN)
    for (int64_t i = 0; i < n; i++) {
        if (from_logits) {
            float z = xhat[i];
            sum += bce_logits_term(z, x[i]);
            if (dxhat) {
                float p = z >= 0.0f ? 1.0f / (1.0f + expf(-z)) : expf(z) / (1.0f + expf(z));
                dxhat[i] = s * (p - x[i]);
            }
            continue;
        }
        double p = xhat[i];
        double lp = p > 0.0 ? fmax(log(p), BCE_LOG_FLOOR) : BCE_LOG_FLOOR;
        double lq = p < 1.0 ? fmax(log1p(-p), BCE_LOG_FLOOR) : BCE_LOG_FLOOR;
        sum += -(x[i] * lp + (1.0 - x[i]) * lq);
        if (dxhat) {
            double denom = fmax(p * (1.0 - p), 1e-12);
            dxhat[i] = (float)(scale * (p - x[i]) / denom);
        }
    }
    return sum * scale;
}

double loss_forward(anamo_loss_kind kind, const float *xhat, const float *x, float *dxhat, int B,
                    int64_t D, int from_logits)
{
    const int64_t n = (int64_t)B * D;
    switch (kind) {
    case ANAMO_LOSS_MSE_SUM: return mse_forward(xhat, x, dxhat, n, 1.0 / B);
    case ANAMO_LOSS_BCE: return bce_forward(xhat, x, dxhat, n, 1.0 / (double)n, from_logits);
    case ANAMO_LOSS_MSE:
    default: return mse_forward(xhat, x, dxhat, n, 1.0 / (double)n);
    }
}

double code_l1_forward(const float *h, float *dh, int B, int64_t m, float lambda)
{
    const int64_t n = (int64_t)B * m;
    const float g = lambda / (float)B;
    double sum = 0.0;
#pragma omp parallel for simd reduction(+ : sum) if (n > LOSS_OMP_MIN)
    for (int64_t i = 0; i < n; i++) {
        sum += fabsf(h[i]);
        if (dh)
            dh[i] += h[i] > 0.0f ? g : (h[i] < 0.0f ? -g : 0.0f);
    }
    return sum / B;
}

double code_l1_weighted_forward(const float *h, float *dh, int B, int64_t m, const float *w,
                                float lambda)
{
    const float g = lambda / (float)B;
    double sum = 0.0;
#pragma omp parallel for reduction(+ : sum) if ((int64_t)B * m > LOSS_OMP_MIN)
    for (int b = 0; b < B; b++)
        for (int64_t j = 0; j < m; j++) {
            const float v = h[b * m + j];
            sum += (double)w[j] * fabsf(v);
            if (dh)
                dh[b * m + j] += v > 0.0f ? g * w[j] : (v < 0.0f ? -g * w[j] : 0.0f);
        }
    return sum / B;
}

const char *loss_name(anamo_loss_kind kind)
{
    const char *name = anamo_enum_name(ANAMO_ENUM_LOSS, (int)kind);
    return name ? name : "mse";
}
