/* schedule.c — learning-rate schedules, applied at the end of each epoch.
 *   step     lr = base·γ^⌊epochs/step_size⌋                   (torch.optim.lr_scheduler.StepLR)
 *   plateau  ReduceLROnPlateau, mode min, threshold_mode rel, cooldown 0: a loss counts as an
 *            improvement if loss < best·(1 − threshold); after more than `patience` epochs
 *            without one, lr ← max(lr·factor, min_lr) and the count restarts. Seed 002 drops
 *            RMSProp from 1e-4 to 1e-5 "if necessary": factor 0.1, min_lr 1e-5. */
#include "optim/optim.h"

#include <math.h>

schedule_cfg schedule_defaults(schedule_kind kind)
{
    schedule_cfg c = {.kind = kind,
                      .step_size = 1,
                      .gamma = 0.1f,
                      .factor = 0.1f,
                      .threshold = 1e-4f,
                      .min_lr = 0.0f,
                      .patience = 10};
    return c;
}

void schedule_init(schedule_state *s, float base_lr)
{
    s->lr = base_lr;
    s->best = INFINITY;
    s->bad_epochs = 0;
    s->epochs = 0;
}

float schedule_epoch_end(const schedule_cfg *cfg, schedule_state *s, float base_lr, double loss)
{
    s->epochs++;
    switch (cfg->kind) {
    case SCHED_STEP: {
        int64_t k = cfg->step_size > 0 ? s->epochs / cfg->step_size : 0;
        s->lr = base_lr * powf(cfg->gamma, (float)k);
        break;
    }
    case SCHED_PLATEAU:
        if (loss < s->best * (1.0 - cfg->threshold)) {
            s->best = loss;
            s->bad_epochs = 0;
        } else if (++s->bad_epochs > cfg->patience) {
            float reduced = s->lr * cfg->factor;
            s->lr = reduced > cfg->min_lr ? reduced : cfg->min_lr;
            s->bad_epochs = 0;
        }
        break;
    case SCHED_CONSTANT:
    default: s->lr = base_lr; break;
    }
    return s->lr;
}
