/* layer.h — the layers of a block, each with its forward and backward written out by hand.
 *
 * Conventions (as llm.c): a layer reads its input from the previous layer's output buffer and
 * writes its own `out`. backward takes two switches: need_din (the caller wants the gradient
 * with respect to the input) and need_dw (it wants the weight gradient). A frozen decoder in an
 * encoder phase passes the gradient through with need_dw = 0; a block nobody needs gradients
 * from does no backward at all.
 *
 * Layouts. A batch of B samples of C channels of P = H·W positions is stored either
 *   sample-major  (B, C, H, W): NCHW, PyTorch's layout, what blocks take and give, or
 *   channel-major (C, B, H, W): what a convolution's single batched sgemm produces
 *                 (out (M, B·P) = W (M, K) · col (K, B·P)) and what batch norm and bias want
 *                 (each channel contiguous).
 * Convolutions and batch norm read either and write channel-major; activations keep the
 * layout; flatten turns channel-major into sample-major rows for linear layers; the block
 * converts its last layer's output (and the incoming gradient) so that blocks stay NCHW. */
#ifndef ANAMO_NN_LAYER_H
#define ANAMO_NN_LAYER_H

#include "anamo.h"

#include <omp.h>

typedef enum layer_kind {
    LAYER_LINEAR = 0,
    LAYER_ACT,
    LAYER_CONV2D,    /* nn.Conv2d */
    LAYER_CONVT2D,   /* nn.ConvTranspose2d */
    LAYER_BATCHNORM, /* nn.BatchNorm1d (C features) or nn.BatchNorm2d (C channels) */
    LAYER_FLATTEN,   /* nn.Flatten: (C, H, W) → C·H·W features, sample-major */
    LAYER_UNFLATTEN  /* nn.Unflatten(1, (C, H, W)): features → (C, H, W), no copy */
} layer_kind;

/* Element (b, c, p) of a batch lies at b·sb + c·sc + p. */
typedef struct layout {
    int64_t sb, sc;
} layout;
layout layout_of(int channel_major, int B, int64_t C, int64_t P);

typedef enum act_kind {
    ACT_IDENTITY = 0,
    ACT_RELU,
    ACT_SIGMOID,
    ACT_TANH,
    ACT_STEP,       /* 1 if x > 0 else 0; derivative 0 everywhere it exists */
    ACT_SMOOTHSTEP, /* 3(x/ε)² − 2(x/ε)³ on [0, ε], 0 below, 1 above */
    ACT_STEP_STE    /* forward as step; backward straight through where |x| ≤ 1 (Bengio,
                       Léonard & Courville 2013), so a hard-step code still passes gradient */
} act_kind;

typedef struct conv_dnnl conv_dnnl;           /* conv_dnnl.c's primitives of one layer */
typedef struct conv_dnnl_work conv_dnnl_work; /* their work spans, shared by a block's layers */

typedef struct layer {
    layer_kind kind;
    int index;       /* position in the block: PyTorch nn.Sequential numbering */
    int64_t in_dim;  /* features per sample in */
    int64_t out_dim; /* features per sample out */
    /* LAYER_LINEAR: pointers into the block's parameter and gradient buffers */
    float *weight; /* (out_dim, in_dim), PyTorch's layout */
    float *bias;   /* (out_dim) */
    float *dweight;
    float *dbias;
    /* LAYER_LINEAR with "w=VALUE" / "b=VALUE" in the layer list: every initial weight / bias
     * is that constant instead of a draw of the model's init kind */
    int has_const_weight, has_const_bias;
    float const_weight, const_bias;
    /* LAYER_ACT */
    act_kind act;
    float eps;  /* smooth-step width ε; batch norm's ε */
    float *out; /* (max_batch, out_dim) activations, owned by the block */
    /* shapes and layouts */
    int in_c, in_h, in_w, out_c, out_h, out_w;
    int in_cm, out_cm; /* input / output channel-major */
    /* LAYER_CONV2D, LAYER_CONVT2D: kernel, stride, padding, output padding; weight is
     * (out_c, in_c, k, k) for Conv2d and (in_c, out_c, k, k) for ConvTranspose2d */
    int k, stride, pad, out_pad;
    float *col;      /* (in_c·k·k, max_batch·out_h·out_w) im2col of the input (conv), or
                           (out_c·k·k, max_batch·in_h·in_w) work span (transposed conv; on
                           oneDNN only col_slots of its forward's slices, convt2d_col_floats) */
    int col_slots;   /* transposed conv: the forward's slices l->col holds at once */
    float *inbuf;    /* transposed conv with a sample-major input: it, channel-major */
    conv_dnnl *dnnl; /* not NULL: the layer runs on oneDNN's primitives (Conv2d: no col;
                           ConvTranspose2d: its backward only, see conv.c) */
    /* LAYER_BATCHNORM: weight = γ, bias = β (params); running statistics (block buffers) */
    float *running_mean, *running_var;
    int64_t *num_batches_tracked;
    float momentum;
    float *save_mean, *save_invstd; /* (C) batch statistics of the last training forward */
    int training;                   /* batch statistics (1) or running statistics (0) */
} layer;

/* conv.c: Conv2d and ConvTranspose2d by im2col/col2im and one sgemm over the batch */
void conv2d_forward(layer *l, const float *in, int B);
void conv2d_backward(layer *l, const float *in, const float *dout, float *din, int B, int need_din,
                     int need_dw);
void convt2d_forward(layer *l, const float *in, int B);
/* The floats of a transposed convolution's l->col for batches of up to max_batch, and into
 * *slots the forward slices it holds at once: the whole batch's for the im2col backward, one
 * slice per processor (at most) when only the forward uses it (l->dnnl set). */
int64_t convt2d_col_floats(const layer *l, int max_batch, int *slots);
void convt2d_backward(layer *l, const float *in, const float *dout, float *din, int B, int need_din,
                      int need_dw);
/* conv_dnnl.c: the same layers on oneDNN's primitives, which conv.c's functions call when
 * l->dnnl is set. create fails (the caller may keep im2col) when oneDNN has no primitive for
 * the layer; impl names the implementation oneDNN chose for a part (0 forward, 1 backward data,
 * 2 backward weights), "" for an im2col layer. */
conv_dnnl_work *conv_dnnl_work_create(void); /* NULL: out of memory */
void conv_dnnl_work_free(conv_dnnl_work *w);
int conv_dnnl_create(layer *l, int max_batch, conv_dnnl_work *work, anamo_err *err);
void conv_dnnl_free(conv_dnnl *c);
void conv_dnnl_forward(layer *l, const float *in, int B); /* Conv2d only (see conv.c) */
void conv_dnnl_backward(layer *l, const float *in, const float *dout, float *din, int B,
                        int need_din, int need_dw);
const char *conv_dnnl_impl(const layer *l, int part);
/* batchnorm.c */
void batchnorm_forward(layer *l, const float *in, int B);
void batchnorm_backward(layer *l, const float *in, const float *dout, float *din, int B,
                        int need_din, int need_dw);
/* Copies a (B, C, P) batch between layouts. */
void layout_convert(const float *src, int src_cm, float *dst, int dst_cm, int B, int64_t C,
                    int64_t P);

/* gemm.c: row-major C = op(A)·op(B) + beta·C (ta, tb: 'N' or 'T') on oneDNN's sgemm */
void nn_gemm(char ta, char tb, int M, int N, int K, const float *A, int lda, const float *B,
             int ldb, float beta, float *C, int ldc);

/* [*first, *end): the calling thread's share of n rows in its OpenMP team (all of them outside
 * a parallel region), the shares in order and within one row of each other. */
static inline void omp_rows(int n, int *first, int *end)
{
    const int64_t t = omp_get_thread_num(), nthr = omp_get_num_threads();
    *first = (int)(n * t / nthr);
    *end = (int)(n * (t + 1) / nthr);
}

/* linear.c: out = in · Wᵀ + b. The _rows parts make one block of a result and are called on
 * every thread of a region (one-thread products: oneDNN runs sequentially inside a parallel
 * region); linear_forward and linear_backward are one such region each. */
void linear_forward(layer *l, const float *in, int B);
void linear_backward(layer *l, const float *in, const float *dout, float *din, int B, int need_din,
                     int need_dw);
/* rows [first, end) of out */
void linear_forward_rows(layer *l, const float *in, int first, int end);
/* rows [first, end) of dW and those entries of db, from every one of the B rows of dout, in */
void linear_weight_grad_rows(layer *l, const float *in, const float *dout, int B, int first,
                             int end);
/* rows [first, end) of din */
void linear_input_grad_rows(const layer *l, const float *dout, float *din, int first, int end);
/* Whether a pass of l over B rows has the multiply-adds to be worth splitting across threads. */
int linear_worth_threads(const layer *l, int B);

/* activation.c: element-wise out = f(in), in either layout (the _rows parts: the elements of
 * rows [first, end) of a sample-major batch). din may be dout: in place. */
void act_forward(layer *l, const float *in, int B);
void act_backward(layer *l, const float *in, const float *dout, float *din, int B);
void act_forward_rows(layer *l, const float *in, int first, int end);
void act_backward_rows(layer *l, const float *in, const float *dout, float *din, int first,
                       int end);
const char *act_name(act_kind act);
/* Element-wise f for one value (tests and the code-statistics use it). */
float act_apply(act_kind act, float eps, float x);

#endif
