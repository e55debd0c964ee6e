/* test_data.c — dataset readers, spec resolution and batch copies, against files this test
 * writes itself in a fresh directory under /tmp. Round trips must be exact (bytes are bytes,
 * float32 is written and read bit for bit, float64 must equal C's own (float) conversion);
 * for each kind of damage the test checks the error code and the part of the message a user
 * needs to find the fault (the path, the offset or line). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <pthread.h>
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
#define FASHION_SYSTEM_DIR "/usr/share/datasets/fashion-mnist"

typedef temp_dir_fixture fixture;

/* ---- files -------------------------------------------------------------------------------- */

static int group_setup(void **state)
{
    return temp_dir_setup(state, "/tmp/anamo_test_data_XXXXXX");
}

static int group_teardown(void **state) { return temp_dir_teardown(state); }

static void tmp_path(void **state, const char *name, char *out)
{
    const fixture *fx = *state;
    join_path(out, PATH_CAP, fx->dir, name);
}

static void make_dir(void **state, const char *name)
{
    char path[PATH_CAP];
    tmp_path(state, name, path);
    assert_int_equal(mkdir(path, 0700), 0);
}

/* Writes len bytes to path, plain or gzip-compressed with zlib (as MNIST ships). */
static void write_file(const char *path, const void *bytes, size_t len, int gz)
{
    if (gz) {
        gzFile f = gzopen(path, "wb");
        assert_non_null(f);
        if (len)
            assert_int_equal(gzwrite(f, bytes, (unsigned)len), (int)len);
        assert_int_equal(gzclose(f), Z_OK);
    } else {
        write_bytes(path, bytes, len);
    }
}

static void write_text(const char *path, const char *text)
{
    write_file(path, text, strlen(text), 0);
}

/* ---- IDX bytes ---------------------------------------------------------------------------- */

static void put_be32(uint8_t *b, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        b[i] = (uint8_t)(v >> (24 - 8 * i));
}

static uint8_t pixel(size_t k) { return (uint8_t)(k * 37 + 11); }

/* An IDX images file (magic 2051) of n images rows×cols with pixel(k) at byte k of the body;
 * *len gets its size. */
static uint8_t *idx_images(uint32_t magic, uint32_t n, uint32_t rows, uint32_t cols, size_t *len)
{
    size_t body = (size_t)n * rows * cols;
    uint8_t *b = malloc(16 + body);
    assert_non_null(b);
    put_be32(b, magic);
    put_be32(b + 4, n);
    put_be32(b + 8, rows);
    put_be32(b + 12, cols);
    for (size_t k = 0; k < body; k++)
        b[16 + k] = pixel(k);
    *len = 16 + body;
    return b;
}

static void write_idx_images(const char *path, uint32_t n, uint32_t rows, uint32_t cols, int gz)
{
    size_t len;
    uint8_t *b = idx_images(2051, n, rows, cols, &len);
    write_file(path, b, len, gz);
    free(b);
}

static void write_idx_labels(const char *path, const uint8_t *labels, uint32_t n, int gz)
{
    uint8_t *b = malloc(8 + (size_t)n);
    assert_non_null(b);
    put_be32(b, 2049);
    put_be32(b + 4, n);
    memcpy(b + 8, labels, n);
    write_file(path, b, 8 + (size_t)n, gz);
    free(b);
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

/* ---- IDX ---------------------------------------------------------------------------------- */

static void test_idx_round_trip(void **state)
{
    for (int gz = 0; gz < 2; gz++) {
        char path[PATH_CAP];
        tmp_path(state, gz ? "rt-images.idx.gz" : "rt-images.idx", path);
        write_idx_images(path, 3, 2, 5, gz);
        anamo_dataset ds;
        anamo_err err = {0};
        assert_int_equal(anamo_idx_read(path, &ds, &err), ANAMO_OK);
        assert_int_equal(ds.n, 3);
        assert_int_equal(ds.c, 1);
        assert_int_equal(ds.h, 2);
        assert_int_equal(ds.w, 5);
        assert_int_equal(ds.dim, 10);
        assert_int_equal(ds.dtype, ANAMO_U8);
        assert_null(ds.labels);
        assert_string_equal(ds.source, path);
        const uint8_t *px = ds.data;
        for (size_t k = 0; k < 30; k++)
            assert_int_equal(px[k], pixel(k));
        anamo_dataset_free(&ds);
        assert_null(ds.data);
    }
}

static void test_idx_labels(void **state)
{
    const uint8_t want[4] = {5, 0, 4, 1};
    for (int gz = 0; gz < 2; gz++) {
        char path[PATH_CAP];
        tmp_path(state, gz ? "lab-labels.idx.gz" : "lab-labels.idx", path);
        write_idx_labels(path, want, 4, gz);
        uint8_t *labels = NULL;
        int64_t n = 0;
        anamo_err err = {0};
        assert_int_equal(anamo_idx_read_labels(path, &labels, &n, &err), ANAMO_OK);
        assert_int_equal(n, 4);
        assert_memory_equal(labels, want, 4);
        anamo_free(labels);
    }
    /* each reader refuses the other kind of file, and says which kind it is */
    char images[PATH_CAP], labels_path[PATH_CAP];
    tmp_path(state, "lab-images.idx", images);
    tmp_path(state, "lab-labels.idx", labels_path);
    write_idx_images(images, 2, 2, 2, 0);
    uint8_t *labels = NULL;
    int64_t n = 0;
    anamo_dataset ds;
    anamo_err err = {0};
    expect_error(anamo_idx_read_labels(images, &labels, &n, &err), &err, ANAMO_ERR_FORMAT,
                 "magic number 2051", "images file");
    assert_null(labels);
    expect_error(anamo_idx_read(labels_path, &ds, &err), &err, ANAMO_ERR_FORMAT,
                 "magic number 2049", "labels file");
    assert_null(ds.data);
}

/* Every prefix of a good file is refused with the offset where the shortfall starts and how
 * much was there; so is a file with bytes after the body. */
static void test_idx_truncated(void **state)
{
    size_t len;
    uint8_t *full = idx_images(2051, 3, 2, 5, &len); /* 16 + 30 bytes */
    const struct {
        size_t keep;
        const char *part;
    } cases[] = {
        {1, "offset 0: expected 16 bytes of IDX images header, found 1"},
        {4, "offset 0: expected 16 bytes of IDX images header, found 4"},
        {15, "offset 0: expected 16 bytes of IDX images header, found 15"},
        {16, "offset 16: expected 30 bytes of images, found 0"},
        {23, "offset 16: expected 30 bytes of images, found 7"},
        {45, "offset 16: expected 30 bytes of images, found 29"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        for (int gz = 0; gz < 2; gz++) {
            char name[64], path[PATH_CAP];
            snprintf(name, sizeof name, "cut%zu.idx%s", cases[i].keep, gz ? ".gz" : "");
            tmp_path(state, name, path);
            write_file(path, full, cases[i].keep, gz);
            anamo_dataset ds;
            anamo_err err = {0};
            expect_error(anamo_idx_read(path, &ds, &err), &err, ANAMO_ERR_FORMAT, path,
                         cases[i].part);
            assert_null(ds.data);
        }
    uint8_t *longer = malloc(len + 3);
    assert_non_null(longer);
    memcpy(longer, full, len);
    memset(longer + len, 0, 3);
    char path[PATH_CAP];
    tmp_path(state, "trailing.idx", path);
    write_file(path, longer, len + 3, 0);
    anamo_dataset ds;
    anamo_err err = {0};
    expect_error(anamo_idx_read(path, &ds, &err), &err, ANAMO_ERR_FORMAT, path,
                 "offset 46: 3 trailing bytes after 30 bytes of images");
    free(longer);
    free(full);
}

/* A .gz file cut short (an interrupted download) names the file and says the stream ends, with
 * the offset of the file's end and how much data came before it (the header's 16 bytes and
 * some of the images: the stream's fault is named, not the shortfall it causes). */
static void test_idx_truncated_gzip(void **state)
{
    char whole[PATH_CAP], cut[PATH_CAP];
    tmp_path(state, "whole-images.idx.gz", whole);
    tmp_path(state, "cut-images.idx.gz", cut);
    write_idx_images(whole, 200, 28, 28, 1);
    size_t len;
    uint8_t *gz = read_whole(whole, &len);
    write_file(cut, gz, len / 2, 0);
    free(gz);
    anamo_dataset ds;
    anamo_err err = {0};
    char at[64];
    snprintf(at, sizeof at, "the file ends at offset %zu", len / 2);
    expect_error(anamo_idx_read(cut, &ds, &err), &err, ANAMO_ERR_FORMAT, cut,
                 "compressed stream ends early (truncated file?)");
    if (!strstr(err.msg, at))
        fail_msg("'%s' not in: %s", at, err.msg);
    assert_null(ds.data);
}

static void write_header(const char *path, uint32_t magic, uint32_t n, uint32_t rows, uint32_t cols)
{
    uint8_t h[16];
    put_be32(h, magic);
    put_be32(h + 4, n);
    put_be32(h + 8, rows);
    put_be32(h + 12, cols);
    write_file(path, h, sizeof h, 0);
}

static void test_idx_bad_header(void **state)
{
    const struct {
        uint32_t magic, n, rows, cols;
        const char *part;
    } cases[] = {
        {1234, 1, 1, 1, "offset 0: magic number 1234 (0x000004d2), expected 2051"},
        {0x03080000, 1, 1, 1, "little-endian"},
        {2051, 0, 28, 28, "offset 4: image count is 0"},
        {2051, 10, 0, 28, "offset 8: rows is 0"},
        {2051, 10, 28, 0, "offset 12: cols is 0"},
        {2051, 0xffffffffu, 0xffffffffu, 0xffffffffu,
         "offset 8: rows 4294967295 is more than 2147483647"},
        {2051, 0xffffffffu, 0xffffu, 0xffffu,
         "offset 8: rows 65535 makes the data larger than the 17179869184-byte limit"},
        {2051, 1, 0x80000000u, 1, "offset 8: rows 2147483648 is more than 2147483647"},
        {2051, 65536, 65536, 65536, "offset 12: cols 65536 makes the data larger"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char name[32], path[PATH_CAP];
        snprintf(name, sizeof name, "header%zu.idx", i);
        tmp_path(state, name, path);
        write_header(path, cases[i].magic, cases[i].n, cases[i].rows, cases[i].cols);
        anamo_dataset ds;
        anamo_err err = {0};
        expect_error(anamo_idx_read(path, &ds, &err), &err, ANAMO_ERR_FORMAT, path, cases[i].part);
    }
}

static void test_idx_not_a_file(void **state)
{
    char empty[PATH_CAP], empty_gz[PATH_CAP], dir[PATH_CAP], missing[PATH_CAP];
    tmp_path(state, "empty.idx", empty);
    tmp_path(state, "empty.idx.gz", empty_gz);
    tmp_path(state, "a-directory.idx", dir);
    tmp_path(state, "missing.idx", missing);
    write_file(empty, "", 0, 0);
    write_file(empty_gz, "", 0, 1);
    make_dir(state, "a-directory.idx");
    anamo_dataset ds;
    anamo_err err = {0};
    expect_error(anamo_idx_read(empty, &ds, &err), &err, ANAMO_ERR_FORMAT, empty, ": empty file");
    expect_error(anamo_idx_read(empty_gz, &ds, &err), &err, ANAMO_ERR_FORMAT, empty_gz,
                 "offset 0: expected 16 bytes of IDX images header, found 0");
    expect_error(anamo_idx_read(dir, &ds, &err), &err, ANAMO_ERR_IO, dir, ": is a directory");
    expect_error(anamo_idx_read(missing, &ds, &err), &err, ANAMO_ERR_IO, missing, "No such file");
    uint8_t *labels = NULL;
    int64_t n = 0;
    expect_error(anamo_idx_read_labels(dir, &labels, &n, &err), &err, ANAMO_ERR_IO, dir,
                 ": is a directory");
    /* one line each: a user sees it in a log as one entry */
    assert_null(strchr(err.msg, '\n'));
}

/* ---- NPY ---------------------------------------------------------------------------------- */

/* Checks what numpy.save would have written: v1.0, the dict as numpy formats it, padded with
 * spaces and '\n' so the data starts at a multiple of 64, then exactly the data. */
static void check_npy_layout(const char *path, const char *dict, size_t data_bytes)
{
    size_t len;
    uint8_t *b = read_whole(path, &len);
    assert_memory_equal(b, "\x93NUMPY\x01\x00", 8);
    size_t hlen = b[8] | (size_t)b[9] << 8;
    assert_int_equal((10 + hlen) % 64, 0);
    assert_int_equal(len, 10 + hlen + data_bytes);
    assert_memory_equal(b + 10, dict, strlen(dict));
    for (size_t i = 10 + strlen(dict); i < 10 + hlen - 1; i++)
        assert_int_equal(b[i], ' ');
    assert_int_equal(b[10 + hlen - 1], '\n');
    free(b);
}

static void test_npy_u8_round_trip(void **state)
{
    const struct {
        int ndim;
        int64_t shape[4];
        int c, h, w;
        const char *dict;
    } cases[] = {
        {4,
         {2, 3, 4, 5},
         3,
         4,
         5,
         "{'descr': '|u1', 'fortran_order': False, 'shape': (2, 3, 4, 5), }"},
        {3,
         {2, 4, 5, 0},
         1,
         4,
         5,
         "{'descr': '|u1', 'fortran_order': False, 'shape': (2, 4, 5), }"},
    };
    uint8_t data[120];
    for (size_t k = 0; k < sizeof data; k++)
        data[k] = pixel(k);
    for (size_t i = 0; i < 2; i++) {
        char name[32], path[PATH_CAP];
        snprintf(name, sizeof name, "u8-%zu.npy", i);
        tmp_path(state, name, path);
        anamo_err err = {0};
        assert_int_equal(anamo_npy_write_u8(path, data, cases[i].ndim, cases[i].shape, &err),
                         ANAMO_OK);
        int64_t count = (int64_t)cases[i].c * cases[i].h * cases[i].w * 2;
        check_npy_layout(path, cases[i].dict, (size_t)count);
        anamo_dataset ds;
        assert_int_equal(anamo_npy_read(path, &ds, &err), ANAMO_OK);
        assert_int_equal(ds.n, 2);
        assert_int_equal(ds.c, cases[i].c);
        assert_int_equal(ds.h, cases[i].h);
        assert_int_equal(ds.w, cases[i].w);
        assert_int_equal(ds.dim, count / 2);
        assert_int_equal(ds.dtype, ANAMO_U8);
        assert_memory_equal(ds.data, data, (size_t)count);
        anamo_dataset_free(&ds);
    }
}

static void test_npy_f32_round_trip(void **state)
{
    float data[12];
    for (int k = 0; k < 12; k++)
        data[k] = (float)(k - 5) / 3.0f;
    const struct {
        int ndim;
        int64_t shape[2];
        int64_t n;
        int c;
        const char *dict;
    } cases[] = {
        {2, {3, 4}, 3, 4, "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }"},
        {1, {12, 0}, 12, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (12,), }"},
    };
    for (size_t i = 0; i < 2; i++) {
        char name[32], path[PATH_CAP];
        snprintf(name, sizeof name, "f4-%zu.npy", i);
        tmp_path(state, name, path);
        anamo_err err = {0};
        assert_int_equal(anamo_npy_write_f32(path, data, cases[i].ndim, cases[i].shape, &err),
                         ANAMO_OK);
        check_npy_layout(path, cases[i].dict, sizeof data);
        anamo_dataset ds;
        assert_int_equal(anamo_npy_read(path, &ds, &err), ANAMO_OK);
        assert_int_equal(ds.n, cases[i].n);
        assert_int_equal(ds.c, cases[i].c);
        assert_int_equal(ds.h, 1);
        assert_int_equal(ds.w, 1);
        assert_int_equal(ds.dtype, ANAMO_F32);
        assert_memory_equal(ds.data, data, sizeof data); /* bit for bit */
        anamo_dataset_free(&ds);
    }
    anamo_err err = {0};
    char path[PATH_CAP];
    tmp_path(state, "no-such-dir/x.npy", path);
    int64_t shape5[5] = {1, 1, 1, 1, 1};
    expect_error(anamo_npy_write_f32(path, data, 2, shape5, &err), &err, ANAMO_ERR_IO, path,
                 "cannot create");
    expect_error(anamo_npy_write_f32(path, data, 5, shape5, &err), &err, ANAMO_ERR_ARG,
                 "5 dimensions", NULL);
    expect_error(anamo_npy_write_f32(path, data, 0, shape5, &err), &err, ANAMO_ERR_ARG,
                 "0 dimensions", NULL);
}

/* An NPY file written by hand: version major.0, dict padded to 64 bytes, then data. */
static void write_npy_raw(const char *path, int major, const char *dict, const void *data,
                          size_t len)
{
    size_t pre = major == 1 ? 10 : 12, dlen = strlen(dict);
    size_t hlen = (pre + dlen + 1 + 63) / 64 * 64 - pre;
    uint8_t *b = malloc(pre + hlen + len);
    assert_non_null(b);
    memcpy(b, "\x93NUMPY", 6);
    b[6] = (uint8_t)major;
    b[7] = 0;
    for (size_t i = 0; i < pre - 8; i++)
        b[8 + i] = (uint8_t)(hlen >> (8 * i));
    memset(b + pre, ' ', hlen);
    memcpy(b + pre, dict, dlen);
    b[pre + hlen - 1] = '\n';
    if (len)
        memcpy(b + pre + hlen, data, len);
    write_file(path, b, pre + hlen + len, 0);
    free(b);
}

/* float64 narrowed to float32; the header with keys reordered, odd spacing and both quotes. */
static void test_npy_f8(void **state)
{
    const double d[6] = {0.1, -2.5, 1e-3, 1234.5678, 0.0, 3.0};
    uint8_t le[48];
    for (int i = 0; i < 6; i++) {
        uint64_t u;
        memcpy(&u, &d[i], 8);
        for (int k = 0; k < 8; k++)
            le[8 * i + k] = (uint8_t)(u >> (8 * k));
    }
    const char *dict = "{ 'shape' : ( 2 , 3 ) ,'fortran_order':False, \"descr\" : '<f8' }";
    for (int major = 1; major <= 3; major++) {
        char name[32], path[PATH_CAP];
        snprintf(name, sizeof name, "f8-v%d.npy", major);
        tmp_path(state, name, path);
        write_npy_raw(path, major, dict, le, sizeof le);
        anamo_dataset ds;
        anamo_err err = {0};
        assert_int_equal(anamo_npy_read(path, &ds, &err), ANAMO_OK);
        assert_int_equal(ds.n, 2);
        assert_int_equal(ds.c, 3);
        assert_int_equal(ds.dtype, ANAMO_F32);
        const float *x = ds.data;
        for (int i = 0; i < 6; i++)
            assert_true(x[i] == (float)d[i]);
        anamo_dataset_free(&ds);
    }
}

static void test_npy_rejects(void **state)
{
    uint8_t data[64] = {0};
    const double huge = 1e300;
    memcpy(data, &huge, sizeof huge);
    const struct {
        const char *dict;
        size_t len;
        const char *part;
        int major;
    } cases[] = {
        {"{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }", 24,
         "fortran_order is True; only C-order arrays are read", 1},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", 10,
         "offset 128: expected 24 bytes of data, found 10", 1},
        {"{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), }", 20,
         "offset 128: expected 48 bytes of data, found 20", 1},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", 28,
         "offset 152: 4 trailing bytes after 24 bytes of data", 1},
        {"{'descr': '>f4', 'fortran_order': False, 'shape': (2, 3), }", 24,
         "big-endian dtype '>f4'", 1},
        {"{'descr': '<i8', 'fortran_order': False, 'shape': (2,), }", 16, "dtype '<i8' is not read",
         1},
        {"{'descr': '<f4', 'fortran_order': False, }", 0, "missing key 'shape'", 1},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (1, 1, 1, 1, 1), }", 4,
         "at most 4 dimensions", 1},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (), }", 4, "shape (): a scalar", 1},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (0, 3), }", 0, "has no elements", 1},
        {"{'descr': '<f4', 'fortran_order': Maybe, 'shape': (2,), }", 8, "True or False", 1},
        {"{'descr': '<f4', 'colour': 'blue', 'fortran_order': False, 'shape': (2,), }", 8,
         "unknown key 'colour'", 1},
        {"{'descr': '<f8', 'fortran_order': False, 'shape': (1,), }", 8,
         "element 0: 1e+300 does not fit in float32", 1},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", 8, "NPY version 4.0", 4},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char name[32], path[PATH_CAP];
        snprintf(name, sizeof name, "bad%zu.npy", i);
        tmp_path(state, name, path);
        write_npy_raw(path, cases[i].major, cases[i].dict, data, cases[i].len);
        anamo_dataset ds;
        anamo_err err = {0};
        expect_error(anamo_npy_read(path, &ds, &err), &err, ANAMO_ERR_FORMAT, path, cases[i].part);
        assert_null(ds.data);
    }
    char path[PATH_CAP];
    tmp_path(state, "not-numpy.npy", path);
    write_text(path, "hello, this is text and not an array at all\n");
    anamo_dataset ds;
    anamo_err err = {0};
    expect_error(anamo_npy_read(path, &ds, &err), &err, ANAMO_ERR_FORMAT, path, "not an NPY file");
    tmp_path(state, "short-header.npy", path);
    write_file(path, "\x93NUMPY\x01\x00\x76\x00{'descr'", 17, 0);
    expect_error(anamo_npy_read(path, &ds, &err), &err, ANAMO_ERR_FORMAT, path,
                 "offset 10: expected 118 bytes of header, found 7");
}

/* ---- CSV ---------------------------------------------------------------------------------- */

static void expect_table(void **state, const char *name, const char *text, int64_t n, int c,
                         const float *want)
{
    char path[PATH_CAP];
    tmp_path(state, name, path);
    write_text(path, text);
    anamo_dataset ds;
    anamo_err err = {0};
    int rc = anamo_csv_read(path, &ds, &err);
    if (rc)
        fail_msg("%s: %s", name, err.msg);
    assert_int_equal(ds.n, n);
    assert_int_equal(ds.c, c);
    assert_int_equal(ds.h, 1);
    assert_int_equal(ds.w, 1);
    assert_int_equal(ds.dim, c);
    assert_int_equal(ds.dtype, ANAMO_F32);
    const float *x = ds.data;
    for (int64_t k = 0; k < n * c; k++)
        assert_true(x[k] == want[k]);
    anamo_dataset_free(&ds);
}

static void test_csv_tables(void **state)
{
    const float t23[] = {1, 2, 3, 4.5f, -6, 7e-1f};
    expect_table(state, "header.csv", "x,y,z\n1,2,3\n4.5,-6,7e-1\n", 2, 3, t23);
    expect_table(state, "plain.csv", "1,2,3\n4.5,-6,7e-1\n", 2, 3, t23);
    expect_table(state, "crlf.csv", "\"x\";\"y\";\"z\"\r\n1;2;3\r\n4.5;-6;7e-1", 2, 3, t23);
    expect_table(state, "tabs.tsv.csv", "1\t2\t3\n 4.5 \t -6\t7e-1 \n\n\n", 2, 3, t23);
    expect_table(state, "spaces.csv", "\xef\xbb\xbf a , b , c \n\n1 , 2,3\n\n4.5,-6 ,7e-1", 2, 3,
                 t23);
    const float col[] = {1, 2, 3};
    expect_table(state, "column.csv", "value\n1\n2\n3\n", 3, 1, col);
}

/* No fixed line length: one row of 100000 columns. */
static void test_csv_long_line(void **state)
{
    enum { COLS = 100000 };
    char *text = malloc((size_t)COLS * 8 + 2);
    float *want = malloc(COLS * sizeof(float));
    assert_non_null(text);
    assert_non_null(want);
    size_t used = 0;
    for (int k = 0; k < COLS; k++) {
        used += (size_t)sprintf(text + used, "%s%d", k ? "," : "", k % 1000);
        want[k] = (float)(k % 1000);
    }
    strcpy(text + used, "\n");
    expect_table(state, "wide.csv", text, 1, COLS, want);
    free(text);
    free(want);
}

static void test_csv_errors(void **state)
{
    const struct {
        const char *text;
        const char *part;
    } cases[] = {
        {"a,b,c\n1,2,3\n4,5\n", "line 3: expected 3 columns, found 2"},
        {"1,2,3\n4,5,6,7\n", "line 2: expected 3 columns, found 4"},
        {"a,b,c\r\n1,2,3\r\n\r\n1,2,3\r\n1,2\r\n", "line 5: expected 3 columns, found 2"},
        {"1,2,3\n4,5,abc\n", "line 2, column 3: 'abc' is not a number"},
        {"1,2,3\n4,,6\n", "line 2, column 2: empty field"},
        {"1,2,3\n4,nan,6\n", "line 2, column 2: 'nan' is not a finite number"},
        {"1,2,3\n4,1e39,6\n", "line 2, column 2: '1e39' does not fit in float32"},
        {"1,2,3\n4,5 6,7\n", "line 2, column 2: '5 6' is not a number"},
        {"a,b;c\n1,2,3\n", "line 1: mixes ',' and ';' delimiters"},
        {"a,b,c\n", "a header line and no data rows"},
        {"\n  \n\n", "no data rows"},
        {"", "empty file"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char name[32], path[PATH_CAP];
        snprintf(name, sizeof name, "bad%zu.csv", i);
        tmp_path(state, name, path);
        write_text(path, cases[i].text);
        anamo_dataset ds;
        anamo_err err = {0};
        expect_error(anamo_csv_read(path, &ds, &err), &err, ANAMO_ERR_FORMAT, path, cases[i].part);
        assert_null(ds.data);
    }
    char dir[PATH_CAP];
    tmp_path(state, "dir.csv", dir);
    make_dir(state, "dir.csv");
    anamo_dataset ds;
    anamo_err err = {0};
    expect_error(anamo_csv_read(dir, &ds, &err), &err, ANAMO_ERR_IO, dir, "is a directory");
}

/* ---- opening by spec ---------------------------------------------------------------------- */

static const uint8_t FAKE_LABELS[4] = {5, 0, 4, 1};

/* root/<set>/ with 4 training images of 3×3 (plain) and their labels (gzipped). */
static void make_fake_set(void **state, const char *root, const char *set, uint32_t labels)
{
    char dir[PATH_CAP], path[PATH_CAP];
    snprintf(dir, sizeof dir, "%s/%s", root, set);
    make_dir(state, dir);
    snprintf(path, sizeof path, "%s/%s/train-images-idx3-ubyte", root, set);
    tmp_path(state, path, dir);
    write_idx_images(dir, 4, 3, 3, 0);
    snprintf(path, sizeof path, "%s/%s/train-labels-idx1-ubyte.gz", root, set);
    tmp_path(state, path, dir);
    write_idx_labels(dir, FAKE_LABELS, labels, 1);
}

static void test_open_mnist(void **state)
{
    char root[PATH_CAP];
    make_dir(state, "root");
    make_fake_set(state, "root", "mnist", 4);
    tmp_path(state, "root", root);
    anamo_dataset ds;
    anamo_err err = {0};
    assert_int_equal(anamo_dataset_open("mnist:train", root, &ds, &err), ANAMO_OK);
    assert_int_equal(ds.n, 4);
    assert_int_equal(ds.h, 3);
    assert_int_equal(ds.w, 3);
    assert_non_null(ds.labels);
    assert_memory_equal(ds.labels, FAKE_LABELS, 4);
    assert_string_equal(ds.source, "mnist:train");
    anamo_dataset_free(&ds);

    assert_int_equal(anamo_dataset_open("mnist:train@2", root, &ds, &err), ANAMO_OK);
    assert_int_equal(ds.n, 2);
    assert_memory_equal(ds.labels, FAKE_LABELS, 2);
    for (size_t k = 0; k < 18; k++)
        assert_int_equal(((const uint8_t *)ds.data)[k], pixel(k));
    assert_string_equal(ds.source, "mnist:train@2");
    anamo_dataset_free(&ds);

    expect_error(anamo_dataset_open("mnist:train@5", root, &ds, &err), &err, ANAMO_ERR_ARG,
                 "mnist:train@5: asks for 5 samples, there are only 4", NULL);
    expect_error(anamo_dataset_open("mnist:train@0", root, &ds, &err), &err, ANAMO_ERR_ARG,
                 "at least 1", NULL);
    expect_error(anamo_dataset_open("mnist:val", root, &ds, &err), &err, ANAMO_ERR_ARG,
                 "mnist:val: unknown split 'val'; use mnist:train or mnist:test", NULL);
    expect_error(anamo_dataset_open("cifar100:train", root, &ds, &err), &err, ANAMO_ERR_ARG,
                 "unknown dataset 'cifar100:train'", "mnist:train, mnist:test");
    expect_error(anamo_dataset_open("", root, &ds, &err), &err, ANAMO_ERR_ARG, "PATH.npy", NULL);
    assert_null(ds.data);
}

static void test_open_mnist_missing(void **state)
{
    char root[PATH_CAP], want[PATH_CAP + 128], path[PATH_CAP];
    make_dir(state, "root2");
    make_fake_set(state, "root2", "mnist", 3); /* 3 labels for 4 images */
    tmp_path(state, "root2", root);
    anamo_dataset ds;
    anamo_err err = {0};
    snprintf(want, sizeof want,
             "mnist:test: cannot find t10k-images-idx3-ubyte(.gz) in %s/mnist "
             "(set ANAMO_DATA or put the files there; download from "
             "http://yann.lecun.com/exdb/mnist/ or https://ossci-datasets.s3.amazonaws.com/"
             "mnist/)",
             root);
    expect_error(anamo_dataset_open("mnist:test", root, &ds, &err), &err, ANAMO_ERR_IO, want, NULL);
    assert_string_equal(err.msg, want);
    expect_error(anamo_dataset_open("mnist:train", root, &ds, &err), &err, ANAMO_ERR_FORMAT,
                 "mnist:train: ", "3 labels for the 4 images");
    tmp_path(state, "root2/mnist/t10k-images-idx3-ubyte.gz", path);
    write_idx_images(path, 2, 3, 3, 1);
    expect_error(anamo_dataset_open("mnist:test", root, &ds, &err), &err, ANAMO_ERR_IO,
                 "cannot find t10k-labels-idx1-ubyte(.gz)", path);
    /* a damaged file: the spec, then the reader's own message with path and offset */
    tmp_path(state, "root2/mnist/t10k-labels-idx1-ubyte", path);
    write_text(path, "oop");
    expect_error(anamo_dataset_open("mnist:test", root, &ds, &err), &err, ANAMO_ERR_FORMAT,
                 "mnist:test: ",
                 "t10k-labels-idx1-ubyte: offset 0: expected 8 bytes of IDX labels header, "
                 "found 3");
    assert_null(ds.data);
}

static void test_open_fashion(void **state)
{
    char root[PATH_CAP], want[PATH_CAP + 64];
    make_dir(state, "root3");
    tmp_path(state, "root3", root);
    anamo_dataset ds;
    anamo_err err = {0};
    struct stat st;
    if (stat(FASHION_SYSTEM_DIR, &st) != 0) {
        snprintf(want, sizeof want, "in %s/fashion-mnist or " FASHION_SYSTEM_DIR, root);
        expect_error(anamo_dataset_open("fashion-mnist:train", root, &ds, &err), &err, ANAMO_ERR_IO,
                     want, "dataset-fashion-mnist");
    }
    make_fake_set(state, "root3", "fashion-mnist", 4);
    assert_int_equal(anamo_dataset_open("fashion-mnist:train@3", root, &ds, &err), ANAMO_OK);
    assert_int_equal(ds.n, 3);
    assert_memory_equal(ds.labels, FAKE_LABELS, 3);
    anamo_dataset_free(&ds);
}

static void test_open_files(void **state)
{
    char path[PATH_CAP], spec[PATH_CAP + 8];
    anamo_dataset ds;
    anamo_err err = {0};
    make_dir(state, "at@dir");
    tmp_path(state, "at@dir/t.csv", path);
    write_text(path, "1,2\n3,4\n5,6\n");
    assert_int_equal(anamo_dataset_open(path, NULL, &ds, &err), ANAMO_OK);
    assert_int_equal(ds.n, 3);
    assert_null(ds.labels);
    anamo_dataset_free(&ds);
    snprintf(spec, sizeof spec, "%s@2", path);
    assert_int_equal(anamo_dataset_open(spec, NULL, &ds, &err), ANAMO_OK);
    assert_int_equal(ds.n, 2);
    assert_true(((const float *)ds.data)[3] == 4.0f);
    assert_string_equal(ds.source, spec);
    anamo_dataset_free(&ds);

    tmp_path(state, "t.csv.gz", path); /* every reader goes through zlib */
    write_file(path, "a,b\n1,2\n", 8, 1);
    assert_int_equal(anamo_dataset_open(path, NULL, &ds, &err), ANAMO_OK);
    assert_int_equal(ds.n, 1);
    assert_int_equal(ds.c, 2);
    anamo_dataset_free(&ds);

    tmp_path(state, "s.NPY", path);
    const int64_t shape[2] = {2, 2};
    const float x[4] = {1, 2, 3, 4};
    assert_int_equal(anamo_npy_write_f32(path, x, 2, shape, &err), ANAMO_OK);
    assert_int_equal(anamo_dataset_open(path, NULL, &ds, &err), ANAMO_OK);
    assert_int_equal(ds.c, 2);
    anamo_dataset_free(&ds);

    /* an IDX images file picks up the labels file beside it when there is one */
    tmp_path(state, "own-images-idx3-ubyte.gz", path);
    write_idx_images(path, 4, 2, 2, 1);
    char labels[PATH_CAP];
    tmp_path(state, "own-labels-idx1-ubyte", labels);
    write_idx_labels(labels, FAKE_LABELS, 4, 0);
    assert_int_equal(anamo_dataset_open(path, NULL, &ds, &err), ANAMO_OK);
    assert_non_null(ds.labels);
    assert_memory_equal(ds.labels, FAKE_LABELS, 4);
    anamo_dataset_free(&ds);
    tmp_path(state, "alone.idx", path);
    write_idx_images(path, 4, 2, 2, 0);
    assert_int_equal(anamo_dataset_open(path, NULL, &ds, &err), ANAMO_OK);
    assert_null(ds.labels);
    anamo_dataset_free(&ds);

    tmp_path(state, "s.NPY", path);
    tmp_path(state, "s.npy.gz", labels);
    size_t len;
    uint8_t *npy = read_whole(path, &len);
    write_file(labels, npy, len, 1);
    free(npy);
    assert_int_equal(anamo_dataset_open(labels, NULL, &ds, &err), ANAMO_OK);
    assert_memory_equal(ds.data, x, sizeof x);
    anamo_dataset_free(&ds);

    tmp_path(state, "empty.npy", path);
    write_file(path, "", 0, 0);
    expect_error(anamo_dataset_open(path, NULL, &ds, &err), &err, ANAMO_ERR_FORMAT, path,
                 "empty file");
    make_dir(state, "dir.npy");
    tmp_path(state, "dir.npy", path);
    expect_error(anamo_dataset_open(path, NULL, &ds, &err), &err, ANAMO_ERR_IO, path,
                 "is a directory");
    tmp_path(state, "nothing-here.npy", path);
    expect_error(anamo_dataset_open(path, NULL, &ds, &err), &err, ANAMO_ERR_IO, path,
                 "cannot open");
    tmp_path(state, "notes.txt", path);
    expect_error(anamo_dataset_open(path, NULL, &ds, &err), &err, ANAMO_ERR_ARG, "unknown dataset",
                 "PATH.csv");
}

/* ---- slices and batches ------------------------------------------------------------------- */

static void test_slice(void **state)
{
    char path[PATH_CAP];
    make_dir(state, "root4");
    make_fake_set(state, "root4", "mnist", 4);
    tmp_path(state, "root4", path);
    anamo_dataset ds, part;
    anamo_err err = {0};
    assert_int_equal(anamo_dataset_open("mnist:train", path, &ds, &err), ANAMO_OK);
    assert_int_equal(anamo_dataset_slice(&ds, 1, 2, &part, &err), ANAMO_OK);
    assert_int_equal(part.n, 2);
    assert_int_equal(part.dim, 9);
    assert_memory_equal(part.data, (const uint8_t *)ds.data + 9, 18);
    assert_memory_equal(part.labels, FAKE_LABELS + 1, 2);
    assert_string_equal(part.source, "mnist:train[1:3]");
    anamo_dataset_free(&part);
    expect_error(anamo_dataset_slice(&ds, 3, 2, &part, &err), &err, ANAMO_ERR_ARG,
                 "mnist:train: samples [3, 5) are not within the 4 samples", NULL);
    expect_error(anamo_dataset_slice(&ds, -1, 1, &part, &err), &err, ANAMO_ERR_ARG,
                 "samples [-1, 0)", NULL);
    anamo_dataset_free(&ds);
}

/* libgomp keeps its worker threads until the process exits, and valgrind reports their
 * thread-local storage as "possibly lost". So the batches large enough for OpenMP are copied
 * in a thread of our own: when it ends, libgomp shuts its pool down, and we wait (at most 2 s)
 * for the workers to be gone, which keeps `valgrind --leak-check=full` clean. */
typedef struct batch_job {
    const anamo_dataset *ds;
    const int64_t *idx; /* NULL: rows [first, first+count) */
    int64_t first, count;
    float *out;
} batch_job;

static void *batch_job_run(void *arg)
{
    const batch_job *job = arg;
    if (job->idx)
        data_gather(job->ds, job->idx, job->count, job->out);
    else
        data_rows(job->ds, job->first, job->count, job->out);
    return NULL;
}

static int thread_count(void)
{
    DIR *d = opendir("/proc/self/task");
    struct dirent *e;
    int n = 0;
    while (d && (e = readdir(d)) != NULL)
        n += e->d_name[0] != '.';
    if (d)
        closedir(d);
    return n;
}

static void run_batch_job(batch_job *job)
{
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, batch_job_run, job), 0);
    assert_int_equal(pthread_join(t, NULL), 0);
    const struct timespec ms = {0, 1000000};
    for (int i = 0; i < 2000 && thread_count() > 1; i++)
        nanosleep(&ms, NULL);
}

/* A byte k becomes k/255 correctly rounded: 255 → 1.0f and 51 → 0.2f exactly. The truth is
 * the double quotient rounded once to float (k/255 is never a float tie, so no double rounding
 * trouble). Large enough batches go through the OpenMP path; it must agree. */
static void test_gather_scaling(void **state)
{
    enum { N = 300, DIM = 256 }; /* N·DIM > 1<<16: the parallel path */
    uint8_t *bytes = anamo_alloc(N * DIM);
    assert_non_null(bytes);
    for (int r = 0; r < N; r++)
        for (int j = 0; j < DIM; j++)
            bytes[r * DIM + j] = (uint8_t)(j + r);
    anamo_dataset ds = {
        .n = N, .c = 1, .h = 16, .w = 16, .dim = DIM, .dtype = ANAMO_U8, .data = bytes};
    int64_t idx[N];
    for (int i = 0; i < N; i++)
        idx[i] = N - 1 - i;
    float *out = malloc(sizeof(float) * N * DIM);
    assert_non_null(out);
    batch_job gather = {&ds, idx, 0, N, out};
    run_batch_job(&gather);
    for (int i = 0; i < N; i++)
        for (int j = 0; j < DIM; j++)
            assert_true(out[i * DIM + j] == (float)((double)(uint8_t)(j + idx[i]) / 255.0));
    assert_true(out[(N - 1) * DIM + 255] == 1.0f); /* row 0, byte 255 */
    assert_true(out[(N - 1) * DIM + 51] == 0.2f);
    int64_t two[2] = {5, 0};
    data_gather(&ds, two, 2, out);
    assert_true(out[0] == 5.0f / 255.0f);
    assert_true(out[DIM + 51] == 0.2f);
    data_rows(&ds, 1, 2, out);
    assert_true(out[254] == 1.0f);      /* row 1, byte 254: 255 */
    assert_true(out[DIM + 49] == 0.2f); /* row 2, byte 49: 51 */
    memset(out, 0, sizeof(float) * N * DIM);
    batch_job rows = {&ds, NULL, 0, N, out};
    run_batch_job(&rows);
    for (int k = 0; k < N * DIM; k++)
        assert_true(out[k] == (float)((double)bytes[k] / 255.0));
    anamo_dataset_free(&ds);

    float f[6] = {-1.5f, 2, 3, 4, 5, 1e30f};
    anamo_dataset t = {.n = 3, .c = 2, .h = 1, .w = 1, .dim = 2, .dtype = ANAMO_F32, .data = f};
    int64_t pick[2] = {2, 0};
    data_gather(&t, pick, 2, out);
    assert_true(out[0] == 5 && out[1] == 1e30f && out[2] == -1.5f && out[3] == 2);
    free(out);
}

/* ---- the real MNIST, when the shared data is there ---------------------------------------- */

static void test_real_mnist(void **state)
{
    const char *src = getenv("ANAMO_SOURCE_DIR");
    char root[PATH_CAP], dir[PATH_CAP + 8];
    struct stat st;
    snprintf(root, sizeof root, "%s/../shared/data", src ? src : "..");
    snprintf(dir, sizeof dir, "%s/mnist", root);
    if (!src || stat(dir, &st) != 0)
        skip();
    const struct {
        const char *spec;
        int64_t n;
        uint8_t first;
    } sets[] = {{"mnist:train", 60000, 5}, {"mnist:test", 10000, 7}};
    for (int s = 0; s < 2; s++) {
        anamo_dataset ds;
        anamo_err err = {0};
        if (anamo_dataset_open(sets[s].spec, root, &ds, &err))
            fail_msg("%s", err.msg);
        assert_int_equal(ds.n, sets[s].n);
        assert_int_equal(ds.c, 1);
        assert_int_equal(ds.h, 28);
        assert_int_equal(ds.w, 28);
        assert_int_equal(ds.dtype, ANAMO_U8);
        assert_non_null(ds.labels);
        assert_int_equal(ds.labels[0], sets[s].first);
        for (int64_t i = 0; i < ds.n; i++)
            assert_true(ds.labels[i] <= 9);
        anamo_dataset_free(&ds);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_idx_round_trip),
        cmocka_unit_test(test_idx_labels),
        cmocka_unit_test(test_idx_truncated),
        cmocka_unit_test(test_idx_truncated_gzip),
        cmocka_unit_test(test_idx_bad_header),
        cmocka_unit_test(test_idx_not_a_file),
        cmocka_unit_test(test_npy_u8_round_trip),
        cmocka_unit_test(test_npy_f32_round_trip),
        cmocka_unit_test(test_npy_f8),
        cmocka_unit_test(test_npy_rejects),
        cmocka_unit_test(test_csv_tables),
        cmocka_unit_test(test_csv_long_line),
        cmocka_unit_test(test_csv_errors),
        cmocka_unit_test(test_open_mnist),
        cmocka_unit_test(test_open_mnist_missing),
        cmocka_unit_test(test_open_fashion),
        cmocka_unit_test(test_open_files),
        cmocka_unit_test(test_slice),
        cmocka_unit_test(test_gather_scaling),
        cmocka_unit_test(test_real_mnist),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
