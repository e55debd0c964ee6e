/* setup.c — what a program does first: a short OpenMP spin before waiting threads sleep, and
 * the OpenBLAS kernel the CPU allows.
 *
 * libgomp's threads spin for GOMP_SPINCOUNT iterations (300,000 by default, about a
 * millisecond) at every barrier before they sleep. Training runs thousands of short parallel
 * regions per second; on a machine with one core busy elsewhere, a thread that spins while its
 * partner is descheduled burns its whole time slice. Measured on this project's 2-core machine
 * (MNIST joint, 2 threads): idle, 90,000–125,000 samples/s with either spin; with one core
 * busy elsewhere, 2,500–16,000 with libgomp's default and 33,000–50,000 with a spin of 1,000
 * (OMP_WAIT_POLICY=passive: 57,000 loaded, but 40% slower idle).
 * libgomp reads the variable once, when the program starts, so a program sets it by running
 * itself again: anamo_program_setup does that, unless the user chose a spin count or a wait
 * policy.
 *
 * The same restart carries OPENBLAS_CORETYPE when OpenBLAS chose a kernel weaker than the CPU
 * allows (src/core/cpu.h: Debian's 0.3.21 falls back to SSE3 "Prescott" on CPUs it does not
 * know), unless the user set it: OpenBLAS also picks its kernel once, at load. */
#include "anamo_program.h"
#include "core/cpu.h"

#include <stdlib.h>
#include <unistd.h>

#define ANAMO_SPINCOUNT "1000"
#define ANAMO_SPIN_MARK "ANAMO_OMP_ENV_SET"

/* Sets the spin count; returns whether the environment changed. */
static int prefer_short_spin(void)
{
    if (getenv("GOMP_SPINCOUNT") || getenv("OMP_WAIT_POLICY"))
        return 0;
    return setenv("GOMP_SPINCOUNT", ANAMO_SPINCOUNT, 0) == 0 &&
           setenv(ANAMO_SPIN_CHOSEN, ANAMO_SPINCOUNT, 0) == 0;
}

/* Sets OPENBLAS_CORETYPE when the chosen kernel is a fallback; returns whether it did. */
static int prefer_best_kernel(void)
{
    if (getenv("OPENBLAS_CORETYPE"))
        return 0;
    cpu_features f;
    cpu_detect(&f);
    const char *chosen = blas_core(), *force = blas_core_to_force(&f, chosen);
    if (!force)
        return 0;
    return setenv("OPENBLAS_CORETYPE", force, 0) == 0 &&
           setenv(ANAMO_BLAS_FALLBACK, chosen, 0) == 0;
}

void anamo_program_setup(char **argv)
{
    if (getenv(ANAMO_SPIN_MARK))
        return;
    const int spin = prefer_short_spin(), kernel = prefer_best_kernel();
    if (!spin && !kernel)
        return;
    if (setenv(ANAMO_SPIN_MARK, "1", 0))
        return;
    execv("/proc/self/exe", argv);
    /* exec failed (no /proc): carry on with the defaults */
}
