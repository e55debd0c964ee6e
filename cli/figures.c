/* figures.c — the pictures of a comparison (see figures.h): data files averaged over trials,
 * gnuplot scripts beside them, and the reconstruction grid, plain and labelled. */
#include "cli.h"
#include "figures.h"

#include <math.h>
#include <stb_image.h>
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
        return anamo_err_set(err, ANAMO_ERR_IO, "%s: cannot write", path);
    /* vfprintf can fail on its own (an allocation for a long %s) without marking the stream */
    int bad = fprintf(gp, "# anamo: redraw with  gnuplot %s.gp  (in this directory)\n", name) < 0;
    bad |= fprintf(gp,
                   "set terminal pngcairo size %d,%d\nset output '%s.png'\n%s\n"
                   "unset multiplot\n",
                   width, height, name, body) < 0;
    bad |= fprintf(gp, "set terminal svg size %d,%d\nset output '%s.svg'\n%s\nunset multiplot\n",
                   width, height, name, body) < 0;
    bad |= ferror(gp) != 0;
    if (fclose(gp) != 0 || bad)
        return anamo_err_set(err, ANAMO_ERR_IO, "%s: cannot write", path);
    char cmd[8600];
    snprintf(cmd, sizeof cmd, "cd '%s' && gnuplot %s.gp 2>/dev/null", dir, name);
    if (system(cmd) != 0)
        fprintf(stderr,
                "anamo: gnuplot did not run; %s/%s.dat and %s.gp are there to plot by "
                "hand\n",
                dir, name, name);
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
static void read_row(char *line, const int *cols, int ncols, int text_col, double *num, char *text)
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
        return anamo_err_set(err, ANAMO_ERR_FORMAT, "%s: empty", path);
    for (int k = 0; k <= ncols; k++) {
        const char *name = k < ncols ? names[k] : text_column;
        if (!name)
            continue;
        memcpy(copy, line, sizeof line);
        int c = column_of(copy, name);
        if (c < 0)
            return anamo_err_set(err, ANAMO_ERR_FORMAT, "%s: no column '%s'", path, name);
        *(k < ncols ? &cols[k] : text_col) = c;
    }
    return ANAMO_OK;
}

int figures_read_csv(const char *path, const char *const *names, int ncols, const char *text_column,
                     csv_columns *out, anamo_err *err)
{
    memset(out, 0, sizeof *out);
    out->ncols = ncols;
    FILE *f = fopen(path, "r");
    if (!f)
        return anamo_err_set(err, ANAMO_ERR_IO, "%s: cannot open", path);
    int cols[16], text_col = -1, cap = 0;
    int rc = ncols <= 16 ? find_columns(f, path, names, ncols, text_column, cols, &text_col, err)
                         : anamo_err_set(err, ANAMO_ERR_ARG, "%s: too many columns", path);
    char line[FIG_LINE_MAX];
    while (!rc && fgets(line, sizeof line, f)) {
        if (out->nrows == cap) {
            cap = cap ? 2 * cap : 256;
            double *num = realloc(out->num, sizeof *num * (size_t)cap * (size_t)ncols);
            char(*text)[16] = text_column ? realloc(out->text, sizeof *text * (size_t)cap) : NULL;
            out->num = num ? num : out->num;
            out->text = text ? text : out->text;
            if (!num || (text_column && !text)) {
                rc = anamo_err_set(err, ANAMO_ERR_NOMEM, "%s: out of memory", path);
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
static int read_trials(const compare_set *cs, int arm, const char *file, const char *const *names,
                       int ncols, const char *text_column, csv_columns *runs, int *rows,
                       anamo_err *err)
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
static void mean_sd(const csv_columns *runs, int trials, int r, int col, double *mean, double *sd)
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
        anamo_err_set(err, ANAMO_ERR_IO, "%s: cannot write", path);
    return f;
}

int figures_close_dat(FILE *f, const char *dir, const char *file, int rc, anamo_err *err)
{
    const int bad = ferror(f) != 0;
    if (fclose(f) != 0 || bad) {
        if (!rc)
            rc = anamo_err_set(err, ANAMO_ERR_IO, "%s/%s: cannot write", dir, file);
    }
    return rc;
}

FILE *figures_script_open(char **body) { return cli_text_open(body, FIG_SCRIPT_MAX); }

int figures_close_script(FILE *b, char **body, int rc, anamo_err *err)
{
    if (cli_text_close(b, body, FIG_SCRIPT_MAX) && !rc)
        rc = anamo_err_set(err, ANAMO_ERR_NOMEM,
                           "figures: a gnuplot script could not be made "
                           "(out of memory, or longer than %zu bytes)",
                           FIG_SCRIPT_MAX);
    return rc;
}

static void free_runs(csv_columns *runs, int trials)
{
    for (int t = 0; t < trials; t++)
        figures_csv_free(&runs[t]);
}

/* ---- training loss by iteration: every arm on one axis, coloured by phase ------------------ */

/* The colour of each block's phases: decoder blue, encoder red, joint green, as in seed 000's
 * Figure 1; ANAMO purple, free codes orange. */
static const struct {
    const char *block, *title;
    unsigned rgb;
} BLOCK_COLOURS[] = {{"decoder", "decoder phase", 0x1f77b4},
                     {"encoder", "encoder phase", 0xd62728},
                     {"both", "joint step", 0x2ca02c},
                     {"anamo", "ANAMO step", 0x9467bd},
                     {"freecodes", "free-codes step", 0xff7f0e}};
#define NBLOCK_COLOURS (int)(sizeof BLOCK_COLOURS / sizeof BLOCK_COLOURS[0])

/* Colour says the block, so arms differ by dash type and point type; the two cycle at coprime
 * periods, so the first 35 arms all differ in one or the other. */
static const int ARM_DASH[] = {1, 2, 4, 5, 3};
static const int ARM_POINT[] = {7, 5, 9, 11, 13, 6, 4};
#define NDASH (int)(sizeof ARM_DASH / sizeof ARM_DASH[0])
#define NPOINT (int)(sizeof ARM_POINT / sizeof ARM_POINT[0])
#define LOSS_MARKS 8     /* markers along each curve, spread so arms' markers interleave */
#define LOSS_MANY_ARMS 6 /* beyond this many arms the key's font is smaller */

static int block_index(const char *block)
{
    for (int i = 0; i < NBLOCK_COLOURS; i++)
        if (!strcmp(block, BLOCK_COLOURS[i].block))
            return i;
    return 2; /* joint */
}

/* What the script needs from the data: the blocks any phase updates, the range of the means
 * (a log axis needs them positive), each arm's number of rows. */
typedef struct loss_summary {
    unsigned seen;
    double lo, hi;
    int *rows;
} loss_summary;

static void loss_row(FILE *dat, const csv_columns *runs, int trials, int r, loss_summary *s)
{
    double mean, sd;
    mean_sd(runs, trials, r, 1, &mean, &sd);
    int b = block_index(runs[0].text[r]);
    s->seen |= 1u << b;
    if (isfinite(mean))
        s->lo = fmin(s->lo, mean), s->hi = fmax(s->hi, mean);
    fprintf(dat, "%.0f %.8g %.8g %u\n", runs[0].num[2 * r], mean, sd, BLOCK_COLOURS[b].rgb);
}

/* Writes the mean curves, a block per arm. */
static int training_loss_data(const compare_set *cs, FILE *dat, csv_columns *runs, loss_summary *s,
                              anamo_err *err)
{
    static const char *const COLS[] = {"iteration", "loss"};
    int rc = ANAMO_OK;
    for (int a = 0; !rc && a < cs->narms; a++) {
        rc = read_trials(cs, a, "metrics.csv", COLS, 2, "block", runs, &s->rows[a], err);
        fprintf(dat,
                "%s# %s: iteration, mean training loss over %d trials, sd, colour of the "
                "phase's block\n",
                a ? "\n\n" : "", cs->arms[a].name, cs->trials);
        for (int r = 0; !rc && r < s->rows[a]; r++)
            loss_row(dat, runs, cs->trials, r, s);
        free_runs(runs, cs->trials);
    }
    return rc;
}

/* Arm a's curve coloured by block, its markers, and a grey key sample of its line style. */
static void training_loss_arm(FILE *b, const compare_set *cs, int a, int rows)
{
    const int dash = ARM_DASH[a % NDASH], point = ARM_POINT[a % NPOINT];
    const int every = rows > LOSS_MARKS ? rows / LOSS_MARKS : 1;
    fprintf(b,
            "%s'training-loss.dat' index %d using 1:2:4 with lines lc rgb variable dt %d "
            "lw 2 notitle, \\\n  '' index %d every %d::%d using 1:2:4 with points "
            "lc rgb variable pt %d ps 1.2 notitle, \\\n  NaN with linespoints lc rgb "
            "'#404040' dt %d lw 2 pt %d ps 1.2 title '%s'",
            a ? ", \\\n  " : "", a, dash, a, every, a * every / cs->narms, point, dash, point,
            cs->arms[a].name);
}

static void training_loss_script(FILE *b, const compare_set *cs, const loss_summary *s)
{
    const int logy = s->lo > 0 && s->hi > 10 * s->lo; /* positive, over more than a decade */
    fprintf(b,
            "set grid\nset xlabel 'iteration'\nset ylabel 'training loss%s'\n%s"
            "set key outside right top vertical Left reverse noenhanced%s\n"
            "set title 'training loss, mean of %d trial%s: line style the arm, colour the "
            "block the phase updates'\nplot ",
            logy ? " (log scale)" : "", logy ? "set logscale y\n" : "",
            cs->narms > LOSS_MANY_ARMS ? " font ',9' spacing 0.9" : "", cs->trials,
            cs->trials == 1 ? "" : "s");
    fputs("NaN with lines lt nodraw title 'arm (line style)', \\\n  ", b);
    for (int a = 0; a < cs->narms; a++)
        training_loss_arm(b, cs, a, s->rows[a]);
    fputs(", \\\n  NaN with lines lt nodraw title ' ', NaN with lines lt nodraw title "
          "'phase (colour)'",
          b);
    for (int i = 0; i < NBLOCK_COLOURS; i++) /* a key entry per block some arm updates */
        if (s->seen & (1u << i))
            fprintf(b, ", \\\n  NaN with lines lc rgb '#%06x' lw 4 title '%s'",
                    BLOCK_COLOURS[i].rgb, BLOCK_COLOURS[i].title);
    fputs("\n", b);
}

static int training_loss_figure(const compare_set *cs, csv_columns *runs, anamo_err *err)
{
    loss_summary s = {.lo = INFINITY,
                      .hi = -INFINITY,
                      .rows = calloc((size_t)cs->narms, sizeof *s.rows)};
    FILE *dat = s.rows ? figures_open_dat(cs->dir, "training-loss.dat", err) : NULL;
    int rc = !s.rows ? anamo_err_set(err, ANAMO_ERR_NOMEM, "figures: out of memory")
             : !dat  ? err->code
                     : training_loss_data(cs, dat, runs, &s, err);
    if (dat)
        rc = figures_close_dat(dat, cs->dir, "training-loss.dat", rc, err);
    char *body = NULL;
    FILE *b = rc ? NULL : figures_script_open(&body);
    if (!rc && !b)
        rc = anamo_err_set(err, ANAMO_ERR_NOMEM, "figures: out of memory");
    if (!rc) {
        training_loss_script(b, cs, &s);
        rc = figures_close_script(b, &body, rc, err);
    }
    if (!rc)
        rc = figures_plot(cs->dir, "training-loss", body, 1100, 560, err);
    free(body);
    free(s.rows);
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
            fprintf(dat, "%.0f %.8g %.8g %.8g %.8g\n", runs[0].num[3 * r], train, train_sd, test,
                    test_sd);
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
    rc = figures_close_dat(dat, cs->dir, "epoch-loss.dat", rc, err);
    if (rc)
        return rc;
    char *body = NULL;
    FILE *b = figures_script_open(&body);
    if (!b)
        return anamo_err_set(err, ANAMO_ERR_NOMEM, "figures: out of memory");
    fprintf(b, "set logscale y\nset grid\nset xlabel 'epoch'\nset ylabel 'loss'\n"
               "set key outside right\nset title 'test (solid, ± sd over trials) and training "
               "(dashed) loss'\nplot ");
    for (int a = 0; a < cs->narms; a++)
        fprintf(b,
                "%s'epoch-loss.dat' index %d using 1:4:5 with yerrorlines lc %d title "
                "'%s' noenhanced, '' index %d using 1:2 with lines dashtype 2 lc %d notitle",
                a ? ", \\\n  " : "", a, a + 1, cs->arms[a].name, a, a + 1);
    fputs("\n", b);
    rc = figures_close_script(b, &body, ANAMO_OK, err);
    if (!rc)
        rc = figures_plot(cs->dir, "epoch-loss", body, 900, 520, err);
    free(body);
    return rc;
}

/* ---- the sweep ----------------------------------------------------------------------------- */

static double stat_of(const cJSON *arm, const char *metric, const char *which)
{
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(arm, "metrics");
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(m, metric),
                                                      which);
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
    cJSON_Delete(root);
    if ((rc = figures_close_dat(dat, cs->dir, "sweep.dat", ANAMO_OK, err)))
        return rc;
    char body[8192];
    int used = snprintf(body, sizeof body,
                        "set multiplot layout 1,2\nset logscale xy\nset grid\nset xlabel '%s' "
                        "noenhanced\nset key top left\nset format x '10^{%%L}'\n"
                        "set format y '%%g'\n",
                        cs->sweep_key);
    for (int panel = 0; panel < 2; panel++) {
        used += snprintf(body + used, sizeof body - (size_t)used, "set ylabel '%s'\n%splot ",
                         panel ? "test code l1 (0 not drawn)" : "final test loss",
                         panel ? "set format y '10^{%L}'\n" : "");
        for (int k = 0; k < families && used < (int)sizeof body - 512; k++)
            used += snprintf(body + used, sizeof body - (size_t)used,
                             "%s'sweep.dat' index %d using 1:%d with linespoints lc %d title "
                             "'%s' noenhanced, '' index %d using 1:($6 > 0 ? $%d : NaN) with "
                             "points pt 6 ps 2.5 lc %d %s",
                             k ? ", " : "", k, panel ? 4 : 2, k + 1,
                             cs->arms[k * (cs->narms / families)].family, k, panel ? 4 : 2, k + 1,
                             k ? "notitle" : "title 'diverged (some trial)'");
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

/* The labelled grid: reconstructions.png magnified s× (each pixel an s × s block) as raw RGB
 * bytes in reconstructions-labelled.rgb, drawn by gnuplot one data pixel to one picture pixel,
 * so neither PNG nor SVG smooths it, with each band's name to its left. */
#define LABEL_TARGET_WIDTH 720 /* the grid is magnified to about this many pixels wide */
#define LABEL_CHAR_PX 9        /* room per character of a row label */
#define LABEL_MARGIN_PX 12
#define LABEL_TITLE_PX 32

/* Writes the grid PNG's pixels magnified into the .rgb file; w, h: the magnified size. */
static int labelled_grid_pixels(const compare_set *cs, const char *png, int *w, int *h, int *s,
                                anamo_err *err)
{
    int comp, gw, gh;
    unsigned char *px = stbi_load(png, &gw, &gh, &comp, 3); /* grey becomes R = G = B */
    if (!px)
        return anamo_err_set(err, ANAMO_ERR_IO, "%s: cannot read back: %s", png,
                             stbi_failure_reason());
    *s = gw < LABEL_TARGET_WIDTH ? LABEL_TARGET_WIDTH / gw : 1;
    *w = *s * gw, *h = *s * gh;
    unsigned char *row = malloc((size_t)*w * 3);
    FILE *f = row ? figures_open_dat(cs->dir, "reconstructions-labelled.rgb", err) : NULL;
    int rc = !row ? anamo_err_set(err, ANAMO_ERR_NOMEM, "figures: out of memory")
             : !f ? err->code
                  : ANAMO_OK;
    for (int y = 0; !rc && y < *h; y++) {
        for (int x = 0; x < *w; x++)
            memcpy(row + 3 * x, px + 3 * ((size_t)(y / *s) * (size_t)gw + (size_t)(x / *s)), 3);
        if (fwrite(row, 3, (size_t)*w, f) != (size_t)*w)
            rc = anamo_err_set(err, ANAMO_ERR_IO, "%s/reconstructions-labelled.rgb: cannot write",
                               cs->dir);
    }
    if (f && fclose(f) && !rc)
        rc = anamo_err_set(err, ANAMO_ERR_IO, "%s/reconstructions-labelled.rgb: cannot write",
                           cs->dir);
    free(row);
    stbi_image_free(px);
    return rc;
}

/* Labels the grid's bands, one row of tiles each: "original", then every arm. */
static void labelled_grid_script(FILE *b, const compare_set *cs, int w, int h, int s, int left,
                                 int width, int height)
{
    /* the plot area is exactly the w × h data pixels, from pixel centre 0 to w − 1 */
    fprintf(b,
            "# reconstructions-labelled.rgb: reconstructions.png magnified %d×, %d × %d RGB "
            "bytes, top row first\nunset border\nunset tics\nunset key\nunset colorbox\n"
            "set lmargin at screen %.8f\nset rmargin at screen %.8f\n"
            "set tmargin at screen %.8f\nset bmargin at screen %.8f\n"
            "set xrange [-0.5:%d.5]\nset yrange [%d.5:-0.5]\nset label 'test images and "
            "their reconstructions (trial 0 of each arm)' at screen 0.5, screen %.8f center\n",
            s, w, h, (double)left / width, (double)(left + w) / width,
            1.0 - (double)LABEL_TITLE_PX / height, (double)LABEL_MARGIN_PX / height, w - 1, h - 1,
            1.0 - 0.5 * LABEL_TITLE_PX / height);
    const int nbands = cs->narms + 1;
    const double band_h = (double)(h - s) / nbands; /* a row of tiles and the gap above it */
    for (int i = 0; i < nbands; i++)                /* at the middle of the band's tiles */
        fprintf(b,
                "set label '%s' at graph 0, first %.1f right offset character -1, 0 "
                "noenhanced\n",
                i ? cs->arms[i - 1].name : "original", band_h * (i + 0.5) + 0.5 * s);
    fprintf(b,
            "plot 'reconstructions-labelled.rgb' binary array=(%d,%d) "
            "format='%%uchar%%uchar%%uchar' with rgbimage\n",
            w, h);
}

static int labelled_grid_figure(const compare_set *cs, const char *png, anamo_err *err)
{
    int w = 0, h = 0, s = 1, rc = labelled_grid_pixels(cs, png, &w, &h, &s, err);
    if (rc)
        return rc;
    size_t longest = strlen("original");
    for (int a = 0; a < cs->narms; a++)
        longest = strlen(cs->arms[a].name) > longest ? strlen(cs->arms[a].name) : longest;
    const int left = LABEL_MARGIN_PX + (int)(longest + 1) * LABEL_CHAR_PX; /* + the offset */
    const int width = left + w + LABEL_MARGIN_PX, height = LABEL_TITLE_PX + h + LABEL_MARGIN_PX;
    char *body = NULL;
    FILE *b = figures_script_open(&body);
    if (!b)
        return anamo_err_set(err, ANAMO_ERR_NOMEM, "figures: out of memory");
    labelled_grid_script(b, cs, w, h, s, left, width, height);
    rc = figures_close_script(b, &body, ANAMO_OK, err);
    if (!rc)
        rc = figures_plot(cs->dir, "reconstructions-labelled", body, width, height, err);
    free(body);
    return rc;
}

static int reconstructions(const compare_set *cs, const anamo_dataset *ds, anamo_err *err)
{
    const int n = cs->narms, count = ds->n < FIG_GRID_COUNT ? (int)ds->n : FIG_GRID_COUNT;
    const float **bands = malloc(sizeof *bands * (size_t)(n + 1));
    float *buf = malloc((size_t)(n + 1) * (size_t)count * (size_t)ds->dim * sizeof *buf);
    int rc = bands && buf ? ANAMO_OK
                          : anamo_err_set(err, ANAMO_ERR_NOMEM, "figures: out of memory");
    if (!rc)
        rc = anamo_dataset_rows(ds, 0, count, buf, err);
    if (!rc)
        bands[0] = buf;
    for (int i = 0; !rc && i < n; i++) {
        float *band = buf + (size_t)(i + 1) * (size_t)count * (size_t)ds->dim;
        rc = reconstruct_arm(cs, i, ds, count, band, err);
        bands[i + 1] = band;
    }
    char path[4200];
    snprintf(path, sizeof path, "%s/reconstructions.png", cs->dir);
    if (!rc)
        rc = anamo_image_grid_png(path, bands, n + 1, count, ds->c, ds->h, ds->w, count, err);
    if (!rc)
        rc = labelled_grid_figure(cs, path, err);
    free(buf);
    free(bands);
    return rc;
}

static int reconstructions_figure(const compare_set *cs, anamo_err *err)
{
    anamo_dataset ds;
    int rc = anamo_run_open_data(cs->test_spec, NULL, &ds, err);
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
        return anamo_err_set(err, ANAMO_ERR_NOMEM, "figures: out of memory");
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
