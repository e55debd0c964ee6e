/* jacobian.h — the decoder-Jacobian-weighted code ℓ1, a sparsity measure that rescalings
 * cannot move.
 *
 * For a code h and the decoder's output z(h) before its final activation (the input of the
 * last layer when that is an activation layer, else the decoder's output),
 *     w_j(h) = ‖∂z/∂h_j (h)‖₂            column j of the decoder's Jacobian,
 *     S      = Σ_b Σ_j |h_bj| · w_j(h_b).
 * Raw ℓ1 Σ|h| moves by c when the codes are scaled by c and the decoder's first map by 1/c
 * (the same function from x to x̂); S does not, nor does it move when a hidden layer's rows are
 * scaled by c and the next layer's columns by 1/c across a positively homogeneous activation.
 *
 * Both calls run the decoder in evaluation mode (batch norm: running statistics) and put its
 * previous mode back; they overwrite its forward buffers and the model's code buffer, as
 * anamo_evaluate does, and leave every parameter and running statistic exactly as it was. */
#ifndef ANAMO_EVAL_JACOBIAN_H
#define ANAMO_EVAL_JACOBIAN_H

#include "anamo.h"

/* Column norms ‖∂z/∂h_j‖₂ of the decoder's Jacobian at one code h (code_dim floats) into
 * norms (code_dim doubles). */
int decoder_jacobian_norms(anamo_model *m, const float *h, double *norms, anamo_err *err);

/* Σ_b Σ_j |h_bj| · ‖∂z/∂h_j (h_b)‖₂ over n codes (n × code_dim, row-major). Columns whose
 * code is exactly 0 add nothing and are not computed, so sparse codes cost less. */
int decoder_jacobian_weighted_l1(anamo_model *m, const float *codes, int64_t n, double *sum,
                                 anamo_err *err);

#endif
