/* test_readers_end.c — every reader checks where its file ends (issue 15). A gzip file (RFC 1952:
 * members of a header, deflate data and an 8-byte trailer, CRC-32 then ISIZE) cut 1, 4, 8 or 12
 * bytes before its end, with a wrong CRC or length in its trailer, with bytes after its last
 * member, or holding more data than its format's header promises must be refused, with one line
 * that names the file once and gives the right offset; a good .gz, in one member or two, must
 * read exactly as the plain file. IDX images, IDX labels, NPY, CSV and CIFAR-10 alike. A
 * safetensors file's data_offsets, taken in order of offset whatever their JSON order, must tile
 * its data section exactly, as the reference reader's validate() requires: a hole between
 * tensors and bytes after the last are refused. The independent truth is the formats' specs;
 * every file is written here (zlib's gzwrite, then cut or patched), under a fresh /tmp dir. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "anamo.h"
#include "data/data.h"
#include "io/safetensors.h"
#include "test_util.h"

#define PATH_CAP 1024
#define CIFAR_RECORD 3073
#define GZ_TRAILER 8

typedef temp_dir_fixture fixture;

static int group_setup(void **state)
{
    return temp_dir_setup(state, "/tmp/anamo_test_readers_end_XXXXXX");
}

static int group_teardown(void **state) { return temp_dir_teardown(state); }

static void tmp_path(void **state, const char *name, char *out)
{
    const fixture *fx = *state;
    join_path(out, PATH_CAP, fx->dir, name);
}

/* ---- files ------------------------------------------------------------------------------- */

/* Bytes that deflate cannot squeeze to nothing (a cut 12 bytes from the end must land in the
 * deflate data, not in a run of repeats). */
static uint8_t noise(size_t k) { return (uint8_t)((k * 2654435761u) >> 13); }

/* Writes len bytes to path as gzip through zlib, in one member, or two (as `cat a.gz b.gz`). */
static void write_gzip(const char *path, const uint8_t *bytes, size_t len, int members)
{
    size_t first = members == 2 ? len / 2 : len;
    gzFile f = gzopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(gzwrite(f, bytes, (unsigned)first), (int)first);
    assert_int_equal(gzclose(f), Z_OK);
    if (members == 2) {
        f = gzopen(path, "ab");
        assert_non_null(f);
        assert_int_equal(gzwrite(f, bytes + first, (unsigned)(len - first)), (int)(len - first));
        assert_int_equal(gzclose(f), Z_OK);
    }
}

/* ---- the formats ------------------------------------------------------------------------- */

/* What a reader gave: the sample count, the bytes per sample, the data and labels bytes. */
typedef struct loaded {
    int64_t n, dim;
    uint8_t *bytes;
    size_t len;
} loaded;

static void keep_dataset(anamo_dataset *ds, loaded *out)
{
    size_t elem = ds->dtype == ANAMO_U8 ? 1 : 4, data = (size_t)(ds->n * ds->dim) * elem;
    size_t labels = ds->labels ? (size_t)ds->n : 0;
    out->n = ds->n;
    out->dim = ds->dim;
    out->len = data + labels;
    out->bytes = malloc(out->len);
    assert_non_null(out->bytes);
    memcpy(out->bytes, ds->data, data);
    if (labels)
        memcpy(out->bytes + data, ds->labels, labels);
    anamo_dataset_free(ds);
}

static int load_images(const char *path, loaded *out, anamo_err *err)
{
    anamo_dataset ds;
    int rc = anamo_idx_read(path, &ds, err);
    if (!rc)
        keep_dataset(&ds, out);
    return rc;
}

static int load_labels(const char *path, loaded *out, anamo_err *err)
{
    uint8_t *labels = NULL;
    int64_t n = 0;
    int rc = anamo_idx_read_labels(path, &labels, &n, err);
    if (!rc) {
        *out = (loaded){n, 1, malloc((size_t)n), (size_t)n};
        assert_non_null(out->bytes);
        memcpy(out->bytes, labels, (size_t)n);
        anamo_free(labels);
    }
    return rc;
}

static int load_npy(const char *path, loaded *out, anamo_err *err)
{
    anamo_dataset ds;
    int rc = anamo_npy_read(path, &ds, err);
    if (!rc)
        keep_dataset(&ds, out);
    return rc;
}

static int load_csv(const char *path, loaded *out, anamo_err *err)
{
    anamo_dataset ds;
    int rc = anamo_csv_read(path, &ds, err);
    if (!rc)
        keep_dataset(&ds, out);
    return rc;
}

static int load_cifar(const char *path, loaded *out, anamo_err *err)
{
    anamo_dataset ds;
    const char *paths[] = {path};
    int rc = cifar_read(paths, 1, &ds, err);
    if (!rc)
        keep_dataset(&ds, out);
    return rc;
}

static void put_be32(uint8_t *b, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        b[i] = (uint8_t)(v >> (24 - 8 * i));
}

/* IDX images: 3 images of 28×28. */
static uint8_t *make_images(size_t *len)
{
    *len = 16 + 3 * 28 * 28;
    uint8_t *b = malloc(*len);
    assert_non_null(b);
    put_be32(b, 2051);
    put_be32(b + 4, 3);
    put_be32(b + 8, 28);
    put_be32(b + 12, 28);
    for (size_t k = 16; k < *len; k++)
        b[k] = noise(k);
    return b;
}

/* IDX labels: 300 labels 0–9. */
static uint8_t *make_labels(size_t *len)
{
    *len = 8 + 300;
    uint8_t *b = malloc(*len);
    assert_non_null(b);
    put_be32(b, 2049);
    put_be32(b + 4, 300);
    for (size_t k = 8; k < *len; k++)
        b[k] = (uint8_t)(noise(k) % 10);
    return b;
}

/* NPY: float32 (40, 5) as numpy.save writes it (through anamo's writer, read back as bytes). */
static uint8_t *make_npy(size_t *len)
{
    float x[200];
    for (int k = 0; k < 200; k++)
        x[k] = (float)noise((size_t)k) / 8.0f - 16.0f;
    char path[] = "/tmp/anamo_test_readers_end_npy_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    const int64_t shape[2] = {40, 5};
    anamo_err err = {0};
    assert_int_equal(anamo_npy_write_f32(path, x, 2, shape, &err), ANAMO_OK);
    uint8_t *b = read_whole(path, len);
    unlink(path);
    return b;
}

/* CSV: a header and 60 rows of 4 numbers. */
static uint8_t *make_csv(size_t *len)
{
    char *text = malloc(8192);
    assert_non_null(text);
    size_t used = (size_t)sprintf(text, "a,b,c,d\n");
    for (size_t r = 0; r < 60; r++)
        used += (size_t)sprintf(text + used, "%u,%u.5,-%u,%ue-2\n", (unsigned)noise(4 * r),
                                (unsigned)noise(4 * r + 1), (unsigned)noise(4 * r + 2),
                                (unsigned)noise(4 * r + 3));
    *len = used;
    return (uint8_t *)text;
}

/* CIFAR-10: 2 records, labels 3 and 7. */
static uint8_t *make_cifar(size_t *len)
{
    *len = 2 * CIFAR_RECORD;
    uint8_t *b = malloc(*len);
    assert_non_null(b);
    for (size_t k = 0; k < *len; k++)
        b[k] = noise(k);
    b[0] = 3;
    b[CIFAR_RECORD] = 7;
    return b;
}

typedef struct format {
    const char *name;
    uint8_t *(*make)(size_t *len);
    int (*load)(const char *path, loaded *out, anamo_err *err);
    const char *longer; /* what the reader says of one byte more than it needs; NULL: no header */
} format;

static const format FORMATS[] = {
    {"images.idx", make_images, load_images,
     "offset 2368: 1 trailing bytes after 2352 bytes of images"},
    {"labels.idx", make_labels, load_labels,
     "offset 308: 1 trailing bytes after 300 bytes of labels"},
    {"data.npy", make_npy, load_npy, "offset 928: 1 trailing bytes after 800 bytes of data"},
    /* a CSV file has no header to disagree with: a longer file is more rows */
    {"table.csv", make_csv, load_csv, NULL},
    /* nor has CIFAR-10's, but its records have a fixed size */
    {"batch.bin", make_cifar, load_cifar,
     "6147 bytes is not a whole number of 3073-byte records "
     "(record 2, at offset 6146, is cut after 1 bytes)"},
};
#define NFORMATS (sizeof FORMATS / sizeof FORMATS[0])

/* ---- checks ------------------------------------------------------------------------------ */

static int count_of(const char *text, const char *part)
{
    int k = 0;
    for (const char *p = text; (p = strstr(p, part)) != NULL; p += strlen(part))
        k++;
    return k;
}

/* 0 when rc and msg are a format error of one line naming path once and holding part (and
 * part2, unless NULL); otherwise 1, after saying what came instead. Every case is tried before
 * a test fails, so that one run shows them all. */
static int wrong_refusal(const char *path, int rc, const char *msg, const char *part,
                         const char *part2)
{
    if (rc == ANAMO_ERR_FORMAT && count_of(msg, path) == 1 && strstr(msg, part) &&
        (!part2 || strstr(msg, part2)) && !strchr(msg, '\n'))
        return 0;
    print_error("%s: rc %d, message '%s'; want the path once, '%s'%s%s%s\n", path, rc,
                rc ? msg : "", part, part2 ? " and '" : "", part2 ? part2 : "", part2 ? "'" : "");
    return 1;
}

/* The reader must refuse path (see wrong_refusal); 1 if it did not. */
static int expect_refused(const format *fm, const char *path, const char *part, const char *part2)
{
    loaded got = {0};
    anamo_err err = {0};
    int rc = fm->load(path, &got, &err);
    free(got.bytes);
    return wrong_refusal(path, rc, err.msg, part, part2);
}

static void expect_same(const format *fm, const char *path, const loaded *want)
{
    loaded got = {0};
    anamo_err err = {0};
    if (fm->load(path, &got, &err))
        fail_msg("%s: %s", path, err.msg);
    assert_int_equal(got.n, want->n);
    assert_int_equal(got.dim, want->dim);
    assert_int_equal(got.len, want->len);
    assert_memory_equal(got.bytes, want->bytes, want->len);
    free(got.bytes);
}

/* ---- gzip: good files -------------------------------------------------------------------- */

/* A .gz in one member and in two reads exactly as the plain file. */
static void test_good_gzip_reads_as_plain(void **state)
{
    for (size_t i = 0; i < NFORMATS; i++) {
        const format *fm = &FORMATS[i];
        size_t len;
        uint8_t *bytes = fm->make(&len);
        char plain[PATH_CAP], name[64], gz[PATH_CAP];
        tmp_path(state, fm->name, plain);
        write_bytes(plain, bytes, len);
        loaded want = {0};
        anamo_err err = {0};
        if (fm->load(plain, &want, &err))
            fail_msg("%s: %s", plain, err.msg);
        for (int members = 1; members <= 2; members++) {
            snprintf(name, sizeof name, "%s-%d.gz", fm->name, members);
            tmp_path(state, name, gz);
            write_gzip(gz, bytes, len, members);
            expect_same(fm, gz, &want);
        }
        free(want.bytes);
        free(bytes);
    }
}

/* ---- gzip: damaged ends ------------------------------------------------------------------ */

/* The file's gzip bytes with the last cut bytes gone. */
static int check_cuts(void **state, const format *fm, const uint8_t *gz, size_t len)
{
    static const size_t cuts[] = {1, 4, GZ_TRAILER, GZ_TRAILER + 4};
    int bad = 0;
    for (size_t c = 0; c < sizeof cuts / sizeof cuts[0]; c++) {
        char name[64], path[PATH_CAP], at[64];
        snprintf(name, sizeof name, "%s-cut%zu.gz", fm->name, cuts[c]);
        tmp_path(state, name, path);
        write_bytes(path, gz, len - cuts[c]);
        snprintf(at, sizeof at, "the file ends at offset %zu", len - cuts[c]);
        bad += expect_refused(fm, path, "compressed stream ends early (truncated file?)", at);
    }
    return bad;
}

/* The trailer's CRC-32 or ISIZE changed (one bit): the data decompress, the check fails. */
static int check_trailer(void **state, const format *fm, const uint8_t *gz, size_t len)
{
    uint8_t *patched = malloc(len);
    assert_non_null(patched);
    int bad = 0;
    for (int field = 0; field < 2; field++) {
        memcpy(patched, gz, len);
        patched[len - GZ_TRAILER + 4 * field] ^= 0x01;
        char name[64], path[PATH_CAP], at[64];
        snprintf(name, sizeof name, "%s-%s.gz", fm->name, field ? "isize" : "crc");
        tmp_path(state, name, path);
        write_bytes(path, patched, len);
        snprintf(at, sizeof at, "at offset %zu", len - GZ_TRAILER);
        bad += expect_refused(fm, path,
                              field ? "gzip trailer length mismatch" : "gzip trailer CRC mismatch",
                              at);
    }
    free(patched);
    return bad;
}

/* Bytes after the last member that are not another member: text, one zero byte (tape padding,
 * which gzip(1) only warns about), a lone 0x1f; and a second member's magic with nothing after
 * it, which is a member cut short. */
static int check_after(void **state, const format *fm, const uint8_t *gz, size_t len)
{
    static const struct {
        const char *tail;
        size_t n;
        const char *part;
    } tails[] = {
        {"junk\n", 5, "trailing garbage after the gzip stream: 5 bytes"},
        {"\0", 1, "trailing garbage after the gzip stream: 1 bytes"},
        {"\x1f", 1, "trailing garbage after the gzip stream: 1 bytes"},
        {"\x1f\x8b", 2, "compressed stream ends early (truncated file?)"},
    };
    uint8_t *longer = malloc(len + 8);
    assert_non_null(longer);
    memcpy(longer, gz, len);
    int bad = 0;
    for (size_t t = 0; t < sizeof tails / sizeof tails[0]; t++) {
        memcpy(longer + len, tails[t].tail, tails[t].n);
        char name[64], path[PATH_CAP], at[64];
        snprintf(name, sizeof name, "%s-after%zu.gz", fm->name, t);
        tmp_path(state, name, path);
        write_bytes(path, longer, len + tails[t].n);
        snprintf(at, sizeof at, "offset %zu", len);
        bad += expect_refused(fm, path, tails[t].part, at);
    }
    free(longer);
    return bad;
}

static void test_gzip_damaged_end(void **state)
{
    int bad = 0;
    for (size_t i = 0; i < NFORMATS; i++) {
        const format *fm = &FORMATS[i];
        size_t len, gzlen;
        uint8_t *bytes = fm->make(&len);
        char name[64], path[PATH_CAP];
        snprintf(name, sizeof name, "%s.gz", fm->name);
        tmp_path(state, name, path);
        write_gzip(path, bytes, len, 1);
        uint8_t *gz = read_whole(path, &gzlen);
        assert_true(gzlen > 2 * GZ_TRAILER + 10);
        bad += check_cuts(state, fm, gz, gzlen);
        bad += check_trailer(state, fm, gz, gzlen);
        bad += check_after(state, fm, gz, gzlen);
        free(gz);
        free(bytes);
    }
    if (bad)
        fail_msg("%d damaged gzip files not refused as they should be", bad);
}

/* One byte more than the header promises, plain and inside a good gzip stream. */
static void test_more_than_the_header_says(void **state)
{
    int bad = 0;
    for (size_t i = 0; i < NFORMATS; i++) {
        const format *fm = &FORMATS[i];
        if (!fm->longer)
            continue;
        size_t len;
        uint8_t *bytes = fm->make(&len);
        uint8_t *longer = realloc(bytes, len + 1);
        assert_non_null(longer);
        longer[len] = 5;
        for (int gz = 0; gz < 2; gz++) {
            char name[64], path[PATH_CAP];
            snprintf(name, sizeof name, "%s-longer%s", fm->name, gz ? ".gz" : "");
            tmp_path(state, name, path);
            if (gz)
                write_gzip(path, longer, len + 1, 1);
            else
                write_bytes(path, longer, len + 1);
            bad += expect_refused(fm, path, fm->longer, NULL);
        }
        free(longer);
    }
    if (bad)
        fail_msg("%d files longer than their header not refused", bad);
}

/* ---- safetensors ------------------------------------------------------------------------- */

/* A safetensors file: the header length, json, then ndata bytes (byte k = k). */
static void write_st(const char *path, const char *json, size_t ndata)
{
    size_t nj = strlen(json);
    uint8_t *b = malloc(8 + nj + ndata);
    assert_non_null(b);
    for (int i = 0; i < 8; i++)
        b[i] = (uint8_t)((uint64_t)nj >> (8 * i));
    memcpy(b + 8, json, nj);
    for (size_t k = 0; k < ndata; k++)
        b[8 + nj + k] = (uint8_t)k;
    write_bytes(path, b, 8 + nj + ndata);
    free(b);
}

static int expect_st_refused(const char *path, const char *part, const char *part2)
{
    st_file *f = NULL;
    anamo_err err = {0};
    int rc = st_open(path, &f, &err);
    st_close(f);
    return wrong_refusal(path, rc, err.msg, part, part2);
}

/* The JSON entry of an F32 tensor of shape [2] (8 bytes) at data_offsets [b, e]. */
#define F32_2(name, b, e) \
    "\"" name "\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[" #b "," #e "]}"
/* ... and of an empty U8 tensor at [at, at]. */
#define U8_0(name, at) \
    "\"" name "\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[" #at "," #at "]}"

/* A file from the writer loads; with bytes appended after its last tensor it does not. */
static void test_st_trailing_bytes(void **state)
{
    char path[PATH_CAP];
    tmp_path(state, "written.safetensors", path);
    const float a[2] = {1.5f, -2};
    const uint8_t b[3] = {7, 8, 9};
    const int64_t s2[] = {2}, s3[] = {3};
    st_tensor t[2] = {{.name = "a", .dtype = ST_F32, .ndim = 1, .data = a, .nbytes = 8},
                      {.name = "b", .dtype = ST_U8, .ndim = 1, .data = b, .nbytes = 3}};
    t[0].shape[0] = s2[0];
    t[1].shape[0] = s3[0];
    anamo_err err = {0};
    assert_int_equal(st_write(path, t, 2, NULL, 0, &err), ANAMO_OK);
    st_file *f = NULL;
    if (st_open(path, &f, &err))
        fail_msg("%s", err.msg);
    assert_memory_equal(st_find(f, "b")->data, b, 3);
    st_close(f);
    size_t len;
    uint8_t *bytes = read_whole(path, &len);
    uint8_t *longer = realloc(bytes, len + 4);
    assert_non_null(longer);
    memset(longer + len, 0, 4);
    write_bytes(path, longer, len + 4);
    free(longer);
    int bad = expect_st_refused(path, "bytes [11, 15) of the data section belong to no tensor",
                                "after the last tensor 'b' [8, 11]");
    tmp_path(state, "no-tensors.safetensors", path);
    write_st(path, "{}", 4);
    bad += expect_st_refused(path, "bytes [0, 4) of the data section belong to no tensor",
                             "the header lists none");
    if (bad)
        fail_msg("%d files with bytes after their tensors not refused", bad);
}

/* Offsets that do not tile [0, end): a hole between tensors or before the first, a tensor that
 * starts inside another (an empty one too), the same name twice. */
static void test_st_not_tiled(void **state)
{
    static const struct {
        const char *json;
        size_t ndata;
        const char *part, *part2;
    } cases[] = {
        {"{" F32_2("a", 0, 8) "," F32_2("b", 12, 20) "}", 20,
         "bytes [8, 12) of the data section belong to no tensor", "before tensor 'b' [12, 20]"},
        {"{" F32_2("b", 12, 20) "," F32_2("a", 0, 8) "}", 20,
         "bytes [8, 12) of the data section belong to no tensor", "before tensor 'b' [12, 20]"},
        {"{" F32_2("a", 4, 12) "}", 12, "bytes [0, 4) of the data section belong to no tensor",
         "before tensor 'a' [4, 12]"},
        {"{" F32_2("a", 0, 8) "," F32_2("b", 4, 12) "}", 12, "'a' [0, 8] and 'b' [4, 12] overlap",
         NULL},
        {"{" F32_2("a", 0, 8) "," U8_0("e", 4) "}", 8, "'a' [0, 8] and 'e' [4, 4] overlap", NULL},
        {"{" F32_2("a", 0, 8) "," F32_2("a", 8, 16) "}", 16, "tensor 'a' appears twice", NULL},
    };
    int bad = 0;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char name[64], path[PATH_CAP];
        snprintf(name, sizeof name, "not-tiled-%zu.safetensors", i);
        tmp_path(state, name, path);
        write_st(path, cases[i].json, cases[i].ndata);
        bad += expect_st_refused(path, cases[i].part, cases[i].part2);
    }
    if (bad)
        fail_msg("%d files whose offsets do not tile the data not refused", bad);
}

/* The format lets JSON list tensors in any order (the reference reader sorts them by offset),
 * and empty tensors sit between others or at either end. */
static void test_st_tiled_any_order(void **state)
{
    char path[PATH_CAP];
    tmp_path(state, "any-order.safetensors", path);
    write_st(path,
             "{" U8_0("z", 16) "," F32_2("b", 8, 16) "," U8_0("m", 8) "," F32_2("a", 0,
                                                                                8) "," U8_0("e",
                                                                                            0) "}",
             16);
    st_file *f = NULL;
    anamo_err err = {0};
    if (st_open(path, &f, &err))
        fail_msg("%s", err.msg);
    assert_int_equal(st_count(f), 5);
    const uint8_t first[8] = {0, 1, 2, 3, 4, 5, 6, 7}, second[8] = {8, 9, 10, 11, 12, 13, 14, 15};
    assert_memory_equal(st_find(f, "a")->data, first, 8);
    assert_memory_equal(st_find(f, "b")->data, second, 8);
    assert_int_equal(st_find(f, "m")->nbytes, 0);
    st_close(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good_gzip_reads_as_plain),
        cmocka_unit_test(test_gzip_damaged_end),
        cmocka_unit_test(test_more_than_the_header_says),
        cmocka_unit_test(test_st_trailing_bytes),
        cmocka_unit_test(test_st_not_tiled),
        cmocka_unit_test(test_st_tiled_any_order),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
