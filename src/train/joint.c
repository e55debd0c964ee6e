/* joint.c — the joint phase (ANAMO_PHASE_JOINT): one optimizer step on every weight of
 * f(θ, φ) = loss(D_φ(E_θ(x)), x) + λ·g(E_θ(x), φ). Per batch: forward E, D; backward D (dW,
 * dH); add ∂(λg)/∂H; backward E (dW); then both blocks step, on gradients taken before either
 * moved. */
#include "train/scheme.h"

static int joint_enter(anamo_trainer *t, int phase_idx, anamo_err *err)
{
    const optim_cfg *cfg = &t->rt[phase_idx].opt;
    int rc = block_step_enter(t, 0, cfg, err);
    return rc ? rc : block_step_enter(t, 1, cfg, err);
}

static int joint_step(anamo_trainer *t, int phase_idx, const train_batch *batch, step_losses *out,
                      anamo_err *err)
{
    return block_step_through_encoder(t, phase_idx, batch, 1, out, err);
}

static void joint_leave(anamo_trainer *t, int phase_idx)
{
    block_step_leave(t, 0, &t->rt[phase_idx].opt);
    block_step_leave(t, 1, &t->rt[phase_idx].opt);
}

const scheme SCHEME_JOINT = {.name = "encoder+decoder",
                             .enter = joint_enter,
                             .step = joint_step,
                             .leave = joint_leave,
                             .updates = {1, 1}};
