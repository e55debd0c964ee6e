/* resample.c — dead-unit resampling (Anthropic, "Towards Monosemanticity", 2023, "Neuron
 * resampling"). Every resample_every steps, the code units that were zero on every training
 * sample of the last resample_window steps are re-initialized:
 *   1. a pool of RESAMPLE_POOL training samples, drawn from (seed, step), is scored by its
 *      squared reconstruction error ℓ_b = ‖x̂_b − x_b‖² (both blocks in evaluation mode);
 *   2. each dead unit j draws a sample b with probability ∝ ℓ_b²;
 *   3. encoder: row j of its last linear layer ← 0.2·(mean norm of the alive rows)·a_b/‖a_b‖,
 *      a_b that layer's input for sample b (x_b itself for a one-layer encoder), bias j ← 0:
 *      the unit now fires on the inputs reconstructed worst;
 *   4. decoder: column j of its first layer ← (mean norm of the alive columns)·r/‖r‖ with
 *      r = −∂ℓ/∂(that layer's output) for sample b, the direction that reduces b's error (for a
 *      one-layer decoder without a final activation, the residual x_b − x̂_b itself); projected
 *      again under a unit-norm decoder;
 *   5. the optimizer state of those coordinates restarts (optim_reset_coords), and so does the
 *      units' activity window.
 * The units are the code's: the encoder must end in a linear layer followed by activations
 * only, and the decoder must begin (past flatten/identity) with a linear layer. */
#include "core/err.h"
#include "train/trainer.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define RESAMPLE_POOL 1024
#define RESAMPLE_ENCODER_SCALE 0.2f /* the paper's factor on the alive rows' mean norm */

/* The encoder's last linear layer, when only activations follow it; -1 otherwise. */
static int code_layer(const block *enc)
{
    int i = enc->nlayers - 1;
    while (i >= 0 && enc->layers[i].kind == LAYER_ACT)
        i--;
    return i >= 0 && enc->layers[i].kind == LAYER_LINEAR ? i : -1;
}

int resample_check(const anamo_model *m, const anamo_train_spec *spec, anamo_err *err)
{
    if (spec->resample_every < 0)
        return anamo_err_set(err, ANAMO_ERR_CONFIG, "train.resample_every = %lld must be >= 0",
                             (long long)spec->resample_every);
    if (spec->resample_every == 0)
        return ANAMO_OK;
    if (spec->resample_window < 1)
        return anamo_err_set(err, ANAMO_ERR_CONFIG,
                             "train.resample_window = %lld must be >= 1 (steps a unit must stay "
                             "zero to count as dead)",
                             (long long)spec->resample_window);
    norm_groups g;
    int first;
    const char *what;
    if (code_layer(&m->enc) < 0 || model_code_groups(m, &g, &first, &what) ||
        m->dec.layers[first].kind != LAYER_LINEAR)
        return anamo_err_set(err, ANAMO_ERR_CONFIG,
                             "train.resample_every needs an encoder ending in a linear layer "
                             "(then activations only) and a decoder starting with one");
    for (int i = 0; i < spec->nphases; i++)
        if (spec->phases[i].kind == ANAMO_PHASE_FREECODES)
            return anamo_err_set(err, ANAMO_ERR_CONFIG,
                                 "train.resample_every: free codes are variables of their own, "
                                 "not an encoder's units; resampling is for joint, nam, anamo");
    return ANAMO_OK;
}

void resample_mark(anamo_trainer *t, const float *h, int B)
{
    if (!t->last_active)
        return;
    const int64_t m = t->m->enc.out_dim, step = t->p.iteration + 1;
    for (int b = 0; b < B; b++)
        for (int64_t j = 0; j < m; j++)
            if (h[b * m + j] != 0.0f)
                t->last_active[j] = step;
}

/* Squared errors ℓ_b of the pool's samples (idx), into loss. */
static void score_pool(anamo_trainer *t, const int64_t *idx, int n, double *loss)
{
    anamo_model *m = t->m;
    const int64_t D = m->in_dim;
    model_set_eval(m);
    for (int first = 0; first < n; first += m->max_batch) {
        int B = n - first < m->max_batch ? n - first : m->max_batch;
        model_load_batch(m, t->train, idx + first, 0, B);
        const float *xhat = block_forward(&m->dec, block_forward(&m->enc, m->xbuf, B), B);
        for (int b = 0; b < B; b++) {
            double sq = 0.0;
            for (int64_t d = 0; d < D; d++) {
                double e = xhat[b * D + d] - m->xbuf[b * D + d];
                sq += e * e;
            }
            loss[first + b] = sq;
        }
    }
}

/* A pool index drawn with probability ∝ loss², from the cumulative sums cum. */
static int draw(const double *cum, int n, anamo_rng *rng)
{
    const double u = anamo_rng_uniform(rng) * cum[n - 1];
    int lo = 0, hi = n - 1;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (cum[mid] > u)
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo;
}

/* Mean ‖row‖ of layer l's weight (out × in) over the rows not dead (all, if none is alive). */
static double mean_row_norm(const layer *l, const uint8_t *dead)
{
    double sum = 0.0, all = 0.0;
    int64_t alive = 0;
    for (int64_t j = 0; j < l->out_dim; j++) {
        double sq = 0.0;
        for (int64_t i = 0; i < l->in_dim; i++)
            sq += (double)l->weight[j * l->in_dim + i] * l->weight[j * l->in_dim + i];
        all += sqrt(sq);
        if (!dead[j])
            sum += sqrt(sq), alive++;
    }
    return alive ? sum / (double)alive : all / (double)l->out_dim;
}

/* Mean ‖column‖ of the decoder's first layer over the units not dead. */
static double mean_column_norm(const anamo_trainer *t, const uint8_t *dead, const norm_groups *g)
{
    double sum = 0.0, all = 0.0;
    int64_t alive = 0;
    for (int64_t j = 0; j < g->count; j++) {
        double n = norm_groups_norm(g, t->m->dec.params, j);
        all += n;
        if (!dead[j])
            sum += n, alive++;
    }
    return alive ? sum / (double)alive : all / (double)g->count;
}

typedef struct revival {
    int code_layer, first_map; /* encoder layer producing the code; decoder's first map */
    norm_groups cols;          /* the decoder's first-layer columns */
    double row_norm, col_norm; /* the new row's and column's norms */
    int64_t *coords;           /* scratch: coordinates whose optimizer state restarts */
} revival;

/* Encoder row j (and bias j) toward sample b's input of the code layer (b already in xbuf). */
static void revive_row(anamo_trainer *t, const revival *r, int64_t j)
{
    block *enc = &t->m->enc;
    layer *l = &enc->layers[r->code_layer];
    const float *a = block_forward_upto(enc, t->m->xbuf, 1, r->code_layer);
    double sq = 0.0;
    for (int64_t i = 0; i < l->in_dim; i++)
        sq += (double)a[i] * a[i];
    const float scale = sq > 0 ? (float)(RESAMPLE_ENCODER_SCALE * r->row_norm / sqrt(sq)) : 0.0f;
    for (int64_t i = 0; i < l->in_dim; i++) {
        l->weight[j * l->in_dim + i] = scale * a[i];
        r->coords[i] = (l->weight - enc->params) + j * l->in_dim + i;
    }
    l->bias[j] = 0.0f;
    r->coords[l->in_dim] = l->bias - enc->params + j;
    optim_reset_coords((optim_kind)t->p.opt_kind[0], enc->params, enc->opt_state, enc->nparams,
                       r->coords, t->p.opt_kind[0] >= 0 ? l->in_dim + 1 : 0);
}

/* Decoder column j along −∂ℓ/∂(first layer's output) for the sample in xbuf. */
static void revive_column(anamo_trainer *t, const revival *r, int64_t j)
{
    anamo_model *m = t->m;
    block *dec = &m->dec;
    const float *h = block_forward(&m->enc, m->xbuf, 1);
    train_decoder_loss(t, h, m->xbuf, 1, t->dxhat);
    const int last = t->from_logits ? dec->nlayers - 1 : dec->nlayers;
    const float *g = r->first_map + 1 >= last
                         ? t->dxhat
                         : block_backward_span(dec, r->first_map + 1, last, t->dxhat, 1, 1, 0);
    const norm_groups *c = &r->cols;
    double sq = 0.0;
    for (int64_t i = 0; i < c->len; i++)
        sq += (double)g[i] * g[i];
    const float scale = sq > 0 ? (float)(-r->col_norm / sqrt(sq)) : 0.0f;
    for (int64_t i = 0; i < c->len; i++) {
        r->coords[i] = c->offset + j * c->group_stride + i * c->elem_stride;
        dec->params[r->coords[i]] = scale * g[i];
    }
    norm_groups_project_one(train_decoder_constraint(t), dec->params, j);
    optim_reset_coords((optim_kind)t->p.opt_kind[1], dec->params, dec->opt_state, dec->nparams,
                       r->coords, t->p.opt_kind[1] >= 0 ? c->len : 0);
}

/* Units zero on every sample of the last window of steps; returns how many. */
static int64_t find_dead(const anamo_trainer *t, int64_t step, uint8_t *dead)
{
    int64_t count = 0;
    for (int64_t j = 0; j < t->m->enc.out_dim; j++) {
        dead[j] = step - t->last_active[j] >= t->spec.resample_window;
        count += dead[j];
    }
    return count;
}

static int revive(anamo_trainer *t, const uint8_t *dead, revival *r, anamo_rng *rng)
{
    const int n = t->train->n < RESAMPLE_POOL ? (int)t->train->n : RESAMPLE_POOL;
    int64_t *idx = malloc((size_t)n * sizeof *idx);
    double *cum = malloc((size_t)n * sizeof *cum);
    if (!idx || !cum) {
        free(idx), free(cum);
        return -1;
    }
    for (int i = 0; i < n; i++)
        idx[i] = (int64_t)anamo_rng_below(rng, (uint64_t)t->train->n);
    score_pool(t, idx, n, cum);
    for (int i = 0; i < n; i++) /* probability ∝ ℓ² */
        cum[i] = cum[i] * cum[i] + (i ? cum[i - 1] : 0.0);
    const int64_t step = t->p.iteration + 1;
    for (int64_t j = 0; j < t->m->enc.out_dim && cum[n - 1] > 0; j++) {
        if (!dead[j])
            continue;
        model_load_batch(t->m, t->train, &idx[draw(cum, n, rng)], 0, 1);
        revive_column(t, r, j); /* from the residual while unit j is still silent */
        revive_row(t, r, j);
        t->last_active[j] = step;
    }
    free(idx), free(cum);
    return 0;
}

int resample_if_due(anamo_trainer *t, int64_t *count, anamo_err *err)
{
    const int64_t step = t->p.iteration + 1, every = t->spec.resample_every;
    *count = 0;
    if (every <= 0 || step % every != 0)
        return ANAMO_OK;
    anamo_model *m = t->m;
    revival r = {.code_layer = code_layer(&m->enc)};
    const char *what;
    model_code_groups(m, &r.cols, &r.first_map, &what);
    const layer *cl = &m->enc.layers[r.code_layer];
    uint8_t *dead = calloc((size_t)m->enc.out_dim, 1);
    r.coords = malloc((size_t)(cl->in_dim + 1 + r.cols.len) * sizeof *r.coords);
    int rc = dead && r.coords ? ANAMO_OK
                              : anamo_err_set(err, ANAMO_ERR_NOMEM, "resample: out of memory");
    if (!rc) /* across ranks: a unit active on any rank's rows is active */
        rc = train_dist_latest(t, t->last_active, m->enc.out_dim, err);
    if (!rc && (*count = find_dead(t, step, dead)) > 0) {
        r.row_norm = mean_row_norm(cl, dead);
        r.col_norm = mean_column_norm(t, dead, &r.cols);
        anamo_rng rng;
        anamo_rng_seed(&rng, t->spec.seed ^ (0x9E3779B97F4A7C15ull * (uint64_t)step));
        if (revive(t, dead, &r, &rng))
            rc = anamo_err_set(err, ANAMO_ERR_NOMEM, "resample: out of memory");
        t->codes_valid = 0; /* a decoder phase's cached codes are computed again */
        if (!rc && train_phase_uses_code_cache(t))
            rc = train_compute_codes(t, err);
    }
    free(dead), free(r.coords);
    return rc;
}
