/* bench_anamo.c — the cost of ANAMO's inner iterations: seconds per outer iteration (one
 * mini-batch: J_enc FISTA iterations on the encoder, each with K sub-gradient prox iterations,
 * then J_dec accelerated iterations on the decoder) at batch 125, for the core MNIST
 * autoencoder and seed 000's convolutional CIFAR-10 model, and the same with K = 0 and with
 * J_enc = J_dec = 1, so the share of each part shows. A joint step on the same batch is timed
 * beside them. Prints `name: value unit` lines; medians over the timed iterations. */
#include "anamo_program.h"
#include "machine.h"

#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BATCH 125
#define OUTER 40 /* outer iterations timed per setting */

typedef struct timing {
    double t0, seconds[OUTER + 1];
    int n;
} timing;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* log_every = 1: a log row after every outer iteration, so consecutive rows time one each */
static void on_log(void *ctx, const anamo_log_row *row)
{
    timing *t = ctx;
    double now_s = now();
    if (t->n <= OUTER)
        t->seconds[t->n++] = now_s - t->t0;
    t->t0 = now_s;
    (void)row;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

typedef struct model_case {
    const char *name, *data, *encoder, *decoder;
} model_case;

/* j_enc = 0: a joint Adam step instead of an ANAMO outer iteration */
static double run(const model_case *mc, const anamo_dataset *ds, int j_enc, int j_dec, int k_prox,
                  float lambda)
{
    anamo_model_spec ms = {.in_c = ds->c,
                           .in_h = ds->h,
                           .in_w = ds->w,
                           .encoder = mc->encoder,
                           .decoder = mc->decoder,
                           .max_batch = BATCH};
    anamo_train_spec ts = {.loss = ANAMO_LOSS_MSE,
                           .lambda = lambda,
                           .nphases = 1,
                           .epochs = (double)(OUTER + 1) * BATCH / (double)ds->n,
                           .log_every = 1};
    anamo_phase *ph = &ts.phases[0];
    if (j_enc == 0) {
        *ph = anamo_phase_default("joint", ANAMO_PHASE_JOINT, ANAMO_OPT_ADAM, 1e-3f, BATCH, 1.0);
    } else {
        *ph = anamo_phase_default("anamo", ANAMO_PHASE_ANAMO, ANAMO_OPT_FISTA, 0.5f, BATCH, 1.0);
        ph->anamo.enc_iters = j_enc, ph->anamo.dec_iters = j_dec, ph->anamo.prox_iters = k_prox;
    }
    anamo_model *m = NULL;
    anamo_trainer *t = NULL;
    anamo_err err = {0};
    timing tm = {.t0 = now()};
    anamo_train_hooks hooks = {.ctx = &tm, .on_log = on_log};
    int rc = anamo_model_create(&ms, &m, &err);
    if (!rc)
        rc = anamo_trainer_create(m, &ts, ds, NULL, &t, &err);
    if (!rc)
        rc = anamo_trainer_run(t, &hooks, &err);
    anamo_trainer_free(t);
    anamo_model_free(m);
    if (rc || tm.n < 2) {
        fprintf(stderr, "bench_anamo: %s\n", err.msg);
        return -1.0;
    }
    qsort(tm.seconds + 1, (size_t)(tm.n - 1), sizeof(double), cmp); /* the first warms up */
    return tm.seconds[1 + (tm.n - 1) / 2];
}

static int bench_model(const model_case *mc)
{
    const char *root = getenv("ANAMO_DATA");
    anamo_dataset ds;
    anamo_err err = {0};
    if (anamo_dataset_open(mc->data, root ? root : "data", &ds, &err)) {
        fprintf(stderr, "bench_anamo: %s\n", err.msg);
        return 1;
    }
    printf("%s_anamo_outer_j5_15_k10: %.4f s\n", mc->name, run(mc, &ds, 5, 15, 10, 1e-3f));
    printf("%s_anamo_outer_j5_15_k0: %.4f s\n", mc->name, run(mc, &ds, 5, 15, 0, 1e-3f));
    printf("%s_anamo_outer_j1_1_k0: %.4f s\n", mc->name, run(mc, &ds, 1, 1, 0, 0.0f));
    printf("%s_joint_step: %.4f s\n", mc->name, run(mc, &ds, 0, 0, 0, 0.0f));
    anamo_dataset_free(&ds);
    return 0;
}

int main(int argc, char **argv)
{
    static const model_case CASES[] = {
        {"dense", "mnist:train@10000", "linear 128, relu, linear 64, relu",
         "linear 128, relu, linear 784, sigmoid"},
        {"conv", "cifar10:train@10000",
         "conv2d 12 k4 s2 p1, relu, conv2d 24 k4 s2 p1, relu, conv2d 48 k4 s2 p1, relu",
         "convtranspose2d 24 k4 s2 p1, relu, convtranspose2d 12 k4 s2 p1, relu, "
         "convtranspose2d 3 k4 s2 p1, sigmoid"}};
    anamo_program_setup(argv);
    int threads = argc > 1 ? atoi(argv[1]) : 2;
    omp_set_num_threads(threads > 0 ? threads : 2);
    print_machine();
    printf("threads: %d\nbatch: %d\n", threads, BATCH);
    int rc = 0;
    for (size_t i = 0; i < sizeof CASES / sizeof CASES[0]; i++)
        rc |= bench_model(&CASES[i]);
    return rc;
}
