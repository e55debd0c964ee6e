/* activation.c — element-wise activations and their derivatives.
 *   identity  f = x                          f' = 1
 *   relu      f = max(x, 0)                  f' = [x > 0]
 *   sigmoid   f = 1/(1 + e^−x)               f' = f(1 − f)
 *   tanh      f = tanh x                     f' = 1 − f²
 *   step      f = [x > 0]                    f' = 0 (wherever it exists)
 *   step_ste  f = [x > 0]                    f' taken as [|x| ≤ 1] (straight-through estimator)
 *   smooth    f = 3u² − 2u³, u = x/ε on [0, ε]; 0 below, 1 above
 *                                            f' = 6u(1 − u)/ε inside, 0 outside
 * The smooth step is seed 000's differentiable stand-in for the binary step. */
#include "core/simd.h"
#include "nn/layer.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

#define ACT_OMP_MIN 32768

/* e^x by Cody–Waite range reduction, x = n·ln2 + r, and Cephes' degree-6 polynomial for e^r
 * (relative error ~1e-7, as libm's expf); written without branches or calls so that loops over
 * it vectorize: libm's expf is a scalar call, and was a tenth of a training step. */
static inline __attribute__((always_inline)) float exp_poly(float x)
{
    const float round_magic = 12582912.0f; /* 1.5·2^23: adding it rounds to an integer */
    x = x < -87.0f ? -87.0f : x;           /* ternaries, not fminf: those are calls */
    x = x > 88.0f ? 88.0f : x;
    float n = (x * 1.44269504088896341f + round_magic) - round_magic;
    float r = x - n * 0.693359375f; /* ln2 in two parts, the first exact in float */
    r = r - n * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    int32_t bits = ((int32_t)n + 127) << 23; /* 2^n as a float's bit pattern */
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return p * scale;
}

float act_apply(act_kind act, float eps, float x)
{
    switch (act) {
    case ACT_RELU: return x > 0.0f ? x : 0.0f;
    case ACT_SIGMOID: return 1.0f / (1.0f + exp_poly(-x)); /* as act_forward computes it */
    case ACT_TANH: return tanhf(x);
    case ACT_STEP:
    case ACT_STEP_STE: return x > 0.0f ? 1.0f : 0.0f;
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
    case ACT_STEP_STE: return x >= -1.0f && x <= 1.0f ? 1.0f : 0.0f;
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

ANAMO_CLONES static void sigmoid_span(const float *in, float *out, int64_t n)
{
#pragma omp simd
    for (int64_t i = 0; i < n; i++)
        out[i] = 1.0f / (1.0f + exp_poly(-in[i]));
}

ANAMO_CLONES static void relu_span(const float *in, float *out, int64_t n)
{
#pragma omp simd
    for (int64_t i = 0; i < n; i++)
        out[i] = in[i] > 0.0f ? in[i] : 0.0f;
}

ANAMO_CLONES static void sigmoid_backward_span(const float *out, const float *dout, float *din,
                                               int64_t n)
{
#pragma omp simd
    for (int64_t i = 0; i < n; i++)
        din[i] = dout[i] * out[i] * (1.0f - out[i]);
}

ANAMO_CLONES static void relu_backward_span(const float *in, const float *dout, float *din,
                                            int64_t n)
{
#pragma omp simd
    for (int64_t i = 0; i < n; i++) {
        float g = dout[i]; /* loaded unconditionally, so the select vectorizes */
        din[i] = in[i] > 0.0f ? g : 0.0f;
    }
}

void act_forward_rows(layer *l, const float *in, int first, int end)
{
    const int64_t D = l->out_dim, i0 = first * D, n = (end - first) * D;
    const act_kind act = l->act;
    const float eps = l->eps;
    float *out = l->out;
    if (act == ACT_RELU) /* the common cases, kept branch-free for the vectorizer */
        relu_span(in + i0, out + i0, n);
    else if (act == ACT_SIGMOID)
        sigmoid_span(in + i0, out + i0, n);
    else
        for (int64_t i = i0; i < i0 + n; i++)
            out[i] = act_apply(act, eps, in[i]);
}

void act_backward_rows(layer *l, const float *in, const float *dout, float *din, int first, int end)
{
    const int64_t D = l->out_dim, i0 = first * D, n = (end - first) * D;
    const act_kind act = l->act;
    const float eps = l->eps;
    const float *out = l->out;
    if (act == ACT_RELU)
        relu_backward_span(in + i0, dout + i0, din + i0, n);
    else if (act == ACT_SIGMOID)
        sigmoid_backward_span(out + i0, dout + i0, din + i0, n);
    else
        for (int64_t i = i0; i < i0 + n; i++)
            din[i] = dout[i] * act_derivative(act, eps, in[i], out[i]);
}

void act_forward(layer *l, const float *in, int B)
{
#pragma omp parallel if ((int64_t)B * l->out_dim > ACT_OMP_MIN)
    {
        int first, end;
        omp_rows(B, &first, &end);
        act_forward_rows(l, in, first, end);
    }
}

void act_backward(layer *l, const float *in, const float *dout, float *din, int B)
{
#pragma omp parallel if ((int64_t)B * l->out_dim > ACT_OMP_MIN)
    {
        int first, end;
        omp_rows(B, &first, &end);
        act_backward_rows(l, in, dout, din, first, end);
    }
}

const char *act_name(act_kind act)
{
    static const char *const names[] = {"identity", "relu",       "sigmoid", "tanh",
                                        "step",     "smoothstep", "step_ste"};
    return (unsigned)act < sizeof names / sizeof names[0] ? names[act] : "?";
}
