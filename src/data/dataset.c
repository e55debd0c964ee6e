/* dataset.c — datasets as a whole: opening one by spec ("mnist:train", "runs/x.npy@1000"; the
 * forms are listed at anamo_dataset_open in anamo.h), slicing, freeing, and copying rows out
 * as the float batches the model sees (bytes scaled to [0, 1]). */
#include "core/err.h"
#include "core/simd.h"
#include "data/data.h"
#include "data/generate.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#define DATA_DEFAULT_ROOT "data"
#define DATA_CIFAR_PREFIX "cifar10:"
#define DATA_PATH_MAX 4096
/* Below this many values per batch, starting OpenMP threads costs more than the copy. */
#define DATA_PAR_MIN ((int64_t)1 << 16)
#define DATA_SPEC_FORMS                                                                                     \
    "mnist:train, mnist:test, fashion-mnist:train, fashion-mnist:test, cifar10:train, "                     \
    "cifar10:test, PATH.idx[.gz], "                                                                         \
    "PATH-idx3-ubyte[.gz], PATH.npy, PATH.csv, halves:train|test|N:SEED, steps[:N[:A]], optionally ending " \
    "in @N to keep the first N samples"

/* A dataset known by name: IDX files under data_root/<name>/, named as LeCun distributes
 * them (train-images-idx3-ubyte, t10k-labels-idx1-ubyte, ...), plain or gzipped. */
typedef struct known_set {
    const char *name;       /* the spec prefix and the folder under data_root */
    const char *system_dir; /* where a distribution package puts it, or NULL */
    const char *how_to_get;
} known_set;

static const known_set KNOWN_SETS[] = {
    {"mnist", NULL,
     "download from http://yann.lecun.com/exdb/mnist/ or "
     "https://ossci-datasets.s3.amazonaws.com/mnist/"},
    {"fashion-mnist", "/usr/share/datasets/fashion-mnist",
     "install the Debian package dataset-fashion-mnist or download from "
     "https://github.com/zalandoresearch/fashion-mnist"},
};

/* ---- freeing, slicing, batches ----------------------------------------------------------- */

void anamo_dataset_free(anamo_dataset *ds)
{
    if (!ds)
        return;
    if (!ds->borrowed) {
        anamo_free(ds->data);
        anamo_free(ds->labels);
    }
    memset(ds, 0, sizeof *ds);
}

static size_t dtype_size(anamo_dtype t) { return t == ANAMO_U8 ? 1 : sizeof(float); }

int anamo_dataset_wrap(anamo_dataset *out, const void *data, anamo_dtype dtype, int64_t n, int c,
                       int h, int w, const uint8_t *labels, const char *name, anamo_err *err)
{
    if (!out)
        return anamo_err_set(err, ANAMO_ERR_ARG, "dataset wrap: out is NULL");
    memset(out, 0, sizeof *out);
    const char *what = name ? name : "user array";
    if (dtype != ANAMO_U8 && dtype != ANAMO_F32)
        return anamo_err_set(err, ANAMO_ERR_ARG, "%s: dtype %d is neither ANAMO_U8 nor ANAMO_F32",
                             what, (int)dtype);
    if (!data)
        return anamo_err_set(err, ANAMO_ERR_ARG, "%s: the data array is NULL", what);
    if ((uintptr_t)data % dtype_size(dtype))
        return anamo_err_set(err, ANAMO_ERR_ARG,
                             "%s: the float32 array at %p is not 4-byte "
                             "aligned",
                             what, data);
    if (n < 1 || c < 1 || h < 1 || w < 1)
        return anamo_err_set(err, ANAMO_ERR_ARG,
                             "%s: shape %lld × %d × %d × %d has an empty or "
                             "negative dimension",
                             what, (long long)n, c, h, w);
    const int64_t dim = (int64_t)c * h * w;
    if (n > ANAMO_DATA_MAX_BYTES / dim)
        return anamo_err_set(err, ANAMO_ERR_ARG,
                             "%s: %lld samples of %lld values is more than "
                             "anamo addresses",
                             what, (long long)n, (long long)dim);
    *out = (anamo_dataset){.n = n,
                           .c = c,
                           .h = h,
                           .w = w,
                           .dim = dim,
                           .dtype = dtype,
                           .data = (void *)data,
                           .labels = (uint8_t *)labels,
                           .borrowed = 1};
    snprintf(out->source, sizeof out->source, "%s", what);
    return ANAMO_OK;
}

int anamo_dataset_rows(const anamo_dataset *ds, int64_t first, int64_t count, float *out,
                       anamo_err *err)
{
    if (!ds || !ds->data || !out)
        return anamo_err_set(err, ANAMO_ERR_ARG, "dataset rows: %s is NULL",
                             !ds || !ds->data ? "the dataset" : "out");
    if (first < 0 || count < 0 || first > ds->n - count)
        return anamo_err_set(err, ANAMO_ERR_ARG,
                             "%s: rows [%lld, %lld) are not within the %lld "
                             "samples there",
                             ds->source, (long long)first, (long long)(first + count),
                             (long long)ds->n);
    data_rows(ds, first, count, out);
    return ANAMO_OK;
}

int anamo_dataset_slice(const anamo_dataset *ds, int64_t first, int64_t count, anamo_dataset *out,
                        anamo_err *err)
{
    if (!ds || !out)
        return anamo_err_set(err, ANAMO_ERR_ARG, "dataset slice: ds and out must not be NULL");
    if (first < 0 || count < 1 || first > ds->n - count)
        return anamo_err_set(err, ANAMO_ERR_ARG,
                             "%s: samples [%lld, %lld) are not within the %lld "
                             "samples there",
                             ds->source, (long long)first, (long long)first + (long long)count,
                             (long long)ds->n);
    anamo_dataset part = *ds;
    size_t row = (size_t)ds->dim * dtype_size(ds->dtype);
    part.borrowed = 0;
    part.n = count;
    part.data = anamo_alloc((size_t)count * row);
    part.labels = ds->labels ? anamo_alloc((size_t)count) : NULL;
    if (!part.data || (ds->labels && !part.labels)) {
        anamo_dataset_free(&part);
        return anamo_err_set(err, ANAMO_ERR_NOMEM, "%s: cannot allocate %lld samples", ds->source,
                             (long long)count);
    }
    memcpy(part.data, (const uint8_t *)ds->data + (size_t)first * row, (size_t)count * row);
    if (ds->labels)
        memcpy(part.labels, ds->labels + first, (size_t)count);
    snprintf(part.source, sizeof part.source, "%.200s[%lld:%lld]", ds->source, (long long)first,
             (long long)(first + count));
    *out = part;
    return ANAMO_OK;
}

/* Marks k of n indices, chosen uniformly without replacement by seed: the first k places of a
 * Fisher–Yates shuffle of 0..n−1 (Knuth, TAOCP vol. 2, Algorithm P), so the choice depends on
 * (n, k, seed) alone. */
static int mark_held_out(int64_t n, int64_t k, uint64_t seed, uint8_t *held)
{
    int64_t *order = anamo_alloc((size_t)n * sizeof *order);
    if (!order)
        return -1;
    for (int64_t i = 0; i < n; i++)
        order[i] = i;
    anamo_rng rng;
    anamo_rng_seed(&rng, seed);
    memset(held, 0, (size_t)n);
    for (int64_t i = 0; i < k; i++) {
        int64_t j = i + (int64_t)anamo_rng_below(&rng, (uint64_t)(n - i));
        int64_t tmp = order[i];
        order[i] = order[j], order[j] = tmp;
        held[order[i]] = 1;
    }
    anamo_free(order);
    return 0;
}

int anamo_dataset_hold_out(anamo_dataset *ds, double fraction, uint64_t seed,
                           anamo_dataset *validation, anamo_err *err)
{
    if (!ds || !validation || validation == ds)
        return anamo_err_set(err, ANAMO_ERR_ARG,
                             "hold out: ds and validation must be two datasets");
    const int64_t k = llround(fraction * (double)ds->n);
    if (!(fraction > 0.0 && fraction < 1.0) || k < 1 || k > ds->n - 1)
        return anamo_err_set(err, ANAMO_ERR_ARG,
                             "%s: a validation fraction of %g holds out %lld of "
                             "%lld samples; it must leave at least one on each side",
                             ds->source, fraction, (long long)k, (long long)ds->n);
    if (ds->borrowed) { /* the training rows move up in place: never in the caller's memory */
        anamo_dataset own;
        int rc = anamo_dataset_slice(ds, 0, ds->n, &own, err);
        if (rc)
            return rc;
        snprintf(own.source, sizeof own.source, "%s", ds->source);
        *ds = own;
    }
    const size_t row = (size_t)ds->dim * dtype_size(ds->dtype);
    anamo_dataset val = *ds;
    val.n = k;
    val.data = anamo_alloc((size_t)k * row);
    val.labels = ds->labels ? anamo_alloc((size_t)k) : NULL;
    uint8_t *held = anamo_alloc((size_t)ds->n);
    if (!val.data || (ds->labels && !val.labels) || !held || mark_held_out(ds->n, k, seed, held)) {
        anamo_free(held);
        anamo_dataset_free(&val);
        return anamo_err_set(err, ANAMO_ERR_NOMEM,
                             "%s: cannot allocate a validation split of %lld "
                             "samples",
                             ds->source, (long long)k);
    }
    /* both parts keep the original order; the training rows move up in place */
    uint8_t *data = ds->data;
    int64_t kept = 0, out = 0;
    for (int64_t i = 0; i < ds->n; i++) {
        const int64_t to = held[i] ? out++ : kept++;
        uint8_t *dst = held[i] ? (uint8_t *)val.data : data;
        if (held[i] || to != i)
            memmove(dst + (size_t)to * row, data + (size_t)i * row, row);
        if (ds->labels)
            (held[i] ? val.labels : ds->labels)[to] = ds->labels[i];
    }
    anamo_free(held);
    ds->n = kept;
    snprintf(val.source, sizeof val.source, "%.200s[validation %g, seed %llu]", ds->source,
             fraction, (unsigned long long)seed);
    char base[sizeof ds->source];
    snprintf(base, sizeof base, "%s", ds->source);
    snprintf(ds->source, sizeof ds->source, "%.200s[training, validation %g held out]", base,
             fraction);
    *validation = val;
    return ANAMO_OK;
}

/* Bytes become k/255 correctly rounded (a division, not a multiplication by a rounded 1/255,
 * which rounds differently for some k), so 255 becomes 1.0f and 51 becomes 0.2f exactly; a
 * plain loop, which the clones run in 16-wide vectors where the CPU has them. */
ANAMO_CLONES static void bytes_to_unit(const uint8_t *src, float *dst, int64_t n)
{
#pragma omp simd
    for (int64_t j = 0; j < n; j++)
        dst[j] = (float)src[j] / 255.0f;
}

static void copy_row(const anamo_dataset *ds, int64_t row, float *dst)
{
    if (ds->dtype == ANAMO_U8) {
        bytes_to_unit((const uint8_t *)ds->data + row * ds->dim, dst, ds->dim);
    } else {
        memcpy(dst, (const float *)ds->data + row * ds->dim, (size_t)ds->dim * sizeof(float));
    }
}

void data_gather(const anamo_dataset *ds, const int64_t *idx, int64_t count, float *out)
{
    const int64_t dim = ds->dim;
#pragma omp parallel for schedule(static) if (count * dim > DATA_PAR_MIN)
    for (int64_t i = 0; i < count; i++)
        copy_row(ds, idx[i], out + i * dim);
}

void data_rows(const anamo_dataset *ds, int64_t first, int64_t count, float *out)
{
    const int64_t dim = ds->dim;
#pragma omp parallel for schedule(static) if (count * dim > DATA_PAR_MIN)
    for (int64_t i = 0; i < count; i++)
        copy_row(ds, first + i, out + i * dim);
}

/* ---- opening by spec --------------------------------------------------------------------- */

/* Splits "base@N" into base and N (0: no suffix). Only an all-digit suffix counts, so a path
 * with an '@' in it still opens. */
static int split_count(const char *spec, char *base, size_t cap, int64_t *keep, anamo_err *err)
{
    size_t len = strlen(spec);
    if (len >= cap)
        return anamo_err_set(err, ANAMO_ERR_ARG,
                             "dataset spec of %zu characters, at most %zu "
                             "allowed",
                             len, cap - 1);
    memcpy(base, spec, len + 1);
    *keep = 0;
    char *at = strrchr(base, '@');
    if (!at || !at[1] || strspn(at + 1, "0123456789") != strlen(at + 1))
        return ANAMO_OK;
    errno = 0;
    long long v = strtoll(at + 1, NULL, 10);
    if (errno || v < 1)
        return anamo_err_set(err, ANAMO_ERR_ARG,
                             "%s: @%s: the number of samples to keep must be "
                             "at least 1",
                             spec, at + 1);
    *at = '\0';
    *keep = v;
    return ANAMO_OK;
}

/* Looks for stem, then stem.gz; path gets the first that exists. A name that exists but is
 * not a regular file still counts, so the reader can say what is wrong with it. */
static int find_plain_or_gz(const char *stem, char *path, size_t cap)
{
    static const char *const suffixes[] = {"", ".gz"};
    struct stat st;
    for (int i = 0; i < 2; i++) {
        int len = snprintf(path, cap, "%s%s", stem, suffixes[i]);
        if (len > 0 && (size_t)len < cap && stat(path, &st) == 0)
            return 1;
    }
    return 0;
}

/* Reads images and, when labels is not NULL, their labels, which must be as many. */
static int read_idx_pair(const char *images, const char *labels, anamo_dataset *out, anamo_err *err)
{
    int rc = anamo_idx_read(images, out, err);
    if (rc || !labels)
        return rc;
    int64_t n = 0;
    rc = anamo_idx_read_labels(labels, &out->labels, &n, err);
    if (!rc && n != out->n)
        rc = anamo_err_set(err, ANAMO_ERR_FORMAT, "%s: %lld labels for the %lld images in %s",
                           labels, (long long)n, (long long)out->n, images);
    if (rc)
        anamo_dataset_free(out);
    return rc;
}

static int open_known(const known_set *set, const char *split, const char *base, const char *root,
                      anamo_dataset *out, anamo_err *err)
{
    const char *prefix = strcmp(split, "train") == 0  ? "train"
                         : strcmp(split, "test") == 0 ? "t10k"
                                                      : NULL;
    if (!prefix)
        return anamo_err_set(err, ANAMO_ERR_ARG, "%s: unknown split '%s'; use %s:train or %s:test",
                             base, split, set->name, set->name);
    char local[DATA_PATH_MAX], stem[DATA_PATH_MAX + 32], images[DATA_PATH_MAX + 40],
        labels[DATA_PATH_MAX + 40];
    if (snprintf(local, sizeof local, "%s/%s", root, set->name) >= (int)sizeof local)
        return anamo_err_set(err, ANAMO_ERR_ARG, "%s: data root of %zu characters is too long",
                             base, strlen(root));
    const char *dirs[2] = {local, set->system_dir};
    int ndirs = set->system_dir ? 2 : 1, d;
    for (d = 0; d < ndirs; d++) {
        snprintf(stem, sizeof stem, "%s/%s-images-idx3-ubyte", dirs[d], prefix);
        if (find_plain_or_gz(stem, images, sizeof images))
            break;
    }
    if (d == ndirs)
        return anamo_err_set(err, ANAMO_ERR_IO,
                             "%s: cannot find %s-images-idx3-ubyte(.gz) in %s%s%s "
                             "(set ANAMO_DATA or put the files there; %s)",
                             base, prefix, dirs[0], ndirs > 1 ? " or " : "",
                             ndirs > 1 ? dirs[1] : "", set->how_to_get);
    snprintf(stem, sizeof stem, "%s/%s-labels-idx1-ubyte", dirs[d], prefix);
    if (!find_plain_or_gz(stem, labels, sizeof labels))
        return anamo_err_set(err, ANAMO_ERR_IO,
                             "%s: found %s but cannot find "
                             "%s-labels-idx1-ubyte(.gz) beside it (%s)",
                             base, images, prefix, set->how_to_get);
    int rc = read_idx_pair(images, labels, out, err);
    if (rc && err)
        anamo_err_context(err, "%s", base);
    return rc;
}

static int ends_with(const char *s, size_t len, const char *suffix)
{
    size_t k = strlen(suffix);
    return len >= k && strncasecmp(s + len - k, suffix, k) == 0;
}

/* For ".../NAME-images-idx3-ubyte[.gz]" (or "images.idx3-ubyte", as some mirrors name it),
 * the labels file beside it, if there is one. inner is the path's length without ".gz". */
static int companion_labels(const char *path, size_t inner, char *labels, size_t cap)
{
    static const char *const forms[][2] = {{"images-idx3-ubyte", "labels-idx1-ubyte"},
                                           {"images.idx3-ubyte", "labels.idx1-ubyte"}};
    char stem[DATA_PATH_MAX];
    for (int i = 0; i < 2; i++) {
        size_t k = strlen(forms[i][0]);
        if (!ends_with(path, inner, forms[i][0]) || inner - k + strlen(forms[i][1]) >= sizeof stem)
            continue;
        memcpy(stem, path, inner - k);
        strcpy(stem + inner - k, forms[i][1]);
        return find_plain_or_gz(stem, labels, cap);
    }
    return 0;
}

/* A file of samples, its reader chosen by extension (".gz" looked through). */
static int open_file(const char *path, anamo_dataset *out, anamo_err *err)
{
    size_t len = strlen(path);
    size_t inner = ends_with(path, len, ".gz") ? len - 3 : len;
    if (ends_with(path, inner, ".npy"))
        return anamo_npy_read(path, out, err);
    if (ends_with(path, inner, ".csv"))
        return anamo_csv_read(path, out, err);
    if (ends_with(path, inner, ".idx") || ends_with(path, inner, "-ubyte") || inner < len) {
        char labels[DATA_PATH_MAX + 8];
        int have = companion_labels(path, inner, labels, sizeof labels);
        return read_idx_pair(path, have ? labels : NULL, out, err);
    }
    return anamo_err_set(err, ANAMO_ERR_ARG, "unknown dataset '%s'; use %s", path, DATA_SPEC_FORMS);
}

/* Keeps the first keep samples of ds (the @N suffix), freeing the rest. */
static int keep_first(anamo_dataset *ds, int64_t keep, const char *spec, anamo_err *err)
{
    if (keep > ds->n) {
        int64_t n = ds->n;
        anamo_dataset_free(ds);
        return anamo_err_set(err, ANAMO_ERR_ARG, "%s: asks for %lld samples, there are only %lld",
                             spec, (long long)keep, (long long)n);
    }
    if (keep == ds->n)
        return ANAMO_OK;
    anamo_dataset part;
    int rc = anamo_dataset_slice(ds, 0, keep, &part, err);
    anamo_dataset_free(ds);
    if (!rc)
        *ds = part;
    return rc;
}

int anamo_dataset_open(const char *spec, const char *data_root, anamo_dataset *out, anamo_err *err)
{
    if (!out || !spec || !*spec)
        return anamo_err_set(err, ANAMO_ERR_ARG, "dataset: no spec given; use %s", DATA_SPEC_FORMS);
    memset(out, 0, sizeof *out);
    const char *root = data_root && *data_root ? data_root : DATA_DEFAULT_ROOT;
    char base[DATA_PATH_MAX];
    int64_t keep = 0;
    int rc = split_count(spec, base, sizeof base, &keep, err);
    if (rc)
        return rc;
    const known_set *set = NULL;
    size_t k = 0;
    for (size_t i = 0; i < sizeof KNOWN_SETS / sizeof KNOWN_SETS[0] && !set; i++) {
        k = strlen(KNOWN_SETS[i].name);
        if (strncmp(base, KNOWN_SETS[i].name, k) == 0 && base[k] == ':')
            set = &KNOWN_SETS[i];
    }
    if (data_is_generated(base))
        rc = data_generate(base, out, err);
    else if (strncmp(base, DATA_CIFAR_PREFIX, strlen(DATA_CIFAR_PREFIX)) == 0)
        rc = cifar_open(base + strlen(DATA_CIFAR_PREFIX), base, root, out, err);
    else if (set)
        rc = open_known(set, base + k + 1, base, root, out, err);
    else
        rc = open_file(base, out, err);
    if (!rc && keep)
        rc = keep_first(out, keep, spec, err);
    if (!rc)
        snprintf(out->source, sizeof out->source, "%s", spec);
    return rc;
}
