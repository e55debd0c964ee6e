/* fuzz_npy.c — libFuzzer target for the NPY reader (anamo_npy_read): preamble, header dict,
 * dtype, shape and data length, plain or gzip.
 *
 * Oracles:
 *   - accepted floats are all finite;
 *   - the accepted array is the file's data section: the bytes after the header (whose length
 *     the preamble gives), the same bytes for u1 and f4, each double narrowed to float32 for
 *     f8, and nothing after them;
 *   - written back with anamo_npy_write_u8/_f32 as (n, c, h, w) and read again, it is the same
 *     array, bit for bit;
 *   - a gzip input is accepted only when zlib's inflate finds it complete (fuzz_util.h), and
 *     then reads as its inflated content does in a plain file. */
#include "fuzz_util.h"

#include <math.h>

#define NPY_MAGIC_LEN 6
#define NPY_PREAMBLE_V1 10 /* magic, version, 2-byte header length */
#define NPY_PREAMBLE_V2 12 /* 4-byte header length (versions 2 and 3) */

/* Where the array starts in an NPY file, by its preamble alone; 0 if it has none. */
static size_t npy_data_offset(const uint8_t *p, size_t n)
{
    if (n < NPY_PREAMBLE_V1)
        return 0;
    if (p[6] == 1)
        return NPY_PREAMBLE_V1 + (size_t)(p[8] | p[9] << 8);
    if (n < NPY_PREAMBLE_V2)
        return 0;
    return NPY_PREAMBLE_V2 +
           ((size_t)p[8] | (size_t)p[9] << 8 | (size_t)p[10] << 16 | (size_t)p[11] << 24);
}

/* The accepted array against the content's data section. */
static void check_data(const anamo_dataset *ds, const fuzz_content *c)
{
    size_t off = npy_data_offset(c->p, c->n), count = (size_t)(ds->n * ds->dim);
    if (off == 0 || off > c->n || memcmp(c->p, "\x93NUMPY", NPY_MAGIC_LEN))
        fuzz_fail("anamo_npy_read accepted %zu bytes with no NPY preamble", c->n);
    const uint8_t *raw = c->p + off;
    size_t left = c->n - off;
    if (ds->dtype == ANAMO_U8 && (left != count || memcmp(raw, ds->data, count)))
        fuzz_fail("anamo_npy_read: %zu u1 values for a data section of %zu bytes, or others", count,
                  left);
    if (ds->dtype == ANAMO_U8)
        return;
    const float *x = ds->data;
    if (left == 4 * count) {
        if (memcmp(raw, x, 4 * count)) /* a little-endian host, as the reader assumes */
            fuzz_fail("anamo_npy_read: the f4 values are not the file's");
        return;
    }
    if (left != 8 * count)
        fuzz_fail("anamo_npy_read: %zu floats for a data section of %zu bytes", count, left);
    for (size_t i = 0; i < count; i++) {
        double d;
        memcpy(&d, raw + 8 * i, sizeof d);
        float f = (float)d;
        if (memcmp(&f, &x[i], sizeof f))
            fuzz_fail("anamo_npy_read: element %zu is %a, the file's double %a narrows to %a", i,
                      (double)x[i], d, (double)f);
    }
}

static void round_trip(const anamo_dataset *ds)
{
    const char *out = fuzz_file_at(FUZZ_SLOT_DERIVED, NULL, 0);
    int64_t shape[4] = {ds->n, ds->c, ds->h, ds->w};
    anamo_err err = {0};
    int rc = ds->dtype == ANAMO_U8 ? anamo_npy_write_u8(out, ds->data, 4, shape, &err)
                                   : anamo_npy_write_f32(out, ds->data, 4, shape, &err);
    if (rc)
        fuzz_fail("anamo_npy_write cannot write back what was read: %s", err.msg);
    anamo_dataset back;
    rc = anamo_npy_read(out, &back, &err);
    if (rc)
        fuzz_fail("anamo_npy_read refused what anamo_npy_write wrote: %s", err.msg);
    fuzz_check_same(ds, &back, "anamo_npy_read: the array written back and read again");
    anamo_dataset_free(&back);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_file(data, size);
    fuzz_content c;
    fuzz_content_of(data, size, &c);
    anamo_err err = {0};
    anamo_dataset ds;
    int rc = anamo_npy_read(path, &ds, &err);
    fuzz_check_error(rc, &err, path);
    fuzz_check_gzip(rc == ANAMO_OK, &c, "anamo_npy_read");
    if (rc == ANAMO_OK) {
        fuzz_check_dataset(&ds);
        const float *x = ds.data;
        for (int64_t i = 0; ds.dtype == ANAMO_F32 && i < ds.n * ds.dim; i++)
            if (!isfinite(x[i]))
                fuzz_fail("anamo_npy_read: element %lld is %g", (long long)i, (double)x[i]);
        check_data(&ds, &c);
    }
    fuzz_check_plain_copy(&c, rc, &ds, anamo_npy_read, "anamo_npy_read");
    if (rc == ANAMO_OK) {
        round_trip(&ds);
        anamo_dataset_free(&ds);
    }
    fuzz_content_free(&c);
    return 0;
}
