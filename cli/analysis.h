/* analysis.h — summary.json's model- and data-specific parts (analysis.c). */
#ifndef ANAMO_CLI_ANALYSIS_H
#define ANAMO_CLI_ANALYSIS_H

#include "anamo.h"

#include <cJSON.h>

/* *out: the "pca" object, or NULL when the model's decoder is not affine. */
int analysis_pca(anamo_model *m, const anamo_dataset *train, const anamo_dataset *test,
                 double train_mse, cJSON **out, anamo_err *err);
/* *out: the "steps" object for step-function data ds (rows in position order); also writes
 * run_dir/positions.csv. NULL (and nothing written) when ds is too small or too large. */
int analysis_steps(anamo_model *m, const anamo_dataset *ds, const char *run_dir, cJSON **out,
                   anamo_err *err);

#endif
