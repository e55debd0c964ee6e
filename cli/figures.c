/* figures.c — the pictures of a comparison (see figures.h): data files averaged over trials,
 * gnuplot scripts beside them, and the reconstruction grid. */
#include "cli.h"
#include "data/data.h"
#include "figures.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define FIG_LINE_MAX 4096
#define FIG_GRID_COUNT 10

/* ---- plumbing ------------------------------------------------------------------------------ */

int figures_plot(const char *dir, const char *name, const char *body, int width, int height,
                 anamo_err *err)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/%s.gp", dir, name);
    FILE *gp = fopen(path, "w");
    if (!gp)
        return anamo_fail(err, ANAMO_ERR_IO, "%s: cannot write", path);
    fprintf(gp, "# anamo: redraw with  gnuplot %s.gp  (in this directory)\n", name);
    fprintf(gp, "set terminal pngcairo size %d,%d\nset output '%s.png'\n%s\nunset multiplot\n",
            width, height, name, body);
    fprintf(gp, "set terminal svg size %d,%d\nset output '%s.svg'\n%s\nunset multiplot\n",
            width, height, name, body);
    if (fclose(gp))
        return anamo_fail(err, ANAMO_ERR_IO, "%s: cannot write", path);
    char cmd[8600];
    snprintf(cmd, sizeof cmd, "cd '%s' && gnuplot %s.gp 2>/dev/null", dir, name);
    if (system(cmd) != 0)
        fprintf(stderr, "anamo: gnuplot did not run; %s/%s.dat and %s.gp are there to plot by "
                        "hand\n", dir, name, name);
    return ANAMO_OK;
}

static int column_of(char *header, const char *name)
{
    int col = 0;
    for (char *save = NULL, *tok = strtok_r(header, ",\n\r", &save); tok;
         tok = strtok_r(NULL, ",\n\r", &save), col++)
        if (!strcmp(tok, name))
            return col;
    return -1;
}

/* Reads one data row's fields into out (numbers at cols, text at text_col). */
static void read_row(char *line, const int *cols, int ncols, int text_col, double *num,
                     char *text)
{
    char *fields[64] = {0}, *save = NULL;
    int n = 0;
    for (char *tok = strtok_r(line, ",\n\r", &save); tok && n < 64;
         tok = strtok_r(NULL, ",\n\r", &save))
        fields[n++] = tok;
    for (int k = 0; k < ncols; k++)
        num[k] = cols[k] < n ? strtod(fields[cols[k]], NULL) : NAN;
    if (text)
        snprintf(text, 16, "%s", text_col >= 0 && text_col < n ? fields[text_col] : "");
}

static int find_columns(FILE *f, const char *path, const char *const *names, int ncols,
                        const char *text_column, int *cols, int *text_col, anamo_err *err)
{
    char line[FIG_LINE_MAX], copy[FIG_LINE_MAX];
    if (!fgets(line, sizeof line, f))
        return anamo_fail(err, ANAMO_ERR_FORMAT, "%s: empty", path);
    for (int k = 0; k <= ncols; k++) {
        const char *name = k < ncols ? names[k] : text_column;
        if (!name)
            continue;
        memcpy(copy, line, sizeof line);
        int c = column_of(copy, name);
        if (c < 0)
            return anamo_fail(err, ANAMO_ERR_FORMAT, "%s: no column '%s'", path, name);
        *(k < ncols ? &cols[k] : text_col) = c;
    }
    return ANAMO_OK;
}

int figures_read_csv(const char *path, const char *const *names, int ncols,
                     const char *text_column, csv_columns *out, anamo_err *err)
{
    memset(out, 0, sizeof *out);
    out->ncols = ncols;
    FILE *f = fopen(path, "r");
    if (!f)
        return anamo_fail(err, ANAMO_ERR_IO, "%s: cannot open", path);
    int cols[16], text_col = -1, cap = 0;
    int rc = ncols <= 16 ? find_columns(f, path, names, ncols, text_column, cols, &text_col, err)
                         : anamo_fail(err, ANAMO_ERR_ARG, "%s: too many columns", path);
    char line[FIG_LINE_MAX];
    while (!rc && fgets(line, sizeof line, f)) {
        if (out->nrows == cap) {
            cap = cap ? 2 * cap : 256;
            double *num = realloc(out->num, sizeof *num * (size_t)cap * (size_t)ncols);
            char(*text)[16] = text_column ? realloc(out->text, sizeof *text * (size_t)cap) : NULL;
            out->num = num ? num : out->num;
            out->text = text ? text : out->text;
            if (!num || (text_column && !text)) {
                rc = anamo_fail(err, ANAMO_ERR_NOMEM, "%s: out of memory", path);
                break;
            }
        }
        read_row(line, cols, ncols, text_col, out->num + (size_t)out->nrows * (size_t)ncols,
                 text_column ? out->text[out->nrows] : NULL);
        out->nrows++;
    }
    fclose(f);
    if (rc)
        figures_csv_free(out);
    return rc;
}

void figures_csv_free(csv_columns *c)
{
    free(c->num);
    free(c->text);
    memset(c, 0, sizeof *c);
}

/* Reads file NAME of every trial of an arm; rows = the fewest any trial has. */
static int read_trials(const compare_set *cs, int arm, const char *file,
                       const char *const *names, int ncols, const char *text_column,
                       csv_columns *runs, int *rows, anamo_err *err)
{
    int rc = ANAMO_OK;
    *rows = -1;
    for (int t = 0; t < cs->trials; t++) {
        char path[4300];
        compare_run_dir(cs, arm, t, path, sizeof path);
        strcat(path, "/"), strcat(path, file);
        rc = rc ? rc : figures_read_csv(path, names, ncols, text_column, &runs[t], err);
        if (!rc && (*rows < 0 || runs[t].nrows < *rows))
            *rows = runs[t].nrows;
    }
    return rc;
}

/* Mean and sample sd of column col at row r over the trials' finite values. */
static void mean_sd(const csv_columns *runs, int trials, int r, int col, double *mean,
                    double *sd)
{
    double sum = 0, sq = 0;
    int n = 0;
    for (int t = 0; t < trials; t++) {
        double v = runs[t].num[(size_t)r * (size_t)runs[t].ncols + (size_t)col];
        if (isfinite(v))
            sum += v, sq += v * v, n++;
    }
    *mean = n ? sum / n : NAN;
    *sd = n > 1 ? sqrt(fmax(0.0, (sq - n * *mean * *mean) / (n - 1))) : 0.0;
}

FILE *figures_open_dat(const char *dir, const char *file, anamo_err *err)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    FILE *f = fopen(path, "w");
    if (!f)
        anamo_fail(err, ANAMO_ERR_IO, "%s: cannot write", path);
    return f;
}

static void free_runs(csv_columns *runs, int trials)
{
    for (int t = 0; t < trials; t++)
        figures_csv_free(&runs[t]);
}

/* ---- training loss by iteration, coloured by phase ----------------------------------------- */

/* The colour of each block's phases: decoder blue, encoder red, joint green, as in seed 000's
 * Figure 1; ANAMO purple, free codes orange. */
static const struct {
    const char *block, *title;
    unsigned rgb;
} BLOCK_COLOURS[] = {{"decoder", "decoder", 0x1f77b4}, {"encoder", "encoder", 0xd62728},
                     {"both", "joint", 0x2ca02c},      {"anamo", "ANAMO", 0x9467bd},
                     {"freecodes", "free codes", 0xff7f0e}};
#define NBLOCK_COLOURS (int)(sizeof BLOCK_COLOURS / sizeof BLOCK_COLOURS[0])

static int block_index(const char *block)
{
    for (int i = 0; i < NBLOCK_COLOURS; i++)
        if (!strcmp(block, BLOCK_COLOURS[i].block))
            return i;
    return 2; /* joint */
}

/* Writes the mean curves; seen[a] gets a bit per block that arm a's phases update. */
static int training_loss_data(const compare_set *cs, FILE *dat, csv_columns *runs,
                              unsigned *seen, anamo_err *err)
{
    static const char *const COLS[] = {"iteration", "loss"};
    int rc = ANAMO_OK;
    for (int a = 0; !rc && a < cs->narms; a++) {
        int rows;
        rc = read_trials(cs, a, "metrics.csv", COLS, 2, "block", runs, &rows, err);
        fprintf(dat, "%s# %s: iteration, mean training loss over %d trials, sd, colour of the "
                     "phase's block\n", a ? "\n\n" : "", cs->arms[a].name, cs->trials);
        seen[a] = 0;
        for (int r = 0; !rc && r < rows; r++) {
            double mean, sd;
            mean_sd(runs, cs->trials, r, 1, &mean, &sd);
            int b = block_index(runs[0].text[r]);
            seen[a] |= 1u << b;
            fprintf(dat, "%.0f %.8g %.8g %u\n", runs[0].num[2 * r], mean, sd,
                    BLOCK_COLOURS[b].rgb);
        }
        free_runs(runs, cs->trials);
    }
    return rc;
}

static void training_loss_panel(FILE *b, const compare_set *cs, int a, unsigned seen)
{
    fprintf(b, "set title '%s (mean of %d)' noenhanced\nplot 'training-loss.dat' index %d "
               "using 1:2:4 with lines lc rgb variable notitle",
            cs->arms[a].name, cs->trials, a);
    for (int i = 0; i < NBLOCK_COLOURS; i++) /* a key entry per block this arm updates */
        if (seen & (1u << i))
            fprintf(b, ", NaN with lines lc rgb '#%06x' title '%s'", BLOCK_COLOURS[i].rgb,
                    BLOCK_COLOURS[i].title);
    fputs("\n", b);
}

static int training_loss_figure(const compare_set *cs, csv_columns *runs, anamo_err *err)
{
    unsigned *seen = calloc((size_t)cs->narms, sizeof *seen);
    FILE *dat = seen ? figures_open_dat(cs->dir, "training-loss.dat", err) : NULL;
    int rc = !seen ? anamo_fail(err, ANAMO_ERR_NOMEM, "figures: out of memory")
             : !dat ? err->code
                    : training_loss_data(cs, dat, runs, seen, err);
    if (dat)
        fclose(dat);
    const int cols = cs->narms < 3 ? cs->narms : 3, rows = (cs->narms + cols - 1) / cols;
    char *body = NULL;
    size_t len = 0;
    FILE *b = rc ? NULL : open_memstream(&body, &len);
    if (!rc && !b)
        rc = anamo_fail(err, ANAMO_ERR_NOMEM, "figures: out of memory");
    if (!rc) {
        fprintf(b, "set multiplot layout %d,%d\nset logscale y\nset grid\n"
                   "set xlabel 'iteration'\nset ylabel 'training loss'\nset key top right\n"
                   "set xtics rotate by -30\n", rows, cols);
        for (int a = 0; a < cs->narms; a++)
            training_loss_panel(b, cs, a, seen[a]);
        fclose(b);
        rc = figures_plot(cs->dir, "training-loss", body, 560 * cols, 380 * rows, err);
    }
    free(body);
    free(seen);
    return rc;
}

/* ---- losses per epoch ---------------------------------------------------------------------- */

static int epoch_loss_data(const compare_set *cs, FILE *dat, csv_columns *runs, anamo_err *err)
{
    static const char *const COLS[] = {"epoch", "train_loss", "test_loss"};
    int rc = ANAMO_OK;
    for (int a = 0; !rc && a < cs->narms; a++) {
        int rows;
        rc = read_trials(cs, a, "epochs.csv", COLS, 3, NULL, runs, &rows, err);
        fprintf(dat, "%s# %s: epoch, mean train loss, sd, mean test loss, sd (over %d trials)\n",
                a ? "\n\n" : "", cs->arms[a].name, cs->trials);
        for (int r = 0; !rc && r < rows; r++) {
            double train, train_sd, test, test_sd;
            mean_sd(runs, cs->trials, r, 1, &train, &train_sd);
            mean_sd(runs, cs->trials, r, 2, &test, &test_sd);
            fprintf(dat, "%.0f %.8g %.8g %.8g %.8g\n", runs[0].num[3 * r], train, train_sd,
                    test, test_sd);
        }
        free_runs(runs, cs->trials);
    }
    return rc;
}

static int epoch_loss_figure(const compare_set *cs, csv_columns *runs, anamo_err *err)
{
    FILE *dat = figures_open_dat(cs->dir, "epoch-loss.dat", err);
    if (!dat)
        return err->code;
    int rc = epoch_loss_data(cs, dat, runs, err);
    fclose(dat);
    if (rc)
        return rc;
    char *body = NULL;
    size_t len = 0;
    FILE *b = open_memstream(&body, &len);
    if (!b)
        return anamo_fail(err, ANAMO_ERR_NOMEM, "figures: out of memory");
    fprintf(b, "set logscale y\nset grid\nset xlabel 'epoch'\nset ylabel 'loss'\n"
               "set key outside right\nset title 'test (solid, ± sd over trials) and training "
               "(dashed) loss'\nplot ");
    for (int a = 0; a < cs->narms; a++)
        fprintf(b, "%s'epoch-loss.dat' index %d using 1:4:5 with yerrorlines lc %d title "
                   "'%s' noenhanced, '' index %d using 1:2 with lines dashtype 2 lc %d notitle",
                a ? ", \\\n  " : "", a, a + 1, cs->arms[a].name, a, a + 1);
    fputs("\n", b);
    fclose(b);
    rc = figures_plot(cs->dir, "epoch-loss", body, 900, 520, err);
    free(body);
    return rc;
}

/* ---- the sweep ----------------------------------------------------------------------------- */

static double stat_of(const cJSON *arm, const char *metric, const char *which)
{
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(arm, "metrics");
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(m, metric), which);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

static int sweep_data(const compare_set *cs, const cJSON *arms, FILE *dat)
{
    int block = 0;
    for (int a = 0; a < cs->narms; a++) {
        const cJSON *o = cJSON_GetArrayItem(arms, a);
        if (a == 0 || strcmp(cs->arms[a].family, cs->arms[a - 1].family))
            fprintf(dat, "%s# %s: %s, test loss mean, sd, code l1 mean, sd, diverged trials\n",
                    block++ ? "\n\n" : "", cs->arms[a].family, cs->sweep_key);
        const cJSON *div = cJSON_GetObjectItemCaseSensitive(o, "diverged");
        fprintf(dat, "%s %.8g %.8g %.8g %.8g %d\n", cs->arms[a].sweep_value,
                stat_of(o, "test.loss", "mean"), stat_of(o, "test.loss", "sd"),
                stat_of(o, "test.code_l1", "mean"), stat_of(o, "test.code_l1", "sd"),
                cJSON_IsNumber(div) ? div->valueint : 0);
    }
    return block;
}

/* The sweep figure has log axes: it is drawn when every swept value is a number > 0. */
static int sweep_is_positive(const compare_set *cs)
{
    for (int a = 0; a < cs->narms; a++) {
        char *end;
        double v = strtod(cs->arms[a].sweep_value, &end);
        if (end == cs->arms[a].sweep_value || *end || !(v > 0))
            return 0;
    }
    return 1;
}

static int sweep_figure(const compare_set *cs, anamo_err *err)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/results.json", cs->dir);
    cJSON *root;
    int rc = cli_read_json(path, &root, err);
    FILE *dat = rc ? NULL : figures_open_dat(cs->dir, "sweep.dat", err);
    if (!dat) {
        cJSON_Delete(root);
        return rc ? rc : err->code;
    }
    int families = sweep_data(cs, cJSON_GetObjectItemCaseSensitive(root, "arms"), dat);
    fclose(dat);
    cJSON_Delete(root);
    char body[8192];
    int used = snprintf(body, sizeof body,
                        "set multiplot layout 1,2\nset logscale xy\nset grid\nset xlabel '%s' "
                        "noenhanced\nset key top left\nset format x '10^{%%L}'\n"
                        "set format y '%%g'\n", cs->sweep_key);
    for (int panel = 0; panel < 2; panel++) {
        used += snprintf(body + used, sizeof body - (size_t)used,
                         "set ylabel '%s'\n%splot ", panel ? "test code l1 (0 not drawn)" : "final test loss",
                         panel ? "set format y '10^{%L}'\n" : "");
        for (int k = 0; k < families && used < (int)sizeof body - 512; k++)
            used += snprintf(body + used, sizeof body - (size_t)used,
                             "%s'sweep.dat' index %d using 1:%d with linespoints lc %d title "
                             "'%s' noenhanced, '' index %d using 1:($6 > 0 ? $%d : NaN) with "
                             "points pt 6 ps 2.5 lc %d %s",
                             k ? ", " : "", k, panel ? 4 : 2, k + 1,
                             cs->arms[k * (cs->narms / families)].family, k, panel ? 4 : 2,
                             k + 1, k ? "notitle" : "title 'diverged (some trial)'");
        used += snprintf(body + used, sizeof body - (size_t)used, "\n");
    }
    return figures_plot(cs->dir, "sweep", body, 1100, 450, err);
}

/* ---- reconstructions ----------------------------------------------------------------------- */

/* Reconstructions of the first images of ds by trial 0 of arm a into out. */
static int reconstruct_arm(const compare_set *cs, int a, const anamo_dataset *ds, int count,
                           float *out, anamo_err *err)
{
    char path[4300];
    compare_run_dir(cs, a, 0, path, sizeof path);
    strcat(path, "/model.safetensors");
    if (!cli_file_exists(path)) { /* diverged before its first checkpoint: a blank row */
        fprintf(stderr, "anamo: %s: none (the run diverged early); its row is blank\n", path);
        memset(out, 0, sizeof *out * (size_t)count * (size_t)ds->dim);
        return ANAMO_OK;
    }
    anamo_model *m = NULL;
    int rc = anamo_checkpoint_load_model(path, count, &m, err);
    if (!rc)
        rc = anamo_model_reconstruct(m, ds, 0, count, out, err);
    anamo_model_free(m);
    return rc;
}

static int reconstructions(const compare_set *cs, const anamo_dataset *ds, anamo_err *err)
{
    const int n = cs->narms, count = ds->n < FIG_GRID_COUNT ? (int)ds->n : FIG_GRID_COUNT;
    const float **bands = malloc(sizeof *bands * (size_t)(n + 1));
    float *buf = malloc((size_t)(n + 1) * (size_t)count * (size_t)ds->dim * sizeof *buf);
    int rc = bands && buf ? ANAMO_OK : anamo_fail(err, ANAMO_ERR_NOMEM, "figures: out of memory");
    if (!rc) {
        anamo_data_rows(ds, 0, count, buf);
        bands[0] = buf;
    }
    for (int i = 0; !rc && i < n; i++) {
        float *band = buf + (size_t)(i + 1) * (size_t)count * (size_t)ds->dim;
        rc = reconstruct_arm(cs, i, ds, count, band, err);
        bands[i + 1] = band;
    }
    char path[4200];
    snprintf(path, sizeof path, "%s/reconstructions.png", cs->dir);
    if (!rc)
        rc = anamo_image_grid_png(path, bands, n + 1, count, ds->c, ds->h, ds->w, count, err);
    free(buf);
    free(bands);
    return rc;
}

static int reconstructions_figure(const compare_set *cs, anamo_err *err)
{
    anamo_dataset ds;
    int rc = cli_open_data(cs->test_spec, &ds, err);
    if (rc)
        return rc;
    if (ds.h * ds.w > 1) /* images; vectors have no picture */
        rc = reconstructions(cs, &ds, err);
    anamo_dataset_free(&ds);
    return rc;
}

int figures_compare(const compare_set *cs, anamo_err *err)
{
    csv_columns *runs = calloc((size_t)cs->trials, sizeof *runs);
    if (!runs)
        return anamo_fail(err, ANAMO_ERR_NOMEM, "figures: out of memory");
    int rc = training_loss_figure(cs, runs, err);
    if (!rc)
        rc = epoch_loss_figure(cs, runs, err);
    free(runs);
    if (!rc && cs->sweep_key[0] && sweep_is_positive(cs))
        rc = sweep_figure(cs, err);
    if (!rc && cs->test_spec[0])
        rc = reconstructions_figure(cs, err);
    if (!rc && !strncmp(cs->train_spec, "steps", 5))
        rc = figures_steps(cs, err);
    return rc;
}
