/* test_api.c — the public API on the caller's memory, its tensors by name and the step-level
 * loop, against the paths the CLI takes:
 *   1. anamo_dataset_wrap reads the caller's floats and bytes without a copy (the dataset's
 *      data pointer is the caller's), rejects NULL, misaligned and empty arrays naming them,
 *      and a hold-out split of a wrapped set leaves the caller's memory as it was.
 *   2. anamo_encode / anamo_reconstruct on arrays equal anamo_model_encode /
 *      anamo_model_reconstruct on the same rows of an opened dataset bit for bit, and decode of
 *      the codes equals the reconstruction bit for bit; a shape that does not match the model
 *      is an error naming both sizes.
 *   3. Tensors by state_dict name: names and shapes as PyTorch's, the views point into the
 *      model (a write changes its output), and an unknown name is an error naming it; layers
 *      with their shapes and parameter counts.
 *   4. A hand-written loop of anamo_trainer_step (and one of anamo_trainer_epoch) followed by
 *      anamo_trainer_finish leaves every parameter bit-identical to anamo_trainer_run, for
 *      joint, NAM (with a code cache), ANAMO and free codes; the step info counts the run.
 *   5. Each enumeration's list of names and its table agree. */
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

#define ND 40 /* samples in the hand-made set */
#define NF 12 /* features */

static void must(int rc, const anamo_err *err)
{
    if (rc != ANAMO_OK)
        fail_msg("anamo: %s", err->msg);
}

/* The error's message contains every one of the words. */
static void assert_error(int rc, int code, const anamo_err *err, const char *w1, const char *w2)
{
    if (rc != code)
        fail_msg("want status %d, got %d (%s)", code, rc, err->msg);
    if (!strstr(err->msg, w1) || (w2 && !strstr(err->msg, w2)))
        fail_msg("message '%s' should name '%s'%s%s", err->msg, w1, w2 ? " and " : "",
                 w2 ? w2 : "");
}

static void fill(float *x, int64_t n, int64_t d)
{
    for (int64_t i = 0; i < n * d; i++)
        x[i] = (float)(0.5 + 0.45 * sin(0.37 * (double)i + 0.11 * (double)(i % 7)));
}

static anamo_model *dense_model(const char *encoder, int64_t in, int binary)
{
    anamo_model_spec s = {.in_c = (int)in,
                          .in_h = 1,
                          .in_w = 1,
                          .encoder = encoder,
                          .decoder = "linear 16, relu, linear 12, sigmoid",
                          .init = ANAMO_INIT_PYTORCH,
                          .seed = 3,
                          .max_batch = 16,
                          .binary_codes = binary};
    anamo_model *m = NULL;
    anamo_err err = {0};
    must(anamo_model_create(&s, &m, &err), &err);
    return m;
}

/* ---- 1. datasets over the caller's memory -------------------------------------------------- */

static void test_wrap(void **state)
{
    (void)state;
    float *x = anamo_alloc(ND * NF * sizeof(float) + 8);
    uint8_t bytes[ND * NF], labels[ND];
    fill(x, ND, NF);
    for (int i = 0; i < ND * NF; i++)
        bytes[i] = (uint8_t)(i * 7);
    for (int i = 0; i < ND; i++)
        labels[i] = (uint8_t)(i % 10);
    anamo_dataset ds;
    anamo_err err = {0};
    must(anamo_dataset_wrap(&ds, x, ANAMO_F32, ND, NF, 1, 1, labels, "my floats", &err), &err);
    assert_ptr_equal(ds.data, x); /* no copy */
    assert_int_equal(ds.dim, NF);
    float row[NF];
    must(anamo_dataset_rows(&ds, 3, 1, row, &err), &err);
    assert_memory_equal(row, x + 3 * NF, sizeof row);
    assert_error(anamo_dataset_rows(&ds, ND - 1, 2, row, &err), ANAMO_ERR_ARG, &err, "my floats",
                 "40");
    anamo_dataset_free(&ds); /* frees nothing of the caller's: ASan and valgrind would say */

    anamo_dataset db;
    must(anamo_dataset_wrap(&db, bytes, ANAMO_U8, ND, 1, 3, 4, NULL, NULL, &err), &err);
    must(anamo_dataset_rows(&db, 1, 1, row, &err), &err);
    for (int j = 0; j < NF; j++)
        assert_true(row[j] == (float)bytes[NF + j] / 255.0f);

    /* a hold-out split copies: the caller's bytes stay where they were */
    uint8_t before[ND * NF];
    memcpy(before, bytes, sizeof before);
    anamo_dataset val;
    must(anamo_dataset_hold_out(&db, 0.25, 9, &val, &err), &err);
    assert_int_equal(db.n + val.n, ND);
    assert_ptr_not_equal(db.data, bytes);
    assert_memory_equal(bytes, before, sizeof before);
    anamo_dataset_free(&db);
    anamo_dataset_free(&val);

    assert_error(anamo_dataset_wrap(&ds, NULL, ANAMO_F32, ND, NF, 1, 1, NULL, "a", &err),
                 ANAMO_ERR_ARG, &err, "a: ", "NULL");
    assert_error(anamo_dataset_wrap(&ds, (char *)x + 1, ANAMO_F32, ND, NF, 1, 1, NULL, "b", &err),
                 ANAMO_ERR_ARG, &err, "b: ", "aligned");
    assert_error(anamo_dataset_wrap(&ds, x, ANAMO_F32, 0, NF, 1, 1, NULL, "c", &err), ANAMO_ERR_ARG,
                 &err, "c: ", "0 ×");
    assert_error(anamo_dataset_wrap(&ds, x, ANAMO_F32, ND, NF, -1, 1, NULL, "d", &err),
                 ANAMO_ERR_ARG, &err, "d: ", "-1");
    anamo_free(x);
}

/* ---- 2. encode, decode, reconstruct on arrays ---------------------------------------------- */

static void check_maps(anamo_model *m, const float *x, int64_t n, int binary)
{
    anamo_err err = {0};
    const int64_t K = anamo_model_code_dim(m), D = anamo_model_input_dim(m);
    float *h1 = calloc((size_t)(n * K), sizeof(float)), *h2 = calloc((size_t)(n * K), 4);
    float *r1 = calloc((size_t)(n * D), sizeof(float)), *r2 = calloc((size_t)(n * D), 4);
    float *r3 = calloc((size_t)(n * D), sizeof(float));
    anamo_dataset ds;
    must(anamo_dataset_wrap(&ds, x, ANAMO_F32, n, (int)D, 1, 1, NULL, "x", &err), &err);
    must(anamo_model_encode(m, &ds, 0, n, h1, &err), &err);
    must(anamo_model_reconstruct(m, &ds, 0, n, r1, &err), &err);
    must(anamo_encode(m, x, n, D, h2, K, &err), &err);
    must(anamo_reconstruct(m, x, n, D, r2, D, &err), &err);
    must(anamo_decode(m, h2, n, K, r3, D, &err), &err);
    assert_memory_equal(h1, h2, (size_t)(n * K) * sizeof(float));
    assert_memory_equal(r1, r2, (size_t)(n * D) * sizeof(float));
    assert_memory_equal(r2, r3, (size_t)(n * D) * sizeof(float)); /* D(E(x)), codes as given */
    if (binary)
        for (int64_t i = 0; i < n * K; i++)
            assert_true(h2[i] == 0.0f || h2[i] == 1.0f);
    free(h1), free(h2), free(r1), free(r2), free(r3);
}

static void test_maps_on_arrays(void **state)
{
    (void)state;
    float x[ND * NF];
    fill(x, ND, NF);
    anamo_model *m = dense_model("linear 16, relu, linear 5, relu", NF, 0);
    check_maps(m, x, ND, 0); /* 40 rows: three batches of at most 16 */
    anamo_model_free(m);
    m = dense_model("linear 5, sigmoid", NF, 1);
    check_maps(m, x, ND, 1);

    anamo_err err = {0};
    float h[ND * 5], out[ND * NF];
    assert_error(anamo_encode(m, x, ND, NF + 1, h, 5, &err), ANAMO_ERR_ARG, &err, "13", "12");
    assert_error(anamo_encode(m, x, ND, NF, h, 4, &err), ANAMO_ERR_ARG, &err, "codes", "5");
    assert_error(anamo_decode(m, NULL, ND, 5, out, NF, &err), ANAMO_ERR_ARG, &err, "decode",
                 "NULL");
    assert_error(anamo_reconstruct(m, (const float *)((const char *)x + 2), ND, NF, out, NF, &err),
                 ANAMO_ERR_ARG, &err, "reconstruct", "aligned");
    assert_error(anamo_encode(m, x, 0, NF, h, 5, &err), ANAMO_ERR_ARG, &err, "0 rows", NULL);
    assert_error(anamo_encode(NULL, x, ND, NF, h, 5, &err), ANAMO_ERR_ARG, &err, "model", NULL);
    anamo_model_free(m);
}

/* ---- 3. tensors by name -------------------------------------------------------------------- */

static void test_tensors(void **state)
{
    (void)state;
    anamo_model_spec s = {.in_c = NF,
                          .in_h = 1,
                          .in_w = 1,
                          .encoder = "linear 8, batchnorm, relu, linear 4",
                          .decoder = "linear 12",
                          .init = ANAMO_INIT_PYTORCH,
                          .seed = 1,
                          .max_batch = 8};
    anamo_model *m = NULL;
    anamo_err err = {0};
    must(anamo_model_create(&s, &m, &err), &err);
    /* encoder.0.{weight,bias}, encoder.1.{weight,bias}, encoder.3.{weight,bias},
     * encoder.1.{running_mean,running_var,num_batches_tracked}, decoder.0.{weight,bias} */
    assert_int_equal(anamo_model_tensor_count(m), 11);
    anamo_tensor_view v;
    must(anamo_model_tensor(m, "encoder.0.weight", &v, &err), &err);
    assert_int_equal(v.role, ANAMO_ROLE_PARAMETER);
    assert_int_equal(v.ndim, 2);
    assert_int_equal(v.shape[0], 8); /* (out, in) as nn.Linear's */
    assert_int_equal(v.shape[1], NF);
    assert_int_equal(v.numel, 8 * NF);
    assert_non_null(v.grad);
    must(anamo_model_tensor(m, "encoder.1.running_var", &v, &err), &err);
    assert_int_equal(v.role, ANAMO_ROLE_BUFFER);
    assert_int_equal(v.shape[0], 8);
    assert_true(v.data[0] == 1.0f); /* PyTorch's initial running variance */
    must(anamo_model_tensor(m, "encoder.1.num_batches_tracked", &v, &err), &err);
    assert_int_equal(v.role, ANAMO_ROLE_COUNT);
    assert_int_equal(v.ndim, 0);
    assert_non_null(v.count);
    assert_null(v.data);
    assert_error(anamo_model_tensor(m, "encoder.9.weight", &v, &err), ANAMO_ERR_ARG, &err,
                 "encoder.9.weight", NULL);
    assert_error(anamo_model_tensor_at(m, 11, &v, &err), ANAMO_ERR_ARG, &err, "11", NULL);

    /* a write through the view is a write to the model: zero decoder weights and bias give a
     * zero reconstruction */
    float x[4 * NF], r[4 * NF];
    fill(x, 4, NF);
    for (int i = 0; i < anamo_model_tensor_count(m); i++) {
        must(anamo_model_tensor_at(m, i, &v, &err), &err);
        if (v.block == 1)
            memset(v.data, 0, (size_t)v.numel * sizeof(float));
    }
    must(anamo_reconstruct(m, x, 4, NF, r, NF, &err), &err);
    for (int i = 0; i < 4 * NF; i++)
        assert_true(r[i] == 0.0f);
    anamo_model_free(m);
}

/* The layers as built: shapes by the convolution arithmetic, out = (in + 2p − k)/s + 1 and
 * (in − 1)·s − 2p + k + op, parameter counts as PyTorch's, summing to the block's. */
static void test_layers(void **state)
{
    (void)state;
    anamo_model_spec s = {.in_c = 3,
                          .in_h = 32,
                          .in_w = 32,
                          .encoder = "conv2d 12 k4 s2 p1, relu, batchnorm, flatten, linear 10",
                          .decoder = "linear 768, unflatten 12 8 8, convtranspose2d 3 k4 s4 p0",
                          .init = ANAMO_INIT_PYTORCH,
                          .seed = 1,
                          .max_batch = 2};
    anamo_model *m = NULL;
    anamo_err err = {0};
    must(anamo_model_create(&s, &m, &err), &err);
    assert_int_equal(anamo_model_layer_count(m, 0), 5);
    assert_int_equal(anamo_model_layer_count(m, 1), 3);
    anamo_layer_info l;
    must(anamo_model_layer(m, 0, 0, &l, &err), &err);
    assert_string_equal(l.name, "encoder.0");
    assert_string_equal(l.item, "conv2d 12 k4 s2 p1");
    assert_int_equal(l.kind, ANAMO_LAYER_CONV2D);
    assert_int_equal(l.out_c, 12);
    assert_int_equal(l.out_h, (32 + 2 - 4) / 2 + 1);
    assert_int_equal(l.kernel, 4);
    assert_int_equal(l.params, 12 * 3 * 4 * 4 + 12);
    must(anamo_model_layer(m, 0, 4, &l, &err), &err);
    assert_int_equal(l.kind, ANAMO_LAYER_LINEAR);
    assert_int_equal(l.in_dim, 12 * 16 * 16);
    assert_int_equal(l.params, 12 * 16 * 16 * 10 + 10);
    must(anamo_model_layer(m, 1, 2, &l, &err), &err);
    assert_int_equal(l.kind, ANAMO_LAYER_CONVT2D);
    assert_int_equal(l.out_h, (8 - 1) * 4 + 4);
    assert_int_equal(l.params, 12 * 3 * 4 * 4 + 3);
    for (int b = 0; b < 2; b++) {
        int64_t sum = 0;
        for (int i = 0; i < anamo_model_layer_count(m, b); i++) {
            must(anamo_model_layer(m, b, i, &l, &err), &err);
            sum += l.params;
        }
        assert_int_equal(sum, anamo_model_param_count(m, b));
    }
    assert_error(anamo_model_layer(m, 1, 3, &l, &err), ANAMO_ERR_ARG, &err, "no layer 3", NULL);
    anamo_model_free(m);
}

/* ---- 4. the step-level loop ---------------------------------------------------------------- */

typedef enum loop_kind { LOOP_RUN, LOOP_STEPS, LOOP_EPOCHS } loop_kind;

static anamo_train_spec scheme_spec(anamo_phase_kind scheme)
{
    anamo_train_spec s;
    memset(&s, 0, sizeof s);
    s.loss = ANAMO_LOSS_MSE;
    s.lambda = 1e-3f;
    s.epochs = 3;
    s.seed = 7;
    s.log_every = 1000;
    s.cache_codes = 1;
    if (scheme == ANAMO_PHASE_JOINT) {
        s.phases[s.nphases++] = anamo_phase_default("joint", ANAMO_PHASE_JOINT, ANAMO_OPT_ADAM,
                                                    1e-2f, 16, 1);
    } else if (scheme == ANAMO_PHASE_DECODER) { /* NAM: decoder then encoder */
        s.phases[s.nphases++] = anamo_phase_default("dec", ANAMO_PHASE_DECODER, ANAMO_OPT_ADAM,
                                                    1e-2f, 16, 1);
        s.phases[s.nphases++] = anamo_phase_default("enc", ANAMO_PHASE_ENCODER, ANAMO_OPT_MOMENTUM,
                                                    1e-1f, 8, 1);
    } else {
        anamo_phase ph = anamo_phase_default(scheme == ANAMO_PHASE_ANAMO ? "anamo" : "freecodes",
                                             scheme, ANAMO_OPT_FISTA, 0.1f, 16, 1);
        ph.anamo.enc_iters = 2, ph.anamo.dec_iters = 3, ph.anamo.enc_lr = 0.1f,
        ph.anamo.dec_lr = 0.3f;
        ph.freecodes.code_iters = 2, ph.freecodes.dec_iters = 3;
        ph.freecodes.code_lr = 0.1f, ph.freecodes.dec_lr = 0.3f, ph.freecodes.refit_epochs = 1;
        s.phases[s.nphases++] = ph;
    }
    return s;
}

/* Trains a fresh model with the scheme through one of the three loops; returns its decoder
 * and encoder parameters (malloc'd, encoder then decoder) and the step count. */
static float *train_with(anamo_phase_kind scheme, loop_kind loop, const anamo_dataset *ds,
                         int64_t *params, int64_t *steps)
{
    const char *enc = scheme == ANAMO_PHASE_FREECODES ? "linear 6, sigmoid" : "linear 6, relu";
    anamo_model *m = dense_model(enc, NF, scheme == ANAMO_PHASE_FREECODES);
    anamo_train_spec s = scheme_spec(scheme);
    anamo_trainer *t = NULL;
    anamo_err err = {0};
    must(anamo_trainer_create(m, &s, ds, NULL, &t, &err), &err);
    if (loop == LOOP_RUN) {
        must(anamo_trainer_run(t, NULL, &err), &err);
    } else if (loop == LOOP_EPOCHS) {
        for (int e = 0; !anamo_trainer_done(t); e++) {
            must(anamo_trainer_epoch(t, NULL, &err), &err);
            assert_int_equal(anamo_trainer_epochs_done(t), e + 1);
        }
        must(anamo_trainer_finish(t, &err), &err);
    } else {
        anamo_step_info info;
        int64_t n = 0, samples = 0, ends = 0;
        while (!anamo_trainer_done(t)) {
            must(anamo_trainer_step(t, NULL, &info, &err), &err);
            assert_int_equal(info.iteration, ++n);
            assert_true(isfinite(info.loss));
            samples += info.batch;
            ends += info.epoch_end;
        }
        assert_int_equal(samples, 3 * ds->n); /* the budget: 3 epochs */
        assert_int_equal(ends, 3);
        assert_int_equal(info.epoch, 3);
        assert_int_equal(anamo_trainer_step(t, NULL, &info, &err), ANAMO_ERR_ARG);
        must(anamo_trainer_finish(t, &err), &err);
    }
    *steps = anamo_trainer_iterations(t);
    int64_t ne = anamo_model_param_count(m, 0), nd = anamo_model_param_count(m, 1);
    float *p = malloc((size_t)(ne + nd) * sizeof(float));
    for (int i = 0, at = 0; i < anamo_model_tensor_count(m); i++) {
        anamo_tensor_view v;
        must(anamo_model_tensor_at(m, i, &v, &err), &err);
        if (v.role != ANAMO_ROLE_PARAMETER)
            continue;
        memcpy(p + at, v.data, (size_t)v.numel * sizeof(float));
        at += (int)v.numel;
    }
    *params = ne + nd;
    anamo_trainer_free(t);
    anamo_model_free(m);
    return p;
}

static void check_loops_agree(anamo_phase_kind scheme)
{
    float x[ND * NF];
    fill(x, ND, NF);
    anamo_dataset ds;
    anamo_err err = {0};
    must(anamo_dataset_wrap(&ds, x, ANAMO_F32, ND, NF, 1, 1, NULL, "loops", &err), &err);
    int64_t n_run, n_steps, n_epochs, s_run, s_steps, s_epochs;
    float *run = train_with(scheme, LOOP_RUN, &ds, &n_run, &s_run);
    float *steps = train_with(scheme, LOOP_STEPS, &ds, &n_steps, &s_steps);
    float *epochs = train_with(scheme, LOOP_EPOCHS, &ds, &n_epochs, &s_epochs);
    assert_int_equal(n_run, n_steps);
    assert_int_equal(s_run, s_steps);
    assert_int_equal(s_run, s_epochs);
    assert_memory_equal(run, steps, (size_t)n_run * sizeof(float));
    assert_memory_equal(run, epochs, (size_t)n_run * sizeof(float));
    /* and training moved them: the comparison is not of two untouched initializations */
    anamo_model *fresh = dense_model(scheme == ANAMO_PHASE_FREECODES ? "linear 6, sigmoid"
                                                                     : "linear 6, relu",
                                     NF, 0);
    anamo_tensor_view v;
    must(anamo_model_tensor(fresh, "decoder.0.weight", &v, &err), &err);
    const int64_t at = 6 * NF + 6; /* after encoder.0.weight and bias */
    assert_memory_not_equal(run + at, v.data, (size_t)v.numel * sizeof(float));
    anamo_model_free(fresh);
    free(run), free(steps), free(epochs);
}

static void test_loops_joint(void **state)
{
    (void)state;
    check_loops_agree(ANAMO_PHASE_JOINT);
}
static void test_loops_nam(void **state)
{
    (void)state;
    check_loops_agree(ANAMO_PHASE_DECODER);
}
static void test_loops_anamo(void **state)
{
    (void)state;
    check_loops_agree(ANAMO_PHASE_ANAMO);
}
static void test_loops_freecodes(void **state)
{
    (void)state;
    check_loops_agree(ANAMO_PHASE_FREECODES);
}

/* ---- 5. the names of the enumerations ----------------------------------------------------- */

/* Every name the allowed list gives parses to a value whose name is that name, the list holds
 * no name twice, and junk parses to -1: the list and the table are one. */
static void test_enum_names(void **state)
{
    (void)state;
    for (int e = 0; e < ANAMO_ENUM_COUNT; e++) {
        char list[256];
        snprintf(list, sizeof list, "%s", anamo_enum_allowed((anamo_enum)e));
        assert_true(list[0] != '\0');
        int count = 0, seen[16] = {0};
        for (char *save = NULL, *w = strtok_r(list, "|", &save); w;
             w = strtok_r(NULL, "|", &save), count++) {
            const int v = anamo_enum_parse((anamo_enum)e, w);
            if (v < 0 || v >= 16)
                fail_msg("enum %d: '%s' from the allowed list parses to %d", e, w, v);
            assert_string_equal(anamo_enum_name((anamo_enum)e, v), w);
            assert_int_equal(seen[v]++, 0);
        }
        for (int v = 0; v < count; v++) /* values 0..count−1, each named */
            assert_non_null(anamo_enum_name((anamo_enum)e, v));
        assert_null(anamo_enum_name((anamo_enum)e, count));
        assert_int_equal(anamo_enum_parse((anamo_enum)e, "no-such-name"), -1);
        assert_int_equal(anamo_enum_parse((anamo_enum)e, NULL), -1);
    }
    assert_int_equal(anamo_enum_parse(ANAMO_ENUM_OPTIMIZER, "nesterov"), ANAMO_OPT_NESTEROV);
    assert_string_equal(anamo_enum_name(ANAMO_ENUM_LOSS, ANAMO_LOSS_MSE_SUM), "mse_sum");
    assert_null(anamo_enum_name(ANAMO_ENUM_COUNT, 0));
    assert_string_equal(anamo_enum_allowed(ANAMO_ENUM_COUNT), "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_wrap),        cmocka_unit_test(test_maps_on_arrays),
        cmocka_unit_test(test_tensors),     cmocka_unit_test(test_layers),
        cmocka_unit_test(test_loops_joint), cmocka_unit_test(test_loops_nam),
        cmocka_unit_test(test_loops_anamo), cmocka_unit_test(test_loops_freecodes),
        cmocka_unit_test(test_enum_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
