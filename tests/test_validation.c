/* test_validation.c — validation sets and what reads them.
 *   1. anamo_dataset_hold_out: the two parts are a partition of the samples, each in the
 *      original order, labels with their samples, the choice a function of (n, fraction, seed)
 *      alone; fractions that leave a side empty are errors.
 *   2. The trainer: early stopping ends a run whose validation loss stops falling, and a
 *      checkpoint keeps that; the plateau schedule watches the validation loss, not the
 *      training loss, when there is a validation set.
 *   3. anamo compare: per-arm sweeps, and `compare.select` reading validation metrics only —
 *      runs whose summaries make validation and test disagree on the best setting, and a test
 *      metric changed afterwards, leave the choice where validation puts it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <cJSON.h>

#include "anamo.h"
#include "test_util.h"
#include "train/trainer.h"

#define PATH_CAP TEST_UTIL_PATH_CAP
#define TIMEOUT_S 120.0
#define GET cJSON_GetObjectItemCaseSensitive

/* ---- 1. hold-out ------------------------------------------------------------------------- */

/* n samples of 3 bytes (i, i >> 8, 7) with label i % 251, so each sample names itself. */
static anamo_dataset numbered(int64_t n)
{
    anamo_dataset ds = {.n = n, .c = 3, .h = 1, .w = 1, .dim = 3, .dtype = ANAMO_U8};
    uint8_t *x = anamo_alloc((size_t)n * 3);
    ds.labels = anamo_alloc((size_t)n);
    assert_non_null(x);
    assert_non_null(ds.labels);
    for (int64_t i = 0; i < n; i++) {
        x[3 * i] = (uint8_t)i, x[3 * i + 1] = (uint8_t)(i >> 8), x[3 * i + 2] = 7;
        ds.labels[i] = (uint8_t)(i % 251);
    }
    ds.data = x;
    snprintf(ds.source, sizeof ds.source, "numbered %lld", (long long)n);
    return ds;
}

static int64_t sample_id(const anamo_dataset *ds, int64_t row)
{
    const uint8_t *x = (const uint8_t *)ds->data + 3 * row;
    assert_int_equal(x[2], 7);
    assert_int_equal(ds->labels[row], (uint8_t)((x[0] | (x[1] << 8)) % 251));
    return x[0] | (int64_t)x[1] << 8;
}

/* Which samples went to validation (held[id] = 1), checking the partition and the orders. */
static void split_of(int64_t n, double fraction, uint64_t seed, uint8_t *held)
{
    anamo_dataset ds = numbered(n), val;
    anamo_err err = {0};
    assert_int_equal(anamo_dataset_hold_out(&ds, fraction, seed, &val, &err), ANAMO_OK);
    const int64_t k = llround(fraction * (double)n);
    assert_int_equal(val.n, k);
    assert_int_equal(ds.n, n - k);
    assert_int_equal(val.dim, 3);
    uint8_t *seen = calloc((size_t)n, 1);
    memset(held, 0, (size_t)n);
    for (int pass = 0; pass < 2; pass++) {
        const anamo_dataset *part = pass ? &val : &ds;
        int64_t last = -1;
        for (int64_t r = 0; r < part->n; r++) {
            int64_t id = sample_id(part, r);
            assert_true(id > last); /* the original order */
            assert_false(seen[id]); /* in one part only */
            seen[id] = 1, held[id] = (uint8_t)pass, last = id;
        }
    }
    for (int64_t i = 0; i < n; i++)
        assert_true(seen[i]); /* every sample somewhere */
    free(seen);
    anamo_dataset_free(&ds);
    anamo_dataset_free(&val);
}

static void test_hold_out_partitions(void **state)
{
    (void)state;
    enum { N = 1000 };
    uint8_t a[N], b[N], c[N];
    split_of(N, 0.1, 5, a);
    split_of(N, 0.1, 5, b);
    split_of(N, 0.1, 6, c);
    assert_memory_equal(a, b, N); /* the same seed, the same samples */
    assert_memory_not_equal(a, c, N);
    /* spread over the whole set, not a block at one end: each half holds 50 ± 20 */
    int first_half = 0;
    for (int i = 0; i < N / 2; i++)
        first_half += a[i];
    assert_in_range(first_half, 30, 70);
    split_of(3, 0.5, 1, a); /* llround(1.5) = 2 held, 1 kept */
}

static void test_hold_out_float_rows(void **state)
{
    (void)state;
    float x[10 * 2];
    for (int i = 0; i < 20; i++)
        x[i] = (float)i;
    anamo_dataset ds = {.n = 10, .c = 2, .h = 1, .w = 1, .dim = 2, .dtype = ANAMO_F32};
    ds.data = anamo_alloc(sizeof x);
    memcpy(ds.data, x, sizeof x);
    anamo_dataset val;
    anamo_err err = {0};
    assert_int_equal(anamo_dataset_hold_out(&ds, 0.3, 2, &val, &err), ANAMO_OK);
    assert_int_equal(val.n, 3);
    assert_null(val.labels);
    const float *parts[2] = {ds.data, val.data};
    for (int p = 0; p < 2; p++)
        for (int64_t r = 0; r < (p ? val.n : ds.n); r++) /* rows stay whole: (2i, 2i + 1) */
            assert_true(parts[p][2 * r + 1] == parts[p][2 * r] + 1.0f);
    anamo_dataset_free(&ds);
    anamo_dataset_free(&val);
}

static void expect_hold_out_error(int64_t n, double fraction, const char *needle)
{
    anamo_dataset ds = numbered(n), val;
    anamo_err err = {0};
    assert_int_equal(anamo_dataset_hold_out(&ds, fraction, 0, &val, &err), ANAMO_ERR_ARG);
    if (!strstr(err.msg, needle))
        fail_msg("hold out %g of %lld: '%s' lacks '%s'", fraction, (long long)n, err.msg, needle);
    assert_int_equal(ds.n, n); /* untouched */
    anamo_dataset_free(&ds);
}

static void test_hold_out_errors(void **state)
{
    (void)state;
    expect_hold_out_error(100, 0.0, "at least one on each side");
    expect_hold_out_error(100, 1.0, "at least one on each side");
    expect_hold_out_error(100, 0.001, "holds out 0 of 100");
    expect_hold_out_error(1, 0.5, "of 1 samples");
    anamo_err err = {0};
    assert_int_equal(anamo_dataset_hold_out(NULL, 0.5, 0, NULL, &err), ANAMO_ERR_ARG);
}

/* ---- 2. the trainer ---------------------------------------------------------------------- */

/* n float samples of dim values, all equal to value. */
static anamo_dataset constant_set(int64_t n, int64_t dim, float value, const char *name)
{
    anamo_dataset ds = {.n = n, .c = (int)dim, .h = 1, .w = 1, .dim = dim, .dtype = ANAMO_F32};
    float *x = anamo_alloc((size_t)(n * dim) * sizeof *x);
    assert_non_null(x);
    for (int64_t i = 0; i < n * dim; i++)
        x[i] = value;
    ds.data = x;
    snprintf(ds.source, sizeof ds.source, "%s", name);
    return ds;
}

static anamo_model *small_model(void)
{
    anamo_model_spec s = {.in_c = 8,
                          .in_h = 1,
                          .in_w = 1,
                          .encoder = "linear 4, relu",
                          .decoder = "linear 8, sigmoid",
                          .seed = 1,
                          .max_batch = 10};
    anamo_model *m = NULL;
    anamo_err err = {0};
    if (anamo_model_create(&s, &m, &err) != ANAMO_OK)
        fail_msg("anamo_model_create: %s", err.msg);
    return m;
}

static anamo_train_spec joint_spec(const char *optimizer, float lr, double epochs)
{
    anamo_train_spec s;
    memset(&s, 0, sizeof s);
    s.loss = ANAMO_LOSS_MSE;
    s.epochs = epochs;
    s.log_every = 1000;
    s.jacobian_samples = -1;
    s.nphases = 1;
    s.phases[0] = anamo_phase_default("joint", ANAMO_PHASE_JOINT,
                                      (anamo_optimizer)anamo_enum_parse(ANAMO_ENUM_OPTIMIZER,
                                                                        optimizer),
                                      lr, 10, 1.0);
    return s;
}

static anamo_trainer *trainer_with_validation(anamo_model *m, const anamo_train_spec *s,
                                              const anamo_dataset *train, const anamo_dataset *val)
{
    anamo_trainer *t = NULL;
    anamo_err err = {0};
    if (anamo_trainer_create(m, s, train, NULL, &t, &err) != ANAMO_OK)
        fail_msg("anamo_trainer_create: %s", err.msg);
    if (val && anamo_trainer_set_validation(t, val, &err) != ANAMO_OK)
        fail_msg("anamo_trainer_set_validation: %s", err.msg);
    return t;
}

/* SGD at lr 1e-30 cannot move a weight (w − 1e-30·g rounds to w): the validation loss after
 * epoch 2 equals epoch 1's, which is no improvement, so patience 1 stops the 10-epoch run
 * after epoch 2, with epoch 1 the best; a checkpoint of it resumes as stopped. */
static void test_early_stopping(void **state)
{
    const char *dir = *state;
    anamo_dataset train = constant_set(40, 8, 0.25f, "train"),
                  val = constant_set(10, 8, 0.75f, "val");
    anamo_model *m = small_model();
    anamo_train_spec s = joint_spec("sgd", 1e-30f, 10.0);
    s.early_stopping = 1;
    anamo_trainer *t = trainer_with_validation(m, &s, &train, &val);
    anamo_err err = {0};
    assert_int_equal(anamo_trainer_run(t, NULL, &err), ANAMO_OK);
    double best = 0;
    assert_int_equal(anamo_trainer_epochs_done(t), 2);
    assert_true(anamo_trainer_stopped_early(t));
    assert_int_equal(anamo_trainer_best_epoch(t, &best), 1);
    assert_true(best > 0.0 && isfinite(best));
    char ckpt[PATH_CAP];
    join_path(ckpt, sizeof ckpt, dir, "stopped.safetensors");
    assert_int_equal(anamo_checkpoint_save(m, t, "", ckpt, &err), ANAMO_OK);
    anamo_trainer *again = trainer_with_validation(m, &s, &train, &val);
    assert_false(anamo_trainer_done(again));
    assert_int_equal(anamo_checkpoint_restore(m, again, ckpt, &err), ANAMO_OK);
    assert_true(anamo_trainer_done(again));
    assert_int_equal(anamo_trainer_best_epoch(again, &best), 1);
    anamo_trainer_free(again);
    anamo_trainer_free(t);
    /* early stopping with nothing to watch is refused before the first step */
    s.early_stopping = 3;
    t = trainer_with_validation(m, &s, &train, NULL);
    assert_int_equal(anamo_trainer_run(t, NULL, &err), ANAMO_ERR_CONFIG);
    assert_non_null(strstr(err.msg, "validation set"));
    assert_int_equal(anamo_trainer_iterations(t), 0);
    anamo_trainer_free(t);
    anamo_model_free(m);
    anamo_dataset_free(&train);
    anamo_dataset_free(&val);
}

/* Training on inputs 0.1 drives every output down, so the training loss falls each epoch while
 * the loss on inputs 0.9 rises: the plateau schedule (patience 0, factor 0.5) halves the rate
 * after each of epochs 2..4 when it watches that validation set, and never on the training
 * loss alone. */
static float plateau_lr_after(int with_validation)
{
    anamo_dataset train = constant_set(40, 8, 0.1f, "low"), val = constant_set(10, 8, 0.9f, "high");
    anamo_model *m = small_model();
    anamo_train_spec s = joint_spec("sgd", 0.5f, 4.0);
    s.phases[0].schedule.kind = ANAMO_SCHEDULE_PLATEAU;
    s.phases[0].schedule.patience = 0;
    s.phases[0].schedule.factor = 0.5f;
    anamo_trainer *t = trainer_with_validation(m, &s, &train, with_validation ? &val : NULL);
    anamo_err err = {0};
    assert_int_equal(anamo_trainer_run(t, NULL, &err), ANAMO_OK);
    const float lr = t->rt[0].opt.lr;
    anamo_trainer_free(t);
    anamo_model_free(m);
    anamo_dataset_free(&train);
    anamo_dataset_free(&val);
    return lr;
}

static void test_plateau_watches_validation(void **state)
{
    (void)state;
    expect_close("lr, plateau on the training loss", 0, plateau_lr_after(0), 0.5, 0, 1e-7);
    expect_close("lr, plateau on the validation loss", 0, plateau_lr_after(1), 0.0625, 0, 1e-7);
}

/* ---- 3. compare ------------------------------------------------------------------------- */

static const char BASE[] =
    "[data]\ntrain = halves:200:1\ntest = halves:20:2\nvalidation = 0.2\n"
    "[model]\nencoder = linear 10, relu\ndecoder = linear 100, sigmoid\nseed = 2\n"
    "[train]\nepochs = 1\nbatch = 20\nseed = 2\njacobian_samples = 0\n"
    "[compare]\narms = sgd, adam\ntrials = 2\n";
static const char ARMS[] =
    "[arm sgd]\njoint.optimizer = sgd\ncompare.sweep = joint.lr\ncompare.sweep_values = 0.1, 1\n"
    "[arm adam]\njoint.optimizer = adam\ncompare.sweep = joint.lr\n"
    "compare.sweep_values = 1e-3, 1e-2, 3e-2\n";

static void write_config(const char *dir, const char *name, const char *extra)
{
    char path[PATH_CAP], text[4096];
    join_path(path, sizeof path, dir, name);
    snprintf(text, sizeof text, "%s%s%s", BASE, extra, ARMS);
    write_bytes(path, text, strlen(text));
}

static cli_result compare(const char *dir, const char *config, const char *out, int dry)
{
    char bin[PATH_CAP], cfg[PATH_CAP], o[PATH_CAP];
    if (find_anamo_bin(bin, sizeof bin, "test_validation"))
        fail();
    join_path(cfg, sizeof cfg, dir, config);
    join_path(o, sizeof o, dir, out);
    const char *args[] = {"compare", cfg, "-o", o, dry ? "--dry-run" : NULL, NULL};
    return run_cli(bin, dir, args, TIMEOUT_S);
}

/* Each family's runs are its own sweep: sgd twice, adam three times. */
static void test_per_arm_sweeps(void **state)
{
    const char *dir = *state;
    write_config(dir, "sweeps.ini", "");
    cli_result r = compare(dir, "sweeps.ini", "plan", 1);
    assert_int_equal(r.code, 0);
    const char *want[] = {"sgd_lr=0.1/trial-0", "sgd_lr=1/trial-0", "adam_lr=1e-3/trial-0",
                          "adam_lr=1e-2/trial-0", "adam_lr=3e-2/trial-1"};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        if (!strstr(r.out, want[i]))
            fail_msg("the plan lacks %s:\n%s", want[i], r.out);
    assert_null(strstr(r.out, "sgd_lr=1e-3"));
    cli_free(&r);
}

/* "a.x+b.y" sets both keys to each value, and the runs are named by the short keys. */
static void test_tied_sweep(void **state)
{
    const char *dir = *state;
    char path[PATH_CAP], text[2048];
    snprintf(text, sizeof text, "%s",
             "[data]\ntrain = halves:40:1\ntest = \n[model]\nencoder = linear 4, relu\n"
             "decoder = linear 100, sigmoid\n[train]\nepochs = 1\nbatch = 20\n"
             "jacobian_samples = 0\n[compare]\narms = tied\n[arm tied]\n"
             "compare.sweep = joint.lr+joint.eps\ncompare.sweep_values = 0.003\n");
    join_path(path, sizeof path, dir, "tied.ini");
    write_bytes(path, text, strlen(text));
    cli_result r = compare(dir, "tied.ini", "tied", 0);
    if (r.code != 0)
        fail_msg("compare: %s", r.err);
    cli_free(&r);
    join_path(path, sizeof path, dir, "tied/tied_lr+eps=0.003/trial-0/config.ini");
    char *resolved = read_text(path, NULL);
    assert_non_null(resolved);
    const char *joint = strstr(resolved, "[joint]");
    assert_non_null(joint);
    assert_non_null(strstr(joint, "lr = 0.003\n"));
    assert_non_null(strstr(joint, "eps = 0.003\n"));
    free(resolved);
}

static void expect_config_error(const char *dir, const char *name, const char *extra,
                                const char *needle)
{
    write_config(dir, name, extra);
    cli_result r = compare(dir, name, "plan", 1);
    assert_int_equal(r.code, 2);
    if (!strstr(r.err, needle))
        fail_msg("%s: '%s' lacks '%s'", name, r.err, needle);
    cli_free(&r);
}

static void test_select_refuses_test_metrics(void **state)
{
    const char *dir = *state;
    expect_config_error(dir, "on_test.ini", "select = test.mse\n", "validation metrics only");
    expect_config_error(dir, "on_train.ini", "select = train.loss\n", "validation metrics only");
    char text[4096], path[PATH_CAP];
    snprintf(text, sizeof text, "%s", BASE);
    char *v = strstr(text, "validation = 0.2\n");
    memmove(v, v + strlen("validation = 0.2\n"), strlen(v + strlen("validation = 0.2\n")) + 1);
    strcat(text, "select = validation.mse\n");
    strcat(text, ARMS);
    join_path(path, sizeof path, dir, "no_validation.ini");
    write_bytes(path, text, strlen(text));
    cli_result r = compare(dir, "no_validation.ini", "plan", 1);
    assert_int_equal(r.code, 2);
    assert_non_null(strstr(r.err, "no validation set"));
    cli_free(&r);
}

/* Rewrites one run's summary.json: validation.mse = val, test.mse = test. */
static void set_metrics(const char *out, const char *arm, int trial, double val, double test)
{
    char path[PATH_CAP + 64];
    snprintf(path, sizeof path, "%s/%s/trial-%d/summary.json", out, arm, trial);
    char *text = read_text(path, NULL);
    assert_non_null(text);
    cJSON *o = cJSON_Parse(text);
    free(text);
    assert_non_null(o);
    cJSON_SetNumberValue(GET(GET(o, "validation"), "mse"), val);
    cJSON_SetNumberValue(GET(GET(o, "test"), "mse"), test);
    char *again = cJSON_Print(o);
    write_bytes(path, again, strlen(again));
    cJSON_free(again);
    cJSON_Delete(o);
}

/* results.json's chosen sweep value of family f. */
static char *chosen(const char *out, int f)
{
    char path[PATH_CAP + 32];
    snprintf(path, sizeof path, "%s/results.json", out);
    char *text = read_text(path, NULL);
    cJSON *o = cJSON_Parse(text);
    free(text);
    assert_non_null(o);
    const cJSON *fam = cJSON_GetArrayItem(GET(GET(o, "selected"), "families"), f);
    assert_non_null(fam);
    const cJSON *v = GET(fam, "sweep_value");
    char *value = strdup(cJSON_IsString(v) ? v->valuestring : "(none)");
    cJSON_Delete(o);
    return value;
}

/* Every run trains once; then their summaries are set so that validation prefers adam's 3e-2
 * and sgd's 1 while test prefers adam's 1e-3 and sgd's 0.1, and compare, reading the runs back,
 * must follow validation; making adam's 1e-2 best on test by far changes nothing, while
 * a NaN validation value (a diverged trial) rules a setting out. */
static void test_select_reads_validation_only(void **state)
{
    const char *dir = *state;
    write_config(dir, "select.ini", "select = validation.mse\n");
    cli_result r = compare(dir, "select.ini", "sel", 0);
    if (r.code != 0)
        fail_msg("compare: %s", r.err);
    cli_free(&r);
    char out[PATH_CAP];
    join_path(out, sizeof out, dir, "sel");
    const char *arms[] = {"sgd_lr=0.1", "sgd_lr=1", "adam_lr=1e-3", "adam_lr=1e-2", "adam_lr=3e-2"};
    const double val[] = {0.5, 0.1, 0.5, 0.4, 0.2}, test[] = {0.01, 0.9, 0.01, 0.5, 0.9};
    for (int a = 0; a < 5; a++)
        for (int t = 0; t < 2; t++)
            set_metrics(out, arms[a], t, val[a] + 0.01 * t, test[a]);
    r = compare(dir, "select.ini", "sel", 0);
    assert_int_equal(r.code, 0);
    assert_non_null(strstr(r.out, "Each arm at its best validation setting"));
    cli_free(&r);
    char *sgd = chosen(out, 0), *adam = chosen(out, 1);
    assert_string_equal(sgd, "1");
    assert_string_equal(adam, "3e-2");
    free(sgd), free(adam);
    for (int t = 0; t < 2; t++)
        set_metrics(out, "adam_lr=1e-2", t, 0.4, 1e-9);
    r = compare(dir, "select.ini", "sel", 0);
    assert_int_equal(r.code, 0);
    cli_free(&r);
    adam = chosen(out, 1);
    assert_string_equal(adam, "3e-2");
    free(adam);
    set_metrics(out, "adam_lr=3e-2", 1, NAN, 0.9); /* cJSON writes NaN as null */
    r = compare(dir, "select.ini", "sel", 0);
    assert_int_equal(r.code, 0);
    cli_free(&r);
    adam = chosen(out, 1);
    assert_string_equal(adam, "1e-2");
    free(adam);
}

/* A fraction held out in a real run: summary.json has the validation metrics on 20% of the
 * 200 training samples, and the training metrics on the other 160. */
static void test_run_reports_validation(void **state)
{
    const char *dir = *state;
    char out[PATH_CAP], path[PATH_CAP + 64];
    join_path(out, sizeof out, dir, "sel");
    snprintf(path, sizeof path, "%s/sgd_lr=0.1/trial-0/summary.json", out);
    char *text = read_text(path, NULL);
    assert_non_null(text);
    cJSON *o = cJSON_Parse(text);
    free(text);
    assert_int_equal((int)GET(GET(o, "validation"), "samples")->valuedouble, 40);
    assert_int_equal((int)GET(GET(o, "train"), "samples")->valuedouble, 160);
    assert_int_equal((int)GET(o, "best_validation_epoch")->valuedouble, 1);
    cJSON_Delete(o);
    snprintf(path, sizeof path, "%s/sgd_lr=0.1/trial-0/epochs.csv", out);
    text = read_text(path, NULL);
    assert_non_null(strstr(text, ",validation_loss,validation_mse,"));
    free(text);
}

static int setup(void **state)
{
    return temp_dir_setup(state, "/tmp/anamo_test_validation_XXXXXX");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hold_out_partitions),
        cmocka_unit_test(test_hold_out_float_rows),
        cmocka_unit_test(test_hold_out_errors),
        cmocka_unit_test(test_early_stopping),
        cmocka_unit_test(test_plateau_watches_validation),
        cmocka_unit_test(test_per_arm_sweeps),
        cmocka_unit_test(test_tied_sweep),
        cmocka_unit_test(test_select_refuses_test_metrics),
        cmocka_unit_test(test_select_reads_validation_only),
        cmocka_unit_test(test_run_reports_validation),
    };
    return cmocka_run_group_tests(tests, setup, temp_dir_teardown);
}
