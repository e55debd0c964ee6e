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
 *   float32, shape (N, 1, 10, 10).
 *
 * steps | steps:N | steps:N:A  (defaults N = 128, A = 5)
 *   seed 002's step functions: all N + 1 steps of length N and amplitude A, no randomness.
 *       for p = 0 … N (sample p), for j = 0 … N − 1:
 *           x[p][j] = 0 if j < p, A if j >= p
 *   so sample 0 is all A and sample N all 0. float32, shape (N + 1, N, 1, 1), a table of
 *   vectors as a CSV file gives (c = N features, h = w = 1). 1 <= N <= 2^20, A finite and > 0,
 *   and the (N + 1)·N floats within the readers' byte limit (N <= 65535). */
#include "core/err.h"
#include "data/data.h"
#include "data/generate.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HALVES_SIDE 10
#define HALVES_MAX 10000000
#define HALVES_PREFIX "halves:"
#define STEPS_NAME "steps"
#define STEPS_DEFAULT_LENGTH 128
#define STEPS_DEFAULT_AMPLITUDE 5.0
#define STEPS_MAX_LENGTH (1 << 20)

static float clamp01(float v) { return v < 0.0f ? 0.0f : v > 1.0f ? 1.0f : v; }

static int make_halves(int64_t n, uint64_t seed, anamo_dataset *out, anamo_err *err)
{
    const int side = HALVES_SIDE, dim = side * side;
    float *x = anamo_alloc((size_t)(n * dim) * sizeof *x);
    if (!x)
        return anamo_err_set(err, ANAMO_ERR_NOMEM, "halves: cannot allocate %lld images",
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

static int generate_halves(const char *spec, anamo_dataset *out, anamo_err *err)
{
    const char *args = spec + strlen(HALVES_PREFIX);
    long long n = 0;
    unsigned long long seed = 0;
    char tail;
    if (!strcmp(args, "train"))
        n = 100, seed = 1;
    else if (!strcmp(args, "test"))
        n = 10, seed = 2;
    else if (sscanf(args, "%lld:%llu%c", &n, &seed, &tail) != 2 || n < 1 || n > HALVES_MAX)
        return anamo_err_set(err, ANAMO_ERR_ARG,
                             "%s: expected halves:train, halves:test or halves:N:SEED with "
                             "1 <= N <= %d",
                             spec, HALVES_MAX);
    return make_halves(n, seed, out, err);
}

static int make_steps(int64_t length, float amplitude, anamo_dataset *out, anamo_err *err)
{
    const int64_t n = length + 1;
    float *x = anamo_alloc((size_t)(n * length) * sizeof *x);
    if (!x)
        return anamo_err_set(err, ANAMO_ERR_NOMEM,
                             "steps: cannot allocate %lld steps of length %lld", (long long)n,
                             (long long)length);
    for (int64_t p = 0; p < n; p++)
        for (int64_t j = 0; j < length; j++)
            x[p * length + j] = j < p ? 0.0f : amplitude;
    memset(out, 0, sizeof *out);
    out->n = n, out->c = (int)length, out->h = 1, out->w = 1, out->dim = length;
    out->dtype = ANAMO_F32;
    out->data = x;
    return ANAMO_OK;
}

/* Reads "", ":N" or ":N:A" after "steps" into *length and *amplitude (defaults kept); 0, or -1
 * when the text is not of that form. */
static int steps_args(const char *args, long long *length, double *amplitude)
{
    if (!*args)
        return 0;
    if (*args != ':' || !(args[1] >= '0' && args[1] <= '9'))
        return -1;
    char *end;
    errno = 0;
    *length = strtoll(args + 1, &end, 10);
    if (errno)
        return -1;
    if (!*end)
        return 0;
    if (*end != ':' || !end[1])
        return -1;
    const char *a = end + 1;
    *amplitude = strtod(a, &end);
    return end == a || *end ? -1 : 0;
}

static int generate_steps(const char *spec, anamo_dataset *out, anamo_err *err)
{
    long long length = STEPS_DEFAULT_LENGTH;
    double amplitude = STEPS_DEFAULT_AMPLITUDE;
    if (steps_args(spec + strlen(STEPS_NAME), &length, &amplitude))
        return anamo_err_set(err, ANAMO_ERR_ARG, "%s: expected steps, steps:N or steps:N:A", spec);
    if (length < 1 || length > STEPS_MAX_LENGTH)
        return anamo_err_set(err, ANAMO_ERR_ARG, "%s: the length N = %lld must be in 1 … %d", spec,
                             length, STEPS_MAX_LENGTH);
    if (!isfinite(amplitude) || amplitude <= 0 || !isfinite((float)amplitude))
        return anamo_err_set(err, ANAMO_ERR_ARG, "%s: the amplitude A = %g must be finite and > 0",
                             spec, amplitude);
    if ((length + 1) * length > ANAMO_DATA_MAX_BYTES / (int64_t)sizeof(float))
        return anamo_err_set(err, ANAMO_ERR_ARG,
                             "%s: %lld steps of length %lld exceed the %lld-byte data limit", spec,
                             length + 1, length, (long long)ANAMO_DATA_MAX_BYTES);
    return make_steps(length, (float)amplitude, out, err);
}

static int is_steps(const char *spec)
{
    size_t k = strlen(STEPS_NAME);
    return !strncmp(spec, STEPS_NAME, k) && (spec[k] == '\0' || spec[k] == ':');
}

int data_generate(const char *spec, anamo_dataset *out, anamo_err *err)
{
    if (is_steps(spec))
        return generate_steps(spec, out, err);
    return generate_halves(spec, out, err);
}

int data_is_generated(const char *spec)
{
    return !strncmp(spec, HALVES_PREFIX, strlen(HALVES_PREFIX)) || is_steps(spec);
}
