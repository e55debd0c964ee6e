/* throughput.h — the throughput benchmark shared by bench_dense and bench_conv: for one model,
 * each repetition trains, in turn and from fresh weights, a joint model for 2 epochs, a NAM
 * model for 4 epochs (decoder, encoder, decoder, encoder) and a NAM model whose decoder phase
 * lasts 3 epochs, so all three see the same machine; each figure is the median over
 * repetitions of the trainer's own epoch times (training only). Each repetition also times the
 * model's own sgemm calls (ceiling.h), so the figures say how close each step comes to what its
 * matrix products allow. Then the peak resident memory of the model's main job, run by the anamo
 * command as a child process. With --joint-only a repetition is the joint model alone (what
 * bench/compare-pytorch.sh alternates with PyTorch). */
#ifndef ANAMO_BENCH_THROUGHPUT_H
#define ANAMO_BENCH_THROUGHPUT_H

#include "anamo_program.h"
#include "machine.h"

#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

typedef struct bench_model {
    const char *name;      /* for messages */
    const char *data_spec; /* e.g. "mnist:train" */
    const char *encoder, *decoder;
    const char *config; /* the main job's config, run as `anamo ARGS…` */
    const char *job_args[8];
} bench_model;

#define BATCH 125
#define MAX_EPOCHS 16
#define MAX_REPS 64

#include "ceiling.h" /* after BATCH and MAX_REPS, which it shares */

typedef struct epoch_log {
    int n;
    double seconds[MAX_EPOCHS];
    char phase[MAX_EPOCHS][ANAMO_NAME_MAX];
    char conv_impl[512]; /* how the model's convolutions ran (anamo_model_conv_impl) */
} epoch_log;

static int on_epoch(void *ctx, const anamo_epoch_row *row)
{
    epoch_log *log = ctx;
    if (log->n < MAX_EPOCHS) {
        log->seconds[log->n] = row->seconds;
        snprintf(log->phase[log->n], ANAMO_NAME_MAX, "%s", row->phase);
        log->n++;
    }
    return 0;
}

/* Trains a fresh model for `epochs` under the given phases; fills log with epoch times. */
static int train(const bench_model *bm, const anamo_dataset *ds, anamo_conv_impl conv,
                 const anamo_phase *phases, int nphases, int epochs, epoch_log *log)
{
    anamo_model_spec ms = {.in_c = ds->c,
                           .in_h = ds->h,
                           .in_w = ds->w,
                           .encoder = bm->encoder,
                           .decoder = bm->decoder,
                           .init = ANAMO_INIT_PYTORCH,
                           .seed = 0,
                           .max_batch = BATCH,
                           .conv = conv};
    anamo_train_spec ts = {.loss = ANAMO_LOSS_MSE,
                           .nphases = nphases,
                           .epochs = epochs,
                           .seed = 0,
                           .log_every = 1000,
                           .cache_codes = 1};
    memcpy(ts.phases, phases, (size_t)nphases * sizeof *phases);
    anamo_model *m = NULL;
    anamo_trainer *t = NULL;
    anamo_err err = {0};
    anamo_train_hooks hooks = {.ctx = log, .on_epoch = on_epoch};
    memset(log, 0, sizeof *log);
    int rc = anamo_model_create(&ms, &m, &err);
    if (!rc)
        anamo_model_conv_impl(m, log->conv_impl, sizeof log->conv_impl);
    if (!rc)
        rc = anamo_trainer_create(m, &ts, ds, NULL, &t, &err);
    if (!rc)
        rc = anamo_trainer_run(t, &hooks, &err);
    if (rc)
        fprintf(stderr, "%s: %s\n", bm->name, err.msg);
    anamo_trainer_free(t);
    anamo_model_free(m);
    return rc;
}

/* Peak resident memory (MiB) of a child process running argv. */
static double child_peak_rss(char *const argv[])
{
    fflush(stdout); /* or the child would print our buffered lines again */
    pid_t pid = fork();
    if (pid == 0) {
        freopen("/dev/null", "w", stdout);
        freopen("/dev/null", "w", stderr);
        execv(argv[0], argv);
        _exit(127);
    }
    int status;
    struct rusage ru;
    if (pid < 0 || wait4(pid, &status, 0, &ru) < 0 || !WIFEXITED(status) ||
        WEXITSTATUS(status) != 0)
        return -1.0;
    return (double)ru.ru_maxrss / 1024.0; /* KiB on Linux */
}

static int load_data(const bench_model *bm, const char *spec, anamo_dataset *ds)
{
    const char *root = getenv("ANAMO_DATA");
    anamo_err err = {0};
    if (!anamo_dataset_open(spec, root ? root : "data", ds, &err))
        return 0;
    fprintf(stderr,
            "%s: %s\n%s: set ANAMO_DATA to the folder holding the data (e.g. "
            "../shared/data)\n",
            bm->name, err.msg, bm->name);
    return 1;
}

typedef struct samples {
    double joint[MAX_REPS], dec[MAX_REPS], enc[MAX_REPS], cached[2 * MAX_REPS];
    int n, ncached;
} samples;

/* One repetition: joint (2 epochs, the 2nd timed), NAM (4 epochs: decoder, encoder, decoder,
 * encoder; the 2nd pair timed), and a 3-epoch decoder phase (its 2nd and 3rd epochs reuse the
 * codes computed at the phase's start); joint_only: the first alone. */
static int repetition(const bench_model *bm, const anamo_dataset *ds, anamo_conv_impl conv,
                      int joint_only, samples *s)
{
    anamo_phase joint = anamo_phase_default("joint", ANAMO_PHASE_JOINT, ANAMO_OPT_ADAM, 1e-3f,
                                            BATCH, 1);
    anamo_phase nam[2] = {anamo_phase_default("decoder", ANAMO_PHASE_DECODER, ANAMO_OPT_ADAM, 1e-2f,
                                              BATCH, 1),
                          anamo_phase_default("encoder", ANAMO_PHASE_ENCODER, ANAMO_OPT_ADAM, 1e-3f,
                                              BATCH, 1)};
    anamo_phase long_dec[2] = {nam[0], nam[1]};
    long_dec[0].epochs = 3;
    epoch_log log;
    const double N = (double)ds->n;
    if (train(bm, ds, conv, &joint, 1, 2, &log))
        return 1;
    s->joint[s->n] = N / log.seconds[1];
    if (s->n == 0 && log.conv_impl[0])
        printf("convolutions: %s\n", log.conv_impl);
    if (joint_only) {
        s->n++;
        return 0;
    }
    if (train(bm, ds, conv, nam, 2, 4, &log))
        return 1;
    s->dec[s->n] = N / log.seconds[2];
    s->enc[s->n] = N / log.seconds[3];
    if (train(bm, ds, conv, long_dec, 2, 3, &log))
        return 1;
    s->cached[s->ncached++] = N / log.seconds[1];
    s->cached[s->ncached++] = N / log.seconds[2];
    s->n++;
    return 0;
}

/* Time of two joint epochs ÷ time of a decoder epoch plus an encoder epoch, from their rates. */
static double pair_speedup(double joint, double dec, double enc)
{
    return (2.0 / joint) / (1.0 / dec + 1.0 / enc);
}

/* The throughput lines, then the ceiling lines for the steps timed (ceiling.h's STEP_KINDS). */
static void print_figures(samples *s, int joint_only, const ceiling *c)
{
    double joint = bench_median(s->joint, s->n);
    printf("joint: %.0f samples/s (runs:", joint);
    for (int i = 0; i < s->n; i++)
        printf(" %.0f", s->joint[i]);
    printf(")\n");
    double rates[NSTEP_KINDS] = {joint};
    if (joint_only) {
        ceiling_print_rates(c, rates);
        return;
    }
    double dec = bench_median(s->dec, s->n);
    double enc = bench_median(s->enc, s->n), cached = bench_median(s->cached, s->ncached);
    printf("nam_decoder_epoch: %.0f samples/s\n", dec);
    printf("nam_encoder_epoch: %.0f samples/s\n", enc);
    printf("nam_decoder_cached: %.0f samples/s\n", cached);
    /* two joint epochs against one decoder epoch plus one encoder epoch, in time */
    printf("nam_pair_speedup: %.3f x\n", pair_speedup(joint, dec, enc));
    printf("nam_cached_speedup: %.3f x\n", cached / joint);
    /* the same ratios within each repetition, then their median: a repetition's three models
     * run one after the other, so a machine that slows down for a while moves both sides */
    double pair[MAX_REPS], cached_pair[2 * MAX_REPS];
    for (int i = 0; i < s->n; i++)
        pair[i] = pair_speedup(s->joint[i], s->dec[i], s->enc[i]);
    for (int i = 0; i < s->ncached; i++)
        cached_pair[i] = s->cached[i] / s->joint[i / 2];
    printf("nam_pair_speedup_paired: %.3f x\n", bench_median(pair, s->n));
    printf("nam_cached_speedup_paired: %.3f x\n", bench_median(cached_pair, s->ncached));
    rates[1] = enc, rates[2] = cached;
    ceiling_print_rates(c, rates);
}

/* The main job, as the README runs it, in a child process: prints its peak memory. */
static int print_main_job_rss(const bench_model *bm, const char *config)
{
    char exe[4096], anamo[4200], out[64];
    ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
    exe[len > 0 ? len : 0] = '\0';
    char *slash = strrchr(exe, '/');
    if (slash)
        *slash = '\0';
    snprintf(anamo, sizeof anamo, "%s/anamo", exe);
    snprintf(out, sizeof out, "/tmp/anamo-bench.%d", (int)getpid());
    char *job[12] = {anamo};
    int njob = 1;
    for (int i = 0; bm->job_args[i] && njob < 8; i++)
        job[njob++] = (char *)(strcmp(bm->job_args[i], "CONFIG") ? bm->job_args[i] : config);
    job[njob++] = "-o";
    job[njob++] = out;
    double rss = child_peak_rss(job);
    char cleanup[128];
    snprintf(cleanup, sizeof cleanup, "rm -rf %s", out);
    if (system(cleanup) != 0)
        fprintf(stderr, "%s: could not remove %s\n", bm->name, out);
    if (rss < 0)
        fprintf(stderr, "%s: the main job (%s … %s) failed\n", bm->name, anamo, config);
    else
        printf("peak_rss_main_job: %.1f MiB\n", rss);
    return rss < 0;
}

typedef struct bench_args {
    int reps, threads, joint_only;
    anamo_conv_impl conv;
    const char *config, *spec;
} bench_args;

static int conv_impl(const char *name)
{
    return !strcmp(name, "auto")     ? ANAMO_CONV_AUTO
           : !strcmp(name, "im2col") ? ANAMO_CONV_IM2COL
           : !strcmp(name, "dnnl")   ? ANAMO_CONV_DNNL
                                     : -1;
}

static int parse_args(int argc, char **argv, const bench_model *bm, bench_args *a)
{
    *a = (bench_args){.reps = 5, .threads = 2, .config = bm->config, .spec = bm->data_spec};
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--reps") && i + 1 < argc)
            a->reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc)
            a->threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--config") && i + 1 < argc)
            a->config = argv[++i];
        else if (!strcmp(argv[i], "--data") && i + 1 < argc)
            a->spec = argv[++i];
        else if (!strcmp(argv[i], "--joint-only"))
            a->joint_only = 1;
        else if (!strcmp(argv[i], "--conv") && i + 1 < argc && conv_impl(argv[i + 1]) >= 0)
            a->conv = (anamo_conv_impl)conv_impl(argv[++i]);
        else {
            fprintf(stderr,
                    "usage: %s [--reps N] [--threads N] [--data SPEC] "
                    "[--config MAIN.ini] [--joint-only] [--conv auto|im2col|dnnl]\n",
                    bm->name);
            return 2;
        }
    }
    if (a->reps < 1 || a->reps > MAX_REPS || a->threads < 1)
        return fprintf(stderr, "%s: bad --reps or --threads\n", bm->name), 2;
    return 0;
}

static int bench_main(int argc, char **argv, const bench_model *bm)
{
    anamo_program_setup(argv);
    bench_args a;
    if (parse_args(argc, argv, bm, &a))
        return 2;
    omp_set_num_threads(a.threads);
    anamo_dataset ds;
    if (load_data(bm, a.spec, &ds))
        return 1;
    ceiling *c = calloc(1, sizeof *c);
    if (!c || ceiling_create(c, bm->encoder, bm->decoder, ds.c, ds.h, ds.w))
        return 1;
    print_machine();
    printf("threads: %d\nrepetitions: %d\nsamples per epoch: %lld\nbatch: %d\n", a.threads, a.reps,
           (long long)ds.n, BATCH);
    ceiling_print_flop(c);
    fflush(stdout);
    samples s = {0};
    for (int r = 0; r < a.reps; r++) {
        if (repetition(bm, &ds, a.conv, a.joint_only, &s))
            return 1;
        ceiling_measure(c);
    }
    print_figures(&s, a.joint_only, c);
    ceiling_free(c);
    free(c);
    anamo_dataset_free(&ds);
    return a.joint_only ? 0 : print_main_job_rss(bm, a.config);
}

#endif
