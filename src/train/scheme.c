/* scheme.c — the table of schemes, indexed by phase kind, and the calls the trainer's loop
 * makes through it. */
#include "core/err.h"
#include "train/scheme.h"

const scheme *scheme_of(anamo_phase_kind kind)
{
    static const scheme *const BY_KIND[] = {
        [ANAMO_PHASE_ENCODER] = &SCHEME_NAM_ENCODER, [ANAMO_PHASE_DECODER] = &SCHEME_NAM_DECODER,
        [ANAMO_PHASE_JOINT] = &SCHEME_JOINT,         [ANAMO_PHASE_ANAMO] = &SCHEME_ANAMO,
        [ANAMO_PHASE_FREECODES] = &SCHEME_FREECODES,
    };
    return BY_KIND[kind];
}

static const scheme *scheme_of_phase(const anamo_trainer *t, int phase_idx)
{
    return scheme_of(t->spec.phases[phase_idx].kind);
}

int train_enter_phase(anamo_trainer *t, int phase_idx, anamo_err *err)
{
    t->rt[phase_idx].opt.lr = t->p.sched[phase_idx].lr; /* where the schedule has got to */
    int rc = scheme_of_phase(t, phase_idx)->enter(t, phase_idx, err);
    t->phase_ready = rc == ANAMO_OK;
    return rc;
}

int train_step(anamo_trainer *t, int phase_idx, const int64_t *idx, int B, step_losses *out,
               anamo_err *err)
{
    train_batch batch;
    train_dist_split(t, &idx, &B, &batch); /* across ranks, this rank's rows of the batch */
    model_load_batch(t->m, t->train, idx, 0, B);
    batch.idx = idx, batch.x = t->m->xbuf, batch.B = B;
    const anamo_work before[2] = {t->m->enc.work, t->m->dec.work};
    int rc = scheme_of_phase(t, phase_idx)->step(t, phase_idx, &batch, out, err);
    train_dist_count_work(t, before);
    train_dist_unsplit(t);
    return rc;
}

void train_leave_phase(anamo_trainer *t, int phase_idx)
{
    const scheme *s = scheme_of_phase(t, phase_idx);
    if (s->leave)
        s->leave(t, phase_idx);
}

int train_finish_phases(anamo_trainer *t, anamo_err *err)
{
    int rc = ANAMO_OK;
    for (int i = 0; !rc && i < t->spec.nphases; i++) {
        const scheme *s = scheme_of_phase(t, i);
        if (s->finish)
            rc = s->finish(t, i, err);
    }
    return rc;
}

int train_phase_uses_code_cache(const anamo_trainer *t)
{
    return t->phase_ready && t->spec.cache_codes &&
           (scheme_of_phase(t, t->p.phase_idx)->uses & SCHEME_USES_CODE_CACHE);
}
