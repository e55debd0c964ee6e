/* sampler.c — per-epoch shuffling. Pass p's order is a Fisher–Yates shuffle driven by an RNG
 * seeded with a mix of (seed, p), so it is reproducible without saving any RNG state. */
#include "core/err.h"
#include "train/trainer.h"

#include <stdlib.h>

int sampler_init(sampler *s, int64_t n, uint64_t seed, anamo_err *err)
{
    s->n = n;
    s->seed = seed;
    s->perm = malloc((size_t)n * sizeof *s->perm);
    if (!s->perm)
        return anamo_err_set(err, ANAMO_ERR_NOMEM, "sampler: cannot allocate %lld indices",
                             (long long)n);
    sampler_set_pass(s, 0);
    return ANAMO_OK;
}

void sampler_set_pass(sampler *s, int64_t pass)
{
    anamo_rng rng;
    anamo_rng_seed(&rng, s->seed ^ (0x9e3779b97f4a7c15ULL * (uint64_t)(pass + 1)));
    s->pass = pass;
    for (int64_t i = 0; i < s->n; i++)
        s->perm[i] = i;
    for (int64_t i = s->n - 1; i > 0; i--) {
        int64_t j = (int64_t)anamo_rng_below(&rng, (uint64_t)i + 1);
        int64_t tmp = s->perm[i];
        s->perm[i] = s->perm[j];
        s->perm[j] = tmp;
    }
}

void sampler_free(sampler *s)
{
    free(s->perm);
    s->perm = NULL;
}
