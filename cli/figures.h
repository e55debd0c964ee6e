/* figures.h — pictures of a comparison. Each figure NAME is drawn by gnuplot from DIR/NAME.dat
 * through DIR/NAME.gp into DIR/NAME.png and DIR/NAME.svg; the data and the script are kept, so
 * a figure can be checked, redrawn or restyled. The reconstruction grid is a PNG drawn directly,
 * and again by gnuplot with its rows named (its data: raw RGB bytes, NAME.rgb). */
#ifndef ANAMO_CLI_FIGURES_H
#define ANAMO_CLI_FIGURES_H

#include "anamo.h"
#include "compare.h"

#include <stdio.h>

/* Every figure that applies to the comparison:
 *   training-loss   training loss against iteration, mean over trials, every arm on one axis:
 *                   colour the phase's block (decoder blue, encoder red, joint green; seed
 *                   000's Figure 1), dash and point type the arm, a key entry for each; log y
 *                   when the means are positive and span more than a decade
 *   epoch-loss      test (solid, ± sd) and training (dashed) loss per epoch, mean over trials
 *   sweep           with [compare] sweep: final test loss and code ℓ1 against the swept value
 *   reconstructions.png   test images, then each arm's reconstructions (trial 0; images only)
 *   reconstructions-labelled   the same grid magnified by an integer (crisp), its rows named
 *                   "original" and by arm; data reconstructions-labelled.rgb
 *   step figures    on step-function data (figures_steps.c)  */
int figures_compare(const compare_set *cs, anamo_err *err);

/* Writes DIR/NAME.gp (body once for PNG, once for SVG) and runs gnuplot in DIR. Missing gnuplot
 * is a warning: the .dat and .gp stay. */
int figures_plot(const char *dir, const char *name, const char *body, int width, int height,
                 anamo_err *err);

/* DIR/FILE opened for writing; NULL (err filled) when it cannot be. */
FILE *figures_open_dat(const char *dir, const char *file, anamo_err *err);
/* Closes it; a failed write or close becomes an I/O error naming the file, unless rc already
 * holds one. Returns the resulting status. */
int figures_close_dat(FILE *f, const char *dir, const char *file, int rc, anamo_err *err);
/* A gnuplot script built in memory (cli_text_open, FIG_SCRIPT_MAX bytes), and its close:
 * a cut script becomes an error unless rc already holds one; *body is then NULL. */
#define FIG_SCRIPT_MAX ((size_t)1 << 20)
FILE *figures_script_open(char **body);
int figures_close_script(FILE *b, char **body, int rc, anamo_err *err);

/* One column of numbers per name from a CSV file with a header, rows in file order; text
 * (optional) receives column text_column as strings. */
typedef struct csv_columns {
    int nrows, ncols;
    double *num;      /* nrows × ncols */
    char (*text)[16]; /* nrows, or NULL */
} csv_columns;
int figures_read_csv(const char *path, const char *const *names, int ncols, const char *text_column,
                     csv_columns *out, anamo_err *err);
void figures_csv_free(csv_columns *c);

/* Step-function figures (figures_steps.c): code against step position, first-layer weights,
 * reconstructions and per-position error, for trial 0 of every arm. */
int figures_steps(const compare_set *cs, anamo_err *err);

#endif
