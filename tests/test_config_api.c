/* test_config_api.c — the public config API (anamo_config_*, anamo_run_*), against the text it
 * was given and the docs' rules (docs/CONFIG.md):
 *   1. A config from text or a file: the values given, the table's defaults for the rest, NULL
 *      for a key the table does not know; the resolved text parses to the same resolved text.
 *   2. Faults are ANAMO_ERR_CONFIG naming where they stand: file:line (or the text's origin),
 *      the key and the value; nothing is handed back.
 *   3. anamo_config_set changes what anamo_config_get returns, validates, and a refused
 *      assignment (a bad value, an unknown key, no "=") leaves the config as it was.
 *   4. Arms and [quick]: the names in order, an arm's overrides seen by anamo_config_get, a
 *      missing arm or [quick] section an error naming it.
 *   5. anamo_run_open on a generated dataset (halves:N:SEED) opens train, test and a held-out
 *      validation set of the sizes asked, builds the model to the data's shape and a trainer
 *      that anamo_trainer_run finishes; anamo_run_close zeroes the run (ASan and valgrind in
 *      CI see that nothing is left).
 *   6. A failing anamo_run_open leaves nothing open, and a dataset not found under the data
 *      root says which root was searched (the argument, $ANAMO_DATA, or ./data). */
#include "test_util.h"

static void must(int rc, const anamo_err *err)
{
    if (rc != ANAMO_OK)
        fail_msg("anamo: %s", err->msg);
}

/* The call failed with code, and its message names each of the words (up to three). */
static void assert_error(int rc, int code, const anamo_err *err, const char *w1, const char *w2,
                         const char *w3)
{
    if (rc != code)
        fail_msg("want status %d, got %d (%s)", code, rc, err->msg);
    const char *words[3] = {w1, w2, w3};
    for (int i = 0; i < 3; i++)
        if (words[i] && !strstr(err->msg, words[i]))
            fail_msg("message '%s' should name '%s'", err->msg, words[i]);
}

/* A run small enough for valgrind: 10×10 halves images, a 100-8-4-8-100 autoencoder. */
static const char RUN_TEXT[] = "; test_config_api\n"
                               "[data]\n"
                               "train = halves:200:1\n"
                               "test = halves:50:2\n"
                               "validation = 0.1\n"
                               "[model]\n"
                               "encoder = linear 8, relu, linear 4, relu\n"
                               "decoder = linear 8, relu, linear 100, sigmoid\n"
                               "[train]\n"
                               "epochs = 2\n"
                               "batch = 20\n"
                               "log_every = 5\n";

static anamo_config *parse(const char *text)
{
    anamo_config *c = NULL;
    anamo_err err = {0};
    must(anamo_config_parse(text, "run.ini", &c, &err), &err);
    assert_non_null(c);
    return c;
}

/* ---- 1. values and defaults ------------------------------------------------------------------ */

static void test_parse_and_get(void **state)
{
    (void)state;
    anamo_config *c = parse(RUN_TEXT);
    assert_string_equal(anamo_config_path(c), "run.ini");
    assert_string_equal(anamo_config_get(c, "data", "train"), "halves:200:1");
    assert_string_equal(anamo_config_get(c, "train", "epochs"), "2");
    /* unset: the table's defaults, the optimizer-dependent ones by the section's optimizer */
    assert_string_equal(anamo_config_get(c, "train", "scheme"), "joint");
    assert_string_equal(anamo_config_get(c, "joint", "lr"), "1e-3");
    assert_null(anamo_config_get(c, "train", "no_such_key"));
    assert_null(anamo_config_get(c, "no_such_section", "epochs"));
    assert_null(anamo_config_get(NULL, "train", "epochs"));

    char *text = anamo_config_text(c);
    assert_non_null(text);
    assert_non_null(strstr(text, "[data]\ntrain = halves:200:1\n"));
    assert_non_null(strstr(text, "scheme = joint\n"));
    anamo_config *again = parse(text); /* resolving is a fixed point */
    char *text2 = anamo_config_text(again);
    assert_string_equal(text, text2);
    free(text2);
    free(text);
    anamo_config_free(again);
    anamo_config_free(c);
    anamo_config_free(NULL);
}

static void test_load_file(void **state)
{
    temp_dir_fixture *fx = *state;
    char path[TEST_UTIL_PATH_CAP], missing[TEST_UTIL_PATH_CAP];
    join_path(path, sizeof path, fx->dir, "run.ini");
    join_path(missing, sizeof missing, fx->dir, "missing.ini");
    write_bytes(path, RUN_TEXT, strlen(RUN_TEXT));
    anamo_config *c = NULL;
    anamo_err err = {0};
    must(anamo_config_load(path, &c, &err), &err);
    assert_string_equal(anamo_config_path(c), path);
    assert_string_equal(anamo_config_get(c, "data", "test"), "halves:50:2");
    anamo_config_free(c);

    c = (anamo_config *)&err; /* whatever it held, a failure hands back NULL */
    assert_error(anamo_config_load(missing, &c, &err), ANAMO_ERR_IO, &err, missing, NULL, NULL);
    assert_null(c);
}

/* ---- 2. faults ------------------------------------------------------------------------------- */

static void test_errors_name_their_place(void **state)
{
    temp_dir_fixture *fx = *state;
    anamo_config *c = NULL;
    anamo_err err = {0};
    /* each fault on line 3 */
    assert_error(anamo_config_parse("; unknown key\n[train]\nbogus_key = 1\n", "text.ini", &c,
                                    &err),
                 ANAMO_ERR_CONFIG, &err, "text.ini:3", "bogus_key", "allowed:");
    assert_null(c);
    assert_error(anamo_config_parse("; bad value\n[train]\nepochs = abc\n", "text.ini", &c, &err),
                 ANAMO_ERR_CONFIG, &err, "text.ini:3", "epochs", "'abc'");
    assert_error(anamo_config_parse("[train]\nbatch = 8\n[nosuch]\nkey = 1\n", "text.ini", &c,
                                    &err),
                 ANAMO_ERR_CONFIG, &err, "text.ini:4", "nosuch", NULL);
    /* an arm's override is checked as if it stood in its own section */
    assert_error(anamo_config_parse("[compare]\narms = a\n[arm a]\nloss.lambda = -1\n", "arm.ini",
                                    &c, &err),
                 ANAMO_ERR_CONFIG, &err, "arm.ini:4", "lambda", "'-1'");
    char path[TEST_UTIL_PATH_CAP];
    join_path(path, sizeof path, fx->dir, "bad.ini");
    const char bad[] = "[data]\ntrain = halves:10:1\n[train]\nscheme = sideways\n";
    write_bytes(path, bad, strlen(bad));
    assert_error(anamo_config_load(path, &c, &err), ANAMO_ERR_CONFIG, &err, "bad.ini:4",
                 "'sideways'", "joint|nam|anamo|freecodes");
    assert_null(c);
    /* every name of a whole enumeration is allowed, the last one too (l1_nonneg was once
     * refused, its list ending in a note); restart = function is ANAMO's alone */
    must(anamo_config_parse("[joint]\noptimizer = fista\nprox = l1_nonneg\n", "p.ini", &c, &err),
         &err);
    anamo_config_free(c);
    c = NULL;
    assert_error(anamo_config_parse("[joint]\nrestart = function\n", "r.ini", &c, &err),
                 ANAMO_ERR_CONFIG, &err, "r.ini:2", "'function'", "none|gradient");
    must(anamo_config_parse("[anamo]\nrestart = function\n", "a.ini", &c, &err), &err);
    anamo_config_free(c);
}

/* ---- 3. set ---------------------------------------------------------------------------------- */

static void test_set(void **state)
{
    (void)state;
    anamo_config *c = parse(RUN_TEXT);
    anamo_err err = {0};
    must(anamo_config_set(c, "train.epochs=3", NULL, &err), &err);
    assert_string_equal(anamo_config_get(c, "train", "epochs"), "3");
    must(anamo_config_set(c, " loss.lambda = 0.25 ", "test", &err), &err); /* trimmed */
    assert_string_equal(anamo_config_get(c, "loss", "lambda"), "0.25");
    /* a section with a space in its name: the last dot splits off the key */
    must(anamo_config_set(c, "phase dec.block=decoder", NULL, &err), &err);
    assert_string_equal(anamo_config_get(c, "phase dec", "block"), "decoder");
    assert_string_equal(anamo_config_get(c, "phase dec", "epochs"), "1");

    assert_error(anamo_config_set(c, "train.epochs=abc", NULL, &err), ANAMO_ERR_CONFIG, &err,
                 "--set", "epochs", "'abc'");
    assert_error(anamo_config_set(c, "train.bogus=1", "my-origin", &err), ANAMO_ERR_CONFIG, &err,
                 "my-origin", "bogus", NULL);
    assert_error(anamo_config_set(c, "nosuch.key=1", NULL, &err), ANAMO_ERR_CONFIG, &err, "nosuch",
                 NULL, NULL);
    assert_error(anamo_config_set(c, "no equals sign", NULL, &err), ANAMO_ERR_CONFIG, &err,
                 "section.key=value", NULL, NULL);
    /* refused assignments changed nothing: the config is still valid and as it was */
    assert_string_equal(anamo_config_get(c, "train", "epochs"), "3");
    assert_null(anamo_config_get(c, "train", "bogus"));
    char *text = anamo_config_text(c);
    assert_null(strstr(text, "nosuch"));
    anamo_config *again = parse(text);
    free(text);
    anamo_config_free(again);
    anamo_config_free(c);
}

/* ---- 4. arms and [quick] --------------------------------------------------------------------- */

static void test_arms_and_quick(void **state)
{
    (void)state;
    anamo_config *c = parse("[compare]\narms = joint, nam ,, sparse\n"
                            "[arm joint]\ntrain.scheme = joint\n"
                            "[arm nam]\ntrain.scheme = nam\nnam.decoder_lr = 0.05\n"
                            "[arm sparse]\nloss.lambda = 1e-3\n"
                            "[quick]\ntrain.epochs = 1\n");
    char names[8][ANAMO_NAME_MAX];
    assert_int_equal(anamo_config_arms(c, names, 8), 3); /* trimmed, the empty one dropped */
    assert_string_equal(names[0], "joint");
    assert_string_equal(names[1], "nam");
    assert_string_equal(names[2], "sparse");
    assert_int_equal(anamo_config_arms(c, names, 2), 2); /* at most max */

    anamo_err err = {0};
    assert_string_equal(anamo_config_get(c, "train", "scheme"), "joint");
    must(anamo_config_use_arm(c, "nam", &err), &err);
    assert_string_equal(anamo_config_get(c, "train", "scheme"), "nam");
    assert_string_equal(anamo_config_get(c, "nam", "decoder_lr"), "0.05");
    assert_string_equal(anamo_config_get(c, "loss", "lambda"), "0"); /* another arm's: not here */
    must(anamo_config_use_quick(c, &err), &err);
    assert_string_equal(anamo_config_get(c, "train", "epochs"), "1");
    assert_error(anamo_config_use_arm(c, "missing", &err), ANAMO_ERR_CONFIG, &err, "[arm missing]",
                 NULL, NULL);
    anamo_config_free(c);

    c = parse(RUN_TEXT);
    assert_int_equal(anamo_config_arms(c, names, 8), 0);
    assert_error(anamo_config_use_quick(c, &err), ANAMO_ERR_CONFIG, &err, "run.ini", "[quick]",
                 NULL);
    anamo_config_free(c);
}

/* ---- 5. a run -------------------------------------------------------------------------------- */

static void test_run_open(void **state)
{
    (void)state;
    anamo_config *c = parse(RUN_TEXT);
    anamo_run run;
    anamo_err err = {0};
    must(anamo_run_open(c, NULL, &run, &err), &err);
    /* 10% of 200 held out: 180 left to train on */
    assert_int_equal(run.train.n, 180);
    assert_int_equal(run.has_validation, 1);
    assert_int_equal(run.validation.n, 20);
    assert_int_equal(run.has_test, 1);
    assert_int_equal(run.test.n, 50);
    assert_int_equal(run.model_spec.in_c, 1);
    assert_int_equal(run.model_spec.in_h, 10);
    assert_int_equal(run.model_spec.in_w, 10);
    assert_ptr_equal(run.model_spec.encoder, run.encoder); /* the strings live in the run */
    assert_string_equal(run.decoder, "linear 8, relu, linear 100, sigmoid");
    assert_string_equal(run.scheme, "joint");
    assert_int_equal(run.threads, 0);
    assert_int_equal(run.train_spec.nphases, 1);
    assert_true(run.train_spec.epochs == 2.0);
    assert_int_equal(anamo_model_code_dim(run.model), 4);
    assert_int_equal(anamo_model_input_dim(run.model), 100);

    must(anamo_trainer_run(run.trainer, NULL, &err), &err);
    assert_true(anamo_trainer_done(run.trainer));
    assert_int_equal(anamo_trainer_epochs_done(run.trainer), 2);
    assert_true(anamo_trainer_best_epoch(run.trainer, NULL) >= 1); /* validation watched */
    anamo_metrics mt;
    const anamo_eval_spec es = anamo_trainer_eval_spec(run.trainer);
    must(anamo_evaluate(run.model, &run.test, &es, &mt, &err), &err);
    assert_true(isfinite(mt.mse) && mt.mse < 0.25);
    anamo_run_close(&run);
    assert_null(run.model);
    assert_null(run.trainer);
    assert_null(run.train.data);
    assert_int_equal(run.has_test, 0);
    anamo_run_close(&run); /* a closed run closes again harmlessly */

    /* NAM: its default cycle of two phases */
    must(anamo_config_set(c, "train.scheme=nam", NULL, &err), &err);
    must(anamo_config_set(c, "data.validation=", NULL, &err), &err);
    must(anamo_run_open(c, NULL, &run, &err), &err);
    assert_int_equal(run.has_validation, 0);
    assert_int_equal(run.train.n, 200);
    assert_string_equal(run.scheme, "nam");
    assert_int_equal(run.train_spec.nphases, 2);
    assert_int_equal(run.train_spec.phases[0].kind, ANAMO_PHASE_DECODER);
    must(anamo_trainer_run(run.trainer, NULL, &err), &err);
    anamo_run_close(&run);
    anamo_config_free(c);
}

/* ---- 6. a run that cannot open --------------------------------------------------------------- */

static void expect_run_error(anamo_config *c, const char *root, int code, const char *w1,
                             const char *w2)
{
    anamo_run run;
    anamo_err err = {0};
    assert_error(anamo_run_open(c, root, &run, &err), code, &err, w1, w2, NULL);
    assert_null(run.model); /* nothing half-open is handed back */
    assert_null(run.trainer);
    assert_null(run.train.data);
}

static void test_run_errors(void **state)
{
    temp_dir_fixture *fx = *state;
    anamo_config *c = parse(RUN_TEXT);
    anamo_err err = {0};
    /* the model does not fit the data: 100 inputs, 784 outputs */
    must(anamo_config_set(c, "model.decoder=linear 8, relu, linear 784, sigmoid", NULL, &err),
         &err);
    expect_run_error(c, NULL, ANAMO_ERR_CONFIG, "784", NULL);
    anamo_config_free(c);

    c = parse(RUN_TEXT); /* a setting that spans keys: early stopping watches a validation set */
    must(anamo_config_set(c, "data.validation=", NULL, &err), &err);
    must(anamo_config_set(c, "train.early_stopping=2", NULL, &err), &err);
    expect_run_error(c, NULL, ANAMO_ERR_CONFIG, "run.ini", "early_stopping");

    /* a named dataset not whole under the data root (its images without their labels): the
     * message says which root was searched */
    must(anamo_config_set(c, "train.early_stopping=0", NULL, &err), &err);
    must(anamo_config_set(c, "data.train=mnist:train", NULL, &err), &err);
    char root[TEST_UTIL_PATH_CAP], dir[TEST_UTIL_PATH_CAP], images[TEST_UTIL_PATH_CAP];
    char want[TEST_UTIL_PATH_CAP + 32];
    join_path(root, sizeof root, fx->dir, "data"); /* also ./data once in fx->dir */
    join_path(dir, sizeof dir, root, "mnist");
    join_path(images, sizeof images, dir, "train-images-idx3-ubyte");
    assert_int_equal(mkdir(root, 0700), 0);
    assert_int_equal(mkdir(dir, 0700), 0);
    write_bytes(images, "not read", 8);
    snprintf(want, sizeof want, "data root %s: mnist:train", root);
    expect_run_error(c, root, ANAMO_ERR_IO, want, "train-labels-idx1-ubyte");
    const char *saved = getenv("ANAMO_DATA");
    char saved_copy[TEST_UTIL_PATH_CAP] = "";
    if (saved)
        snprintf(saved_copy, sizeof saved_copy, "%s", saved);
    setenv("ANAMO_DATA", root, 1);
    snprintf(want, sizeof want, "data root $ANAMO_DATA=%s", root);
    expect_run_error(c, NULL, ANAMO_ERR_IO, want, NULL);
    unsetenv("ANAMO_DATA");
    char cwd[TEST_UTIL_PATH_CAP];
    assert_non_null(getcwd(cwd, sizeof cwd));
    assert_int_equal(chdir(fx->dir), 0);
    expect_run_error(c, NULL, ANAMO_ERR_IO, "data root data (set $ANAMO_DATA to change it)", NULL);
    assert_int_equal(chdir(cwd), 0);
    if (saved)
        setenv("ANAMO_DATA", saved_copy, 1);
    anamo_config_free(c);
}

static int group_setup(void **state)
{
    return temp_dir_setup(state, "/tmp/anamo_test_config_api_XXXXXX");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_and_get),
        cmocka_unit_test(test_load_file),
        cmocka_unit_test(test_errors_name_their_place),
        cmocka_unit_test(test_set),
        cmocka_unit_test(test_arms_and_quick),
        cmocka_unit_test(test_run_open),
        cmocka_unit_test(test_run_errors),
    };
    return cmocka_run_group_tests(tests, group_setup, temp_dir_teardown);
}
