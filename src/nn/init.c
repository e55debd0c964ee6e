/* init.c — initial weights. Draws go tensor by tensor, element by element, in the block's
 * parameter order, so one seed always gives the same weights.
 *   pytorch  nn.Linear.reset_parameters: kaiming_uniform_(a=√5) on W is U(±1/√fan_in), and
 *            b ~ U(±1/√fan_in)
 *   glorot   W ~ U(±√(6/(fan_in + fan_out))) (Glorot & Bengio 2010), b = 0
 *   he       W ~ N(0, 2/fan_in) (He et al. 2015), b = 0
 *   uniform  W, b ~ U(±a): seed 000's "uniform near zero"
 * (fan_in of a convolution is in_c·k·k; of a transposed one, PyTorch's out_c·k·k.) Batch
 * norm's γ and β start at 1 and 0 and draw nothing.
 * A linear layer written "linear N w=VALUE b=VALUE" (either or both) then has every weight
 * (bias) set to that constant. Its draws are still taken and then overwritten, so the other
 * layers get the same weights as without the constants (seed 002's fixed linear encoder). */
#include "nn/block.h"

#include <math.h>

static float init_bound(const param_ref *p, anamo_init_kind init, float scale)
{
    switch (init) {
    case ANAMO_INIT_PYTORCH: return 1.0f / sqrtf((float)p->fan_in);
    case ANAMO_INIT_GLOROT:
        return p->is_bias ? 0.0f : sqrtf(6.0f / (float)(p->fan_in + p->fan_out));
    case ANAMO_INIT_UNIFORM: return scale;
    case ANAMO_INIT_HE:
    default: return 0.0f;
    }
}

static void fill(float *x, int64_t n, float value)
{
    for (int64_t i = 0; i < n; i++)
        x[i] = value;
}

/* The constants of "linear N w=… b=…" over whatever was drawn. */
static void apply_constants(block *b)
{
    for (int i = 0; i < b->nlayers; i++) {
        layer *l = &b->layers[i];
        if (l->kind != LAYER_LINEAR)
            continue;
        if (l->has_const_weight)
            fill(l->weight, l->out_dim * l->in_dim, l->const_weight);
        if (l->has_const_bias)
            fill(l->bias, l->out_dim, l->const_bias);
    }
}

void block_init(block *b, anamo_init_kind init, float scale, anamo_rng *rng)
{
    for (int t = 0; t < b->nparams_tensors; t++) {
        const param_ref *p = &b->params_ref[t];
        float *w = b->params + p->offset;
        if (p->role == PARAM_ONES || p->role == PARAM_ZEROS) { /* batch norm: γ = 1, β = 0 */
            for (int64_t i = 0; i < p->numel; i++)
                w[i] = p->role == PARAM_ONES ? 1.0f : 0.0f;
            continue;
        }
        if (init == ANAMO_INIT_HE) {
            float std = p->is_bias ? 0.0f : sqrtf(2.0f / (float)p->fan_in);
            for (int64_t i = 0; i < p->numel; i++)
                w[i] = p->is_bias ? 0.0f : std * anamo_rng_normal(rng);
            continue;
        }
        float bound = init_bound(p, init, scale);
        for (int64_t i = 0; i < p->numel; i++)
            w[i] = bound == 0.0f ? 0.0f : anamo_rng_uniform_range(rng, -bound, bound);
    }
    apply_constants(b);
}
