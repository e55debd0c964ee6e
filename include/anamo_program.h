/* anamo_program.h — for programs built on anamo (its command, its benches, the examples), not
 * for libraries that embed it: what main() does first, and the PNG grids the command draws.
 * Both live in the same libanamo; a library that includes only anamo.h never sees them. */
#ifndef ANAMO_PROGRAM_H
#define ANAMO_PROGRAM_H

#include "anamo.h"

#ifdef __cplusplus
extern "C" {
#endif

/* For programs, first thing in main: runs the program again, once, with
 *   GOMP_SPINCOUNT=1000 unless the user set GOMP_SPINCOUNT or OMP_WAIT_POLICY, so that a
 *     second busy process on the machine cannot stall every parallel region, and
 *   OPENBLAS_CORETYPE=<the kernel the CPU's features allow> unless the user set it, when
 *     OpenBLAS chose a weaker one (its SSE3 fallback on CPUs it does not know)
 * (src/program/setup.c, src/core/cpu.c). Returns only if nothing was to be done or exec
 * failed. */
void anamo_program_setup(char **argv);

/* Writes a PNG of `count` images from each of `nbands` arrays (c = 1 grey or 3 RGB planes of
 * h × w, values in [0, 1], clamped), `cols` per row, 1-pixel gaps: each grid row shows the same
 * images of band 0, then of band 1, … one above the other (e.g. originals above their
 * reconstructions by each model). */
int anamo_image_grid_png(const char *path, const float *const *bands, int nbands, int count, int c,
                         int h, int w, int cols, anamo_err *err);

#ifdef __cplusplus
}
#endif
#endif
