/* optim.c — choosing an optimizer: defaults, state sizes, dispatch, names. */
#include "anamo.h"
#include "optim/optim.h"

#include <string.h>

#define TORCH_EPS 1e-8f          /* torch.optim.Adam's and RMSprop's eps */
#define TORCH_ADAGRAD_EPS 1e-10f /* torch.optim.Adagrad's */
#define TORCH_ADAM_LR 1e-3f      /* torch.optim.Adam's lr */
#define TORCH_ADAPTIVE_LR 1e-2f  /* torch.optim.Adagrad's and RMSprop's */
#define ANAMO_SGD_LR 1e-3f       /* anamo's choice: torch.optim.SGD has no default lr */

optim_cfg optim_defaults(optim_kind kind, float lr)
{
    optim_cfg cfg = {.kind = kind,
                     .lr = lr,
                     .beta1 = 0.9f,
                     .beta2 = 0.999f,
                     .eps = TORCH_EPS,
                     .momentum = 0.9f,
                     .alpha = 0.99f};
    if (kind == OPTIM_ADAGRAD)
        cfg.eps = TORCH_ADAGRAD_EPS;
    return cfg;
}

float optim_default_lr(optim_kind kind)
{
    switch (kind) {
    case OPTIM_ADAM: return TORCH_ADAM_LR;
    case OPTIM_ADAGRAD:
    case OPTIM_RMSPROP: return TORCH_ADAPTIVE_LR;
    default: return ANAMO_SGD_LR;
    }
}

int64_t optim_state_floats(optim_kind kind, int64_t n)
{
    switch (kind) {
    case OPTIM_ADAM: return 2 * n; /* m, v */
    case OPTIM_MOMENTUM:
    case OPTIM_NESTEROV: return n; /* the velocity b */
    case OPTIM_ADAGRAD: return n;  /* Σ g² */
    case OPTIM_RMSPROP: return n;  /* v */
    case OPTIM_ACCELERATED:
    case OPTIM_FISTA: return 2 * n + 1; /* x_j, x_{j−1}, s_j */
    case OPTIM_SGD:
    default: return 0;
    }
}

void optim_step(const optim_cfg *cfg, float *theta, const float *grad, float *state, int64_t n,
                int64_t t)
{
    switch (cfg->kind) {
    case OPTIM_ADAM: optim_adam_step(cfg, theta, grad, state, state + n, n, t); break;
    case OPTIM_MOMENTUM: optim_momentum_step(cfg, theta, grad, state, n, t); break;
    case OPTIM_NESTEROV: optim_nesterov_step(cfg, theta, grad, state, n, t); break;
    case OPTIM_ADAGRAD: optim_adagrad_step(cfg, theta, grad, state, n); break;
    case OPTIM_RMSPROP: optim_rmsprop_step(cfg, theta, grad, state, n); break;
    case OPTIM_ACCELERATED:
    case OPTIM_FISTA: optim_fista_step(cfg, theta, grad, state, n, t); break;
    case OPTIM_SGD:
    default: optim_sgd_step(cfg, theta, grad, n); break;
    }
    /* accelerated methods project their iterate inside the step; the others, what they made */
    if (cfg->kind != OPTIM_ACCELERATED && cfg->kind != OPTIM_FISTA)
        norm_groups_project(cfg->unit_norm, theta);
}

void optim_reset_coords(optim_kind kind, const float *theta, float *state, int64_t n,
                        const int64_t *coords, int64_t count)
{
    if (!state)
        return;
    for (int64_t c = 0; c < count; c++) {
        const int64_t i = coords[c];
        switch (kind) {
        case OPTIM_ADAM: state[i] = 0.0f, state[n + i] = 0.0f; break; /* m, v */
        case OPTIM_MOMENTUM:
        case OPTIM_NESTEROV: /* b = 0: the next step is b = β·0 + g, as from rest */
        case OPTIM_ADAGRAD:
        case OPTIM_RMSPROP: state[i] = 0.0f; break;
        case OPTIM_ACCELERATED:
        case OPTIM_FISTA: ACCEL_X(state)[i] = ACCEL_X_PREV(state, n)[i] = theta[i]; break;
        case OPTIM_SGD:
        default: break;
        }
    }
}

void optim_finish(const optim_cfg *cfg, float *theta, const float *state, int64_t n)
{
    if (cfg->kind == OPTIM_ACCELERATED || cfg->kind == OPTIM_FISTA)
        accel_finish(theta, state, n);
}

/* The kinds are the public enumerations' values (anamo.h; checkpoints store them), and their
 * names are the public table's (src/core/names.c). */
_Static_assert((int)OPTIM_SGD == ANAMO_OPT_SGD && (int)OPTIM_ADAM == ANAMO_OPT_ADAM &&
                   (int)OPTIM_MOMENTUM == ANAMO_OPT_MOMENTUM &&
                   (int)OPTIM_ACCELERATED == ANAMO_OPT_ACCELERATED &&
                   (int)OPTIM_ADAGRAD == ANAMO_OPT_ADAGRAD &&
                   (int)OPTIM_RMSPROP == ANAMO_OPT_RMSPROP && (int)OPTIM_FISTA == ANAMO_OPT_FISTA &&
                   (int)OPTIM_NESTEROV == ANAMO_OPT_NESTEROV,
               "optim_kind mirrors anamo_optimizer");
_Static_assert((int)PROX_L1_NONNEG == ANAMO_PROX_L1_NONNEG &&
                   (int)RESTART_GRADIENT == ANAMO_RESTART_GRADIENT &&
                   (int)SCHED_PLATEAU == ANAMO_SCHEDULE_PLATEAU &&
                   (int)NORM_BALL == ANAMO_DECODER_NORM_BALL,
               "prox, restart, schedule and norm kinds mirror anamo.h's");

static const char *name_of(anamo_enum e, int value)
{
    const char *name = anamo_enum_name(e, value);
    return name ? name : "?";
}

const char *optim_name(optim_kind kind) { return name_of(ANAMO_ENUM_OPTIMIZER, (int)kind); }
int optim_parse(const char *s) { return anamo_enum_parse(ANAMO_ENUM_OPTIMIZER, s); }
const char *prox_name(prox_kind kind) { return name_of(ANAMO_ENUM_PROX, (int)kind); }
int prox_parse(const char *s) { return anamo_enum_parse(ANAMO_ENUM_PROX, s); }
const char *restart_name(restart_kind kind) { return name_of(ANAMO_ENUM_RESTART, (int)kind); }
int restart_parse(const char *s) { return anamo_enum_parse(ANAMO_ENUM_RESTART, s); }
const char *schedule_name(schedule_kind kind) { return name_of(ANAMO_ENUM_SCHEDULE, (int)kind); }
int schedule_parse(const char *s) { return anamo_enum_parse(ANAMO_ENUM_SCHEDULE, s); }
