/* eval.h — the metrics of a model on a dataset, across ranks: each rank passes over its shard
 * and every rank ends with the whole set's metrics (metrics.c). c NULL or of one rank: the
 * whole set here, as anamo_evaluate. Collective. */
#ifndef ANAMO_EVAL_EVAL_H
#define ANAMO_EVAL_EVAL_H

#include "anamo.h"
#include "dist/comm.h"

int model_evaluate_across(anamo_model *m, const anamo_dataset *ds, const anamo_eval_spec *spec,
                          const dist_comm *c, anamo_metrics *out, anamo_err *err);

#endif
