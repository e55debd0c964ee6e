/* code_cache.c — a decoder phase's code cache, kept without the codes' exact zeros.
 *
 * Row i is, from span + start[i]: `words` 32-bit mask words (bit j % 32 of word j / 32 set:
 * entry j is not +0.0), then the bits of those entries in order. Rows follow one another in
 * the order they were put. Every bit pattern but +0.0 (−0.0, NaN, subnormals) is kept as it
 * is, so code_cache_get returns the row bit for bit. A row's mask and values lie together, so
 * reading a row drawn at random misses the cache about as often as reading its dense floats.
 * ReLU codes are a quarter to half exact zeros (docs/RESULTS.md), and the span, reserved at
 * n·(words + dim) but never cleared, becomes resident only as far as the rows fill it.
 *
 * On a CPU with AVX-512 a row is packed and unpacked 16 entries at a time (vpcompressd,
 * vpexpandd); elsewhere one entry at a time. Both move the same bits. */
#include "core/err.h"
#include "nn/layer.h"
#include "train/trainer.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

/* rows × dim at least this: put and get split the rows between the threads. Even the dense
 * main model's 125 × 64 gains: on one thread, the rows' time between two steps' regions was
 * long enough for the other thread to fall asleep, and its wake then came on top. */
#define CODE_CACHE_PAR_MIN 4096

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define CODE_CACHE_AVX512 1
#endif

int code_cache_init(code_cache *c, int64_t n, int64_t dim, int batch, anamo_err *err)
{
    *c = (code_cache){.n = n, .dim = dim, .words = (dim + 31) / 32, .batch = batch};
#ifdef CODE_CACHE_AVX512
    c->avx512 = __builtin_cpu_supports("avx512f");
#endif
    c->start = anamo_alloc((size_t)n * sizeof *c->start);
    c->kept = anamo_alloc((size_t)batch * sizeof *c->kept);
    /* malloc, not anamo_alloc: clearing the span would make all of it resident */
    c->span = malloc((size_t)(n * (c->words + dim)) * sizeof *c->span);
    if (!c->start || !c->kept || !c->span) {
        code_cache_free(c);
        return anamo_err_set(err, ANAMO_ERR_NOMEM, "code cache: cannot allocate %lld × %lld codes",
                             (long long)n, (long long)dim);
    }
    return ANAMO_OK;
}

void code_cache_free(code_cache *c)
{
    anamo_free(c->start);
    anamo_free(c->kept);
    free(c->span);
    *c = (code_cache){0};
}

void code_cache_clear(code_cache *c) { c->used = 0; }

/* The bits of entries first … end−1 of h (end − first ≤ 32) that are not +0.0 into
 * out[*kept …], *kept advanced past them; returns their mask, bit j − first for entry j. */
static uint32_t pack_word(const uint32_t *h, int64_t first, int64_t end, uint32_t *out,
                          int64_t *kept)
{
    uint32_t bits = 0;
    for (int64_t j = first; j < end; j++)
        if (h[j] != 0) { /* +0.0 alone is left out */
            out[(*kept)++] = h[j];
            bits |= UINT32_C(1) << (j - first);
        }
    return bits;
}

/* The entries of one mask word back into h (h zeroed before), from *in on. */
static void unpack_word(uint32_t bits, const uint32_t **in, uint32_t *h)
{
    for (; bits; bits &= bits - 1)
        h[__builtin_ctz(bits)] = *(*in)++;
}

#ifdef CODE_CACHE_AVX512
static __mmask16 lanes(int64_t count) /* the first min(count, 16) of 16 lanes */
{
    return (__mmask16)(count >= 16 ? 0xffff : (1u << count) - 1);
}

__attribute__((target("avx512f"))) static uint32_t
pack_word_avx512(const uint32_t *h, int64_t first, int64_t end, uint32_t *out, int64_t *kept)
{
    uint32_t bits = 0;
    for (int64_t j = first; j < end; j += 16) {
        const __mmask16 in_row = lanes(end - j);
        const __m512i v = _mm512_maskz_loadu_epi32(in_row, h + j);
        const __mmask16 keep = _mm512_mask_test_epi32_mask(in_row, v, v); /* not +0.0 */
        _mm512_mask_compressstoreu_epi32(out + *kept, keep, v);
        *kept += __builtin_popcount(keep);
        bits |= (uint32_t)keep << (j - first);
    }
    return bits;
}

__attribute__((target("avx512f"))) static int64_t count_kept_avx512(const uint32_t *h, int64_t dim)
{
    int64_t kept = 0;
    for (int64_t j = 0; j < dim; j += 16) {
        const __m512i v = _mm512_maskz_loadu_epi32(lanes(dim - j), h + j);
        kept += __builtin_popcount(_mm512_test_epi32_mask(v, v));
    }
    return kept;
}

/* The same as unpack_word for entries first … end−1, h not zeroed before. */
__attribute__((target("avx512f"))) static void unpack_word_avx512(uint32_t bits, int64_t count,
                                                                  const uint32_t **in, uint32_t *h)
{
    for (int64_t j = 0; j < count; j += 16) {
        const __mmask16 keep = (__mmask16)(bits >> j);
        _mm512_mask_storeu_epi32(h + j, lanes(count - j),
                                 _mm512_maskz_expandloadu_epi32(keep, *in));
        *in += __builtin_popcount(keep);
    }
}
#endif

/* Row h's entries that are not +0.0, counted. */
static int64_t kept_entries(const code_cache *c, const uint32_t *h)
{
#ifdef CODE_CACHE_AVX512
    if (c->avx512)
        return count_kept_avx512(h, c->dim);
#endif
    int64_t kept = 0;
    for (int64_t j = 0; j < c->dim; j++)
        kept += h[j] != 0;
    return kept;
}

/* The training-set row of a put's b-th row: rows[b], or first + b where rows is NULL. */
static int64_t row_of(const int64_t *rows, int64_t first, int b)
{
    return rows ? rows[b] : first + b;
}

/* Row h packed at row: its mask words, then the bits of its entries that are not +0.0. */
static void pack_row(const code_cache *c, const uint32_t *h, uint32_t *row)
{
    uint32_t *mask = row, *out = row + c->words;
    int64_t kept = 0;
    for (int64_t w = 0; w < c->words; w++) {
        const int64_t first = w * 32, end = first + 32 < c->dim ? first + 32 : c->dim;
#ifdef CODE_CACHE_AVX512
        if (c->avx512) {
            mask[w] = pack_word_avx512(h, first, end, out, &kept);
            continue;
        }
#endif
        mask[w] = pack_word(h, first, end, out, &kept);
    }
}

void code_cache_put_rows(code_cache *c, const int64_t *rows, int64_t first, int count,
                         const float *h)
{
    assert(count <= c->batch);
    const uint32_t *bits = (const uint32_t *)(const void *)h;
    const int64_t dim = c->dim;
    int64_t used = c->used;
    /* each thread counts and packs its own rows; between, one places them one after another */
#pragma omp parallel if (count * dim >= CODE_CACHE_PAR_MIN)
    {
#pragma omp for schedule(static)
        for (int b = 0; b < count; b++)
            c->kept[b] = c->words + kept_entries(c, bits + b * dim);
#pragma omp single
        for (int b = 0; b < count; b++) {
            const int64_t row = row_of(rows, first, b);
            /* n rows of at most words + dim each fit; a row put twice since the clear may not */
            assert(row >= 0 && row < c->n && used <= (c->n - 1) * (c->words + dim));
            c->start[row] = used;
            used += c->kept[b];
        }
#pragma omp for schedule(static)
        for (int b = 0; b < count; b++)
            pack_row(c, bits + b * dim, c->span + c->start[row_of(rows, first, b)]);
    }
    c->used = used;
}

void code_cache_get(const code_cache *c, int64_t row, float *h)
{
    const uint32_t *mask = c->span + c->start[row], *in = mask + c->words;
    uint32_t *bits = (uint32_t *)(void *)h;
#ifdef CODE_CACHE_AVX512
    if (c->avx512) {
        for (int64_t w = 0; w < c->words; w++) {
            const int64_t first = w * 32, count = first + 32 < c->dim ? 32 : c->dim - first;
            unpack_word_avx512(mask[w], count, &in, bits + first);
        }
        return;
    }
#endif
    memset(h, 0, (size_t)c->dim * sizeof *h);
    for (int64_t w = 0; w < c->words; w++)
        unpack_word(mask[w], &in, bits + w * 32);
}

void code_cache_get_rows(const code_cache *c, const int64_t *rows, int count, float *h)
{
#pragma omp parallel if (count * c->dim >= CODE_CACHE_PAR_MIN)
    {
        int first, end;
        omp_rows(count, &first, &end);
        /* rows drawn at random miss the cache twice each, at their offset and then at the row
         * it leads to: asking for every offset, then every row, before reading any keeps many
         * rows' misses in flight at once instead of one row's after another's */
        for (int b = first; b < end; b++)
            __builtin_prefetch(c->start + rows[b]);
        for (int b = first; b < end; b++)
            __builtin_prefetch(c->span + c->start[rows[b]]);
        for (int b = first; b < end; b++)
            code_cache_get(c, rows[b], h + b * c->dim);
    }
}
