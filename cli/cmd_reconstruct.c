/* cmd_reconstruct.c — anamo reconstruct: a PNG of samples above their reconstructions. */
#include "cli.h"

#include <stdlib.h>

static const char USAGE[] =
    "usage: anamo reconstruct MODEL --data SPEC -o grid.png [--count N] [--cols N]\n"
    "\n"
    "Draws the first N samples of SPEC (default 32), COLS per row (default 8), each row of\n"
    "originals directly above the row of their reconstructions D(E(x)).\n";

#define DEFAULT_COUNT 32
#define DEFAULT_COLS 8

int cmd_reconstruct(int argc, char **argv, anamo_dist *dist)
{
    (void)dist; /* rank 0 alone runs it (main.c) */
    model_args a = {.count = DEFAULT_COUNT, .cols = DEFAULT_COLS};
    int rc = cli_model_args(argc, argv, USAGE, &a);
    if (rc)
        return rc < 0 ? EXIT_OK : rc;
    if (!a.out)
        return cli_usage_error(USAGE, "reconstruct: missing -o grid.png");
    anamo_model *m;
    anamo_dataset ds;
    if ((rc = cli_load_model_data(&a, &m, &ds)))
        return rc;
    anamo_err err = {0};
    int count = a.count < ds.n ? a.count : (int)ds.n;
    size_t floats = (size_t)count * (size_t)ds.dim;
    float *orig = malloc(floats * sizeof *orig), *recon = malloc(floats * sizeof *recon);
    rc = orig && recon ? ANAMO_OK
                       : anamo_err_set(&err, ANAMO_ERR_NOMEM, "reconstruct: out of memory");
    if (!rc && ds.h * ds.w == 1)
        rc = anamo_err_set(&err, ANAMO_ERR_ARG,
                           "%s: samples are vectors, not images; nothing to draw", a.data);
    if (!rc)
        rc = anamo_model_reconstruct(m, &ds, 0, count, recon, &err);
    if (!rc)
        rc = anamo_dataset_rows(&ds, 0, count, orig, &err);
    if (!rc) {
        const float *bands[2] = {orig, recon};
        rc = anamo_image_grid_png(a.out, bands, 2, count, ds.c, ds.h, ds.w, a.cols, &err);
    }
    if (!rc)
        printf("%s: %d samples (top) and their reconstructions (below)\n", a.out, count);
    free(orig);
    free(recon);
    anamo_model_free(m);
    anamo_dataset_free(&ds);
    return rc ? cli_report(&err) : EXIT_OK;
}
