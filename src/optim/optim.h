/* optim.h — optimizers as loops over a flat span of parameters.
 * Each optimizer keeps its state (moments, velocities, the last iterate, the momentum sequence)
 * in the block's opt_state buffer, laid out as whole spans of n floats and then any scalars
 * (Adam: m then v; FISTA: x then s). A new optimizer is: one enum value, one state size, one
 * step function cited against its paper, one line in optim_step.
 * sgd, momentum, nesterov, adagrad, rmsprop and adam are torch.optim's (SGD, SGD(momentum),
 * SGD(momentum, nesterov=True), Adagrad, RMSprop, Adam), checked against trajectories recorded
 * from PyTorch 1.13 (tests/test_optim_torch.c); accelerated and fista are the seeds' s_j methods,
 * which PyTorch does not have. */
#ifndef ANAMO_OPTIM_OPTIM_H
#define ANAMO_OPTIM_OPTIM_H

#include <stdint.h>

/* The values are stored in checkpoints (train_progress.opt_kind): append, never renumber.
 * OPTIM_ACCELERATED was called "nesterov" until that name went to torch's Nesterov momentum. */
typedef enum optim_kind {
    OPTIM_SGD = 0,
    OPTIM_ADAM,
    OPTIM_MOMENTUM,    /* heavy ball (Polyak 1964) as torch.optim.SGD(momentum=β) */
    OPTIM_ACCELERATED, /* accelerated gradient with the s_j sequence = FISTA without a prox */
    OPTIM_ADAGRAD,
    OPTIM_RMSPROP,
    OPTIM_FISTA,    /* proximal gradient with the s_j momentum (Beck & Teboulle 2009) */
    OPTIM_NESTEROV, /* torch.optim.SGD(momentum=β, nesterov=True) (Sutskever et al. 2013) */
    OPTIM_COUNT
} optim_kind;

typedef enum prox_kind {
    PROX_NONE = 0,
    PROX_L1,        /* soft threshold: sign(v)·max(|v| − τ, 0) */
    PROX_NONNEG,    /* projection onto v ≥ 0 */
    PROX_L1_NONNEG, /* max(v − τ, 0): soft threshold then projection */
    PROX_COUNT
} prox_kind;

typedef enum restart_kind {
    RESTART_NONE = 0,
    RESTART_FUNCTION, /* O'Donoghue & Candès 2015: restart when F(x_{j+1}) > F(x_j) */
    RESTART_GRADIENT, /* … when (y_j − x_{j+1})·(x_{j+1} − x_j) > 0 */
    RESTART_COUNT
} restart_kind;

/* Groups of parameters held to unit ℓ2 norm: the decoder's first-layer columns (one per code
 * unit) or, for a transposed convolution, the kernel slice of each input channel. Group g is the
 * len floats at offset + g·group_stride + i·elem_stride (i < len) of the block's span.
 *   sphere  every group has norm 1 (a zero group stays 0: it has no direction)
 *   ball    every group has norm ≤ 1 (longer ones are scaled back to 1) */
typedef enum norm_kind { NORM_NONE = 0, NORM_SPHERE, NORM_BALL, NORM_COUNT } norm_kind;
typedef struct norm_groups {
    norm_kind kind;
    int64_t offset, count, len, group_stride, elem_stride;
} norm_groups;

typedef struct optim_cfg {
    optim_kind kind;
    float lr;
    float beta1, beta2, eps; /* Adam (PyTorch 0.9, 0.999, 1e-8); eps also AdaGrad (1e-10),
                                RMSProp (1e-8) */
    float momentum;          /* β of momentum and nesterov */
    float alpha;             /* RMSProp smoothing constant (PyTorch 0.99) */
    float weight_decay;      /* L2 added to the gradient, as PyTorch's weight_decay */
    prox_kind prox;          /* FISTA's prox of lr·prox_lambda·h */
    float prox_lambda;
    restart_kind restart;     /* accelerated methods; RESTART_FUNCTION is the caller's call */
    const float *prox_weight; /* NULL, or per-coordinate weights of the prox's τ, element i
                                 taking prox_weight[i % prox_period] (a weighted soft
                                 threshold over rows of prox_period code units) */
    int64_t prox_period;
    const norm_groups *unit_norm; /* NULL, or groups projected onto their set after each step
                                     (accelerated methods: the iterate x_{j+1}, inside the step) */
} optim_cfg;

/* PyTorch's defaults for kind at learning rate lr (AdaGrad eps 1e-10, RMSProp alpha 0.99 and
 * eps 1e-8, Adam 0.9/0.999/1e-8; momentum 0.9, which torch.optim.SGD leaves to the caller). */
optim_cfg optim_defaults(optim_kind kind, float lr);
/* The learning rate a config gets when it names none: PyTorch's default where it has one
 * (Adam 1e-3, Adagrad 1e-2, RMSprop 1e-2); torch.optim.SGD has none, and anamo takes 1e-3 for
 * sgd, momentum, nesterov and the accelerated methods. */
float optim_default_lr(optim_kind kind);
/* Floats of state the optimizer needs for n parameters. */
int64_t optim_state_floats(optim_kind kind, int64_t n);
/* One update of theta (n) from grad; t is the 1-based count of updates including this one
 * (t == 1 initialises the state from theta where the method needs it). */
void optim_step(const optim_cfg *cfg, float *theta, const float *grad, float *state, int64_t n,
                int64_t t);
/* Restarts the state of the coordinates coords[0..count) of theta (n) as if they had never been
 * stepped: Adam's, AdaGrad's and RMSProp's sums and momentum's and nesterov's velocities to 0,
 * accelerated methods' x_j, x_{j−1} to theta's (new) values, so no momentum carries into them. */
void optim_reset_coords(optim_kind kind, const float *theta, float *state, int64_t n,
                        const int64_t *coords, int64_t count);
/* For methods whose parameters hold an extrapolated point (accelerated, fista): copies the last
 * iterate x_j from the state into theta, e.g. at the end of a phase. No-op for the others. */
void optim_finish(const optim_cfg *cfg, float *theta, const float *state, int64_t n);

void optim_sgd_step(const optim_cfg *cfg, float *theta, const float *grad, int64_t n);
void optim_adam_step(const optim_cfg *cfg, float *theta, const float *grad, float *m, float *v,
                     int64_t n, int64_t t);
/* torch.optim.SGD(momentum=β, dampening 0): g ← ∇ + wd·θ; b ← g at t == 1, else β·b + g;
 * θ ← θ − lr·b. State: the velocity b. */
void optim_momentum_step(const optim_cfg *cfg, float *theta, const float *grad, float *buf,
                         int64_t n, int64_t t);
/* torch.optim.SGD(momentum=β, nesterov=True): b as above; θ ← θ − lr·(g + β·b). */
void optim_nesterov_step(const optim_cfg *cfg, float *theta, const float *grad, float *buf,
                         int64_t n, int64_t t);
/* torch.optim.Adagrad: sum += g²; θ −= lr·g/(√sum + eps) */
void optim_adagrad_step(const optim_cfg *cfg, float *theta, const float *grad, float *sum,
                        int64_t n);
/* torch.optim.RMSprop: v = α v + (1 − α) g²; θ −= lr·g/(√v + eps) */
void optim_rmsprop_step(const optim_cfg *cfg, float *theta, const float *grad, float *v, int64_t n);

/* ---- accelerated methods (accel.c) --------------------------------------------------------
 * Parameters hold the extrapolated point y_j, where the gradient is evaluated; the state holds
 * the last iterate x_j (n floats), the one before, x_{j−1} (n floats), and s_j (1 float):
 *     x_{j+1} = prox_{lr}(y_j − lr·∇f(y_j))
 *     s_{j+1} = (1 + √(1 + 4 s_j²))/2,  s_0 = 1
 *     y_{j+1} = x_{j+1} + ((s_j − 1)/s_{j+1})·(x_{j+1} − x_j)
 * optim_fista_step is the whole step; a method that makes x_{j+1} its own way (ANAMO's encoder,
 * with an iterative prox) runs the sequence itself: accel_start, then per iteration x_{j+1} into
 * theta and accel_advance, and at the end accel_finish. */
double accel_next_s(double s);
/* x_0 = y_0 = theta, s_0 = 1: the sequence (re)starts at theta. */
void accel_start(const float *theta, float *state, int64_t n);
/* From x_{j+1} in theta (and x_j, s_j in the state): theta ← y_{j+1}, x_j ← x_{j+1},
 * s ← s_{j+1}; with restart, s_{j+1} = 1 and y_{j+1} = x_{j+1} (no momentum). x_{j−1} is left
 * as it is. */
void accel_advance(float *theta, float *state, int64_t n, int restart);
/* O'Donoghue & Candès' gradient test: (y_j − x_{j+1})·(x_{j+1} − x_j) > 0, the step from y_j
 * went against the momentum (x_j from the state). */
int accel_against_momentum(const float *y_j, const float *x_next, const float *state, int64_t n);
/* theta ← x_j: the sequence's result is its last iterate, not the extrapolated y_j. */
void accel_finish(float *theta, const float *state, int64_t n);
/* t == 1 sets x_0 = y_0 = theta and s_0 = 1 (the sequence restarts). */
void optim_fista_step(const optim_cfg *cfg, float *y, const float *grad, float *state, int64_t n,
                      int64_t t);
/* Function-value restart, for a caller that finds F(x_{j+1}) > F(x_j): the step is undone and
 * the sequence restarts from the better point, x_{j+1} = y_{j+1} = x_j, s = 1, so the
 * objective at the iterates never increases (as Beck and Teboulle's monotone FISTA). */
void accel_restart(float *y, float *state, int64_t n);
#define ACCEL_X(state) (state)
#define ACCEL_X_PREV(state, n) ((state) + (n))
#define ACCEL_S(state, n) ((state)[2 * (n)])

/* prox.c: v ← prox of tau·h(v) for the prox kind (tau = lr·prox_lambda). */
void prox_apply(prox_kind kind, float tau, float *v, int64_t n);
/* The same for one value (the operators are separable). */
static inline float prox_scalar(prox_kind kind, float tau, float v)
{
    switch (kind) {
    case PROX_L1: {
        float mag = (v > 0.0f ? v : -v) - tau; /* |v| − τ */
        mag = mag > 0.0f ? mag : 0.0f;
        return v > 0.0f ? mag : -mag;
    }
    case PROX_NONNEG: return v > 0.0f ? v : 0.0f;
    case PROX_L1_NONNEG: return v - tau > 0.0f ? v - tau : 0.0f;
    case PROX_NONE:
    default: return v;
    }
}

/* ---- unit-norm groups (constraint.c) ----------------------------------------------------- */
/* ‖group g‖₂ of theta. */
double norm_groups_norm(const norm_groups *g, const float *theta, int64_t group);
/* Every group onto the sphere or into the ball (g->kind); NORM_NONE or NULL: nothing. */
void norm_groups_project(const norm_groups *g, float *theta);
/* Group k alone. */
void norm_groups_project_one(const norm_groups *g, float *theta, int64_t k);
/* Sphere only: removes from each group of grad its component along the group of theta,
 * grad_g ← grad_g − (grad_g·w_g / ‖w_g‖²)·w_g, so that a step (and the moments an adaptive
 * method keeps of grad) moves along the sphere, not against the projection that follows. */
void norm_groups_tangent(const norm_groups *g, const float *theta, float *grad);

/* ---- backtracking (backtrack.c) -----------------------------------------------------------
 * Beck & Teboulle (2009), FISTA with backtracking: from L = L_prev, take L ← η·L until
 *     f(p) ≤ f(y) + ⟨p − y, ∇f(y)⟩ + (L/2)‖p − y‖²,   p = prox_{1/L}(y − ∇f(y)/L)
 * (the sufficient-decrease condition). f_at(ctx, p) returns f at p. Writes p into out and
 * returns the accepted L (or the last one tried, after max_tries, with *ok = 0). With unit-norm
 * groups (unit_norm not NULL) the trial points are projected onto them, so that the accepted
 * point is feasible: p = P(prox_{1/L}(y − ∇f(y)/L)). */
typedef double (*smooth_fn)(void *ctx, const float *point);
double backtrack_step(const float *y, const float *grad, double f_y, double L_prev, double eta,
                      prox_kind prox, float prox_lambda, const norm_groups *unit_norm, float *out,
                      int64_t n, smooth_fn f_at, void *ctx, int max_tries, int *ok);

/* ---- learning-rate schedules (schedule.c) -------------------------------------------------
 * Applied at the end of each epoch to the phase's learning rate.
 *   constant   lr
 *   step       lr·gamma^⌊epoch/step_size⌋                       (torch StepLR)
 *   plateau    lr·factor when the monitored loss has not improved by a relative threshold
 *              for more than `patience` epochs, never below min_lr (torch ReduceLROnPlateau,
 *              mode min, threshold_mode rel, cooldown 0) */
typedef enum schedule_kind {
    SCHED_CONSTANT = 0,
    SCHED_STEP,
    SCHED_PLATEAU,
    SCHED_COUNT
} schedule_kind;
typedef struct schedule_cfg {
    schedule_kind kind;
    int step_size;
    float gamma;
    float factor, threshold, min_lr;
    int patience;
} schedule_cfg;
typedef struct schedule_state {
    float lr;       /* the current learning rate */
    double best;    /* plateau: best loss so far (INFINITY at first) */
    int bad_epochs; /* plateau: epochs since the best */
    int64_t epochs; /* epochs seen */
} schedule_state;
schedule_cfg schedule_defaults(schedule_kind kind);
void schedule_init(schedule_state *s, float base_lr);
/* After an epoch whose monitored loss was `loss`: updates s->lr (returns it). */
float schedule_epoch_end(const schedule_cfg *cfg, schedule_state *s, float base_lr, double loss);

const char *optim_name(optim_kind kind);
int optim_parse(const char *s); /* -1 if unknown */
const char *prox_name(prox_kind kind);
int prox_parse(const char *s);
const char *restart_name(restart_kind kind);
int restart_parse(const char *s);
const char *schedule_name(schedule_kind kind);
int schedule_parse(const char *s);

#endif
