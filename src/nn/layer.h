/* layer.h — the layers of a block, each with its forward and backward written out by hand.
 *
 * Conventions (as llm.c): activations are row-major (B, features); a layer reads its input
 * from the previous layer's output buffer and writes its own `out`. backward takes two
 * switches: need_din (the caller wants the gradient with respect to the input) and need_dw (it
 * wants the weight gradient). A frozen decoder in an encoder phase passes the gradient through
 * with need_dw = 0; a block nobody needs gradients from does no backward at all. */
#ifndef ANAMO_NN_LAYER_H
#define ANAMO_NN_LAYER_H

#include "anamo.h"

typedef enum layer_kind {
    LAYER_LINEAR = 0,
    LAYER_ACT
} layer_kind;

typedef enum act_kind {
    ACT_IDENTITY = 0,
    ACT_RELU,
    ACT_SIGMOID,
    ACT_TANH,
    ACT_STEP,      /* 1 if x > 0 else 0; derivative 0 everywhere it exists */
    ACT_SMOOTHSTEP, /* 3(x/ε)² − 2(x/ε)³ on [0, ε], 0 below, 1 above */
    ACT_STEP_STE    /* forward as step; backward straight through where |x| ≤ 1 (Bengio,
                       Léonard & Courville 2013), so a hard-step code still passes gradient */
} act_kind;

typedef struct layer {
    layer_kind kind;
    int index;          /* position in the block: PyTorch nn.Sequential numbering */
    int64_t in_dim;     /* features per sample in */
    int64_t out_dim;    /* features per sample out */
    /* LAYER_LINEAR: pointers into the block's parameter and gradient buffers */
    float *weight;      /* (out_dim, in_dim), PyTorch's layout */
    float *bias;        /* (out_dim) */
    float *dweight;
    float *dbias;
    /* LAYER_ACT */
    act_kind act;
    float eps;          /* smooth-step width ε */
    float *out;         /* (max_batch, out_dim) activations, owned by the block */
} layer;

/* linear.c: out = in · Wᵀ + b */
void linear_forward(layer *l, const float *in, int B);
void linear_backward(layer *l, const float *in, const float *dout, float *din, int B,
                     int need_din, int need_dw);

/* activation.c: element-wise out = f(in) */
void act_forward(layer *l, const float *in, int B);
void act_backward(layer *l, const float *in, const float *dout, float *din, int B);
const char *act_name(act_kind act);
/* Element-wise f for one value (tests and the code-statistics use it). */
float act_apply(act_kind act, float eps, float x);

#endif
