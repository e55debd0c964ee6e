/* block_step.c — an optimizer step on one block, as the joint and NAM phases take them: the
 * optimizer's state on entering a phase, the whole step of the phases whose gradients pass
 * through the encoder's codes (joint, NAM's encoder; NAM's decoder takes its gradient from
 * fixed codes, nam.c), one block's update (on the sphere, along it; with backtracking, at
 * Beck–Teboulle's 1/L), and the iterate on leaving. */
#include "core/err.h"
#include "train/scheme.h"

#include <string.h>

static int is_accelerated(optim_kind kind)
{
    return kind == OPTIM_ACCELERATED || kind == OPTIM_FISTA;
}

static block *block_of(anamo_trainer *t, int which) { return which == 0 ? &t->m->enc : &t->m->dec; }

int block_step_enter(anamo_trainer *t, int which, const optim_cfg *cfg, anamo_err *err)
{
    block *b = block_of(t, which);
    if (t->p.opt_kind[which] == (int)cfg->kind) {
        /* state carries on, but an accelerated sequence restarts with each phase: the other
         * block has moved, so the objective it was accelerating on is gone */
        if (is_accelerated(cfg->kind))
            t->p.steps[which] = 0;
        return ANAMO_OK;
    }
    /* a block that changes optimizer starts the new one from fresh state */
    int rc = block_alloc_state(b, optim_state_floats(cfg->kind, b->nparams), err);
    if (rc)
        return rc;
    if (b->opt_state)
        memset(b->opt_state, 0, (size_t)b->nstate * sizeof(float));
    t->p.opt_kind[which] = (int)cfg->kind;
    t->p.steps[which] = 0;
    return ANAMO_OK;
}

/* The gradients of F through the encoder's codes h = E_θ(x): forward E, D; backward D (∂/∂h,
 * and ∂/∂φ with ∂(λg)/∂W₁ when decoder_too); add ∂(λg)/∂h; backward E (∂/∂θ). F and its parts
 * into out; a loss that is not finite is divergence, and no gradient is taken. */
static int gradients_through_encoder(anamo_trainer *t, int phase_idx, const train_batch *batch,
                                     int decoder_too, step_losses *out, anamo_err *err)
{
    const int B = batch->B;
    const float *h = train_forward(t, batch, out);
    int rc = train_check_loss(t, phase_idx, out->loss, err);
    if (rc)
        return rc;
    resample_mark(t, h, B);
    float *dh = train_decoder_backward(t, B, 1, decoder_too);
    if (decoder_too)
        penalty_decoder_backward(t, h, B);
    if (t->spec.lambda != 0.0f)
        penalty_forward(t, h, B, dh);
    block_backward(&t->m->enc, dh, B, 0, 1);
    return ANAMO_OK;
}

void block_step(anamo_trainer *t, int which, int phase_idx, const train_objective *f, double f_y)
{
    block *b = block_of(t, which);
    train_dist_reduce_grads(t, b); /* across ranks: the batch's gradient, the same on each */
    const phase_rt *rt = &t->rt[phase_idx];
    optim_cfg cfg = rt->opt;
    cfg.unit_norm = which == 1 ? train_decoder_constraint(t) : NULL;
    /* on the sphere, Adam's and the momentum methods' steps (and the moments they keep) see
     * only the gradient along the sphere, weight decay included (folded in first, since its
     * pull is radial); accelerated methods project inside their step */
    if (cfg.unit_norm && !is_accelerated(cfg.kind) && cfg.unit_norm->kind == NORM_SPHERE) {
        if (cfg.weight_decay != 0.0f)
            for (int64_t i = 0; i < b->nparams; i++)
                b->grads[i] += cfg.weight_decay * b->params[i];
        cfg.weight_decay = 0.0f;
        norm_groups_tangent(cfg.unit_norm, b->params, b->grads);
    }
    if (rt->backtrack)
        cfg.lr = train_backtrack(t, which, f, f_y, &cfg, rt->backtrack_eta, t->scratch[0],
                                 t->scratch[1]);
    int64_t step = ++t->p.steps[which];
    optim_step(&cfg, b->params, b->grads, b->opt_state, b->nparams, step);
    if (which == 0)
        t->codes_valid = 0; /* the cached codes belong to the encoder before this step */
}

int block_step_through_encoder(anamo_trainer *t, int phase_idx, const train_batch *batch,
                               int decoder_too, step_losses *out, anamo_err *err)
{
    train_set_modes(t, 1, decoder_too);
    int rc = gradients_through_encoder(t, phase_idx, batch, decoder_too, out, err);
    if (rc)
        return rc;
    /* both gradients are taken before either block moves */
    const train_objective f = {train_forward_loss, batch, NULL};
    block_step(t, 0, phase_idx, &f, out->loss);
    if (decoder_too)
        block_step(t, 1, phase_idx, &f, out->loss);
    return ANAMO_OK;
}

void block_step_leave(anamo_trainer *t, int which, const optim_cfg *cfg)
{
    block *b = block_of(t, which);
    if (!is_accelerated(cfg->kind) || !b->opt_state)
        return;
    /* the parameters hold the extrapolated point y_j; the phase's result is the iterate x_j */
    optim_finish(cfg, b->params, b->opt_state, b->nparams);
    if (which == 0)
        t->codes_valid = 0;
}
