/* phase.c — a phase spec (strings and numbers, as a config gives them) checked and turned
 * into what the steps use: the optimizer settings, the step rule, the schedule. */
#include "core/err.h"
#include "train/trainer.h"

#include <stdio.h>
#include <string.h>

anamo_phase anamo_phase_default(const char *name, anamo_block_id which, const char *optimizer,
                                float lr, int batch, double epochs)
{
    /* ε is the optimizer's own (AdaGrad's 1e-10, the others' 1e-8); an unknown name gets the
     * common one, and phase_compile names it as the error */
    const int kind = optim_parse(optimizer);
    const optim_cfg torch = optim_defaults(kind < 0 ? OPTIM_ADAM : (optim_kind)kind, lr);
    anamo_phase ph = {.block = which,
                      .lr = lr,
                      .beta1 = torch.beta1,
                      .beta2 = torch.beta2,
                      .eps = torch.eps,
                      .momentum = torch.momentum,
                      .alpha = torch.alpha,
                      .backtrack_eta = 2.0f,
                      .step_size = 1,
                      .patience = 10,
                      .gamma = 0.1f,
                      .factor = 0.1f,
                      .threshold = 1e-4f,
                      .batch = batch,
                      .epochs = epochs,
                      .enc_iters = 5,
                      .dec_iters = 15,
                      .enc_lr = lr,
                      .dec_lr = lr,
                      .prox_iters = 10,
                      .prox_step = 0.5f,
                      .fit_epochs = 20,
                      .refit_epochs = 2,
                      .fit_lr = 1e-3f};
    snprintf(ph.name, sizeof ph.name, "%s", name);
    snprintf(ph.optimizer, sizeof ph.optimizer, "%s", optimizer);
    snprintf(ph.prox, sizeof ph.prox, "none");
    snprintf(ph.restart, sizeof ph.restart, "none");
    snprintf(ph.step_rule, sizeof ph.step_rule, "fixed");
    snprintf(ph.schedule, sizeof ph.schedule, "constant");
    snprintf(ph.fit, sizeof ph.fit, "auto");
    return ph;
}

static int bad(anamo_err *err, const anamo_phase *ph, const char *key, const char *value,
               const char *allowed)
{
    return anamo_err_set(err, ANAMO_ERR_CONFIG, "phase '%s': %s '%s' (allowed: %s)", ph->name, key,
                         value, allowed);
}

static int compile_names(const anamo_phase *ph, phase_rt *rt, anamo_err *err)
{
    int kind = optim_parse(ph->optimizer), prox = prox_parse(ph->prox);
    int restart = restart_parse(ph->restart), sched = schedule_parse(ph->schedule);
    if (kind < 0)
        return bad(err, ph, "optimizer", ph->optimizer, anamo_enum_allowed(ANAMO_ENUM_OPTIMIZER));
    if (prox < 0)
        return bad(err, ph, "prox", ph->prox, anamo_enum_allowed(ANAMO_ENUM_PROX));
    if (restart < 0)
        return bad(err, ph, "restart", ph->restart, anamo_enum_allowed(ANAMO_ENUM_RESTART));
    if (sched < 0)
        return bad(err, ph, "schedule", ph->schedule, anamo_enum_allowed(ANAMO_ENUM_SCHEDULE));
    if (anamo_enum_parse(ANAMO_ENUM_STEP_RULE, ph->step_rule) < 0)
        return bad(err, ph, "step", ph->step_rule, anamo_enum_allowed(ANAMO_ENUM_STEP_RULE));
    rt->opt = optim_defaults((optim_kind)kind, ph->lr);
    rt->opt.prox = (prox_kind)prox;
    rt->opt.restart = (restart_kind)restart;
    rt->sched = schedule_defaults((schedule_kind)sched);
    rt->backtrack = anamo_enum_parse(ANAMO_ENUM_STEP_RULE, ph->step_rule) == ANAMO_STEP_BACKTRACK;
    int accel_or_gd = kind == OPTIM_SGD || kind == OPTIM_ACCELERATED || kind == OPTIM_FISTA;
    if (rt->backtrack && !accel_or_gd && ph->block != ANAMO_INNER && ph->block != ANAMO_FREECODES)
        return bad(err, ph, "step", ph->step_rule, "backtrack works with sgd, accelerated, fista");
    if (rt->backtrack && ph->block == ANAMO_BOTH)
        return bad(err, ph, "step", ph->step_rule,
                   "fixed for a joint phase; backtracking searches one block's step at a time");
    /* the function restart needs F at each iterate, which only ANAMO's iterations evaluate;
     * elsewhere it would be accepted and do nothing */
    if (rt->opt.restart == RESTART_FUNCTION && ph->block != ANAMO_INNER)
        return anamo_err_set(err, ANAMO_ERR_CONFIG,
                             "phase '%s': restart 'function' is implemented only in the anamo "
                             "scheme ([anamo] restart); here use none or gradient",
                             ph->name);
    return ANAMO_OK;
}

int phase_compile(const anamo_phase *ph, phase_rt *rt, anamo_err *err)
{
    memset(rt, 0, sizeof *rt);
    if ((unsigned)ph->block > ANAMO_FREECODES) /* the table of schemes has no entry for it */
        return anamo_err_set(err, ANAMO_ERR_CONFIG,
                             "phase '%s': block %d (allowed: 0..%d, "
                             "anamo_block_id)",
                             ph->name, (int)ph->block, ANAMO_FREECODES);
    int rc = compile_names(ph, rt, err);
    if (rc)
        return rc;
    int inner = ph->block == ANAMO_INNER || ph->block == ANAMO_FREECODES;
    if (ph->block == ANAMO_FREECODES && anamo_enum_parse(ANAMO_ENUM_FIT, ph->fit) < 0)
        return bad(err, ph, "fit", ph->fit, anamo_enum_allowed(ANAMO_ENUM_FIT));
    if (ph->batch < 1 || !(ph->lr > 0) || (ph->iterations <= 0 && !(ph->epochs > 0)) ||
        (inner && (ph->enc_iters < 0 || ph->dec_iters < 0 || !(ph->enc_lr > 0) ||
                   !(ph->dec_lr > 0) || ph->prox_iters < 0 || !(ph->prox_step > 0))))
        return anamo_err_set(
            err, ANAMO_ERR_CONFIG,
            "phase '%s': batch, learning rates, inner iteration counts and the "
            "length must be positive (batch %d, lr %g, epochs %g, iterations %lld)",
            ph->name, ph->batch, ph->lr, ph->epochs, (long long)ph->iterations);
    if (rt->backtrack && !(ph->backtrack_eta > 1.0f))
        return anamo_err_set(err, ANAMO_ERR_CONFIG, "phase '%s': backtrack_eta %g must be > 1",
                             ph->name, ph->backtrack_eta);
    optim_cfg *o = &rt->opt;
    o->beta1 = ph->beta1, o->beta2 = ph->beta2, o->eps = ph->eps;
    o->weight_decay = ph->weight_decay, o->momentum = ph->momentum, o->alpha = ph->alpha;
    o->prox_lambda = ph->prox_lambda;
    rt->backtrack_eta = ph->backtrack_eta;
    schedule_cfg *s = &rt->sched;
    s->step_size = ph->step_size, s->gamma = ph->gamma, s->factor = ph->factor;
    s->threshold = ph->threshold, s->min_lr = ph->min_lr, s->patience = ph->patience;
    return ANAMO_OK;
}
