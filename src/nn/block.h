/* block.h — a parameter block (the encoder or the decoder): a stack of layers whose parameters,
 * gradients and optimizer state each live in ONE contiguous buffer (llm.c's
 * malloc_and_point_parameters). An optimizer, freezing, a checkpoint or an all-reduce is then a
 * loop over a flat span. */
#ifndef ANAMO_NN_BLOCK_H
#define ANAMO_NN_BLOCK_H

#include "nn/layer.h"

#define BLOCK_MAX_LAYERS 64
#define BLOCK_MAX_PARAMS (2 * BLOCK_MAX_LAYERS)
#define BLOCK_MAX_BUFFERS (3 * BLOCK_MAX_LAYERS)
#define PARAM_NAME_MAX 64

typedef enum param_role {
    PARAM_WEIGHT = 0, /* initialised by the scheme (fan_in, fan_out) */
    PARAM_BIAS,       /* initialised by the scheme (fan_in) or 0 */
    PARAM_ONES,       /* batch norm's γ: 1 */
    PARAM_ZEROS       /* batch norm's β: 0 */
} param_role;

/* One named parameter tensor: a view into the block's flat buffers. */
typedef struct param_ref {
    char name[PARAM_NAME_MAX]; /* PyTorch state_dict name, e.g. "encoder.0.weight" */
    int ndim;
    int64_t shape[ANAMO_MAX_DIMS];
    int64_t numel;
    int64_t offset;          /* into params/grads */
    int64_t fan_in, fan_out; /* for initializers */
    param_role role;
    int is_bias;
} param_ref;

/* A named state tensor that is not optimized: batch norm's running statistics. */
typedef struct buffer_ref {
    char
        name[PARAM_NAME_MAX]; /* "encoder.1.running_mean", "…running_var", "…num_batches_tracked" */
    int is_count;             /* int64 scalar (num_batches_tracked) instead of floats */
    float *data;
    int64_t *count;
    int64_t numel;
} buffer_ref;

typedef struct block {
    char name[16]; /* "encoder" | "decoder": prefix of parameter names */
    int nlayers;
    layer layers[BLOCK_MAX_LAYERS];
    int nparams_tensors;
    param_ref params_ref[BLOCK_MAX_PARAMS];
    int64_t nparams; /* floats in params (and in grads) */
    float *params;
    float *grads;
    int64_t nstate;   /* floats in opt_state */
    float *opt_state; /* sized by the optimizer (optim_state_floats) */
    int nbuffers;
    buffer_ref buffers_ref[BLOCK_MAX_BUFFERS];
    float *buffers;                   /* running statistics, one span */
    int64_t counts[BLOCK_MAX_LAYERS]; /* num_batches_tracked of each batch-norm layer */
    int64_t nbuffer_floats;
    int in_c, in_h, in_w, out_c, out_h, out_w;
    int64_t in_dim, out_dim;
    int max_batch;
    anamo_conv_impl conv_impl; /* how its convolutions run */
    conv_dnnl_work *dnnl_work; /* the oneDNN layers' shared work spans, or NULL */
    int training;              /* batch norm uses batch statistics and updates running ones */
    float *scratch[2];         /* backward ping-pong buffers, (max_batch, widest layer) */
    float *rows[2];            /* sample-major copies of channel-major outputs */
    const float *input;        /* the input of the last forward (first layer reads it) */
    const float *output;       /* what the last block_forward returned */
    anamo_work work;           /* every pass since block_create (see anamo_work) */
} block;

/* Builds a block from a layer list such as "linear 128, relu, linear 64, relu" for inputs of
 * shape (in_c, in_h, in_w) (features: (F, 1, 1)); see spec.c for the items. Errors name the
 * item and what is allowed. conv_impl: how its convolutions run (see anamo_conv_impl). */
int block_create(block *b, const char *name, const char *spec, int in_c, int in_h, int in_w,
                 int max_batch, anamo_conv_impl conv_impl, anamo_err *err);
/* The layers and parameter tensors (names, shapes) block_create would make, without allocating
 * anything (b needs no block_free): what a checkpoint's tensors must match before a model is
 * built from its metadata. */
int block_plan(block *b, const char *name, const char *spec, int in_c, int in_h, int in_w,
               anamo_err *err);
/* spec.c: parses one item onto the block's layer list, advancing the running shape. */
int spec_add_layer(block *b, const char *item, int *c, int *h, int *w, int *cm, anamo_err *err);
/* Batch statistics and running-statistics updates (1), or running statistics (0). */
void block_set_training(block *b, int on);
/* The input of the last layer at the last forward, sample-major (the logits before a final
 * sigmoid). */
const float *block_last_input(block *b, int B);
void block_free(block *b);

/* Initial weights from rng (see anamo_init_kind). */
void block_init(block *b, anamo_init_kind init, float scale, anamo_rng *rng);

/* Forward through every layer; returns the output (B, out_dim) sample-major (NCHW), valid
 * until the next forward. */
const float *block_forward(block *b, const float *x, int B);
/* Forward through layers [0, upto): returns layer upto-1's output (x itself if upto is 0). */
const float *block_forward_upto(block *b, const float *x, int B, int upto);

/* Backward from the gradient (sample-major) of layer (last - 1)'s output, through layers
 * last-1 … 0.
 * need_dx: return the gradient with respect to the block input (else NULL is returned);
 * need_dw: fill the block's grads. Layers whose input gradient nobody needs are skipped. */
float *block_backward_from(block *b, int last, const float *dout, int B, int need_dx, int need_dw);
float *block_backward(block *b, const float *dout, int B, int need_dx, int need_dw);
/* The same through layers last-1 … first only: returns the gradient with respect to layer
 * first's input, in layer first's input layout (NULL when need_dx is 0). */
float *block_backward_span(block *b, int first, int last, const float *dout, int B, int need_dx,
                           int need_dw);

/* The layer list back as text (canonical form of the spec). */
void block_describe(const block *b, char *buf, size_t size);
/* One layer back as an item of its list ("conv2d 12 k4 s2 p1"); snprintf's return. */
int layer_describe(const layer *l, char *buf, size_t size);

/* Allocates opt_state of nstate floats (zeroed); keeps an existing buffer of that size. */
int block_alloc_state(block *b, int64_t nstate, anamo_err *err);

#endif
