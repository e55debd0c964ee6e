/* optim.c — choosing an optimizer: defaults, state sizes, dispatch, names. */
#include "optim/optim.h"

#include <string.h>

#define TORCH_EPS 1e-8f         /* torch.optim.Adam's and RMSprop's eps */
#define TORCH_ADAGRAD_EPS 1e-10f /* torch.optim.Adagrad's */
#define TORCH_ADAM_LR 1e-3f      /* torch.optim.Adam's lr */
#define TORCH_ADAPTIVE_LR 1e-2f  /* torch.optim.Adagrad's and RMSprop's */
#define ANAMO_SGD_LR 1e-3f       /* anamo's choice: torch.optim.SGD has no default lr */

optim_cfg optim_defaults(optim_kind kind, float lr)
{
    optim_cfg cfg = {.kind = kind, .lr = lr, .beta1 = 0.9f, .beta2 = 0.999f, .eps = TORCH_EPS,
                     .momentum = 0.9f, .alpha = 0.99f};
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
    case OPTIM_ADAM: return 2 * n;      /* m, v */
    case OPTIM_MOMENTUM:
    case OPTIM_NESTEROV: return n;      /* the velocity b */
    case OPTIM_ADAGRAD: return n;       /* Σ g² */
    case OPTIM_RMSPROP: return n;       /* v */
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

static const char *const OPTIM_NAMES[] = {"sgd",     "adam",    "momentum", "accelerated",
                                          "adagrad", "rmsprop", "fista",    "nesterov"};
static const char *const PROX_NAMES[] = {"none", "l1", "nonneg", "l1_nonneg"};
static const char *const RESTART_NAMES[] = {"none", "function", "gradient"};
static const char *const SCHEDULE_NAMES[] = {"constant", "step", "plateau"};
static const char *const NORM_NAMES[] = {"none", "sphere", "ball"};

static int find_name(const char *const *names, int count, const char *s)
{
    for (int i = 0; i < count; i++)
        if (!strcmp(names[i], s))
            return i;
    return -1;
}

const char *optim_name(optim_kind kind)
{
    return (unsigned)kind < OPTIM_COUNT ? OPTIM_NAMES[kind] : "?";
}
int optim_parse(const char *s) { return find_name(OPTIM_NAMES, OPTIM_COUNT, s); }
const char *prox_name(prox_kind kind)
{
    return (unsigned)kind < PROX_COUNT ? PROX_NAMES[kind] : "?";
}
int prox_parse(const char *s) { return find_name(PROX_NAMES, PROX_COUNT, s); }
const char *restart_name(restart_kind kind)
{
    return (unsigned)kind < RESTART_COUNT ? RESTART_NAMES[kind] : "?";
}
int restart_parse(const char *s) { return find_name(RESTART_NAMES, RESTART_COUNT, s); }
const char *schedule_name(schedule_kind kind)
{
    return (unsigned)kind < SCHED_COUNT ? SCHEDULE_NAMES[kind] : "?";
}
int schedule_parse(const char *s) { return find_name(SCHEDULE_NAMES, SCHED_COUNT, s); }
const char *norm_kind_name(norm_kind kind)
{
    return (unsigned)kind < NORM_COUNT ? NORM_NAMES[kind] : "?";
}
int norm_kind_parse(const char *s) { return find_name(NORM_NAMES, NORM_COUNT, s); }
