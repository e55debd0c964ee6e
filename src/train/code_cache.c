/* code_cache.c — a decoder phase's code cache, kept without the codes' exact zeros.
 *
 * Row i is a mask of its entries that are not +0.0 (entry j: bit j % 64 of word j / 64) and
 * those entries in order, packed after the rows put before it. Every other bit pattern (−0.0,
 * NaN, subnormals) is kept as it is, so code_cache_get returns the row bit for bit. ReLU codes
 * are a quarter to a third exact zeros (docs/RESULTS.md), and the span of values, reserved at
 * n·dim floats but never cleared, becomes resident only as far as the rows fill it.
 *
 * On a CPU with AVX-512 a row is packed and unpacked 16 entries at a time (vcompressps,
 * vexpandps); elsewhere one entry at a time. Both move the same bits. */
#include "core/err.h"
#include "train/trainer.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define CODE_CACHE_AVX512 1
#endif

int code_cache_init(code_cache *c, int64_t n, int64_t dim, anamo_err *err)
{
    *c = (code_cache){.n = n, .dim = dim, .words = (dim + 63) / 64};
#ifdef CODE_CACHE_AVX512
    c->avx512 = __builtin_cpu_supports("avx512f");
#endif
    c->mask = anamo_alloc((size_t)(n * c->words) * sizeof *c->mask);
    c->start = anamo_alloc((size_t)n * sizeof *c->start);
    /* malloc, not anamo_alloc: clearing the span would make all of it resident */
    c->values = malloc((size_t)(n * dim) * sizeof *c->values);
    if (!c->mask || !c->start || !c->values) {
        code_cache_free(c);
        return anamo_err_set(err, ANAMO_ERR_NOMEM, "code cache: cannot allocate %lld × %lld codes",
                             (long long)n, (long long)dim);
    }
    return ANAMO_OK;
}

void code_cache_free(code_cache *c)
{
    anamo_free(c->mask);
    anamo_free(c->start);
    free(c->values);
    *c = (code_cache){0};
}

void code_cache_clear(code_cache *c) { c->used = 0; }

/* Entries first … end−1 of h into out, without their +0.0s; returns the mask, bit j − first
 * for entry j (end − first ≤ 64), and adds the number kept to *kept. */
static uint64_t pack_word(const float *h, int64_t first, int64_t end, float *out, int64_t *kept)
{
    uint64_t bits = 0;
    for (int64_t j = first; j < end; j++) {
        uint32_t pattern;
        memcpy(&pattern, h + j, sizeof pattern);
        if (pattern != 0) { /* +0.0 alone is left out */
            out[(*kept)++] = h[j];
            bits |= UINT64_C(1) << (j - first);
        }
    }
    return bits;
}

static void unpack_word(uint64_t bits, const float **in, float *h)
{
    for (; bits; bits &= bits - 1)
        h[__builtin_ctzll(bits)] = *(*in)++;
}

#ifdef CODE_CACHE_AVX512
__attribute__((target("avx512f"))) static uint64_t
pack_word_avx512(const float *h, int64_t first, int64_t end, float *out, int64_t *kept)
{
    uint64_t bits = 0;
    for (int64_t j = first; j < end; j += 16) {
        const __mmask16 in_row = (__mmask16)(end - j >= 16 ? 0xffff : (1u << (end - j)) - 1);
        const __m512i v = _mm512_maskz_loadu_epi32(in_row, h + j);
        const __mmask16 keep = _mm512_mask_test_epi32_mask(in_row, v, v); /* bits not all 0 */
        _mm512_mask_compressstoreu_epi32(out + *kept, keep, v);
        *kept += __builtin_popcount(keep);
        bits |= (uint64_t)keep << (j - first);
    }
    return bits;
}

__attribute__((target("avx512f"))) static void unpack_word_avx512(uint64_t bits, int64_t count,
                                                                  const float **in, float *h)
{
    for (int64_t j = 0; j < count; j += 16) {
        const __mmask16 keep = (__mmask16)(bits >> j);
        const __mmask16 in_row = (__mmask16)(count - j >= 16 ? 0xffff : (1u << (count - j)) - 1);
        _mm512_mask_storeu_ps(h + j, in_row, _mm512_maskz_expandloadu_ps(keep, *in));
        *in += __builtin_popcount(keep);
    }
}
#endif

void code_cache_put(code_cache *c, int64_t row, const float *h)
{
    /* n rows of at most dim values each fit; a row put twice since the clear may not */
    assert(row >= 0 && row < c->n && c->used <= (c->n - 1) * c->dim);
    uint64_t *mask = c->mask + row * c->words;
    float *out = c->values + c->used;
    int64_t kept = 0;
    for (int64_t w = 0; w < c->words; w++) {
        const int64_t first = w * 64, end = first + 64 < c->dim ? first + 64 : c->dim;
#ifdef CODE_CACHE_AVX512
        if (c->avx512) {
            mask[w] = pack_word_avx512(h, first, end, out, &kept);
            continue;
        }
#endif
        mask[w] = pack_word(h, first, end, out, &kept);
    }
    c->start[row] = c->used;
    c->used += kept;
}

void code_cache_get(const code_cache *c, int64_t row, float *h)
{
    const uint64_t *mask = c->mask + row * c->words;
    const float *in = c->values + c->start[row];
#ifdef CODE_CACHE_AVX512
    if (c->avx512) {
        for (int64_t w = 0; w < c->words; w++) {
            const int64_t first = w * 64, count = first + 64 < c->dim ? 64 : c->dim - first;
            unpack_word_avx512(mask[w], count, &in, h + first);
        }
        return;
    }
#endif
    memset(h, 0, (size_t)c->dim * sizeof *h);
    for (int64_t w = 0; w < c->words; w++)
        unpack_word(mask[w], &in, h + w * 64);
}
