/* cli.h — what the subcommands share: exit codes, data lookup, run directories, training. */
#ifndef ANAMO_CLI_CLI_H
#define ANAMO_CLI_CLI_H

#include "anamo_program.h"

#include <cJSON.h>
#include <stdio.h>

enum { EXIT_OK = 0, EXIT_RUNTIME = 1, EXIT_USAGE = 2 };

/* The verbs. dist: the processes mpirun started (rank 0 of 1 otherwise); train and compare
 * train across them, the others run on rank 0 alone. */
int cmd_train(int argc, char **argv, anamo_dist *dist);
int cmd_eval(int argc, char **argv, anamo_dist *dist);
int cmd_encode(int argc, char **argv, anamo_dist *dist);
int cmd_reconstruct(int argc, char **argv, anamo_dist *dist);
int cmd_compare(int argc, char **argv, anamo_dist *dist);

/* Prints "anamo: MESSAGE" to stderr and returns the exit code for it: 2 for configuration
 * and argument errors, 1 for the rest. */
int cli_report(const anamo_err *err);
int cli_usage_error(const char *usage, const char *fmt, ...);
int cli_mkdir_p(const char *path, anamo_err *err);
/* Writes text to path.tmp, flushes and fsyncs it, and renames it over path: a crash leaves the
 * old file or the new one, never half of one. */
int cli_write_file_atomic(const char *path, const char *text, anamo_err *err);
int cli_is_dir(const char *path);
int cli_file_exists(const char *path);
/* MODEL may be a checkpoint file or a run directory holding model.safetensors. */
void cli_model_path(const char *model, char *out, size_t size);

/* Arguments of the verbs that read a model and a dataset: MODEL --data SPEC [-o OUT]
 * [--count N] [--cols N] [--jacobian-samples N]. Returns 0, or the exit code to leave with (-1: --help shown). */
typedef struct model_args {
    const char *model, *data, *out;
    int count, cols;
    int64_t jacobian_samples; /* --jacobian-samples (eval): 0 the checkpoint's, -1 none */
} model_args;
int cli_model_args(int argc, char **argv, const char *usage, model_args *a);
/* Loads MODEL's checkpoint and the dataset; prints the error and returns the exit code. */
int cli_load_model_data(const model_args *a, anamo_model **m, anamo_dataset *ds);
/* The encoder's first layer with a weight matrix (a linear layer; with conv, a Conv2d too):
 * its description into *layer and its weights, in PyTorch's layout, into *weights (NULL when
 * the encoder has none). */
int cli_first_weights(anamo_model *m, int conv, anamo_layer_info *layer, const float **weights,
                      anamo_err *err);

/* One training run of config c into run_dir (created; with resume, continued). */
typedef struct run_result {
    int diverged;
    char divergence[ANAMO_ERR_MSG_MAX];
    int64_t diverged_epoch; /* the epoch in which it diverged (NaN or every code zero) */
    int64_t epochs;
    anamo_metrics train, test, validation;
    int has_test, has_validation;
    int64_t best_epoch; /* the epoch of the best validation loss (0: no validation set) */
    double best_validation_loss;
    int stopped_early;  /* train.early_stopping ended the run */
    anamo_work work[2]; /* the training work of encoder and decoder */
    double seconds_per_epoch;
    double weights_updated_per_epoch;
    double samples_per_s;
    int64_t encoder_params, decoder_params;
    int64_t resampled;     /* code units re-initialized by dead-unit resampling */
    char conv_impl[512];   /* how each convolution ran (anamo_model_conv_impl) */
    anamo_dist_stats dist; /* what this invocation's steps reduced across ranks */
    int64_t steps_here;    /* steps this invocation took (a resumed run's, since the resume) */
} run_result;

typedef struct cli_live cli_live; /* --live (live.h); NULL when off */
/* Across ranks (dist not NULL), every rank calls it for the same run; rank 0 alone writes. */
int cli_run_training(const anamo_config *c, const char *run_dir, int resume, const char *label,
                     cli_live *live, anamo_dist *dist, run_result *out, anamo_err *err);
/* Everything cli_run_training checks before it writes anything: the config's settings, the
 * data, the model's layer lists against the data's shape, the phases' optimizers. */
int cli_check_run(const anamo_config *c, anamo_err *err);
/* The metrics as a JSON object: summary.json's "train" and "test", and anamo eval's output. */
cJSON *cli_metrics_json(const anamo_metrics *mt);
/* Text built with stdio into memory, for scripts and tables: a FILE over a buffer of cap bytes
 * (fmemopen), whose every failure — a full buffer, a failed allocation — marks the stream, so
 * cli_text_close can tell a whole text from a cut one (glibc's open_memstream does not mark
 * its stream when its realloc fails). NULL when the buffer cannot be had. */
FILE *cli_text_open(char **buf, size_t cap);
/* Closes it: 0 when the text in *buf is whole and terminated, else -1 (and *buf freed). */
int cli_text_close(FILE *f, char **buf, size_t cap);
/* Reads and parses a JSON file (summary.json, results.json); *out to cJSON_Delete. */
int cli_read_json(const char *path, cJSON **out, anamo_err *err);

#endif
