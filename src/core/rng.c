/* rng.c — the seeded random number generator.
 * xoshiro256** 1.0 (D. Blackman, S. Vigna, "Scrambled linear pseudorandom number generators",
 * 2018; reference code at prng.di.unimi.it). The 256-bit state is filled from the 64-bit seed by
 * splitmix64, as the authors recommend. Floats take the top 24 bits, so every value k/2^24 in
 * [0, 1) is equally likely. Normals use Box–Muller on two uniforms (the second is discarded, so
 * a draw always consumes exactly two outputs and sequences stay easy to reason about). */
#include "anamo.h"

#include <math.h>

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

void anamo_rng_seed(anamo_rng *rng, uint64_t seed)
{
    uint64_t x = seed;
    for (int i = 0; i < 4; i++)
        rng->s[i] = splitmix64(&x);
}

uint64_t anamo_rng_next(anamo_rng *rng)
{
    uint64_t *s = rng->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

float anamo_rng_uniform(anamo_rng *rng)
{
    return (float)(anamo_rng_next(rng) >> 40) * (1.0f / 16777216.0f);
}

float anamo_rng_uniform_range(anamo_rng *rng, float lo, float hi)
{
    return lo + (hi - lo) * anamo_rng_uniform(rng);
}

float anamo_rng_normal(anamo_rng *rng)
{
    /* u1 in (0, 1] so the log is finite */
    double u1 = ((double)(anamo_rng_next(rng) >> 11) + 1.0) * (1.0 / 9007199254740992.0);
    double u2 = (double)(anamo_rng_next(rng) >> 11) * (1.0 / 9007199254740992.0);
    return (float)(sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2));
}

uint64_t anamo_rng_below(anamo_rng *rng, uint64_t bound)
{
    /* rejection sampling: drop the top partial range so every residue is equally likely */
    if (bound == 0)
        return 0;
    uint64_t limit = UINT64_MAX - UINT64_MAX % bound;
    uint64_t x;
    do
        x = anamo_rng_next(rng);
    while (x >= limit);
    return x % bound;
}
