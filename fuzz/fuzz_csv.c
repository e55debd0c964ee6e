/* fuzz_csv.c — libFuzzer target for the CSV reader (anamo_csv_read): delimiters, header
 * detection, column counts, number syntax, blank lines, BOM, CRLF, plain or gzip. Every value
 * of an accepted table must be finite (the reader's promise). */
#include "fuzz_util.h"

#include <math.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_file(data, size);
    anamo_err err = {0};
    anamo_dataset ds;
    int rc = anamo_csv_read(path, &ds, &err);
    fuzz_check_error(rc, &err, path);
    if (rc == ANAMO_OK) {
        fuzz_check_dataset(&ds);
        const float *x = ds.data;
        for (int64_t i = 0; i < ds.n * ds.dim; i++)
            if (!isfinite(x[i]))
                abort();
        anamo_dataset_free(&ds);
    }
    return 0;
}
