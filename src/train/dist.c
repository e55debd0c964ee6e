/* dist.c — the trainer across ranks, data-parallel (PyTorch's DistributedDataParallel):
 *
 *   every rank draws the same batch (the sampler's order is a function of (seed, epoch) alone)
 *   and computes its share, rows [first, first + b_r) with b_r = dist_batch_share(B, r, N);
 *   a mean over the batch is Σ_r (b_r/B)·(rank r's mean over its rows), for the losses as for
 *   the gradients, so that the ranks sum their weighted gradient in place on the block's flat
 *   buffer — only the block the step updates — and take the same step on the same numbers.
 *   Every number a decision reads (a loss for a divergence test, a backtracking search, a
 *   function restart; a stop) is reduced alike, so every rank decides alike.
 *
 * A decoder phase's code cache holds, on each rank, only the rows its shares will read
 * (train_dist_compute_codes); evaluation is split by eval/metrics.c. What every rank does alike
 * on the whole data (the free codes' fit, resampling's pool) runs outside a split step and
 * reduces nothing. Batch norm keeps per-rank batch statistics (as
 * DDP does by default); its running statistics are rank 0's, broadcast after every step (DDP's
 * broadcast_buffers). A reduction that fails is kept in t->dist.err, and the step returns it. */
#include "core/err.h"
#include "dist/gather.h"
#include "train/trainer.h"

#include <stdlib.h>
#include <string.h>

static int active(const anamo_trainer *t)
{
    return t->dist.comm && t->dist.comm->size > 1 && t->dist.split;
}

/* Keeps the first failure; later reductions are skipped once one has failed. */
static int failed(anamo_trainer *t, int rc, const anamo_err *e)
{
    if (rc && !t->dist.err.code)
        t->dist.err = *e;
    return t->dist.err.code != ANAMO_OK;
}

void train_dist_split(anamo_trainer *t, const int64_t **idx, int *B, train_batch *batch)
{
    batch->first = 0, batch->total = *B;
    t->dist.share = 1.0;
    if (!t->dist.comm || t->dist.comm->size == 1)
        return;
    const dist_comm *c = t->dist.comm;
    int64_t first, count;
    dist_shard(*B, c->rank, c->size, &first, &count);
    t->dist.split = 1;
    t->dist.share = (double)count / (double)*B;
    batch->first = (int)first;
    if (count == 0) { /* more ranks than rows: one row, weighted 0, keeps the steps uniform */
        first = 0, count = 1;
        batch->first = 0;
    }
    *idx += first;
    *B = (int)count;
}

void train_dist_unsplit(anamo_trainer *t)
{
    t->dist.split = 0;
    t->dist.share = 1.0;
}

double train_dist_mean(anamo_trainer *t, double local)
{
    if (!active(t))
        return local;
    double v = t->dist.share * local;
    anamo_err e = {0};
    t->dist.scalar_reductions++;
    if (failed(t, t->dist.err.code ? ANAMO_OK : dist_allreduce_sum_double(t->dist.comm, &v, 1, &e),
               &e))
        return local;
    return v;
}

void train_dist_sum(anamo_trainer *t, double *v, int n)
{
    if (!active(t))
        return;
    anamo_err e = {0};
    t->dist.scalar_reductions++;
    failed(t, t->dist.err.code ? ANAMO_OK : dist_allreduce_sum_double(t->dist.comm, v, n, &e), &e);
}

void train_dist_count_work(anamo_trainer *t, const anamo_work before[2])
{
    if (!t->dist.comm || t->dist.comm->size == 1 || t->dist.err.code)
        return;
    block *blocks[2] = {&t->m->enc, &t->m->dec};
    double delta[6], all[6];
    for (int k = 0; k < 2; k++) {
        delta[3 * k] = (double)(blocks[k]->work.forward_samples - before[k].forward_samples);
        delta[3 * k + 1] = (double)(blocks[k]->work.backward_samples - before[k].backward_samples);
        delta[3 * k + 2] = blocks[k]->work.flop - before[k].flop;
    }
    memcpy(all, delta, sizeof all);
    anamo_err e = {0};
    t->dist.scalar_reductions++;
    if (failed(t, dist_allreduce_sum_double(t->dist.comm, all, 6, &e), &e))
        return;
    for (int k = 0; k < 2; k++) {
        blocks[k]->work.forward_samples += (int64_t)(all[3 * k] - delta[3 * k]);
        blocks[k]->work.backward_samples += (int64_t)(all[3 * k + 1] - delta[3 * k + 1]);
        blocks[k]->work.flop += all[3 * k + 2] - delta[3 * k + 2];
    }
}

void train_dist_reduce_grads(anamo_trainer *t, block *b)
{
    if (!active(t) || t->dist.err.code)
        return;
    const float w = (float)t->dist.share;
    for (int64_t i = 0; i < b->nparams; i++)
        b->grads[i] *= w;
    anamo_err e = {0};
    t->dist.grad_bytes += b->nparams * (int64_t)sizeof(float);
    t->dist.grad_reductions++;
    failed(t, dist_allreduce_sum(t->dist.comm, b->grads, b->nparams, &e), &e);
}

void train_dist_scale(const anamo_trainer *t, float *g, int64_t n)
{
    if (!active(t))
        return;
    const float w = (float)t->dist.share;
    for (int64_t i = 0; i < n; i++)
        g[i] *= w;
}

void train_dist_gather_rows(anamo_trainer *t, float *rows, const train_batch *batch, int64_t row)
{
    if (!active(t) || t->dist.err.code)
        return;
    anamo_err e = {0};
    failed(t, dist_allgather_batch(t->dist.comm, rows, batch->total, row, &e), &e);
}

int train_dist_any(anamo_trainer *t, int mine, anamo_err *err)
{
    if (!t->dist.comm || t->dist.comm->size == 1)
        return mine;
    double v = mine ? 1.0 : 0.0;
    int rc = dist_allreduce_sum_double(t->dist.comm, &v, 1, err);
    return rc ? -1 : v > 0.0;
}

static int broadcast_buffers(anamo_trainer *t, block *b, anamo_err *err)
{
    if (b->nbuffer_floats == 0)
        return ANAMO_OK;
    return dist_bcast_bytes(t->dist.comm, b->buffers, b->nbuffer_floats * (int64_t)sizeof(float), 0,
                            err);
}

int train_dist_after_step(anamo_trainer *t, anamo_err *err)
{
    if (!t->dist.comm || t->dist.comm->size == 1)
        return ANAMO_OK;
    if (t->dist.err.code) {
        *err = t->dist.err;
        return err->code;
    }
    int rc = broadcast_buffers(t, &t->m->enc, err);
    return rc ? rc : broadcast_buffers(t, &t->m->dec, err);
}

/* FNV-1a over the bytes of n floats, folded into h. */
static uint64_t fnv1a(uint64_t h, const float *p, int64_t n)
{
    const unsigned char *b = (const unsigned char *)p;
    for (int64_t i = 0; i < n * (int64_t)sizeof(float); i++)
        h = (h ^ b[i]) * 0x100000001b3ULL;
    return h;
}

static uint64_t state_hash(const anamo_trainer *t)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    const block *blocks[2] = {&t->m->enc, &t->m->dec};
    for (int k = 0; k < 2; k++) {
        h = fnv1a(h, blocks[k]->params, blocks[k]->nparams);
        if (blocks[k]->opt_state)
            h = fnv1a(h, blocks[k]->opt_state, blocks[k]->nstate);
        h = fnv1a(h, blocks[k]->buffers, blocks[k]->nbuffer_floats);
    }
    return h;
}

int train_dist_check_same(anamo_trainer *t, anamo_err *err)
{
    if (!t->dist.comm || t->dist.comm->size == 1)
        return ANAMO_OK;
    const uint64_t mine = state_hash(t);
    uint64_t rank0 = mine;
    int rc = dist_bcast_bytes(t->dist.comm, &rank0, sizeof rank0, 0, err);
    if (rc)
        return rc;
    const int differs = train_dist_any(t, rank0 != mine, err);
    if (differs < 0)
        return err->code;
    if (differs)
        return anamo_err_set(err, ANAMO_ERR_ARG,
                             "after %lld epochs the ranks' parameters and optimizer states differ "
                             "(rank %d's hash %016llx, rank 0's %016llx): every rank must run the "
                             "same config on the same data",
                             (long long)t->p.pass, t->dist.comm->rank, (unsigned long long)mine,
                             (unsigned long long)rank0);
    return ANAMO_OK;
}

int train_dist_latest(anamo_trainer *t, int64_t *last_active, int64_t n, anamo_err *err)
{
    if (!t->dist.comm || t->dist.comm->size == 1)
        return ANAMO_OK;
    return dist_allreduce_max_int64(t->dist.comm, last_active, n, err);
}

/* The samples this rank's shares read from the current position to the phase's end (or the
 * budget's), marked in mark[0 … N): the batches next_batch will draw, split as
 * train_dist_split splits them (an empty share reads the batch's first row). */
static int mark_phase_rows(const anamo_trainer *t, uint8_t *mark, anamo_err *err)
{
    const anamo_phase *ph = &t->spec.phases[t->p.phase_idx];
    const int64_t n = t->train->n;
    int64_t pass = t->p.pass, offset = t->p.offset, samples = t->p.samples;
    int64_t iters = t->p.phase_iters, seen = t->p.phase_samples;
    sampler s;
    int rc = sampler_init(&s, n, t->spec.seed, err);
    if (rc)
        return rc;
    sampler_set_pass(&s, pass);
    while (samples < t->budget && !phase_done(ph, n, iters, seen)) {
        const int64_t B = phase_batch_rows(ph, n, offset, samples, t->budget);
        int64_t first, count;
        dist_shard(B, t->dist.comm->rank, t->dist.comm->size, &first, &count);
        if (count == 0)
            first = 0, count = 1;
        for (int64_t k = 0; k < count; k++)
            mark[s.perm[offset + first + k]] = 1;
        offset += B, samples += B, seen += B, iters++;
        if (offset >= n)
            sampler_set_pass(&s, ++pass), offset = 0;
    }
    sampler_free(&s);
    return ANAMO_OK;
}

int train_dist_compute_codes(anamo_trainer *t, anamo_err *err)
{
    anamo_model *m = t->m;
    const int64_t n = t->train->n;
    uint8_t *mark = calloc((size_t)n, 1);
    int64_t *rows = malloc((size_t)m->max_batch * sizeof *rows);
    int rc = mark && rows ? mark_phase_rows(t, mark, err)
                          : anamo_err_set(err, ANAMO_ERR_NOMEM, "code cache: out of memory");
    const anamo_work before[2] = {m->enc.work, m->dec.work};
    model_set_eval(m); /* batch norm: running statistics, as model_encode_rows */
    code_cache_clear(&t->codes);
    for (int64_t i = 0; !rc && i < n;) {
        int B = 0;
        for (; i < n && B < m->max_batch; i++)
            if (mark[i])
                rows[B++] = i;
        if (B == 0)
            continue;
        model_load_batch(m, t->train, rows, 0, B);
        const float *h = model_codes(m, B, 0); /* E(x) as training uses it */
        code_cache_put_rows(&t->codes, rows, 0, B, h);
    }
    free(mark), free(rows);
    train_dist_count_work(t, before);
    t->codes_valid = rc == ANAMO_OK;
    t->dist.codes_partial = 1;
    return rc ? rc : t->dist.err.code ? (*err = t->dist.err, err->code) : ANAMO_OK;
}
