/* test_dist.c — data-parallel training across ranks (src/train/dist.c). Run alone it is rank 0
 * of 1; CTest runs it again under mpiexec on 2 ranks (test_dist_mpi2), where it checks:
 *   1. After an epoch, the ranks' weights (each rank computing its share of every batch: 17
 *      and 16 rows of 33, 1 and 0 of the last) equal those of one process training the whole
 *      batch, to 1e-5 relative, for joint, NAM, ANAMO (with backtracking and the function
 *      restart) and free codes; the same run on one rank is that process bit for bit.
 *   2. The bytes all-reduced are exactly the updated block's parameter count × 4 per step:
 *      a NAM phase the one block's, joint both blocks'.
 *   3. Batch norm's running statistics end the same on every rank (the epoch's check
 *      compares every rank's parameters, optimizer states and statistics).
 *   4. anamo_evaluate_dist, each rank over its shard, gives every rank anamo_evaluate's
 *      metrics of the whole set: means to 1e-6 relative (the shards' batches start at other
 *      rows, and a product's rounding depends on its rows), counts (dead units, bits used,
 *      distinct code words) exactly; on one rank, bit for bit. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "anamo.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N_ROWS 298 /* 9 batches of 33, then one row: the second rank's share of it is empty */
#define N_FEATURES 12
#define BATCH 33
#define SAME_RELATIVE 1e-5

typedef enum scheme_case {
    CASE_JOINT,
    CASE_NAM,
    CASE_ANAMO,
    CASE_FREECODES,
    CASE_BATCHNORM
} scheme_case;

static void must(int rc, const anamo_err *err)
{
    if (rc != ANAMO_OK)
        fail_msg("anamo: %s", err->msg);
}

static void fill(float *x)
{
    for (int64_t i = 0; i < (int64_t)N_ROWS * N_FEATURES; i++)
        x[i] = (float)(0.5 + 0.45 * sin(0.37 * (double)i + 0.11 * (double)(i % 7)));
}

static anamo_model *model_for(scheme_case c)
{
    const char *enc = c == CASE_FREECODES   ? "linear 6, sigmoid"
                      : c == CASE_BATCHNORM ? "linear 8, batchnorm, relu, linear 6, relu"
                                            : "linear 6, relu";
    anamo_model_spec s = {.in_c = N_FEATURES,
                          .in_h = 1,
                          .in_w = 1,
                          .encoder = enc,
                          .decoder = "linear 16, relu, linear 12, sigmoid",
                          .init = ANAMO_INIT_PYTORCH,
                          .seed = 3,
                          .max_batch = BATCH,
                          .binary_codes = c == CASE_FREECODES};
    anamo_model *m = NULL;
    anamo_err err = {0};
    must(anamo_model_create(&s, &m, &err), &err);
    return m;
}

static anamo_phase anamo_case_phase(void)
{
    anamo_phase ph = anamo_phase_default("anamo", ANAMO_PHASE_ANAMO, ANAMO_OPT_FISTA, 0.5f, BATCH,
                                         1);
    ph.anamo.enc_iters = 3, ph.anamo.dec_iters = 4;
    ph.opt.step_rule = ANAMO_STEP_BACKTRACK;
    ph.opt.restart = ANAMO_RESTART_FUNCTION;
    return ph;
}

static anamo_train_spec spec_for(scheme_case c)
{
    anamo_train_spec s;
    memset(&s, 0, sizeof s);
    s.loss = c == CASE_ANAMO || c == CASE_FREECODES ? ANAMO_LOSS_MSE_SUM : ANAMO_LOSS_MSE;
    s.lambda = 1e-2f;
    s.penalty = c == CASE_ANAMO ? ANAMO_PENALTY_DECODER_L1 : ANAMO_PENALTY_L1;
    s.epochs = 1;
    s.seed = 7;
    s.log_every = 1000;
    s.cache_codes = 1;
    s.jacobian_samples = -1;
    if (c == CASE_JOINT || c == CASE_BATCHNORM) {
        s.phases[s.nphases++] = anamo_phase_default("joint", ANAMO_PHASE_JOINT, ANAMO_OPT_ADAM,
                                                    1e-2f, BATCH, 1);
    } else if (c == CASE_NAM) { /* half an epoch each: both phases inside the one epoch */
        s.phases[s.nphases++] = anamo_phase_default("dec", ANAMO_PHASE_DECODER, ANAMO_OPT_ADAM,
                                                    1e-2f, BATCH, 0.5);
        s.phases[s.nphases++] = anamo_phase_default("enc", ANAMO_PHASE_ENCODER, ANAMO_OPT_MOMENTUM,
                                                    1e-1f, BATCH, 0.5);
    } else if (c == CASE_ANAMO) {
        s.phases[s.nphases++] = anamo_case_phase();
    } else {
        anamo_phase ph = anamo_phase_default("codes", ANAMO_PHASE_FREECODES, ANAMO_OPT_FISTA, 0.3f,
                                             BATCH, 1);
        ph.freecodes.code_iters = 3, ph.freecodes.dec_iters = 2, ph.freecodes.refit_epochs = 1;
        s.phases[s.nphases++] = ph;
    }
    return s;
}

/* One epoch of case c, across d's ranks (d NULL: this process alone); the model and its stats. */
static anamo_model *train(scheme_case c, anamo_dist *d, const anamo_dataset *ds,
                          anamo_dist_stats *stats, int64_t *steps)
{
    anamo_model *m = model_for(c);
    anamo_train_spec s = spec_for(c);
    anamo_trainer *t = NULL;
    anamo_err err = {0};
    must(anamo_trainer_create(m, &s, ds, NULL, &t, &err), &err);
    if (d)
        must(anamo_trainer_set_dist(t, d, &err), &err);
    must(anamo_trainer_run(t, NULL, &err), &err);
    anamo_trainer_dist_stats(t, stats);
    *steps = anamo_trainer_iterations(t);
    anamo_trainer_free(t);
    return m;
}

/* The largest |a − b| / max |a| over each parameter tensor of the two models. */
static double parameter_difference(anamo_model *a, anamo_model *b)
{
    double worst = 0.0;
    anamo_err err = {0};
    for (int i = 0; i < anamo_model_tensor_count(a); i++) {
        anamo_tensor_view va, vb;
        must(anamo_model_tensor_at(a, i, &va, &err), &err);
        must(anamo_model_tensor_at(b, i, &vb, &err), &err);
        if (va.role != ANAMO_ROLE_PARAMETER)
            continue;
        double scale = 1e-30, diff = 0.0;
        for (int64_t k = 0; k < va.numel; k++) {
            scale = fmax(scale, fabs(va.data[k]));
            diff = fmax(diff, fabs((double)va.data[k] - vb.data[k]));
        }
        worst = fmax(worst, diff / scale);
    }
    return worst;
}

static void check_case(anamo_dist *d, scheme_case c)
{
    float *x = anamo_alloc((size_t)N_ROWS * N_FEATURES * sizeof(float));
    fill(x);
    anamo_dataset ds;
    anamo_err err = {0};
    must(anamo_dataset_wrap(&ds, x, ANAMO_F32, N_ROWS, N_FEATURES, 1, 1, NULL, "rows", &err), &err);
    anamo_dist_stats across, alone;
    int64_t steps, steps_alone;
    anamo_model *m = train(c, d, &ds, &across, &steps);
    anamo_model *ref = train(c, NULL, &ds, &alone, &steps_alone);
    assert_int_equal(steps, steps_alone);
    assert_int_equal(across.ranks, anamo_dist_size(d));
    const double diff = parameter_difference(ref, m);
    if (anamo_dist_size(d) == 1 ? diff != 0.0 : !(diff <= SAME_RELATIVE))
        fail_msg("case %d on %d ranks: parameters differ from one process's by %g relative "
                 "(allowed: %g)",
                 (int)c, anamo_dist_size(d), diff, anamo_dist_size(d) == 1 ? 0.0 : SAME_RELATIVE);
    const int64_t enc = anamo_model_param_count(m, ANAMO_ENCODER);
    const int64_t dec = anamo_model_param_count(m, ANAMO_DECODER);
    if (anamo_dist_size(d) == 1) /* nothing to reduce */
        assert_int_equal(across.grad_bytes, 0);
    else if (c == CASE_JOINT)
        assert_int_equal(across.grad_bytes, steps * (enc + dec) * 4);
    else if (c == CASE_NAM) /* 5 decoder steps, then 5 encoder steps */
        assert_int_equal(across.grad_bytes, (steps / 2) * dec * 4 + (steps - steps / 2) * enc * 4);
    anamo_model_free(m);
    anamo_model_free(ref);
    anamo_free(x);
}

static void test_joint(void **state) { check_case(*state, CASE_JOINT); }
static void test_nam(void **state) { check_case(*state, CASE_NAM); }
static void test_anamo(void **state) { check_case(*state, CASE_ANAMO); }
static void test_freecodes(void **state) { check_case(*state, CASE_FREECODES); }

/* Per-rank batch statistics give other gradients than one process's, so only the end is
 * checked: the run passes the epoch's check that every rank holds the same parameters,
 * optimizer states and running statistics (rank 0's, broadcast). */
static void test_batchnorm_statistics_agree(void **state)
{
    anamo_dist *d = *state;
    float *x = anamo_alloc((size_t)N_ROWS * N_FEATURES * sizeof(float));
    fill(x);
    anamo_dataset ds;
    anamo_err err = {0};
    must(anamo_dataset_wrap(&ds, x, ANAMO_F32, N_ROWS, N_FEATURES, 1, 1, NULL, "rows", &err), &err);
    anamo_dist_stats stats;
    int64_t steps;
    anamo_model *m = train(CASE_BATCHNORM, d, &ds, &stats, &steps);
    anamo_tensor_view mean;
    must(anamo_model_tensor(m, "encoder.1.running_mean", &mean, &err), &err);
    double moved = 0.0;
    for (int64_t k = 0; k < mean.numel; k++)
        moved += fabs(mean.data[k]);
    assert_true(moved > 0.0); /* the statistics were updated */
    anamo_model_free(m);
    anamo_free(x);
}

/* a and b agree to tol relative (exactly when tol is 0); NaN agrees with NaN */
static void assert_close(const char *what, double a, double b, double tol)
{
    if ((isnan(a) && isnan(b)) || a == b)
        return;
    if (!(fabs(a - b) <= tol * fmax(fabs(a), fabs(b))))
        fail_msg("%s: %.17g split across ranks, %.17g in one pass", what, b, a);
}

static void check_metrics(const anamo_metrics *one, const anamo_metrics *split, double tol)
{
    const struct {
        const char *name;
        double a, b;
    } sums[] = {{"loss", one->loss, split->loss},
                {"recon_loss", one->recon_loss, split->recon_loss},
                {"mse", one->mse, split->mse},
                {"bias", one->bias, split->bias},
                {"code_l1", one->code_l1, split->code_l1},
                {"input_l1", one->input_l1, split->input_l1},
                {"zero_codes", one->zero_codes, split->zero_codes},
                {"l0", one->l0, split->l0},
                {"code_l1_decoder", one->code_l1_decoder, split->code_l1_decoder},
                {"code_l1_jacobian", one->code_l1_jacobian, split->code_l1_jacobian},
                {"explained_variance", one->explained_variance, split->explained_variance},
                {"ones", one->ones, split->ones}};
    for (size_t i = 0; i < sizeof sums / sizeof sums[0]; i++)
        assert_close(sums[i].name, sums[i].a, sums[i].b, tol);
    assert_int_equal(one->n, split->n);
    assert_int_equal(one->dead_units, split->dead_units);
    assert_int_equal(one->bits_used, split->bits_used);
    assert_int_equal(one->distinct_codes, split->distinct_codes);
    assert_int_equal(one->jacobian_samples, split->jacobian_samples);
}

/* A trained model (dense codes) and an untrained binary-code one (whose codes still differ from
 * sample to sample) evaluated both ways, with a penalty weighted by the decoder and a Jacobian
 * sample count that does not divide evenly. */
static void test_evaluate_split(void **state)
{
    anamo_dist *d = *state;
    float *x = anamo_alloc((size_t)N_ROWS * N_FEATURES * sizeof(float));
    fill(x);
    anamo_dataset ds;
    anamo_err err = {0};
    must(anamo_dataset_wrap(&ds, x, ANAMO_F32, N_ROWS, N_FEATURES, 1, 1, NULL, "rows", &err), &err);
    const scheme_case cases[] = {CASE_ANAMO, CASE_FREECODES};
    for (size_t i = 0; i < 2; i++) {
        anamo_dist_stats stats;
        int64_t steps;
        anamo_model *m = cases[i] == CASE_FREECODES ? model_for(CASE_FREECODES)
                                                    : train(cases[i], NULL, &ds, &stats, &steps);
        const anamo_eval_spec es = {.loss = ANAMO_LOSS_MSE_SUM,
                                    .lambda = 0.01f,
                                    .penalty = ANAMO_PENALTY_DECODER_L1,
                                    .jacobian_samples = 101};
        anamo_metrics one, split;
        must(anamo_evaluate(m, &ds, &es, &one, &err), &err);
        must(anamo_evaluate_dist(m, &ds, &es, d, &split, &err), &err);
        check_metrics(&one, &split, anamo_dist_size(d) == 1 ? 0.0 : 1e-6);
        if (cases[i] == CASE_FREECODES)
            assert_true(one.distinct_codes > 1);
        anamo_model_free(m);
    }
    anamo_free(x);
}

static int open_dist(void **state)
{
    anamo_dist *d = NULL;
    anamo_err err = {0};
    if (anamo_dist_open(&d, NULL, NULL, &err)) {
        fprintf(stderr, "anamo_dist_open: %s\n", err.msg);
        return -1;
    }
    const char *want = getenv("ANAMO_TEST_DIST_NP"); /* set by test_dist_mpi2 */
    if (want && atoi(want) != anamo_dist_size(d)) {
        fprintf(stderr, "want %s ranks, have %d\n", want, anamo_dist_size(d));
        return -1;
    }
    *state = d;
    return 0;
}

static int close_dist(void **state)
{
    anamo_err err = {0};
    return anamo_dist_close(*state, &err) ? -1 : 0;
}

int main(void)
{
    if (getenv("ANAMO_TEST_DIST_NP") && !anamo_dist_built_with_mpi()) {
        printf("skipped: this anamo is built without MPI\n");
        return 77;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_joint),
        cmocka_unit_test(test_nam),
        cmocka_unit_test(test_anamo),
        cmocka_unit_test(test_freecodes),
        cmocka_unit_test(test_batchnorm_statistics_agree),
        cmocka_unit_test(test_evaluate_split),
    };
    return cmocka_run_group_tests(tests, open_dist, close_dist);
}
