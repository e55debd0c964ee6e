/* fuzz_idx.c — libFuzzer target for the IDX reader: the input is read both as an images file
 * (anamo_idx_read) and as a labels file (anamo_idx_read_labels), plain or gzip.
 *
 * The oracle is the format itself (LeCun's IDX: a big-endian magic, the dimensions, exactly
 * their product of bytes), applied here to the content zlib's inflate gives (fuzz_util.h):
 *   - the reader accepts the input iff the gzip (if any) is complete and the content is such
 *     a file (every dimension nonzero, no byte missing or left over);
 *   - what it accepts, re-encoded (magic, dimensions, bytes), is the content byte for byte;
 *   - a gzip input reads the same as its inflated content in a plain file.
 * A failed read leaves nothing behind. */
#include "fuzz_util.h"

#include <limits.h>

#define IDX_MAGIC_IMAGES 2051
#define IDX_MAGIC_LABELS 2049
#define IDX_MAX_DIMS 3

/* 1 when p[0..n) is an IDX file of this magic and number of dimensions (dims gets them). The
 * reader's own limits (16 GiB, rows and columns below 2^31) cannot be reached by a file that
 * must hold every byte, so "exactly the product" decides alone. */
static int idx_valid(const uint8_t *p, size_t n, uint32_t magic, int ndims, uint32_t *dims)
{
    size_t head = 4 * (1 + (size_t)ndims);
    if (n < head || fuzz_be32(p) != magic)
        return 0;
    uint64_t total = 1, body = n - head;
    for (int i = 0; i < ndims; i++) {
        dims[i] = fuzz_be32(p + 4 * (1 + i));
        if (dims[i] == 0 || total * dims[i] > body) /* total ≤ body < 2^32: no overflow */
            return 0;
        total *= dims[i];
    }
    return total == body;
}

static void check_images(const fuzz_content *c, int rc, const anamo_dataset *ds, const char *path)
{
    uint32_t dims[IDX_MAX_DIMS];
    int valid = c->kind != FUZZ_GZIP_BAD && idx_valid(c->p, c->n, IDX_MAGIC_IMAGES, 3, dims);
    fuzz_check_gzip(rc == ANAMO_OK, c, "anamo_idx_read");
    if (valid && rc != ANAMO_OK)
        fuzz_fail("anamo_idx_read refused a valid %u x %u x %u images file", dims[0], dims[1],
                  dims[2]);
    if (!valid && rc == ANAMO_OK)
        fuzz_fail("anamo_idx_read accepted %lld x %d x %d images from %zu bytes that are no "
                  "IDX images file",
                  (long long)ds->n, ds->h, ds->w, c->n);
    if (rc != ANAMO_OK)
        return;
    fuzz_check_dataset(ds);
    if (ds->dtype != ANAMO_U8 || ds->labels || ds->c != 1 || (uint64_t)ds->n != dims[0] ||
        (uint32_t)ds->h != dims[1] || (uint32_t)ds->w != dims[2])
        fuzz_fail("anamo_idx_read: %lld x %d x %d x %d (dtype %d) for a %u x %u x %u file",
                  (long long)ds->n, ds->c, ds->h, ds->w, (int)ds->dtype, dims[0], dims[1], dims[2]);
    if (memcmp(ds->data, c->p + 16, (size_t)(ds->n * ds->dim)) != 0)
        fuzz_fail("anamo_idx_read: the images re-encoded differ from the file");
    if (strcmp(ds->source, path) != 0)
        fuzz_fail("anamo_idx_read: source '%s' for %s", ds->source, path);
}

static void check_labels(const fuzz_content *c, int rc, const uint8_t *labels, int64_t n)
{
    uint32_t count;
    int valid = c->kind != FUZZ_GZIP_BAD && idx_valid(c->p, c->n, IDX_MAGIC_LABELS, 1, &count);
    fuzz_check_gzip(rc == ANAMO_OK, c, "anamo_idx_read_labels");
    if (rc != ANAMO_OK && (labels || n))
        fuzz_fail("anamo_idx_read_labels failed and left %lld labels behind", (long long)n);
    if (valid != (rc == ANAMO_OK))
        fuzz_fail("anamo_idx_read_labels %s a %s labels file", rc ? "refused" : "accepted",
                  valid ? "valid" : "invalid");
    if (rc == ANAMO_OK && ((uint64_t)n != count || !labels || memcmp(labels, c->p + 8, count)))
        fuzz_fail("anamo_idx_read_labels: %lld labels for a file of %u, or other values",
                  (long long)n, count);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_file(data, size);
    fuzz_content c;
    fuzz_content_of(data, size, &c);

    anamo_err err = {0};
    anamo_dataset ds;
    int rc = anamo_idx_read(path, &ds, &err);
    fuzz_check_error(rc, &err, path);
    check_images(&c, rc, &ds, path);
    fuzz_check_plain_copy(&c, rc, &ds, anamo_idx_read, "anamo_idx_read");
    if (rc == ANAMO_OK)
        anamo_dataset_free(&ds);

    uint8_t *labels = NULL;
    int64_t n = 0;
    anamo_err lerr = {0};
    rc = anamo_idx_read_labels(path, &labels, &n, &lerr);
    fuzz_check_error(rc, &lerr, path);
    check_labels(&c, rc, labels, n);
    anamo_free(labels);
    fuzz_content_free(&c);
    return 0;
}
