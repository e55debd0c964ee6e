/* test_analysis.c — the parts of summary.json that anamo compare (and train) add for particular
 * models and data, checked as the CLI writes them:
 *   "steps"  on step-function data: R² of the code against the step position and the
 *            per-position errors, recomputed here from RUN/positions.csv, whose codes are
 *            recomputed from the checkpoint through the public API; the step figure's data;
 *   "pca"    for a linear autoencoder: the optimum, the model's MSE over it and the angles,
 *            against an independent PCA fit of the same data through the public API. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <cJSON.h>

#include "anamo.h"
#include "test_util.h"

#define PATH_CAP TEST_UTIL_PATH_CAP
#define TIMEOUT_S 60.0
#define STEPS_N 16 /* steps:16 — 17 step functions of length 16 */
#define GET cJSON_GetObjectItemCaseSensitive

static const char STEPS_INI[] =
    "[data]\ntrain = steps:16\ntest = steps:16\n"
    "[model]\nencoder = linear 1\ndecoder = linear 8, relu, linear 16\n"
    "[loss]\ntype = mse_sum\n[train]\nepochs = 200\nbatch = 17\nlog_every = 50\n"
    "checkpoint_every = 0\n[joint]\noptimizer = adam\nlr = 1e-2\n"
    "[compare]\narms = joint\n[arm joint]\ntrain.scheme = joint\n";

static const char LINEAR_INI[] = "[data]\ntrain = halves:200:1\ntest = halves:20:2\n"
                                 "[model]\nencoder = linear 3\ndecoder = linear 100\n"
                                 "[train]\nepochs = 30\nbatch = 20\ncheckpoint_every = 0\n"
                                 "[compare]\narms = joint\n[arm joint]\ntrain.scheme = joint\n";

static cJSON *read_json(const char *path)
{
    char *text = read_text(path, NULL);
    if (!text)
        fail_msg("%s: cannot read", path);
    cJSON *o = cJSON_Parse(text);
    free(text);
    if (!o)
        fail_msg("%s: not JSON", path);
    return o;
}

static double number(const cJSON *o, const char *a, const char *b)
{
    const cJSON *v = GET(GET(o, a), b);
    if (!cJSON_IsNumber(v))
        fail_msg("summary.json: %s.%s missing", a, b);
    return v->valuedouble;
}

/* Runs anamo compare on config text ini into fx->dir/name; returns the trial-0 run dir. */
static void run_compare(const temp_dir_fixture *fx, const char *name, const char *ini,
                        char *run_dir)
{
    char bin[PATH_CAP], config[PATH_CAP], out[PATH_CAP], file[PATH_CAP + 8];
    assert_int_equal(find_anamo_bin(bin, sizeof bin, "test_analysis"), 0);
    snprintf(file, sizeof file, "%s.ini", name);
    join_path(config, sizeof config, fx->dir, file);
    join_path(out, sizeof out, fx->dir, name);
    write_bytes(config, ini, strlen(ini));
    cli_result r = run_cli(bin, fx->dir, (const char *const[]){"compare", config, "-o", out, NULL},
                           TIMEOUT_S);
    if (r.code != 0)
        fail_msg("compare %s: exit %d:\n%s", name, r.code, r.err);
    cli_free(&r);
    snprintf(run_dir, PATH_CAP, "%s/joint/trial-0", out);
}

/* RUN/positions.csv: rows "p,code,error". */
static void read_positions(const char *run_dir, double *code, double *error)
{
    char path[PATH_CAP];
    snprintf(path, sizeof path, "%s/positions.csv", run_dir);
    char *text = read_text(path, NULL);
    assert_non_null(text);
    assert_true(!strncmp(text, "position,code_0,error\n", 22));
    const char *line = strchr(text, '\n') + 1;
    for (int p = 0; p <= STEPS_N; p++) {
        int pos = -1;
        assert_int_equal(sscanf(line, "%d,%lf,%lf", &pos, &code[p], &error[p]), 3);
        assert_int_equal(pos, p);
        line = strchr(line, '\n') + 1;
    }
    assert_int_equal(*line, '\0');
    free(text);
}

/* Squared Pearson correlation of the code with the position. */
static double r_squared(const double *code, int n)
{
    double mx = 0, my = 0, sxy = 0, sxx = 0, syy = 0;
    for (int p = 0; p < n; p++)
        mx += p, my += code[p];
    mx /= n, my /= n;
    for (int p = 0; p < n; p++) {
        sxy += (p - mx) * (code[p] - my);
        sxx += (p - mx) * (p - mx);
        syy += (code[p] - my) * (code[p] - my);
    }
    return sxy * sxy / (sxx * syy);
}

static void test_steps_analysis(void **state)
{
    const temp_dir_fixture *fx = *state;
    char run[PATH_CAP], path[PATH_CAP + 32];
    run_compare(fx, "steps", STEPS_INI, run);
    double code[STEPS_N + 1], error[STEPS_N + 1];
    read_positions(run, code, error);

    /* the codes are the checkpoint's: recomputed through the public API */
    snprintf(path, sizeof path, "%s/model.safetensors", run);
    anamo_model *m;
    anamo_dataset ds;
    anamo_err err = {0};
    assert_int_equal(anamo_checkpoint_load_model(path, STEPS_N + 1, &m, &err), ANAMO_OK);
    assert_int_equal(anamo_dataset_open("steps:16", NULL, &ds, &err), ANAMO_OK);
    float codes[STEPS_N + 1], recon[(STEPS_N + 1) * STEPS_N];
    assert_int_equal(anamo_model_encode(m, &ds, 0, STEPS_N + 1, codes, &err), ANAMO_OK);
    assert_int_equal(anamo_model_reconstruct(m, &ds, 0, STEPS_N + 1, recon, &err), ANAMO_OK);
    double worst = 0;
    for (int p = 0; p <= STEPS_N; p++) {
        expect_close("code", p, code[p], codes[p], 1e-6, 1e-6);
        double sq = 0; /* step p: 0 before p, 5 from p on */
        for (int j = 0; j < STEPS_N; j++) {
            double d = recon[p * STEPS_N + j] - (j >= p ? 5.0 : 0.0);
            sq += d * d;
        }
        expect_close("position error", p, error[p], sq / STEPS_N, 1e-6, 1e-9);
        worst = fmax(worst, sq / STEPS_N);
    }
    anamo_model_free(m);
    anamo_dataset_free(&ds);

    snprintf(path, sizeof path, "%s/summary.json", run);
    cJSON *s = read_json(path);
    double r2 = number(s, "steps", "r2");
    expect_close("r2", 0, r2, r_squared(code, STEPS_N + 1), 1e-5, 1e-7);
    assert_true(r2 > 0.5); /* 200 Adam steps order the steps along the code */
    expect_close("max_position_error", 0, number(s, "steps", "max_position_error"), worst, 1e-5,
                 1e-9);
    cJSON_Delete(s);

    /* the step figure and its data */
    static const char *const FILES[] = {"steps.png",         "steps.svg",       "steps-code.dat",
                                        "steps-weights.dat", "steps-recon.dat", "steps-error.dat"};
    for (size_t i = 0; i < sizeof FILES / sizeof FILES[0]; i++) {
        snprintf(path, sizeof path, "%s/steps/%s", fx->dir, FILES[i]);
        if (!exists(path))
            fail_msg("%s missing", path);
    }
}

static void test_pca_analysis(void **state)
{
    const temp_dir_fixture *fx = *state;
    char run[PATH_CAP], path[PATH_CAP + 32];
    run_compare(fx, "linear", LINEAR_INI, run);
    snprintf(path, sizeof path, "%s/summary.json", run);
    cJSON *s = read_json(path);

    anamo_dataset train, test;
    anamo_pca pca;
    anamo_err err = {0};
    assert_int_equal(anamo_dataset_open("halves:200:1", NULL, &train, &err), ANAMO_OK);
    assert_int_equal(anamo_dataset_open("halves:20:2", NULL, &test, &err), ANAMO_OK);
    assert_int_equal(anamo_pca_fit(&train, 3, &pca, &err), ANAMO_OK);
    double test_mse;
    assert_int_equal(anamo_pca_mse(&pca, &test, &test_mse, &err), ANAMO_OK);

    assert_int_equal((int)number(s, "pca", "k"), 3);
    expect_close("optimum_mse", 0, number(s, "pca", "optimum_mse"), pca.optimum_mse, 1e-9, 0);
    expect_close("test_mse", 0, number(s, "pca", "test_mse"), test_mse, 1e-9, 0);
    expect_close("mse_over_optimum", 0, number(s, "pca", "mse_over_optimum"),
                 number(s, "train", "mse") / pca.optimum_mse, 1e-9, 0);
    assert_true(number(s, "pca", "mse_over_optimum") >= 1.0 - 1e-6); /* Eckart–Young */
    const cJSON *angles = GET(GET(s, "pca"), "angles_deg");
    assert_int_equal(cJSON_GetArraySize(angles), 3);
    for (int i = 0; i < 3; i++) {
        double a = cJSON_GetArrayItem(angles, i)->valuedouble;
        assert_true(a >= 0 && a <= 90);
        if (i)
            assert_true(a >= cJSON_GetArrayItem(angles, i - 1)->valuedouble);
    }
    expect_close("max_angle_deg", 0, number(s, "pca", "max_angle_deg"),
                 cJSON_GetArrayItem(angles, 2)->valuedouble, 1e-12, 0);
    anamo_pca_free(&pca);
    anamo_dataset_free(&train);
    anamo_dataset_free(&test);
    cJSON_Delete(s);

    /* a model with a non-linear decoder gets no "pca" part */
    snprintf(path, sizeof path, "%s/steps/joint/trial-0/summary.json", fx->dir);
    if (exists(path)) {
        s = read_json(path);
        assert_null(GET(s, "pca"));
        cJSON_Delete(s);
    }
}

static int setup(void **state) { return temp_dir_setup(state, "/tmp/anamo_test_analysis_XXXXXX"); }

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_steps_analysis),
        cmocka_unit_test(test_pca_analysis),
    };
    return cmocka_run_group_tests(tests, setup, temp_dir_teardown);
}
