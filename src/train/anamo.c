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
 * θ ← θ − e·∇_θ f(θ, φ) followed by φ ← φ − d·∇_φ f(θ_new, φ). */
#include "core/err.h"
#include "loss/loss.h"
#include "train/trainer.h"

#include <math.h>
#include <string.h>

#define ANAMO_BACKTRACK_TRIES 60

int inner_enter_phase(anamo_trainer *t, int phase_idx, anamo_err *err)
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
    t->phase_ready = 1;
    (void)phase_idx;
    return ANAMO_OK;
}

/* f at the current parameters on the batch in m->xbuf (plus λ·g when with_penalty). */
static double objective(anamo_trainer *t, int with_penalty, float *dxhat_or_null)
{
    anamo_model *m = t->m;
    const int B = t->batch;
    const float *h = block_forward(&m->enc, m->xbuf, B);
    double f = train_decoder_loss(t, h, B, dxhat_or_null);
    if (with_penalty)
        f += t->spec.lambda * penalty_forward(t, h, B, NULL);
    return f;
}

/* ∇_θ f at the encoder's current parameters into enc.grads; returns f (and fills *l1 with the
 * raw code ℓ1, *g with the penalty). */
static double encoder_gradient(anamo_trainer *t, double *l1, double *g)
{
    anamo_model *m = t->m;
    const int B = t->batch;
    double f = objective(t, 0, t->dxhat);
    const float *h = m->enc.output;
    *l1 = code_l1_forward(h, NULL, B, m->enc.out_dim, 0.0f);
    *g = t->spec.penalty == ANAMO_PENALTY_L1 ? *l1 : penalty_forward(t, h, B, NULL);
    block_backward(&m->enc, train_decoder_backward(t, B, 1, 0), B, 0, 1);
    return f;
}

/* x_{j+1} = u_K of the sub-gradient prox, starting from u_0 = z (in params). */
static void subgradient_prox(anamo_trainer *t, const anamo_phase *ph, const float *z, float e)
{
    block *enc = &t->m->enc;
    const int B = t->batch;
    const int64_t n = enc->nparams, codes = (int64_t)B * enc->out_dim;
    const float lam_e = t->spec.lambda * e, eta = ph->prox_step;
    if (lam_e == 0.0f)
        return; /* the prox of 0 is the identity: x_{j+1} = z */
    for (int i = 0; i < ph->prox_iters; i++) {
        const float *h = block_forward(enc, t->m->xbuf, B);
        /* ∂g/∂h = n_j·sign(h)/B (sign 0 = 0; n_j = 1 for plain ℓ1): a weighted threshold */
        memset(t->hbuf, 0, (size_t)codes * sizeof *t->hbuf);
        penalty_subgradient(t, h, B, t->hbuf);
        block_backward(enc, t->hbuf, B, 0, 1); /* enc.grads = ∂g(u) */
        float *u = enc->params;
        const float *dg = enc->grads;
        for (int64_t k = 0; k < n; k++)
            u[k] -= eta * (lam_e * dg[k] + (u[k] - z[k]));
    }
}

/* The decoder's f(φ) on fixed codes h: the loss, plus λ·g when g depends on the decoder's
 * columns (decoder_l1; plain ℓ1 is constant in φ). Its gradient goes to dxhat if not NULL. */
static double decoder_objective(anamo_trainer *t, const float *h, float *dxhat)
{
    double f = train_decoder_loss(t, h, t->batch, dxhat);
    if (t->spec.penalty == ANAMO_PENALTY_DECODER_L1)
        f += t->spec.lambda * penalty_forward(t, h, t->batch, NULL);
    return f;
}

typedef struct block_ctx {
    anamo_trainer *t;
    block *b;
} block_ctx;

/* f at a trial point: the encoder's loss on the batch, or the decoder's on its fixed codes
 * t->hbuf (with the penalty where the decoder's columns weight it). */
static double f_at_point(void *ctx_, const float *point)
{
    block_ctx *c = ctx_;
    memcpy(c->b->params, point, (size_t)c->b->nparams * sizeof(float));
    if (c->b == &c->t->m->enc)
        return objective(c->t, 0, NULL);
    return decoder_objective(c->t, c->t->hbuf, NULL);
}

/* The step of block which: fixed, or backtracked from y (params) along grads. Leaves the
 * gradient step y − step·grad in out (projected onto the unit-norm set for a constrained
 * decoder). */
static float choose_step(anamo_trainer *t, int which, float fixed, double f_y, float *out)
{
    block *b = which == 0 ? &t->m->enc : &t->m->dec;
    const anamo_phase *ph = &t->spec.phases[t->p.phase_idx];
    const int64_t n = b->nparams;
    const norm_groups *unit_norm = which == 1 ? train_decoder_constraint(t) : NULL;
    float step = fixed;
    if (t->rt[t->p.phase_idx].backtrack) {
        float *y = t->scratch[1];
        memcpy(y, b->params, (size_t)n * sizeof(float));
        block_ctx ctx = {t, b};
        double L = t->p.lipschitz[which] > 0 ? t->p.lipschitz[which] : 1.0 / fixed;
        int ok;
        L = backtrack_step_projected(y, b->grads, f_y, L, ph->backtrack_eta, PROX_NONE, 0.0f,
                                     unit_norm, out, n, f_at_point, &ctx,
                                     ANAMO_BACKTRACK_TRIES, &ok);
        memcpy(b->params, y, (size_t)n * sizeof(float));
        t->p.lipschitz[which] = L;
        step = (float)(1.0 / L);
    }
    for (int64_t k = 0; k < n; k++)
        out[k] = b->params[k] - step * b->grads[k];
    norm_groups_project(unit_norm, out); /* the decoder's x_{j+1}, inside the step */
    return step;
}

/* y_{j+1} from x_{j+1} (in params) and x_j (state), with the restart tests; updates state. */
static void extrapolate(block *b, const float *y_j, int restart_function, double F_new,
                        double *F_old, restart_kind restart)
{
    const int64_t n = b->nparams;
    float *x = b->opt_state, *params = b->params;
    double against = 0.0;
    for (int64_t k = 0; k < n; k++)
        against += (double)(y_j[k] - params[k]) * (double)(params[k] - x[k]);
    int reset = (restart == RESTART_GRADIENT && against > 0.0) ||
                (restart_function && F_new > *F_old);
    *F_old = F_new;
    const double s_j = ACCEL_S(x, n), s_next = accel_next_s(s_j);
    const float beta = reset ? 0.0f : (float)((s_j - 1.0) / s_next);
    for (int64_t k = 0; k < n; k++) {
        float x_next = params[k];
        params[k] = x_next + beta * (x_next - x[k]);
        x[k] = x_next;
    }
    ACCEL_S(x, n) = reset ? 1.0f : (float)s_next;
}

static void start_sequence(block *b)
{
    memcpy(b->opt_state, b->params, (size_t)b->nparams * sizeof(float)); /* x_0 = y_0 */
    ACCEL_S(b->opt_state, b->nparams) = 1.0f;                            /* s_0 = 1 */
}

/* J_enc FISTA iterations on the encoder; returns F at the start (θ_0) through *start. */
static int encoder_iterations(anamo_trainer *t, const anamo_phase *ph, step_losses *start)
{
    block *enc = &t->m->enc;
    const restart_kind restart = t->rt[t->p.phase_idx].opt.restart;
    float *z = t->scratch[0], *y_j = t->scratch[1];
    double F_old = 0.0;
    start_sequence(enc);
    for (int j = 0; j < ph->enc_iters; j++) {
        double l1, g, f = encoder_gradient(t, &l1, &g);
        if (j == 0) {
            start->recon = f, start->l1 = l1;
            start->loss = F_old = f + t->spec.lambda * g;
            if (!isfinite(start->loss))
                return ANAMO_ERR_DIVERGED;
        }
        float e = choose_step(t, 0, ph->enc_lr, f, z); /* z = y_j − e·∇f(y_j) */
        memcpy(y_j, enc->params, (size_t)enc->nparams * sizeof(float));
        memcpy(enc->params, z, (size_t)enc->nparams * sizeof(float)); /* u_0 = z */
        subgradient_prox(t, ph, z, e);
        double F_new = restart == RESTART_FUNCTION ? objective(t, 1, NULL) : 0.0;
        extrapolate(enc, y_j, restart == RESTART_FUNCTION, F_new, &F_old, restart);
    }
    if (ph->enc_iters > 0) /* θ ← x_{J_enc} */
        memcpy(enc->params, enc->opt_state, (size_t)enc->nparams * sizeof(float));
    t->p.steps[0] += ph->enc_iters;
    return ANAMO_OK;
}

/* ∇_φ f into dec.grads for fixed codes h; returns f. */
static double decoder_gradient(anamo_trainer *t, const float *h)
{
    double f = decoder_objective(t, h, t->dxhat);
    train_decoder_backward(t, t->batch, 0, 1);
    penalty_decoder_backward(t, h, t->batch);
    return f;
}

/* J_dec accelerated-gradient iterations on the decoder over fixed codes (t->hbuf, t->batch
 * rows) for the batch in m->xbuf. */
void inner_decoder_iterations(anamo_trainer *t, int dec_iters, float dec_lr)
{
    block *dec = &t->m->dec;
    const restart_kind restart = t->rt[t->p.phase_idx].opt.restart;
    float *x_step = t->scratch[0], *y_j = t->scratch[1];
    double F_old = 0.0;
    start_sequence(dec);
    for (int j = 0; j < dec_iters; j++) {
        double f = decoder_gradient(t, t->hbuf);
        if (j == 0)
            F_old = f;
        choose_step(t, 1, dec_lr, f, x_step); /* x_{j+1} = y_j − d·∇f(y_j) */
        memcpy(y_j, dec->params, (size_t)dec->nparams * sizeof(float));
        memcpy(dec->params, x_step, (size_t)dec->nparams * sizeof(float));
        double F_new = 0.0;
        if (restart == RESTART_FUNCTION)
            F_new = decoder_objective(t, t->hbuf, NULL);
        extrapolate(dec, y_j, restart == RESTART_FUNCTION, F_new, &F_old, restart);
    }
    if (dec_iters > 0) /* φ ← x_{J_dec} */
        memcpy(dec->params, dec->opt_state, (size_t)dec->nparams * sizeof(float));
    t->p.steps[1] += dec_iters;
}

int inner_step(anamo_trainer *t, int phase_idx, const int64_t *idx, int B, step_losses *out,
               anamo_err *err)
{
    const anamo_phase *ph = &t->spec.phases[phase_idx];
    t->batch = B;
    model_load_batch(t->m, t->train, idx, 0, B);
    train_set_modes(t, 1, 0); /* the decoder is fixed while the encoder moves */
    if (ph->enc_iters == 0) { /* the loss at the start, which the encoder loop reports */
        out->recon = objective(t, 0, NULL);
        out->l1 = code_l1_forward(t->m->enc.output, NULL, B,
                                  t->m->enc.out_dim, 0.0f);
        out->loss = out->recon + t->spec.lambda * penalty_forward(t, t->m->enc.output, B, NULL);
    }
    if ((ph->enc_iters == 0 && !isfinite(out->loss)) || encoder_iterations(t, ph, out))
        return train_diverged(t, phase_idx, out->loss, err);
    train_set_modes(t, 0, 1); /* and the encoder while the decoder moves */
    const int64_t codes = (int64_t)B * t->m->enc.out_dim; /* H = E_θ(X_k), once */
    memcpy(t->hbuf, block_forward(&t->m->enc, t->m->xbuf, B), (size_t)codes * sizeof(float));
    resample_mark(t, t->hbuf, B);
    inner_decoder_iterations(t, ph->dec_iters, ph->dec_lr);
    t->codes_valid = 0;
    return ANAMO_OK;
}
