/* scheme.h — the training schemes as a table (darknet's l.forward, l.backward, l.update): one
 * entry per phase kind, each {enter, step, leave, finish}, chosen by the phase's `kind`. The
 * trainer's loop (trainer.c) runs a phase through its entry and never asks which one it is.
 *
 *   joint.c      ANAMO_PHASE_JOINT      one optimizer step on every weight
 *   nam.c        ANAMO_PHASE_ENCODER,   one optimizer step on one block, the other fixed (the
 *                ANAMO_PHASE_DECODER    decoder's codes from a cache made at the phase's start)
 *   anamo.c      ANAMO_PHASE_ANAMO      seed 000's Algorithm 1: J_enc FISTA iterations on the
 *                                       encoder, then J_dec accelerated iterations on the decoder
 *   freecodes.c  ANAMO_PHASE_FREECODES  free codes by FISTA alternating with the decoder; at the
 *                                       end the encoder is fitted to their signs
 * Below them: the objective (objective.c: decoder loss and backward, code penalty, divergence),
 * the optimizer step of joint and NAM (block_step.c), backtracking (backtrack.c), and the
 * optimizers with the accelerated sequence (src/optim). */
#ifndef ANAMO_TRAIN_SCHEME_H
#define ANAMO_TRAIN_SCHEME_H

#include "train/trainer.h"

/* The buffers a scheme needs the trainer to hold (trainer.c allocates them). */
enum {
    SCHEME_USES_CODE_CACHE = 1 << 0, /* t->codes: the training set's codes (train.cache_codes) */
    SCHEME_USES_WORK_SPANS = 1 << 1, /* t->scratch: copies of a block's parameters */
    SCHEME_USES_FREE_CODES = 1 << 2, /* t->free_codes, t->code_state */
};

typedef struct scheme {
    const char *name; /* what its phase trains, for messages */
    /* before the phase's first step (again after a resume): optimizer state, caches */
    int (*enter)(anamo_trainer *t, int phase_idx, anamo_err *err);
    /* one step on the batch; out gets the objective before the update */
    int (*step)(anamo_trainer *t, int phase_idx, const train_batch *batch, step_losses *out,
                anamo_err *err);
    /* at the phase's end (and the run's, if it ends inside the phase); NULL: nothing */
    void (*leave)(anamo_trainer *t, int phase_idx);
    /* once, when the run's budget is spent; NULL: nothing */
    int (*finish)(anamo_trainer *t, int phase_idx, anamo_err *err);
    unsigned uses;   /* SCHEME_USES_* */
    int updates[2];  /* a step counts as an update of the encoder [0], decoder [1] */
    int fixed_steps; /* its steps are its own (e_j, d_j): no learning-rate schedule */
} scheme;

extern const scheme SCHEME_JOINT, SCHEME_NAM_ENCODER, SCHEME_NAM_DECODER, SCHEME_ANAMO,
    SCHEME_FREECODES;
/* The entry of a phase kind. */
const scheme *scheme_of(anamo_phase_kind kind);

/* ---- block_step.c: the optimizer step of joint and NAM phases -------------------------------
 * The block `which` (0 encoder, 1 decoder) takes the phase's optimizer: its state carries on
 * from an earlier phase with the same optimizer, or starts fresh. */
int block_step_enter(anamo_trainer *t, int which, const optim_cfg *cfg, anamo_err *err);
/* The step of a phase whose gradients pass through the encoder's codes h = E_θ(x) (joint,
 * with decoder_too; NAM's encoder): forward E, D; backward D (∂/∂h, and ∂/∂φ with ∂(λg)/∂W₁
 * when decoder_too); add ∂(λg)/∂h; backward E (∂/∂θ); then the encoder's update, and the
 * decoder's when decoder_too. F before the update into out. */
int block_step_through_encoder(anamo_trainer *t, int phase_idx, const train_batch *batch,
                               int decoder_too, step_losses *out, anamo_err *err);
/* One optimizer update of block `which` from the gradient in its grads (f_y: the objective
 * there, f: the objective for a backtracking search). */
void block_step(anamo_trainer *t, int which, int phase_idx, const train_objective *f, double f_y);
/* Accelerated methods leave their iterate x_j, not y_j, in the block's parameters. */
void block_step_leave(anamo_trainer *t, int which, const optim_cfg *cfg);

/* ---- backtrack.c: Beck–Teboulle backtracking for a block of any scheme ---------------------
 * The step 1/L of block `which` at its parameters y, whose gradient is in its grads and f(y) =
 * f_y. The trial points are those of the step `from` describes (its lr the first guess, when
 * the block has no L yet; FISTA's prox; its unit-norm projection), L grows by eta; trial
 * points go through trial and y through y_saved, and the parameters are y again after it.
 * Remembers L in the progress. */
float train_backtrack(anamo_trainer *t, int which, const train_objective *f, double f_y,
                      const optim_cfg *from, float eta, float *y_saved, float *trial);

/* ---- anamo.c: the decoder half of Algorithm 1, shared with free codes ----------------------
 * J_dec accelerated-gradient iterations of step d (rt: fixed or backtracked, the restart) on
 * the decoder over fixed codes h (batch->B rows) for the batch's rows; φ ← x_{J_dec}. */
void inner_decoder_iterations(anamo_trainer *t, const phase_rt *rt, const train_batch *batch,
                              const float *h, int dec_iters, float dec_lr);

#endif
