/* bench_util.h — small pieces every bench shares: the median of a set of figures, and the
 * --rounds/--threads arguments of the benches that time alternatives in rounds. */
#ifndef ANAMO_BENCH_UTIL_H
#define ANAMO_BENCH_UTIL_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static inline int bench_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The median of v[0 … n) (v is left as it is); NAN when n < 1 or out of memory. */
static inline double bench_median(const double *v, int n)
{
    double *s = n > 0 ? malloc((size_t)n * sizeof *s) : NULL;
    if (!s)
        return NAN;
    memcpy(s, v, (size_t)n * sizeof *s);
    qsort(s, (size_t)n, sizeof *s, bench_cmp_double);
    const double m = n % 2 ? s[n / 2] : 0.5 * (s[n / 2 - 1] + s[n / 2]);
    free(s);
    return m;
}

/* [--rounds N] [--threads N] into *rounds, *threads (their defaults on entry); 0, or 2 after
 * saying what is wrong (rounds must lie in [1, max_rounds], threads be at least 1). */
static inline int bench_rounds_args(int argc, char **argv, const char *name, int max_rounds,
                                    int *rounds, int *threads)
{
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--rounds") && i + 1 < argc)
            *rounds = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc)
            *threads = atoi(argv[++i]);
        else
            return fprintf(stderr, "usage: %s [--rounds N] [--threads N]\n", argv[0]), 2;
    }
    if (*rounds < 1 || *rounds > max_rounds || *threads < 1)
        return fprintf(stderr, "%s: bad --rounds or --threads\n", name), 2;
    return 0;
}

#endif
