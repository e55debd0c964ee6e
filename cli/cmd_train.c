/* cmd_train.c — anamo train: one training run as a config file describes it. */
#include "cli.h"
#include "live.h"

#include <string.h>
#include <time.h>

static const char USAGE[] =
    "usage: anamo train CONFIG [-o RUN_DIR] [--set section.key=value ...] [--live [PORT]]\n"
    "       anamo train [CONFIG] --resume RUN_DIR [--set section.key=value ...]\n"
    "\n"
    "Trains the autoencoder CONFIG describes (see experiments/*.ini) and writes RUN_DIR:\n"
    "config.ini (resolved), metrics.csv, epochs.csv, model.safetensors, summary.json.\n"
    "  -o RUN_DIR        output directory (default runs/CONFIG-NAME-DATE-TIME)\n"
    "  --set S.K=V       override key K of section [S], e.g. --set train.epochs=2\n"
    "  --resume RUN_DIR  continue the run in RUN_DIR from its checkpoint (its config.ini unless\n"
    "                    CONFIG is given); raise train.epochs with --set to train further\n"
    "  --live [PORT]     watch it train: a page on http://127.0.0.1:PORT/ (no PORT or 0: a\n"
    "                    free one; ADDRESS:PORT, e.g. 0.0.0.0:8080, listens there instead)\n";

typedef struct train_args {
    const char *config_path, *run_dir, *resume;
    const char *live; /* --live's address ("" for a free port), or NULL */
    const char *sets[64];
    int nsets;
} train_args;

static int parse_args(int argc, char **argv, train_args *a)
{
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        int has_value = i + 1 < argc;
        if (!strcmp(arg, "--help") || !strcmp(arg, "-h")) {
            fputs(USAGE, stdout);
            return -1;
        } else if (!strcmp(arg, "-o") && has_value) {
            a->run_dir = argv[++i];
        } else if (!strcmp(arg, "--live")) {
            a->live = has_value && cli_live_value(argv[i + 1]) ? argv[++i] : "";
        } else if (!strcmp(arg, "--resume") && has_value) {
            a->resume = argv[++i];
        } else if (!strcmp(arg, "--set") && has_value) {
            if (a->nsets == 64)
                return cli_usage_error(USAGE, "too many --set options (64 at most)");
            a->sets[a->nsets++] = argv[++i];
        } else if (arg[0] == '-') {
            return cli_usage_error(USAGE, "train: unknown option or missing value: %s", arg);
        } else if (!a->config_path) {
            a->config_path = arg;
        } else {
            return cli_usage_error(USAGE, "train: unexpected argument '%s'", arg);
        }
    }
    if (!a->config_path && !a->resume)
        return cli_usage_error(USAGE, "train: missing CONFIG");
    if (a->resume && a->run_dir && strcmp(a->resume, a->run_dir))
        return cli_usage_error(USAGE, "train: --resume already names the run directory");
    return 0;
}

static void default_run_dir(const char *config_path, char *out, size_t size)
{
    const char *base = strrchr(config_path, '/');
    base = base ? base + 1 : config_path;
    size_t len = strcspn(base, ".");
    char stamp[32];
    time_t now = time(NULL);
    strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", localtime(&now));
    snprintf(out, size, "runs/%.*s-%s", (int)len, base, stamp);
}

int cmd_train(int argc, char **argv, anamo_dist *dist)
{
    train_args a = {0};
    int rc = parse_args(argc, argv, &a);
    if (rc)
        return rc < 0 ? EXIT_OK : rc;
    char base_config[4096], run_dir[4096];
    if (a.config_path)
        snprintf(base_config, sizeof base_config, "%s", a.config_path);
    else
        snprintf(base_config, sizeof base_config, "%s/config.ini", a.resume);
    if (a.resume)
        snprintf(run_dir, sizeof run_dir, "%s", a.resume);
    else if (a.run_dir)
        snprintf(run_dir, sizeof run_dir, "%s", a.run_dir);
    else if (anamo_dist_size(dist) > 1) /* each rank's clock would name another directory */
        return cli_usage_error(USAGE, "train: across %d ranks, name the run directory with -o",
                               anamo_dist_size(dist));
    else
        default_run_dir(base_config, run_dir, sizeof run_dir);
    anamo_config *c = NULL;
    anamo_err err = {0};
    rc = anamo_config_load(base_config, &c, &err);
    for (int i = 0; !rc && i < a.nsets; i++)
        rc = anamo_config_set(c, a.sets[i], "--set", &err);
    run_result result;
    cli_live *live = NULL;
    char title[4200];
    snprintf(title, sizeof title, "anamo train %s → %s", base_config, run_dir);
    if (!rc && a.live && anamo_dist_rank(dist) == 0)
        rc = cli_live_start(a.live, title, &live, &err);
    if (!rc)
        rc = cli_run_training(c, run_dir, a.resume != NULL, "", live, dist, &result, &err);
    cli_live_stop(live);
    anamo_config_free(c);
    if (rc)
        return cli_report(&err);
    if (anamo_dist_rank(dist) != 0)
        return EXIT_OK;
    printf("run: %s\n", run_dir);
    printf("test mse: %.6f  code l1: %.4f  zero codes: %.3f  %.2f s/epoch  %.0f samples/s\n",
           result.has_test ? result.test.mse : result.train.mse,
           result.has_test ? result.test.code_l1 : result.train.code_l1,
           result.has_test ? result.test.zero_codes : result.train.zero_codes,
           result.seconds_per_epoch, result.samples_per_s);
    if (result.dist.ranks > 1 && result.steps_here > 0)
        printf("data-parallel on %d ranks: %.0f gradient bytes all-reduced per step\n",
               result.dist.ranks, (double)result.dist.grad_bytes / (double)result.steps_here);
    if (result.has_validation)
        printf("validation mse: %.6f  best validation loss %.6g after epoch %lld%s\n",
               result.validation.mse, result.best_validation_loss, (long long)result.best_epoch,
               result.stopped_early ? "; stopped early (train.early_stopping)" : "");
    return EXIT_OK;
}
