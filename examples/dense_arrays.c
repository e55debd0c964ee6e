/* dense_arrays.c — a dense autoencoder on your own float arrays, trained step by step.
 *
 * 2,000 samples of 64 features (a rank-4 signal plus noise) live in the program's memory;
 * anamo reads them in place. The first 1,600 train, the last 400 test. A hand-written loop of
 * anamo_trainer_step trains the model, and the test MSE is printed after every epoch; the
 * trained encoder then maps the arrays to their 8-number codes. */
#include <anamo_program.h>

#include <stdio.h>
#include <stdlib.h>

enum { N = 2000, N_TRAIN = 1600, D = 64, RANK = 4, CODE = 8 };

/* x = U z + 0.05 n: U (D × RANK) and z (RANK) and n (D) standard normal */
static void make_data(float *x)
{
    anamo_rng rng;
    anamo_rng_seed(&rng, 42);
    float u[D][RANK];
    for (int j = 0; j < D; j++)
        for (int r = 0; r < RANK; r++)
            u[j][r] = anamo_rng_normal(&rng) / 2;
    for (int i = 0; i < N; i++) {
        float z[RANK];
        for (int r = 0; r < RANK; r++)
            z[r] = anamo_rng_normal(&rng);
        for (int j = 0; j < D; j++) {
            float v = 0.05f * anamo_rng_normal(&rng);
            for (int r = 0; r < RANK; r++)
                v += u[j][r] * z[r];
            x[i * D + j] = v;
        }
    }
}

int main(int argc, char **argv)
{
    (void)argc;
    anamo_program_setup(argv); /* OpenMP and OpenBLAS settings; may run the program again */
    anamo_err err = {0};
    float *x = malloc(sizeof(float) * N * D);
    float *codes = malloc(sizeof(float) * (N - N_TRAIN) * CODE);
    anamo_dataset train, test;
    anamo_model *model = NULL;
    anamo_trainer *trainer = NULL;
    if (!x || !codes)
        return 1;
    make_data(x);
    const float *x_test = x + N_TRAIN * D;

    /* two views of the same memory, no copy: rows [0, 1600) and [1600, 2000) */
    if (anamo_dataset_wrap(&train, x, ANAMO_F32, N_TRAIN, D, 1, 1, NULL, "train", &err) ||
        anamo_dataset_wrap(&test, x_test, ANAMO_F32, N - N_TRAIN, D, 1, 1, NULL, "test", &err))
        goto fail;

    anamo_model_spec ms = {.in_c = D,
                           .in_h = 1,
                           .in_w = 1,
                           .encoder = "linear 32, relu, linear 8",
                           .decoder = "linear 32, relu, linear 64",
                           .init = ANAMO_INIT_PYTORCH,
                           .seed = 1,
                           .max_batch = 400};
    /* joint training: one phase, Adam on every weight, batches of 50, 10 epochs in all */
    anamo_train_spec ts = {.loss = ANAMO_LOSS_MSE, .epochs = 10, .seed = 1, .log_every = 100};
    ts.phases[ts.nphases++] = anamo_phase_default("joint", ANAMO_PHASE_JOINT, ANAMO_OPT_ADAM, 3e-3f,
                                                  50, 1);
    if (anamo_model_create(&ms, &model, &err) ||
        anamo_trainer_create(model, &ts, &train, NULL, &trainer, &err))
        goto fail;

    const anamo_eval_spec ev = anamo_trainer_eval_spec(trainer); /* the loss it trains */
    while (!anamo_trainer_done(trainer)) {
        /* one epoch, step by step (anamo_trainer_epoch does this loop in one call) */
        anamo_step_info step;
        double loss = 0;
        int steps = 0;
        do {
            if (anamo_trainer_step(trainer, NULL, &step, &err))
                goto fail;
            loss += step.loss, steps++;
        } while (!step.epoch_end && !anamo_trainer_done(trainer));
        anamo_metrics m;
        if (anamo_evaluate(model, &test, &ev, &m, &err))
            goto fail;
        printf("epoch %2lld: train loss %.5f, test MSE %.5f\n", (long long)step.epoch, loss / steps,
               m.mse);
    }
    if (anamo_trainer_finish(trainer, &err))
        goto fail;

    /* the trained encoder on the caller's arrays: codes of the 400 test rows */
    if (anamo_encode(model, x_test, N - N_TRAIN, D, codes, CODE, &err))
        goto fail;
    printf("code of the first test sample:");
    for (int k = 0; k < CODE; k++)
        printf(" %.3f", codes[k]);

    /* a weight by its PyTorch name: decoder.0 is nn.Linear(8, 32), its weight (32, 8) */
    anamo_tensor_view w;
    if (anamo_model_tensor(model, "decoder.0.weight", &w, &err))
        goto fail;
    printf("\n%s: (%lld, %lld)\n", w.name, (long long)w.shape[0], (long long)w.shape[1]);

    anamo_trainer_free(trainer);
    anamo_model_free(model);
    free(x), free(codes);
    return 0;
fail:
    fprintf(stderr, "dense_arrays: %s\n", err.msg);
    return 1;
}
