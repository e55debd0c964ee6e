/* api.c — the public face of the communicator (anamo.h: anamo_dist_*) and the trainer's use of
 * it: an anamo_dist is a dist_comm the caller owns. */
#include "core/err.h"
#include "dist/comm.h"
#include "eval/eval.h"
#include "train/trainer.h"

#include <stdlib.h>

struct anamo_dist {
    dist_comm comm;
};

int anamo_dist_built_with_mpi(void) { return dist_built_with_mpi(); }

int anamo_dist_open(anamo_dist **out, int *argc, char ***argv, anamo_err *err)
{
    if (!out)
        return anamo_err_set(err, ANAMO_ERR_ARG, "dist open: out is NULL");
    *out = NULL;
    anamo_dist *d = calloc(1, sizeof *d);
    if (!d)
        return anamo_err_set(err, ANAMO_ERR_NOMEM, "dist open: out of memory");
    int rc = dist_init(&d->comm, argc, argv, err);
    if (rc) {
        free(d);
        return rc;
    }
    *out = d;
    return ANAMO_OK;
}

int anamo_dist_close(anamo_dist *d, anamo_err *err)
{
    if (!d)
        return ANAMO_OK;
    int rc = dist_finalize(&d->comm, err);
    free(d);
    return rc;
}

int anamo_dist_rank(const anamo_dist *d) { return d ? d->comm.rank : 0; }
int anamo_dist_size(const anamo_dist *d) { return d ? d->comm.size : 1; }

int anamo_dist_barrier(const anamo_dist *d, anamo_err *err)
{
    return d ? dist_barrier(&d->comm, err) : ANAMO_OK;
}

void anamo_dist_abort(const anamo_dist *d, int code)
{
    if (d)
        dist_abort(&d->comm, code);
    exit(code);
}

int anamo_trainer_set_dist(anamo_trainer *t, anamo_dist *d, anamo_err *err)
{
    if (!t || !d)
        return anamo_err_set(err, ANAMO_ERR_ARG, "trainer set dist: the %s is NULL",
                             t ? "communicator" : "trainer");
    t->dist.comm = &d->comm;
    return train_dist_check_same(t, err);
}

void anamo_trainer_dist_stats(const anamo_trainer *t, anamo_dist_stats *out)
{
    *out = (anamo_dist_stats){.ranks = t && t->dist.comm ? t->dist.comm->size : 1};
    if (!t)
        return;
    out->grad_bytes = t->dist.grad_bytes;
    out->grad_reductions = t->dist.grad_reductions;
    out->scalar_reductions = t->dist.scalar_reductions;
}

int anamo_evaluate_dist(anamo_model *m, const anamo_dataset *ds, const anamo_eval_spec *spec,
                        anamo_dist *d, anamo_metrics *out, anamo_err *err)
{
    if (!m || !ds || !spec || !out)
        return anamo_err_set(err, ANAMO_ERR_ARG, "evaluate: a NULL model, dataset, spec or out");
    return model_evaluate_across(m, ds, spec, d ? &d->comm : NULL, out, err);
}
