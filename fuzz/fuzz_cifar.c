/* fuzz_cifar.c — libFuzzer target for the CIFAR-10 batch reader (cifar_read): records of
 * a label byte and 3072 pixels, plain or gzip (with the gzip trailer's size as the allocation
 * hint). The reader takes any whole number of records, so one or two records (3073 or 6146
 * bytes) exercise all of it; no 10000-record batch is needed.
 *
 * The oracle is the format, applied to the content zlib's inflate gives (fuzz_util.h):
 *   - the input is accepted iff the gzip (if any) is complete and the content is a nonzero
 *     whole number of 3073-byte records whose labels are all below 10;
 *   - an accepted set is the content's records: label r is byte 3073·r, image r the 3072
 *     bytes after it, bit for bit;
 *   - read twice over (as the five training batches are read together) it is good iff it is
 *     good alone, and holds the records twice, in order.
 *
 * Speed: the reader reserves (and zeroes) a gzip file's slot from the ISIZE its trailer
 * announces, believed up to 1032 times the file's size, for each read. A mutated trailer on a
 * 6 KB input costs 6 MB of fresh pages per read, 18 MB per execution (30 ms: the harness ran at
 * 114 executions a second). Inputs whose hint, computed as cifar.c computes it, exceeds
 * CIFAR_FUZZ_HINT_MAX are skipped (returned -1, so libFuzzer does not keep them): every hint
 * above what the stream holds takes the same path through the reader, and 64 KB still allows
 * both too large a hint and 21 records of real content. */
#include "fuzz_util.h"

#include "data/data.h"

#define CIFAR_CLASSES 10
#define CIFAR_PIXELS 3072
#define CIFAR_RECORD (1 + CIFAR_PIXELS)
#define CIFAR_FUZZ_HINT_MAX (64u << 10)
#define GZIP_MIN_SIZE 18
#define GZIP_MAX_RATIO 1032

/* The slot cifar.c reserves for a file of these bytes (cifar_size_hint). */
static uint64_t cifar_hint(const uint8_t *data, size_t size)
{
    if (size < GZIP_MIN_SIZE || !fuzz_is_gzip(data, size))
        return size;
    const uint8_t *t = data + size - 4;
    uint64_t isize = (uint32_t)t[0] | (uint32_t)t[1] << 8 | (uint32_t)t[2] << 16 |
                     (uint32_t)t[3] << 24;
    return isize < (uint64_t)size * GZIP_MAX_RATIO ? isize : (uint64_t)size * GZIP_MAX_RATIO;
}

/* 1 when the content is a valid set of records (the format's rules, not the reader's). */
static int cifar_valid(const fuzz_content *c)
{
    if (c->kind == FUZZ_GZIP_BAD || c->n == 0 || c->n % CIFAR_RECORD)
        return 0;
    for (size_t r = 0; r < c->n; r += CIFAR_RECORD)
        if (c->p[r] >= CIFAR_CLASSES)
            return 0;
    return 1;
}

/* ds holds the content's records, times over. */
static void check_records(const anamo_dataset *ds, const fuzz_content *c, int times)
{
    int64_t records = (int64_t)(c->n / CIFAR_RECORD);
    fuzz_check_dataset(ds);
    if (ds->n != times * records || ds->c != 3 || ds->h != 32 || ds->w != 32 ||
        ds->dtype != ANAMO_U8 || !ds->labels)
        fuzz_fail("cifar_read: %lld x %d x %d x %d (dtype %d) for %lld records x %d",
                  (long long)ds->n, ds->c, ds->h, ds->w, (int)ds->dtype, (long long)records, times);
    const uint8_t *img = ds->data;
    for (int64_t i = 0; i < ds->n; i++) {
        const uint8_t *rec = c->p + (size_t)(i % records) * CIFAR_RECORD;
        if (ds->labels[i] != rec[0] || memcmp(img + i * CIFAR_PIXELS, rec + 1, CIFAR_PIXELS))
            fuzz_fail("cifar_read: sample %lld (of %d reads) differs from record %lld",
                      (long long)i, times, (long long)(i % records));
    }
}

static void check_read(int rc, const anamo_dataset *ds, const fuzz_content *c, int times)
{
    int valid = cifar_valid(c);
    fuzz_check_gzip(rc == ANAMO_OK, c, "cifar_read");
    if (valid != (rc == ANAMO_OK))
        fuzz_fail("cifar_read %s %zu bytes of content that %s (%d reads)",
                  rc ? "refused" : "accepted", c->n,
                  valid ? "are valid records" : "are no valid records", times);
    if (rc == ANAMO_OK)
        check_records(ds, c, times);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (cifar_hint(data, size) > CIFAR_FUZZ_HINT_MAX)
        return -1; /* not kept in the corpus: see the header comment */
    const char *path = fuzz_file(data, size);
    fuzz_content c;
    fuzz_content_of(data, size, &c);

    anamo_err err = {0};
    anamo_dataset one, two;
    int rc = cifar_read(&path, 1, &one, &err);
    fuzz_check_error(rc, &err, path);
    check_read(rc, &one, &c, 1);

    const char *both[2] = {path, path};
    anamo_err err2 = {0};
    int rc2 = cifar_read(both, 2, &two, &err2);
    fuzz_check_error(rc2, &err2, path);
    check_read(rc2, &two, &c, 2);

    const char *plain = fuzz_plain_copy(&c);
    if (plain) { /* a gzip input reads as its content does */
        anamo_dataset again;
        anamo_err err3 = {0};
        int rc3 = cifar_read(&plain, 1, &again, &err3);
        if ((rc3 == ANAMO_OK) != (rc == ANAMO_OK))
            fuzz_fail("cifar_read: gzip %s, its content %s", rc ? "refused" : "accepted",
                      rc3 ? "refused" : "accepted");
        if (rc3 == ANAMO_OK) {
            fuzz_check_same(&one, &again, "cifar_read: gzip against its content");
            anamo_dataset_free(&again);
        }
    }
    if (rc == ANAMO_OK)
        anamo_dataset_free(&one);
    if (rc2 == ANAMO_OK)
        anamo_dataset_free(&two);
    fuzz_content_free(&c);
    return 0;
}
