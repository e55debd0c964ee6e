/* compare.h — what anamo compare's parts share: the arms (after a sweep's expansion), the
 * trials, and where each run lives (DIR/ARM/trial-T). */
#ifndef ANAMO_CLI_COMPARE_H
#define ANAMO_CLI_COMPARE_H

#include "anamo.h"

#include <stddef.h>
#include <stdio.h>

#define COMPARE_MAX_ARMS 64
#define COMPARE_ARM_NAME_MAX 96
/* The longest config key and value (src/config/config.h's CFG_KEY_MAX and CFG_VALUE_MAX) */
#define COMPARE_KEY_MAX 64
#define COMPARE_VALUE_MAX 1024

typedef struct compare_arm {
    char name[COMPARE_ARM_NAME_MAX];     /* directory and table name: "nam", "nam_lambda=1e-4" */
    char family[ANAMO_NAME_MAX];         /* the [arm NAME] it comes from */
    char sweep_key[2 * COMPARE_KEY_MAX]; /* its family's swept section.key ("" without a sweep) */
    char sweep_value[64];                /* the swept key's value ("" without a sweep) */
} compare_arm;

typedef struct compare_set {
    const char *dir;
    const compare_arm *arms;
    int narms, trials;
    const char *sweep_key; /* the key every family sweeps over the same values; ""
                                         without a sweep, or when the families' sweeps differ */
    const char *select;    /* "validation.METRIC" choosing each family's value, or
                                         "" */
    const char *test_spec; /* where reconstructions come from ("" for none) */
    const char *train_spec;
} compare_set;

/* DIR/ARM/trial-T */
void compare_run_dir(const compare_set *cs, int arm, int trial, char *out, size_t size);

/* results.md and results.json from every run's summary.json; the table also goes to out. */
int compare_write_results(const compare_set *cs, FILE *out, anamo_err *err);

#endif
