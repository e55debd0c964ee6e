/* optim.h — optimizers as loops over a flat span of parameters.
 * Each optimizer keeps its state (moments, velocities) in the block's opt_state buffer, laid
 * out as whole spans of n floats (Adam: m then v). A new optimizer is: one enum value, one
 * state size, one step function cited against its paper, one line in optim_step. */
#ifndef ANAMO_OPTIM_OPTIM_H
#define ANAMO_OPTIM_OPTIM_H

#include <stdint.h>

typedef enum optim_kind {
    OPTIM_SGD = 0,
    OPTIM_ADAM
} optim_kind;

typedef struct optim_cfg {
    optim_kind kind;
    float lr;
    float beta1, beta2, eps; /* Adam; PyTorch defaults 0.9, 0.999, 1e-8 */
    float weight_decay;      /* L2 added to the gradient, as PyTorch's weight_decay */
} optim_cfg;

/* PyTorch's defaults for kind at learning rate lr. */
optim_cfg optim_defaults(optim_kind kind, float lr);
/* Floats of state the optimizer needs for n parameters. */
int64_t optim_state_floats(optim_kind kind, int64_t n);
/* One update of theta (n) from grad; t is the 1-based count of updates including this one. */
void optim_step(const optim_cfg *cfg, float *theta, const float *grad, float *state, int64_t n,
                int64_t t);

void optim_sgd_step(const optim_cfg *cfg, float *theta, const float *grad, int64_t n);
void optim_adam_step(const optim_cfg *cfg, float *theta, const float *grad, float *m, float *v,
                     int64_t n, int64_t t);

const char *optim_name(optim_kind kind);
int optim_parse(const char *s); /* -1 if unknown */
#define OPTIM_ALLOWED "sgd | adam"

#endif
