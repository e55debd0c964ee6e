/* idx.c — IDX files, the format MNIST and Fashion-MNIST ship in (LeCun et al.,
 * yann.lecun.com/exdb/mnist/): a big-endian header, magic 0x00000803 = 2051 for images
 * (unsigned bytes, 3 dimensions: count, rows, cols) or 0x00000801 = 2049 for labels (count),
 * then exactly the bytes the dimensions promise. Files are read through read.c, which passes
 * plain files through unchanged and checks a gzip stream to its end, so the distributed .gz
 * files and unpacked ones both work. Nothing from the header is trusted until it has been
 * checked. */
#include "core/err.h"
#include "data/data.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>

#define IDX_MAGIC_IMAGES 2051 /* 0x0803: type 0x08 (unsigned byte), 3 dimensions */
#define IDX_MAGIC_LABELS 2049 /* 0x0801: type 0x08 (unsigned byte), 1 dimension */
#define IDX_TYPE_U8 0x08
#define IDX_MAX_DIMS 3

/* What one kind of IDX file looks like, for checking and for messages. */
typedef struct idx_kind {
    uint32_t magic;
    int ndims;
    const char *what; /* "images" or "labels" */
    const char *dim_names[IDX_MAX_DIMS];
} idx_kind;

static const idx_kind IDX_IMAGES = {IDX_MAGIC_IMAGES, 3, "images", {"image count", "rows", "cols"}};
static const idx_kind IDX_LABELS = {IDX_MAGIC_LABELS, 1, "labels", {"label count", NULL, NULL}};

static const char *idx_magic_hint(uint32_t magic)
{
    if (magic == IDX_MAGIC_LABELS)
        return "; this is an IDX labels file";
    if (magic == IDX_MAGIC_IMAGES)
        return "; this is an IDX images file";
    if ((magic & 0xffff) == 0 && (magic >> 16) != 0)
        return "; the header looks little-endian, IDX is big-endian";
    if ((magic >> 16) == 0 && ((magic >> 8) & 0xff) != IDX_TYPE_U8)
        return "; only unsigned-byte IDX files (type 0x08) are read";
    return "";
}

static uint32_t be32(const uint8_t *b)
{
    return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

/* Reads and checks the header: the magic first (so a file of the other kind is named as such
 * even when it is shorter than this kind's header), then each dimension nonzero and the
 * product within ANAMO_DATA_MAX_BYTES. dims gets kind->ndims values; *bytes the body length. */
static int idx_header(data_src *src, const char *path, const idx_kind *kind, int64_t *dims,
                      int64_t *bytes, anamo_err *err)
{
    uint8_t hdr[4 * (1 + IDX_MAX_DIMS)];
    uint64_t need = 4 * (1 + (uint64_t)kind->ndims), got, more = 0;
    int rc = data_src_read(src, hdr, 4, &got, err);
    uint32_t magic = got == 4 ? be32(hdr) : 0;
    if (!rc && got == 4 && magic != kind->magic)
        return anamo_err_set(err, ANAMO_ERR_FORMAT,
                             "%s: offset 0: magic number %u (0x%08x), expected %u for IDX %s%s",
                             path, magic, magic, kind->magic, kind->what, idx_magic_hint(magic));
    if (!rc && got == 4)
        rc = data_src_read(src, hdr + 4, need - 4, &more, err);
    if (rc)
        return rc;
    if (got + more < need)
        return anamo_err_set(err, ANAMO_ERR_FORMAT,
                             "%s: offset 0: expected %llu bytes of IDX %s header, found %llu", path,
                             (unsigned long long)need, kind->what,
                             (unsigned long long)(got + more));
    int64_t total = 1;
    for (int i = 0; i < kind->ndims; i++) {
        int off = 4 * (i + 1);
        dims[i] = be32(hdr + off);
        if (dims[i] == 0)
            return anamo_err_set(err, ANAMO_ERR_FORMAT, "%s: offset %d: %s is 0", path, off,
                                 kind->dim_names[i]);
        if (i > 0 && dims[i] > INT_MAX)
            return anamo_err_set(err, ANAMO_ERR_FORMAT, "%s: offset %d: %s %lld is more than %d",
                                 path, off, kind->dim_names[i], (long long)dims[i], INT_MAX);
        if (total > ANAMO_DATA_MAX_BYTES / dims[i])
            return anamo_err_set(err, ANAMO_ERR_FORMAT,
                                 "%s: offset %d: %s %lld makes the data larger than the "
                                 "%lld-byte limit",
                                 path, off, kind->dim_names[i], (long long)dims[i],
                                 (long long)ANAMO_DATA_MAX_BYTES);
        total *= dims[i];
    }
    *bytes = total;
    return ANAMO_OK;
}

/* Reads the body, which must be exactly bytes long: a short file and trailing bytes both mean
 * the header and the data disagree, and either could hide a wrong or damaged file. The header's
 * count is not trusted with the allocation: the buffer starts at what the file can hold (at
 * least 1 MiB) and doubles as bytes actually arrive, so a 16-byte file that promises
 * gigabytes costs a megabyte, and a good file one allocation. */
static int idx_body(data_src *src, const char *path, const idx_kind *kind, int64_t bytes,
                    uint8_t **out, anamo_err *err)
{
    uint64_t start = 4 * (1 + (uint64_t)kind->ndims), more, extra = 0;
    int64_t room = data_src_room(src), got = 0, cap = 0;
    uint8_t *buf = NULL;
    int64_t failed = data_reserve(&buf, &cap, 0, 1, room, bytes);
    int rc = ANAMO_OK;
    while (!failed && !rc) {
        rc = data_src_read(src, buf + got, (uint64_t)(cap - got), &more, err);
        got += (int64_t)more;
        if (rc || got < cap || cap == bytes)
            break;
        failed = data_reserve(&buf, &cap, got, cap + 1, room, bytes);
    }
    if (failed)
        rc = anamo_err_set(err, ANAMO_ERR_NOMEM, "%s: cannot allocate %lld bytes of %s", path,
                           (long long)failed, kind->what);
    else if (!rc && got < bytes)
        rc = anamo_err_set(err, ANAMO_ERR_FORMAT,
                           "%s: offset %llu: expected %lld bytes of %s, "
                           "found %lld",
                           path, (unsigned long long)start, (long long)bytes, kind->what,
                           (long long)got);
    if (!rc)
        rc = data_src_end(src, &extra, err);
    if (!rc && extra > 0)
        rc = anamo_err_set(err, ANAMO_ERR_FORMAT,
                           "%s: offset %llu: %llu trailing bytes after %lld bytes of %s", path,
                           (unsigned long long)(start + (uint64_t)bytes), (unsigned long long)extra,
                           (long long)bytes, kind->what);
    if (rc) {
        anamo_free(buf);
        return rc;
    }
    *out = buf;
    return ANAMO_OK;
}

/* Opens, checks and reads a whole IDX file of the given kind. *data is anamo_alloc'ed. */
static int idx_load(const char *path, const idx_kind *kind, int64_t *dims, uint8_t **data,
                    anamo_err *err)
{
    data_src *src;
    int64_t bytes = 0;
    int rc = data_src_open(path, "an IDX file", &src, err);
    if (rc)
        return rc;
    rc = idx_header(src, path, kind, dims, &bytes, err);
    if (!rc)
        rc = idx_body(src, path, kind, bytes, data, err);
    data_src_close(src);
    return rc;
}

int anamo_idx_read(const char *path, anamo_dataset *out, anamo_err *err)
{
    if (!path || !out)
        return anamo_err_set(err, ANAMO_ERR_ARG, "idx: path and out must not be NULL");
    memset(out, 0, sizeof *out);
    int64_t dims[IDX_MAX_DIMS];
    uint8_t *data = NULL;
    int rc = idx_load(path, &IDX_IMAGES, dims, &data, err);
    if (rc)
        return rc;
    out->n = dims[0];
    out->c = 1;
    out->h = (int)dims[1];
    out->w = (int)dims[2];
    out->dim = dims[1] * dims[2];
    out->dtype = ANAMO_U8;
    out->data = data;
    out->labels = NULL;
    snprintf(out->source, sizeof out->source, "%s", path);
    return ANAMO_OK;
}

int anamo_idx_read_labels(const char *path, uint8_t **labels, int64_t *n, anamo_err *err)
{
    if (!path || !labels || !n)
        return anamo_err_set(err, ANAMO_ERR_ARG, "idx: path, labels and n must not be NULL");
    *labels = NULL;
    *n = 0;
    int64_t dims[IDX_MAX_DIMS];
    int rc = idx_load(path, &IDX_LABELS, dims, labels, err);
    if (rc)
        return rc;
    *n = dims[0];
    return ANAMO_OK;
}
