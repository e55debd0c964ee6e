/* test_compute.c — the training work a run reports (anamo_trainer_work, summary.json's
 * "compute"), against counts worked out by hand for a 12→5→3 | 3→5→12 autoencoder:
 *   forward FLOP per sample: encoder 2(12·5 + 5·3) = 150, decoder 2(3·5 + 5·12) = 150;
 *   a backward pass computes each layer's weight gradient when the block trains (150), and its
 *   input gradient where someone needs it: every layer of the decoder when the encoder trains
 *   (150), none of the first layer's otherwise (decoder 2·5·12 = 120, encoder 2·5·3 = 30).
 * Joint, NAM (a decoder phase's code cache is an encoder forward pass per sample), evaluation
 * left out, the FLOP budget's stop, and the counts kept across a checkpoint. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "anamo.h"
#include "test_util.h"

#define N 40 /* training samples */
#define BATCH 10
#define D 12
#define F_ENC 150.0 /* forward FLOP per sample */
#define F_DEC 150.0

static float train_x[N * D], test_x[N * D];

static anamo_dataset set_of(float *x, const char *name)
{
    anamo_dataset ds = {.n = N, .c = D, .h = 1, .w = 1, .dim = D, .dtype = ANAMO_F32, .data = x};
    snprintf(ds.source, sizeof ds.source, "%s", name);
    return ds;
}

static anamo_model *model_new(void)
{
    anamo_model_spec s = {.in_c = D,
                          .in_h = 1,
                          .in_w = 1,
                          .encoder = "linear 5, relu, linear 3",
                          .decoder = "linear 5, relu, linear 12, sigmoid",
                          .seed = 4,
                          .max_batch = BATCH};
    anamo_model *m = NULL;
    anamo_err err = {0};
    if (anamo_model_create(&s, &m, &err) != ANAMO_OK)
        fail_msg("anamo_model_create: %s", err.msg);
    return m;
}

static anamo_train_spec spec_of(int nam, double epochs)
{
    anamo_train_spec s;
    memset(&s, 0, sizeof s);
    s.loss = ANAMO_LOSS_MSE;
    s.epochs = epochs;
    s.log_every = 1000;
    s.jacobian_samples = 4;
    s.cache_codes = 1;
    s.eval_every_epoch = 1;
    if (nam) {
        s.nphases = 2;
        s.phases[0] = anamo_phase_default("decoder", ANAMO_PHASE_DECODER, ANAMO_OPT_ADAM, 1e-2f,
                                          BATCH, 1.0);
        s.phases[1] = anamo_phase_default("encoder", ANAMO_PHASE_ENCODER, ANAMO_OPT_ADAM, 1e-3f,
                                          BATCH, 1.0);
    } else {
        s.nphases = 1;
        s.phases[0] = anamo_phase_default("joint", ANAMO_PHASE_JOINT, ANAMO_OPT_ADAM, 1e-3f, BATCH,
                                          1.0);
    }
    return s;
}

/* Trains spec on the training set with the test set evaluated after every epoch. */
static void train(const anamo_train_spec *s, anamo_work work[2], anamo_model **keep,
                  anamo_trainer **keep_t)
{
    anamo_dataset tr = set_of(train_x, "train"), te = set_of(test_x, "test");
    anamo_model *m = model_new();
    anamo_trainer *t = NULL;
    anamo_err err = {0};
    if (anamo_trainer_create(m, s, &tr, &te, &t, &err) != ANAMO_OK)
        fail_msg("anamo_trainer_create: %s", err.msg);
    if (anamo_trainer_run(t, NULL, &err) != ANAMO_OK)
        fail_msg("anamo_trainer_run: %s", err.msg);
    anamo_trainer_work(t, work);
    if (keep) {
        *keep = m, *keep_t = t;
        return;
    }
    anamo_trainer_free(t);
    anamo_model_free(m);
}

static void expect_work(const char *what, const anamo_work *w, int64_t fwd, int64_t bwd,
                        double flop)
{
    if (w->forward_samples != fwd || w->backward_samples != bwd || w->flop != flop)
        fail_msg("%s: %lld forward, %lld backward, %.0f FLOP; want %lld, %lld, %.0f", what,
                 (long long)w->forward_samples, (long long)w->backward_samples, w->flop,
                 (long long)fwd, (long long)bwd, flop);
}

/* Two joint epochs: each sample once forward and once backward through each block; the
 * decoder's backward computes every input gradient (the encoder needs ∂/∂h), the encoder's
 * all but its first layer's. The test set's evaluations add nothing. */
static void test_joint_counts(void **state)
{
    (void)state;
    anamo_train_spec s = spec_of(0, 2.0);
    anamo_work w[2];
    train(&s, w, NULL, NULL);
    expect_work("joint encoder", &w[0], 2 * N, 2 * N, 2.0 * N * (F_ENC + F_ENC + 30.0));
    expect_work("joint decoder", &w[1], 2 * N, 2 * N, 2.0 * N * (F_DEC + F_DEC + F_DEC));
}

/* NAM, decoder phase then encoder phase: epoch 1 runs the encoder forward once per sample to
 * fill the code cache and the decoder forward and backward without ∂/∂h; epoch 2 runs the
 * encoder forward and backward and the decoder forward and backward for ∂/∂h only. */
static void test_nam_counts(void **state)
{
    (void)state;
    anamo_train_spec s = spec_of(1, 2.0);
    anamo_work w[2];
    train(&s, w, NULL, NULL);
    expect_work("NAM encoder", &w[0], 2 * N, N, N * (F_ENC + F_ENC + (F_ENC + 30.0)));
    expect_work("NAM decoder", &w[1], 2 * N, 2 * N,
                N * ((F_DEC + F_DEC + 120.0) + (F_DEC + F_DEC)));
}

/* A budget of 2.5 joint steps' FLOP stops the run after its third step, mid-epoch. */
static void test_flop_budget(void **state)
{
    (void)state;
    const double per_step = BATCH * (F_ENC + F_ENC + 30.0 + F_DEC + F_DEC + F_DEC);
    anamo_train_spec s = spec_of(0, 5.0);
    s.flop_budget = 2.5 * per_step;
    anamo_work w[2];
    anamo_model *m;
    anamo_trainer *t;
    train(&s, w, &m, &t);
    assert_int_equal(anamo_trainer_iterations(t), 3);
    assert_int_equal(w[0].forward_samples, 3 * BATCH);
    assert_true(w[0].flop + w[1].flop == 3 * per_step);
    assert_true(anamo_trainer_done(t));
    /* a checkpoint keeps the counts, so a resumed run goes on from them */
    char dir[256], ckpt[TEST_UTIL_PATH_CAP];
    assert_int_equal(make_temp_dir(dir, sizeof dir, "/tmp/anamo_test_compute_XXXXXX"), 0);
    join_path(ckpt, sizeof ckpt, dir, "budget.safetensors");
    anamo_err err = {0};
    assert_int_equal(anamo_checkpoint_save(m, t, "", ckpt, &err), ANAMO_OK);
    anamo_dataset tr = set_of(train_x, "train");
    anamo_trainer *again = NULL;
    assert_int_equal(anamo_trainer_create(m, &s, &tr, NULL, &again, &err), ANAMO_OK);
    assert_int_equal(anamo_checkpoint_restore(m, again, ckpt, &err), ANAMO_OK);
    anamo_work w2[2];
    anamo_trainer_work(again, w2);
    expect_work("restored encoder", &w2[0], w[0].forward_samples, w[0].backward_samples, w[0].flop);
    expect_work("restored decoder", &w2[1], w[1].forward_samples, w[1].backward_samples, w[1].flop);
    assert_true(anamo_trainer_done(again));
    anamo_trainer_free(again);
    anamo_trainer_free(t);
    anamo_model_free(m);
    remove_tree(dir);
}

int main(void)
{
    anamo_rng rng;
    anamo_rng_seed(&rng, 9);
    fill_uniform(&rng, train_x, N * D, 0.0f, 1.0f);
    fill_uniform(&rng, test_x, N * D, 0.0f, 1.0f);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_joint_counts),
        cmocka_unit_test(test_nam_counts),
        cmocka_unit_test(test_flop_budget),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
