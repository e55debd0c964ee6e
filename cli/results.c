/* results.c — anamo compare's tables: every run's summary.json gathered into mean ± sample
 * standard deviation and [min, max] over the trials, per metric and arm, in results.md (one
 * table; a second one for a sweep) and results.json (the same statistics with every trial's
 * value). */
#include "cli.h"
#include "compare.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct metric_def {
    const char *path;  /* in summary.json; "test." falls back to "train." without a test set */
    const char *label;
} metric_def;

static const metric_def METRICS[] = {
    {"test.recon_loss", "test reconstruction loss"},
    {"test.loss", "test loss (+ λ·code ℓ1)"},
    {"train.recon_loss", "train reconstruction loss"},
    {"train.loss", "train loss (+ λ·code ℓ1)"},
    {"test.mse", "test MSE"},
    {"test.bias", "test bias (1/M)Σ‖x − x̂‖"},
    {"test.code_l1", "code ℓ1 (1/M)Σ‖E(x)‖₁"},
    {"test.compression", "code ℓ1 / input ℓ1"},
    {"test.zero_codes", "fraction of zero codes"},
    {"test.dead_units", "dead code units"},
    {"test.bits_used", "code bits used"},
    {"test.ones", "fraction of code bits that are 1"},
    {"test.distinct_codes", "distinct code words"},
    {"steps.r2", "R² of code against step position"},
    {"steps.max_position_error", "worst per-position error"},
    {"pca.mse_over_optimum", "train MSE / PCA optimum"},
    {"pca.test_mse", "PCA test MSE"},
    {"pca.max_angle_deg", "largest principal angle to PCA (°)"},
    {"seconds_per_epoch", "seconds per epoch"},
    {"weights_updated_per_epoch", "weights updated per epoch"},
};
#define NMETRICS (int)(sizeof METRICS / sizeof METRICS[0])

typedef struct arm_stats {
    double *values;        /* NMETRICS × trials, NaN where a summary lacks the metric */
    int diverged;
    int64_t *diverged_epoch; /* trials; 0 where it did not diverge */
} arm_stats;

/* summary.json's number at a dotted path ("test.mse"), NaN if absent. */
static double number_at(const cJSON *o, const char *path)
{
    char part[64];
    while (o && *path) {
        size_t n = strcspn(path, ".");
        snprintf(part, sizeof part, "%.*s", (int)n, path);
        o = cJSON_GetObjectItemCaseSensitive(o, part);
        path += n + (path[n] == '.');
    }
    return cJSON_IsNumber(o) ? o->valuedouble : NAN;
}

static double metric_of(const cJSON *summary, const char *path)
{
    double v = number_at(summary, path);
    if (isnan(v) && !strncmp(path, "test.", 5) &&
        !cJSON_GetObjectItemCaseSensitive(summary, "test")) {
        char train_path[64];
        snprintf(train_path, sizeof train_path, "train.%s", path + 5);
        v = number_at(summary, train_path);
    }
    return v;
}

static int gather_arm(const compare_set *cs, int arm, arm_stats *st, anamo_err *err)
{
    st->values = malloc(sizeof(double) * NMETRICS * (size_t)cs->trials);
    st->diverged_epoch = calloc((size_t)cs->trials, sizeof *st->diverged_epoch);
    if (!st->values || !st->diverged_epoch)
        return anamo_fail(err, ANAMO_ERR_NOMEM, "compare: out of memory");
    for (int t = 0; t < cs->trials; t++) {
        char path[4200];
        compare_run_dir(cs, arm, t, path, sizeof path);
        strcat(path, "/summary.json");
        cJSON *s;
        int rc = cli_read_json(path, &s, err);
        if (rc)
            return rc;
        for (int k = 0; k < NMETRICS; k++)
            st->values[k * cs->trials + t] = metric_of(s, METRICS[k].path);
        if (cJSON_IsString(cJSON_GetObjectItemCaseSensitive(s, "diverged"))) {
            st->diverged++;
            st->diverged_epoch[t] = (int64_t)number_at(s, "diverged_epoch");
        }
        cJSON_Delete(s);
    }
    return ANAMO_OK;
}

typedef struct summary_stats {
    int n;
    double mean, sd, min, max;
} summary_stats;

/* Over the finite values; sd is the sample standard deviation (n − 1), 0 for one value. */
static summary_stats stats_of(const double *v, int count)
{
    summary_stats s = {0, 0, 0, INFINITY, -INFINITY};
    for (int i = 0; i < count; i++)
        if (isfinite(v[i])) {
            s.n++, s.mean += v[i];
            s.min = v[i] < s.min ? v[i] : s.min;
            s.max = v[i] > s.max ? v[i] : s.max;
        }
    s.mean = s.n ? s.mean / s.n : NAN;
    for (int i = 0; i < count; i++)
        if (isfinite(v[i]))
            s.sd += (v[i] - s.mean) * (v[i] - s.mean);
    s.sd = s.n > 1 ? sqrt(s.sd / (s.n - 1)) : 0.0;
    return s;
}

static void put_number(FILE *f, double x)
{
    if (fabs(x) >= 1e4 && fabs(x) < 1e9)
        fprintf(f, "%.0f", x);
    else
        fprintf(f, "%.4g", x);
}

static void put_cell(FILE *f, const double *v, int trials)
{
    summary_stats s = stats_of(v, trials);
    fputs(" | ", f);
    if (s.n == 0) {
        fputs("–", f);
        return;
    }
    put_number(f, s.mean);
    if (trials == 1)
        return;
    fputs(" ± ", f), put_number(f, s.sd);
    fputs(" [", f), put_number(f, s.min), fputs(", ", f), put_number(f, s.max), fputs("]", f);
    if (s.n < trials)
        fprintf(f, " (%d of %d)", s.n, trials);
}

static void put_diverged(FILE *f, const arm_stats *st, int trials)
{
    fprintf(f, " | %d/%d", st->diverged, trials);
    for (int t = 0, first = 1; t < trials; t++)
        if (st->diverged_epoch[t]) {
            fprintf(f, "%s%lld", first ? " (epochs " : ", ", (long long)st->diverged_epoch[t]);
            first = 0;
        }
    if (st->diverged)
        fputs(")", f);
}

static int metric_present(const arm_stats *st, int narms, int k, int trials)
{
    for (int a = 0; a < narms; a++)
        if (stats_of(st[a].values + k * trials, trials).n > 0)
            return 1;
    return 0;
}

static void put_table(FILE *f, const compare_set *cs, const arm_stats *st)
{
    fputs("| metric", f);
    for (int a = 0; a < cs->narms; a++)
        fprintf(f, " | %s", cs->arms[a].name);
    fputs(" |\n|---", f);
    for (int a = 0; a < cs->narms; a++)
        fputs("|---:", f);
    fputs("|\n", f);
    for (int k = 0; k < NMETRICS; k++) {
        if (!metric_present(st, cs->narms, k, cs->trials))
            continue;
        fprintf(f, "| %s", METRICS[k].label);
        for (int a = 0; a < cs->narms; a++)
            put_cell(f, st[a].values + k * cs->trials, cs->trials);
        fputs(" |\n", f);
    }
    fputs("| diverged (NaN or every code zero)", f);
    for (int a = 0; a < cs->narms; a++)
        put_diverged(f, &st[a], cs->trials);
    fputs(" |\n", f);
}

static int metric_index(const char *path)
{
    for (int k = 0; k < NMETRICS; k++)
        if (!strcmp(METRICS[k].path, path))
            return k;
    return -1;
}

/* The sweep: one row per value, test loss, code ℓ1 and divergences per arm family. */
static void put_sweep_table(FILE *f, const compare_set *cs, const arm_stats *st)
{
    const int loss = metric_index("test.loss"), l1 = metric_index("test.code_l1");
    int nvalues = 0;
    while (nvalues < cs->narms && !strcmp(cs->arms[nvalues].family, cs->arms[0].family))
        nvalues++;
    fprintf(f, "\n## Sweep over %s\n\n| %s", cs->sweep_key, cs->sweep_key);
    for (int a = 0; a < cs->narms; a += nvalues)
        fprintf(f, " | %s test loss | %s code ℓ1 | %s diverged", cs->arms[a].family,
                cs->arms[a].family, cs->arms[a].family);
    fputs(" |\n|---", f);
    for (int a = 0; a < cs->narms; a += nvalues)
        fputs("|---:|---:|---:", f);
    fputs("|\n", f);
    for (int v = 0; v < nvalues; v++) {
        fprintf(f, "| %s", cs->arms[v].sweep_value);
        for (int a = v; a < cs->narms; a += nvalues) {
            put_cell(f, st[a].values + loss * cs->trials, cs->trials);
            put_cell(f, st[a].values + l1 * cs->trials, cs->trials);
            fprintf(f, " | %d/%d", st[a].diverged, cs->trials);
        }
        fputs(" |\n", f);
    }
}

static char *markdown(const compare_set *cs, const arm_stats *st)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f)
        return NULL;
    fprintf(f, "# Results\n\n%d trial%s per arm (trial t adds t to model.seed and train.seed, "
               "so the arms of a trial start from the same weights). ",
            cs->trials, cs->trials == 1 ? "" : "s");
    if (cs->trials > 1)
        fputs("Cells: mean ± sample standard deviation [min, max] over the trials. ", f);
    fputs("Metrics on the test set (the training set's where there is none) after the last "
          "epoch.\n\n", f);
    put_table(f, cs, st);
    if (cs->sweep_key[0])
        put_sweep_table(f, cs, st);
    fclose(f);
    return text;
}

static cJSON *stats_json(const double *v, int trials)
{
    summary_stats s = stats_of(v, trials);
    cJSON *o = cJSON_CreateObject(), *all = cJSON_CreateArray();
    cJSON_AddNumberToObject(o, "mean", s.mean);
    cJSON_AddNumberToObject(o, "sd", s.sd);
    cJSON_AddNumberToObject(o, "min", s.min);
    cJSON_AddNumberToObject(o, "max", s.max);
    for (int t = 0; t < trials; t++)
        cJSON_AddItemToArray(all, isfinite(v[t]) ? cJSON_CreateNumber(v[t]) : cJSON_CreateNull());
    cJSON_AddItemToObject(o, "values", all);
    return o;
}

static char *results_json(const compare_set *cs, const arm_stats *st)
{
    cJSON *root = cJSON_CreateObject(), *arms = cJSON_CreateArray();
    cJSON_AddNumberToObject(root, "trials", cs->trials);
    cJSON_AddStringToObject(root, "sweep", cs->sweep_key);
    for (int a = 0; a < cs->narms; a++) {
        cJSON *o = cJSON_CreateObject(), *metrics = cJSON_CreateObject();
        cJSON *epochs = cJSON_CreateArray();
        cJSON_AddStringToObject(o, "arm", cs->arms[a].name);
        cJSON_AddStringToObject(o, "family", cs->arms[a].family);
        cJSON_AddStringToObject(o, "sweep_value", cs->arms[a].sweep_value);
        for (int k = 0; k < NMETRICS; k++)
            if (metric_present(&st[a], 1, k, cs->trials))
                cJSON_AddItemToObject(metrics, METRICS[k].path,
                                      stats_json(st[a].values + k * cs->trials, cs->trials));
        cJSON_AddItemToObject(o, "metrics", metrics);
        cJSON_AddNumberToObject(o, "diverged", st[a].diverged);
        for (int t = 0; t < cs->trials; t++)
            cJSON_AddItemToArray(epochs, st[a].diverged_epoch[t]
                                             ? cJSON_CreateNumber((double)st[a].diverged_epoch[t])
                                             : cJSON_CreateNull());
        cJSON_AddItemToObject(o, "diverged_epoch", epochs);
        cJSON_AddItemToArray(arms, o);
    }
    cJSON_AddItemToObject(root, "arms", arms);
    char *text = cJSON_Print(root);
    cJSON_Delete(root);
    return text;
}

static int write_both(const compare_set *cs, const arm_stats *st, FILE *out, anamo_err *err)
{
    char path[4200];
    char *md = markdown(cs, st), *json = results_json(cs, st);
    int rc = md && json ? ANAMO_OK : anamo_fail(err, ANAMO_ERR_NOMEM, "compare: out of memory");
    if (!rc) {
        snprintf(path, sizeof path, "%s/results.md", cs->dir);
        rc = cli_write_file_atomic(path, md, err);
    }
    if (!rc) {
        snprintf(path, sizeof path, "%s/results.json", cs->dir);
        rc = cli_write_file_atomic(path, json, err);
    }
    if (!rc && out)
        fputs(md, out);
    free(md);
    cJSON_free(json);
    return rc;
}

int compare_write_results(const compare_set *cs, FILE *out, anamo_err *err)
{
    arm_stats *st = calloc((size_t)cs->narms, sizeof *st);
    int rc = st ? ANAMO_OK : anamo_fail(err, ANAMO_ERR_NOMEM, "compare: out of memory");
    for (int a = 0; !rc && a < cs->narms; a++)
        rc = gather_arm(cs, a, &st[a], err);
    if (!rc)
        rc = write_both(cs, st, out, err);
    for (int a = 0; st && a < cs->narms; a++)
        free(st[a].values), free(st[a].diverged_epoch);
    free(st);
    return rc;
}
