/* safetensors_write.c — writing the safetensors format atomically (see safetensors.c for the
 * layout): the header's JSON built with cJSON and padded with spaces so the data section starts
 * at a multiple of 8 bytes, the bytes written to PATH.tmp, flushed and fsync'ed, renamed over
 * PATH, and the directory fsync'ed. */
#include "io/st_internal.h"

#include "core/err.h"

#include <cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int check_tensor_arg(const char *path, const st_tensor *t, anamo_err *err)
{
    if (strnlen(t->name, ST_NAME_MAX) == ST_NAME_MAX)
        return anamo_err_set(err, ANAMO_ERR_ARG,
                             "%s: tensor name is not terminated within %d bytes", path,
                             ST_NAME_MAX);
    shown name = st_show(t->name);
    if (strcmp(t->name, ST_META_KEY) == 0)
        return anamo_err_set(err, ANAMO_ERR_ARG, "%s: '%s' is reserved, not a tensor name", path,
                             ST_META_KEY);
    if (st_dtype_size(t->dtype) == 0 || t->ndim < 0 || t->ndim > ANAMO_MAX_DIMS)
        return anamo_err_set(err, ANAMO_ERR_ARG, "%s: tensor '%s': bad dtype %d or ndim %d", path,
                             name.s, (int)t->dtype, t->ndim);
    for (int i = 0; i < t->ndim; i++)
        if (t->shape[i] < 0 || (uint64_t)t->shape[i] > ST_DIM_MAX)
            return anamo_err_set(err, ANAMO_ERR_ARG, "%s: tensor '%s': bad dimension %d = %lld",
                                 path, name.s, i, (long long)t->shape[i]);
    int overflow;
    uint64_t numel = st_shape_numel(t->shape, t->ndim, &overflow);
    uint64_t want = numel * st_dtype_size(t->dtype);
    if (overflow)
        return anamo_err_set(err, ANAMO_ERR_ARG, "%s: tensor '%s': shape %s has over 2^60 elements",
                             path, name.s, st_format_shape(t->shape, t->ndim).s);
    if (want != t->nbytes)
        return anamo_err_set(
            err, ANAMO_ERR_ARG,
            "%s: tensor '%s': nbytes %zu does not match shape %s of %s (%llu bytes)", path, name.s,
            t->nbytes, st_format_shape(t->shape, t->ndim).s, st_dtype_name(t->dtype),
            (unsigned long long)want);
    if (t->nbytes > 0 && !t->data)
        return anamo_err_set(err, ANAMO_ERR_ARG, "%s: tensor '%s': data is NULL", path, name.s);
    return ANAMO_OK;
}

/* Duplicate tensor names or metadata keys would make st_find and st_meta_get ambiguous. */
static int check_write_args(const char *path, const st_tensor *tensors, int ntensors,
                            const st_meta *meta, int nmeta, anamo_err *err)
{
    if (ntensors < 0 || nmeta < 0 || (ntensors > 0 && !tensors) || (nmeta > 0 && !meta))
        return anamo_err_set(err, ANAMO_ERR_ARG, "%s: %d tensors, %d metadata entries", path,
                             ntensors, nmeta);
    for (int i = 0; i < ntensors; i++) {
        int rc = check_tensor_arg(path, &tensors[i], err);
        if (rc)
            return rc;
    }
    for (int i = 0; i < nmeta; i++)
        if (!meta[i].key || !meta[i].value)
            return anamo_err_set(err, ANAMO_ERR_ARG, "%s: metadata entry %d has a NULL %s", path, i,
                                 meta[i].key ? "value" : "key");
    int most = ntensors > nmeta ? ntensors : nmeta;
    const char **names = malloc(((size_t)most + 1) * sizeof *names);
    if (!names)
        return anamo_err_set(err, ANAMO_ERR_NOMEM, "%s: cannot allocate name list", path);
    for (int i = 0; i < ntensors; i++)
        names[i] = tensors[i].name;
    int dup = st_find_duplicate(names, ntensors);
    shown name = st_show(dup >= 0 ? names[dup] : "");
    const char *what = "tensor";
    if (dup < 0) {
        for (int i = 0; i < nmeta; i++)
            names[i] = meta[i].key;
        dup = st_find_duplicate(names, nmeta);
        name = st_show(dup >= 0 ? names[dup] : "");
        what = "metadata key";
    }
    free(names);
    if (dup >= 0)
        return anamo_err_set(err, ANAMO_ERR_ARG, "%s: %s '%s' given twice", path, what, name.s);
    return ANAMO_OK;
}

/* Integers go in as raw JSON text: cJSON would print 10^15 as "1e+15", which readers that
 * want a u64 (the reference one) reject. */
static cJSON *json_int_array(const int64_t *v, int n)
{
    cJSON *arr = cJSON_CreateArray();
    for (int i = 0; arr && i < n; i++) {
        char text[24];
        snprintf(text, sizeof text, "%lld", (long long)v[i]);
        if (!cJSON_AddItemToArray(arr, cJSON_CreateRaw(text))) {
            cJSON_Delete(arr);
            return NULL;
        }
    }
    return arr;
}

/* Adds item to obj, freeing it when that fails (cJSON leaves it to the caller). */
static int add_owned(cJSON *obj, const char *key, cJSON *item)
{
    if (item && cJSON_AddItemToObject(obj, key, item))
        return 1;
    cJSON_Delete(item);
    return 0;
}

static cJSON *build_json(const st_tensor *tensors, int ntensors, const st_meta *meta, int nmeta)
{
    cJSON *root = cJSON_CreateObject();
    if (root && nmeta > 0) {
        cJSON *m = cJSON_AddObjectToObject(root, ST_META_KEY);
        for (int i = 0; m && i < nmeta; i++)
            if (!cJSON_AddStringToObject(m, meta[i].key, meta[i].value))
                m = NULL;
        if (!m)
            return cJSON_Delete(root), NULL;
    }
    int64_t begin = 0;
    for (int i = 0; root && i < ntensors; i++) {
        const st_tensor *t = &tensors[i];
        int64_t offsets[2] = {begin, begin + (int64_t)t->nbytes};
        cJSON *e = cJSON_AddObjectToObject(root, t->name);
        if (!e || !cJSON_AddStringToObject(e, "dtype", st_dtype_name(t->dtype)) ||
            !add_owned(e, "shape", json_int_array(t->shape, t->ndim)) ||
            !add_owned(e, "data_offsets", json_int_array(offsets, 2)))
            return cJSON_Delete(root), NULL;
        begin = offsets[1];
    }
    return root;
}

/* The JSON header padded with spaces to a multiple of 8 bytes; *len gets its length. */
static char *build_header(const st_tensor *tensors, int ntensors, const st_meta *meta, int nmeta,
                          size_t *len)
{
    cJSON *root = build_json(tensors, ntensors, meta, nmeta);
    char *text = root ? cJSON_PrintUnformatted(root) : NULL;
    cJSON_Delete(root);
    if (!text)
        return NULL;
    size_t n = strlen(text);
    size_t padded = (n + ST_DATA_ALIGN - 1) / ST_DATA_ALIGN * ST_DATA_ALIGN;
    char *header = malloc(padded + 1); /* not realloc: text belongs to cJSON's allocator */
    if (header) {
        memcpy(header, text, n);
        memset(header + n, ' ', padded - n);
        header[padded] = '\0';
        *len = padded;
    }
    cJSON_free(text);
    return header;
}

/* Writes the whole file to tmp; returns 0 or an errno value. */
static int write_tmp(const char *tmp, const char *header, size_t hlen, const st_tensor *tensors,
                     int ntensors)
{
    FILE *fp = fopen(tmp, "wb");
    if (!fp)
        return errno;
    uint8_t len[ST_LEN_BYTES];
    for (int i = 0; i < ST_LEN_BYTES; i++)
        len[i] = (uint8_t)((uint64_t)hlen >> (8 * i));
    int ok = fwrite(len, 1, sizeof len, fp) == sizeof len && fwrite(header, 1, hlen, fp) == hlen;
    for (int i = 0; ok && i < ntensors; i++)
        ok = tensors[i].nbytes == 0 ||
             fwrite(tensors[i].data, 1, tensors[i].nbytes, fp) == tensors[i].nbytes;
    /* fsync before rename: otherwise a crash can leave the new name on unwritten blocks */
    ok = ok && fflush(fp) == 0 && fsync(fileno(fp)) == 0;
    int saved = ok ? 0 : (errno ? errno : EIO);
    if (fclose(fp) != 0 && !saved)
        saved = errno ? errno : EIO;
    return saved;
}

/* The directory holding path ("." when it has none); malloc'd. */
static char *dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        return strdup(".");
    size_t n = slash == path ? 1 : (size_t)(slash - path);
    char *dir = malloc(n + 1);
    if (dir) {
        memcpy(dir, path, n);
        dir[n] = '\0';
    }
    return dir;
}

/* The rename is durable only once the directory entry is on disk. Returns 0 or an errno. */
static int fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd < 0)
        return errno;
    int rc = fsync(fd) == 0 || errno == EINVAL ? 0 : errno; /* EINVAL: fs cannot sync dirs */
    close(fd);
    return rc;
}

static int fail_write(const char *path, const char *dir, int e, anamo_err *err)
{
    struct stat st;
    if (e == ENOENT && dir && stat(dir, &st) != 0)
        return anamo_err_set(err, ANAMO_ERR_IO,
                             "%s: cannot write: directory '%s' does not exist (%s)", path, dir,
                             strerror(e));
    return anamo_err_set(err, ANAMO_ERR_IO, "%s: cannot write: %s", path, strerror(e));
}

int st_write(const char *path, const st_tensor *tensors, int ntensors, const st_meta *meta,
             int nmeta, anamo_err *err)
{
    if (!path)
        return anamo_err_set(err, ANAMO_ERR_ARG, "safetensors: NULL path");
    int rc = check_write_args(path, tensors, ntensors, meta, nmeta, err);
    if (rc)
        return rc;
    size_t hlen = 0;
    char *header = build_header(tensors, ntensors, meta, nmeta, &hlen);
    char *tmp = malloc(strlen(path) + sizeof ".tmp");
    char *dir = dir_of(path);
    if (!header || !tmp || !dir) {
        free(header), free(tmp), free(dir);
        return anamo_err_set(err, ANAMO_ERR_NOMEM, "%s: cannot allocate the header", path);
    }
    strcat(strcpy(tmp, path), ".tmp");
    int e = write_tmp(tmp, header, hlen, tensors, ntensors);
    if (!e && rename(tmp, path) != 0)
        e = errno;
    if (e) {
        remove(tmp);
        rc = fail_write(path, dir, e, err);
    } else if ((e = fsync_dir(dir)) != 0) {
        rc = anamo_err_set(err, ANAMO_ERR_IO, "%s: written, but syncing directory '%s' failed: %s",
                           path, dir, strerror(e));
    }
    free(header), free(tmp), free(dir);
    return rc;
}
