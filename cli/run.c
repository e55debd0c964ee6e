/* run.c — one training run into a run directory:
 *   config.ini         the resolved config (every key, defaults included)
 *   metrics.csv        one row per logged iteration
 *   epochs.csv         one row per epoch, with the test metrics
 *   model.safetensors  the checkpoint (weights, optimizer states, progress, config)
 *   summary.json       final metrics, speed, divergence
 * Nothing is created until the config, the data and the model are known to be good. */
#include "analysis.h"
#include "cli.h"

#include <cJSON.h>
#include <math.h>
#include <omp.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Set by SIGINT/SIGTERM; the trainer stops after the current step. A signal handler can only
 * reach a static, so this is the one piece of file-level state in the program. */
static volatile int stop_requested;
static void on_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

typedef struct run_ctx {
    const char *run_dir, *label, *config_text;
    anamo_model *m;
    anamo_trainer *t;
    FILE *metrics, *epochs;
    int tty;
    int checkpoint_every;
    int64_t checkpoint_iterations, last_ckpt_iteration;
    double checkpoint_seconds, last_ckpt_elapsed;
    int watch_codes;          /* stop when every code is zero (not binary or free codes) */
    int64_t last_epoch;       /* the last epoch that ended normally */
    int64_t codes_died_epoch; /* the epoch after which every code was zero, or 0 */
    anamo_err hook_err;
} run_ctx;

static void path_in(char *out, size_t size, const char *dir, const char *name)
{
    snprintf(out, size, "%s/%s", dir, name);
}

static void on_log(void *ctx_, const anamo_log_row *r)
{
    run_ctx *ctx = ctx_;
    static const char *const BLOCK_WORDS[] = {"encoder", "decoder", "both", "anamo",
                                              "freecodes"};
    fprintf(ctx->metrics, "%lld,%lld,%s,%.8g,%.8g,%.8g,%.4f,%.1f,%s\n", (long long)r->epoch,
            (long long)r->iteration, r->phase, r->loss, r->recon_loss, r->code_l1, r->elapsed,
            r->samples_per_s, BLOCK_WORDS[r->block >= 0 && r->block <= 4 ? r->block : 2]);
    if (!ctx->tty)
        return;
    double eta = r->progress > 0 ? r->elapsed * (1.0 - r->progress) / r->progress : 0.0;
    fprintf(stderr, "\r\033[K%s epoch %lld  %-8s loss %.5f  %.0f samples/s  ETA %.0f s",
            ctx->label, (long long)r->epoch, r->phase, r->loss, r->samples_per_s, eta);
    fflush(stderr);
}

static int save_checkpoint(run_ctx *ctx)
{
    char path[4096];
    path_in(path, sizeof path, ctx->run_dir, "model.safetensors");
    ctx->last_ckpt_iteration = anamo_trainer_iterations(ctx->t);
    ctx->last_ckpt_elapsed = anamo_trainer_seconds(ctx->t);
    return anamo_checkpoint_save(ctx->m, ctx->t, ctx->config_text, path, &ctx->hook_err);
}

static int on_epoch(void *ctx_, const anamo_epoch_row *r)
{
    run_ctx *ctx = ctx_;
    const anamo_metrics *te = &r->test;
    const double no = NAN;
    fprintf(ctx->epochs,
            "%lld,%s,%.8g,%.8g,%.8g,%.8g,%.8g,%.8g,%.8g,%.6f,%.8g,%.8g,%.6g,%.8g,%.6g,%.4f,%lld,"
            "%lld\n",
            (long long)r->epoch, r->phase, r->train_loss, r->train_recon_loss, r->train_code_l1,
            r->has_test ? te->loss : no, r->has_test ? te->recon_loss : no,
            r->has_test ? te->mse : no, r->has_test ? te->code_l1 : no,
            r->has_test ? te->zero_codes : no, r->has_test ? te->code_l1_decoder : no,
            r->has_test ? te->code_l1_jacobian : no, r->has_test ? te->l0 : no,
            r->has_test ? te->explained_variance : no, r->has_test ? te->dead_fraction : no,
            r->seconds, (long long)r->weights_updated, (long long)r->resampled);
    fflush(ctx->epochs);
    fflush(ctx->metrics);
    fprintf(stderr, "%s%sepoch %lld  %-8s train loss %.6f  test mse %.6f  %.2f s\n",
            ctx->tty ? "\r\033[K" : "", ctx->label, (long long)r->epoch, r->phase, r->train_loss,
            r->has_test ? te->mse : NAN, r->seconds);
    /* every code zero: the encoder is dead (ReLU) and no gradient will revive it */
    int codes_dead = r->has_test ? r->test.zero_codes >= 1.0 : r->train_code_l1 == 0.0;
    if (ctx->watch_codes && codes_dead) {
        ctx->codes_died_epoch = r->epoch;
        return 1;
    }
    ctx->last_epoch = r->epoch;
    if (ctx->checkpoint_every > 0 && r->epoch % ctx->checkpoint_every == 0)
        return save_checkpoint(ctx);
    return 0;
}

/* Checkpoints every checkpoint_iterations steps or checkpoint_seconds of training. */
static int on_step(void *ctx_, int64_t iteration, double elapsed)
{
    run_ctx *ctx = ctx_;
    int due = (ctx->checkpoint_iterations > 0 &&
               iteration - ctx->last_ckpt_iteration >= ctx->checkpoint_iterations) ||
              (ctx->checkpoint_seconds > 0 &&
               elapsed - ctx->last_ckpt_elapsed >= ctx->checkpoint_seconds);
    return due ? save_checkpoint(ctx) : 0;
}

/* A number, or null where it does not apply (NaN). */
static void add_number(cJSON *o, const char *key, double v)
{
    if (isfinite(v))
        cJSON_AddNumberToObject(o, key, v);
    else
        cJSON_AddNullToObject(o, key);
}

cJSON *cli_metrics_json(const anamo_metrics *mt)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "samples", (double)mt->n);
    cJSON_AddNumberToObject(o, "loss", mt->loss);
    cJSON_AddNumberToObject(o, "recon_loss", mt->recon_loss);
    cJSON_AddNumberToObject(o, "mse", mt->mse);
    cJSON_AddNumberToObject(o, "bias", mt->bias);
    cJSON_AddNumberToObject(o, "code_l1", mt->code_l1);
    cJSON_AddNumberToObject(o, "input_l1", mt->input_l1);
    cJSON_AddNumberToObject(o, "compression", mt->input_l1 > 0 ? mt->code_l1 / mt->input_l1 : 0);
    cJSON_AddNumberToObject(o, "zero_codes", mt->zero_codes);
    cJSON_AddNumberToObject(o, "dead_units", (double)mt->dead_units);
    cJSON_AddNumberToObject(o, "dead_fraction", mt->dead_fraction);
    cJSON_AddNumberToObject(o, "l0", mt->l0);
    add_number(o, "code_l1_decoder", mt->code_l1_decoder);
    add_number(o, "code_l1_jacobian", mt->code_l1_jacobian);
    cJSON_AddNumberToObject(o, "jacobian_samples", (double)mt->jacobian_samples);
    add_number(o, "explained_variance", mt->explained_variance);
    cJSON_AddStringToObject(o, "explained_variance_mean", mt->mean_from_train ? "train" : "this set");
    if (mt->distinct_codes != 0) { /* binary codes: bit usage */
        cJSON_AddNumberToObject(o, "ones", mt->ones);
        cJSON_AddNumberToObject(o, "bits_used", (double)mt->bits_used);
        cJSON_AddNumberToObject(o, "distinct_codes", (double)mt->distinct_codes);
    }
    return o;
}

/* extras: "pca" and "steps" objects (analysis.c), moved into the summary; may be NULL. */
static int write_summary(const char *run_dir, const run_settings *s, const run_result *r,
                         cJSON *extras[2], anamo_err *err)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "scheme", s->scheme);
    cJSON_AddStringToObject(o, "loss", s->train.loss == ANAMO_LOSS_BCE       ? "bce"
                                       : s->train.loss == ANAMO_LOSS_MSE_SUM ? "mse_sum"
                                                                             : "mse");
    cJSON_AddNumberToObject(o, "lambda", s->train.lambda);
    cJSON_AddStringToObject(o, "penalty", s->train.penalty == ANAMO_PENALTY_DECODER_L1
                                              ? "decoder_l1" : "l1");
    cJSON_AddStringToObject(o, "decoder_norm",
                            s->train.decoder_norm == ANAMO_DECODER_NORM_SPHERE ? "sphere"
                            : s->train.decoder_norm == ANAMO_DECODER_NORM_BALL ? "ball"
                                                                               : "none");
    if (s->train.resample_every > 0)
        cJSON_AddNumberToObject(o, "resampled_units", (double)r->resampled);
    cJSON_AddNumberToObject(o, "epochs", (double)r->epochs);
    cJSON_AddItemToObject(o, "train", cli_metrics_json(&r->train));
    if (r->has_test)
        cJSON_AddItemToObject(o, "test", cli_metrics_json(&r->test));
    cJSON_AddNumberToObject(o, "seconds_per_epoch", r->seconds_per_epoch);
    cJSON_AddNumberToObject(o, "samples_per_s", r->samples_per_s);
    cJSON_AddNumberToObject(o, "weights_updated_per_epoch", r->weights_updated_per_epoch);
    cJSON_AddNumberToObject(o, "encoder_params", (double)r->encoder_params);
    cJSON_AddNumberToObject(o, "decoder_params", (double)r->decoder_params);
    if (r->diverged) {
        cJSON_AddStringToObject(o, "diverged", r->divergence);
        cJSON_AddNumberToObject(o, "diverged_epoch", (double)r->diverged_epoch);
    } else {
        cJSON_AddNullToObject(o, "diverged");
        cJSON_AddNullToObject(o, "diverged_epoch");
    }
    if (extras[0])
        cJSON_AddItemToObject(o, "pca", extras[0]);
    if (extras[1])
        cJSON_AddItemToObject(o, "steps", extras[1]);
    char *text = cJSON_Print(o);
    cJSON_Delete(o);
    char path[4096];
    path_in(path, sizeof path, run_dir, "summary.json");
    int rc = text ? cli_write_file_atomic(path, text, err)
                  : anamo_fail(err, ANAMO_ERR_NOMEM, "%s: out of memory", path);
    cJSON_free(text);
    return rc;
}

typedef struct run_parts {
    run_settings s;
    anamo_dataset train, test;
    int has_test;
    anamo_model *m;
    anamo_trainer *t;
    char *config_text;
} run_parts;

static void release(run_parts *p)
{
    anamo_trainer_free(p->t);
    anamo_model_free(p->m);
    anamo_dataset_free(&p->train);
    if (p->has_test)
        anamo_dataset_free(&p->test);
    free(p->config_text);
}

/* Everything that can fail on bad input, before anything is written. */
static int prepare(const config *c, run_parts *p, anamo_err *err)
{
    int rc = config_settings(c, &p->s, err);
    if (!rc)
        rc = cli_open_data(p->s.train_spec, &p->train, err);
    if (!rc && p->s.test_spec[0]) {
        rc = cli_open_data(p->s.test_spec, &p->test, err);
        p->has_test = rc == ANAMO_OK;
    }
    if (rc)
        return rc;
    anamo_model_spec ms = p->s.model;
    ms.in_c = p->train.c, ms.in_h = p->train.h, ms.in_w = p->train.w;
    rc = anamo_model_create(&ms, &p->m, err);
    if (!rc && p->s.standardize)
        rc = anamo_model_fit_standardize(p->m, &p->train, err);
    if (!rc)
        rc = anamo_trainer_create(p->m, &p->s.train, &p->train, p->has_test ? &p->test : NULL,
                                  &p->t, err);
    p->config_text = config_resolved_text(c);
    return rc;
}

static FILE *open_csv(const char *dir, const char *name, const char *header, int append,
                      anamo_err *err)
{
    char path[4096];
    path_in(path, sizeof path, dir, name);
    int fresh = !append || !cli_file_exists(path);
    FILE *f = fopen(path, fresh ? "w" : "a");
    if (!f)
        anamo_fail(err, ANAMO_ERR_IO, "%s: cannot open for writing", path);
    else if (fresh)
        fputs(header, f);
    return f;
}

static int write_text(const char *dir, const char *name, const char *text, anamo_err *err)
{
    char path[4096];
    path_in(path, sizeof path, dir, name);
    return cli_write_file_atomic(path, text, err);
}

/* Creates (or, resuming, reopens) the run directory and its logs. */
static int open_run_dir(run_parts *p, run_ctx *ctx, int resume, anamo_err *err)
{
    char ckpt[4096];
    path_in(ckpt, sizeof ckpt, ctx->run_dir, "model.safetensors");
    if (resume) {
        int rc = anamo_checkpoint_restore(p->m, p->t, ckpt, err);
        if (rc)
            return rc;
    } else if (cli_file_exists(ckpt)) {
        return anamo_fail(err, ANAMO_ERR_ARG,
                          "%s already holds a run: continue it with --resume %s, or choose "
                          "another -o",
                          ctx->run_dir, ctx->run_dir);
    }
    int rc = cli_mkdir_p(ctx->run_dir, err);
    if (!rc)
        rc = write_text(ctx->run_dir, "config.ini", p->config_text, err);
    if (rc)
        return rc;
    ctx->metrics = open_csv(ctx->run_dir, "metrics.csv",
                            "epoch,iteration,phase,loss,recon_loss,code_l1,elapsed_s,samples_per_s,"
                            "block\n",
                            resume, err);
    ctx->epochs = open_csv(ctx->run_dir, "epochs.csv",
                           "epoch,phase,train_loss,train_recon_loss,train_code_l1,test_loss,"
                           "test_recon_loss,test_mse,test_code_l1,test_zero_codes,"
                           "test_code_l1_decoder,test_code_l1_jacobian,test_l0,"
                           "test_explained_variance,test_dead_fraction,seconds,"
                           "weights_updated,resampled\n",
                           resume, err);
    return ctx->metrics && ctx->epochs ? ANAMO_OK : err->code;
}

/* After the loop: the last checkpoint, the final metrics and summary.json. */
static int finish_run(run_parts *p, run_ctx *ctx, int train_rc, const anamo_err *train_err,
                      run_result *out, anamo_err *err)
{
    char ckpt[4096];
    path_in(ckpt, sizeof ckpt, ctx->run_dir, "model.safetensors");
    memset(out, 0, sizeof *out);
    out->diverged = train_rc == ANAMO_ERR_DIVERGED;
    if (out->diverged)
        snprintf(out->divergence, sizeof out->divergence, "%s", train_err->msg);
    out->diverged_epoch = !out->diverged        ? 0
                          : ctx->codes_died_epoch ? ctx->codes_died_epoch
                                                  : ctx->last_epoch + 1;
    /* a run whose loss turned non-finite keeps the checkpoint of its last good epoch; one whose
     * codes died has finite weights, saved like a finished run's */
    int rc = out->diverged && !ctx->codes_died_epoch
                 ? ANAMO_OK
                 : anamo_checkpoint_save(p->m, p->t, p->config_text, ckpt, err);
    const anamo_eval_spec es = anamo_trainer_eval_spec(p->t);
    if (!rc)
        rc = anamo_evaluate(p->m, &p->train, &es, &out->train, err);
    if (!rc && p->has_test)
        rc = anamo_evaluate(p->m, &p->test, &es, &out->test, err);
    if (rc)
        return rc;
    out->has_test = p->has_test;
    out->epochs = anamo_trainer_epochs_done(p->t);
    /* over every epoch of the run, the parts before a --resume included */
    const double epochs = (double)out->epochs, seconds = anamo_trainer_epoch_seconds(p->t);
    out->seconds_per_epoch = epochs > 0 ? seconds / epochs : 0;
    out->samples_per_s = seconds > 0 ? (double)p->train.n * epochs / seconds : 0;
    out->weights_updated_per_epoch = epochs > 0 ? anamo_trainer_weights_updated(p->t) / epochs : 0;
    out->resampled = anamo_trainer_resampled(p->t);
    out->encoder_params = anamo_model_param_count(p->m, 0);
    out->decoder_params = anamo_model_param_count(p->m, 1);
    cJSON *extras[2] = {NULL, NULL};
    rc = analysis_pca(p->m, &p->train, p->has_test ? &p->test : NULL, out->train.mse,
                      &extras[0], err);
    const int steps_test = p->has_test && !strncmp(p->s.test_spec, "steps", 5);
    if (!rc && (steps_test || !strncmp(p->s.train_spec, "steps", 5)))
        rc = analysis_steps(p->m, steps_test ? &p->test : &p->train, ctx->run_dir, &extras[1],
                            err);
    if (!rc)
        return write_summary(ctx->run_dir, &p->s, out, extras, err);
    cJSON_Delete(extras[0]);
    cJSON_Delete(extras[1]);
    return rc;
}

int cli_check_run(const config *c, anamo_err *err)
{
    run_parts p = {0};
    int rc = prepare(c, &p, err);
    release(&p);
    return rc;
}

int cli_run_training(const config *c, const char *run_dir, int resume, const char *label,
                     run_result *out, anamo_err *err)
{
    run_parts p = {0};
    run_ctx ctx = {.run_dir = run_dir, .label = label ? label : "",
                   .tty = isatty(STDERR_FILENO)};
    int rc = prepare(c, &p, err);
    if (!rc) {
        ctx.m = p.m, ctx.t = p.t, ctx.config_text = p.config_text;
        ctx.checkpoint_every = p.s.checkpoint_every;
        ctx.checkpoint_iterations = p.s.checkpoint_iterations;
        ctx.checkpoint_seconds = p.s.checkpoint_seconds;
        rc = open_run_dir(&p, &ctx, resume, err);
    }
    if (!rc) {
        static const char *const LOSS_FORMS[] = {"mse = mean over elements of (x^ - x)^2",
                                                 "mse_sum = sum ||x^ - x||^2 / batch",
                                                 "bce = mean over elements"};
        fprintf(stderr, "%s%s: scheme %s, loss %s, lambda %g, %lld training samples%s\n",
                ctx.label, run_dir, p.s.scheme, LOSS_FORMS[p.s.train.loss], p.s.train.lambda,
                (long long)p.train.n, resume ? " (resumed)" : "");
        if (p.s.threads > 0)
            omp_set_num_threads(p.s.threads);
        signal(SIGINT, on_signal);
        signal(SIGTERM, on_signal);
        anamo_train_hooks hooks = {.ctx = &ctx, .on_log = on_log, .on_epoch = on_epoch,
                                   .on_step = on_step, .stop = &stop_requested};
        ctx.last_ckpt_iteration = anamo_trainer_iterations(p.t);
        ctx.last_ckpt_elapsed = anamo_trainer_seconds(p.t);
        ctx.last_epoch = anamo_trainer_epochs_done(p.t);
        /* step codes at zero can come back (straight-through or smooth-step gradients), and
         * free codes train apart from the encoder: only other codes die for good */
        ctx.watch_codes = strcmp(p.s.scheme, "freecodes") != 0 && !p.s.model.binary_codes;
        anamo_err train_err = {0};
        int train_rc = anamo_trainer_run(p.t, &hooks, &train_err);
        if (ctx.codes_died_epoch)
            train_rc = anamo_fail(&train_err, ANAMO_ERR_DIVERGED,
                                  "diverged: every code is zero after epoch %lld",
                                  (long long)ctx.codes_died_epoch);
        signal(SIGINT, SIG_DFL);
        signal(SIGTERM, SIG_DFL);
        if (ctx.tty)
            fputs("\r\033[K", stderr);
        if (train_rc == ANAMO_OK || train_rc == ANAMO_ERR_DIVERGED)
            rc = finish_run(&p, &ctx, train_rc, &train_err, out, err);
        if (!rc && train_rc == ANAMO_ERR_DIVERGED)
            rc = anamo_fail(err, ANAMO_ERR_DIVERGED, "%s (recorded in %s/summary.json)",
                            train_err.msg, run_dir);
        else if (train_rc == ANAMO_ERR_INTERRUPTED) {
            char ckpt[4096];
            path_in(ckpt, sizeof ckpt, run_dir, "model.safetensors");
            rc = anamo_checkpoint_save(p.m, p.t, p.config_text, ckpt, err);
            if (!rc)
                rc = anamo_fail(err, ANAMO_ERR_INTERRUPTED,
                                "%s; checkpoint saved, continue with: anamo train --resume %s",
                                train_err.msg, run_dir);
        } else if (train_rc && train_rc != ANAMO_ERR_DIVERGED)
            *err = ctx.hook_err.code ? ctx.hook_err : train_err, rc = train_rc;
    }
    if (ctx.metrics)
        fclose(ctx.metrics);
    if (ctx.epochs)
        fclose(ctx.epochs);
    release(&p);
    return rc;
}
