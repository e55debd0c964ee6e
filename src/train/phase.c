/* phase.c — a phase spec, as a config or a program fills it, checked and turned into what the
 * steps use: the optimizer settings, the step rule, the schedule. */
#include "core/err.h"
#include "train/trainer.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* the public enumerations are the internal ones, value for value */
_Static_assert((int)ANAMO_OPT_NESTEROV == (int)OPTIM_NESTEROV, "anamo_optimizer = optim_kind");
_Static_assert((int)ANAMO_PROX_L1_NONNEG == (int)PROX_L1_NONNEG, "anamo_prox = prox_kind");
_Static_assert((int)ANAMO_RESTART_GRADIENT == (int)RESTART_GRADIENT, "anamo_restart");
_Static_assert((int)ANAMO_SCHEDULE_PLATEAU == (int)SCHED_PLATEAU, "anamo_schedule");

anamo_phase anamo_phase_default(const char *name, anamo_phase_kind kind, anamo_optimizer optimizer,
                                float lr, int batch, double epochs)
{
    /* ε is the optimizer's own (AdaGrad's 1e-10, the others' 1e-8); an unknown one gets the
     * common one, and phase_compile names it as the error */
    const int known = (unsigned)optimizer < OPTIM_COUNT;
    const optim_cfg torch = optim_defaults(known ? (optim_kind)optimizer : OPTIM_ADAM, lr);
    anamo_phase ph = {.kind = kind,
                      .opt = {.kind = optimizer,
                              .lr = lr,
                              .beta1 = torch.beta1,
                              .beta2 = torch.beta2,
                              .eps = torch.eps,
                              .momentum = torch.momentum,
                              .alpha = torch.alpha,
                              .prox = ANAMO_PROX_NONE,
                              .restart = ANAMO_RESTART_NONE,
                              .step_rule = ANAMO_STEP_FIXED,
                              .backtrack_eta = 2.0f},
                      .schedule = {.kind = ANAMO_SCHEDULE_CONSTANT,
                                   .step_size = 1,
                                   .gamma = 0.1f,
                                   .patience = 10,
                                   .threshold = 1e-4f,
                                   .factor = 0.1f},
                      .batch = batch,
                      .epochs = epochs,
                      .anamo = {.enc_iters = 5,
                                .dec_iters = 15,
                                .enc_lr = lr,
                                .dec_lr = lr,
                                .prox_iters = 10,
                                .prox_step = 0.5f},
                      .freecodes = {.code_iters = 5,
                                    .dec_iters = 15,
                                    .code_lr = lr,
                                    .dec_lr = lr,
                                    .fit = ANAMO_FIT_AUTO,
                                    .fit_epochs = 20,
                                    .refit_epochs = 2,
                                    .fit_lr = 1e-3f}};
    snprintf(ph.name, sizeof ph.name, "%s", name);
    return ph;
}

/* A value outside its enumeration: the message names the key, the number and what it allows. */
static int bad(anamo_err *err, const anamo_phase *ph, const char *key, int value, anamo_enum e)
{
    return anamo_err_set(err, ANAMO_ERR_CONFIG, "phase '%s': %s %d (allowed: %s)", ph->name, key,
                         value, anamo_enum_allowed(e));
}

static int refuse(anamo_err *err, const anamo_phase *ph, const char *what)
{
    return anamo_err_set(err, ANAMO_ERR_CONFIG, "phase '%s': %s", ph->name, what);
}

static int compile_kinds(const anamo_phase *ph, phase_rt *rt, anamo_err *err)
{
    const anamo_optim_settings *o = &ph->opt;
    if (!anamo_enum_name(ANAMO_ENUM_OPTIMIZER, (int)o->kind))
        return bad(err, ph, "optimizer", (int)o->kind, ANAMO_ENUM_OPTIMIZER);
    if (!anamo_enum_name(ANAMO_ENUM_PROX, (int)o->prox))
        return bad(err, ph, "prox", (int)o->prox, ANAMO_ENUM_PROX);
    if (!anamo_enum_name(ANAMO_ENUM_RESTART, (int)o->restart))
        return bad(err, ph, "restart", (int)o->restart, ANAMO_ENUM_RESTART);
    if (!anamo_enum_name(ANAMO_ENUM_STEP_RULE, (int)o->step_rule))
        return bad(err, ph, "step", (int)o->step_rule, ANAMO_ENUM_STEP_RULE);
    if (!anamo_enum_name(ANAMO_ENUM_SCHEDULE, (int)ph->schedule.kind))
        return bad(err, ph, "schedule", (int)ph->schedule.kind, ANAMO_ENUM_SCHEDULE);
    if (ph->kind == ANAMO_PHASE_FREECODES &&
        !anamo_enum_name(ANAMO_ENUM_FIT, (int)ph->freecodes.fit))
        return bad(err, ph, "fit", (int)ph->freecodes.fit, ANAMO_ENUM_FIT);
    rt->opt = optim_defaults((optim_kind)o->kind, o->lr);
    rt->opt.prox = (prox_kind)o->prox;
    rt->opt.restart = (restart_kind)o->restart;
    rt->sched = schedule_defaults((schedule_kind)ph->schedule.kind);
    rt->backtrack = o->step_rule == ANAMO_STEP_BACKTRACK;
    return ANAMO_OK;
}

/* What a kind of phase allows of the step rule and the restart. */
static int check_rules(const anamo_phase *ph, const phase_rt *rt, anamo_err *err)
{
    const anamo_optimizer k = ph->opt.kind;
    const int accel_or_gd = k == ANAMO_OPT_SGD || k == ANAMO_OPT_ACCELERATED ||
                            k == ANAMO_OPT_FISTA;
    const int inner = ph->kind == ANAMO_PHASE_ANAMO || ph->kind == ANAMO_PHASE_FREECODES;
    if (rt->backtrack && !accel_or_gd && !inner)
        return refuse(err, ph, "step backtrack works with sgd, accelerated, fista");
    if (rt->backtrack && ph->kind == ANAMO_PHASE_JOINT)
        return refuse(err, ph,
                      "step backtrack: use fixed for a joint phase; backtracking "
                      "searches one block's step at a time");
    /* the function restart needs F at each iterate, which only ANAMO's iterations evaluate;
     * elsewhere it would be accepted and do nothing */
    if (rt->opt.restart == RESTART_FUNCTION && ph->kind != ANAMO_PHASE_ANAMO)
        return refuse(err, ph,
                      "restart 'function' is implemented only in the anamo scheme "
                      "([anamo] restart); here use none or gradient");
    if (rt->backtrack && !(ph->opt.backtrack_eta > 1.0f))
        return anamo_err_set(err, ANAMO_ERR_CONFIG, "phase '%s': backtrack_eta %g must be > 1",
                             ph->name, ph->opt.backtrack_eta);
    return ANAMO_OK;
}

/* Batch, steps and lengths positive; the inner iteration counts of ANAMO and free codes not
 * negative. */
static int check_sizes(const anamo_phase *ph, anamo_err *err)
{
    const anamo_anamo_settings *a = &ph->anamo;
    const anamo_freecodes_settings *f = &ph->freecodes;
    const int bad_anamo = ph->kind == ANAMO_PHASE_ANAMO &&
                          (a->enc_iters < 0 || a->dec_iters < 0 || !(a->enc_lr > 0) ||
                           !(a->dec_lr > 0) || a->prox_iters < 0 || !(a->prox_step > 0));
    const int bad_codes = ph->kind == ANAMO_PHASE_FREECODES &&
                          (f->code_iters < 0 || f->dec_iters < 0 || !(f->code_lr > 0) ||
                           !(f->dec_lr > 0) || f->fit_epochs < 0 || f->refit_epochs < 0 ||
                           !(f->fit_lr > 0));
    if (ph->batch < 1 || !(ph->opt.lr > 0) || (ph->iterations <= 0 && !(ph->epochs > 0)) ||
        bad_anamo || bad_codes)
        return anamo_err_set(
            err, ANAMO_ERR_CONFIG,
            "phase '%s': batch, learning rates, inner iteration counts and the "
            "length must be positive (batch %d, lr %g, epochs %g, iterations %lld)",
            ph->name, ph->batch, ph->opt.lr, ph->epochs, (long long)ph->iterations);
    return ANAMO_OK;
}

int phase_compile(const anamo_phase *ph, phase_rt *rt, anamo_err *err)
{
    memset(rt, 0, sizeof *rt);
    if ((unsigned)ph->kind > ANAMO_PHASE_FREECODES) /* the table of schemes has no entry for it */
        return anamo_err_set(err, ANAMO_ERR_CONFIG,
                             "phase '%s': kind %d (allowed: 0..%d, anamo_phase_kind)", ph->name,
                             (int)ph->kind, ANAMO_PHASE_FREECODES);
    int rc = compile_kinds(ph, rt, err);
    if (!rc)
        rc = check_rules(ph, rt, err);
    if (!rc)
        rc = check_sizes(ph, err);
    if (rc)
        return rc;
    const anamo_optim_settings *p = &ph->opt;
    optim_cfg *o = &rt->opt;
    o->beta1 = p->beta1, o->beta2 = p->beta2, o->eps = p->eps;
    o->weight_decay = p->weight_decay, o->momentum = p->momentum, o->alpha = p->alpha;
    o->prox_lambda = p->prox_lambda;
    rt->backtrack_eta = p->backtrack_eta;
    const anamo_lr_schedule *q = &ph->schedule;
    schedule_cfg *s = &rt->sched;
    s->step_size = q->step_size, s->gamma = q->gamma, s->factor = q->factor;
    s->threshold = q->threshold, s->min_lr = q->min_lr, s->patience = q->patience;
    return ANAMO_OK;
}

int64_t phase_batch_rows(const anamo_phase *ph, int64_t n, int64_t offset, int64_t samples,
                         int64_t budget)
{
    int64_t B = ph->batch;
    if (B > n - offset)
        B = n - offset;
    if (B > budget - samples)
        B = budget - samples;
    return B;
}

int phase_done(const anamo_phase *ph, int64_t n, int64_t iters, int64_t seen)
{
    if (ph->iterations > 0)
        return iters >= ph->iterations;
    return seen >= llround(ph->epochs * (double)n);
}
