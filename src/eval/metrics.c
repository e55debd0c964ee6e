/* metrics.c — what a trained model does on a dataset: the loss it was trained on, the seeds'
 * reconstruction bias (1/M) Σ‖x − x̂‖₂, the code ℓ1 against the input ℓ1 (their ratio is the
 * seeds' "compression"), the fraction of zero codes and the code units never active. */
#include "core/err.h"
#include "loss/loss.h"
#include "nn/model.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct eval_sums {
    double recon, l1, sq_err, bias, input_l1, zeros, ones;
} eval_sums;

/* Adds one batch's contributions; x and xhat in the model's (normalized) space. */
static void eval_batch(const anamo_model *m, const float *x, const float *xhat, const float *h,
                       int B, eval_sums *s, uint8_t *active)
{
    const int64_t D = m->in_dim, code_dim = m->enc.out_dim;
    for (int b = 0; b < B; b++) {
        double row_sq = 0.0, row_l1 = 0.0;
        for (int64_t j = 0; j < D; j++) {
            double scale = m->standardize ? m->norm_std[j] : 1.0;
            double shift = m->standardize ? m->norm_mean[j] : 0.0;
            double d = (xhat[b * D + j] - x[b * D + j]) * scale; /* raw-scale error */
            row_sq += d * d;
            row_l1 += fabs(x[b * D + j] * scale + shift);
        }
        s->sq_err += row_sq;
        s->bias += sqrt(row_sq);
        s->input_l1 += row_l1;
        for (int64_t k = 0; k < code_dim; k++) {
            float v = h[b * code_dim + k];
            s->l1 += fabsf(v);
            if (v == 0.0f)
                s->zeros += 1.0;
            else
                active[k] |= 1;
            if (v == 1.0f)
                s->ones += 1.0;
            else
                active[k] |= 2; /* for bit usage: this unit is not always 1 */
        }
    }
}

/* Binary code words as 64-bit integers, one per sample. */
static void pack_codes(const float *h, int B, int64_t code_dim, uint64_t *words)
{
    for (int b = 0; b < B; b++) {
        uint64_t w = 0;
        for (int64_t k = 0; k < code_dim; k++)
            w |= (uint64_t)(h[b * code_dim + k] != 0.0f) << k;
        words[b] = w;
    }
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

static int64_t count_distinct(uint64_t *words, int64_t n)
{
    qsort(words, (size_t)n, sizeof *words, cmp_u64);
    int64_t distinct = n > 0;
    for (int64_t i = 1; i < n; i++)
        distinct += words[i] != words[i - 1];
    return distinct;
}

int anamo_evaluate(anamo_model *m, const anamo_dataset *ds, anamo_loss_kind loss, float lambda,
                   anamo_metrics *out, anamo_err *err)
{
    memset(out, 0, sizeof *out);
    if (ds->dim != m->in_dim)
        return anamo_fail(err, ANAMO_ERR_ARG, "%s: samples have %lld values, the model takes %lld",
                          ds->source, (long long)ds->dim, (long long)m->in_dim);
    const int64_t code_dim = m->enc.out_dim;
    uint8_t *active = calloc((size_t)code_dim, 1);
    uint64_t *words = m->binary_codes && code_dim <= 64 ? calloc((size_t)ds->n + 1, 8) : NULL;
    if (!active || (m->binary_codes && code_dim <= 64 && !words)) {
        free(active), free(words);
        return anamo_fail(err, ANAMO_ERR_NOMEM, "evaluate: out of memory");
    }
    const int from_logits = model_bce_from_logits(m, loss);
    model_set_eval(m);
    eval_sums s = {0};
    for (int64_t first = 0; first < ds->n; first += m->max_batch) {
        int B = (int)(ds->n - first < m->max_batch ? ds->n - first : m->max_batch);
        model_load_batch(m, ds, NULL, first, B);
        const float *h = model_codes(m, B, m->binary_codes);
        const float *xhat = block_forward(&m->dec, h, B);
        if (words)
            pack_codes(h, B, code_dim, words + first);
        /* with BCE after a final sigmoid the loss reads the sigmoid's input, the logits */
        const float *pred = from_logits ? block_last_input(&m->dec, B) : xhat;
        s.recon += loss_forward(loss, pred, m->xbuf, NULL, B, m->in_dim, from_logits) * B;
        eval_batch(m, m->xbuf, xhat, h, B, &s, active);
    }
    const double M = (double)(ds->n > 0 ? ds->n : 1);
    out->n = ds->n;
    out->recon_loss = s.recon / M;
    out->code_l1 = s.l1 / M;
    out->loss = out->recon_loss + lambda * out->code_l1;
    out->mse = s.sq_err / (M * (double)m->in_dim);
    out->bias = s.bias / M;
    out->input_l1 = s.input_l1 / M;
    out->zero_codes = s.zeros / (M * (double)code_dim);
    for (int64_t k = 0; k < code_dim; k++) {
        out->dead_units += !(active[k] & 1);
        out->bits_used += active[k] == 3; /* both 0s and 1s seen */
    }
    out->ones = s.ones / (M * (double)code_dim);
    out->distinct_codes = !m->binary_codes ? 0 : words ? count_distinct(words, ds->n) : -1;
    free(active);
    free(words);
    return ANAMO_OK;
}
