/* penalty.c — the code penalty of every scheme, λ·g with
 *     g(h, W₁) = (1/B) Σ_b Σ_j n_j·|h_bj|,
 * n_j = 1 (penalty l1, the seeds') or n_j = ‖W₁ group of unit j‖₂ (penalty decoder_l1: the
 * decoder's first-layer column that reads unit j, or the kernel slice of its channel), so that
 * dividing the code by c while the columns grow by c leaves g where it was. Its gradients:
 *     ∂(λg)/∂h_bj = λ·n_j·sign(h_bj)/B                        (sign 0 = 0)
 *     ∂(λg)/∂w_k  = λ·(1/B)·(Σ_b Σ_{j in group k} |h_bj|)·w_k/‖w_k‖   (decoder_l1; 0 at w_k = 0)
 * The weights are read from the decoder's parameters at every call, so a trial point of a
 * backtracking search or an accelerated y_j is weighted by its own columns. */
#include "loss/loss.h"
#include "train/trainer.h"

#include <math.h>

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
    if (!w)
        return code_l1_forward(h, dh, B, m, t->spec.lambda);
    return code_l1_weighted_forward(h, dh, B, m, w, t->spec.lambda);
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
