/* backtrack.c (train) — Beck–Teboulle backtracking for one block of any scheme: the smooth
 * objective is the phase's f on the current batch as a function of that block's parameters,
 * the other block fixed (a NAM phase's loss, ANAMO's f(θ) or f(φ)). Each trial point costs one
 * evaluation of f. L only grows (as in Beck and Teboulle's method), starting from 1/lr the
 * first time. The search itself is src/optim's backtrack_step. */
#include "train/scheme.h"

#include <string.h>

#define BACKTRACK_MAX_TRIES 60

typedef struct trial_ctx {
    anamo_trainer *t;
    block *b;
    const train_objective *f;
} trial_ctx;

/* f at `point`: the block's parameters become point for one evaluation. */
static double f_at_trial(void *ctx_, const float *point)
{
    trial_ctx *c = ctx_;
    memcpy(c->b->params, point, (size_t)c->b->nparams * sizeof(float));
    return c->f->at(c->t, c->f->batch, c->f->h);
}

float train_backtrack(anamo_trainer *t, int which, const train_objective *f, double f_y,
                      const optim_cfg *from, float eta, float *y_saved, float *trial)
{
    block *b = which == 0 ? &t->m->enc : &t->m->dec;
    const int64_t n = b->nparams;
    memcpy(y_saved, b->params, (size_t)n * sizeof(float));
    double L = t->p.lipschitz[which] > 0 ? t->p.lipschitz[which] : 1.0 / from->lr;
    trial_ctx ctx = {.t = t, .b = b, .f = f};
    /* the trial points are the step's own: only FISTA's applies a prox */
    const prox_kind prox = from->kind == OPTIM_FISTA ? from->prox : PROX_NONE;
    int ok;
    L = backtrack_step(y_saved, b->grads, f_y, L, eta, prox, from->prox_lambda, from->unit_norm,
                       trial, n, f_at_trial, &ctx, BACKTRACK_MAX_TRIES, &ok);
    memcpy(b->params, y_saved, (size_t)n * sizeof(float));
    t->p.lipschitz[which] = L;
    return (float)(1.0 / L);
}
