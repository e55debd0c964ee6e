/* figures.c — the pictures of a comparison: loss curves through gnuplot (the data file and the
 * script are kept beside the PNG and SVG, so a figure can be redrawn or restyled) and a grid of
 * test images above each arm's reconstructions. */
#include "cli.h"
#include "data/data.h"
#include "figures.h"

#include <stdlib.h>
#include <string.h>

#define FIG_LINE_MAX 4096
#define FIG_GRID_COUNT 10

/* Copies epoch, train_loss and test_loss rows of RUN/epochs.csv into out as "e train test". */
static int copy_epochs(const char *run_dir, FILE *out, anamo_err *err)
{
    char path[4200], line[FIG_LINE_MAX];
    snprintf(path, sizeof path, "%s/epochs.csv", run_dir);
    FILE *f = fopen(path, "r");
    if (!f)
        return anamo_fail(err, ANAMO_ERR_IO, "%s: cannot open", path);
    int rows = 0;
    while (fgets(line, sizeof line, f)) {
        if (rows++ == 0)
            continue; /* header */
        char *fields[6] = {0}, *save = NULL, *tok = strtok_r(line, ",", &save);
        for (int k = 0; tok && k < 6; k++, tok = strtok_r(NULL, ",", &save))
            fields[k] = tok;
        if (fields[5])
            fprintf(out, "%s %s %s\n", fields[0], fields[2], fields[5]);
    }
    fclose(f);
    return ANAMO_OK;
}

static void write_script(FILE *gp, char names[][ANAMO_NAME_MAX], int n, const char *terminal,
                         const char *output)
{
    fprintf(gp, "set terminal %s size 800,500\nset output '%s'\n", terminal, output);
    fprintf(gp, "set xlabel 'epoch'\nset ylabel 'loss'\nset logscale y\nset key top right\n"
                "set grid\n");
    fprintf(gp, "plot ");
    for (int i = 0; i < n; i++)
        fprintf(gp, "%s'losses.dat' index %d using 1:2 with linespoints title '%s train', "
                    "'' index %d using 1:3 with lines dashtype 2 title '%s test'",
                i ? ", \\\n     " : "", i, names[i], i, names[i]);
    fprintf(gp, "\n");
}

int figures_loss_curves(const char *dir, char names[][ANAMO_NAME_MAX], int n, anamo_err *err)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/losses.dat", dir);
    FILE *dat = fopen(path, "w");
    if (!dat)
        return anamo_fail(err, ANAMO_ERR_IO, "%s: cannot write", path);
    int rc = ANAMO_OK;
    for (int i = 0; !rc && i < n; i++) {
        char run[4200];
        snprintf(run, sizeof run, "%s/%s", dir, names[i]);
        fprintf(dat, "%s# %s: epoch train_loss test_loss\n", i ? "\n\n" : "", names[i]);
        rc = copy_epochs(run, dat, err);
    }
    fclose(dat);
    snprintf(path, sizeof path, "%s/losses.gp", dir);
    FILE *gp = rc ? NULL : fopen(path, "w");
    if (!rc && !gp)
        rc = anamo_fail(err, ANAMO_ERR_IO, "%s: cannot write", path);
    if (rc)
        return rc;
    write_script(gp, names, n, "pngcairo", "losses.png");
    write_script(gp, names, n, "svg", "losses.svg");
    fclose(gp);
    char cmd[8600];
    snprintf(cmd, sizeof cmd, "cd '%s' && gnuplot losses.gp 2>/dev/null", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "anamo: gnuplot did not run; %s/losses.dat and losses.gp are there to "
                        "plot by hand\n", dir);
    return ANAMO_OK;
}

/* Reconstructions of the first images of ds by the model in dir/name into out. */
static int reconstruct_arm(const char *dir, const char *name, const anamo_dataset *ds, int count,
                           float *out, anamo_err *err)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/%s/model.safetensors", dir, name);
    anamo_model *m;
    int rc = anamo_checkpoint_load_model(path, count, &m, err);
    if (!rc)
        rc = anamo_model_reconstruct(m, ds, 0, count, out, err);
    anamo_model_free(m);
    return rc;
}

int figures_reconstructions(const char *dir, char names[][ANAMO_NAME_MAX], int n,
                            const char *test_spec, anamo_err *err)
{
    anamo_dataset ds;
    int rc = cli_open_data(test_spec, &ds, err);
    if (rc)
        return rc;
    if (ds.h * ds.w == 1) { /* vectors: nothing to draw */
        anamo_dataset_free(&ds);
        return ANAMO_OK;
    }
    const int count = ds.n < FIG_GRID_COUNT ? (int)ds.n : FIG_GRID_COUNT;
    const float *bands[1 + 16];
    float *buf = malloc((size_t)(n + 1) * (size_t)count * (size_t)ds.dim * sizeof *buf);
    if (!buf || n > 16) {
        free(buf);
        anamo_dataset_free(&ds);
        return anamo_fail(err, ANAMO_ERR_NOMEM, "figures: out of memory");
    }
    anamo_data_rows(&ds, 0, count, buf);
    bands[0] = buf;
    for (int i = 0; !rc && i < n; i++) {
        float *band = buf + (size_t)(i + 1) * (size_t)count * (size_t)ds.dim;
        rc = reconstruct_arm(dir, names[i], &ds, count, band, err);
        bands[i + 1] = band;
    }
    char path[4200];
    snprintf(path, sizeof path, "%s/reconstructions.png", dir);
    if (!rc)
        rc = anamo_image_grid_png(path, bands, n + 1, count, ds.c, ds.h, ds.w, count, err);
    free(buf);
    anamo_dataset_free(&ds);
    return rc;
}
