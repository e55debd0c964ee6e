/* fuzz_idx.c — libFuzzer target for the IDX reader: the input is read both as an images file
 * (anamo_idx_read) and as a labels file (anamo_idx_read_labels), plain or gzip. */
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_file(data, size);
    anamo_err err = {0};
    anamo_dataset ds;
    int rc = anamo_idx_read(path, &ds, &err);
    fuzz_check_error(rc, &err, path);
    if (rc == ANAMO_OK) {
        fuzz_check_dataset(&ds);
        anamo_dataset_free(&ds);
    }
    uint8_t *labels = NULL;
    int64_t n = 0;
    anamo_err lerr = {0};
    rc = anamo_idx_read_labels(path, &labels, &n, &lerr);
    fuzz_check_error(rc, &lerr, path);
    if (rc == ANAMO_OK && (n < 1 || !labels || (volatile uint8_t)labels[n - 1] > 255))
        abort();
    if (rc != ANAMO_OK && (labels || n))
        abort(); /* a failed read leaves nothing behind */
    anamo_free(labels);
    return 0;
}
