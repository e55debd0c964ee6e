/* machine.h — the benches' first lines: what their figures were measured on (the CPU, its
 * usable features, the BLAS and its kernel, and who chose that kernel). */
#ifndef ANAMO_BENCH_MACHINE_H
#define ANAMO_BENCH_MACHINE_H

#include "anamo_program.h"

#include <stdio.h>

static inline void print_machine(void)
{
    anamo_machine mc;
    anamo_machine_describe(&mc);
    printf("cpu: %s (family %d, model %d)\ncpu_features: %s\nblas: %s\n"
           "blas_kernel: %s (%s; the features call for %s or better)\n"
           "convolutions: %s\nopenmp_wait: %s\nmpi: %s\n",
           mc.cpu, mc.family, mc.model, mc.features, mc.blas, mc.kernel, mc.kernel_note,
           mc.best_kernel, mc.dnnl, mc.omp_wait, mc.mpi);
}

#endif
