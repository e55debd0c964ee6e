/* figures_steps.c — seed 002's Figure 2 for step-function data, from trial 0 of every arm:
 * one picture, steps.png/svg, of four panels drawn from four data files:
 *   steps-code.dat          the code against the step position (RUN/positions.csv)
 *   steps-weights.dat       the encoder's first-layer weights against the input position
 *   steps-recon.dat         three step functions (positions N/4, N/2, 3N/4) and each arm's
 *                           reconstructions of them
 *   steps-error.dat         the reconstruction error (MSE of the sample) per step position */
#include "cli.h"
#include "figures.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define STEPS_SHOWN 3
#define UNITS_SHOWN 4

/* Copies each arm's positions.csv (position, code_0, error) into code and error blocks. */
static int code_and_error(const compare_set *cs, anamo_err *err)
{
    static const char *const COLS[] = {"position", "code_0", "error"};
    FILE *code = figures_open_dat(cs->dir, "steps-code.dat", err);
    FILE *error = code ? figures_open_dat(cs->dir, "steps-error.dat", err) : NULL;
    int rc = code && error ? ANAMO_OK : err->code;
    for (int a = 0; !rc && a < cs->narms; a++) {
        char path[4300];
        compare_run_dir(cs, a, 0, path, sizeof path);
        strcat(path, "/positions.csv");
        csv_columns c;
        rc = figures_read_csv(path, COLS, 3, NULL, &c, err);
        fprintf(code, "%s# %s: step position, code unit 0\n", a ? "\n\n" : "", cs->arms[a].name);
        fprintf(error, "%s# %s: step position, MSE of its reconstruction\n", a ? "\n\n" : "",
                cs->arms[a].name);
        for (int r = 0; !rc && r < c.nrows; r++) {
            fprintf(code, "%.0f %.8g\n", c.num[3 * r], c.num[3 * r + 1]);
            fprintf(error, "%.0f %.8g\n", c.num[3 * r], c.num[3 * r + 2]);
        }
        if (!rc)
            figures_csv_free(&c);
    }
    if (code)
        rc = figures_close_dat(code, cs->dir, "steps-code.dat", rc, err);
    if (error)
        rc = figures_close_dat(error, cs->dir, "steps-error.dat", rc, err);
    return rc;
}

static int weights_of_arm(const compare_set *cs, int a, FILE *out, anamo_err *err)
{
    char path[4300];
    compare_run_dir(cs, a, 0, path, sizeof path);
    strcat(path, "/model.safetensors");
    fprintf(out, "%s# %s: input position, first-layer weight of units 0..%d\n", a ? "\n\n" : "",
            cs->arms[a].name, UNITS_SHOWN - 1);
    if (!cli_file_exists(path)) { /* diverged before its first checkpoint: no weights */
        fputs("0 NaN NaN NaN NaN\n", out);
        return ANAMO_OK;
    }
    /* the first linear layer's weights (units × inputs) */
    anamo_model *m = NULL;
    anamo_layer_info l;
    const float *w = NULL;
    int rc = anamo_checkpoint_load_model(path, 1, &m, err);
    if (!rc)
        rc = cli_first_weights(m, 0, &l, &w, err);
    const int64_t units = w ? l.out_dim : 0, inputs = w ? l.in_dim : 0;
    for (int64_t j = 0; j < inputs; j++) {
        fprintf(out, "%lld", (long long)j);
        for (int64_t u = 0; u < UNITS_SHOWN; u++)
            fprintf(out, u < units ? " %.8g" : " NaN", u < units ? (double)w[u * inputs + j] : 0.0);
        fputs("\n", out);
    }
    anamo_model_free(m);
    return rc;
}

static int weights(const compare_set *cs, anamo_err *err)
{
    FILE *out = figures_open_dat(cs->dir, "steps-weights.dat", err);
    int rc = out ? ANAMO_OK : err->code;
    for (int a = 0; !rc && a < cs->narms; a++)
        rc = weights_of_arm(cs, a, out, err);
    if (out)
        rc = figures_close_dat(out, cs->dir, "steps-weights.dat", rc, err);
    return rc;
}

/* Rows STEPS_SHOWN positions of ds, then each arm's reconstructions of them. */
static int reconstruct_steps(const compare_set *cs, const anamo_dataset *ds, int64_t *rows,
                             float *buf, anamo_err *err)
{
    int rc = ANAMO_OK;
    for (int s = 0; !rc && s < STEPS_SHOWN; s++)
        rc = anamo_dataset_rows(ds, rows[s], 1, buf + s * ds->dim, err);
    for (int a = 0; !rc && a < cs->narms; a++) {
        char path[4300];
        compare_run_dir(cs, a, 0, path, sizeof path);
        strcat(path, "/model.safetensors");
        float *band = buf + (size_t)(a + 1) * STEPS_SHOWN * (size_t)ds->dim;
        if (!cli_file_exists(path)) { /* diverged before its first checkpoint */
            for (int64_t i = 0; i < STEPS_SHOWN * ds->dim; i++)
                band[i] = NAN;
            continue;
        }
        anamo_model *m = NULL;
        rc = anamo_checkpoint_load_model(path, 1, &m, err);
        for (int s = 0; !rc && s < STEPS_SHOWN; s++)
            rc = anamo_model_reconstruct(m, ds, rows[s], 1, band + s * ds->dim, err);
        anamo_model_free(m);
    }
    return rc;
}

static int reconstructions(const compare_set *cs, const anamo_dataset *ds, anamo_err *err)
{
    int64_t rows[STEPS_SHOWN];
    for (int s = 0; s < STEPS_SHOWN; s++)
        rows[s] = (ds->n - 1) * (s + 1) / (STEPS_SHOWN + 1);
    float *buf = malloc(sizeof *buf * (size_t)(cs->narms + 1) * STEPS_SHOWN * (size_t)ds->dim);
    int rc = buf ? reconstruct_steps(cs, ds, rows, buf, err)
                 : anamo_err_set(err, ANAMO_ERR_NOMEM, "figures: out of memory");
    FILE *out = rc ? NULL : figures_open_dat(cs->dir, "steps-recon.dat", err);
    rc = rc ? rc : out ? ANAMO_OK : err->code;
    for (int s = 0; !rc && s < STEPS_SHOWN; s++) {
        fprintf(out, "%s# step at position %lld: input position, the step", s ? "\n\n" : "",
                (long long)rows[s]);
        for (int a = 0; a < cs->narms; a++)
            fprintf(out, ", %s", cs->arms[a].name);
        fputs("\n", out);
        for (int64_t j = 0; j < ds->dim; j++) {
            fprintf(out, "%lld", (long long)j);
            for (int b = 0; b <= cs->narms; b++)
                fprintf(out, " %.8g", buf[((size_t)b * STEPS_SHOWN + s) * (size_t)ds->dim + j]);
            fputs("\n", out);
        }
    }
    if (out)
        rc = figures_close_dat(out, cs->dir, "steps-recon.dat", rc, err);
    free(buf);
    return rc;
}

static void panel(FILE *b, const compare_set *cs, const char *title, const char *file,
                  const char *using_fmt)
{
    fprintf(b, "set title '%s'\nplot ", title);
    for (int a = 0; a < cs->narms; a++) {
        fprintf(b, "%s'%s' index %d using ", a ? ", " : "", file, a);
        fprintf(b, using_fmt, 2);
        fprintf(b, " with lines lc %d title '%s' noenhanced", a + 1, cs->arms[a].name);
    }
    fputs("\n", b);
}

static char *script(const compare_set *cs)
{
    char *body = NULL;
    FILE *b = figures_script_open(&body);
    if (!b)
        return NULL;
    fputs("set multiplot layout 2,2\nset grid\nset key top right\n", b);
    fputs("set xlabel 'step position p'\nset ylabel 'code E(x_p)'\n", b);
    panel(b, cs, "code against step position", "steps-code.dat", "1:%d");
    fputs("set xlabel 'input position j'\nset ylabel 'weight'\n", b);
    panel(b, cs, "first-layer weights (unit 0)", "steps-weights.dat", "1:%d");
    fprintf(b, "set title 'step at N/2 and its reconstructions'\nset ylabel 'value'\nplot "
               "'steps-recon.dat' index 1 using 1:2 with lines lw 2 lc rgb 'black' title "
               "'step'");
    for (int a = 0; a < cs->narms; a++)
        fprintf(b, ", '' index 1 using 1:%d with lines lc %d title '%s' noenhanced", a + 3, a + 1,
                cs->arms[a].name);
    fputs("\nset logscale y\nset xlabel 'step position p'\nset ylabel 'MSE'\n", b);
    panel(b, cs, "reconstruction error per position", "steps-error.dat", "1:%d");
    if (cli_text_close(b, &body, FIG_SCRIPT_MAX)) /* no script rather than a cut one */
        return NULL;
    return body;
}

int figures_steps(const compare_set *cs, anamo_err *err)
{
    const char *spec = !strncmp(cs->test_spec, "steps", 5) ? cs->test_spec : cs->train_spec;
    anamo_dataset ds;
    int rc = code_and_error(cs, err);
    if (!rc)
        rc = weights(cs, err);
    if (!rc)
        rc = anamo_run_open_data(spec, NULL, &ds, err);
    if (rc)
        return rc;
    rc = ds.n >= STEPS_SHOWN + 1 ? reconstructions(cs, &ds, err) : ANAMO_OK;
    anamo_dataset_free(&ds);
    char *body = rc ? NULL : script(cs);
    if (!rc)
        rc = body ? figures_plot(cs->dir, "steps", body, 1100, 800, err)
                  : anamo_err_set(err, ANAMO_ERR_NOMEM, "figures: out of memory");
    free(body);
    return rc;
}
