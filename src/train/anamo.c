/* anamo.c — ANAMO, seed 000's Algorithm 1. For each mini-batch X_k (one outer iteration):
 *
 *   encoder, φ fixed: J_enc FISTA iterations on F(θ) = f(θ) + λ·g(θ), where
 *       f(θ) = loss(D_φ(E_θ(X_k)), X_k)   and   g(θ) = (1/B) Σ_b ‖E_θ(x_b)‖₁
 *     x_0 = y_0 = θ,  s_0 = 1
 *     for j = 0 … J_enc − 1:
 *       z       = y_j − e_j·∇f(y_j)
 *       x_{j+1} = prox_{e_j·λ·g}(z), which has no closed form (g depends on θ through the
 *                 network); as seed 000's Algorithm 2 we take K sub-gradient iterations on
 *                 min_u e_j·λ·g(u) + ½‖u − z‖²:
 *                     u_0 = z,   u_{i+1} = u_i − η·(e_j·λ·∂g(u_i) + (u_i − z)),   x_{j+1} = u_K
 *                 with ∂g(u) the encoder's backward of sign(E_u(X_k))/B (sign 0 = 0)
 *       s_{j+1} = (1 + √(1 + 4 s_j²))/2
 *       y_{j+1} = x_{j+1} + ((s_j − 1)/s_{j+1})·(x_{j+1} − x_j)
 *     θ ← x_{J_enc}
 *
 *   decoder, θ fixed: the codes H = E_θ(X_k) once, then J_dec accelerated-gradient iterations
 *   on f(φ) = loss(D_φ(H), X_k):
 *     x_0 = y_0 = φ,  s_0 = 1
 *       x_{j+1} = y_j − d_j·∇f(y_j);   s_{j+1}, y_{j+1} as above
 *     φ ← x_{J_dec}
 *
 * The s_j sequence restarts at each block update. e_j, d_j are fixed (enc_lr, dec_lr) or found
 * by Beck–Teboulle backtracking on f (for the encoder, the sufficient-decrease test is made on
 * the gradient step z, before the prox, since that prox is itself iterative). Optional adaptive
 * restart (O'Donoghue–Candès): "function" compares F(x_{j+1}) with F(x_j) (one extra forward
 * pass per iteration), "gradient" tests (y_j − x_{j+1})·(x_{j+1} − x_j) > 0; either sets
 * s_{j+1} = 1 and y_{j+1} = x_{j+1}.
 * With J_enc = J_dec = 1, λ = 0 and fixed steps, one outer iteration is exactly a gradient step
 * θ ← θ − e·∇_θ f(θ, φ) followed by φ ← φ − d·∇_φ f(θ_new, φ).
 * The s_j sequence is src/optim's (accel_start, accel_advance, accel_finish), FISTA's own; the
 * objective is objective.c's; backtracking is backtrack.c's. */
#include "core/err.h"
#include "loss/loss.h"
#include "train/scheme.h"

#include <string.h>

static int anamo_enter(anamo_trainer *t, int phase_idx, anamo_err *err)
{
    block *enc = &t->m->enc, *dec = &t->m->dec;
    int rc = block_alloc_state(enc, optim_state_floats(OPTIM_FISTA, enc->nparams), err);
    if (!rc)
        rc = block_alloc_state(dec, optim_state_floats(OPTIM_ACCELERATED, dec->nparams), err);
    if (rc)
        return rc;
    t->p.opt_kind[0] = OPTIM_FISTA;
    t->p.opt_kind[1] = OPTIM_ACCELERATED;
    t->codes_valid = 0;
    (void)phase_idx;
    return ANAMO_OK;
}

/* ---- the encoder's objective, φ fixed ---------------------------------------------------- */

/* F(θ) = f(θ) + λ·g(θ) on X and its parts, without a gradient. */
static void encoder_losses(anamo_trainer *t, const train_batch *X, step_losses *out)
{
    const float *h = block_forward(&t->m->enc, X->x, X->B);
    out->recon = train_decoder_loss(t, h, X->x, X->B, NULL);
    out->l1 = train_dist_mean(t, code_l1_forward(h, NULL, X->B, t->m->enc.out_dim, 0.0f));
    out->loss = out->recon + t->spec.lambda * penalty_forward(t, h, X->B, NULL);
}

/* F(θ), for the function restart. */
static double encoder_F(anamo_trainer *t, const train_batch *X, const float *unused)
{
    step_losses s;
    encoder_losses(t, X, &s);
    (void)unused;
    return s.loss;
}

/* f(θ) = loss(D_φ(E_θ(X)), X), the smooth part, for backtracking. */
static double encoder_f(anamo_trainer *t, const train_batch *X, const float *unused)
{
    (void)unused;
    return train_decoder_loss(t, block_forward(&t->m->enc, X->x, X->B), X->x, X->B, NULL);
}

/* ∇f(y_j) into the encoder's grads; F(y_j) and its parts into at_y. */
static void encoder_gradient(anamo_trainer *t, const train_batch *X, step_losses *at_y)
{
    train_forward(t, X, at_y);
    block_backward(&t->m->enc, train_decoder_backward(t, X->B, 1, 0), X->B, 0, 1);
    train_dist_reduce_grads(t, &t->m->enc);
}

/* ---- the decoder's objective, the codes H fixed ------------------------------------------ */

/* f(φ) on the codes H: the loss, plus λ·g where the decoder's columns weight g (decoder_l1;
 * plain ℓ1 is constant in φ). The loss's gradient goes to dxhat when not NULL. */
static double decoder_loss(anamo_trainer *t, const train_batch *X, const float *H, float *dxhat)
{
    double f = train_decoder_loss(t, H, X->x, X->B, dxhat);
    if (t->spec.penalty == ANAMO_PENALTY_DECODER_L1)
        f += t->spec.lambda * penalty_forward(t, H, X->B, NULL);
    return f;
}

/* f(φ), for backtracking and the function restart. */
static double decoder_f(anamo_trainer *t, const train_batch *X, const float *H)
{
    return decoder_loss(t, X, H, NULL);
}

/* ∇f(y_j) into the decoder's grads; returns f(y_j). */
static double decoder_gradient(anamo_trainer *t, const train_batch *X, const float *H)
{
    const double f = decoder_loss(t, X, H, t->dxhat);
    train_decoder_backward(t, X->B, 0, 1);
    penalty_decoder_backward(t, H, X->B);
    train_dist_reduce_grads(t, &t->m->dec);
    return f;
}

/* ---- the pieces of an iteration ---------------------------------------------------------- */

/* e_j or d_j: the fixed step, or Beck–Teboulle's on f from y_j (the block's parameters, the
 * gradient in its grads). y_j is saved either way; trial is the search's work span. */
static float step_size(anamo_trainer *t, const phase_rt *rt, int which, float fixed,
                       const train_objective *f, double f_y, float *y_j, float *trial)
{
    block *b = which == 0 ? &t->m->enc : &t->m->dec;
    if (!rt->backtrack) {
        memcpy(y_j, b->params, (size_t)b->nparams * sizeof(float));
        return fixed;
    }
    /* the search tests the gradient step itself: for the encoder, before its iterative prox */
    optim_cfg from = optim_defaults(OPTIM_ACCELERATED, fixed);
    from.unit_norm = which == 1 ? train_decoder_constraint(t) : NULL;
    return train_backtrack(t, which, f, f_y, &from, rt->backtrack_eta, y_j, trial);
}

/* The block's parameters ← y_j − step·∇f(y_j), projected onto the unit-norm set (unit_norm not
 * NULL: the decoder's x_{j+1} stays feasible, the constraint being part of its prox). */
static void gradient_step(block *b, float step, const float *y_j, const norm_groups *unit_norm)
{
    for (int64_t k = 0; k < b->nparams; k++)
        b->params[k] = y_j[k] - step * b->grads[k];
    norm_groups_project(unit_norm, b->params);
}

/* x_{j+1} = prox_{e·λ·g}(z), z in the encoder's parameters (kept in z_span), by K sub-gradient
 * iterations u_{i+1} = u_i − η·(e·λ·∂g(u_i) + (u_i − z)) from u_0 = z, in place. */
static void subgradient_prox(anamo_trainer *t, const anamo_phase *ph, const train_batch *X, float e,
                             float *z_span)
{
    block *enc = &t->m->enc;
    const int64_t n = enc->nparams, codes = (int64_t)X->B * enc->out_dim;
    const float lam_e = t->spec.lambda * e, eta = ph->anamo.prox_step;
    if (lam_e == 0.0f)
        return; /* the prox of 0 is the identity: x_{j+1} = z */
    const float *z = memcpy(z_span, enc->params, (size_t)n * sizeof(float));
    for (int i = 0; i < ph->anamo.prox_iters; i++) {
        const float *h = block_forward(enc, X->x, X->B);
        /* ∂g/∂h = n_j·sign(h)/B (sign 0 = 0; n_j = 1 for plain ℓ1): a weighted threshold */
        memset(t->code_grad, 0, (size_t)codes * sizeof *t->code_grad);
        penalty_subgradient(t, h, X->B, t->code_grad);
        block_backward(enc, t->code_grad, X->B, 0, 1); /* enc.grads = ∂g(u) */
        train_dist_reduce_grads(t, enc);
        float *u = enc->params;
        const float *dg = enc->grads;
        for (int64_t k = 0; k < n; k++)
            u[k] -= eta * (lam_e * dg[k] + (u[k] - z[k]));
    }
}

/* Whether y_{j+1} restarts at x_{j+1} (the block's parameters): "gradient", the step from y_j
 * went against the momentum; "function", F rose, F(x_{j+1}) > F(x_j), one more evaluation of
 * F (F_j follows the iterates). */
static int restart_due(anamo_trainer *t, const phase_rt *rt, int which, const train_objective *F,
                       const float *y_j, double *F_j)
{
    const block *b = which == 0 ? &t->m->enc : &t->m->dec;
    if (rt->opt.restart == RESTART_GRADIENT)
        return accel_against_momentum(y_j, b->params, b->opt_state, b->nparams);
    if (rt->opt.restart != RESTART_FUNCTION)
        return 0;
    const double F_next = F->at(t, F->batch, F->h);
    const int rose = F_next > *F_j;
    *F_j = F_next;
    return rose;
}

/* ---- Algorithm 1 --------------------------------------------------------------------------- */

/* The encoder's half, φ fixed: J_enc FISTA iterations on F(θ) = f(θ) + λ·g(θ) from θ; F at
 * θ_0 and its parts into start. */
static int encoder_iterations(anamo_trainer *t, int phase_idx, const train_batch *X,
                              step_losses *start, anamo_err *err)
{
    const anamo_phase *ph = &t->spec.phases[phase_idx];
    const phase_rt *rt = &t->rt[phase_idx];
    block *enc = &t->m->enc;
    accel_start(enc->params, enc->opt_state, enc->nparams); /* x_0 = y_0 = θ, s_0 = 1 */
    if (ph->anamo.enc_iters ==
        0) { /* the loss at the start, which the iterations report otherwise */
        encoder_losses(t, X, start);
        return train_check_loss(t, phase_idx, start->loss, err);
    }
    float *y_j = t->scratch[1], *work = t->scratch[0];
    const train_objective f = {encoder_f, X, NULL}, F = {encoder_F, X, NULL};
    double F_j = 0.0;
    for (int j = 0; j < ph->anamo.enc_iters; j++) {
        step_losses at_y;
        encoder_gradient(t, X, &at_y); /* f(y_j), ∇f(y_j) */
        if (j == 0) {
            *start = at_y, F_j = at_y.loss;
            int rc = train_check_loss(t, phase_idx, F_j, err);
            if (rc)
                return rc;
        }
        const float e = step_size(t, rt, 0, ph->anamo.enc_lr, &f, at_y.recon, y_j, work); /* e_j */
        gradient_step(enc, e, y_j, NULL);    /* z = y_j − e_j·∇f(y_j) */
        subgradient_prox(t, ph, X, e, work); /* x_{j+1} = prox_{e_j·λ·g}(z) */
        accel_advance(enc->params, enc->opt_state, enc->nparams,
                      restart_due(t, rt, 0, &F, y_j, &F_j)); /* s_{j+1}, y_{j+1} */
    }
    accel_finish(enc->params, enc->opt_state, enc->nparams); /* θ ← x_{J_enc} */
    t->p.steps[0] += ph->anamo.enc_iters;
    return ANAMO_OK;
}

/* The decoder's half, θ fixed: J_dec accelerated-gradient iterations on f(φ) over the codes H. */
void inner_decoder_iterations(anamo_trainer *t, const phase_rt *rt, const train_batch *X,
                              const float *H, int dec_iters, float dec_lr)
{
    block *dec = &t->m->dec;
    float *y_j = t->scratch[1], *work = t->scratch[0];
    const train_objective f = {decoder_f, X, H};
    double F_j = 0.0;
    accel_start(dec->params, dec->opt_state, dec->nparams); /* x_0 = y_0 = φ, s_0 = 1 */
    for (int j = 0; j < dec_iters; j++) {
        const double f_y = decoder_gradient(t, X, H); /* f(y_j), ∇f(y_j) */
        if (j == 0)
            F_j = f_y;
        const float d = step_size(t, rt, 1, dec_lr, &f, f_y, y_j, work); /* d_j */
        gradient_step(dec, d, y_j, train_decoder_constraint(t)); /* x_{j+1} = y_j − d_j·∇f(y_j) */
        accel_advance(dec->params, dec->opt_state, dec->nparams,
                      restart_due(t, rt, 1, &f, y_j, &F_j)); /* s_{j+1}, y_{j+1} */
    }
    if (dec_iters > 0)
        accel_finish(dec->params, dec->opt_state, dec->nparams); /* φ ← x_{J_dec} */
    t->p.steps[1] += dec_iters;
}

/* One outer iteration on the mini-batch X_k. */
static int anamo_step(anamo_trainer *t, int phase_idx, const train_batch *X, step_losses *out,
                      anamo_err *err)
{
    const anamo_phase *ph = &t->spec.phases[phase_idx];
    train_set_modes(t, 1, 0); /* the decoder is fixed while the encoder moves */
    int rc = encoder_iterations(t, phase_idx, X, out, err);
    if (rc)
        return rc;
    train_set_modes(t, 0, 1);  /* and the encoder while the decoder moves */
    float *H = t->batch_codes; /* H = E_θ(X_k), once */
    memcpy(H, block_forward(&t->m->enc, X->x, X->B),
           (size_t)((int64_t)X->B * t->m->enc.out_dim) * sizeof(float));
    resample_mark(t, H, X->B);
    inner_decoder_iterations(t, &t->rt[phase_idx], X, H, ph->anamo.dec_iters, ph->anamo.dec_lr);
    t->codes_valid = 0;
    return ANAMO_OK;
}

const scheme SCHEME_ANAMO = {.name = "encoder then decoder",
                             .enter = anamo_enter,
                             .step = anamo_step,
                             .uses = SCHEME_USES_WORK_SPANS,
                             .updates = {1, 1},
                             .fixed_steps = 1};
