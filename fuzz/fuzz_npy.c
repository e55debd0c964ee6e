/* fuzz_npy.c — libFuzzer target for the NPY reader (anamo_npy_read): preamble, header dict,
 * dtype, shape and data length, plain or gzip. An accepted file is written back with
 * anamo_npy_write and read again: the round trip must give the same array; its floats must all
 * be finite. */
#include "fuzz_util.h"

#include <math.h>

static void round_trip(const anamo_dataset *ds)
{
    char out[FUZZ_PATH_MAX];
    snprintf(out, sizeof out, "/tmp/anamo-fuzz-npy-%ld.npy", (long)getpid());
    int64_t shape[2] = {ds->n, ds->dim};
    anamo_err err = {0};
    int rc = ds->dtype == ANAMO_U8 ? anamo_npy_write_u8(out, ds->data, 2, shape, &err)
                                   : anamo_npy_write_f32(out, ds->data, 2, shape, &err);
    if (rc) {
        fprintf(stderr, "fuzz: cannot write back: %s\n", err.msg);
        abort();
    }
    anamo_dataset back;
    rc = anamo_npy_read(out, &back, &err);
    size_t bytes = (size_t)(ds->n * ds->dim) * (ds->dtype == ANAMO_U8 ? 1 : sizeof(float));
    if (rc || back.n != ds->n || back.dim != ds->dim || back.dtype != ds->dtype ||
        memcmp(back.data, ds->data, bytes)) {
        fprintf(stderr, "fuzz: round trip differs: %s\n", rc ? err.msg : "data");
        abort();
    }
    anamo_dataset_free(&back);
    unlink(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_file(data, size);
    anamo_err err = {0};
    anamo_dataset ds;
    int rc = anamo_npy_read(path, &ds, &err);
    fuzz_check_error(rc, &err, path);
    if (rc == ANAMO_OK) {
        fuzz_check_dataset(&ds);
        const float *x = ds.data;
        for (int64_t i = 0; ds.dtype == ANAMO_F32 && i < ds.n * ds.dim; i++)
            if (!isfinite(x[i]))
                abort(); /* float data must be finite, as the CSV reader's is */
        round_trip(&ds);
        anamo_dataset_free(&ds);
    }
    return 0;
}
