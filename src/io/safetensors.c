/* safetensors.c — the safetensors format (https://github.com/huggingface/safetensors), the
 * container PyTorch users load with safetensors.torch.load_file.
 *
 * Layout: an 8-byte little-endian header length N, N bytes of JSON, then the data section.
 * The writer lays tensors out contiguously in the order given and pads the JSON with trailing
 * spaces so the data section starts at a multiple of 8 bytes, as the reference writer does.
 *
 * The reader loads the whole file into one malloc'd buffer and validates the header before
 * trusting any of it; st_tensor.data points into that buffer. The data section starts at byte
 * 8 + N of the buffer, and files from other writers need not keep N a multiple of 8, nor keep
 * tensors of different dtypes aligned to their element size: st_tensor.data may therefore be
 * unaligned for floats. Callers copy it out with memcpy rather than dereferencing it as float*.
 *
 * Tensor bytes are written and read as they lie in memory, so this assumes a little-endian host
 * (x86-64, AArch64), which is what the format stores. */
#include "io/safetensors.h"

#include "core/err.h"

#include <cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/st_internal.h"

struct st_file {
    char *path;
    uint8_t *buf; /* the whole file */
    size_t size;
    uint64_t hlen;      /* N: the data section starts at buf + 8 + hlen */
    cJSON *root;        /* parsed header; metadata strings point into it */
    const cJSON *meta;  /* the "__metadata__" object, or NULL */
    st_tensor *tensors; /* in header order */
    int n;
};

static const char *const st_names[] = {"F32", "F64", "I64", "I32", "U8"};
static const size_t st_sizes[] = {4, 8, 8, 4, 1};
#define ST_NDTYPES ((int)(sizeof st_sizes / sizeof st_sizes[0]))

size_t st_dtype_size(st_dtype dtype)
{
    return (int)dtype >= 0 && (int)dtype < ST_NDTYPES ? st_sizes[dtype] : 0;
}

const char *st_dtype_name(st_dtype dtype)
{
    return (int)dtype >= 0 && (int)dtype < ST_NDTYPES ? st_names[dtype] : "?";
}

/* ---- message helpers ------------------------------------------------------------------- */

shown st_show(const char *name)
{
    shown out;
    size_t n = strlen(name), k = n > ST_SHOW_MAX ? ST_SHOW_MAX : n;
    while (k < n && k > 0 && ((unsigned char)name[k] & 0xC0) == 0x80)
        k--; /* do not cut a UTF-8 sequence in half */
    for (size_t i = 0; i < k; i++) {
        unsigned char c = (unsigned char)name[i];
        out.s[i] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
    }
    strcpy(out.s + k, k < n ? "..." : "");
    return out;
}

shape_text st_format_shape(const int64_t *shape, int ndim)
{
    shape_text out;
    size_t used = 0;
    out.s[used++] = '[';
    for (int i = 0; i < ndim; i++)
        used += (size_t)snprintf(out.s + used, sizeof out.s - used, "%s%lld", i ? ", " : "",
                                 (long long)shape[i]);
    snprintf(out.s + used, sizeof out.s - used, "]");
    return out;
}

uint64_t st_shape_numel(const int64_t *shape, int ndim, int *overflow)
{
    *overflow = 0;
    for (int i = 0; i < ndim; i++)
        if (shape[i] == 0)
            return 0;
    uint64_t numel = 1;
    for (int i = 0; i < ndim; i++) {
        if (numel > ST_NUMEL_MAX / (uint64_t)shape[i])
            return *overflow = 1, 0;
        numel *= (uint64_t)shape[i];
    }
    return numel;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

int st_find_duplicate(const char **names, int n)
{
    qsort(names, (size_t)n, sizeof *names, cmp_str);
    for (int i = 1; i < n; i++)
        if (strcmp(names[i - 1], names[i]) == 0)
            return i;
    return -1;
}

/* ---- reader: loading ------------------------------------------------------------------- */

static int read_full(int fd, uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t r = read(fd, p, n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return r < 0 ? errno : EIO; /* r == 0: the file shrank under us */
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

/* Checks N against the file before allocating, so a hostile length costs nothing. */
static int check_header_len(const st_file *f, uint64_t n, anamo_err *err)
{
    if (n > (uint64_t)f->size - ST_LEN_BYTES)
        return anamo_err_set(err, ANAMO_ERR_FORMAT,
                             "%s: header length %llu exceeds file size %zu (%zu bytes after the "
                             "length field)",
                             f->path, (unsigned long long)n, f->size, f->size - ST_LEN_BYTES);
    if (n > ST_HEADER_MAX)
        return anamo_err_set(err, ANAMO_ERR_FORMAT,
                             "%s: header length %llu exceeds the limit of %llu", f->path,
                             (unsigned long long)n, ST_HEADER_MAX);
    return ANAMO_OK;
}

static int load_from_fd(st_file *f, int fd, anamo_err *err)
{
    struct stat st;
    if (fstat(fd, &st) != 0)
        return anamo_err_set(err, ANAMO_ERR_IO, "%s: cannot stat: %s", f->path, strerror(errno));
    if (S_ISDIR(st.st_mode))
        return anamo_err_set(err, ANAMO_ERR_IO, "%s: is a directory, not a file", f->path);
    if (!S_ISREG(st.st_mode))
        return anamo_err_set(err, ANAMO_ERR_IO, "%s: not a regular file", f->path);
    if ((uint64_t)st.st_size > SIZE_MAX)
        return anamo_err_set(err, ANAMO_ERR_IO, "%s: file of %lld bytes is too large", f->path,
                             (long long)st.st_size);
    f->size = (size_t)st.st_size;
    if (f->size < ST_LEN_BYTES)
        return anamo_err_set(err, ANAMO_ERR_FORMAT,
                             "%s: file is %zu bytes, too short for the 8-byte header length",
                             f->path, f->size);
    uint8_t len[ST_LEN_BYTES];
    int e = read_full(fd, len, sizeof len);
    if (e)
        return anamo_err_set(err, ANAMO_ERR_IO, "%s: cannot read: %s", f->path, strerror(e));
    f->hlen = 0;
    for (int i = ST_LEN_BYTES - 1; i >= 0; i--)
        f->hlen = f->hlen << 8 | len[i];
    int rc = check_header_len(f, f->hlen, err);
    if (rc)
        return rc;
    if (!(f->buf = malloc(f->size)))
        return anamo_err_set(err, ANAMO_ERR_NOMEM, "%s: cannot allocate %zu bytes", f->path,
                             f->size);
    memcpy(f->buf, len, sizeof len);
    if ((e = read_full(fd, f->buf + ST_LEN_BYTES, f->size - ST_LEN_BYTES)) != 0)
        return anamo_err_set(err, ANAMO_ERR_IO, "%s: cannot read: %s", f->path, strerror(e));
    return ANAMO_OK;
}

static int load_file(st_file *f, anamo_err *err)
{
    int fd = open(f->path, O_RDONLY);
    if (fd < 0)
        return anamo_err_set(err, ANAMO_ERR_IO, "%s: cannot open: %s", f->path, strerror(errno));
    int rc = load_from_fd(f, fd, err);
    close(fd);
    return rc;
}

/* ---- reader: validating the header ----------------------------------------------------- */

static int json_uint(const cJSON *v, double max, uint64_t *out)
{
    if (!cJSON_IsNumber(v))
        return 0;
    double d = v->valuedouble;
    if (!(d >= 0 && d <= max) || d != (double)(uint64_t)d)
        return 0;
    *out = (uint64_t)d;
    return 1;
}

static int parse_dtype(const st_file *f, const char *name, const cJSON *e, st_dtype *out,
                       anamo_err *err)
{
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(e, "dtype");
    if (!cJSON_IsString(d))
        return anamo_err_set(err, ANAMO_ERR_FORMAT, "%s: tensor '%s': missing dtype string",
                             f->path, name);
    for (int i = 0; i < ST_NDTYPES; i++)
        if (strcmp(d->valuestring, st_names[i]) == 0)
            return *out = (st_dtype)i, ANAMO_OK;
    return anamo_err_set(err, ANAMO_ERR_FORMAT,
                         "%s: tensor '%s': unknown dtype '%s' (expected F32, F64, I64, I32 or U8)",
                         f->path, name, st_show(d->valuestring).s);
}

static int parse_shape(const st_file *f, const char *name, const cJSON *e, st_tensor *t,
                       anamo_err *err)
{
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(e, "shape");
    int n = cJSON_IsArray(s) ? cJSON_GetArraySize(s) : -1;
    if (n < 0 || n > ANAMO_MAX_DIMS)
        return anamo_err_set(err, ANAMO_ERR_FORMAT,
                             "%s: tensor '%s': shape must be an array of at most %d integers",
                             f->path, name, ANAMO_MAX_DIMS);
    t->ndim = n;
    int i = 0;
    for (const cJSON *d = s->child; d; d = d->next, i++) {
        uint64_t v;
        if (!json_uint(d, (double)ST_DIM_MAX, &v))
            return anamo_err_set(err, ANAMO_ERR_FORMAT,
                                 "%s: tensor '%s': shape[%d] is not an integer in [0, 2^40]",
                                 f->path, name, i);
        t->shape[i] = (int64_t)v;
    }
    return ANAMO_OK;
}

static int parse_offsets(const st_file *f, const char *name, const cJSON *e, uint64_t span[2],
                         anamo_err *err)
{
    const cJSON *o = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
    if (!cJSON_IsArray(o) || cJSON_GetArraySize(o) != 2 ||
        !json_uint(o->child, ST_OFFSET_MAX, &span[0]) ||
        !json_uint(o->child->next, ST_OFFSET_MAX, &span[1]))
        return anamo_err_set(err, ANAMO_ERR_FORMAT,
                             "%s: tensor '%s': data_offsets must be two non-negative integers",
                             f->path, name);
    uint64_t data_size = f->size - ST_LEN_BYTES - f->hlen;
    if (span[0] > span[1] || span[1] > data_size)
        return anamo_err_set(err, ANAMO_ERR_FORMAT,
                             "%s: tensor '%s': data_offsets [%llu, %llu] lie outside the data "
                             "section of %llu bytes",
                             f->path, name, (unsigned long long)span[0],
                             (unsigned long long)span[1], (unsigned long long)data_size);
    return ANAMO_OK;
}

/* One tensor entry: dtype, shape and offsets must agree and lie inside the file. */
static int parse_entry(const st_file *f, const cJSON *e, st_tensor *t, uint64_t span[2],
                       anamo_err *err)
{
    if (strlen(e->string) >= ST_NAME_MAX)
        return anamo_err_set(err, ANAMO_ERR_FORMAT, "%s: tensor name '%s' is %zu bytes, at most %d",
                             f->path, st_show(e->string).s, strlen(e->string), ST_NAME_MAX - 1);
    memset(t, 0, sizeof *t);
    strcpy(t->name, e->string);
    shown shown_name = st_show(e->string);
    const char *name = shown_name.s;
    if (!cJSON_IsObject(e))
        return anamo_err_set(err, ANAMO_ERR_FORMAT, "%s: tensor '%s': entry is not a JSON object",
                             f->path, name);
    int rc = parse_dtype(f, name, e, &t->dtype, err);
    if (!rc)
        rc = parse_shape(f, name, e, t, err);
    if (!rc)
        rc = parse_offsets(f, name, e, span, err);
    if (rc)
        return rc;
    int overflow;
    uint64_t numel = st_shape_numel(t->shape, t->ndim, &overflow);
    uint64_t want = numel * st_dtype_size(t->dtype);
    if (overflow)
        return anamo_err_set(err, ANAMO_ERR_FORMAT,
                             "%s: tensor '%s': shape %s has over 2^60 elements", f->path, name,
                             st_format_shape(t->shape, t->ndim).s);
    if (span[1] - span[0] != want)
        return anamo_err_set(err, ANAMO_ERR_FORMAT,
                             "%s: tensor '%s': data_offsets [%llu, %llu] do not match shape %s of "
                             "%s (%llu bytes)",
                             f->path, name, (unsigned long long)span[0],
                             (unsigned long long)span[1], st_format_shape(t->shape, t->ndim).s,
                             st_dtype_name(t->dtype), (unsigned long long)want);
    t->data = f->buf + ST_LEN_BYTES + f->hlen + span[0];
    t->nbytes = (size_t)want;
    return ANAMO_OK;
}

typedef struct span_ref {
    uint64_t begin, end;
    int idx;
} span_ref;

static int cmp_span(const void *a, const void *b)
{
    const span_ref *x = a, *y = b;
    if (x->begin != y->begin)
        return x->begin < y->begin ? -1 : 1;
    return (x->end > y->end) - (x->end < y->end);
}

/* As the reference reader's validate() requires: taken in order of offset, whatever their JSON
 * order, the tensors tile the data section, each beginning where the one before ends (the
 * first at 0) and the last ending at the file's end. Bytes no tensor owns, a hole between
 * tensors or bytes after the last, are what a damaged or spliced file looks like. */
static int check_tiling(const st_file *f, span_ref *spans, int n, anamo_err *err)
{
    qsort(spans, (size_t)n, sizeof *spans, cmp_span);
    const uint64_t data_size = f->size - ST_LEN_BYTES - f->hlen;
    const span_ref *prev = NULL;
    uint64_t reach = 0;
    for (int i = 0; i < n; i++) {
        const span_ref *s = &spans[i];
        shown name = st_show(f->tensors[s->idx].name);
        if (s->begin < reach)
            return anamo_err_set(err, ANAMO_ERR_FORMAT,
                                 "%s: tensors '%s' [%llu, %llu] and '%s' [%llu, %llu] overlap",
                                 f->path, st_show(f->tensors[prev->idx].name).s,
                                 (unsigned long long)prev->begin, (unsigned long long)prev->end,
                                 name.s, (unsigned long long)s->begin, (unsigned long long)s->end);
        if (s->begin > reach)
            return anamo_err_set(
                err, ANAMO_ERR_FORMAT,
                "%s: bytes [%llu, %llu) of the data section belong to no tensor: a "
                "hole before tensor '%s' [%llu, %llu] (data_offsets must tile the "
                "data section)",
                f->path, (unsigned long long)reach, (unsigned long long)s->begin, name.s,
                (unsigned long long)s->begin, (unsigned long long)s->end);
        reach = s->end;
        prev = s;
    }
    if (reach < data_size && prev)
        return anamo_err_set(err, ANAMO_ERR_FORMAT,
                             "%s: bytes [%llu, %llu) of the data section belong to no tensor: "
                             "trailing bytes after the last tensor '%s' [%llu, %llu]",
                             f->path, (unsigned long long)reach, (unsigned long long)data_size,
                             st_show(f->tensors[prev->idx].name).s, (unsigned long long)prev->begin,
                             (unsigned long long)prev->end);
    if (reach < data_size)
        return anamo_err_set(err, ANAMO_ERR_FORMAT,
                             "%s: bytes [0, %llu) of the data section belong "
                             "to no tensor: the header lists none",
                             f->path, (unsigned long long)data_size);
    return ANAMO_OK;
}

static int parse_tensors(st_file *f, anamo_err *err)
{
    int n = 0;
    for (const cJSON *e = f->root->child; e; e = e->next)
        n += strcmp(e->string, ST_META_KEY) != 0;
    f->tensors = calloc((size_t)n + 1, sizeof *f->tensors);
    span_ref *spans = calloc((size_t)n + 1, sizeof *spans);
    if (!f->tensors || !spans) {
        free(spans);
        return anamo_err_set(err, ANAMO_ERR_NOMEM, "%s: cannot allocate %d tensor entries", f->path,
                             n);
    }
    int rc = ANAMO_OK;
    for (const cJSON *e = f->root->child; e && !rc; e = e->next) {
        if (strcmp(e->string, ST_META_KEY) == 0)
            continue;
        uint64_t span[2] = {0, 0};
        rc = parse_entry(f, e, &f->tensors[f->n], span, err);
        spans[f->n] = (span_ref){span[0], span[1], f->n};
        f->n++;
    }
    if (!rc)
        rc = check_tiling(f, spans, f->n, err);
    free(spans);
    return rc;
}

/* Keys of obj, for finding duplicates: cJSON keeps every copy of a repeated key, and a repeated
 * tensor name would make st_find depend on which copy it meets first. */
static int check_unique_keys(const st_file *f, const cJSON *obj, const char *what, anamo_err *err)
{
    int n = cJSON_GetArraySize(obj), i = 0;
    const char **names = malloc(((size_t)n + 1) * sizeof *names);
    if (!names)
        return anamo_err_set(err, ANAMO_ERR_NOMEM, "%s: cannot allocate %d names", f->path, n);
    for (const cJSON *e = obj->child; e; e = e->next)
        names[i++] = e->string;
    int dup = st_find_duplicate(names, n);
    shown name = st_show(dup >= 0 ? names[dup] : "");
    free(names);
    if (dup >= 0)
        return anamo_err_set(err, ANAMO_ERR_FORMAT, "%s: %s '%s' appears twice", f->path, what,
                             name.s);
    return ANAMO_OK;
}

static int check_metadata(st_file *f, anamo_err *err)
{
    f->meta = cJSON_GetObjectItemCaseSensitive(f->root, ST_META_KEY);
    if (!f->meta)
        return ANAMO_OK;
    if (!cJSON_IsObject(f->meta))
        return anamo_err_set(err, ANAMO_ERR_FORMAT, "%s: %s is not a JSON object", f->path,
                             ST_META_KEY);
    for (const cJSON *e = f->meta->child; e; e = e->next)
        if (!cJSON_IsString(e))
            return anamo_err_set(err, ANAMO_ERR_FORMAT, "%s: metadata '%s' is not a string",
                                 f->path, st_show(e->string).s);
    return check_unique_keys(f, f->meta, "metadata key", err);
}

static int is_json_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

static int parse_json(st_file *f, anamo_err *err)
{
    const char *json = (const char *)f->buf + ST_LEN_BYTES, *end = NULL;
    f->root = cJSON_ParseWithLengthOpts(json, (size_t)f->hlen, &end, 0);
    if (!f->root) {
        size_t pos = end && end >= json && end <= json + f->hlen ? (size_t)(end - json) : 0;
        return anamo_err_set(err, ANAMO_ERR_FORMAT,
                             "%s: header is not valid JSON (error at byte %zu of the header)",
                             f->path, pos);
    }
    /* only the writer's padding may follow the object */
    for (const char *p = end; p < json + f->hlen; p++)
        if (!is_json_space(*p))
            return anamo_err_set(err, ANAMO_ERR_FORMAT,
                                 "%s: header is not valid JSON (trailing bytes at byte %zu of the "
                                 "header)",
                                 f->path, (size_t)(p - json));
    if (!cJSON_IsObject(f->root))
        return anamo_err_set(err, ANAMO_ERR_FORMAT, "%s: header is not a JSON object", f->path);
    return ANAMO_OK;
}

/* ---- reader: public -------------------------------------------------------------------- */

int st_open(const char *path, st_file **out, anamo_err *err)
{
    *out = NULL;
    if (!path)
        return anamo_err_set(err, ANAMO_ERR_ARG, "safetensors: NULL path");
    st_file *f = calloc(1, sizeof *f);
    if (!f || !(f->path = strdup(path))) {
        free(f);
        return anamo_err_set(err, ANAMO_ERR_NOMEM, "%s: cannot allocate", path);
    }
    int rc = load_file(f, err);
    if (!rc)
        rc = parse_json(f, err);
    if (!rc)
        rc = check_unique_keys(f, f->root, "tensor", err);
    if (!rc)
        rc = check_metadata(f, err);
    if (!rc)
        rc = parse_tensors(f, err);
    if (rc) {
        st_close(f);
        return rc;
    }
    *out = f;
    return ANAMO_OK;
}

void st_close(st_file *f)
{
    if (!f)
        return;
    cJSON_Delete(f->root);
    free(f->tensors);
    free(f->buf);
    free(f->path);
    free(f);
}

int st_count(const st_file *f) { return f->n; }

const st_tensor *st_at(const st_file *f, int i)
{
    return i >= 0 && i < f->n ? &f->tensors[i] : NULL;
}

const st_tensor *st_find(const st_file *f, const char *name)
{
    for (int i = 0; i < f->n; i++)
        if (strcmp(f->tensors[i].name, name) == 0)
            return &f->tensors[i];
    return NULL;
}

const char *st_meta_get(const st_file *f, const char *key)
{
    const cJSON *v = f->meta ? cJSON_GetObjectItemCaseSensitive(f->meta, key) : NULL;
    return v ? v->valuestring : NULL;
}

const char *st_path(const st_file *f) { return f->path; }
