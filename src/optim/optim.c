/* optim.c — choosing an optimizer: defaults, state sizes, dispatch. */
#include "optim/optim.h"

#include <string.h>

optim_cfg optim_defaults(optim_kind kind, float lr)
{
    optim_cfg cfg = {.kind = kind, .lr = lr, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f,
                     .weight_decay = 0.0f};
    return cfg;
}

int64_t optim_state_floats(optim_kind kind, int64_t n)
{
    switch (kind) {
    case OPTIM_ADAM: return 2 * n; /* m, v */
    case OPTIM_SGD:
    default: return 0;
    }
}

void optim_step(const optim_cfg *cfg, float *theta, const float *grad, float *state, int64_t n,
                int64_t t)
{
    switch (cfg->kind) {
    case OPTIM_ADAM: optim_adam_step(cfg, theta, grad, state, state + n, n, t); break;
    case OPTIM_SGD:
    default: optim_sgd_step(cfg, theta, grad, n); break;
    }
}

const char *optim_name(optim_kind kind)
{
    return kind == OPTIM_ADAM ? "adam" : "sgd";
}

int optim_parse(const char *s)
{
    if (!strcmp(s, "sgd"))
        return OPTIM_SGD;
    if (!strcmp(s, "adam"))
        return OPTIM_ADAM;
    return -1;
}
