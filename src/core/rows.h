/* rows.h — a thread's share of a batch's rows. */
#ifndef ANAMO_CORE_ROWS_H
#define ANAMO_CORE_ROWS_H

#include <omp.h>
#include <stdint.h>

/* [*first, *end): the calling thread's share of n rows in its OpenMP team (all of them outside
 * a parallel region), the shares in order and within one row of each other. */
static inline void omp_rows(int n, int *first, int *end)
{
    const int64_t t = omp_get_thread_num(), nthr = omp_get_num_threads();
    *first = (int)(n * t / nthr);
    *end = (int)(n * (t + 1) / nthr);
}

#endif
