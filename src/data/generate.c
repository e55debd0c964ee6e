/* generate.c — built-in datasets, made from a seed, so experiments need no files.
 *
 * halves:N:SEED  (halves:train = halves:100:1, halves:test = halves:10:2)
 *   seed 000's synthetic images: N grey 10×10 images whose left half is whiter than the right.
 *   With anamo_rng seeded by SEED, for each image in turn:
 *       b ~ U(0.35, 0.65)                 overall brightness
 *       d ~ U(0.15, 0.35)                 how much whiter the left half is than the middle
 *       for each pixel, row by row, left to right:
 *           v = b + d (columns 0–4) or b − d (columns 5–9), plus 0.05·n with n ~ N(0, 1),
 *           clamped to [0, 1]
 *   float32, shape (N, 1, 10, 10). */
#include "core/err.h"
#include "data/generate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HALVES_SIDE 10
#define HALVES_MAX 10000000

static float clamp01(float v) { return v < 0.0f ? 0.0f : v > 1.0f ? 1.0f : v; }

static int make_halves(int64_t n, uint64_t seed, anamo_dataset *out, anamo_err *err)
{
    const int side = HALVES_SIDE, dim = side * side;
    float *x = anamo_alloc((size_t)(n * dim) * sizeof *x);
    if (!x)
        return anamo_fail(err, ANAMO_ERR_NOMEM, "halves: cannot allocate %lld images",
                          (long long)n);
    anamo_rng rng;
    anamo_rng_seed(&rng, seed);
    for (int64_t i = 0; i < n; i++) {
        float b = anamo_rng_uniform_range(&rng, 0.35f, 0.65f);
        float d = anamo_rng_uniform_range(&rng, 0.15f, 0.35f);
        for (int r = 0; r < side; r++)
            for (int c = 0; c < side; c++) {
                float v = b + (c < side / 2 ? d : -d) + 0.05f * anamo_rng_normal(&rng);
                x[i * dim + r * side + c] = clamp01(v);
            }
    }
    memset(out, 0, sizeof *out);
    out->n = n, out->c = 1, out->h = side, out->w = side, out->dim = dim;
    out->dtype = ANAMO_F32;
    out->data = x;
    return ANAMO_OK;
}

int anamo_generate(const char *spec, anamo_dataset *out, anamo_err *err)
{
    const char *args = spec + strlen("halves:");
    long long n = 0;
    unsigned long long seed = 0;
    char tail;
    if (!strcmp(args, "train"))
        n = 100, seed = 1;
    else if (!strcmp(args, "test"))
        n = 10, seed = 2;
    else if (sscanf(args, "%lld:%llu%c", &n, &seed, &tail) != 2 || n < 1 || n > HALVES_MAX)
        return anamo_fail(err, ANAMO_ERR_ARG,
                          "%s: expected halves:train, halves:test or halves:N:SEED with "
                          "1 <= N <= %d",
                          spec, HALVES_MAX);
    return make_halves(n, seed, out, err);
}

int anamo_is_generated(const char *spec)
{
    return !strncmp(spec, "halves:", 7);
}
