/* activation.c — element-wise activations and their derivatives.
 *   identity  f = x                          f' = 1
 *   relu      f = max(x, 0)                  f' = [x > 0]
 *   sigmoid   f = 1/(1 + e^−x)               f' = f(1 − f)
 *   tanh      f = tanh x                     f' = 1 − f²
 *   step      f = [x > 0]                    f' = 0 (wherever it exists)
 *   smooth    f = 3u² − 2u³, u = x/ε on [0, ε]; 0 below, 1 above
 *                                            f' = 6u(1 − u)/ε inside, 0 outside
 * The smooth step is seed 000's differentiable stand-in for the binary step. */
#include "nn/layer.h"

#include <math.h>

#define ACT_OMP_MIN 32768

static inline float sigmoidf(float x)
{
    /* split by sign so exp never overflows */
    if (x >= 0.0f)
        return 1.0f / (1.0f + expf(-x));
    float e = expf(x);
    return e / (1.0f + e);
}

float act_apply(act_kind act, float eps, float x)
{
    switch (act) {
    case ACT_RELU: return x > 0.0f ? x : 0.0f;
    case ACT_SIGMOID: return sigmoidf(x);
    case ACT_TANH: return tanhf(x);
    case ACT_STEP: return x > 0.0f ? 1.0f : 0.0f;
    case ACT_SMOOTHSTEP: {
        if (x <= 0.0f)
            return 0.0f;
        if (x >= eps)
            return 1.0f;
        float u = x / eps;
        return u * u * (3.0f - 2.0f * u);
    }
    case ACT_IDENTITY:
    default: return x;
    }
}

/* derivative from the input x and the output y = f(x) (whichever is cheaper) */
static inline float act_derivative(act_kind act, float eps, float x, float y)
{
    switch (act) {
    case ACT_RELU: return x > 0.0f ? 1.0f : 0.0f;
    case ACT_SIGMOID: return y * (1.0f - y);
    case ACT_TANH: return 1.0f - y * y;
    case ACT_STEP: return 0.0f;
    case ACT_SMOOTHSTEP: {
        if (x <= 0.0f || x >= eps)
            return 0.0f;
        float u = x / eps;
        return 6.0f * u * (1.0f - u) / eps;
    }
    case ACT_IDENTITY:
    default: return 1.0f;
    }
}

void act_forward(layer *l, const float *in, int B)
{
    const int64_t n = (int64_t)B * l->out_dim;
    const act_kind act = l->act;
    const float eps = l->eps;
    float *out = l->out;
    if (act == ACT_RELU) { /* the common case, kept branch-free for the vectorizer */
#pragma omp parallel for simd if (n > ACT_OMP_MIN)
        for (int64_t i = 0; i < n; i++)
            out[i] = in[i] > 0.0f ? in[i] : 0.0f;
        return;
    }
#pragma omp parallel for if (n > ACT_OMP_MIN)
    for (int64_t i = 0; i < n; i++)
        out[i] = act_apply(act, eps, in[i]);
}

void act_backward(layer *l, const float *in, const float *dout, float *din, int B)
{
    const int64_t n = (int64_t)B * l->out_dim;
    const act_kind act = l->act;
    const float eps = l->eps;
    const float *out = l->out;
    if (act == ACT_RELU) {
#pragma omp parallel for simd if (n > ACT_OMP_MIN)
        for (int64_t i = 0; i < n; i++)
            din[i] = in[i] > 0.0f ? dout[i] : 0.0f;
        return;
    }
#pragma omp parallel for if (n > ACT_OMP_MIN)
    for (int64_t i = 0; i < n; i++)
        din[i] = dout[i] * act_derivative(act, eps, in[i], out[i]);
}

const char *act_name(act_kind act)
{
    static const char *const names[] = {"identity", "relu", "sigmoid", "tanh", "step",
                                        "smoothstep"};
    return (unsigned)act < sizeof names / sizeof names[0] ? names[act] : "?";
}
