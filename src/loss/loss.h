/* loss.h — reconstruction losses and the code penalty, each with its gradient. */
#ifndef ANAMO_LOSS_LOSS_H
#define ANAMO_LOSS_LOSS_H

#include "anamo.h"

/* Reconstruction loss of xhat against x, both (B, D), averaged as the kind says (see
 * anamo_loss_kind). If dxhat is not NULL it receives ∂loss/∂xhat. With from_logits (BCE only)
 * xhat holds the logits z of a final sigmoid and the loss is computed stably from them:
 *     ℓ = max(z, 0) − z·x + log(1 + e^−|z|),   ∂ℓ/∂z = σ(z) − x. */
double loss_forward(anamo_loss_kind kind, const float *xhat, const float *x, float *dxhat, int B,
                    int64_t D, int from_logits);

/* The code penalty's ℓ1 part: returns (1/B) Σ_b ‖h_b‖₁; if dh is not NULL adds the
 * sub-gradient of λ·(1/B) Σ‖h_b‖₁, namely λ·sign(h)/B (sign 0 = 0), to it. */
double code_l1_forward(const float *h, float *dh, int B, int64_t m, float lambda);

/* The same with a weight per code unit: returns (1/B) Σ_b Σ_j w_j·|h_bj|; if dh is not NULL
 * adds λ·w_j·sign(h_bj)/B to it. */
double code_l1_weighted_forward(const float *h, float *dh, int B, int64_t m, const float *w,
                                float lambda);

/* "mse" | "mse_sum" | "bce" (the names table, src/core/names.c) */
const char *loss_name(anamo_loss_kind kind);

#endif
