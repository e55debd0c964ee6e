/* nam.c — NAM's block phases: one optimizer step on one block of
 * f(θ, φ) = loss(D_φ(E_θ(x)), x) + λ·g(E_θ(x), φ), the other block fixed.
 *   encoder  forward E, D; backward D (dH only: the decoder is fixed); add ∂(λg)/∂H;
 *            backward E (dW)
 *   decoder  codes H from the cache made at the phase's start (the encoder is fixed for the
 *            whole phase, so these are the current encoder's codes), or E(x) without a cache;
 *            forward D; backward D (dW only: nobody needs dH), plus ∂(λg)/∂W₁ */
#include "train/scheme.h"

/* Fills the code cache with E(x) of every training sample. */
int train_compute_codes(anamo_trainer *t, anamo_err *err)
{
    if (t->dist.comm && t->dist.comm->size > 1) /* across ranks: the rows this rank will read */
        return train_dist_compute_codes(t, err);
    anamo_model *m = t->m;
    const int64_t n = t->train->n;
    code_cache_clear(&t->codes);
    int rc = ANAMO_OK;
    /* batch by batch, as model_encode_rows of all n rows takes them: the same bits */
    for (int64_t first = 0; !rc && first < n; first += m->max_batch) {
        const int64_t count = n - first < m->max_batch ? n - first : m->max_batch;
        /* the codes training uses: E(x) as it is, even for a model evaluated on binary codes */
        rc = model_encode_rows(m, t->train, first, count, t->batch_codes, 0, err);
        if (!rc)
            code_cache_put_rows(&t->codes, NULL, first, (int)count, t->batch_codes);
    }
    t->codes_valid = rc == ANAMO_OK;
    return rc;
}

/* The batch's codes for a decoder step: the cache's rows while it is valid, else E(x). */
static const float *decoder_codes(anamo_trainer *t, const train_batch *batch)
{
    if (!t->codes_valid)
        return block_forward(&t->m->enc, batch->x, batch->B);
    code_cache_get_rows(&t->codes, batch->idx, batch->B, t->batch_codes);
    return t->batch_codes;
}

static int encoder_enter(anamo_trainer *t, int phase_idx, anamo_err *err)
{
    return block_step_enter(t, 0, &t->rt[phase_idx].opt, err);
}

static int decoder_enter(anamo_trainer *t, int phase_idx, anamo_err *err)
{
    int rc = block_step_enter(t, 1, &t->rt[phase_idx].opt, err);
    if (!rc && t->spec.cache_codes && !t->codes_valid)
        rc = train_compute_codes(t, err);
    return rc;
}

/* F at the current weights, for the search along the decoder: the codes are looked up (or
 * computed) again for each trial point, as the step looked them up. */
static double decoder_objective(anamo_trainer *t, const train_batch *batch, const float *h)
{
    step_losses s;
    train_objective_at(t, decoder_codes(t, batch), batch, &s);
    (void)h;
    return s.loss;
}

static int encoder_step(anamo_trainer *t, int phase_idx, const train_batch *batch, step_losses *out,
                        anamo_err *err)
{
    return block_step_through_encoder(t, phase_idx, batch, 0, out, err);
}

static int decoder_step(anamo_trainer *t, int phase_idx, const train_batch *batch, step_losses *out,
                        anamo_err *err)
{
    const int B = batch->B;
    train_set_modes(t, 0, 1);
    const float *h = decoder_codes(t, batch);
    train_objective_at(t, h, batch, out);
    int rc = train_check_loss(t, phase_idx, out->loss, err);
    if (rc)
        return rc;
    resample_mark(t, h, B);
    train_decoder_backward(t, B, 0, 1);
    penalty_decoder_backward(t, h, B);
    const train_objective f = {decoder_objective, batch, NULL};
    block_step(t, 1, phase_idx, &f, out->loss);
    return ANAMO_OK;
}

static void encoder_leave(anamo_trainer *t, int phase_idx)
{
    block_step_leave(t, 0, &t->rt[phase_idx].opt);
}

static void decoder_leave(anamo_trainer *t, int phase_idx)
{
    block_step_leave(t, 1, &t->rt[phase_idx].opt);
    if (t->dist.codes_partial) /* another phase reads other rows */
        t->codes_valid = 0;
}

const scheme SCHEME_NAM_ENCODER = {.name = "encoder",
                                   .enter = encoder_enter,
                                   .step = encoder_step,
                                   .leave = encoder_leave,
                                   .updates = {1, 0}};
const scheme SCHEME_NAM_DECODER = {.name = "decoder",
                                   .enter = decoder_enter,
                                   .step = decoder_step,
                                   .leave = decoder_leave,
                                   .uses = SCHEME_USES_CODE_CACHE,
                                   .updates = {0, 1}};
