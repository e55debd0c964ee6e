/* omp_env.c — a short OpenMP spin before waiting threads sleep.
 *
 * libgomp's threads spin for GOMP_SPINCOUNT iterations (300,000 by default, about a
 * millisecond) at every barrier before they sleep. Training runs thousands of short parallel
 * regions per second; on a machine with one core busy elsewhere, a thread that spins while its
 * partner is descheduled burns its whole time slice. Measured on this project's 2-core machine
 * (MNIST joint, 2 threads): idle, 90,000–125,000 samples/s with either spin; with one core
 * busy elsewhere, 2,500–16,000 with libgomp's default and 33,000–50,000 with a spin of 1,000
 * (OMP_WAIT_POLICY=passive: 57,000 loaded, but 40% slower idle).
 * libgomp reads the variable once, when the program starts, so a program sets it by running
 * itself again: anamo_omp_prefer_short_spin does that, unless the user chose a spin count or
 * a wait policy. */
#include "anamo.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define ANAMO_SPINCOUNT "1000"
#define ANAMO_SPIN_MARK "ANAMO_OMP_ENV_SET"

void anamo_omp_prefer_short_spin(char **argv)
{
    if (getenv("GOMP_SPINCOUNT") || getenv("OMP_WAIT_POLICY") || getenv(ANAMO_SPIN_MARK))
        return;
    if (setenv("GOMP_SPINCOUNT", ANAMO_SPINCOUNT, 0) || setenv(ANAMO_SPIN_MARK, "1", 0))
        return;
    execv("/proc/self/exe", argv);
    /* exec failed (no /proc): carry on with libgomp's defaults */
}
