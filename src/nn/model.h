/* model.h — the autoencoder: encoder block, decoder block, and the input normalization whose
 * statistics travel with the weights. */
#ifndef ANAMO_NN_MODEL_H
#define ANAMO_NN_MODEL_H

#include "nn/block.h"
#include "optim/optim.h"

#define MODEL_SPEC_MAX 1024

struct anamo_model {
    block enc, dec;
    int in_c, in_h, in_w;
    int64_t in_dim;
    int max_batch;
    int standardize;  /* 1: inputs are (x − mean)/std per feature */
    float *norm_mean; /* (in_dim) */
    float *norm_std;  /* (in_dim), never 0 */
    float *data_mean; /* (in_dim) the training set's mean in the input's scale, or NULL */
    float *xbuf;      /* (max_batch, in_dim): the current batch, normalized */
    char encoder_spec[MODEL_SPEC_MAX];
    char decoder_spec[MODEL_SPEC_MAX];
    anamo_init_kind init;
    float init_scale;
    uint64_t seed;
    int binary_codes; /* codes seen by evaluation are [E(x) ≥ 0.5] */
    float *codebuf;   /* (max_batch, code_dim): a batch of binarized codes */
};

/* Both blocks in evaluation mode (batch norm's running statistics). */
void model_set_eval(anamo_model *m);
/* The codes of the batch in m->xbuf: E(x), or [E(x) ≥ 0.5] when binarize. */
const float *model_codes(anamo_model *m, int B, int binarize);
/* Codes of rows [first, first+count) of ds into codes (count × code_dim). */
int model_encode_rows(anamo_model *m, const anamo_dataset *ds, int64_t first, int64_t count,
                      float *codes, int binarize, anamo_err *err);

/* Fills m->xbuf with rows of ds (by index list, or first.. if idx is NULL), normalized. */
void model_load_batch(anamo_model *m, const anamo_dataset *ds, const int64_t *idx, int64_t first,
                      int B);
/* Normalizes a batch already in raw scale, in place. */
void model_normalize(const anamo_model *m, float *x, int B);
/* Undoes the normalization in place. */
void model_denormalize(const anamo_model *m, float *x, int B);
/* 1 when the decoder ends in a sigmoid and loss is BCE: the loss then reads the logits. */
int model_bce_from_logits(const anamo_model *m, anamo_loss_kind loss);
/* The decoder's first map — its first layer past reshapes (flatten, unflatten, identity) —
 * when it is linear or a transposed convolution: its weight's groups (one per code unit, or
 * per input channel, each read by code_dim / count consecutive code entries) as offsets into
 * the decoder's parameter span, and its layer index. -1 when the first map is anything else
 * (*what then names it). */
int model_code_groups(const anamo_model *m, norm_groups *g, int *layer_index, const char **what);
/* Allocates normalization vectors (mean 0, std 1). */
int model_alloc_norm(anamo_model *m, anamo_err *err);
const char *init_name(anamo_init_kind init);

#endif
