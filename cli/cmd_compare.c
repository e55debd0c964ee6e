/* cmd_compare.c — anamo compare: run every arm of a config ([compare] arms = a, b; each
 * [arm NAME] holds section.key = value overrides) and tabulate the results. An arm whose
 * summary.json exists is not run again, so an interrupted compare resumes where it stopped. */
#include "cli.h"
#include "figures.h"

#include <cJSON.h>
#include <string.h>
#include <time.h>

#define MAX_ARMS 16

static const char USAGE[] =
    "usage: anamo compare CONFIG [-o DIR] [--set section.key=value ...]\n"
    "\n"
    "Runs each arm named in CONFIG's [compare] arms (overrides in [arm NAME]) into DIR/NAME,\n"
    "then prints a table of the arms and writes DIR/results.md and DIR/results.json.\n"
    "--set overrides apply to every arm, after the arm's own overrides.\n"
    "  -o DIR   output directory (default results/CONFIG-NAME)\n";

static void print_table(FILE *f, char names[][ANAMO_NAME_MAX], const run_result *r, int n)
{
    fprintf(f, "| arm | test MSE | test loss | bias | code l1 | zero codes | dead units | "
               "s/epoch | samples/s | weights updated/epoch | diverged |\n");
    fprintf(f, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n");
    for (int i = 0; i < n; i++) {
        const anamo_metrics *m = r[i].has_test ? &r[i].test : &r[i].train;
        fprintf(f, "| %s | %.6f | %.6f | %.4f | %.4f | %.4f | %lld | %.3f | %.0f | %.0f | %s |\n",
                names[i], m->mse, m->loss, m->bias, m->code_l1, m->zero_codes,
                (long long)m->dead_units,
                r[i].seconds_per_epoch, r[i].samples_per_s, r[i].weights_updated_per_epoch,
                r[i].diverged ? "yes" : "no");
    }
}

static int write_results(const char *dir, char names[][ANAMO_NAME_MAX], const run_result *r,
                         int n, anamo_err *err)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/results.md", dir);
    FILE *f = fopen(path, "w");
    if (!f)
        return anamo_fail(err, ANAMO_ERR_IO, "%s: cannot write", path);
    fprintf(f, "# Results\n\nMetrics on the test set (train set where there is none).\n\n");
    print_table(f, names, r, n);
    fclose(f);
    cJSON *arr = cJSON_CreateArray();
    for (int i = 0; i < n; i++) {
        const anamo_metrics *m = r[i].has_test ? &r[i].test : &r[i].train;
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "arm", names[i]);
        cJSON_AddNumberToObject(o, "test_mse", m->mse);
        cJSON_AddNumberToObject(o, "test_loss", m->loss);
        cJSON_AddNumberToObject(o, "test_bias", m->bias);
        cJSON_AddNumberToObject(o, "code_l1", m->code_l1);
        cJSON_AddNumberToObject(o, "zero_codes", m->zero_codes);
        cJSON_AddNumberToObject(o, "dead_units", (double)m->dead_units);
        cJSON_AddNumberToObject(o, "seconds_per_epoch", r[i].seconds_per_epoch);
        cJSON_AddNumberToObject(o, "samples_per_s", r[i].samples_per_s);
        cJSON_AddNumberToObject(o, "weights_updated_per_epoch", r[i].weights_updated_per_epoch);
        cJSON_AddBoolToObject(o, "diverged", r[i].diverged);
        cJSON_AddItemToArray(arr, o);
    }
    char *text = cJSON_Print(arr);
    cJSON_Delete(arr);
    snprintf(path, sizeof path, "%s/results.json", dir);
    f = fopen(path, "w");
    int ok = f && text && fputs(text, f) >= 0;
    ok = f && !fclose(f) && ok;
    cJSON_free(text);
    return ok ? ANAMO_OK : anamo_fail(err, ANAMO_ERR_IO, "%s: cannot write", path);
}

/* Runs (or resumes, or skips if finished) one arm. */
static int run_arm(const config *base, const char *arm, const char *dir, const char **sets,
                   int nsets, run_result *r, anamo_err *err)
{
    char run_dir[4096], label[64], ckpt[4200], summary[4200];
    snprintf(run_dir, sizeof run_dir, "%s/%s", dir, arm);
    snprintf(summary, sizeof summary, "%s/summary.json", run_dir);
    snprintf(ckpt, sizeof ckpt, "%s/model.safetensors", run_dir);
    if (cli_file_exists(summary)) {
        fprintf(stderr, "[%s] finished earlier: %s\n", arm, summary);
        return cli_read_summary(run_dir, r, err);
    }
    config c;
    int rc = config_copy(&c, base, err);
    if (rc)
        return rc;
    rc = config_apply_arm(&c, arm, err);
    for (int i = 0; !rc && i < nsets; i++)
        rc = config_set(&c, sets[i], "--set", err);
    if (!rc)
        rc = config_validate(&c, err);
    snprintf(label, sizeof label, "[%s] ", arm);
    if (!rc)
        rc = cli_run_training(&c, run_dir, cli_file_exists(ckpt), label, r, err);
    if (rc == ANAMO_ERR_DIVERGED) /* a diverged arm is a result, not a failure */
        rc = cli_read_summary(run_dir, r, err);
    config_free(&c);
    return rc;
}

int cmd_compare(int argc, char **argv)
{
    const char *config_path = NULL, *dir_arg = NULL, *sets[64];
    int nsets = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))
            return fputs(USAGE, stdout), EXIT_OK;
        if (!strcmp(argv[i], "-o") && i + 1 < argc)
            dir_arg = argv[++i];
        else if (!strcmp(argv[i], "--set") && i + 1 < argc && nsets < 64)
            sets[nsets++] = argv[++i];
        else if (argv[i][0] != '-' && !config_path)
            config_path = argv[i];
        else
            return cli_usage_error(USAGE, "compare: unexpected argument '%s'", argv[i]);
    }
    if (!config_path)
        return cli_usage_error(USAGE, "compare: missing CONFIG");
    char dir[4096];
    const char *base = strrchr(config_path, '/');
    base = base ? base + 1 : config_path;
    if (dir_arg)
        snprintf(dir, sizeof dir, "%s", dir_arg);
    else
        snprintf(dir, sizeof dir, "results/%.*s", (int)strcspn(base, "."), base);
    config c = {0};
    anamo_err err = {0};
    char names[MAX_ARMS][ANAMO_NAME_MAX];
    run_result results[MAX_ARMS];
    int rc = config_load(&c, config_path, &err), narms = 0;
    if (!rc)
        rc = config_validate(&c, &err);
    if (!rc && (narms = config_arms(&c, names, MAX_ARMS)) < 1)
        rc = anamo_fail(&err, ANAMO_ERR_CONFIG, "%s: [compare] arms lists no arm", config_path);
    for (int i = 0; !rc && i < narms; i++)
        rc = run_arm(&c, names[i], dir, sets, nsets, &results[i], &err);
    if (!rc)
        rc = write_results(dir, names, results, narms, &err);
    if (!rc)
        rc = figures_loss_curves(dir, names, narms, &err);
    char test_spec[CFG_VALUE_MAX] = "";
    if (!rc)
        snprintf(test_spec, sizeof test_spec, "%s", config_get(&c, "data", "test"));
    if (!rc && *test_spec)
        rc = figures_reconstructions(dir, names, narms, test_spec, &err);
    config_free(&c);
    if (rc)
        return cli_report(&err);
    print_table(stdout, names, results, narms);
    printf("\nwritten: %s/results.md, results.json, losses.png, losses.svg%s\n", dir,
           *test_spec ? ", reconstructions.png (when the data are images)" : "");
    return EXIT_OK;
}
