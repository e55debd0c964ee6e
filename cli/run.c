/* run.c — one training run into a run directory:
 *   config.ini         the resolved config (every key, defaults included)
 *   metrics.csv        one row per logged iteration
 *   epochs.csv         one row per epoch, with the test metrics
 *   model.safetensors  the checkpoint (weights, optimizer states, progress, config)
 *   summary.json       final metrics, speed, divergence
 * Nothing is created until the config, the data and the model are known to be good.
 *
 * Across ranks (mpirun), every rank trains and runs the same hooks, so that all take the same
 * decisions, but only rank 0 writes: the directory, the logs, the checkpoints, the summary and
 * what stderr shows. Every rank reads a checkpoint it resumes from.
 *
 * The logs survive any kill and any failed write: each is created with its header (written
 * through a temporary file, fsync'ed, renamed, its directory fsync'ed), its rows are flushed
 * before every checkpoint (so on disk they reach at least as far as the checkpoint), every
 * write to them is checked (a failure stops the run with the path), and a resume cuts them
 * back to the checkpoint's progress (see repaired_log). */
#include "analysis.h"
#include "cli.h"
#include "live.h"

#include <cJSON.h>
#include <errno.h>
#include <math.h>
#include <omp.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

/* Set by SIGINT/SIGTERM; the trainer stops after the current step. A signal handler can only
 * reach a static, so this is the one piece of file-level state in the program. */
static volatile int stop_requested;
static void on_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

/* One of the run's CSV logs, open for appending. */
typedef struct run_log {
    FILE *f;
    char path[4096];
} run_log;

typedef struct run_ctx {
    const char *run_dir, *label, *config_text;
    anamo_model *m;
    anamo_trainer *t;
    run_log metrics, epochs;
    int tty;
    int checkpoint_every;
    int64_t checkpoint_iterations, last_ckpt_iteration;
    int64_t last_ckpt_start; /* the iteration this invocation started at */
    double checkpoint_seconds, last_ckpt_elapsed;
    int watch_codes;          /* stop when every code is zero (not binary or free codes) */
    int64_t last_epoch;       /* the last epoch that ended normally */
    int64_t codes_died_epoch; /* the epoch after which every code was zero, or 0 */
    anamo_err hook_err;       /* the first failure of a hook: a log write, a checkpoint */
    cli_live *live;           /* --live: the view the hooks feed, or NULL */
    int writes;               /* rank 0 (or one process): the run directory is ours to write */
    anamo_dist *dist;         /* across ranks (NULL: one process), for the final evaluation */
} run_ctx;

static void path_in(char *out, size_t size, const char *dir, const char *name)
{
    snprintf(out, size, "%s/%s", dir, name);
}

/* ---- the logs ------------------------------------------------------------------------------ */

static const char METRICS_HEADER[] =
    "epoch,iteration,phase,loss,recon_loss,code_l1,elapsed_s,samples_per_s,block\n";
static const char EPOCHS_HEADER[] =
    "epoch,phase,train_loss,train_recon_loss,train_code_l1,test_loss,test_recon_loss,test_mse,"
    "test_code_l1,test_zero_codes,test_code_l1_decoder,test_code_l1_jacobian,test_l0,"
    "test_explained_variance,test_dead_fraction,seconds,weights_updated,resampled,"
    "validation_loss,validation_mse,train_flop\n";
/* the column that orders a log's rows: epochs.csv's epoch, metrics.csv's iteration */
#define EPOCHS_KEY_COLUMN 0
#define METRICS_KEY_COLUMN 1

/* The error of a failed write to a log; e is the errno it left. */
static int log_failed(const run_log *lg, int e, anamo_err *err)
{
    return anamo_err_set(err, ANAMO_ERR_IO, "%s: cannot write: %s", lg->path,
                         strerror(e ? e : EIO));
}

/* The nonnegative integer in field col (from 0) of the line [line, end), or -1 if none. */
static int64_t row_key(const char *line, const char *end, int col)
{
    for (int c = 0; c < col && line; c++) {
        line = memchr(line, ',', (size_t)(end - line));
        line = line ? line + 1 : NULL;
    }
    if (!line || line >= end || *line < '0' || *line > '9')
        return -1;
    int64_t v = 0;
    for (; line < end && *line >= '0' && *line <= '9'; line++) {
        if (v > (INT64_MAX - 9) / 10)
            return -1;
        v = 10 * v + (*line - '0');
    }
    return line < end && (*line == ',' || *line == '\n') ? v : -1;
}

typedef struct kept_row {
    const char *at;
    size_t len;
    int64_t key;
} kept_row;

/* What a resumed run's log must hold: the header, then the rows that the checkpoint accounts
 * for. A log is "headerless" when its first line is not exactly the header: empty, or rows
 * with no header (a kill before the header reached the disk, under anamo versions that did not
 * flush it, left those; their --resume appended rows to it): it gets the header, and its rows
 * stay. A row whose key (key_col) is past limit, the checkpoint's progress, was written after
 * the checkpoint (a kill, a failed save) and goes: the resumed run writes it again. A row whose
 * key is not above the last one kept replaces the rows from its key on (those of a run that a
 * resume rolled back, in logs of versions that did not cut them). A line that is not a row (no
 * key, a NUL byte, a repeated header) and a last line without its newline (cut by a kill) go.
 * Returns the text (malloc'd; *len its length), or NULL when out of memory. */
static char *repaired_log(const char *text, size_t size, const char *header, int key_col,
                          int64_t limit, size_t *len)
{
    const size_t header_len = strlen(header);
    size_t nrows = 0, cap = 0;
    kept_row *rows = NULL;
    for (const char *line = text, *end = text + size; line < end;) {
        const char *nl = memchr(line, '\n', (size_t)(end - line));
        if (!nl)
            break;
        const size_t n = (size_t)(nl - line) + 1;
        const int64_t key = row_key(line, nl + 1, key_col);
        const int header_line = n == header_len && !memcmp(line, header, n);
        if (key >= 0 && key <= limit && !header_line && !memchr(line, '\0', n)) {
            while (nrows > 0 && rows[nrows - 1].key >= key)
                nrows--;
            if (nrows == cap) {
                kept_row *grown = realloc(rows, (cap = cap ? 2 * cap : 64) * sizeof *rows);
                if (!grown)
                    return free(rows), NULL;
                rows = grown;
            }
            rows[nrows++] = (kept_row){line, n, key};
        }
        line = nl + 1;
    }
    size_t total = header_len;
    for (size_t i = 0; i < nrows; i++)
        total += rows[i].len;
    char *out = malloc(total + 1);
    if (out) {
        memcpy(out, header, header_len);
        *len = header_len;
        for (size_t i = 0; i < nrows; i++, *len += rows[i - 1].len)
            memcpy(out + *len, rows[i].at, rows[i].len);
        out[*len] = '\0';
    }
    free(rows);
    return out;
}

/* The whole file (malloc'd, NUL-terminated; *size its length), or NULL with err set. */
static char *read_log(const char *path, size_t *size, anamo_err *err)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t cap = 0, n = 0, got = 1;
    while (f && got > 0) {
        if (n + 4096 + 1 > cap) {
            char *grown = realloc(buf, cap = 2 * cap + 4096 + 1);
            if (!grown)
                break;
            buf = grown;
        }
        got = fread(buf + n, 1, cap - n - 1, f);
        n += got;
    }
    int e = !f ? errno : got > 0 ? ENOMEM : ferror(f) ? (errno ? errno : EIO) : 0;
    if (f)
        fclose(f);
    if (e) {
        free(buf);
        anamo_err_set(err, e == ENOMEM ? ANAMO_ERR_NOMEM : ANAMO_ERR_IO, "%s: cannot read: %s",
                      path, strerror(e));
        return NULL;
    }
    if (!buf && !(buf = malloc(1))) {
        anamo_err_set(err, ANAMO_ERR_NOMEM, "%s: out of memory", path);
        return NULL;
    }
    buf[n] = '\0';
    *size = n;
    return buf;
}

/* Opens DIR/name for appending rows. A new log (not resuming, or none there) is written as its
 * header alone, atomically and durably; a resumed one is repaired first when it needs it. */
static int open_log(run_log *lg, const char *dir, const char *name, const char *header, int resume,
                    int key_col, int64_t limit, anamo_err *err)
{
    path_in(lg->path, sizeof lg->path, dir, name);
    int rc = ANAMO_OK;
    if (!resume || !cli_file_exists(lg->path)) {
        rc = cli_write_file_atomic(lg->path, header, err);
    } else {
        size_t size = 0, len = 0;
        char *text = read_log(lg->path, &size, err), *fixed = NULL;
        if (!text)
            return err->code;
        fixed = repaired_log(text, size, header, key_col, limit, &len);
        if (!fixed)
            rc = anamo_err_set(err, ANAMO_ERR_NOMEM, "%s: out of memory", lg->path);
        else if (len != size || memcmp(fixed, text, len))
            rc = cli_write_file_atomic(lg->path, fixed, err);
        free(text);
        free(fixed);
    }
    if (!rc && !(lg->f = fopen(lg->path, "a")))
        rc = anamo_err_set(err, ANAMO_ERR_IO, "%s: cannot open for writing: %s", lg->path,
                           strerror(errno));
    return rc;
}

static int flush_log(run_log *lg, anamo_err *err)
{
    errno = 0;
    return !lg->f || fflush(lg->f) == 0 ? ANAMO_OK : log_failed(lg, errno, err);
}

/* Both logs on disk (to the kernel: a kill loses nothing), before a checkpoint says how far
 * the run got. */
static int flush_logs(run_ctx *ctx, anamo_err *err)
{
    int rc = flush_log(&ctx->metrics, err);
    return rc ? rc : flush_log(&ctx->epochs, err);
}

static int close_log(run_log *lg, anamo_err *err)
{
    errno = 0;
    int failed = lg->f && fclose(lg->f) != 0;
    lg->f = NULL;
    return failed ? log_failed(lg, errno, err) : ANAMO_OK;
}

/* Closes both logs; the first failure goes to err. */
static int close_logs(run_ctx *ctx, anamo_err *err)
{
    anamo_err second = {0};
    int rc = close_log(&ctx->metrics, err);
    int rc2 = close_log(&ctx->epochs, rc ? &second : err);
    return rc ? rc : rc2;
}

/* A failed log write stops the run: the first hook failure is kept for the message. */
static void note_log_failure(run_ctx *ctx, run_log *lg)
{
    int e = errno;
    if (!ctx->hook_err.code)
        log_failed(lg, e, &ctx->hook_err);
}

/* ---- the hooks ----------------------------------------------------------------------------- */

static void on_log(void *ctx_, const anamo_log_row *r)
{
    run_ctx *ctx = ctx_;
    if (!ctx->writes)
        return;
    /* the metrics.csv column "block", as it has always been written */
    static const char *const KIND_WORDS[] = {"encoder", "decoder", "both", "anamo", "freecodes"};
    errno = 0;
    if (fprintf(ctx->metrics.f, "%lld,%lld,%s,%.8g,%.8g,%.8g,%.4f,%.1f,%s\n", (long long)r->epoch,
                (long long)r->iteration, r->phase, r->loss, r->recon_loss, r->code_l1, r->elapsed,
                r->samples_per_s,
                KIND_WORDS[(unsigned)r->kind <= ANAMO_PHASE_FREECODES ? r->kind : 2]) < 0)
        note_log_failure(ctx, &ctx->metrics); /* on_step stops the run */
    if (ctx->live)
        cli_live_log(ctx->live, r);
    if (!ctx->tty)
        return;
    double eta = r->progress > 0 ? r->elapsed * (1.0 - r->progress) / r->progress : 0.0;
    fprintf(stderr, "\r\033[K%s epoch %lld  %-8s loss %.5f  %.0f samples/s  ETA %.0f s", ctx->label,
            (long long)r->epoch, r->phase, r->loss, r->samples_per_s, eta);
    fflush(stderr);
}

static int save_checkpoint(run_ctx *ctx)
{
    char path[4096];
    path_in(path, sizeof path, ctx->run_dir, "model.safetensors");
    ctx->last_ckpt_iteration = anamo_trainer_iterations(ctx->t);
    ctx->last_ckpt_elapsed = anamo_trainer_seconds(ctx->t);
    if (!ctx->writes)
        return 0;
    if (ctx->hook_err.code) /* a log write failed: the logs would not reach the checkpoint */
        return ctx->hook_err.code;
    int rc = flush_logs(ctx, &ctx->hook_err);
    return rc ? rc : anamo_checkpoint_save(ctx->m, ctx->t, ctx->config_text, path, &ctx->hook_err);
}

/* The epoch's row in epochs.csv and on stderr (rank 0). */
static int report_epoch(run_ctx *ctx, const anamo_epoch_row *r)
{
    const anamo_metrics *te = &r->test;
    const double no = NAN;
    errno = 0;
    if (fprintf(ctx->epochs.f,
                "%lld,%s,%.8g,%.8g,%.8g,%.8g,%.8g,%.8g,%.8g,%.6f,%.8g,%.8g,%.6g,%.8g,%.6g,%.4f,"
                "%lld,%lld,%.8g,%.8g,%.6g\n",
                (long long)r->epoch, r->phase, r->train_loss, r->train_recon_loss, r->train_code_l1,
                r->has_test ? te->loss : no, r->has_test ? te->recon_loss : no,
                r->has_test ? te->mse : no, r->has_test ? te->code_l1 : no,
                r->has_test ? te->zero_codes : no, r->has_test ? te->code_l1_decoder : no,
                r->has_test ? te->code_l1_jacobian : no, r->has_test ? te->l0 : no,
                r->has_test ? te->explained_variance : no, r->has_test ? te->dead_fraction : no,
                r->seconds, (long long)r->weights_updated, (long long)r->resampled,
                r->has_validation ? r->validation.loss : no,
                r->has_validation ? r->validation.mse : no, r->flop) < 0)
        note_log_failure(ctx, &ctx->epochs);
    if (ctx->live)
        cli_live_epoch(ctx->live, r);
    if (ctx->hook_err.code || flush_logs(ctx, &ctx->hook_err))
        return 1;
    fprintf(stderr, "%s%sepoch %lld  %-8s train loss %.6f  test mse %.6f  %.2f s\n",
            ctx->tty ? "\r\033[K" : "", ctx->label, (long long)r->epoch, r->phase, r->train_loss,
            r->has_test ? te->mse : NAN, r->seconds);
    return 0;
}

static int on_epoch(void *ctx_, const anamo_epoch_row *r)
{
    run_ctx *ctx = ctx_;
    if (ctx->writes && report_epoch(ctx, r))
        return 1;
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
    if (ctx->live && ctx->writes)
        cli_live_step(ctx->live);
    if (ctx->hook_err.code) /* on_log could not write its row */
        return 1;
    int due = (ctx->checkpoint_iterations > 0 &&
               iteration - ctx->last_ckpt_iteration >= ctx->checkpoint_iterations) ||
              (ctx->checkpoint_seconds > 0 &&
               elapsed - ctx->last_ckpt_elapsed >= ctx->checkpoint_seconds);
    return due ? save_checkpoint(ctx) : 0;
}

/* cJSON's adders return NULL when an allocation fails and leave the key out: a summary that
 * lacks a key must not be written as if whole, so every key goes in through these, which clear
 * *ok on a failure. A number that is not finite (a metric that does not apply) is null. */
static void put_number(cJSON *o, const char *key, double v, int *ok)
{
    *ok &= (isfinite(v) ? cJSON_AddNumberToObject(o, key, v) : cJSON_AddNullToObject(o, key)) !=
           NULL;
}

static void put_string(cJSON *o, const char *key, const char *v, int *ok)
{
    *ok &= cJSON_AddStringToObject(o, key, v) != NULL;
}

/* Moves item into o; a NULL item is a build that failed. */
static void put_item(cJSON *o, const char *key, cJSON *item, int *ok)
{
    if (item && cJSON_AddItemToObject(o, key, item))
        return;
    cJSON_Delete(item);
    *ok = 0;
}

/* NULL when out of memory. */
cJSON *cli_metrics_json(const anamo_metrics *mt)
{
    cJSON *o = cJSON_CreateObject();
    int ok = 1;
    put_number(o, "samples", (double)mt->n, &ok);
    put_number(o, "loss", mt->loss, &ok);
    put_number(o, "recon_loss", mt->recon_loss, &ok);
    put_number(o, "mse", mt->mse, &ok);
    put_number(o, "bias", mt->bias, &ok);
    put_number(o, "code_l1", mt->code_l1, &ok);
    put_number(o, "input_l1", mt->input_l1, &ok);
    put_number(o, "compression", mt->input_l1 > 0 ? mt->code_l1 / mt->input_l1 : 0, &ok);
    put_number(o, "zero_codes", mt->zero_codes, &ok);
    put_number(o, "dead_units", (double)mt->dead_units, &ok);
    put_number(o, "dead_fraction", mt->dead_fraction, &ok);
    put_number(o, "l0", mt->l0, &ok);
    put_number(o, "code_l1_decoder", mt->code_l1_decoder, &ok);
    put_number(o, "code_l1_jacobian", mt->code_l1_jacobian, &ok);
    put_number(o, "jacobian_samples", (double)mt->jacobian_samples, &ok);
    put_number(o, "explained_variance", mt->explained_variance, &ok);
    put_string(o, "explained_variance_mean", mt->mean_from_train ? "train" : "this set", &ok);
    if (mt->distinct_codes != 0) { /* binary codes: bit usage */
        put_number(o, "ones", mt->ones, &ok);
        put_number(o, "bits_used", (double)mt->bits_used, &ok);
        put_number(o, "distinct_codes", (double)mt->distinct_codes, &ok);
    }
    if (!ok)
        cJSON_Delete(o), o = NULL;
    return o;
}

/* What the run's speed was measured on: the CPU, its features, the BLAS and its kernel. */
static cJSON *machine_json(void)
{
    anamo_machine mc;
    anamo_machine_describe(&mc);
    cJSON *o = cJSON_CreateObject();
    int ok = o != NULL;
    put_string(o, "cpu", mc.cpu, &ok);
    put_number(o, "cpu_family", mc.family, &ok);
    put_number(o, "cpu_model", mc.model, &ok);
    put_string(o, "cpu_features", mc.features, &ok);
    put_string(o, "blas", mc.blas, &ok);
    put_string(o, "blas_kernel", mc.kernel, &ok);
    put_string(o, "blas_kernel_chosen_by", mc.kernel_note, &ok);
    put_string(o, "blas_kernel_for_features", mc.best_kernel, &ok);
    put_string(o, "dnnl", mc.dnnl, &ok);
    put_string(o, "mpi", mc.mpi, &ok);
    put_number(o, "threads", omp_get_max_threads(), &ok);
    put_string(o, "openmp_wait", mc.omp_wait, &ok);
    if (!ok)
        cJSON_Delete(o), o = NULL;
    return o;
}

/* summary.json's "compute": each block's passes and FLOP, and their sum (see anamo_work). */
static cJSON *compute_json(const anamo_work work[2], double budget)
{
    cJSON *o = cJSON_CreateObject();
    int ok = o != NULL;
    for (int k = 0; k < 2; k++) {
        cJSON *b = cJSON_CreateObject();
        put_number(b, "forward_samples", (double)work[k].forward_samples, &ok);
        put_number(b, "backward_samples", (double)work[k].backward_samples, &ok);
        put_number(b, "flop", work[k].flop, &ok);
        put_item(o, k ? "decoder" : "encoder", b, &ok);
    }
    put_number(o, "flop", work[0].flop + work[1].flop, &ok);
    put_number(o, "flop_budget", budget > 0 ? budget : NAN, &ok);
    if (!ok)
        cJSON_Delete(o), o = NULL;
    return o;
}

/* Across ranks: how many, and what a step reduced (since this invocation started). */
static cJSON *dist_json(const run_result *r)
{
    cJSON *o = cJSON_CreateObject();
    int ok = o != NULL;
    const double steps = r->steps_here > 0 ? (double)r->steps_here : NAN;
    put_number(o, "ranks", r->dist.ranks, &ok);
    put_number(o, "gradient_bytes_per_step", (double)r->dist.grad_bytes / steps, &ok);
    put_number(o, "gradient_reductions_per_step", (double)r->dist.grad_reductions / steps, &ok);
    put_number(o, "scalar_reductions_per_step", (double)r->dist.scalar_reductions / steps, &ok);
    if (!ok)
        cJSON_Delete(o), o = NULL;
    return o;
}

typedef struct run_parts {
    anamo_run run;
    const char *train_spec, *test_spec; /* data.train and data.test */
    const char *validation_set;         /* what summary.json says the validation set is */
    char *config_text;
} run_parts;

/* extras: "pca" and "steps" objects (analysis.c), moved into the summary; may be NULL. */
static int write_summary(const char *run_dir, const run_parts *p, const run_result *r,
                         cJSON *extras[2], anamo_err *err)
{
    const anamo_train_spec *t = &p->run.train_spec;
    cJSON *o = cJSON_CreateObject();
    int ok = 1;
    put_string(o, "scheme", p->run.scheme, &ok);
    put_string(o, "loss",
               t->loss == ANAMO_LOSS_BCE       ? "bce"
               : t->loss == ANAMO_LOSS_MSE_SUM ? "mse_sum"
                                               : "mse",
               &ok);
    put_number(o, "lambda", t->lambda, &ok);
    put_string(o, "penalty", t->penalty == ANAMO_PENALTY_DECODER_L1 ? "decoder_l1" : "l1", &ok);
    put_string(o, "decoder_norm",
               t->decoder_norm == ANAMO_DECODER_NORM_SPHERE ? "sphere"
               : t->decoder_norm == ANAMO_DECODER_NORM_BALL ? "ball"
                                                            : "none",
               &ok);
    if (t->resample_every > 0)
        put_number(o, "resampled_units", (double)r->resampled, &ok);
    put_number(o, "epochs", (double)r->epochs, &ok);
    put_item(o, "train", cli_metrics_json(&r->train), &ok);
    if (r->has_test)
        put_item(o, "test", cli_metrics_json(&r->test), &ok);
    if (r->has_validation) {
        put_item(o, "validation", cli_metrics_json(&r->validation), &ok);
        put_string(o, "validation_set", p->validation_set, &ok);
        put_number(o, "best_validation_epoch", (double)r->best_epoch, &ok);
        put_number(o, "best_validation_loss", r->best_validation_loss, &ok);
        put_number(o, "stopped_early", r->stopped_early, &ok);
    }
    put_number(o, "seconds_per_epoch", r->seconds_per_epoch, &ok);
    put_item(o, "compute", compute_json(r->work, t->flop_budget), &ok);
    put_number(o, "samples_per_s", r->samples_per_s, &ok);
    if (r->dist.ranks > 1)
        put_item(o, "data_parallel", dist_json(r), &ok);
    put_item(o, "machine", machine_json(), &ok);
    if (r->conv_impl[0])
        put_string(o, "convolutions", r->conv_impl, &ok);
    put_number(o, "weights_updated_per_epoch", r->weights_updated_per_epoch, &ok);
    put_number(o, "encoder_params", (double)r->encoder_params, &ok);
    put_number(o, "decoder_params", (double)r->decoder_params, &ok);
    if (r->diverged) {
        put_string(o, "diverged", r->divergence, &ok);
        put_number(o, "diverged_epoch", (double)r->diverged_epoch, &ok);
    } else {
        put_number(o, "diverged", NAN, &ok);
        put_number(o, "diverged_epoch", NAN, &ok);
    }
    if (extras[0])
        put_item(o, "pca", extras[0], &ok);
    if (extras[1])
        put_item(o, "steps", extras[1], &ok);
    char *text = ok ? cJSON_Print(o) : NULL;
    cJSON_Delete(o);
    char path[4096];
    path_in(path, sizeof path, run_dir, "summary.json");
    int rc = text ? cli_write_file_atomic(path, text, err)
                  : anamo_err_set(err, ANAMO_ERR_NOMEM, "%s: out of memory", path);
    cJSON_free(text);
    return rc;
}

static void release(run_parts *p)
{
    anamo_run_close(&p->run);
    free(p->config_text);
#ifdef __GLIBC__
    /* what the run freed inside the heap goes back to the system, so that a compare's next run
     * does not stack its buffers on the last one's freed pages: 8 MiB of the main job's peak */
    malloc_trim(0);
#endif
}

/* data.validation as summary.json names it: a number is the fraction held out of data.train,
 * anything else the spec of a set of its own. */
static const char *validation_set(const anamo_config *c)
{
    const char *v = anamo_config_get(c, "data", "validation");
    char *end;
    strtod(v, &end);
    return end != v && !*end ? "held out of data.train" : v;
}

/* train.KEY, a number the config has validated. */
static double config_number(const anamo_config *c, const char *key)
{
    return strtod(anamo_config_get(c, "train", key), NULL);
}

/* Everything that can fail on bad input, before anything is written. */
static int prepare(const anamo_config *c, run_parts *p, anamo_err *err)
{
    int rc = anamo_run_open(c, NULL, &p->run, err);
    p->train_spec = anamo_config_get(c, "data", "train");
    p->test_spec = anamo_config_get(c, "data", "test");
    p->validation_set = validation_set(c);
    if (!rc && !(p->config_text = anamo_config_text(c)))
        rc = anamo_err_set(err, ANAMO_ERR_NOMEM, "%s: out of memory", anamo_config_path(c));
    return rc;
}

static int write_text(const char *dir, const char *name, const char *text, anamo_err *err)
{
    char path[4096];
    path_in(path, sizeof path, dir, name);
    return cli_write_file_atomic(path, text, err);
}

/* Creates (or, resuming, reopens) the run directory and its logs; a rank other than 0 only
 * reads the checkpoint it resumes from. */
static int open_run_dir(run_parts *p, run_ctx *ctx, int resume, anamo_err *err)
{
    char ckpt[4096];
    path_in(ckpt, sizeof ckpt, ctx->run_dir, "model.safetensors");
    if (resume) {
        int rc = anamo_checkpoint_restore(p->run.model, p->run.trainer, ckpt, err);
        if (rc || !ctx->writes)
            return rc;
    } else if (!ctx->writes) {
        return ANAMO_OK;
    } else if (cli_file_exists(ckpt)) {
        return anamo_err_set(err, ANAMO_ERR_ARG,
                             "%s already holds a run: continue it with --resume %s, or choose "
                             "another -o",
                             ctx->run_dir, ctx->run_dir);
    }
    int rc = cli_mkdir_p(ctx->run_dir, err);
    if (!rc)
        rc = write_text(ctx->run_dir, "config.ini", p->config_text, err);
    /* resumed: rows past the checkpoint's progress go (the run writes them again) */
    if (!rc)
        rc = open_log(&ctx->metrics, ctx->run_dir, "metrics.csv", METRICS_HEADER, resume,
                      METRICS_KEY_COLUMN, anamo_trainer_iterations(p->run.trainer), err);
    if (!rc)
        rc = open_log(&ctx->epochs, ctx->run_dir, "epochs.csv", EPOCHS_HEADER, resume,
                      EPOCHS_KEY_COLUMN, anamo_trainer_epochs_done(p->run.trainer), err);
    return rc;
}

/* After the loop: the last checkpoint, the final metrics and summary.json. Across ranks every
 * rank takes part in the evaluations (each passes over its shard), and rank 0 writes. */
static int finish_run(run_parts *p, run_ctx *ctx, int train_rc, const anamo_err *train_err,
                      run_result *out, anamo_err *err)
{
    const anamo_run *run = &p->run;
    anamo_model *m = run->model;
    anamo_trainer *t = run->trainer;
    char ckpt[4096];
    path_in(ckpt, sizeof ckpt, ctx->run_dir, "model.safetensors");
    memset(out, 0, sizeof *out);
    out->diverged = train_rc == ANAMO_ERR_DIVERGED;
    if (out->diverged)
        snprintf(out->divergence, sizeof out->divergence, "%s", train_err->msg);
    out->diverged_epoch = !out->diverged          ? 0
                          : ctx->codes_died_epoch ? ctx->codes_died_epoch
                                                  : ctx->last_epoch + 1;
    /* a run whose loss turned non-finite keeps the checkpoint of its last good epoch; one whose
     * codes died has finite weights, saved like a finished run's */
    int rc = (out->diverged && !ctx->codes_died_epoch) || !ctx->writes
                 ? ANAMO_OK
                 : anamo_checkpoint_save(m, t, p->config_text, ckpt, err);
    const anamo_eval_spec es = anamo_trainer_eval_spec(t);
    if (!rc)
        rc = anamo_evaluate_dist(m, &run->train, &es, ctx->dist, &out->train, err);
    if (!rc && run->has_test)
        rc = anamo_evaluate_dist(m, &run->test, &es, ctx->dist, &out->test, err);
    if (!rc && run->has_validation)
        rc = anamo_evaluate_dist(m, &run->validation, &es, ctx->dist, &out->validation, err);
    if (rc || !ctx->writes)
        return rc;
    out->has_test = run->has_test;
    out->has_validation = run->has_validation;
    out->best_epoch = anamo_trainer_best_epoch(t, &out->best_validation_loss);
    out->stopped_early = anamo_trainer_stopped_early(t);
    anamo_trainer_work(t, out->work);
    out->epochs = anamo_trainer_epochs_done(t);
    /* over every epoch of the run, the parts before a --resume included */
    const double epochs = (double)out->epochs, seconds = anamo_trainer_epoch_seconds(t);
    out->seconds_per_epoch = epochs > 0 ? seconds / epochs : 0;
    out->samples_per_s = seconds > 0 ? (double)run->train.n * epochs / seconds : 0;
    out->weights_updated_per_epoch = epochs > 0 ? anamo_trainer_weights_updated(t) / epochs : 0;
    out->resampled = anamo_trainer_resampled(t);
    anamo_trainer_dist_stats(t, &out->dist);
    out->steps_here = anamo_trainer_iterations(t) - ctx->last_ckpt_start;
    out->encoder_params = anamo_model_param_count(m, 0);
    anamo_model_conv_impl(m, out->conv_impl, sizeof out->conv_impl);
    out->decoder_params = anamo_model_param_count(m, 1);
    cJSON *extras[2] = {NULL, NULL};
    rc = analysis_pca(m, &run->train, run->has_test ? &run->test : NULL, out->train.mse, &extras[0],
                      err);
    const int steps_test = run->has_test && !strncmp(p->test_spec, "steps", 5);
    if (!rc && (steps_test || !strncmp(p->train_spec, "steps", 5)))
        rc = analysis_steps(m, steps_test ? &run->test : &run->train, ctx->run_dir, &extras[1],
                            err);
    if (!rc)
        return write_summary(ctx->run_dir, p, out, extras, err);
    cJSON_Delete(extras[0]);
    cJSON_Delete(extras[1]);
    return rc;
}

int cli_check_run(const anamo_config *c, anamo_err *err)
{
    run_parts p = {0};
    int rc = prepare(c, &p, err);
    release(&p);
    return rc;
}

int cli_run_training(const anamo_config *c, const char *run_dir, int resume, const char *label,
                     cli_live *live, anamo_dist *dist, run_result *out, anamo_err *err)
{
    run_parts p = {0};
    const anamo_run *run = &p.run;
    run_ctx ctx = {.run_dir = run_dir,
                   .label = label ? label : "",
                   .tty = isatty(STDERR_FILENO),
                   .writes = anamo_dist_rank(dist) == 0,
                   .dist = dist};
    int rc = prepare(c, &p, err);
    if (!rc && dist) /* across ranks: each trains its share of every batch */
        rc = anamo_trainer_set_dist(run->trainer, dist, err);
    if (!rc) {
        ctx.m = run->model, ctx.t = run->trainer, ctx.config_text = p.config_text;
        ctx.checkpoint_every = (int)config_number(c, "checkpoint_every");
        ctx.checkpoint_iterations = (int64_t)config_number(c, "checkpoint_iterations");
        ctx.checkpoint_seconds = config_number(c, "checkpoint_seconds");
        rc = open_run_dir(&p, &ctx, resume, err);
    }
    if (!rc && live && ctx.writes) { /* the pictures show the test set, else the training set */
        const char *view_spec = run->has_test ? p.test_spec : p.train_spec;
        ctx.live = live;
        rc = cli_live_run_begin(live, run_dir, run->model, run->has_test ? &run->test : &run->train,
                                !strncmp(view_spec, "steps", 5));
    }
    if (!rc) {
        static const char *const LOSS_FORMS[] = {"mse = mean over elements of (x^ - x)^2",
                                                 "mse_sum = sum ||x^ - x||^2 / batch",
                                                 "bce = mean over elements"};
        char ranks[48] = "";
        if (anamo_dist_size(dist) > 1)
            snprintf(ranks, sizeof ranks, ", data-parallel on %d ranks", anamo_dist_size(dist));
        if (ctx.writes)
            fprintf(stderr, "%s%s: scheme %s, loss %s, lambda %g, %lld training samples%s%s\n",
                    ctx.label, run_dir, run->scheme, LOSS_FORMS[run->train_spec.loss],
                    run->train_spec.lambda, (long long)run->train.n, resume ? " (resumed)" : "",
                    ranks);
        if (run->threads > 0)
            omp_set_num_threads(run->threads);
        signal(SIGINT, on_signal);
        signal(SIGTERM, on_signal);
        anamo_train_hooks hooks = {.ctx = &ctx,
                                   .on_log = on_log,
                                   .on_epoch = on_epoch,
                                   .on_step = on_step,
                                   .stop = &stop_requested};
        ctx.last_ckpt_iteration = anamo_trainer_iterations(run->trainer);
        ctx.last_ckpt_start = ctx.last_ckpt_iteration;
        ctx.last_ckpt_elapsed = anamo_trainer_seconds(run->trainer);
        ctx.last_epoch = anamo_trainer_epochs_done(run->trainer);
        /* step codes at zero can come back (straight-through or smooth-step gradients), and
         * free codes train apart from the encoder: only other codes die for good */
        ctx.watch_codes = strcmp(run->scheme, "freecodes") != 0 && !run->model_spec.binary_codes;
        anamo_err train_err = {0};
        int train_rc = anamo_trainer_run(run->trainer, &hooks, &train_err);
        if (ctx.codes_died_epoch && !ctx.hook_err.code)
            train_rc = anamo_err_set(&train_err, ANAMO_ERR_DIVERGED,
                                     "diverged: every code is zero after epoch %lld",
                                     (long long)ctx.codes_died_epoch);
        signal(SIGINT, SIG_DFL);
        signal(SIGTERM, SIG_DFL);
        if (ctx.tty && ctx.writes)
            fputs("\r\033[K", stderr);
        const int failed = train_rc && train_rc != ANAMO_ERR_DIVERGED &&
                           train_rc != ANAMO_ERR_INTERRUPTED;
        if (failed) /* a hook's failure (a log write, a checkpoint) says more than the stop */
            *err = ctx.hook_err.code ? ctx.hook_err : train_err, rc = train_rc;
        else /* no row comes after the loop: the logs are whole before any checkpoint below,
              * and a log that cannot be written stops the run without one */
            rc = close_logs(&ctx, err);
        if (!rc && (train_rc == ANAMO_OK || train_rc == ANAMO_ERR_DIVERGED))
            rc = finish_run(&p, &ctx, train_rc, &train_err, out, err);
        if (!rc && !ctx.writes) /* rank 0 reports; the others end as it does */
            rc = train_rc == ANAMO_ERR_DIVERGED || train_rc == ANAMO_ERR_INTERRUPTED
                     ? anamo_err_set(err, train_rc, "%s", train_err.msg)
                     : ANAMO_OK;
        if (!rc && train_rc == ANAMO_ERR_DIVERGED && ctx.writes)
            rc = anamo_err_set(err, ANAMO_ERR_DIVERGED, "%s (recorded in %s/summary.json)",
                               train_err.msg, run_dir);
        if (!rc && train_rc == ANAMO_ERR_INTERRUPTED && ctx.writes) {
            char ckpt[4096];
            path_in(ckpt, sizeof ckpt, run_dir, "model.safetensors");
            rc = anamo_checkpoint_save(run->model, run->trainer, p.config_text, ckpt, err);
            if (!rc)
                rc = anamo_err_set(err, ANAMO_ERR_INTERRUPTED,
                                   "%s; checkpoint saved, continue with: anamo train --resume %s",
                                   train_err.msg, run_dir);
        }
    }
    /* on a failure already reported, closing what is still open is cleanup: its own failure
     * would hide the first */
    anamo_err ignored = {0};
    close_logs(&ctx, &ignored);
    if (ctx.live)
        cli_live_run_end(live, rc == ANAMO_OK || rc == ANAMO_ERR_DIVERGED);
    release(&p);
    /* across ranks: no rank starts the next run (or exits) before rank 0 has written this one */
    if (dist && anamo_dist_barrier(dist, &ignored) && !rc)
        rc = anamo_err_set(err, ignored.code, "%s", ignored.msg);
    return rc;
}
