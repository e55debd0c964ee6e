/* mem.c — 64-byte aligned buffers and tensors. */
#include "core/err.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define ANAMO_ALIGN 64

void *anamo_alloc(size_t bytes)
{
    /* aligned_alloc wants a size that is a multiple of the alignment; rounding a size near
     * SIZE_MAX up would wrap to a small one and hand out a buffer shorter than asked for */
    if (bytes > SIZE_MAX - ANAMO_ALIGN)
        return NULL;
    size_t rounded = (bytes + ANAMO_ALIGN - 1) / ANAMO_ALIGN * ANAMO_ALIGN;
    if (rounded == 0)
        rounded = ANAMO_ALIGN;
    void *p = aligned_alloc(ANAMO_ALIGN, rounded);
    if (p)
        memset(p, 0, rounded);
    return p;
}

void anamo_free(void *p) { free(p); }

int64_t anamo_tensor_numel(const anamo_tensor *t)
{
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++)
        n *= t->shape[i];
    return n;
}

int anamo_tensor_alloc(anamo_tensor *t, int ndim, const int64_t *shape, anamo_err *err)
{
    if (ndim < 0 || ndim > ANAMO_MAX_DIMS)
        return anamo_err_set(err, ANAMO_ERR_ARG, "tensor: %d dimensions, at most %d allowed", ndim,
                             ANAMO_MAX_DIMS);
    t->ndim = ndim;
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0 || (shape[i] > 0 && n > INT64_MAX / 4 / shape[i]))
            return anamo_err_set(err, ANAMO_ERR_ARG, "tensor: bad dimension %d = %lld", i,
                                 (long long)shape[i]);
        t->shape[i] = shape[i];
        n *= shape[i];
    }
    t->data = anamo_alloc((size_t)n * sizeof(float));
    if (!t->data)
        return anamo_err_set(err, ANAMO_ERR_NOMEM, "tensor: cannot allocate %lld floats",
                             (long long)n);
    return ANAMO_OK;
}

void anamo_tensor_free(anamo_tensor *t)
{
    if (!t)
        return;
    anamo_free(t->data);
    t->data = NULL;
    t->ndim = 0;
}
