/* test_safetensors.c — the safetensors reader and writer against hand-computed bytes, a round
 * trip of every dtype, hostile files, and the atomic-write promise. When python3 has the
 * reference implementation (safetensors + numpy), files are also exchanged with it. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "io/safetensors.h"
#include "test_util.h"

#include <cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- helpers ----------------------------------------------------------------------------- */

typedef struct {
    char s[512];
} path_buf;

static path_buf join(void **state, const char *name)
{
    path_buf p;
    snprintf(p.s, sizeof p.s, "%s/%s", (const char *)*state, name);
    return p;
}

/* A file with header length field hlen, then json, then ndata bytes of data (all 0x5A). */
static void write_st_raw(const char *path, uint64_t hlen, const char *json, size_t ndata)
{
    size_t nj = strlen(json);
    uint8_t *buf = malloc(8 + nj + ndata + 1);
    assert_non_null(buf);
    for (int i = 0; i < 8; i++)
        buf[i] = (uint8_t)(hlen >> (8 * i));
    memcpy(buf + 8, json, nj);
    memset(buf + 8 + nj, 0x5A, ndata);
    write_bytes(path, buf, 8 + nj + ndata);
    free(buf);
}

static void write_st_json(const char *path, const char *json, size_t ndata)
{
    write_st_raw(path, strlen(json), json, ndata);
}

/* st_open must fail with code, a one-line message naming the path and containing fragment. */
static void expect_open_fails(const char *path, int code, const char *fragment)
{
    anamo_err err = {0};
    st_file *f = (st_file *)&err; /* st_open must reset it */
    int rc = st_open(path, &f, &err);
    if (rc != code || !strstr(err.msg, fragment))
        print_error("%s: got %d '%s', want %d with '%s'\n", path, rc, err.msg, code, fragment);
    assert_int_equal(rc, code);
    assert_int_equal(err.code, code);
    assert_null(f);
    assert_non_null(strstr(err.msg, fragment));
    assert_non_null(strstr(err.msg, path));
    assert_null(strchr(err.msg, '\n'));
}

static int has_tmp_file(const char *dir)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    int found = 0;
    for (struct dirent *e; (e = readdir(d));) {
        size_t n = strlen(e->d_name);
        found |= n >= 4 && strcmp(e->d_name + n - 4, ".tmp") == 0;
    }
    closedir(d);
    return found;
}

static int group_setup(void **state)
{
    static char tmpl[] = "/tmp/anamo_st_XXXXXX";
    *state = mkdtemp(tmpl);
    return *state ? 0 : -1;
}

static int group_teardown(void **state)
{
    remove_tree((const char *)*state);
    return 0;
}

static st_tensor make_tensor(const char *name, st_dtype dtype, int ndim, const int64_t *shape,
                             const void *data)
{
    st_tensor t;
    memset(&t, 0, sizeof t);
    snprintf(t.name, sizeof t.name, "%s", name);
    t.dtype = dtype;
    t.ndim = ndim;
    size_t numel = 1;
    for (int i = 0; i < ndim; i++) {
        t.shape[i] = shape[i];
        numel *= (size_t)shape[i];
    }
    t.data = data;
    t.nbytes = numel * st_dtype_size(dtype);
    return t;
}

/* ---- round trip -------------------------------------------------------------------------- */

/* f holds exactly the tensors in[0..n), in that order (header order is write order). */
static void expect_tensors(const st_file *f, const st_tensor *in, int n)
{
    assert_int_equal(st_count(f), n);
    for (int i = 0; i < n; i++) {
        const st_tensor *t = st_at(f, i);
        assert_string_equal(t->name, in[i].name);
        assert_int_equal(t->dtype, in[i].dtype);
        assert_int_equal(t->ndim, in[i].ndim);
        for (int d = 0; d < t->ndim; d++)
            assert_int_equal(t->shape[d], in[i].shape[d]);
        assert_int_equal(t->nbytes, in[i].nbytes);
        if (t->nbytes)
            assert_memory_equal(t->data, in[i].data, t->nbytes);
        assert_ptr_equal(st_find(f, in[i].name), t);
    }
    assert_null(st_at(f, n));
}

static const char ini_config[] =
    "; experiment \"nam-mnist\" — λ sweep\n[model]\nencoder = linear 128, relu\n"
    "decoder = linear 784, sigmoid\n\n[train]\nlambda = 1e-3\t; tab, quote \" and \\ \n"
    "name = \"日本語 ü\"\n";

static void test_round_trip(void **state)
{
    float w[12], b[4] = {0.5f, -0.25f, 1e-30f, -0.0f};
    double scalar = 3.141592653589793, mat[6] = {1e300, -1e-300, 0, 1, 2, 3};
    int64_t step = 1234567890123LL, neg[4] = {-1, INT64_MIN, INT64_MAX, 0};
    int32_t i32[5] = {1, -2, 3, INT32_MIN, INT32_MAX};
    uint8_t odd[3] = {1, 2, 255}, u8[120];
    for (int i = 0; i < 12; i++)
        w[i] = 0.5f * (float)i - 1.0f;
    for (int i = 0; i < 120; i++)
        u8[i] = (uint8_t)(i * 7);
    const int64_t s34[] = {3, 4}, s4[] = {4}, s23[] = {2, 3}, s1[] = {1}, s22[] = {2, 2},
                  s5[] = {5}, s0[] = {0}, s3[] = {3}, s2345[] = {2, 3, 4, 5};
    st_tensor in[] = {
        make_tensor("u8.odd", ST_U8, 1, s3, odd), /* leaves what follows unaligned */
        make_tensor("encoder.0.weight", ST_F32, 2, s34, w),
        make_tensor("dec\"oder.λ\n1", ST_F32, 1, s4, b),
        make_tensor("f64.scalar", ST_F64, 0, NULL, &scalar),
        make_tensor("f64.mat", ST_F64, 2, s23, mat),
        make_tensor("step", ST_I64, 1, s1, &step),
        make_tensor("i64.neg", ST_I64, 2, s22, neg),
        make_tensor("i32", ST_I32, 1, s5, i32),
        make_tensor("i32.empty", ST_I32, 1, s0, NULL),
        make_tensor("u8.4d", ST_U8, 4, s2345, u8),
    };
    const int n = (int)(sizeof in / sizeof in[0]);
    const st_meta meta[] = {{"config", ini_config},
                            {"quote \"key\"", "say \"hi\"\\\n\r\t\x01 end"},
                            {"empty", ""},
                            {"unicode", "λ → ∞, 日本, 😀"}};
    path_buf path = join(state, "round.safetensors");
    anamo_err err = {0};
    assert_int_equal(st_write(path.s, in, n, meta, 4, &err), ANAMO_OK);

    st_file *f = NULL;
    assert_int_equal(st_open(path.s, &f, &err), ANAMO_OK);
    assert_string_equal(st_path(f), path.s);
    expect_tensors(f, in, n);
    assert_null(st_at(f, -1));
    assert_null(st_find(f, "absent"));
    for (int i = 0; i < 4; i++)
        assert_string_equal(st_meta_get(f, meta[i].key), meta[i].value);
    assert_null(st_meta_get(f, "absent"));

    /* reading a float from the unaligned data section: memcpy, as the header comment says */
    double got;
    memcpy(&got, st_find(f, "f64.scalar")->data, sizeof got);
    assert_true(got == scalar);
    st_close(f);
}

static void test_no_tensors_no_metadata(void **state)
{
    path_buf path = join(state, "empty.safetensors");
    anamo_err err = {0};
    assert_int_equal(st_write(path.s, NULL, 0, NULL, 0, &err), ANAMO_OK);
    size_t n;
    uint8_t *bytes = read_whole(path.s, &n);
    /* "{}" padded to 8 bytes */
    const uint8_t want[] = {8, 0, 0, 0, 0, 0, 0, 0, '{', '}', ' ', ' ', ' ', ' ', ' ', ' '};
    assert_int_equal(n, sizeof want);
    assert_memory_equal(bytes, want, sizeof want);
    free(bytes);
    st_file *f = NULL;
    assert_int_equal(st_open(path.s, &f, &err), ANAMO_OK);
    assert_int_equal(st_count(f), 0);
    assert_null(st_meta_get(f, "config"));
    st_close(f);
}

/* ---- exact layout ------------------------------------------------------------------------ */

/* One F32 tensor "a" = [1, -2]. By hand: the JSON below is 54 bytes, padded with 2 spaces to
 * N = 56 = 0x38, so the data starts at 8 + 56 = 64; 1.0f is 0x3f800000 and -2.0f is
 * 0xc0000000, stored little-endian. */
static void test_layout_by_hand(void **state)
{
    static const char json[] = "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}";
    assert_int_equal(strlen(json), 54);
    uint8_t want[72];
    const uint8_t len[8] = {0x38, 0, 0, 0, 0, 0, 0, 0};
    const uint8_t data[8] = {0x00, 0x00, 0x80, 0x3f, 0x00, 0x00, 0x00, 0xc0};
    memcpy(want, len, 8);
    memcpy(want + 8, json, 54);
    memcpy(want + 62, "  ", 2);
    memcpy(want + 64, data, 8);

    const float a[2] = {1.0f, -2.0f};
    const int64_t shape[1] = {2};
    st_tensor t = make_tensor("a", ST_F32, 1, shape, a);
    path_buf path = join(state, "layout.safetensors");
    anamo_err err = {0};
    assert_int_equal(st_write(path.s, &t, 1, NULL, 0, &err), ANAMO_OK);
    size_t n;
    uint8_t *bytes = read_whole(path.s, &n);
    assert_int_equal(n, sizeof want);
    assert_memory_equal(bytes, want, sizeof want);
    free(bytes);
}

/* With metadata and two tensors: check the structure through an independent JSON parse. */
static void test_layout_json(void **state)
{
    const uint8_t u8[3] = {7, 8, 9};
    const double d[2] = {0.5, -4.0};
    const int64_t s3[] = {3}, s21[] = {2, 1};
    st_tensor t[2] = {make_tensor("bytes", ST_U8, 1, s3, u8),
                      make_tensor("doubles", ST_F64, 2, s21, d)};
    const st_meta meta[] = {{"k", "v\"\n"}};
    path_buf path = join(state, "layout2.safetensors");
    anamo_err err = {0};
    assert_int_equal(st_write(path.s, t, 2, meta, 1, &err), ANAMO_OK);
    size_t n;
    uint8_t *bytes = read_whole(path.s, &n);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--)
        hlen = hlen << 8 | bytes[i];
    assert_int_equal((8 + hlen) % 8, 0);
    assert_int_equal(n, 8 + hlen + 3 + 16); /* contiguous: no padding between tensors */
    assert_memory_equal(bytes + 8 + hlen, u8, 3);
    assert_memory_equal(bytes + 8 + hlen + 3, d, 16);

    cJSON *root = cJSON_ParseWithLength((const char *)bytes + 8, hlen);
    assert_non_null(root);
    assert_int_equal(cJSON_GetArraySize(root), 3);
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(root, "__metadata__");
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(m, "k")->valuestring, "v\"\n");
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(root, "doubles");
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(e, "dtype")->valuestring, "F64");
    const cJSON *shape = cJSON_GetObjectItemCaseSensitive(e, "shape");
    assert_int_equal(cJSON_GetArraySize(shape), 2);
    assert_int_equal(cJSON_GetArrayItem(shape, 0)->valueint, 2);
    assert_int_equal(cJSON_GetArrayItem(shape, 1)->valueint, 1);
    const cJSON *off = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
    assert_int_equal(cJSON_GetArrayItem(off, 0)->valueint, 3);
    assert_int_equal(cJSON_GetArrayItem(off, 1)->valueint, 19);
    cJSON_Delete(root);
    free(bytes);
}

/* A header length that is not a multiple of 8 (allowed; other writers do it) leaves the data
 * unaligned; the reader must still place it right. */
static void test_read_unpadded_foreign_file(void **state)
{
    static const char json[] = "{\"x\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[0,8]}}";
    const double x = -1.5;
    uint8_t buf[8 + sizeof json - 1 + 8];
    size_t nj = sizeof json - 1;
    assert_int_not_equal(nj % 8, 0);
    for (int i = 0; i < 8; i++)
        buf[i] = (uint8_t)((uint64_t)nj >> (8 * i));
    memcpy(buf + 8, json, nj);
    memcpy(buf + 8 + nj, &x, 8);
    path_buf path = join(state, "foreign.safetensors");
    write_bytes(path.s, buf, sizeof buf);
    st_file *f = NULL;
    anamo_err err = {0};
    assert_int_equal(st_open(path.s, &f, &err), ANAMO_OK);
    double got;
    memcpy(&got, st_find(f, "x")->data, sizeof got);
    assert_true(got == x);
    st_close(f);
}

/* ---- bad inputs -------------------------------------------------------------------------- */

static void test_bad_sizes(void **state)
{
    path_buf p = join(state, "bad_empty.safetensors");
    write_bytes(p.s, "", 0);
    expect_open_fails(p.s, ANAMO_ERR_FORMAT, "file is 0 bytes, too short");
    p = join(state, "bad_4.safetensors");
    write_bytes(p.s, "\x10\0\0\0", 4);
    expect_open_fails(p.s, ANAMO_ERR_FORMAT, "file is 4 bytes, too short");
    p = join(state, "bad_hlen.safetensors");
    write_st_raw(p.s, 9999999, "{}", 10);
    expect_open_fails(p.s, ANAMO_ERR_FORMAT, "header length 9999999 exceeds file size 20");
    p = join(state, "bad_hlen_huge.safetensors");
    write_st_raw(p.s, UINT64_MAX, "{}", 0);
    expect_open_fails(p.s, ANAMO_ERR_FORMAT, "header length 18446744073709551615 exceeds");

    /* past the 100 MB limit: a sparse file, rejected before anything is read */
    p = join(state, "bad_hlen_limit.safetensors");
    write_st_raw(p.s, 100000001, "{", 0);
    assert_int_equal(truncate(p.s, 8 + 100000001 + 16), 0);
    expect_open_fails(p.s, ANAMO_ERR_FORMAT, "header length 100000001 exceeds the limit");
    unlink(p.s);
}

static void test_bad_json(void **state)
{
    static const struct {
        const char *json, *fragment;
    } cases[] = {
        {"{\"a\": nope}", "header is not valid JSON"},
        {"", "header is not valid JSON"},
        {"{\"a\":{}", "header is not valid JSON"},
        {"{} x", "trailing bytes"},
        {"[1, 2]", "header is not a JSON object"},
        {"{\"a\": 3}", "tensor 'a': entry is not a JSON object"},
        {"{\"__metadata__\": [\"x\"]}", "__metadata__ is not a JSON object"},
        {"{\"__metadata__\": {\"k\": 1}}", "metadata 'k' is not a string"},
        {"{\"__metadata__\": {\"k\": \"a\", \"k\": \"b\"}}", "metadata key 'k' appears twice"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        path_buf p = join(state, "bad_json.safetensors");
        write_st_json(p.s, cases[i].json, 0);
        expect_open_fails(p.s, ANAMO_ERR_FORMAT, cases[i].fragment);
    }
}

/* The JSON entry of an F32 tensor of shape [2] (8 bytes) at data_offsets [b, e]. */
#define F32_2(name, b, e) \
    "\"" name "\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[" #b "," #e "]}"

static void test_bad_entries(void **state)
{
    static const struct {
        const char *json;
        size_t ndata;
        const char *fragment;
    } cases[] = {
        {"{\"a\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[0,4]}}", 4,
         "tensor 'a': unknown dtype 'BF16'"},
        {"{\"a\":{\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "missing dtype"},
        {"{" F32_2("a", 0, 8) "}", 4, "data_offsets [0, 8] lie outside the data section of 4"},
        {"{" F32_2("a", 8, 0) "}", 8, "data_offsets [8, 0] lie outside"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0]}}", 8,
         "two non-negative integers"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[-8,0]}}", 8,
         "two non-negative integers"},
        {"{\"encoder.0.weight\":{\"dtype\":\"F32\",\"shape\":[10,20],\"data_offsets\":[0,400]}}",
         400,
         "tensor 'encoder.0.weight': data_offsets [0, 400] do not match shape [10, 20] of "
         "F32 (800 bytes)"},
        {"{\"a\":{\"dtype\":\"U8\",\"shape\":[1,1,1,1,1],\"data_offsets\":[0,1]}}", 1,
         "shape must be an array of at most 4"},
        {"{\"a\":{\"dtype\":\"U8\",\"shape\":[-1],\"data_offsets\":[0,1]}}", 1, "shape[0]"},
        {"{\"a\":{\"dtype\":\"U8\",\"shape\":[1.5],\"data_offsets\":[0,1]}}", 1, "shape[0]"},
        {"{\"a\":{\"dtype\":\"U8\",\"shape\":[1,\"2\"],\"data_offsets\":[0,1]}}", 1, "shape[1]"},
        {"{\"a\":{\"dtype\":\"U8\",\"shape\":[1099511627777],\"data_offsets\":[0,1]}}", 1,
         "shape[0] is not an integer in [0, 2^40]"},
        {"{\"a\":{\"dtype\":\"F64\",\"shape\":[1099511627776,1099511627776],"
         "\"data_offsets\":[0,8]}}",
         8, "shape [1099511627776, 1099511627776] has over 2^60 elements"},
        {"{" F32_2("a", 0, 8) "," F32_2("b", 4, 12) "}", 12,
         "tensors 'a' [0, 8] and 'b' [4, 12] overlap"},
        {"{" F32_2("b", 8, 16) "," F32_2("a", 0, 8) "," F32_2("c", 0, 8) "}", 16, "overlap"},
        {"{" F32_2("a", 0, 8) "," F32_2("a", 8, 16) "}", 16, "tensor 'a' appears twice"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        path_buf p = join(state, "bad_entry.safetensors");
        write_st_json(p.s, cases[i].json, cases[i].ndata);
        expect_open_fails(p.s, ANAMO_ERR_FORMAT, cases[i].fragment);
    }
}

/* Names longer than ST_NAME_MAX, and names with newlines: the message stays one line. */
static void test_bad_names(void **state)
{
    char json[512], name[201];
    memset(name, 'n', 200);
    name[200] = '\0';
    snprintf(json, sizeof json, "{\"%s\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}",
             name);
    path_buf p = join(state, "bad_name.safetensors");
    write_st_json(p.s, json, 1);
    expect_open_fails(p.s, ANAMO_ERR_FORMAT, "is 200 bytes, at most 127");
    write_st_json(p.s, "{\"x\\ny\":{\"dtype\":\"Q\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1);
    expect_open_fails(p.s, ANAMO_ERR_FORMAT, "tensor 'x?y': unknown dtype 'Q'");
}

static void test_not_a_file(void **state)
{
    path_buf p = join(state, "a_directory");
    assert_int_equal(mkdir(p.s, 0700), 0);
    expect_open_fails(p.s, ANAMO_ERR_IO, "is a directory");
    rmdir(p.s);
    p = join(state, "missing.safetensors");
    expect_open_fails(p.s, ANAMO_ERR_IO, strerror(ENOENT));
}

/* Empty tensors hold no bytes: they may sit where one tensor ends and the next begins, at
 * either end, and list in any order; bytes no tensor owns are refused (the reference reader's
 * validate(): the offsets must tile the data section). */
static void test_accepts_empty_refuses_gaps(void **state)
{
    path_buf p = join(state, "empty.safetensors");
    write_st_json(p.s,
                  "{" F32_2("b", 8, 16) ",\"e\":{\"dtype\":\"I32\",\"shape\":[0,3],"
                                        "\"data_offsets\":[8,8]}," F32_2("a", 0, 8) "}\n\t ",
                  16);
    st_file *f = NULL;
    anamo_err err = {0};
    assert_int_equal(st_open(p.s, &f, &err), ANAMO_OK);
    assert_int_equal(st_count(f), 3);
    assert_int_equal(st_find(f, "e")->nbytes, 0);
    assert_int_equal(st_find(f, "b")->nbytes, 8);
    st_close(f);
    p = join(state, "gaps.safetensors");
    write_st_json(p.s,
                  "{" F32_2("a", 0, 8) ",\"e\":{\"dtype\":\"I32\",\"shape\":[0,3],"
                                       "\"data_offsets\":[8,8]}," F32_2("b", 12, 20) "}",
                  20);
    expect_open_fails(p.s, ANAMO_ERR_FORMAT,
                      "bytes [8, 12) of the data section belong to no tensor: a hole before "
                      "tensor 'b' [12, 20]");
}

/* ---- writer arguments -------------------------------------------------------------------- */

static void expect_write_fails(void **state, const st_tensor *t, int n, const st_meta *meta,
                               int nmeta, const char *fragment)
{
    path_buf p = join(state, "bad_write.safetensors");
    anamo_err err = {0};
    int rc = st_write(p.s, t, n, meta, nmeta, &err);
    if (rc != ANAMO_ERR_ARG || !strstr(err.msg, fragment))
        print_error("got %d '%s', want '%s'\n", rc, err.msg, fragment);
    assert_int_equal(rc, ANAMO_ERR_ARG);
    assert_non_null(strstr(err.msg, fragment));
    assert_int_equal(access(p.s, F_OK), -1); /* nothing written */
    assert_false(has_tmp_file((const char *)*state));
}

static void test_write_bad_args(void **state)
{
    const float x[3] = {0};
    const int64_t s3[] = {3}, neg[] = {-3};
    st_tensor t[2] = {make_tensor("x", ST_F32, 1, s3, x), make_tensor("x", ST_F32, 1, s3, x)};
    expect_write_fails(state, t, 2, NULL, 0, "tensor 'x' given twice");
    t[0].nbytes = 8;
    expect_write_fails(state, t, 1, NULL, 0,
                       "tensor 'x': nbytes 8 does not match shape [3] of F32 (12 bytes)");
    t[0] = make_tensor("__metadata__", ST_F32, 1, s3, x);
    expect_write_fails(state, t, 1, NULL, 0, "reserved");
    t[0] = make_tensor("x", ST_F32, 1, s3, NULL);
    expect_write_fails(state, t, 1, NULL, 0, "data is NULL");
    t[0] = make_tensor("x", ST_F32, 1, neg, x);
    expect_write_fails(state, t, 1, NULL, 0, "bad dimension 0 = -3");
    t[0] = make_tensor("x", (st_dtype)9, 1, s3, x);
    expect_write_fails(state, t, 1, NULL, 0, "bad dtype 9");
    memset(t[0].name, 'a', sizeof t[0].name);
    expect_write_fails(state, t, 1, NULL, 0, "not terminated");
    const st_meta dup[] = {{"k", "1"}, {"k", "2"}}, null_value[] = {{"k", NULL}};
    expect_write_fails(state, NULL, 0, dup, 2, "metadata key 'k' given twice");
    expect_write_fails(state, NULL, 0, null_value, 1, "NULL value");
}

/* ---- atomicity --------------------------------------------------------------------------- */

static void test_overwrite_leaves_no_tmp(void **state)
{
    path_buf p = join(state, "over.safetensors");
    const int64_t s1[] = {1};
    const int32_t v1 = 1, v2 = 2;
    st_tensor t = make_tensor("v", ST_I32, 1, s1, &v1);
    anamo_err err = {0};
    assert_int_equal(st_write(p.s, &t, 1, NULL, 0, &err), ANAMO_OK);
    t.data = &v2;
    const st_meta meta[] = {{"version", "2"}};
    assert_int_equal(st_write(p.s, &t, 1, meta, 1, &err), ANAMO_OK);
    assert_false(has_tmp_file((const char *)*state));
    st_file *f = NULL;
    assert_int_equal(st_open(p.s, &f, &err), ANAMO_OK);
    int32_t got;
    memcpy(&got, st_find(f, "v")->data, sizeof got);
    assert_int_equal(got, 2);
    assert_string_equal(st_meta_get(f, "version"), "2");
    st_close(f);
}

static void test_missing_directory(void **state)
{
    path_buf dir = join(state, "no_such_dir");
    path_buf p = join(state, "no_such_dir/model.safetensors");
    anamo_err err = {0};
    assert_int_equal(st_write(p.s, NULL, 0, NULL, 0, &err), ANAMO_ERR_IO);
    assert_int_equal(err.code, ANAMO_ERR_IO);
    assert_non_null(strstr(err.msg, dir.s));
    assert_non_null(strstr(err.msg, "does not exist"));
    struct stat st;
    assert_int_equal(stat(dir.s, &st), -1);
    assert_int_equal(errno, ENOENT);
}

/* rename() of a file over a directory fails after the .tmp is written: it must be removed. */
static void test_failed_rename_removes_tmp(void **state)
{
    path_buf p = join(state, "target_is_dir");
    assert_int_equal(mkdir(p.s, 0700), 0);
    anamo_err err = {0};
    assert_int_equal(st_write(p.s, NULL, 0, NULL, 0, &err), ANAMO_ERR_IO);
    assert_non_null(strstr(err.msg, p.s));
    assert_non_null(strstr(err.msg, strerror(EISDIR)));
    assert_false(has_tmp_file((const char *)*state));
    struct stat st;
    assert_int_equal(stat(p.s, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    rmdir(p.s);
}

/* ---- the reference implementation, when present ------------------------------------------ */

static const char py_check[] =
    "import sys, numpy as np\n"
    "from safetensors.numpy import load_file, save_file\n"
    "from safetensors import safe_open\n"
    "d = load_file(sys.argv[1])\n"
    "assert d['w'].dtype == np.float32 and d['w'].shape == (2, 3), d['w']\n"
    "assert d['w'].tolist() == [[0, 1, 2], [3, 4, 5]]\n"
    "assert d['n'].dtype == np.int64 and d['n'].tolist() == [-7]\n"
    "with safe_open(sys.argv[1], 'np') as f:\n"
    "    assert f.metadata()['cfg'] == 'a = \"b\"\\n[c]\\n', f.metadata()\n"
    "save_file({'z': np.arange(4, dtype=np.float64).reshape(2, 2),\n"
    "           'b': np.array([1, 2, 3], dtype=np.uint8)}, sys.argv[2], metadata={'k': 'v'})\n";

static void test_reference_implementation(void **state)
{
    if (system("python3 -c 'import safetensors.numpy, numpy' >/dev/null 2>&1") != 0)
        skip();
    path_buf script = join(state, "check.py"), ours = join(state, "ours.safetensors"),
             theirs = join(state, "theirs.safetensors");
    write_bytes(script.s, py_check, strlen(py_check));
    const float w[6] = {0, 1, 2, 3, 4, 5};
    const int64_t n = -7, s23[] = {2, 3}, s1[] = {1};
    st_tensor t[2] = {make_tensor("w", ST_F32, 2, s23, w), make_tensor("n", ST_I64, 1, s1, &n)};
    const st_meta meta[] = {{"cfg", "a = \"b\"\n[c]\n"}};
    anamo_err err = {0};
    assert_int_equal(st_write(ours.s, t, 2, meta, 1, &err), ANAMO_OK);
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "python3 '%s' '%s' '%s'", script.s, ours.s, theirs.s);
    assert_int_equal(system(cmd), 0);

    st_file *f = NULL;
    assert_int_equal(st_open(theirs.s, &f, &err), ANAMO_OK);
    const st_tensor *z = st_find(f, "z");
    assert_non_null(z);
    assert_int_equal(z->dtype, ST_F64);
    double zv[4];
    assert_int_equal(z->nbytes, sizeof zv);
    memcpy(zv, z->data, sizeof zv);
    for (int i = 0; i < 4; i++)
        assert_true(zv[i] == (double)i);
    assert_memory_equal(st_find(f, "b")->data, "\x01\x02\x03", 3);
    assert_string_equal(st_meta_get(f, "k"), "v");
    st_close(f);
}

static void test_dtype_names(void **state)
{
    (void)state;
    assert_string_equal(st_dtype_name(ST_F32), "F32");
    assert_string_equal(st_dtype_name(ST_U8), "U8");
    assert_int_equal(st_dtype_size(ST_F64), 8);
    assert_int_equal(st_dtype_size(ST_I32), 4);
    assert_int_equal(st_dtype_size((st_dtype)42), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dtype_names),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_no_tensors_no_metadata),
        cmocka_unit_test(test_layout_by_hand),
        cmocka_unit_test(test_layout_json),
        cmocka_unit_test(test_read_unpadded_foreign_file),
        cmocka_unit_test(test_bad_sizes),
        cmocka_unit_test(test_bad_json),
        cmocka_unit_test(test_bad_entries),
        cmocka_unit_test(test_bad_names),
        cmocka_unit_test(test_not_a_file),
        cmocka_unit_test(test_accepts_empty_refuses_gaps),
        cmocka_unit_test(test_write_bad_args),
        cmocka_unit_test(test_overwrite_leaves_no_tmp),
        cmocka_unit_test(test_missing_directory),
        cmocka_unit_test(test_failed_rename_removes_tmp),
        cmocka_unit_test(test_reference_implementation),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
