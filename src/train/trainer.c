/* trainer.c — the outer loop shared by every scheme: walk the phase cycle, draw batches from
 * the sampler, step, and keep the books (log rows, epoch rows, timing, the budget).
 * A run is a list of phases: joint = [both]; NAM = [decoder, encoder] by default; ANAMO =
 * [inner]; free codes = [freecodes]. Each phase runs through its kind's entry in the table of
 * schemes (scheme.h); this loop does not ask which one it is. */
#include "core/err.h"
#include "eval/eval.h"
#include "train/scheme.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#if defined(__SSE2__)
#include <pmmintrin.h>
#include <xmmintrin.h>
#endif

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int check_spec(anamo_trainer *t, anamo_err *err)
{
    const anamo_train_spec *s = &t->spec;
    if (s->nphases < 1 || s->nphases > ANAMO_MAX_PHASES)
        return anamo_err_set(err, ANAMO_ERR_CONFIG, "train: %d phases (1..%d allowed)", s->nphases,
                             ANAMO_MAX_PHASES);
    if (!(s->epochs > 0))
        return anamo_err_set(err, ANAMO_ERR_CONFIG, "train: epochs = %g must be > 0", s->epochs);
    for (int i = 0; i < s->nphases; i++) {
        int rc = phase_compile(&s->phases[i], &t->rt[i], err);
        if (rc)
            return rc;
        if (s->phases[i].batch > t->m->max_batch)
            return anamo_err_set(err, ANAMO_ERR_ARG, "phase '%s': batch %d exceeds the model's %d",
                                 s->phases[i].name, s->phases[i].batch, t->m->max_batch);
        schedule_init(&t->p.sched[i], s->phases[i].opt.lr);
    }
    return ANAMO_OK;
}

/* Whether some decoder phase reads a row's codes more than once while the encoder stays as
 * it is: a phase longer than one pass over the training set, one whose steps search by
 * backtracking (each trial point looks its batch's codes up again), or one whose next phase in
 * the cycle reads the codes too. Only then does a code cache save encoder passes; at one pass
 * a phase computes every row's codes once either way, and the cache would only hold them
 * (N × code floats; the dense main job's NAM arm peaked at 94 MiB with it, 83 without). */
static int codes_read_twice(const anamo_trainer *t)
{
    const anamo_train_spec *s = &t->spec;
    for (int i = 0; i < s->nphases; i++) {
        const anamo_phase *ph = &s->phases[i], *next = &s->phases[(i + 1) % s->nphases];
        if (!(scheme_of(ph->kind)->uses & SCHEME_USES_CODE_CACHE))
            continue;
        const double passes = ph->iterations > 0
                                  ? (double)ph->iterations * ph->batch / (double)t->train->n
                                  : ph->epochs;
        if (passes > 1 || t->rt[i].backtrack ||
            (scheme_of(next->kind)->uses & SCHEME_USES_CODE_CACHE))
            return 1;
    }
    return 0;
}

static int alloc_buffers(anamo_trainer *t, anamo_err *err)
{
    anamo_model *m = t->m;
    unsigned uses = 0; /* what some phase's scheme needs */
    int need_scratch = 0;
    for (int i = 0; i < t->spec.nphases; i++) {
        uses |= scheme_of(t->spec.phases[i].kind)->uses;
        need_scratch |= t->rt[i].backtrack;
    }
    need_scratch |= (uses & SCHEME_USES_WORK_SPANS) != 0;
    if (t->spec.cache_codes == ANAMO_CACHE_CODES_AUTO) /* from here on 0 or 1 */
        t->spec.cache_codes = codes_read_twice(t);
    const int cache = (uses & SCHEME_USES_CODE_CACHE) && t->spec.cache_codes;
    const size_t batch_codes = (size_t)(m->max_batch * m->enc.out_dim) * sizeof(float);
    t->dxhat = anamo_alloc((size_t)(m->max_batch * m->in_dim) * sizeof(float));
    t->batch_codes = anamo_alloc(batch_codes);
    t->code_grad = anamo_alloc(batch_codes);
    if (!t->dxhat || !t->batch_codes || !t->code_grad)
        return anamo_err_set(err, ANAMO_ERR_NOMEM, "trainer: cannot allocate buffers");
    int rc = cache ? code_cache_init(&t->codes, t->train->n, m->enc.out_dim, m->max_batch, err)
                   : ANAMO_OK;
    if (rc)
        return rc;
    if (t->spec.resample_every > 0 &&
        !(t->last_active = calloc((size_t)m->enc.out_dim, sizeof *t->last_active)))
        return anamo_err_set(err, ANAMO_ERR_NOMEM, "trainer: cannot allocate unit activity");
    if (uses & SCHEME_USES_FREE_CODES) {
        const int64_t m_codes = m->enc.out_dim;
        t->free_codes = anamo_alloc((size_t)(t->train->n * m_codes) * sizeof(float));
        t->code_state = anamo_alloc((size_t)(2 * m->max_batch * m_codes + 1) * sizeof(float));
        if (!t->free_codes || !t->code_state)
            return anamo_err_set(err, ANAMO_ERR_NOMEM, "trainer: cannot allocate free codes");
    }
    int64_t widest = m->enc.nparams > m->dec.nparams ? m->enc.nparams : m->dec.nparams;
    for (int k = 0; need_scratch && k < 2; k++)
        if (!(t->scratch[k] = anamo_alloc((size_t)widest * sizeof(float))))
            return anamo_err_set(err, ANAMO_ERR_NOMEM, "trainer: cannot allocate work spans");
    return sampler_init(&t->smp, t->train->n, t->spec.seed, err);
}

/* The decoder's first map, for the unit-norm constraint and the decoder-weighted penalty: both
 * need its columns. The initial decoder is projected, so the constraint holds from step 0. */
static int setup_scale(anamo_trainer *t, anamo_err *err)
{
    const anamo_train_spec *s = &t->spec;
    int layer_index;
    const char *what = "?";
    const int has_groups = model_code_groups(t->m, &t->code_groups, &layer_index, &what) == 0;
    if (!has_groups)
        memset(&t->code_groups, 0, sizeof t->code_groups);
    t->code_groups.kind = NORM_NONE;
    if (s->decoder_norm != ANAMO_DECODER_NORM_NONE && !has_groups)
        return anamo_err_set(err, ANAMO_ERR_CONFIG,
                             "train.decoder_norm = %s needs the decoder's first layer (past "
                             "flatten/unflatten) to be linear or convtranspose2d; it is %s",
                             s->decoder_norm == ANAMO_DECODER_NORM_BALL ? "ball" : "sphere", what);
    if (s->penalty == ANAMO_PENALTY_DECODER_L1 && !has_groups)
        return anamo_err_set(err, ANAMO_ERR_CONFIG,
                             "loss.penalty = decoder_l1 needs the decoder's first layer (past "
                             "flatten/unflatten) to be linear or convtranspose2d; it is %s",
                             what);
    if (s->decoder_norm == ANAMO_DECODER_NORM_SPHERE)
        t->code_groups.kind = NORM_SPHERE;
    else if (s->decoder_norm == ANAMO_DECODER_NORM_BALL)
        t->code_groups.kind = NORM_BALL;
    norm_groups_project(train_decoder_constraint(t), t->m->dec.params);
    if (has_groups && !(t->unit_weight = anamo_alloc((size_t)t->m->enc.out_dim * sizeof(float))))
        return anamo_err_set(err, ANAMO_ERR_NOMEM, "trainer: cannot allocate unit weights");
    return resample_check(t->m, s, err);
}

int anamo_trainer_create(anamo_model *m, const anamo_train_spec *spec, const anamo_dataset *train,
                         const anamo_dataset *test, anamo_trainer **out, anamo_err *err)
{
    *out = NULL;
    anamo_trainer *t = calloc(1, sizeof *t);
    if (!t)
        return anamo_err_set(err, ANAMO_ERR_NOMEM, "trainer: out of memory");
    t->m = m;
    t->spec = *spec;
    t->train = train;
    t->test = test;
    t->p.opt_kind[0] = t->p.opt_kind[1] = -1;
    t->p.best_validation = INFINITY;
    if (t->spec.log_every < 1)
        t->spec.log_every = 50;
    int rc = check_spec(t, err);
    if (!rc && (train->dim != m->in_dim || train->n < 1))
        rc = anamo_err_set(err, ANAMO_ERR_ARG,
                           "%s: %lld samples of %lld values; the model takes %lld", train->source,
                           (long long)train->n, (long long)train->dim, (long long)m->in_dim);
    if (!rc && test && test->dim != m->in_dim)
        rc = anamo_err_set(err, ANAMO_ERR_ARG, "%s: samples have %lld values; the model takes %lld",
                           test->source, (long long)test->dim, (long long)m->in_dim);
    if (!rc)
        rc = setup_scale(t, err);
    if (!rc)
        rc = alloc_buffers(t, err);
    if (!rc)
        rc = anamo_model_fit_data_mean(m, train, err);
    if (rc) {
        anamo_trainer_free(t);
        return rc;
    }
    t->budget = llround(spec->epochs * (double)train->n);
    t->from_logits = model_bce_from_logits(m, spec->loss);
    *out = t;
    return ANAMO_OK;
}

int anamo_trainer_set_validation(anamo_trainer *t, const anamo_dataset *validation, anamo_err *err)
{
    if (!t || !validation)
        return anamo_err_set(err, ANAMO_ERR_ARG, "trainer: no trainer or no validation set given");
    if (validation->dim != t->m->in_dim || validation->n < 1)
        return anamo_err_set(err, ANAMO_ERR_ARG,
                             "%s: %lld samples of %lld values; the model takes "
                             "%lld",
                             validation->source, (long long)validation->n,
                             (long long)validation->dim, (long long)t->m->in_dim);
    t->validation = validation;
    return ANAMO_OK;
}

void anamo_trainer_free(anamo_trainer *t)
{
    if (!t)
        return;
    anamo_free(t->dxhat);
    anamo_free(t->batch_codes);
    anamo_free(t->code_grad);
    code_cache_free(&t->codes);
    anamo_free(t->scratch[0]);
    anamo_free(t->scratch[1]);
    anamo_free(t->free_codes);
    anamo_free(t->code_state);
    anamo_free(t->unit_weight);
    free(t->last_active);
    sampler_free(&t->smp);
    free(t);
}

static double work_flop(const anamo_trainer *t) { return t->p.work[0].flop + t->p.work[1].flop; }

int anamo_trainer_done(const anamo_trainer *t)
{
    return t->p.samples >= t->budget || t->p.stopped_early ||
           (t->spec.flop_budget > 0 && work_flop(t) >= t->spec.flop_budget);
}

void anamo_trainer_work(const anamo_trainer *t, anamo_work out[2])
{
    out[0] = t->p.work[0], out[1] = t->p.work[1];
}

/* The blocks' counters now, to charge what runs until work_since to the training. */
static void work_mark(const anamo_trainer *t, anamo_work mark[2])
{
    mark[0] = t->m->enc.work, mark[1] = t->m->dec.work;
}

static void work_since(anamo_trainer *t, const anamo_work mark[2])
{
    const anamo_work now[2] = {t->m->enc.work, t->m->dec.work};
    for (int k = 0; k < 2; k++) {
        t->p.work[k].forward_samples += now[k].forward_samples - mark[k].forward_samples;
        t->p.work[k].backward_samples += now[k].backward_samples - mark[k].backward_samples;
        t->p.work[k].flop += now[k].flop - mark[k].flop;
    }
}
int anamo_trainer_stopped_early(const anamo_trainer *t) { return t->p.stopped_early; }
int64_t anamo_trainer_best_epoch(const anamo_trainer *t, double *best_loss)
{
    if (best_loss)
        *best_loss = t->p.best_epoch ? t->p.best_validation : NAN;
    return t->p.best_epoch;
}
double anamo_trainer_seconds(const anamo_trainer *t) { return t->p.elapsed; }
double anamo_trainer_epoch_seconds(const anamo_trainer *t) { return t->p.epoch_seconds; }
double anamo_trainer_weights_updated(const anamo_trainer *t) { return t->p.weights_updated; }
int64_t anamo_trainer_epochs_done(const anamo_trainer *t) { return t->p.pass; }
int64_t anamo_trainer_iterations(const anamo_trainer *t) { return t->p.iteration; }
int64_t anamo_trainer_resampled(const anamo_trainer *t) { return t->p.resampled; }

anamo_eval_spec anamo_trainer_eval_spec(const anamo_trainer *t)
{
    anamo_eval_spec es = {.loss = t->spec.loss,
                          .lambda = t->spec.lambda,
                          .penalty = t->spec.penalty,
                          .jacobian_samples = t->spec.jacobian_samples};
    return es;
}

static int phase_finished(const anamo_trainer *t)
{
    return phase_done(&t->spec.phases[t->p.phase_idx], t->train->n, t->p.phase_iters,
                      t->p.phase_samples);
}

static void emit_log(anamo_trainer *t, const anamo_train_hooks *h, int64_t epoch, int phase_idx)
{
    log_acc *lg = &t->lg;
    if (lg->iters == 0)
        return;
    anamo_log_row row = {.epoch = epoch,
                         .iteration = t->p.iteration,
                         .phase = t->spec.phases[phase_idx].name,
                         .kind = t->spec.phases[phase_idx].kind,
                         .loss = lg->loss / lg->iters,
                         .recon_loss = lg->recon / lg->iters,
                         .code_l1 = lg->l1 / lg->iters,
                         .elapsed = t->p.elapsed,
                         .samples_per_s = lg->seconds > 0 ? lg->samples / lg->seconds : 0.0,
                         .progress = (double)t->p.samples / (double)t->budget};
    if (h && h->on_log)
        h->on_log(h->ctx, &row);
    memset(lg, 0, sizeof *lg);
}

/* The epoch's main phase takes its schedule's next learning rate, monitoring the validation
 * loss when there is a validation set, else the epoch's mean training loss. */
static void apply_schedule(anamo_trainer *t, int phase_idx, double loss)
{
    const anamo_phase *ph = &t->spec.phases[phase_idx];
    phase_rt *rt = &t->rt[phase_idx];
    if (scheme_of(ph->kind)->fixed_steps || rt->sched.kind == SCHED_CONSTANT)
        return;
    rt->opt.lr = schedule_epoch_end(&rt->sched, &t->p.sched[phase_idx], ph->opt.lr, loss);
}

/* A parameter that is NaN or Inf (a loss can stay finite for a step while the weights are
 * not): the name of its block, or NULL. */
static const char *nonfinite_block(const anamo_trainer *t)
{
    const block *blocks[2] = {&t->m->enc, &t->m->dec};
    for (int k = 0; k < 2; k++) {
        int bad = 0;
        const float *p = blocks[k]->params;
        for (int64_t i = 0; i < blocks[k]->nparams; i++)
            bad |= !isfinite(p[i]);
        if (bad)
            return blocks[k]->name;
    }
    return NULL;
}

/* The validation set after an epoch (without the Jacobian measure, the costly one): the best
 * loss so far, and early stopping when it is `early_stopping` epochs old. A loss that is not
 * below the best is no improvement. */
static int validate(anamo_trainer *t, int64_t epoch, anamo_epoch_row *row, anamo_err *err)
{
    if (!t->validation)
        return ANAMO_OK;
    anamo_eval_spec es = anamo_trainer_eval_spec(t);
    es.jacobian_samples = 0;
    int rc = model_evaluate_across(t->m, t->validation, &es, t->dist.comm, &row->validation, err);
    if (rc)
        return rc;
    row->has_validation = 1;
    if (row->validation.loss < t->p.best_validation) {
        t->p.best_validation = row->validation.loss;
        t->p.best_epoch = epoch;
    }
    if (t->spec.early_stopping > 0 && epoch - t->p.best_epoch >= t->spec.early_stopping)
        t->p.stopped_early = 1;
    return ANAMO_OK;
}

/* A hook that asked to stop, on this rank or (across ranks) on any: an error naming it. */
static int hook_stop(anamo_trainer *t, int stop, const char *what, int64_t when, anamo_err *err)
{
    const int any = train_dist_any(t, stop, err);
    if (any < 0)
        return err->code;
    if (!any)
        return ANAMO_OK;
    return anamo_err_set(err, ANAMO_ERR_IO, "stopped by %s %lld%s", what, (long long)when,
                         stop ? "" : " (on another rank)");
}

static int finish_epoch(anamo_trainer *t, const anamo_train_hooks *h, int64_t epoch, anamo_err *err)
{
    const char *bad = nonfinite_block(t);
    if (bad)
        return anamo_err_set(err, ANAMO_ERR_DIVERGED,
                             "diverged: the %s's parameters are not finite after epoch %lld "
                             "(iteration %lld)",
                             bad, (long long)epoch, (long long)t->p.iteration);
    epoch_acc *ep = &t->ep;
    anamo_epoch_row row = {.epoch = epoch,
                           .seconds = ep->seconds,
                           .encoder_steps = ep->steps[0],
                           .decoder_steps = ep->steps[1],
                           .resampled = ep->resampled};
    int most = 0;
    for (int i = 1; i < t->spec.nphases; i++)
        if (ep->phase_samples[i] > ep->phase_samples[most])
            most = i;
    row.phase = t->spec.phases[most].name;
    int rc = validate(t, epoch, &row, err);
    if (rc)
        return rc;
    apply_schedule(t, most,
                   row.has_validation ? row.validation.loss
                   : ep->batches      ? ep->loss / ep->batches
                                      : 0.0);
    if (ep->batches) {
        row.train_loss = ep->loss / ep->batches;
        row.train_recon_loss = ep->recon / ep->batches;
        row.train_code_l1 = ep->l1 / ep->batches;
    }
    row.weights_updated = (ep->steps[0] ? t->m->enc.nparams : 0) +
                          (ep->steps[1] ? t->m->dec.nparams : 0);
    t->p.epoch_seconds += ep->seconds;
    row.flop = work_flop(t);
    t->p.weights_updated += (double)row.weights_updated;
    memset(ep, 0, sizeof *ep);
    if (t->test && t->spec.eval_every_epoch) {
        const anamo_eval_spec es = anamo_trainer_eval_spec(t);
        rc = model_evaluate_across(t->m, t->test, &es, t->dist.comm, &row.test, err);
        if (rc)
            return rc;
        row.has_test = 1;
    }
    if (!rc)
        rc = train_dist_check_same(t, err);
    const int stop = !rc && h && h->on_epoch && h->on_epoch(h->ctx, &row);
    return rc ? rc : hook_stop(t, stop, "the epoch hook after epoch", epoch, err);
}

/* Takes the next batch of the current pass: at most the phase's batch size, never past the
 * end of the pass or of the budget. */
static int next_batch(anamo_trainer *t, const int64_t **idx)
{
    if (t->smp.pass != t->p.pass)
        sampler_set_pass(&t->smp, t->p.pass);
    *idx = t->smp.perm + t->p.offset;
    return (int)phase_batch_rows(&t->spec.phases[t->p.phase_idx], t->train->n, t->p.offset,
                                 t->p.samples, t->budget);
}

static void account(anamo_trainer *t, const step_losses *s, int B, double seconds)
{
    const anamo_phase *ph = &t->spec.phases[t->p.phase_idx];
    t->p.offset += B;
    t->p.samples += B;
    t->p.iteration++;
    t->p.phase_iters++;
    t->p.phase_samples += B;
    t->p.elapsed += seconds;
    t->ep.loss += s->loss, t->ep.recon += s->recon, t->ep.l1 += s->l1;
    t->ep.batches++;
    t->ep.seconds += seconds;
    t->ep.phase_samples[t->p.phase_idx] += B;
    t->ep.steps[0] += scheme_of(ph->kind)->updates[0];
    t->ep.steps[1] += scheme_of(ph->kind)->updates[1];
    t->lg.loss += s->loss, t->lg.recon += s->recon, t->lg.l1 += s->l1;
    t->lg.iters++;
    t->lg.samples += B;
    t->lg.seconds += seconds;
}

/* One iteration of the outer loop: set up the phase if needed, step, advance the data and
 * phase positions, and only then report, so that a checkpoint written by a hook always holds a
 * position a resumed run can start from. */
static int iterate(anamo_trainer *t, const anamo_train_hooks *h, anamo_step_info *info,
                   anamo_err *err)
{
    double t0 = now_seconds();
    anamo_work mark[2];
    work_mark(t, mark);
    const int resumed_mid_phase = !t->phase_ready && t->p.phase_iters > 0;
    int rc = t->phase_ready ? ANAMO_OK : train_enter_phase(t, t->p.phase_idx, err);
    /* a run resumed inside a phase refills the code cache the unsplit run filled at the phase's
     * start: charged once, so that a resume changes neither the counts nor a budget's stop */
    if (resumed_mid_phase)
        work_mark(t, mark);
    const int64_t *idx;
    int B = next_batch(t, &idx);
    step_losses s;
    const anamo_phase_kind which = t->spec.phases[t->p.phase_idx].kind;
    if (!rc)
        rc = train_step(t, t->p.phase_idx, idx, B, &s, err);
    if (!rc)
        rc = train_dist_after_step(t, err);
    int64_t resampled = 0;
    if (!rc)
        rc = resample_if_due(t, &resampled, err);
    if (rc)
        return rc;
    work_since(t, mark); /* the epoch's evaluation, below, is not training */
    t->ep.resampled += resampled;
    t->p.resampled += resampled;
    account(t, &s, B, now_seconds() - t0);
    const int64_t epoch = t->p.pass + 1;
    const int phase_idx = t->p.phase_idx;
    const int end_of_pass = t->p.offset >= t->train->n;
    if (end_of_pass) {
        t->p.pass++;
        t->p.offset = 0;
    }
    if (info)
        *info = (anamo_step_info){.epoch = epoch,
                                  .iteration = t->p.iteration,
                                  .phase = t->spec.phases[phase_idx].name,
                                  .kind = which,
                                  .batch = B,
                                  .loss = s.loss,
                                  .recon_loss = s.recon,
                                  .code_l1 = s.l1,
                                  .epoch_end = end_of_pass};
    if (phase_finished(t)) {
        train_leave_phase(t, t->p.phase_idx);
        t->p.phase_idx = (t->p.phase_idx + 1) % t->spec.nphases;
        t->p.phase_iters = t->p.phase_samples = 0;
        t->phase_ready = 0;
    }
    if (t->p.iteration % t->spec.log_every == 0 || end_of_pass || anamo_trainer_done(t))
        emit_log(t, h, epoch, phase_idx);
    rc = end_of_pass ? finish_epoch(t, h, epoch, err) : ANAMO_OK;
    const int stop = !rc && h && h->on_step && h->on_step(h->ctx, t->p.iteration, t->p.elapsed);
    if (!rc && (stop || t->dist.comm)) /* a rank's hook stops every rank */
        rc = hook_stop(t, stop, "the step hook at iteration", t->p.iteration, err);
    return rc;
}

/* Flushes denormal floats to zero on every thread of the OpenMP pool (and so in OpenBLAS,
 * which runs on the same pool), as torch.set_flush_denormal(True) does. Adam's moments of
 * weights whose gradient has gone to zero decay geometrically into the denormal range, where
 * each operation costs ~100 cycles: without this an Adam step takes a fifth of an epoch.
 * Returns the previous MXCSR so the caller can restore it. */
static unsigned flush_denormals(int on, unsigned previous)
{
#if defined(__SSE2__)
    unsigned old = _mm_getcsr();
#pragma omp parallel
    {
        unsigned csr = _mm_getcsr();
        csr = on ? csr | _MM_FLUSH_ZERO_ON | _MM_DENORMALS_ZERO_ON
                 : (csr & ~(unsigned)(_MM_FLUSH_ZERO_ON | _MM_DENORMALS_ZERO_ON)) |
                       (previous & (_MM_FLUSH_ZERO_ON | _MM_DENORMALS_ZERO_ON));
        _mm_setcsr(csr);
    }
    return old;
#else
    (void)on;
    return previous;
#endif
}

/* What every way of training checks first. */
static int check_run(const anamo_trainer *t, anamo_err *err)
{
    if (t->spec.early_stopping > 0 && !t->validation)
        return anamo_err_set(err, ANAMO_ERR_CONFIG,
                             "train: early stopping after %d epochs needs "
                             "a validation set to watch (data.validation)",
                             t->spec.early_stopping);
    return ANAMO_OK;
}

/* The stop flag (a signal handler's), on this rank or, across ranks, on any: every rank stops
 * before the same step. */
static int stop_requested(anamo_trainer *t, const anamo_train_hooks *hooks, anamo_err *err)
{
    const int mine = hooks && hooks->stop && *hooks->stop;
    const int any = t->dist.comm ? train_dist_any(t, mine, err) : mine;
    if (any < 0)
        return err->code;
    if (!any)
        return ANAMO_OK;
    return anamo_err_set(err, ANAMO_ERR_INTERRUPTED, "stopped at epoch %lld, iteration %lld",
                         (long long)t->p.pass + 1, (long long)t->p.iteration);
}

int anamo_trainer_step(anamo_trainer *t, const anamo_train_hooks *hooks, anamo_step_info *info,
                       anamo_err *err)
{
    if (!t)
        return anamo_err_set(err, ANAMO_ERR_ARG, "trainer step: the trainer is NULL");
    if (anamo_trainer_done(t))
        return anamo_err_set(err, ANAMO_ERR_ARG,
                             "trainer step: the run's budget is spent "
                             "(%lld steps, %lld epochs done)",
                             (long long)t->p.iteration, (long long)t->p.pass);
    int rc = check_run(t, err);
    if (!rc)
        rc = stop_requested(t, hooks, err);
    if (rc)
        return rc;
    unsigned saved = flush_denormals(1, 0);
    rc = iterate(t, hooks, info, err);
    flush_denormals(0, saved);
    return rc;
}

int anamo_trainer_epoch(anamo_trainer *t, const anamo_train_hooks *hooks, anamo_err *err)
{
    anamo_step_info info = {0};
    int rc = ANAMO_OK;
    while (!rc && !info.epoch_end && !(t && anamo_trainer_done(t)))
        rc = anamo_trainer_step(t, hooks, &info, err);
    return rc;
}

int anamo_trainer_finish(anamo_trainer *t, anamo_err *err)
{
    if (!t)
        return anamo_err_set(err, ANAMO_ERR_ARG, "trainer finish: the trainer is NULL");
    /* a budget that ends inside a phase ends it as a phase's end would: an accelerated method
     * leaves its iterate x_j, not the extrapolated y_j (a resumed run restarts the sequence
     * there, as at every phase entry) */
    if (t->phase_ready) {
        train_leave_phase(t, t->p.phase_idx);
        t->phase_ready = 0;
    }
    /* end-of-run work: the binary-code encoder fit of a free-codes scheme */
    unsigned saved = flush_denormals(1, 0);
    anamo_work mark[2];
    work_mark(t, mark);
    int rc = t->p.finished ? ANAMO_OK : train_finish_phases(t, err);
    work_since(t, mark);
    if (!rc)
        t->p.finished = 1;
    flush_denormals(0, saved);
    return rc;
}

/* The steps without the per-step MXCSR switch of anamo_trainer_step, then the end-of-run work:
 * an interrupted or failed run leaves its phase as it was, so that a checkpoint of it resumes
 * exactly. */
int anamo_trainer_run(anamo_trainer *t, const anamo_train_hooks *hooks, anamo_err *err)
{
    int rc = check_run(t, err);
    unsigned saved = flush_denormals(1, 0);
    while (!rc && !anamo_trainer_done(t)) {
        rc = stop_requested(t, hooks, err);
        if (!rc)
            rc = iterate(t, hooks, NULL, err);
    }
    flush_denormals(0, saved);
    return rc ? rc : anamo_trainer_finish(t, err);
}
