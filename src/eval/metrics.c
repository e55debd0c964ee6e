/* metrics.c — what a trained model does on a dataset: the loss it was trained on, the seeds'
 * reconstruction bias (1/M) Σ‖x − x̂‖₂, explained variance, the code ℓ1 raw and weighted by the
 * decoder (its first-layer column norms; its Jacobian), against the input ℓ1 (their ratio is
 * the seeds' "compression"), L0, the fraction of zero codes and the code units never active.
 * docs/MEASURES.md says what each is invariant to.
 * Across ranks (model_evaluate_across) each rank passes over its shard of the set and of the
 * Jacobian's samples, and the ranks add their sums, OR their units' activity and gather the
 * code words: every rank ends with the whole set's metrics. */
#include "core/err.h"
#include "dist/gather.h"
#include "loss/loss.h"
#include "eval/eval.h"
#include "eval/jacobian.h"
#include "nn/model.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define EVAL_SUMS 11 /* the doubles from recon to x_sq, summed across ranks in one call */
typedef struct eval_sums {
    double recon, l1, l1_decoder, nonzero, sq_err, bias, input_l1, zeros, ones, x_sq, jacobian;
    double *x_sum;        /* (in_dim) Σ x per feature, input scale */
    const double *weight; /* (code_dim) ‖W₁ group of unit j‖, or NULL */
} eval_sums;

/* Adds one batch's reconstruction sums; x and xhat in the model's (normalized) space. */
static void eval_rows(const anamo_model *m, const float *x, const float *xhat, int B, eval_sums *s)
{
    const int64_t D = m->in_dim;
    for (int b = 0; b < B; b++) {
        double row_sq = 0.0, row_l1 = 0.0;
        for (int64_t j = 0; j < D; j++) {
            double scale = m->standardize ? m->norm_std[j] : 1.0;
            double shift = m->standardize ? m->norm_mean[j] : 0.0;
            double d = (xhat[b * D + j] - x[b * D + j]) * scale; /* raw-scale error */
            double raw = x[b * D + j] * scale + shift;
            row_sq += d * d;
            row_l1 += fabs(raw);
            s->x_sum[j] += raw;
            s->x_sq += raw * raw;
        }
        s->sq_err += row_sq;
        s->bias += sqrt(row_sq);
        s->input_l1 += row_l1;
    }
}

/* Adds one batch's code sums, and marks the units seen active (bit 0) and not 1 (bit 1). */
static void eval_codes(const float *h, int B, int64_t code_dim, eval_sums *s, uint8_t *active)
{
    for (int b = 0; b < B; b++)
        for (int64_t k = 0; k < code_dim; k++) {
            float v = h[b * code_dim + k];
            s->l1 += fabsf(v);
            if (s->weight)
                s->l1_decoder += s->weight[k] * fabsf(v);
            if (v == 0.0f)
                s->zeros += 1.0;
            else
                active[k] |= 1, s->nonzero += 1.0;
            if (v == 1.0f)
                s->ones += 1.0;
            else
                active[k] |= 2; /* for bit usage: this unit is not always 1 */
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

/* ‖W₁ group of unit j‖₂ for every code unit j, from the first map's groups g (NULL when
 * out of memory). */
static double *unit_weights(const anamo_model *m, const norm_groups *g)
{
    const int64_t code_dim = m->enc.out_dim, per_group = code_dim / g->count;
    double *w = malloc((size_t)code_dim * sizeof *w);
    for (int64_t j = 0; w && j < code_dim; j++)
        w[j] = norm_groups_norm(g, m->dec.params, j / per_group);
    return w;
}

#define JACOBIAN_CHUNK 256

/* The Jacobian-weighted ℓ1 summed over samples [from, to) of `count` evenly spaced samples of
 * ds. */
static int jacobian_sum(anamo_model *m, const anamo_dataset *ds, int64_t count, int64_t from,
                        int64_t to, float *codes, double *sum, anamo_err *err)
{
    int64_t idx[JACOBIAN_CHUNK];
    const int64_t code_dim = m->enc.out_dim;
    const int64_t chunk = m->max_batch < JACOBIAN_CHUNK ? m->max_batch : JACOBIAN_CHUNK;
    *sum = 0.0;
    for (int64_t first = from; first < to; first += chunk) {
        int B = (int)(to - first < chunk ? to - first : chunk);
        for (int b = 0; b < B; b++) /* sample i of count: floor(i·n/count) */
            idx[b] = (int64_t)((double)(first + b) * (double)ds->n / (double)count);
        model_load_batch(m, ds, idx, 0, B);
        /* the Jacobian pass reuses the code buffer binary codes live in: a copy */
        memcpy(codes, model_codes(m, B, m->binary_codes), (size_t)B * code_dim * sizeof *codes);
        double part;
        int rc = decoder_jacobian_weighted_l1(m, codes, B, &part, err);
        if (rc)
            return rc;
        *sum += part;
    }
    return ANAMO_OK;
}

/* Σ‖x − x̄‖² from Σx and Σ‖x‖², with x̄ the training mean when the model has it. */
static double spread(const anamo_model *m, const eval_sums *s, double M, int *from_train)
{
    double total = s->x_sq;
    *from_train = m->data_mean != NULL;
    for (int64_t j = 0; j < m->in_dim; j++) {
        double mu = m->data_mean ? m->data_mean[j] : s->x_sum[j] / M;
        total += -2.0 * mu * s->x_sum[j] + M * mu * mu;
    }
    return total;
}

static void finish_metrics(const anamo_model *m, const eval_sums *s, const uint8_t *active,
                           double M, anamo_metrics *out)
{
    const int64_t code_dim = m->enc.out_dim;
    out->code_l1 = s->l1 / M;
    out->code_l1_decoder = s->weight ? s->l1_decoder / M : NAN;
    out->mse = s->sq_err / (M * (double)m->in_dim);
    out->bias = s->bias / M;
    out->input_l1 = s->input_l1 / M;
    out->zero_codes = s->zeros / (M * (double)code_dim);
    out->l0 = s->nonzero / M;
    for (int64_t k = 0; k < code_dim; k++) {
        out->dead_units += !(active[k] & 1);
        out->bits_used += active[k] == 3; /* both 0s and 1s seen */
    }
    out->dead_fraction = (double)out->dead_units / (double)code_dim;
    out->ones = s->ones / (M * (double)code_dim);
    double total = spread(m, s, M, &out->mean_from_train);
    out->explained_variance = total > 0 ? 1.0 - s->sq_err / total : NAN;
}

/* Rows [from, to) of ds. */
static int eval_pass(anamo_model *m, const anamo_dataset *ds, int64_t from, int64_t to,
                     anamo_loss_kind loss, eval_sums *s, uint8_t *active, uint64_t *words)
{
    const int64_t code_dim = m->enc.out_dim;
    const int from_logits = model_bce_from_logits(m, loss);
    for (int64_t first = from; first < to; first += m->max_batch) {
        int B = (int)(to - first < m->max_batch ? to - first : m->max_batch);
        model_load_batch(m, ds, NULL, first, B);
        const float *h = model_codes(m, B, m->binary_codes);
        const float *xhat = block_forward(&m->dec, h, B);
        if (words)
            pack_codes(h, B, code_dim, words + first);
        /* with BCE after a final sigmoid the loss reads the sigmoid's input, the logits */
        const float *pred = from_logits ? block_last_input(&m->dec, B) : xhat;
        s->recon += loss_forward(loss, pred, m->xbuf, NULL, B, m->in_dim, from_logits) * B;
        eval_codes(h, B, code_dim, s, active);
        eval_rows(m, m->xbuf, xhat, B, s);
    }
    return ANAMO_OK;
}

/* The ranks' sums added, their units' activity ORed (bit by bit) and their code words
 * gathered, so that every rank holds the whole set's. */
static int combine(const dist_comm *c, const anamo_model *m, const anamo_dataset *ds, eval_sums *s,
                   uint8_t *active, uint64_t *words, anamo_err *err)
{
    const int64_t D = m->in_dim, code_dim = m->enc.out_dim;
    double *sums = malloc((size_t)(EVAL_SUMS + D) * sizeof *sums);
    int64_t *bits = malloc((size_t)(2 * code_dim) * sizeof *bits);
    int rc = sums && bits ? ANAMO_OK
                          : anamo_err_set(err, ANAMO_ERR_NOMEM, "evaluate: out of memory");
    if (!rc) {
        memcpy(sums, &s->recon, EVAL_SUMS * sizeof *sums);
        memcpy(sums + EVAL_SUMS, s->x_sum, (size_t)D * sizeof *sums);
        for (int64_t k = 0; k < code_dim; k++)
            bits[2 * k] = active[k] & 1, bits[2 * k + 1] = (active[k] >> 1) & 1;
        rc = dist_allreduce_sum_double((dist_comm *)c, sums, EVAL_SUMS + D, err);
    }
    if (!rc)
        rc = dist_allreduce_max_int64(c, bits, 2 * code_dim, err);
    if (!rc && words)
        rc = dist_allgather_u64(c, words, ds->n, err);
    if (!rc) {
        memcpy(&s->recon, sums, EVAL_SUMS * sizeof *sums);
        memcpy(s->x_sum, sums + EVAL_SUMS, (size_t)D * sizeof *sums);
        for (int64_t k = 0; k < code_dim; k++)
            active[k] = (uint8_t)(bits[2 * k] | (bits[2 * k + 1] << 1));
    }
    free(sums), free(bits);
    return rc;
}

/* The passes over this rank's rows and Jacobian samples (all of them for one rank). */
static int evaluate_share(anamo_model *m, const anamo_dataset *ds, const anamo_eval_spec *spec,
                          const dist_comm *c, int64_t jac, eval_sums *s, uint8_t *active,
                          uint64_t *words, anamo_err *err)
{
    int64_t first = 0, count = ds->n, jfirst = 0, jcount = jac;
    if (c) {
        dist_shard(ds->n, c->rank, c->size, &first, &count);
        dist_shard(jac, c->rank, c->size, &jfirst, &jcount);
    }
    model_set_eval(m);
    int rc = eval_pass(m, ds, first, first + count, spec->loss, s, active, words);
    float *codes = jcount > 0 ? malloc((size_t)(JACOBIAN_CHUNK * m->enc.out_dim) * sizeof *codes)
                              : NULL;
    if (!rc && jcount > 0)
        rc = codes ? jacobian_sum(m, ds, jac, jfirst, jfirst + jcount, codes, &s->jacobian, err)
                   : anamo_err_set(err, ANAMO_ERR_NOMEM, "evaluate: out of memory");
    free(codes);
    return !rc && c ? combine(c, m, ds, s, active, words, err) : rc;
}

int model_evaluate_across(anamo_model *m, const anamo_dataset *ds, const anamo_eval_spec *spec,
                          const dist_comm *c, anamo_metrics *out, anamo_err *err)
{
    memset(out, 0, sizeof *out);
    if (ds->dim != m->in_dim)
        return anamo_err_set(err, ANAMO_ERR_ARG,
                             "%s: samples have %lld values, the model takes %lld", ds->source,
                             (long long)ds->dim, (long long)m->in_dim);
    if (c && c->size == 1)
        c = NULL;
    const int64_t code_dim = m->enc.out_dim;
    const int want_words = m->binary_codes && code_dim <= 64;
    norm_groups g;
    int first_map;
    const char *what;
    const int has_groups = model_code_groups(m, &g, &first_map, &what) == 0;
    eval_sums s = {.weight = has_groups ? unit_weights(m, &g) : NULL};
    s.x_sum = calloc((size_t)m->in_dim, sizeof *s.x_sum);
    uint8_t *active = calloc((size_t)code_dim, 1);
    uint64_t *words = want_words ? calloc((size_t)ds->n + 1, 8) : NULL;
    int rc = ANAMO_OK;
    if (!active || !s.x_sum || (want_words && !words) || (has_groups && !s.weight))
        rc = anamo_err_set(err, ANAMO_ERR_NOMEM, "evaluate: out of memory");
    const double M = (double)(ds->n > 0 ? ds->n : 1);
    int64_t jac = spec->jacobian_samples ? spec->jacobian_samples : ANAMO_JACOBIAN_SAMPLES;
    jac = jac < 0 ? 0 : jac > ds->n ? ds->n : jac;
    if (!rc)
        rc = evaluate_share(m, ds, spec, c, jac, &s, active, words, err);
    if (!rc) {
        out->n = ds->n;
        out->recon_loss = s.recon / M;
        finish_metrics(m, &s, active, M, out);
        out->jacobian_samples = jac;
        out->code_l1_jacobian = jac > 0 ? s.jacobian / (double)jac : NAN;
        double penalty = spec->penalty == ANAMO_PENALTY_DECODER_L1 ? out->code_l1_decoder
                                                                   : out->code_l1;
        out->loss = out->recon_loss + (spec->lambda != 0.0f ? spec->lambda * penalty : 0.0);
        out->distinct_codes = !m->binary_codes ? 0 : words ? count_distinct(words, ds->n) : -1;
    }
    free(active), free(words), free(s.x_sum), free((void *)s.weight);
    return rc;
}

int anamo_evaluate(anamo_model *m, const anamo_dataset *ds, const anamo_eval_spec *spec,
                   anamo_metrics *out, anamo_err *err)
{
    return model_evaluate_across(m, ds, spec, NULL, out, err);
}
