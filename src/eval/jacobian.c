/* jacobian.c — the decoder-Jacobian-weighted code ℓ1 (see jacobian.h) by forward-mode
 * tangents, batched.
 *
 * At one code h the decoder runs its primal forward with B = 1 (channel-major and sample-major
 * coincide there), and each activation layer's f′ at its primal input is kept. Then T unit
 * tangents e_j go through the decoder's linearization at h as a batch of T rows, T ≤ max_batch
 * so that every layer's own buffers hold them:
 *   linear, Conv2d, ConvTranspose2d   their forward with the bias pointed at zeros (the same
 *                                     sgemm over T rows as training uses)
 *   batch norm (evaluation)           x · γ/√(running_var + ε) per channel
 *   activation                        x · f′(primal input), broadcast over the T rows
 *   flatten, unflatten                reshapes
 * stopping before a final activation. Row t of the result is ∂z/∂h_j, and its norm is w_j.
 * A code of m values costs m tangent rows, ⌈m/max_batch⌉ batched passes; the weighted sum skips
 * the columns whose code is 0, which add nothing to it. */
#include "eval/jacobian.h"

#include "core/err.h"
#include "nn/model.h"

#include <math.h>
#include <string.h>

/* Below this many elements an OpenMP fork costs more than the loop it splits. */
#define TANGENT_OMP_MIN 32768

/* What one call needs besides the layers' own buffers. */
typedef struct jac_work {
    int stop;                         /* z is layer stop-1's output (the input if stop is 0) */
    int64_t fp_off[BLOCK_MAX_LAYERS]; /* activation layer i's f′ at fprime + fp_off[i] */
    float *fprime;
    float *ones;   /* an upstream gradient of ones: act_backward then gives f′ itself */
    float *zero;   /* the widest bias, zeroed: a tangent has no bias */
    float *e;      /* (max_batch, code_dim) unit tangents */
    int64_t *idx;  /* code_dim: the columns to compute */
    double *tnorm; /* (max_batch) norms of one batch of tangents */
    double *norms; /* (code_dim) */
} jac_work;

static void work_free(jac_work *w)
{
    anamo_free(w->fprime);
    anamo_free(w->ones);
    anamo_free(w->zero);
    anamo_free(w->e);
    anamo_free(w->idx);
    anamo_free(w->tnorm);
    anamo_free(w->norms);
}

static int work_alloc(const block *d, jac_work *w, anamo_err *err)
{
    memset(w, 0, sizeof *w);
    w->stop = d->layers[d->nlayers - 1].kind == LAYER_ACT ? d->nlayers - 1 : d->nlayers;
    int64_t nfp = 0, widest_act = 1, widest_bias = 1;
    for (int i = 0; i < w->stop; i++) {
        const layer *l = &d->layers[i];
        if (l->kind == LAYER_ACT) {
            w->fp_off[i] = nfp;
            nfp += l->in_dim;
            widest_act = l->in_dim > widest_act ? l->in_dim : widest_act;
        } else if ((l->kind == LAYER_LINEAR || l->kind == LAYER_CONV2D ||
                    l->kind == LAYER_CONVT2D) &&
                   l->out_c > widest_bias) {
            widest_bias = l->out_c;
        }
    }
    const int64_t K = d->in_dim, B = d->max_batch;
    w->fprime = anamo_alloc((size_t)(nfp ? nfp : 1) * sizeof(float));
    w->ones = anamo_alloc((size_t)widest_act * sizeof(float));
    w->zero = anamo_alloc((size_t)widest_bias * sizeof(float));
    w->e = anamo_alloc((size_t)(B * K) * sizeof(float));
    w->idx = anamo_alloc((size_t)K * sizeof(int64_t));
    w->tnorm = anamo_alloc((size_t)B * sizeof(double));
    w->norms = anamo_alloc((size_t)K * sizeof(double));
    if (!w->fprime || !w->ones || !w->zero || !w->e || !w->idx || !w->tnorm || !w->norms) {
        work_free(w);
        return anamo_err_set(err, ANAMO_ERR_NOMEM,
                             "decoder Jacobian: cannot allocate the tangent "
                             "work for %lld codes × %lld rows",
                             (long long)K, (long long)B);
    }
    for (int64_t i = 0; i < widest_act; i++)
        w->ones[i] = 1.0f;
    memset(w->zero, 0, (size_t)widest_bias * sizeof(float));
    return ANAMO_OK;
}

/* The primal forward at h, through the model's code buffer so that the decoder never keeps a
 * pointer to the caller's memory; then f′ of every activation at its input, taken from
 * act_backward so that its conventions (relu′(0) = 0, step_ste's window) are the training's. */
static void primal_forward(anamo_model *m, jac_work *w, const float *h)
{
    block *d = &m->dec;
    memcpy(m->codebuf, h, (size_t)d->in_dim * sizeof(float));
    block_forward_upto(d, m->codebuf, 1, w->stop);
    for (int i = 0; i < w->stop; i++) {
        layer *l = &d->layers[i];
        if (l->kind == LAYER_ACT)
            act_backward(l, i ? d->layers[i - 1].out : m->codebuf, w->ones,
                         w->fprime + w->fp_off[i], 1);
    }
}

/* ---- the linearization, layer by layer, on T tangent rows -------------------------------- */

/* A linear or convolution layer's forward without its bias: the layer's own kernel, so the
 * tangents get the same sgemm and threads as a training batch. The bias pointer is restored;
 * no parameter is written. */
static void affine_tangent(layer *l, const float *in, int T, float *zero)
{
    float *bias = l->bias;
    l->bias = zero;
    if (l->kind == LAYER_LINEAR)
        linear_forward(l, in, T);
    else if (l->kind == LAYER_CONV2D)
        conv2d_forward(l, in, T);
    else
        convt2d_forward(l, in, T);
    l->bias = bias;
}

/* Batch norm in evaluation mode is x·γ/√(running_var + ε) + const: the tangent keeps the
 * scale, with invstd computed as batchnorm_forward does. */
static void batchnorm_tangent(layer *l, const float *in, int T)
{
    const int64_t C = l->in_c, P = (int64_t)l->in_h * l->in_w;
    const layout lay = layout_of(l->in_cm, T, C, P);
#pragma omp parallel for if ((int64_t)T * C * P > TANGENT_OMP_MIN)
    for (int64_t c = 0; c < C; c++) {
        const float invstd = (float)(1.0 / sqrt((double)l->running_var[c] + l->eps));
        const float scale = l->weight[c] * invstd;
        for (int b = 0; b < T; b++) {
            const float *x = in + b * lay.sb + c * lay.sc;
            float *y = l->out + b * lay.sb + c * lay.sc;
            for (int64_t p = 0; p < P; p++)
                y[p] = x[p] * scale;
        }
    }
}

/* y = x · f′ where f′ (C·P values, one sample) is shared by the T rows. Sample-major rows are
 * one contiguous product each; channel-major has P-long runs per (channel, row). */
static void act_tangent(layer *l, const float *in, int T, const float *fp)
{
    const int64_t C = l->in_c, P = (int64_t)l->in_h * l->in_w, D = C * P;
    float *out = l->out;
    if (!l->in_cm) {
#pragma omp parallel for if ((int64_t)T * D > TANGENT_OMP_MIN)
        for (int b = 0; b < T; b++)
            for (int64_t i = 0; i < D; i++)
                out[b * D + i] = in[b * D + i] * fp[i];
        return;
    }
#pragma omp parallel for collapse(2) if ((int64_t)T * D > TANGENT_OMP_MIN)
    for (int64_t c = 0; c < C; c++)
        for (int b = 0; b < T; b++) {
            const int64_t off = c * T * P + b * P;
            for (int64_t p = 0; p < P; p++)
                out[off + p] = in[off + p] * fp[c * P + p];
        }
}

/* Pushes the tangents through layer l; returns where its output tangents lie. */
static const float *tangent_layer(layer *l, const float *in, int T, const jac_work *w, int i)
{
    switch (l->kind) {
    case LAYER_LINEAR:
    case LAYER_CONV2D:
    case LAYER_CONVT2D: affine_tangent(l, in, T, w->zero); return l->out;
    case LAYER_BATCHNORM: batchnorm_tangent(l, in, T); return l->out;
    case LAYER_ACT: act_tangent(l, in, T, w->fprime + w->fp_off[i]); return l->out;
    case LAYER_FLATTEN:
    case LAYER_UNFLATTEN:
    default:
        /* sample-major rows are already the reshaped rows (block.c copies them; no need) */
        if (!l->in_cm)
            return in;
        layout_convert(in, 1, l->out, 0, T, l->in_c, (int64_t)l->in_h * l->in_w);
        return l->out;
    }
}

/* ‖row t‖₂ of T tangents of C channels × P positions in either layout, accumulated in double
 * (the rows are read in place: converting channel-major to sample-major first would only
 * copy them). */
static void tangent_norms(const float *z, int cm, int T, int64_t C, int64_t P, double *out)
{
    const layout lay = layout_of(cm, T, C, P);
#pragma omp parallel for if ((int64_t)T * C * P > TANGENT_OMP_MIN)
    for (int t = 0; t < T; t++) {
        double s = 0.0;
        for (int64_t c = 0; c < C; c++) {
            const float *r = z + t * lay.sb + c * lay.sc;
            for (int64_t p = 0; p < P; p++)
                s += (double)r[p] * r[p];
        }
        out[t] = sqrt(s);
    }
}

/* norms[idx[k]] = ‖∂z/∂h_idx[k] (h)‖₂ for k < count, max_batch tangents per pass. */
static void column_norms(anamo_model *m, jac_work *w, const float *h, const int64_t *idx,
                         int64_t count, double *norms)
{
    block *d = &m->dec;
    const int64_t K = d->in_dim;
    const layer *last = w->stop ? &d->layers[w->stop - 1] : NULL;
    const int cm = last ? last->out_cm : 0;
    const int64_t C = last ? last->out_c : d->in_c;
    const int64_t P = last ? (int64_t)last->out_h * last->out_w : (int64_t)d->in_h * d->in_w;
    primal_forward(m, w, h);
    for (int64_t first = 0; first < count; first += d->max_batch) {
        const int T = (int)(count - first < d->max_batch ? count - first : d->max_batch);
        memset(w->e, 0, (size_t)(T * K) * sizeof(float));
        for (int t = 0; t < T; t++)
            w->e[t * K + idx[first + t]] = 1.0f;
        const float *z = w->e;
        for (int i = 0; i < w->stop; i++)
            z = tangent_layer(&d->layers[i], z, T, w, i);
        tangent_norms(z, cm, T, C, P, w->tnorm);
        for (int t = 0; t < T; t++)
            norms[idx[first + t]] = w->tnorm[t];
    }
}

/* ---- the two calls ------------------------------------------------------------------------ */

/* Work allocated and the decoder in evaluation mode; *was_training keeps its mode. */
static int begin(anamo_model *m, jac_work *w, int *was_training, anamo_err *err)
{
    int rc = work_alloc(&m->dec, w, err);
    if (rc)
        return rc;
    *was_training = m->dec.training;
    block_set_training(&m->dec, 0);
    return ANAMO_OK;
}

static void end(anamo_model *m, jac_work *w, int was_training)
{
    block_set_training(&m->dec, was_training);
    work_free(w);
}

int decoder_jacobian_norms(anamo_model *m, const float *h, double *norms, anamo_err *err)
{
    if (!m || !h || !norms)
        return anamo_err_set(err, ANAMO_ERR_ARG,
                             "decoder Jacobian: model, code and norms are "
                             "required");
    jac_work w;
    int was_training;
    int rc = begin(m, &w, &was_training, err);
    if (rc)
        return rc;
    for (int64_t j = 0; j < m->dec.in_dim; j++)
        w.idx[j] = j;
    column_norms(m, &w, h, w.idx, m->dec.in_dim, norms);
    end(m, &w, was_training);
    return ANAMO_OK;
}

int decoder_jacobian_weighted_l1(anamo_model *m, const float *codes, int64_t n, double *sum,
                                 anamo_err *err)
{
    if (!m || !sum || n < 0 || (n > 0 && !codes))
        return anamo_err_set(err, ANAMO_ERR_ARG,
                             "decoder Jacobian: %lld codes (model, codes and "
                             "sum are required)",
                             (long long)n);
    jac_work w;
    int was_training;
    int rc = begin(m, &w, &was_training, err);
    if (rc)
        return rc;
    const int64_t K = m->dec.in_dim;
    double s = 0.0;
    for (int64_t b = 0; b < n; b++) {
        const float *h = codes + b * K;
        int64_t count = 0;
        for (int64_t j = 0; j < K; j++)
            if (h[j] != 0.0f) /* |0|·w_j is 0: no tangent needed */
                w.idx[count++] = j;
        if (count)
            column_norms(m, &w, h, w.idx, count, w.norms);
        for (int64_t k = 0; k < count; k++)
            s += fabs((double)h[w.idx[k]]) * w.norms[w.idx[k]];
    }
    end(m, &w, was_training);
    *sum = s;
    return ANAMO_OK;
}
