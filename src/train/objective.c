/* objective.c — the objective every scheme minimizes, on a batch x with codes h:
 *     F(θ, φ) = loss(D_φ(h), x) + λ·g(h, φ),   h = E_θ(x) (or codes the scheme holds fixed)
 * with the code penalty
 *     g(h, W₁) = (1/B) Σ_b Σ_j n_j·|h_bj|,
 * n_j = 1 (penalty l1, the seeds') or n_j = ‖W₁ group of unit j‖₂ (penalty decoder_l1: the
 * decoder's first-layer column that reads unit j, or the kernel slice of its channel), so that
 * dividing the code by c while the columns grow by c leaves g where it was. Its gradients:
 *     ∂(λg)/∂h_bj = λ·n_j·sign(h_bj)/B                        (sign 0 = 0)
 *     ∂(λg)/∂w_k  = λ·(1/B)·(Σ_b Σ_{j in group k} |h_bj|)·w_k/‖w_k‖   (decoder_l1; 0 at w_k = 0)
 * The weights are read from the decoder's parameters at every call, so a trial point of a
 * backtracking search or an accelerated y_j is weighted by its own columns. With a unit-norm
 * decoder every decoder step is projected (train_decoder_constraint). */
#include "core/err.h"
#include "loss/loss.h"
#include "train/scheme.h"

#include <math.h>

double train_decoder_loss(anamo_trainer *t, const float *h, const float *x, int B, float *dxhat)
{
    anamo_model *m = t->m;
    const float *xhat = block_forward(&m->dec, h, B);
    /* with BCE after a final sigmoid the loss reads the sigmoid's input, the logits */
    const float *pred = t->from_logits ? block_last_input(&m->dec, B) : xhat;
    return train_dist_mean(t, loss_forward(t->spec.loss, pred, x, dxhat, B, m->in_dim,
                                           t->from_logits));
}

float *train_decoder_backward(anamo_trainer *t, int B, int need_dh, int need_dw)
{
    block *dec = &t->m->dec;
    const int last = t->from_logits ? dec->nlayers - 1 : dec->nlayers; /* skip the sigmoid */
    return block_backward_from(dec, last, t->dxhat, B, need_dh, need_dw);
}

void train_objective_at(anamo_trainer *t, const float *h, const train_batch *batch,
                        step_losses *out)
{
    const int B = batch->B;
    out->recon = train_decoder_loss(t, h, batch->x, B, t->dxhat);
    out->l1 = train_dist_mean(t, code_l1_forward(h, NULL, B, t->m->enc.out_dim, 0.0f));
    const double g = t->spec.penalty == ANAMO_PENALTY_L1 ? out->l1 : penalty_forward(t, h, B, NULL);
    out->loss = out->recon + t->spec.lambda * g;
}

const float *train_forward(anamo_trainer *t, const train_batch *batch, step_losses *out)
{
    const float *h = block_forward(&t->m->enc, batch->x, batch->B);
    train_objective_at(t, h, batch, out);
    return h;
}

double train_forward_loss(anamo_trainer *t, const train_batch *batch, const float *h)
{
    step_losses s;
    train_forward(t, batch, &s);
    (void)h;
    return s.loss;
}

/* n_j of the current decoder into t->unit_weight; returns it, or NULL for plain ℓ1. */
static const float *unit_weights(anamo_trainer *t)
{
    if (t->spec.penalty != ANAMO_PENALTY_DECODER_L1)
        return NULL;
    const norm_groups *g = &t->code_groups;
    const int64_t code_dim = t->m->enc.out_dim, per_group = code_dim / g->count;
    for (int64_t k = 0; k < g->count; k++) {
        const float n_k = (float)norm_groups_norm(g, t->m->dec.params, k);
        for (int64_t p = 0; p < per_group; p++)
            t->unit_weight[k * per_group + p] = n_k;
    }
    return t->unit_weight;
}

double penalty_forward(anamo_trainer *t, const float *h, int B, float *dh)
{
    const float *w = unit_weights(t);
    const int64_t m = t->m->enc.out_dim;
    return train_dist_mean(t, w ? code_l1_weighted_forward(h, dh, B, m, w, t->spec.lambda)
                                : code_l1_forward(h, dh, B, m, t->spec.lambda));
}

void penalty_decoder_backward(anamo_trainer *t, const float *h, int B)
{
    if (t->spec.penalty != ANAMO_PENALTY_DECODER_L1 || t->spec.lambda == 0.0f)
        return;
    const norm_groups *g = &t->code_groups;
    block *dec = &t->m->dec;
    const int64_t code_dim = t->m->enc.out_dim, per_group = code_dim / g->count;
    for (int64_t k = 0; k < g->count; k++) {
        double mass = 0.0; /* Σ_b Σ_{j in group k} |h_bj| */
        for (int b = 0; b < B; b++)
            for (int64_t p = 0; p < per_group; p++)
                mass += fabsf(h[b * code_dim + k * per_group + p]);
        const double norm = norm_groups_norm(g, dec->params, k);
        if (norm == 0.0 || mass == 0.0)
            continue;
        const float scale = (float)(t->spec.lambda * mass / ((double)B * norm));
        for (int64_t i = 0; i < g->len; i++) {
            const int64_t at = g->offset + k * g->group_stride + i * g->elem_stride;
            dec->grads[at] += scale * dec->params[at];
        }
    }
}

void penalty_subgradient(anamo_trainer *t, const float *h, int B, float *dh)
{
    const float *w = unit_weights(t);
    const int64_t m = t->m->enc.out_dim;
    if (!w)
        code_l1_forward(h, dh, B, m, 1.0f);
    else
        code_l1_weighted_forward(h, dh, B, m, w, 1.0f);
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

int train_check_loss(const anamo_trainer *t, int phase_idx, double loss, anamo_err *err)
{
    if (isfinite(loss))
        return ANAMO_OK;
    const anamo_phase *ph = &t->spec.phases[phase_idx];
    return anamo_err_set(err, ANAMO_ERR_DIVERGED,
                         "diverged: phase '%s' (block %s), epoch %lld, iteration %lld: loss = %g",
                         ph->name, scheme_of(ph->kind)->name, (long long)t->p.pass + 1,
                         (long long)t->p.iteration + 1, loss);
}
