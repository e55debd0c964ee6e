/* batchnorm.c — nn.BatchNorm1d / nn.BatchNorm2d (Ioffe & Szegedy 2015) over C channels of
 * P positions (P = 1 for features), N = B·P values per channel, in either layout:
 *   training   μ = mean, σ² = biased variance over the N values;
 *              running_mean ← (1 − m)·running_mean + m·μ,
 *              running_var  ← (1 − m)·running_var + m·σ²·N/(N − 1)   (m = 0.1, as PyTorch)
 *   evaluation μ, σ² = the running statistics
 *   out = γ·(x − μ)/√(σ² + ε) + β                                     (ε = 1e-5)
 * backward (training), with x̂ = (x − μ)/√(σ² + ε):
 *   dγ = Σ dout·x̂,  dβ = Σ dout,  din = γ/(N·√(σ² + ε))·(N·dout − dβ − x̂·dγ)
 * and in evaluation din = γ·dout/√(running_var + ε). */
#include "nn/layer.h"

#include <math.h>

#define BN_OMP_MIN 4096

typedef struct bn_view {
    layout lay;
    int B;
    int64_t C, P;
} bn_view;

static bn_view view_of(const layer *l, int B)
{
    const int64_t P = (int64_t)l->in_h * l->in_w;
    bn_view v = {layout_of(l->in_cm, B, l->in_c, P), B, l->in_c, P};
    return v;
}

/* Mean and biased variance of channel c, in double. */
static void channel_stats(const float *x, const bn_view *v, int64_t c, double *mean, double *var)
{
    double sum = 0.0, sq = 0.0;
    for (int b = 0; b < v->B; b++) {
        const float *p = x + b * v->lay.sb + c * v->lay.sc;
        for (int64_t i = 0; i < v->P; i++) {
            sum += p[i];
            sq += (double)p[i] * p[i];
        }
    }
    const double n = (double)v->B * (double)v->P;
    *mean = sum / n;
    *var = sq / n - *mean * *mean;
    if (*var < 0.0)
        *var = 0.0;
}

void batchnorm_forward(layer *l, const float *in, int B)
{
    const bn_view v = view_of(l, B);
    const double n = (double)B * (double)v.P;
#pragma omp parallel for if (n * v.C > BN_OMP_MIN)
    for (int64_t c = 0; c < v.C; c++) {
        double mean, var;
        if (l->training) {
            channel_stats(in, &v, c, &mean, &var);
            const double m = l->momentum, unbiased = n > 1 ? var * n / (n - 1.0) : var;
            l->running_mean[c] = (float)((1.0 - m) * l->running_mean[c] + m * mean);
            l->running_var[c] = (float)((1.0 - m) * l->running_var[c] + m * unbiased);
        } else {
            mean = l->running_mean[c];
            var = l->running_var[c];
        }
        const float invstd = (float)(1.0 / sqrt(var + l->eps));
        l->save_mean[c] = (float)mean;
        l->save_invstd[c] = invstd;
        const float scale = l->weight[c] * invstd, shift = l->bias[c] - (float)mean * scale;
        for (int b = 0; b < B; b++) {
            const float *x = in + b * v.lay.sb + c * v.lay.sc;
            float *y = l->out + b * v.lay.sb + c * v.lay.sc;
            for (int64_t i = 0; i < v.P; i++)
                y[i] = x[i] * scale + shift;
        }
    }
    if (l->training)
        (*l->num_batches_tracked)++;
}

void batchnorm_backward(layer *l, const float *in, const float *dout, float *din, int B,
                        int need_din, int need_dw)
{
    const bn_view v = view_of(l, B);
    const double n = (double)B * (double)v.P;
#pragma omp parallel for if (n * v.C > BN_OMP_MIN)
    for (int64_t c = 0; c < v.C; c++) {
        const float mean = l->save_mean[c], invstd = l->save_invstd[c];
        double dgamma = 0.0, dbeta = 0.0;
        for (int b = 0; b < B; b++) {
            const int64_t off = b * v.lay.sb + c * v.lay.sc;
            for (int64_t i = 0; i < v.P; i++) {
                dgamma += (double)dout[off + i] * (in[off + i] - mean) * invstd;
                dbeta += dout[off + i];
            }
        }
        if (need_dw) {
            l->dweight[c] = (float)dgamma;
            l->dbias[c] = (float)dbeta;
        }
        if (!need_din)
            continue;
        const float g = l->weight[c] * invstd;
        const float a = l->training ? (float)(dbeta / n) : 0.0f;
        const float q = l->training ? (float)(dgamma / n) : 0.0f;
        for (int b = 0; b < B; b++) {
            const int64_t off = b * v.lay.sb + c * v.lay.sc;
            for (int64_t i = 0; i < v.P; i++) {
                const float xhat = (in[off + i] - mean) * invstd;
                din[off + i] = g * (dout[off + i] - a - xhat * q);
            }
        }
    }
}
