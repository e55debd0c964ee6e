/* test_cifar.c — the CIFAR-10 binary reader and the cifar10:train / cifar10:test specs, against
 * batch files this test writes itself (plain and gzipped with zlib) in a fresh directory under
 * /tmp. The independent truth is the format as Krizhevsky documents it: records of one label
 * byte and 1024 red, 1024 green, 1024 blue bytes, each plane row-major 32×32; bytes must come
 * back exactly. For each kind of damage the test checks the error code and the part of the
 * message a user needs (the path, the record, the offset). When the shared data is there, the
 * real set is read whole and its mean pixel compared with the figure in its README. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "anamo.h"
#include "data/data.h"
#include "test_util.h"

#define PATH_CAP 1024
#define SIDE 32
#define PLANE (SIDE * SIDE)
#define PIXELS (3 * PLANE)
#define RECORD (1 + PIXELS)
#define URL "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"

typedef temp_dir_fixture fixture;

/* ---- files -------------------------------------------------------------------------------- */

static int group_setup(void **state)
{
    return temp_dir_setup(state, "/tmp/anamo_test_cifar_XXXXXX");
}

static int group_teardown(void **state) { return temp_dir_teardown(state); }

static void tmp_path(void **state, const char *name, char *out)
{
    const fixture *fx = *state;
    join_path(out, PATH_CAP, fx->dir, name);
}

static void make_dirs(void **state, const char *name)
{
    char path[PATH_CAP];
    tmp_path(state, name, path);
    for (char *p = path + strlen(((const fixture *)*state)->dir) + 1; *p; p++)
        if (*p == '/') {
            *p = '\0';
            mkdir(path, 0700);
            *p = '/';
        }
    assert_int_equal(mkdir(path, 0700), 0);
}

/* Writes len bytes to path: plain (gz 0), gzip-compressed with zlib (gz 1), or as two gzip
 * members one after the other (gz 2, as `cat a.gz b.gz` makes), whose trailer gives the size
 * of the second member only. */
static void write_file(const char *path, const void *bytes, size_t len, int gz)
{
    if (gz) {
        size_t first = gz == 2 ? len / 2 : len;
        gzFile f = gzopen(path, "wb");
        assert_non_null(f);
        if (first)
            assert_int_equal(gzwrite(f, bytes, (unsigned)first), (int)first);
        assert_int_equal(gzclose(f), Z_OK);
        if (gz == 2) {
            f = gzopen(path, "ab");
            assert_non_null(f);
            assert_int_equal(gzwrite(f, (const uint8_t *)bytes + first, (unsigned)(len - first)),
                             (int)(len - first));
            assert_int_equal(gzclose(f), Z_OK);
        }
    } else {
        write_bytes(path, bytes, len);
    }
}

/* ---- records ------------------------------------------------------------------------------ */

/* Pixel byte k of record r of a batch tagged `tag`: differs between records, planes and files. */
static uint8_t pixel(int tag, int r, int k) { return (uint8_t)(k * 7 + r * 131 + tag * 29 + 3); }

/* n records with label (first_label + r) % 10 and pixel(tag, r, k); malloc'd. */
static uint8_t *records(int n, int tag, int first_label)
{
    uint8_t *b = malloc((size_t)n * RECORD);
    assert_non_null(b);
    for (int r = 0; r < n; r++) {
        b[(size_t)r * RECORD] = (uint8_t)((first_label + r) % 10);
        for (int k = 0; k < PIXELS; k++)
            b[(size_t)r * RECORD + 1 + k] = pixel(tag, r, k);
    }
    return b;
}

static void write_batch(const char *path, int n, int tag, int first_label, int gz)
{
    uint8_t *b = records(n, tag, first_label);
    write_file(path, b, (size_t)n * RECORD, gz);
    free(b);
}

/* Fails unless the dataset is n records of batch `tag` starting at label first_label, from
 * sample `at` on. */
static void expect_batch(const anamo_dataset *ds, int64_t at, int n, int tag, int first_label)
{
    const uint8_t *data = ds->data;
    for (int r = 0; r < n; r++) {
        assert_int_equal(ds->labels[at + r], (first_label + r) % 10);
        for (int k = 0; k < PIXELS; k++)
            if (data[(at + r) * PIXELS + k] != pixel(tag, r, k))
                fail_msg("sample %lld byte %d: %u, expected %u", (long long)(at + r), k,
                         data[(at + r) * PIXELS + k], pixel(tag, r, k));
    }
}

static void expect_shape(const anamo_dataset *ds, int64_t n)
{
    assert_int_equal(ds->n, n);
    assert_int_equal(ds->c, 3);
    assert_int_equal(ds->h, SIDE);
    assert_int_equal(ds->w, SIDE);
    assert_int_equal(ds->dim, PIXELS);
    assert_int_equal(ds->dtype, ANAMO_U8);
    assert_non_null(ds->data);
    assert_non_null(ds->labels);
}

/* Fails unless rc is code and the message holds every non-NULL part; shows the message. */
static void expect_error(int rc, const anamo_err *err, int code, const char *part1,
                         const char *part2)
{
    if (rc != code || !strstr(err->msg, part1) || (part2 && !strstr(err->msg, part2)))
        fail_msg("expected %s with '%s'%s%s%s, got %s: %s", anamo_status_name(code), part1,
                 part2 ? " and '" : "", part2 ? part2 : "", part2 ? "'" : "", anamo_status_name(rc),
                 err->msg);
}

static int read_one(const char *path, anamo_dataset *ds, anamo_err *err)
{
    const char *list[1] = {path};
    return cifar_read(list, 1, ds, err);
}

/* ---- the reader --------------------------------------------------------------------------- */

static void test_round_trip(void **state)
{
    char plain[PATH_CAP], gz[PATH_CAP], multi[PATH_CAP];
    tmp_path(state, "rt.bin", plain);
    tmp_path(state, "rt.bin.gz", gz);
    tmp_path(state, "rt-members.bin.gz", multi);
    write_batch(plain, 3, 1, 0, 0);
    write_batch(gz, 4, 2, 7, 1);
    write_batch(multi, 5, 3, 4, 2);
    anamo_dataset ds;
    anamo_err err = {0};
    const char *one[3][1] = {{plain}, {gz}, {multi}};
    const int n[3] = {3, 4, 5}, first[3] = {0, 7, 4};
    for (int f = 0; f < 3; f++) {
        if (cifar_read(one[f], 1, &ds, &err))
            fail_msg("%s", err.msg);
        expect_shape(&ds, n[f]);
        expect_batch(&ds, 0, n[f], f + 1, first[f]);
        assert_string_equal(ds.source, one[f][0]);
        anamo_dataset_free(&ds);
    }
    /* several files: one dataset, records in list order */
    const char *all[4] = {gz, plain, multi, gz};
    if (cifar_read(all, 4, &ds, &err))
        fail_msg("%s", err.msg);
    expect_shape(&ds, 16);
    expect_batch(&ds, 0, 4, 2, 7);
    expect_batch(&ds, 4, 3, 1, 0);
    expect_batch(&ds, 7, 5, 3, 4);
    expect_batch(&ds, 12, 4, 2, 7);
    anamo_dataset_free(&ds);
}

/* A byte placed at file offset 1 + c·1024 + h·32 + w of a record is channel c (red, green,
 * blue), row h, column w: sample element c·1024 + h·32 + w, and k/255 in a batch. */
static void test_pixel_order(void **state)
{
    static const struct {
        int c, h, w;
        uint8_t v;
    } marks[] = {{0, 2, 5, 11}, {1, 31, 0, 22}, {2, 0, 31, 33}, {2, 31, 31, 255}};
    uint8_t rec[2 * RECORD] = {0};
    rec[0] = 3;
    rec[RECORD] = 9;
    for (size_t i = 0; i < sizeof marks / sizeof marks[0]; i++) {
        rec[1 + marks[i].c * PLANE + marks[i].h * SIDE + marks[i].w] = marks[i].v;
        rec[RECORD + 1 + marks[i].c * PLANE + marks[i].w * SIDE + marks[i].h] = marks[i].v;
    }
    char path[PATH_CAP];
    tmp_path(state, "order.bin.gz", path);
    write_file(path, rec, sizeof rec, 1);
    anamo_dataset ds;
    anamo_err err = {0};
    if (read_one(path, &ds, &err))
        fail_msg("%s", err.msg);
    expect_shape(&ds, 2);
    assert_int_equal(ds.labels[0], 3);
    assert_int_equal(ds.labels[1], 9);
    float *x = malloc(2 * PIXELS * sizeof(float));
    assert_non_null(x);
    data_rows(&ds, 0, 2, x);
    const uint8_t *data = ds.data;
    int nonzero = 0;
    for (int k = 0; k < 2 * PIXELS; k++)
        nonzero += data[k] != 0;
    assert_int_equal(nonzero, 8);
    for (size_t i = 0; i < sizeof marks / sizeof marks[0]; i++) {
        /* record 0 as marked; record 1 transposed, so a swap of h and w would show */
        size_t a = (size_t)marks[i].c * PLANE + (size_t)marks[i].h * SIDE + (size_t)marks[i].w;
        size_t b = PIXELS + (size_t)marks[i].c * PLANE + (size_t)marks[i].w * SIDE +
                   (size_t)marks[i].h;
        assert_int_equal(data[a], marks[i].v);
        assert_int_equal(data[b], marks[i].v);
        assert_true(x[a] == (float)marks[i].v / 255.0f);
    }
    free(x);
    anamo_dataset_free(&ds);
}

static void test_truncated(void **state)
{
    uint8_t *b = records(3, 4, 0);
    anamo_dataset ds;
    anamo_err err = {0};
    for (int gz = 0; gz < 2; gz++) {
        char path[PATH_CAP];
        tmp_path(state, gz ? "cut.bin.gz" : "cut.bin", path);
        write_file(path, b, 2 * RECORD + 100, gz); /* record 2 stops after 100 bytes */
        expect_error(read_one(path, &ds, &err), &err, ANAMO_ERR_FORMAT, path,
                     ": 6246 bytes is not a whole number of 3073-byte records (record 2, at "
                     "offset 6146, is cut after 100 bytes)");
        assert_null(ds.data);
    }
    /* a gzip stream cut short: the bytes that came may even be whole records, still an error */
    char path[PATH_CAP];
    tmp_path(state, "cut-stream.bin.gz", path);
    write_file(path, b, 3 * RECORD, 1);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(truncate(path, st.st_size / 2), 0);
    expect_error(read_one(path, &ds, &err), &err, ANAMO_ERR_FORMAT, path,
                 "compressed stream ends early (truncated file?)");
    assert_null(ds.data);
    free(b);
}

static void test_bad_label(void **state)
{
    uint8_t *b = records(4, 5, 0);
    b[2 * RECORD] = 10;
    char path[PATH_CAP], good[PATH_CAP];
    tmp_path(state, "label.bin", path);
    tmp_path(state, "label-good.bin.gz", good);
    write_file(path, b, 4 * RECORD, 0);
    write_batch(good, 2, 1, 0, 1);
    anamo_dataset ds;
    anamo_err err = {0};
    expect_error(read_one(path, &ds, &err), &err, ANAMO_ERR_FORMAT, path,
                 ": offset 6146: record 2 has label 10, expected 0 to 9");
    /* in a list, the file at fault is named, not the first */
    const char *list[2] = {good, path};
    expect_error(cifar_read(list, 2, &ds, &err), &err, ANAMO_ERR_FORMAT, path,
                 "record 2 has label 10");
    b[2 * RECORD] = 255;
    write_file(path, b, 4 * RECORD, 1);
    expect_error(read_one(path, &ds, &err), &err, ANAMO_ERR_FORMAT, path, "label 255");
    assert_null(ds.data);
    free(b);
}

static void test_empty_and_not_files(void **state)
{
    char empty[PATH_CAP], emptygz[PATH_CAP], dir[PATH_CAP], missing[PATH_CAP];
    tmp_path(state, "empty.bin", empty);
    tmp_path(state, "empty.bin.gz", emptygz);
    tmp_path(state, "adir.bin", dir);
    tmp_path(state, "nothing.bin", missing);
    write_file(empty, "", 0, 0);
    write_file(emptygz, "", 0, 1);
    make_dirs(state, "adir.bin");
    anamo_dataset ds;
    anamo_err err = {0};
    expect_error(read_one(empty, &ds, &err), &err, ANAMO_ERR_FORMAT, empty, ": empty file");
    expect_error(read_one(emptygz, &ds, &err), &err, ANAMO_ERR_FORMAT, emptygz,
                 ": empty: it decompresses to 0 bytes");
    expect_error(read_one(dir, &ds, &err), &err, ANAMO_ERR_IO, dir, ": is a directory");
    expect_error(read_one(missing, &ds, &err), &err, ANAMO_ERR_IO, missing,
                 "No such file or directory");
    expect_error(cifar_read(NULL, 1, &ds, &err), &err, ANAMO_ERR_ARG, "cifar10", NULL);
    assert_null(ds.data);
}

/* ---- specs -------------------------------------------------------------------------------- */

/* The five training batches (2, 1, 3, 1, 2 records, alternately plain and gzipped, batch b
 * tagged 10 + b with labels from b) and the test batch (3 records, tag 20) under root/sub. */
static void make_fake_set(void **state, const char *root, const char *sub)
{
    static const int sizes[5] = {2, 1, 3, 1, 2};
    char rel[PATH_CAP], dir[PATH_CAP], path[PATH_CAP + 64];
    snprintf(rel, sizeof rel, "%s/%s", root, sub);
    make_dirs(state, rel);
    tmp_path(state, rel, dir);
    for (int b = 1; b <= 5; b++) {
        snprintf(path, sizeof path, "%s/data_batch_%d.bin%s", dir, b, b % 2 ? ".gz" : "");
        write_batch(path, sizes[b - 1], 10 + b, b, b % 2);
    }
    snprintf(path, sizeof path, "%s/test_batch.bin.gz", dir);
    write_batch(path, 3, 20, 0, 1);
}

static void test_open_specs(void **state)
{
    static const char *const layouts[2][2] = {{"ours", "cifar10/cifar-10-batches-bin"},
                                              {"tarball", "cifar-10-batches-bin"}};
    for (int l = 0; l < 2; l++) {
        char root[PATH_CAP];
        make_fake_set(state, layouts[l][0], layouts[l][1]);
        tmp_path(state, layouts[l][0], root);
        anamo_dataset ds;
        anamo_err err = {0};
        if (anamo_dataset_open("cifar10:train", root, &ds, &err))
            fail_msg("%s", err.msg);
        expect_shape(&ds, 9);
        expect_batch(&ds, 0, 2, 11, 1);
        expect_batch(&ds, 2, 1, 12, 2);
        expect_batch(&ds, 3, 3, 13, 3);
        expect_batch(&ds, 6, 1, 14, 4);
        expect_batch(&ds, 7, 2, 15, 5);
        assert_string_equal(ds.source, "cifar10:train");
        anamo_dataset_free(&ds);
        if (anamo_dataset_open("cifar10:test", root, &ds, &err))
            fail_msg("%s", err.msg);
        expect_shape(&ds, 3);
        expect_batch(&ds, 0, 3, 20, 0);
        anamo_dataset_free(&ds);
        if (anamo_dataset_open("cifar10:train@4", root, &ds, &err))
            fail_msg("%s", err.msg);
        expect_shape(&ds, 4);
        expect_batch(&ds, 0, 2, 11, 1);
        expect_batch(&ds, 2, 1, 12, 2);
        expect_batch(&ds, 3, 1, 13, 3);
        assert_string_equal(ds.source, "cifar10:train@4");
        anamo_dataset_free(&ds);
        expect_error(anamo_dataset_open("cifar10:valid", root, &ds, &err), &err, ANAMO_ERR_ARG,
                     "cifar10:valid: unknown split 'valid'; use cifar10:train or cifar10:test",
                     NULL);
    }
    /* a damaged batch: the spec, then the reader's message with the path */
    char root[PATH_CAP], path[PATH_CAP];
    tmp_path(state, "ours", root);
    tmp_path(state, "ours/cifar10/cifar-10-batches-bin/data_batch_4.bin", path);
    write_file(path, "\x01\x02", 2, 0);
    anamo_dataset ds;
    anamo_err err = {0};
    expect_error(anamo_dataset_open("cifar10:train", root, &ds, &err), &err, ANAMO_ERR_FORMAT,
                 "cifar10:train: ", path);
    assert_null(ds.data);
}

static void test_open_missing(void **state)
{
    char root[PATH_CAP], want[2 * PATH_CAP + 512], path[PATH_CAP];
    make_dirs(state, "bare");
    tmp_path(state, "bare", root);
    anamo_dataset ds;
    anamo_err err = {0};
    snprintf(want, sizeof want,
             "cifar10:train: cannot find data_batch_1.bin[.gz], "
             "data_batch_2.bin[.gz], data_batch_3.bin[.gz], data_batch_4.bin[.gz], "
             "data_batch_5.bin[.gz] in %s/cifar10/cifar-10-batches-bin or "
             "%s/cifar-10-batches-bin (set ANAMO_DATA or put the files there: download " URL
             " and extract it under $ANAMO_DATA/cifar10/)",
             root, root);
    expect_error(anamo_dataset_open("cifar10:train", root, &ds, &err), &err, ANAMO_ERR_IO, want,
                 NULL);
    assert_string_equal(err.msg, want);
    expect_error(anamo_dataset_open("cifar10:test@5", root, &ds, &err), &err, ANAMO_ERR_IO,
                 "cifar10:test: cannot find test_batch.bin[.gz] in ", URL);
    /* some batches there: the message names those missing */
    make_dirs(state, "bare/cifar-10-batches-bin");
    for (int b = 1; b <= 3; b++) {
        snprintf(want, sizeof want, "bare/cifar-10-batches-bin/data_batch_%d.bin", b);
        tmp_path(state, want, path);
        write_batch(path, 1, b, 0, 0);
    }
    snprintf(want, sizeof want,
             "cifar10:train: %s/cifar-10-batches-bin has only some of the "
             "CIFAR-10 batches: data_batch_4.bin[.gz], data_batch_5.bin[.gz] missing (the full "
             "set comes in " URL ")",
             root);
    expect_error(anamo_dataset_open("cifar10:train", root, &ds, &err), &err, ANAMO_ERR_IO, want,
                 NULL);
    assert_null(ds.data);
}

/* ---- the real CIFAR-10, when the shared data is there ------------------------------------- */

static double seconds_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static void test_real_cifar(void **state)
{
    const char *src = getenv("ANAMO_SOURCE_DIR");
    char root[PATH_CAP], dir[PATH_CAP + 64];
    struct stat st;
    snprintf(root, sizeof root, "%s/../shared/data", src ? src : "..");
    snprintf(dir, sizeof dir, "%s/cifar10/cifar-10-batches-bin", root);
    if (!src || stat(dir, &st) != 0)
        skip();
    const struct {
        const char *spec;
        int64_t n;
    } sets[] = {{"cifar10:train", 50000}, {"cifar10:test", 10000}};
    double total = 0;
    for (int s = 0; s < 2; s++) {
        anamo_dataset ds;
        anamo_err err = {0};
        double t0 = seconds_now();
        if (anamo_dataset_open(sets[s].spec, root, &ds, &err))
            fail_msg("%s", err.msg);
        double dt = seconds_now() - t0;
        total += dt;
        print_message("%s: %lld images in %.3f s\n", sets[s].spec, (long long)ds.n, dt);
        expect_shape(&ds, sets[s].n);
        int64_t classes[10] = {0};
        for (int64_t i = 0; i < ds.n; i++) {
            assert_true(ds.labels[i] < 10);
            classes[ds.labels[i]]++;
        }
        for (int c = 0; c < 10; c++) /* CIFAR-10 is balanced: n/10 images per class */
            assert_int_equal(classes[c], ds.n / 10);
        if (s == 1) {
            /* The README's figure is given to 4 decimals; 0.002 allows for rounding and for
             * nothing else that could move a mean of 30.7 million bytes. */
            const uint8_t *data = ds.data;
            uint64_t sum = 0;
            for (int64_t k = 0; k < ds.n * ds.dim; k++)
                sum += data[k];
            double mean = (double)sum / ((double)ds.n * (double)ds.dim) / 255.0;
            print_message("cifar10:test: mean pixel %.4f\n", mean);
            assert_true(mean > 0.4765 - 0.002 && mean < 0.4765 + 0.002);
        }
        anamo_dataset_free(&ds);
    }
    print_message("all 60000 images in %.3f s\n", total);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),          cmocka_unit_test(test_pixel_order),
        cmocka_unit_test(test_truncated),           cmocka_unit_test(test_bad_label),
        cmocka_unit_test(test_empty_and_not_files), cmocka_unit_test(test_open_specs),
        cmocka_unit_test(test_open_missing),        cmocka_unit_test(test_real_cifar),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
