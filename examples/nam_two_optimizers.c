/* nam_two_optimizers.c — Nested Alternating Minimization: the decoder and the encoder trained
 * in turn, one epoch each, the decoder by SGD with momentum and the encoder by Adam.
 *
 * Data: the first 10,000 MNIST training images and 2,000 test images when $ANAMO_DATA holds
 * mnist/ (scripts/get-mnist.sh), else 2,000 of seed 000's 10×10 "halves" images. The test
 * metrics are printed after every epoch, and the model is saved as a safetensors checkpoint
 * (PyTorch's state_dict names) in nam.safetensors, or in the file given as argument. */
#include <anamo_program.h>

#include <stdio.h>
#include <stdlib.h>

/* called by anamo_trainer_run at each epoch's end; nonzero would stop the run */
static int print_epoch(void *ctx, const anamo_epoch_row *row)
{
    (void)ctx;
    printf("epoch %lld (%s): train loss %.5f, test MSE %.5f, code l1 %.2f, dead units %lld\n",
           (long long)row->epoch, row->phase, row->train_loss, row->test.mse, row->test.code_l1,
           (long long)row->test.dead_units);
    return 0;
}

static int open_data(anamo_dataset *train, anamo_dataset *test, anamo_err *err)
{
    const char *root = getenv("ANAMO_DATA"); /* NULL: ./data */
    if (anamo_dataset_open("mnist:train@10000", root, train, err) == ANAMO_OK)
        return anamo_dataset_open("mnist:test@2000", root, test, err);
    if (anamo_dataset_open("halves:2000:1", NULL, train, err))
        return err->code;
    return anamo_dataset_open("halves:500:2", NULL, test, err);
}

int main(int argc, char **argv)
{
    anamo_program_setup(argv); /* OpenMP and OpenBLAS settings; may run the program again */
    const char *path = argc > 1 ? argv[1] : "nam.safetensors";
    anamo_err err = {0};
    anamo_dataset train = {0}, test = {0};
    anamo_model *model = NULL;
    anamo_trainer *trainer = NULL;
    if (open_data(&train, &test, &err))
        goto fail;
    printf("data: %s (%lld samples of %lld values)\n", train.source, (long long)train.n,
           (long long)train.dim);

    /* the output layer's width is the sample's size */
    char decoder[64];
    snprintf(decoder, sizeof decoder, "linear 64, relu, linear %lld, sigmoid",
             (long long)train.dim);
    anamo_model_spec ms = {.in_c = train.c,
                           .in_h = train.h,
                           .in_w = train.w,
                           .encoder = "flatten, linear 64, relu, linear 16, relu",
                           .decoder = decoder,
                           .init = ANAMO_INIT_PYTORCH,
                           .seed = 0,
                           .max_batch = 500};

    /* NAM: a decoder phase, then an encoder phase, each one epoch long, cycling for 6 epochs;
     * a decoder phase computes the codes once and reuses them (the encoder does not move).
     * The loss is a mean over every pixel, so its gradients are small and SGD's step large. */
    anamo_train_spec ts = {.loss = ANAMO_LOSS_MSE,
                           .epochs = 6,
                           .seed = 0,
                           .log_every = 100,
                           .cache_codes = 1,
                           .eval_every_epoch = 1};
    anamo_phase dec = anamo_phase_default("decoder", ANAMO_PHASE_DECODER, ANAMO_OPT_MOMENTUM, 10.0f,
                                          100, 1);
    anamo_phase enc = anamo_phase_default("encoder", ANAMO_PHASE_ENCODER, ANAMO_OPT_ADAM, 3e-3f,
                                          100, 1);
    dec.opt.momentum = 0.9f; /* the velocity's β, as in PyTorch's SGD (the default) */
    ts.phases[ts.nphases++] = dec;
    ts.phases[ts.nphases++] = enc;
    if (anamo_model_create(&ms, &model, &err) ||
        anamo_trainer_create(model, &ts, &train, &test, &trainer, &err))
        goto fail;

    anamo_train_hooks hooks = {.on_epoch = print_epoch};
    if (anamo_trainer_run(trainer, &hooks, &err) ||
        anamo_checkpoint_save(model, trainer, NULL, path, &err))
        goto fail;
    printf("saved %s\n", path);

    anamo_trainer_free(trainer);
    anamo_model_free(model);
    anamo_dataset_free(&train), anamo_dataset_free(&test);
    return 0;
fail:
    fprintf(stderr, "nam_two_optimizers: %s\n", err.msg);
    return 1;
}
