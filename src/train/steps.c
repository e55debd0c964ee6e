/* steps.c — one optimizer step of a phase, doing only the work its block needs.
 *
 *   both     (joint)   forward E, D; backward D (dW, dH); add λ·sign(H)/B; backward E (dW)
 *   encoder  (NAM)     forward E, D; backward D (dH only: the decoder is fixed); backward E (dW)
 *   decoder  (NAM)     codes H from the cache made at the phase's start (the encoder is fixed
 *                      for the whole phase, so these are the current encoder's codes); forward
 *                      D; backward D (dW only: nobody needs dH)
 *   inner    (ANAMO)   see anamo.c
 *
 * The loss is f(θ, φ) = loss(D_φ(E_θ(x)), x) + λ·g(E_θ(x), φ), g the code penalty (penalty.c).
 * With a unit-norm decoder every decoder step is projected (train_decoder_constraint). */
#include "core/err.h"
#include "loss/loss.h"
#include "train/trainer.h"

#include <math.h>
#include <string.h>

static const char *const BLOCK_NAMES[] = {"encoder", "decoder", "encoder+decoder",
                                          "encoder then decoder", "codes then decoder"};

static int is_accelerated(optim_kind kind)
{
    return kind == OPTIM_ACCELERATED || kind == OPTIM_FISTA;
}

/* Fills the code cache with E(x) of every training sample. */
int train_compute_codes(anamo_trainer *t, anamo_err *err)
{
    /* the codes training uses: E(x) as it is, even for a model evaluated on binary codes */
    int rc = model_encode_rows(t->m, t->train, 0, t->train->n, t->codes, 0, err);
    t->codes_valid = rc == ANAMO_OK;
    return rc;
}

static int use_optimizer(anamo_trainer *t, int which, const optim_cfg *cfg, anamo_err *err)
{
    block *b = which == 0 ? &t->m->enc : &t->m->dec;
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

int train_enter_phase(anamo_trainer *t, int phase_idx, anamo_err *err)
{
    const anamo_phase *ph = &t->spec.phases[phase_idx];
    phase_rt *rt = &t->rt[phase_idx];
    rt->opt.lr = t->p.sched[phase_idx].lr;
    int rc = ANAMO_OK;
    if (ph->block == ANAMO_INNER)
        return inner_enter_phase(t, phase_idx, err);
    if (ph->block == ANAMO_FREECODES)
        return freecodes_enter_phase(t, phase_idx, err);
    if (ph->block != ANAMO_DECODER)
        rc = use_optimizer(t, 0, &rt->opt, err);
    if (!rc && ph->block != ANAMO_ENCODER)
        rc = use_optimizer(t, 1, &rt->opt, err);
    if (!rc && ph->block == ANAMO_DECODER && t->spec.cache_codes && !t->codes_valid)
        rc = train_compute_codes(t, err);
    if (!rc)
        t->phase_ready = 1;
    return rc;
}

void train_leave_phase(anamo_trainer *t, int phase_idx)
{
    const anamo_phase *ph = &t->spec.phases[phase_idx];
    const optim_cfg *cfg = &t->rt[phase_idx].opt;
    if (ph->block == ANAMO_INNER || ph->block == ANAMO_FREECODES || !is_accelerated(cfg->kind))
        return;
    /* the parameters hold the extrapolated point y_j; the phase's result is the iterate x_j */
    if (ph->block != ANAMO_DECODER && t->m->enc.opt_state) {
        optim_finish(cfg, t->m->enc.params, t->m->enc.opt_state, t->m->enc.nparams);
        t->codes_valid = 0;
    }
    if (ph->block != ANAMO_ENCODER && t->m->dec.opt_state)
        optim_finish(cfg, t->m->dec.params, t->m->dec.opt_state, t->m->dec.nparams);
}

static void gather_codes(anamo_trainer *t, const int64_t *idx, int B)
{
    const int64_t m = t->m->enc.out_dim;
    for (int b = 0; b < B; b++)
        memcpy(t->hbuf + b * m, t->codes + idx[b] * m, (size_t)m * sizeof(float));
}

double train_decoder_loss(anamo_trainer *t, const float *h, int B, float *dxhat)
{
    anamo_model *m = t->m;
    const float *xhat = block_forward(&m->dec, h, B);
    /* with BCE after a final sigmoid the loss reads the sigmoid's input, the logits */
    const float *pred = t->from_logits ? block_last_input(&m->dec, B) : xhat;
    return loss_forward(t->spec.loss, pred, m->xbuf, dxhat, B, m->in_dim, t->from_logits);
}

float *train_decoder_backward(anamo_trainer *t, int B, int need_dh, int need_dw)
{
    block *dec = &t->m->dec;
    const int last = t->from_logits ? dec->nlayers - 1 : dec->nlayers; /* skip the sigmoid */
    return block_backward_from(dec, last, t->dxhat, B, need_dh, need_dw);
}

/* Forward of the current batch (already in m->xbuf) through the blocks the phase needs, the
 * loss, and its gradient in t->dxhat. Returns the codes used. */
const float *train_forward(anamo_trainer *t, int use_cache, const int64_t *idx, int B,
                           step_losses *out)
{
    anamo_model *m = t->m;
    const float *h;
    if (use_cache && t->codes_valid) {
        gather_codes(t, idx, B);
        h = t->hbuf;
    } else {
        h = block_forward(&m->enc, m->xbuf, B);
    }
    out->recon = train_decoder_loss(t, h, B, t->dxhat);
    out->l1 = code_l1_forward(h, NULL, B, m->enc.out_dim, 0.0f);
    const double g = t->spec.penalty == ANAMO_PENALTY_L1 ? out->l1 : penalty_forward(t, h, B, NULL);
    out->loss = out->recon + t->spec.lambda * g;
    return h;
}

const norm_groups *train_decoder_constraint(const anamo_trainer *t)
{
    return t->code_groups.kind != NORM_NONE ? &t->code_groups : NULL;
}

void train_set_modes(anamo_trainer *t, int encoder_trains, int decoder_trains)
{
    if (t->m->enc.training != encoder_trains)
        block_set_training(&t->m->enc, encoder_trains);
    if (t->m->dec.training != decoder_trains)
        block_set_training(&t->m->dec, decoder_trains);
}

int train_diverged(const anamo_trainer *t, int phase_idx, double loss, anamo_err *err)
{
    const anamo_phase *ph = &t->spec.phases[phase_idx];
    return anamo_err_set(err, ANAMO_ERR_DIVERGED,
                      "diverged: phase '%s' (block %s), epoch %lld, iteration %lld: loss = %g",
                      ph->name, BLOCK_NAMES[ph->block], (long long)t->p.pass + 1,
                      (long long)t->p.iteration + 1, loss);
}

static void step_block(anamo_trainer *t, int which, int phase_idx, const int64_t *idx, int B,
                       double f_y)
{
    block *b = which == 0 ? &t->m->enc : &t->m->dec;
    optim_cfg cfg = t->rt[phase_idx].opt;
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
    if (t->rt[phase_idx].backtrack)
        cfg.lr = train_backtrack_lr(t, which, phase_idx, idx, B, f_y);
    int64_t step = ++t->p.steps[which];
    optim_step(&cfg, b->params, b->grads, b->opt_state, b->nparams, step);
    if (which == 0)
        t->codes_valid = 0; /* the cached codes belong to the encoder before this step */
}

int train_step(anamo_trainer *t, int phase_idx, const int64_t *idx, int B, step_losses *out,
               anamo_err *err)
{
    anamo_model *m = t->m;
    const anamo_phase *ph = &t->spec.phases[phase_idx];
    if (ph->block == ANAMO_INNER)
        return inner_step(t, phase_idx, idx, B, out, err);
    if (ph->block == ANAMO_FREECODES)
        return freecodes_step(t, phase_idx, idx, B, out, err);
    const int train_enc = ph->block != ANAMO_DECODER, train_dec = ph->block != ANAMO_ENCODER;
    model_load_batch(m, t->train, idx, 0, B);
    const float *h = train_forward(t, !train_enc, idx, B, out);
    if (!isfinite(out->loss))
        return train_diverged(t, phase_idx, out->loss, err);
    resample_mark(t, h, B);
    float *dh = train_decoder_backward(t, B, train_enc, train_dec);
    if (train_dec)
        penalty_decoder_backward(t, h, B);
    if (train_enc) {
        if (t->spec.lambda != 0.0f)
            penalty_forward(t, h, B, dh);
        block_backward(&m->enc, dh, B, 0, 1);
    }
    /* both gradients are taken before either block moves */
    if (train_enc)
        step_block(t, 0, phase_idx, idx, B, out->loss);
    if (train_dec)
        step_block(t, 1, phase_idx, idx, B, out->loss);
    return ANAMO_OK;
}
