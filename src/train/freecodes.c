/* freecodes.c — binary codes by free codes, seed 000's third variant:
 *
 *   1. The codes H̃ (N × m) are variables of their own, started at the initial encoder's codes.
 *      For each mini-batch X_k with codes V = H̃_k (one outer iteration):
 *        J_code FISTA iterations on F(V) = loss(D_φ(V), X_k) + λ·(1/B)Σ_b Σ_j n_j|v_bj|, with
 *        the exact prox of the ℓ1 term, the soft threshold at step·λ·n_j/B (optim_fista_step,
 *        PROX_L1; n_j = 1, or the decoder's column norms under loss.penalty = decoder_l1);
 *        then J_dec accelerated-gradient iterations on the decoder with V fixed (as ANAMO's).
 *   2. When the budget is spent: h = [H̃ > 0] ∈ {0, 1}^{N × m}.
 *   3. The encoder is fitted to h:
 *        least squares, for an encoder "linear m, A" with A in {step, step_ste, sigmoid}: the
 *        affine map minimizing ‖[X 1]·W̃ − (2h − 1)‖² + ρ‖W̃‖² (ρ = 1e-3·mean diag of AᵀA, so
 *        constant pixels do not make it singular), solved by Cholesky (LAPACK's sposv); its
 *        sign predicts the bit, and A ≥ 0.5 exactly when the affine part is > 0 (≥ 0, sigmoid);
 *        bce, for any encoder ending in sigmoid: Adam at fit_lr for fit_epochs epochs on the
 *        binary cross-entropy between E(x) and h.
 *   4. The decoder is refitted to the binary codes: refit_epochs passes of J_dec accelerated
 *      iterations per mini-batch on the codes [E(x) ≥ 0.5] of the fitted encoder.
 * Evaluation then uses the codes [E(x) ≥ 0.5] (model.binary_codes). */
#include "core/err.h"
#include "core/lapack.h"
#include "data/data.h"
#include "loss/loss.h"
#include "train/scheme.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define LS_RIDGE 1e-3 /* ρ relative to the mean diagonal of AᵀA */
#define LS_CHUNK 1024 /* rows of [X 1] formed at a time */

static int freecodes_enter(anamo_trainer *t, int phase_idx, anamo_err *err)
{
    block *dec = &t->m->dec;
    int rc = block_alloc_state(dec, optim_state_floats(OPTIM_ACCELERATED, dec->nparams), err);
    if (rc)
        return rc;
    t->p.opt_kind[1] = OPTIM_ACCELERATED;
    if (!t->p.free_codes_ready) { /* H̃ starts at the initial encoder's codes */
        rc = model_encode_rows(t->m, t->train, 0, t->train->n, t->free_codes, 0, err);
        t->p.free_codes_ready = rc == ANAMO_OK;
    }
    (void)phase_idx;
    return rc;
}

/* ∇_V f for the codes V (the decoder fixed) into *grad; returns f. Across ranks each row's
 * gradient is weighted as the whole batch's mean weights it. */
static double codes_gradient(anamo_trainer *t, const train_batch *X, const float *V,
                             const float **grad)
{
    double f = train_decoder_loss(t, V, X->x, X->B, t->dxhat);
    float *g = train_decoder_backward(t, X->B, 1, 0);
    train_dist_scale(t, g, (int64_t)X->B * t->m->enc.out_dim);
    *grad = g;
    return f;
}

/* J_code FISTA iterations on the batch's codes V; returns F at the start. */
static double codes_iterations(anamo_trainer *t, int phase_idx, const train_batch *X, float *V,
                               step_losses *start)
{
    const anamo_phase *ph = &t->spec.phases[phase_idx];
    const int64_t n = (int64_t)X->B * t->m->enc.out_dim;
    optim_cfg cfg = optim_defaults(OPTIM_FISTA, ph->freecodes.code_lr);
    cfg.prox = PROX_L1;
    cfg.prox_lambda = t->spec.lambda / (float)X->total; /* λ·(1/B)Σ_b Σ_j n_j|v_bj| */
    cfg.restart = t->rt[phase_idx].opt.restart;
    if (t->spec.penalty == ANAMO_PENALTY_DECODER_L1) { /* a weighted soft threshold: τ·n_j */
        penalty_forward(t, V, X->B, NULL);             /* fills t->unit_weight (φ is fixed) */
        cfg.prox_weight = t->unit_weight;
        cfg.prox_period = t->m->enc.out_dim;
    }
    for (int j = 0; j < ph->freecodes.code_iters; j++) {
        const float *grad;
        double f = codes_gradient(t, X, V, &grad);
        if (j == 0) {
            start->recon = f;
            start->l1 = train_dist_mean(t, code_l1_forward(V, NULL, X->B, t->m->enc.out_dim, 0.0f));
            start->loss = f + t->spec.lambda * penalty_forward(t, V, X->B, NULL);
        }
        optim_fista_step(&cfg, V, grad, t->code_state, n, j + 1);
    }
    if (ph->freecodes.code_iters > 0)
        optim_finish(&cfg, V, t->code_state, n); /* V ← x_J */
    return start->loss;
}

static int freecodes_step(anamo_trainer *t, int phase_idx, const train_batch *X, step_losses *out,
                          anamo_err *err)
{
    const anamo_phase *ph = &t->spec.phases[phase_idx];
    const int64_t m = t->m->enc.out_dim;
    float *V = t->batch_codes + X->first * m; /* V = H̃_k (across ranks: this rank's rows) */
    train_set_modes(t, 0, 1);
    for (int b = 0; b < X->B; b++)
        memcpy(V + b * m, t->free_codes + X->idx[b] * m, (size_t)m * sizeof(float));
    memset(out, 0, sizeof *out);
    if (ph->freecodes.code_iters == 0) {
        const float *unused;
        out->loss = out->recon = codes_gradient(t, X, V, &unused);
    }
    int rc = train_check_loss(t, phase_idx, codes_iterations(t, phase_idx, X, V, out), err);
    if (rc)
        return rc;
    /* every rank keeps every code: the batch's rows, gathered from the ranks that moved them */
    train_dist_gather_rows(t, t->batch_codes, X, m);
    const int64_t *all = X->idx - X->first;
    const int rows = t->dist.split ? X->total : X->B;
    for (int b = 0; b < rows; b++)
        memcpy(t->free_codes + all[b] * m, t->batch_codes + b * m, (size_t)m * sizeof(float));
    t->p.steps[0] += ph->freecodes.code_iters;
    inner_decoder_iterations(t, &t->rt[phase_idx], X, V, ph->freecodes.dec_iters,
                             ph->freecodes.dec_lr);
    return ANAMO_OK;
}

/* The encoder is "linear m, A" with A a step or sigmoid: a least-squares fit applies. */
static int encoder_is_affine_step(const block *enc)
{
    if (enc->nlayers != 2 || enc->layers[0].kind != LAYER_LINEAR)
        return 0;
    act_kind a = enc->layers[1].act;
    return enc->layers[1].kind == LAYER_ACT &&
           (a == ACT_STEP || a == ACT_STEP_STE || a == ACT_SIGMOID);
}

/* AᵀA and AᵀT for A = [X 1] (N × (D+1)) and T = 2h − 1, in chunks of rows. */
static int normal_equations(anamo_trainer *t, const float *h, float *ata, float *att,
                            anamo_err *err)
{
    anamo_model *m = t->m;
    const int64_t N = t->train->n, D = m->in_dim, K = D + 1, code_dim = m->enc.out_dim;
    float *a = anamo_alloc((size_t)(LS_CHUNK * K) * sizeof *a);
    float *target = anamo_alloc((size_t)(LS_CHUNK * code_dim) * sizeof *target);
    float *x = anamo_alloc((size_t)(LS_CHUNK * D) * sizeof *x);
    if (!a || !target || !x) {
        anamo_free(a), anamo_free(target), anamo_free(x);
        return anamo_err_set(err, ANAMO_ERR_NOMEM, "least squares: out of memory");
    }
    for (int64_t first = 0; first < N; first += LS_CHUNK) {
        int rows = (int)(N - first < LS_CHUNK ? N - first : LS_CHUNK);
        data_rows(t->train, first, rows, x);
        model_normalize(m, x, rows);
        for (int r = 0; r < rows; r++) {
            memcpy(a + r * K, x + r * D, (size_t)D * sizeof *a);
            a[r * K + D] = 1.0f;
            for (int64_t k = 0; k < code_dim; k++)
                target[r * code_dim + k] = 2.0f * h[(first + r) * code_dim + k] - 1.0f;
        }
        float beta = first ? 1.0f : 0.0f;
        cblas_ssyrk(CblasRowMajor, CblasUpper, CblasTrans, (int)K, rows, 1.0f, a, (int)K, beta, ata,
                    (int)K);
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)K, (int)code_dim, rows, 1.0f, a,
                    (int)K, target, (int)code_dim, beta, att, (int)code_dim);
    }
    anamo_free(a), anamo_free(target), anamo_free(x);
    return ANAMO_OK;
}

/* Least squares with a small ridge, solved by Cholesky; W̃ ((D+1) × m) becomes the encoder's
 * weight (m × D, transposed) and bias. */
static int fit_least_squares(anamo_trainer *t, const float *h, anamo_err *err)
{
    anamo_model *m = t->m;
    const int64_t D = m->in_dim, K = D + 1, code_dim = m->enc.out_dim;
    float *ata = anamo_alloc((size_t)(K * K) * sizeof *ata);
    float *att = anamo_alloc((size_t)(K * code_dim) * sizeof *att);
    int rc = ata && att ? normal_equations(t, h, ata, att, err)
                        : anamo_err_set(err, ANAMO_ERR_NOMEM, "least squares: out of memory");
    if (!rc) {
        double trace = 0.0;
        for (int64_t i = 0; i < K; i++)
            trace += ata[i * K + i];
        const float ridge = (float)(LS_RIDGE * trace / (double)K) + 1e-6f;
        for (int64_t i = 0; i < K; i++)
            ata[i * K + i] += ridge;
        int info = lapack_sposv_rows((int)K, (int)code_dim, ata, att);
        if (info == LAPACK_NO_MEMORY)
            rc = anamo_err_set(err, ANAMO_ERR_NOMEM, "least squares: out of memory");
        else if (info != 0)
            rc = anamo_err_set(err, ANAMO_ERR_ARG, "least squares: Cholesky failed (info %d)",
                               (int)info);
    }
    if (!rc) {
        layer *lin = &m->enc.layers[0];
        for (int64_t k = 0; k < code_dim; k++) {
            for (int64_t j = 0; j < D; j++)
                lin->weight[k * D + j] = att[j * code_dim + k];
            lin->bias[k] = att[D * code_dim + k];
        }
    }
    anamo_free(ata), anamo_free(att);
    return rc;
}

/* Adam on the binary cross-entropy between E(x) (ending in sigmoid, read as logits) and h. */
static int fit_bce(anamo_trainer *t, const anamo_phase *ph, const float *h, anamo_err *err)
{
    anamo_model *m = t->m;
    block *enc = &m->enc;
    const layer *last = &enc->layers[enc->nlayers - 1];
    if (last->kind != LAYER_ACT || last->act != ACT_SIGMOID || enc->nlayers < 2)
        return anamo_err_set(err, ANAMO_ERR_CONFIG,
                             "freecodes: fit = bce needs an encoder ending in sigmoid after a "
                             "linear layer (or use fit = least_squares with 'linear M, step')");
    const int64_t N = t->train->n, code_dim = enc->out_dim;
    const int B = ph->batch;
    float *dlogits = anamo_alloc((size_t)(B * code_dim) * sizeof *dlogits);
    int rc = dlogits ? block_alloc_state(enc, optim_state_floats(OPTIM_ADAM, enc->nparams), err)
                     : anamo_err_set(err, ANAMO_ERR_NOMEM, "freecodes: out of memory");
    if (!rc)
        memset(enc->opt_state, 0, (size_t)enc->nstate * sizeof(float));
    t->p.opt_kind[0] = OPTIM_ADAM;
    const optim_cfg cfg = optim_defaults(OPTIM_ADAM, ph->freecodes.fit_lr);
    int64_t step = 0;
    for (int e = 0; !rc && e < ph->freecodes.fit_epochs; e++)
        for (int64_t first = 0; first < N; first += B) {
            int rows = (int)(N - first < B ? N - first : B);
            model_load_batch(m, t->train, NULL, first, rows);
            block_forward(enc, m->xbuf, rows);
            const float *logits = block_last_input(enc, rows);
            loss_forward(ANAMO_LOSS_BCE, logits, h + first * code_dim, dlogits, rows, code_dim, 1);
            block_backward_from(enc, enc->nlayers - 1, dlogits, rows, 0, 1);
            optim_step(&cfg, enc->params, enc->grads, enc->opt_state, enc->nparams, ++step);
        }
    anamo_free(dlogits);
    return rc;
}

/* Passes of J_dec decoder iterations per mini-batch over the fitted encoder's binary codes. */
static void refit_decoder(anamo_trainer *t, int phase_idx)
{
    const anamo_phase *ph = &t->spec.phases[phase_idx];
    anamo_model *m = t->m;
    const int64_t N = t->train->n, code_dim = m->enc.out_dim;
    for (int e = 0; e < ph->freecodes.refit_epochs; e++)
        for (int64_t first = 0; first < N; first += ph->batch) {
            int rows = (int)(N - first < ph->batch ? N - first : ph->batch);
            model_load_batch(m, t->train, NULL, first, rows);
            const train_batch X = {.idx = NULL, .x = m->xbuf, .B = rows};
            memcpy(t->batch_codes, model_codes(m, rows, 1),
                   (size_t)(rows * code_dim) * sizeof(float));
            inner_decoder_iterations(t, &t->rt[phase_idx], &X, t->batch_codes,
                                     ph->freecodes.dec_iters, ph->freecodes.dec_lr);
        }
}

static int freecodes_finish(anamo_trainer *t, int phase_idx, anamo_err *err)
{
    const anamo_phase *ph = &t->spec.phases[phase_idx];
    const int64_t count = t->train->n * t->m->enc.out_dim;
    float *h = anamo_alloc((size_t)count * sizeof *h);
    if (!h)
        return anamo_err_set(err, ANAMO_ERR_NOMEM, "freecodes: out of memory");
    for (int64_t i = 0; i < count; i++) /* h = step(H̃) */
        h[i] = t->free_codes[i] > 0.0f ? 1.0f : 0.0f;
    int least_squares = ph->freecodes.fit == ANAMO_FIT_LEAST_SQUARES ||
                        (ph->freecodes.fit == ANAMO_FIT_AUTO && encoder_is_affine_step(&t->m->enc));
    int rc;
    if (least_squares && !encoder_is_affine_step(&t->m->enc))
        rc = anamo_err_set(err, ANAMO_ERR_CONFIG,
                           "freecodes: fit = least_squares needs the "
                           "encoder 'linear M, step' (or step_ste, or sigmoid)");
    else
        rc = least_squares ? fit_least_squares(t, h, err) : fit_bce(t, ph, h, err);
    anamo_free(h);
    if (rc)
        return rc;
    t->m->binary_codes = 1; /* from now on the codes are [E(x) ≥ 0.5] */
    refit_decoder(t, phase_idx);
    t->codes_valid = 0;
    return ANAMO_OK;
}

const scheme SCHEME_FREECODES = {.name = "codes then decoder",
                                 .enter = freecodes_enter,
                                 .step = freecodes_step,
                                 .finish = freecodes_finish,
                                 .uses = SCHEME_USES_WORK_SPANS | SCHEME_USES_FREE_CODES,
                                 /* the codes' iterations are counted as the encoder's
                                    (encoder_steps, weights_updated), as they always were */
                                 .updates = {1, 1}};
