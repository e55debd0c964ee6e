/* optim.c — choosing an optimizer: defaults, state sizes, dispatch, names. */
#include "optim/optim.h"

#include <string.h>

optim_cfg optim_defaults(optim_kind kind, float lr)
{
    optim_cfg cfg = {.kind = kind, .lr = lr, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f,
                     .momentum = 0.9f, .alpha = 0.99f};
    if (kind == OPTIM_ADAGRAD)
        cfg.eps = 1e-10f; /* torch.optim.Adagrad's default */
    return cfg;
}

int64_t optim_state_floats(optim_kind kind, int64_t n)
{
    switch (kind) {
    case OPTIM_ADAM: return 2 * n;      /* m, v */
    case OPTIM_MOMENTUM: return n;      /* w_{t−1} */
    case OPTIM_ADAGRAD: return n;       /* Σ g² */
    case OPTIM_RMSPROP: return n;       /* v */
    case OPTIM_NESTEROV:
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
    case OPTIM_ADAGRAD: optim_adagrad_step(cfg, theta, grad, state, n); break;
    case OPTIM_RMSPROP: optim_rmsprop_step(cfg, theta, grad, state, n); break;
    case OPTIM_NESTEROV:
    case OPTIM_FISTA: optim_fista_step(cfg, theta, grad, state, n, t); break;
    case OPTIM_SGD:
    default: optim_sgd_step(cfg, theta, grad, n); break;
    }
    /* accelerated methods project their iterate inside the step; the others, what they made */
    if (cfg->kind != OPTIM_NESTEROV && cfg->kind != OPTIM_FISTA)
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
        case OPTIM_MOMENTUM: state[i] = theta[i]; break;               /* w_{t−1} = w_t */
        case OPTIM_ADAGRAD:
        case OPTIM_RMSPROP: state[i] = 0.0f; break;
        case OPTIM_NESTEROV:
        case OPTIM_FISTA: ACCEL_X(state)[i] = ACCEL_X_PREV(state, n)[i] = theta[i]; break;
        case OPTIM_SGD:
        default: break;
        }
    }
}

void optim_finish(const optim_cfg *cfg, float *theta, const float *state, int64_t n)
{
    if (cfg->kind == OPTIM_NESTEROV || cfg->kind == OPTIM_FISTA)
        memcpy(theta, state, (size_t)n * sizeof *theta); /* the iterate x_j, not y_j */
}

static const char *const OPTIM_NAMES[] = {"sgd",     "adam",    "momentum", "nesterov",
                                          "adagrad", "rmsprop", "fista"};
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
