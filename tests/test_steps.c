/* test_steps.c — seed 002's pieces: the built-in step-function dataset, the latent-linearity
 * R², and constant initial weights of a linear layer ("linear N w=VALUE b=VALUE").
 *
 * The truths are hand computations: the step matrices written out, R² of small examples
 * worked on paper (orthogonal centered columns, so R² is the sum of the squared correlations),
 * and a fixed linear encoder's code on the steps. The data and the constant-weight codes are
 * sums of a few multiples of 1/2 and are compared exactly; R² comes from double arithmetic
 * (an SVD solve for 2-D codes) on values of order 1, so 1e-12 is far above its rounding
 * (~1e-15) and far below any difference a wrong fit makes (the cases differ by 1/35 or more). */
#include "test_util.h"

#include "nn/model.h"

#define R2_TOL 1e-12

/* ---- helpers ---------------------------------------------------------------------------- */

static void open_ok(const char *spec, anamo_dataset *ds)
{
    anamo_err err = {0};
    if (anamo_dataset_open(spec, NULL, ds, &err) != ANAMO_OK)
        fail_msg("anamo_dataset_open(%s): %s", spec, err.msg);
}

static double r2_ok(const float *codes, int64_t n, int64_t code_dim, const double *target)
{
    anamo_err err = {0};
    double r2 = -1.0;
    if (anamo_latent_linearity(codes, n, code_dim, target, &r2, &err) != ANAMO_OK)
        fail_msg("anamo_latent_linearity: %s", err.msg);
    return r2;
}

static anamo_model *model_ok(const char *enc, const char *dec, int in_dim, anamo_init_kind init,
                             uint64_t seed)
{
    anamo_model_spec s = {.in_c = in_dim,
                          .in_h = 1,
                          .in_w = 1,
                          .encoder = enc,
                          .decoder = dec,
                          .init = init,
                          .init_scale = 0.1f,
                          .seed = seed,
                          .max_batch = 8};
    anamo_model *m = NULL;
    anamo_err err = {0};
    if (anamo_model_create(&s, &m, &err) != ANAMO_OK)
        fail_msg("anamo_model_create(%s | %s): %s", enc, dec, err.msg);
    return m;
}

/* ---- the step-function dataset ---------------------------------------------------------- */

/* steps:4:2 is the 5 × 4 matrix written out; a table of vectors (c = 4, h = w = 1). */
static void test_steps_small(void **state)
{
    (void)state;
    static const float want[5][4] = {
        {2, 2, 2, 2}, {0, 2, 2, 2}, {0, 0, 2, 2}, {0, 0, 0, 2}, {0, 0, 0, 0}};
    anamo_dataset ds;
    open_ok("steps:4:2", &ds);
    assert_int_equal(ds.n, 5);
    assert_int_equal(ds.dim, 4);
    assert_int_equal(ds.c, 4);
    assert_int_equal(ds.h, 1);
    assert_int_equal(ds.w, 1);
    assert_int_equal(ds.dtype, ANAMO_F32);
    assert_null(ds.labels);
    assert_string_equal(ds.source, "steps:4:2");
    assert_memory_equal(ds.data, want, sizeof want);
    anamo_dataset_free(&ds);
}

/* "steps" is N = 128, A = 5: 129 samples, sample p zero before position p and 5 from it on. */
static void test_steps_default(void **state)
{
    (void)state;
    anamo_dataset ds;
    open_ok("steps", &ds);
    assert_int_equal(ds.n, 129);
    assert_int_equal(ds.dim, 128);
    assert_int_equal(ds.c, 128);
    assert_int_equal(ds.h * ds.w, 1);
    const float *x = ds.data;
    for (int p = 0; p <= 128; p++)
        for (int j = 0; j < 128; j++)
            if (x[p * 128 + j] != (j < p ? 0.0f : 5.0f))
                fail_msg("steps: sample %d position %d is %g", p, j, (double)x[p * 128 + j]);
    anamo_dataset_free(&ds);
}

/* steps:N alone keeps A = 5; the usual @N suffix keeps the first samples; N = 1 is allowed. */
static void test_steps_forms(void **state)
{
    (void)state;
    static const float want3[4][3] = {{5, 5, 5}, {0, 5, 5}, {0, 0, 5}, {0, 0, 0}};
    static const float want_kept[2][4] = {{2, 2, 2, 2}, {0, 2, 2, 2}};
    static const float want1[2] = {0.5f, 0.0f};
    anamo_dataset ds;
    open_ok("steps:3", &ds);
    assert_int_equal(ds.n, 4);
    assert_memory_equal(ds.data, want3, sizeof want3);
    anamo_dataset_free(&ds);
    open_ok("steps:4:2@2", &ds);
    assert_int_equal(ds.n, 2);
    assert_memory_equal(ds.data, want_kept, sizeof want_kept);
    anamo_dataset_free(&ds);
    open_ok("steps:1:0.5", &ds);
    assert_int_equal(ds.n, 2);
    assert_int_equal(ds.dim, 1);
    assert_memory_equal(ds.data, want1, sizeof want1);
    anamo_dataset_free(&ds);
}

/* Bad lengths, amplitudes and forms fail with ANAMO_ERR_ARG and a message naming the spec. */
static void test_steps_bad(void **state)
{
    (void)state;
    static const char *const bad[] = {"steps:0",      "steps:4:-1",  "steps:x",       "steps:4:0",
                                      "steps:4:nan",  "steps:4:inf", "steps:4:2:1",   "steps:",
                                      "steps:4:",     "steps:-3",    "steps:1048577", "steps:65536",
                                      "steps:4:1e39", "steps:4x"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        anamo_dataset ds;
        anamo_err err = {0};
        int rc = anamo_dataset_open(bad[i], NULL, &ds, &err);
        if (rc != ANAMO_ERR_ARG)
            fail_msg("%s: expected ANAMO_ERR_ARG, got %d (%s)", bad[i], rc, err.msg);
        if (!strstr(err.msg, bad[i]))
            fail_msg("%s: message does not name the spec: %s", bad[i], err.msg);
    }
}

/* ---- latent linearity ------------------------------------------------------------------- */

/* A code exactly affine in the target (either sign) fits perfectly. */
static void test_r2_exact_line(void **state)
{
    (void)state;
    double t[6] = {0, 1, 2, 3, 4, 5};
    float up[6], down[6];
    for (int i = 0; i < 6; i++)
        up[i] = 3.0f * (float)t[i] - 2.0f, down[i] = 1.0f - 0.5f * (float)t[i];
    assert_true(fabs(r2_ok(up, 6, 1, t) - 1.0) < R2_TOL);
    assert_true(fabs(r2_ok(down, 6, 1, t) - 1.0) < R2_TOL);
}

/* y = (1, 2, 3, 4), code = (1, 3, 2, 4): centered (−1.5, −.5, .5, 1.5) and (−1.5, .5, −.5,
 * 1.5), S_xy = 4, S_xx = S_yy = 5, r = 0.8, R² = 0.64. */
static void test_r2_pearson(void **state)
{
    (void)state;
    double t[4] = {1, 2, 3, 4};
    float code[4] = {1, 3, 2, 4};
    assert_true(fabs(r2_ok(code, 4, 1, t) - 0.64) < R2_TOL);
}

/* Columns x1 = (−1, −1, 1, 1), x2 = (−1, 1, −1, 1), centered and orthogonal, so R² is the sum
 * of the two squared correlations.
 *   y = (1, 2, 3, 4) = 2.5 + x1 + 0.5·x2: alone r1² = 4²/(4·5) = 0.8, r2² = 2²/(4·5) = 0.2,
 *       jointly 1 (exactly linear in both, in neither alone);
 *   y = (1, 2, 3, 5): S_yy = 8.75, x1·y_c = 5, x2·y_c = 3: alone 25/35 and 9/35, jointly 34/35. */
static void test_r2_two_columns(void **state)
{
    (void)state;
    float codes[8] = {-1, -1, -1, 1, 1, -1, 1, 1};
    float x1[4] = {-1, -1, 1, 1}, x2[4] = {-1, 1, -1, 1};
    double t[4] = {1, 2, 3, 4}, u[4] = {1, 2, 3, 5};
    assert_true(fabs(r2_ok(x1, 4, 1, t) - 0.8) < R2_TOL);
    assert_true(fabs(r2_ok(x2, 4, 1, t) - 0.2) < R2_TOL);
    assert_true(fabs(r2_ok(codes, 4, 2, t) - 1.0) < R2_TOL);
    assert_true(fabs(r2_ok(x1, 4, 1, u) - 25.0 / 35.0) < R2_TOL);
    assert_true(fabs(r2_ok(x2, 4, 1, u) - 9.0 / 35.0) < R2_TOL);
    assert_true(fabs(r2_ok(codes, 4, 2, u) - 34.0 / 35.0) < R2_TOL);
}

/* A constant column adds nothing, and a repeated column (rank-deficient 2-D code) fits as the
 * one column does: both still give the 1-D answer 0.64. */
static void test_r2_degenerate_columns(void **state)
{
    (void)state;
    double t[4] = {1, 2, 3, 4};
    float with_constant[8] = {1, 7, 3, 7, 2, 7, 4, 7};
    float repeated[8] = {1, 1, 3, 3, 2, 2, 4, 4};
    float three[12] = {1, 7, 1, 3, 7, 3, 2, 7, 2, 4, 7, 4};
    assert_true(fabs(r2_ok(with_constant, 4, 2, t) - 0.64) < R2_TOL);
    assert_true(fabs(r2_ok(repeated, 4, 2, t) - 0.64) < R2_TOL);
    assert_true(fabs(r2_ok(three, 4, 3, t) - 0.64) < R2_TOL);
}

/* A constant target, or only constant codes, give 0 (not NaN). */
static void test_r2_constant(void **state)
{
    (void)state;
    double flat[4] = {0.1, 0.1, 0.1, 0.1}, t[4] = {1, 2, 3, 4};
    float code[4] = {1, 3, 2, 4}, still[8] = {0.3f, 2, 0.3f, 2, 0.3f, 2, 0.3f, 2};
    float still1[4] = {0.3f, 0.3f, 0.3f, 0.3f};
    assert_true(r2_ok(code, 4, 1, flat) == 0.0);
    assert_true(r2_ok(still, 4, 2, t) == 0.0);
    assert_true(r2_ok(still1, 4, 1, t) == 0.0);
}

/* n < 2, code_dim < 1 and NULL arguments are ANAMO_ERR_ARG; a NaN code is too. */
static void test_r2_errors(void **state)
{
    (void)state;
    double t[2] = {1, 2}, r2;
    float code[2] = {1, 2}, nan_code[2] = {1, NAN};
    anamo_err err = {0};
    assert_int_equal(anamo_latent_linearity(code, 1, 1, t, &r2, &err), ANAMO_ERR_ARG);
    assert_int_equal(anamo_latent_linearity(code, 2, 0, t, &r2, &err), ANAMO_ERR_ARG);
    assert_int_equal(anamo_latent_linearity(NULL, 2, 1, t, &r2, &err), ANAMO_ERR_ARG);
    assert_int_equal(anamo_latent_linearity(nan_code, 2, 1, t, &r2, &err), ANAMO_ERR_ARG);
    assert_int_equal(anamo_latent_linearity(code, 2, 1, t, &r2, &err), ANAMO_OK);
    assert_true(fabs(r2 - 1.0) < R2_TOL);
}

/* ---- constant initial weights ----------------------------------------------------------- */

#define CONST_ENC "linear 1 w=0.25 b=-1"
#define CONST_DEC "linear 4"

/* Whatever the init kind and seed, the encoder's weight is 0.25 everywhere and its bias −1;
 * on steps:4:2 its code is 0.25 · 2 · (4 − p) − 1 = (1, 0.5, 0, −0.5, −1) exactly. */
static void test_const_init_codes(void **state)
{
    (void)state;
    static const anamo_init_kind kinds[] = {ANAMO_INIT_PYTORCH, ANAMO_INIT_GLOROT, ANAMO_INIT_HE,
                                            ANAMO_INIT_UNIFORM};
    anamo_dataset ds;
    open_ok("steps:4:2", &ds);
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++)
        for (uint64_t seed = 0; seed < 3; seed++) {
            anamo_model *m = model_ok(CONST_ENC, CONST_DEC, 4, kinds[k], seed);
            const layer *l = &m->enc.layers[0];
            for (int j = 0; j < 4; j++)
                assert_true(l->weight[j] == 0.25f);
            assert_true(l->bias[0] == -1.0f);
            float code[5];
            anamo_err err = {0};
            assert_int_equal(anamo_model_encode(m, &ds, 0, 5, code, &err), ANAMO_OK);
            for (int p = 0; p <= 4; p++)
                if (code[p] != 0.25f * 2.0f * (float)(4 - p) - 1.0f)
                    fail_msg("init %d seed %llu: code of step %d is %g", (int)kinds[k],
                             (unsigned long long)seed, p, (double)code[p]);
            anamo_model_free(m);
        }
    anamo_dataset_free(&ds);
}

/* Only the named tensor is constant, and the other tensors and layers get exactly the draws
 * they get without the constants (the constant layer's draws are taken and overwritten). */
static void test_const_init_rest_unchanged(void **state)
{
    (void)state;
    anamo_model *plain = model_ok("linear 3, relu, linear 2", "linear 5", 5, ANAMO_INIT_PYTORCH, 4);
    anamo_model *wonly = model_ok("linear 3 w=0.5, relu, linear 2", "linear 5", 5,
                                  ANAMO_INIT_PYTORCH, 4);
    anamo_model *bonly = model_ok("linear 3, relu, linear 2 b=2", "linear 5", 5, ANAMO_INIT_PYTORCH,
                                  4);
    const block *p = &plain->enc, *w = &wonly->enc, *b = &bonly->enc;
    assert_true(all_equal_to(w->layers[0].weight, 15, 0.5f));
    assert_memory_equal(w->layers[0].bias, p->layers[0].bias, 3 * sizeof(float));
    assert_false(all_equal_to(p->layers[0].bias, 3, p->layers[0].bias[0]));
    assert_memory_equal(w->layers[2].weight, p->layers[2].weight, 6 * sizeof(float));
    assert_true(all_equal_to(b->layers[2].bias, 2, 2.0f));
    assert_memory_equal(b->layers[2].weight, p->layers[2].weight, 6 * sizeof(float));
    assert_memory_equal(b->layers[0].weight, p->layers[0].weight, 15 * sizeof(float));
    assert_memory_equal(wonly->dec.params, plain->dec.params,
                        (size_t)plain->dec.nparams * sizeof(float));
    char desc[256];
    block_describe(&bonly->enc, desc, sizeof desc);
    assert_string_equal(desc, "linear 3, relu, linear 2 b=2");
    block_describe(&wonly->enc, desc, sizeof desc);
    assert_string_equal(desc, "linear 3 w=0.5, relu, linear 2");
    anamo_model_free(plain);
    anamo_model_free(wonly);
    anamo_model_free(bonly);
}

/* w= and b= on any other layer, bad values, repeats and keys without '=' are configuration
 * errors whose message names the item. */
static void test_const_init_rejected(void **state)
{
    (void)state;
    static const struct {
        const char *enc, *item;
    } bad[] = {
        {"linear 2, relu w=1", "relu w=1"},      {"linear 3 w=abc", "linear 3 w=abc"},
        {"linear 3 b=", "linear 3 b="},          {"linear 3 w=nan", "linear 3 w=nan"},
        {"linear 3 w=1e40", "linear 3 w=1e40"},  {"linear 3 w=1 w=2", "linear 3 w=1 w=2"},
        {"linear 3 w1", "linear 3 w1"},          {"linear 2, batchnorm b=0", "batchnorm b=0"},
        {"linear 2, sigmoid b=0", "sigmoid b=0"}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        anamo_model_spec s = {.in_c = 4,
                              .in_h = 1,
                              .in_w = 1,
                              .encoder = bad[i].enc,
                              .decoder = "linear 4",
                              .max_batch = 2};
        anamo_model *m = NULL;
        anamo_err err = {0};
        int rc = anamo_model_create(&s, &m, &err);
        if (rc != ANAMO_ERR_CONFIG)
            fail_msg("%s: expected ANAMO_ERR_CONFIG, got %d (%s)", bad[i].enc, rc, err.msg);
        assert_null(m);
        if (!strstr(err.msg, bad[i].item))
            fail_msg("%s: message does not name '%s': %s", bad[i].enc, bad[i].item, err.msg);
    }
}

/* A checkpoint keeps the layer list with its constants; reloading re-parses it and then loads
 * the saved weights over the constants, so trained (here: changed) weights come back. */
static void test_const_init_checkpoint(void **state)
{
    temp_dir_fixture *fx = *state;
    anamo_model *m = model_ok(CONST_ENC, CONST_DEC, 4, ANAMO_INIT_PYTORCH, 1), *back = NULL;
    layer *l = &m->enc.layers[0];
    l->weight[2] = 3.0f, l->bias[0] = 0.75f;
    char path[TEST_UTIL_PATH_CAP];
    join_path(path, sizeof path, fx->dir, "const.safetensors");
    anamo_err err = {0};
    if (anamo_checkpoint_save(m, NULL, "test", path, &err) != ANAMO_OK)
        fail_msg("anamo_checkpoint_save: %s", err.msg);
    if (anamo_checkpoint_load_model(path, 8, &back, &err) != ANAMO_OK)
        fail_msg("anamo_checkpoint_load_model: %s", err.msg);
    assert_string_equal(back->encoder_spec, CONST_ENC);
    const layer *lb = &back->enc.layers[0];
    assert_true(lb->has_const_weight && lb->has_const_bias);
    assert_memory_equal(lb->weight, l->weight, 4 * sizeof(float));
    assert_true(lb->weight[2] == 3.0f && lb->bias[0] == 0.75f);
    assert_memory_equal(back->dec.params, m->dec.params, (size_t)m->dec.nparams * sizeof(float));
    anamo_model_free(back);
    anamo_model_free(m);
}

static int steps_setup(void **state) { return temp_dir_setup(state, "/tmp/anamo_steps_XXXXXX"); }

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_steps_small),
        cmocka_unit_test(test_steps_default),
        cmocka_unit_test(test_steps_forms),
        cmocka_unit_test(test_steps_bad),
        cmocka_unit_test(test_r2_exact_line),
        cmocka_unit_test(test_r2_pearson),
        cmocka_unit_test(test_r2_two_columns),
        cmocka_unit_test(test_r2_degenerate_columns),
        cmocka_unit_test(test_r2_constant),
        cmocka_unit_test(test_r2_errors),
        cmocka_unit_test(test_const_init_codes),
        cmocka_unit_test(test_const_init_rest_unchanged),
        cmocka_unit_test(test_const_init_rejected),
        cmocka_unit_test(test_const_init_checkpoint),
    };
    return cmocka_run_group_tests(tests, steps_setup, temp_dir_teardown);
}
