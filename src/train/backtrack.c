/* backtrack.c (train) — Beck–Teboulle backtracking for one block in a NAM phase: the smooth
 * objective is the phase's loss on the current batch as a function of that block's parameters,
 * the other block fixed. Each trial point costs one forward pass. L only grows (as in Beck and
 * Teboulle's method), starting from 1/lr the first time. */
#include "train/trainer.h"

#include <string.h>

#define BACKTRACK_MAX_TRIES 60

typedef struct trial_ctx {
    anamo_trainer *t;
    block *b;
    int use_cache;
    const int64_t *idx;
    int B;
} trial_ctx;

/* f at `point`: the block's parameters become point for one forward pass. */
static double loss_at(void *ctx_, const float *point)
{
    trial_ctx *c = ctx_;
    memcpy(c->b->params, point, (size_t)c->b->nparams * sizeof(float));
    step_losses s;
    train_forward(c->t, c->use_cache, c->idx, c->B, &s);
    return s.loss;
}

float train_backtrack_lr(anamo_trainer *t, int which, int phase_idx, const int64_t *idx, int B,
                         double f_y)
{
    block *b = which == 0 ? &t->m->enc : &t->m->dec;
    const phase_rt *rt = &t->rt[phase_idx];
    float *y = t->scratch[0], *p = t->scratch[1];
    memcpy(y, b->params, (size_t)b->nparams * sizeof(float));
    double L = t->p.lipschitz[which] > 0 ? t->p.lipschitz[which] : 1.0 / rt->opt.lr;
    trial_ctx ctx = {.t = t, .b = b, .use_cache = which == 1, .idx = idx, .B = B};
    const prox_kind prox = rt->opt.kind == OPTIM_FISTA ? rt->opt.prox : PROX_NONE;
    int ok;
    const norm_groups *unit_norm = which == 1 ? train_decoder_constraint(t) : NULL;
    L = backtrack_step_projected(y, b->grads, f_y, L, rt->backtrack_eta, prox,
                                 rt->opt.prox_lambda, unit_norm, p, b->nparams, loss_at, &ctx,
                                 BACKTRACK_MAX_TRIES, &ok);
    memcpy(b->params, y, (size_t)b->nparams * sizeof(float));
    t->p.lipschitz[which] = L;
    return (float)(1.0 / L);
}
