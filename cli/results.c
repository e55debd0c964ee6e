/* results.c — anamo compare's tables: every run's summary.json gathered into mean ± sample
 * standard deviation and [min, max] over the trials, per metric and arm, in results.md (one
 * table; a second one for a sweep) and results.json (the same statistics with every trial's
 * value). */
#include "cli.h"
#include "compare.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* When a row is shown: rows equal by construction to another one appear once. */
typedef enum row_when {
    ROW_ALWAYS = 0,
    ROW_IF_NOT_MSE, /* the configured loss differs from MSE in some arm */
    ROW_IF_PENALTY  /* some arm has λ ≠ 0 */
} row_when;

typedef struct metric_def {
    const char *path; /* in summary.json; "test." falls back to "train." without a test set */
    const char *label;
    row_when when;
    const char *what; /* the table's footnote: what it measures, what it is invariant to */
} metric_def;

static const metric_def METRICS[] = {
    {"test.mse", "test MSE", ROW_ALWAYS, "mean squared error per element, in the input's scale"},
    {"test.recon_loss", "test reconstruction loss", ROW_IF_NOT_MSE,
     "the configured reconstruction loss (mse_sum: Σ‖x − x̂‖² per sample; bce)"},
    {"test.loss", "test loss with the penalty", ROW_IF_PENALTY,
     "reconstruction loss + λ·penalty, the objective trained on"},
    {"train.mse", "train MSE", ROW_ALWAYS, "the same on the training set"},
    {"validation.mse", "validation MSE", ROW_ALWAYS,
     "the same on the validation set (data.validation), the one selection reads"},
    {"validation.loss", "validation loss with the penalty", ROW_IF_PENALTY,
     "the objective on the validation set"},
    {"best_validation_epoch", "epoch of the best validation loss", ROW_ALWAYS,
     "after which epoch the validation loss was lowest (train.early_stopping stops on it)"},
    {"train.recon_loss", "train reconstruction loss", ROW_IF_NOT_MSE,
     "the configured loss on the training set"},
    {"train.loss", "train loss with the penalty", ROW_IF_PENALTY,
     "the objective on the training set"},
    {"test.explained_variance", "explained variance", ROW_ALWAYS,
     "1 − Σ‖x − x̂‖²/Σ‖x − x̄‖², x̄ the training mean; a function of x̂ alone, so invariant to "
     "every reparametrization that keeps the reconstructions"},
    {"test.bias", "test bias (1/M)Σ‖x − x̂‖", ROW_ALWAYS,
     "the seeds' reconstruction bias, mean ℓ2 error per image; a function of x̂ alone"},
    {"test.code_l1", "code ℓ1, raw", ROW_ALWAYS,
     "(1/M)Σ‖E(x)‖₁; NOT invariant: dividing the code by c and multiplying the decoder's first "
     "layer by c divides it by c with x̂ unchanged"},
    {"test.code_l1_decoder", "code ℓ1 × first-layer column norm", ROW_ALWAYS,
     "(1/M)Σ_j ‖W₁[:,j]‖·|h_j|; invariant to that rescaling, not to one across the decoder's "
     "hidden ReLU layers"},
    {"test.code_l1_jacobian", "code ℓ1 × decoder Jacobian norm", ROW_ALWAYS,
     "(1/M')Σ_j ‖∂z/∂h_j‖·|h_j|, z the decoder's output before its final activation, over M' "
     "evenly spaced test samples (summary.json: jacobian_samples); invariant to every "
     "rescaling of the code or of hidden decoder units the decoder's output cannot see"},
    {"test.compression", "code ℓ1 ÷ input ℓ1 (raw; lower is smaller)", ROW_ALWAYS,
     "the seeds' \"compression\": raw code ℓ1 over (1/M)Σ‖x‖₁; as raw ℓ1, not invariant"},
    {"test.l0", "L0: nonzero codes per sample", ROW_ALWAYS,
     "(1/M)Σ #{j: h_j ≠ 0}, code units × (1 − the fraction of zero codes in summary.json); no "
     "rescaling moves an exact zero"},
    {"test.dead_units", "dead code units", ROW_ALWAYS,
     "code units 0 on every test sample; invariant to every rescaling"},
    {"test.dead_fraction", "dead fraction", ROW_ALWAYS,
     "dead code units ÷ code units, for comparing models of different code widths"},
    {"resampled_units", "units resampled", ROW_ALWAYS,
     "dead units re-initialized during training (train.resample_every)"},
    {"test.bits_used", "code bits used", ROW_ALWAYS, "binary codes: bits both 0 and 1 on the set"},
    {"test.ones", "fraction of code bits that are 1", ROW_ALWAYS, "binary codes"},
    {"test.distinct_codes", "distinct code words", ROW_ALWAYS, "binary codes"},
    {"steps.r2", "R² of code against step position", ROW_ALWAYS,
     "step-function data: linearity of the code in the step's position"},
    {"steps.max_position_error", "worst per-position error", ROW_ALWAYS,
     "step-function data: the largest MSE over step positions"},
    {"pca.mse_over_optimum", "train MSE / PCA optimum", ROW_ALWAYS,
     "linear models: MSE over the Eckart–Young optimum (≥ 1)"},
    {"pca.test_mse", "PCA test MSE", ROW_ALWAYS, "the PCA baseline's test MSE"},
    {"pca.max_angle_deg", "largest principal angle to PCA (°)", ROW_ALWAYS,
     "between the decoder's column space and the PCA subspace"},
    {"seconds_per_epoch", "seconds per epoch", ROW_ALWAYS, "training time (evaluation excluded)"},
    {"compute.flop", "training FLOP", ROW_ALWAYS,
     "the matrix products of every training pass, both blocks (2 per multiply-add; forward, "
     "input and weight gradients as they ran; no evaluation)"},
    {"compute.encoder.forward_samples", "encoder forward passes (samples)", ROW_ALWAYS,
     "samples passed forward through the encoder in training (a decoder phase's code cache "
     "included)"},
    {"compute.encoder.backward_samples", "encoder backward passes (samples)", ROW_ALWAYS,
     "samples passed backward through the encoder"},
    {"compute.decoder.forward_samples", "decoder forward passes (samples)", ROW_ALWAYS,
     "samples passed forward through the decoder (line searches' trial points included)"},
    {"compute.decoder.backward_samples", "decoder backward passes (samples)", ROW_ALWAYS,
     "samples passed backward through the decoder"},
    {"weights_updated_per_epoch", "weights updated per epoch", ROW_ALWAYS,
     "parameters some step of an epoch changed (a NAM epoch updates one block)"},
};
#define NMETRICS (int)(sizeof METRICS / sizeof METRICS[0])

/* Which conditional rows a comparison needs, read from its runs' summaries. */
typedef struct row_needs {
    int not_mse, penalty;
} row_needs;

#define RESULTS_TEXT_MAX ((size_t)16 << 20) /* results.md's most bytes */

typedef struct arm_stats {
    double *values;      /* NMETRICS × trials, NaN where a summary lacks the metric */
    double *selected_by; /* trials: cs->select's metric, NaN where absent */
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

static void note_needs(const cJSON *summary, row_needs *needs)
{
    const cJSON *loss = cJSON_GetObjectItemCaseSensitive(summary, "loss");
    needs->not_mse |= cJSON_IsString(loss) && strcmp(loss->valuestring, "mse") != 0;
    needs->penalty |= number_at(summary, "lambda") != 0.0;
}

static int gather_arm(const compare_set *cs, int arm, arm_stats *st, row_needs *needs,
                      anamo_err *err)
{
    st->values = malloc(sizeof(double) * NMETRICS * (size_t)cs->trials);
    st->diverged_epoch = calloc((size_t)cs->trials, sizeof *st->diverged_epoch);
    st->selected_by = malloc(sizeof(double) * (size_t)cs->trials);
    if (!st->values || !st->diverged_epoch || !st->selected_by)
        return anamo_err_set(err, ANAMO_ERR_NOMEM, "compare: out of memory");
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
        /* the selection's metric is read as named: no fallback to another set */
        st->selected_by[t] = cs->select[0] ? number_at(s, cs->select) : NAN;
        note_needs(s, needs);
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

static int row_wanted(const metric_def *d, const row_needs *needs)
{
    return d->when == ROW_ALWAYS || (d->when == ROW_IF_NOT_MSE && needs->not_mse) ||
           (d->when == ROW_IF_PENALTY && needs->penalty);
}

static int metric_present(const arm_stats *st, int narms, int k, int trials)
{
    for (int a = 0; a < narms; a++)
        if (stats_of(st[a].values + k * trials, trials).n > 0)
            return 1;
    return 0;
}

static void put_table(FILE *f, const compare_set *cs, const arm_stats *st, const row_needs *needs)
{
    fputs("| metric", f);
    for (int a = 0; a < cs->narms; a++)
        fprintf(f, " | %s", cs->arms[a].name);
    fputs(" |\n|---", f);
    for (int a = 0; a < cs->narms; a++)
        fputs("|---:", f);
    fputs("|\n", f);
    for (int k = 0; k < NMETRICS; k++) {
        if (!row_wanted(&METRICS[k], needs) || !metric_present(st, cs->narms, k, cs->trials))
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

/* What each row of the table measures and is invariant to, one line per row shown. */
static void put_footnotes(FILE *f, const compare_set *cs, const arm_stats *st,
                          const row_needs *needs)
{
    fputs("\nWhat the rows measure:\n\n", f);
    for (int k = 0; k < NMETRICS; k++)
        if (row_wanted(&METRICS[k], needs) && metric_present(st, cs->narms, k, cs->trials))
            fprintf(f, "- %s: %s.\n", METRICS[k].label, METRICS[k].what);
    fputs("- diverged: the loss turned NaN or Inf, or every test code was 0 after an epoch.\n", f);
}

/* The arms of one family: [first, first + count). */
static int family_end(const compare_set *cs, int first)
{
    int end = first + 1;
    while (end < cs->narms && !strcmp(cs->arms[end].family, cs->arms[first].family))
        end++;
    return end;
}

/* One arm's cells of a sweep table: test loss, code ℓ1 raw and × Jacobian, divergences. */
static void put_sweep_cells(FILE *f, const compare_set *cs, const arm_stats *st)
{
    const int loss = metric_index("test.loss"), l1 = metric_index("test.code_l1");
    const int jac = metric_index("test.code_l1_jacobian");
    put_cell(f, st->values + loss * cs->trials, cs->trials);
    put_cell(f, st->values + l1 * cs->trials, cs->trials);
    put_cell(f, st->values + jac * cs->trials, cs->trials);
    fprintf(f, " | %d/%d", st->diverged, cs->trials);
}

/* The sweep: one row per value, test loss, code ℓ1 (raw and Jacobian-weighted) and
 * divergences per arm family. */
static void put_sweep_table(FILE *f, const compare_set *cs, const arm_stats *st)
{
    const int nvalues = family_end(cs, 0);
    fprintf(f, "\n## Sweep over %s\n\n| %s", cs->sweep_key, cs->sweep_key);
    for (int a = 0; a < cs->narms; a += nvalues)
        fprintf(f, " | %s test loss | %s code ℓ1 | %s code ℓ1 × Jacobian | %s diverged",
                cs->arms[a].family, cs->arms[a].family, cs->arms[a].family, cs->arms[a].family);
    fputs(" |\n|---", f);
    for (int a = 0; a < cs->narms; a += nvalues)
        fputs("|---:|---:|---:|---:", f);
    fputs("|\n", f);
    for (int v = 0; v < nvalues; v++) {
        fprintf(f, "| %s", cs->arms[v].sweep_value);
        for (int a = v; a < cs->narms; a += nvalues)
            put_sweep_cells(f, cs, &st[a]);
        fputs(" |\n", f);
    }
}

/* One family's sweep (arms [first, first + count)), when the families sweep different keys or
 * values. */
static void put_family_sweep(FILE *f, const compare_set *cs, const arm_stats *st, int first,
                             int count)
{
    const char *key = cs->arms[first].sweep_key;
    fprintf(f,
            "\n## Sweep of %s over %s\n\n| %s | test loss | code ℓ1 | code ℓ1 × Jacobian | "
            "diverged |\n|---|---:|---:|---:|---:|\n",
            cs->arms[first].family, key, key);
    for (int a = first; a < first + count; a++) {
        fprintf(f, "| %s", cs->arms[a].sweep_value);
        put_sweep_cells(f, cs, &st[a]);
        fputs(" |\n", f);
    }
}

/* An arm's score for selection: the mean over the trials of cs->select's (validation) metric;
 * +∞ when some trial lacks a finite value (it diverged), so such a setting is never chosen. */
static double selection_score(const compare_set *cs, const arm_stats *st)
{
    double sum = 0.0;
    for (int t = 0; t < cs->trials; t++) {
        if (!isfinite(st->selected_by[t]))
            return INFINITY;
        sum += st->selected_by[t];
    }
    return sum / cs->trials;
}

/* The chosen arm of the family starting at first: the lowest score (the first on a tie), or
 * −1 when no arm of it finished every trial. */
static int selected_arm(const compare_set *cs, const arm_stats *st, int first)
{
    int best = -1;
    for (int a = first; a < family_end(cs, first); a++)
        if (isfinite(selection_score(cs, &st[a])) &&
            (best < 0 || selection_score(cs, &st[a]) < selection_score(cs, &st[best])))
            best = a;
    return best;
}

/* Each family at its selected setting: the choices, then the full table of those arms. */
static void put_selected(FILE *f, const compare_set *cs, const arm_stats *st,
                         const row_needs *needs)
{
    compare_arm chosen[COMPARE_MAX_ARMS];
    arm_stats chosen_st[COMPARE_MAX_ARMS];
    int n = 0;
    fprintf(f,
            "\n## Each arm at its best validation setting\n\nChosen by the lowest mean of "
            "%s over the %d trial%s (a setting with a diverged trial is never chosen); test "
            "figures are reported, never selected on.\n\n",
            cs->select, cs->trials, cs->trials == 1 ? "" : "s");
    for (int first = 0; first < cs->narms; first = family_end(cs, first)) {
        int a = selected_arm(cs, st, first);
        if (a < 0) {
            fprintf(f, "- %s: no setting finished every trial\n", cs->arms[first].family);
            continue;
        }
        fprintf(f, "- %s: %s = %s (%s ", cs->arms[a].family,
                cs->arms[a].sweep_key[0] ? cs->arms[a].sweep_key : "no sweep",
                cs->arms[a].sweep_value[0] ? cs->arms[a].sweep_value : "–", cs->select);
        put_number(f, selection_score(cs, &st[a]));
        fputs(")\n", f);
        chosen[n] = cs->arms[a], chosen_st[n++] = st[a];
    }
    if (n == 0)
        return;
    compare_set sub = *cs;
    sub.arms = chosen, sub.narms = n;
    fputs("\n", f);
    put_table(f, &sub, chosen_st, needs);
}

static char *markdown(const compare_set *cs, const arm_stats *st, const row_needs *needs)
{
    char *text = NULL;
    FILE *f = cli_text_open(&text, RESULTS_TEXT_MAX);
    if (!f)
        return NULL;
    fprintf(f,
            "# Results\n\n%d trial%s per arm (trial t adds t to model.seed and train.seed, "
            "so the arms of a trial start from the same weights). ",
            cs->trials, cs->trials == 1 ? "" : "s");
    if (cs->trials > 1)
        fputs("Cells: mean ± sample standard deviation [min, max] over the trials. ", f);
    fputs("Metrics on the test set (the training set's where there is none) after the last "
          "epoch.\n\n",
          f);
    put_table(f, cs, st, needs);
    if (cs->sweep_key[0])
        put_sweep_table(f, cs, st);
    for (int first = 0; !cs->sweep_key[0] && first < cs->narms; first = family_end(cs, first))
        if (cs->arms[first].sweep_key[0])
            put_family_sweep(f, cs, st, first, family_end(cs, first) - first);
    if (cs->select[0])
        put_selected(f, cs, st, needs);
    put_footnotes(f, cs, st, needs);
    if (cli_text_close(f, &text, RESULTS_TEXT_MAX)) /* no table rather than a cut one */
        return NULL;
    return text;
}

/* Adds item under key (an array's element when key is NULL); when anything is missing or cJSON
 * cannot add it, the item is freed and *ok cleared, so results.json is whole or not written. */
static void add(cJSON *parent, const char *key, cJSON *item, int *ok)
{
    int added = parent && item &&
                (key ? cJSON_AddItemToObject(parent, key, item)
                     : cJSON_AddItemToArray(parent, item));
    if (!added) {
        cJSON_Delete(item);
        *ok = 0;
    }
}

static cJSON *number_or_null(double v)
{
    return isfinite(v) ? cJSON_CreateNumber(v) : cJSON_CreateNull();
}

static cJSON *stats_json(const double *v, int trials, int *ok)
{
    summary_stats s = stats_of(v, trials);
    cJSON *o = cJSON_CreateObject(), *all = cJSON_CreateArray();
    add(o, "mean", cJSON_CreateNumber(s.mean), ok);
    add(o, "sd", cJSON_CreateNumber(s.sd), ok);
    add(o, "min", cJSON_CreateNumber(s.min), ok);
    add(o, "max", cJSON_CreateNumber(s.max), ok);
    for (int t = 0; t < trials; t++)
        add(all, NULL, number_or_null(v[t]), ok);
    add(o, "values", all, ok);
    return o;
}

static cJSON *arm_json(const compare_set *cs, const arm_stats *st, int a, int *ok)
{
    cJSON *o = cJSON_CreateObject(), *metrics = cJSON_CreateObject();
    cJSON *epochs = cJSON_CreateArray();
    add(o, "arm", cJSON_CreateString(cs->arms[a].name), ok);
    add(o, "family", cJSON_CreateString(cs->arms[a].family), ok);
    add(o, "sweep_key", cJSON_CreateString(cs->arms[a].sweep_key), ok);
    add(o, "sweep_value", cJSON_CreateString(cs->arms[a].sweep_value), ok);
    for (int k = 0; k < NMETRICS; k++)
        if (metric_present(&st[a], 1, k, cs->trials))
            add(metrics, METRICS[k].path, stats_json(st[a].values + k * cs->trials, cs->trials, ok),
                ok);
    add(o, "metrics", metrics, ok);
    add(o, "diverged", cJSON_CreateNumber(st[a].diverged), ok);
    for (int t = 0; t < cs->trials; t++)
        add(epochs, NULL,
            st[a].diverged_epoch[t] ? cJSON_CreateNumber((double)st[a].diverged_epoch[t])
                                    : cJSON_CreateNull(),
            ok);
    add(o, "diverged_epoch", epochs, ok);
    return o;
}

/* {"by": metric, "families": [{family, arm, sweep_key, sweep_value, score}, ...]}; arm null
 * where no setting finished every trial. */
static cJSON *selected_json(const compare_set *cs, const arm_stats *st, int *ok)
{
    cJSON *o = cJSON_CreateObject(), *families = cJSON_CreateArray();
    add(o, "by", cJSON_CreateString(cs->select), ok);
    for (int first = 0; first < cs->narms; first = family_end(cs, first)) {
        int a = selected_arm(cs, st, first);
        cJSON *e = cJSON_CreateObject();
        add(e, "family", cJSON_CreateString(cs->arms[first].family), ok);
        add(e, "arm", a < 0 ? cJSON_CreateNull() : cJSON_CreateString(cs->arms[a].name), ok);
        add(e, "sweep_key", cJSON_CreateString(cs->arms[first].sweep_key), ok);
        add(e, "sweep_value",
            a < 0 ? cJSON_CreateNull() : cJSON_CreateString(cs->arms[a].sweep_value), ok);
        add(e, "score",
            a < 0 ? cJSON_CreateNull() : cJSON_CreateNumber(selection_score(cs, &st[a])), ok);
        add(families, NULL, e, ok);
    }
    add(o, "families", families, ok);
    return o;
}

static char *results_json(const compare_set *cs, const arm_stats *st)
{
    int ok = 1;
    cJSON *root = cJSON_CreateObject(), *arms = cJSON_CreateArray();
    add(root, "trials", cJSON_CreateNumber(cs->trials), &ok);
    add(root, "sweep", cJSON_CreateString(cs->sweep_key), &ok);
    for (int a = 0; a < cs->narms; a++)
        add(arms, NULL, arm_json(cs, st, a, &ok), &ok);
    add(root, "arms", arms, &ok);
    if (cs->select[0])
        add(root, "selected", selected_json(cs, st, &ok), &ok);
    char *text = ok ? cJSON_Print(root) : NULL;
    cJSON_Delete(root);
    return text;
}

static int write_both(const compare_set *cs, const arm_stats *st, const row_needs *needs, FILE *out,
                      anamo_err *err)
{
    char path[4200];
    char *md = markdown(cs, st, needs), *json = results_json(cs, st);
    int rc = md && json ? ANAMO_OK : anamo_err_set(err, ANAMO_ERR_NOMEM, "compare: out of memory");
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
    int rc = st ? ANAMO_OK : anamo_err_set(err, ANAMO_ERR_NOMEM, "compare: out of memory");
    row_needs needs = {0};
    for (int a = 0; !rc && a < cs->narms; a++)
        rc = gather_arm(cs, a, &st[a], &needs, err);
    if (!rc)
        rc = write_both(cs, st, &needs, out, err);
    for (int a = 0; st && a < cs->narms; a++)
        free(st[a].values), free(st[a].diverged_epoch), free(st[a].selected_by);
    free(st);
    return rc;
}
