/* figures.h — pictures of a comparison (figures.c). */
#ifndef ANAMO_CLI_FIGURES_H
#define ANAMO_CLI_FIGURES_H

#include "anamo.h"

/* DIR/losses.dat (one block per arm: epoch, train loss, test loss), DIR/losses.gp and, through
 * gnuplot, DIR/losses.png and DIR/losses.svg. */
int figures_loss_curves(const char *dir, char names[][ANAMO_NAME_MAX], int n, anamo_err *err);
/* DIR/reconstructions.png: the first test images, then each arm's reconstructions below. */
int figures_reconstructions(const char *dir, char names[][ANAMO_NAME_MAX], int n,
                            const char *test_spec, anamo_err *err);

#endif
