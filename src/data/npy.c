/* npy.c — NumPy .npy files (format spec: numpy.org/doc/stable/reference/generated/
 * numpy.lib.format.html): the magic "\x93NUMPY", a version byte pair (1.0: 2-byte header
 * length; 2.0 and 3.0: 4-byte), then a Python dict literal such as
 *     {'descr': '<f4', 'fortran_order': False, 'shape': (60000, 784), }
 * padded with spaces and a final '\n' so the array starts at a multiple of 64 bytes, then the
 * array's bytes in C order. We read uint8 ('|u1', kept as bytes), float32 ('<f4') and float64
 * ('<f8', narrowed to float32), little-endian, 1 to 4 dimensions; and write v1.0 files as
 * numpy.save does. Files are read through read.c, so .npy.gz works too (its stream checked to
 * the end). */
#include "core/err.h"
#include "data/data.h"

#include <errno.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NPY_MAGIC "\x93NUMPY"
#define NPY_MAGIC_LEN 6
#define NPY_PREAMBLE_V1 10       /* magic, major, minor, 2-byte little-endian header length */
#define NPY_PREAMBLE_V2 12       /* same with a 4-byte header length (versions 2.0 and 3.0) */
#define NPY_ALIGN 64             /* numpy pads the header so the data starts on this boundary */
#define NPY_MAX_HEADER (1 << 20) /* a real header is < 1 KiB; more is damage or hostility */
#define NPY_DESCR_MAX 16
#define NPY_SHOWN 12       /* header bytes quoted back in a syntax error */
#define NPY_SHAPE_TEXT 128 /* "(d0, d1, d2, d3)" with 19-digit dims fits */
#define NPY_F8_BATCH 8192  /* doubles converted per pass, so f8 needs no second full copy */
#define NPY_PIECE ((int64_t)1 << 20) /* bytes of u1/f4 data per read */

enum npy_key { NPY_KEY_DESCR = 1, NPY_KEY_FORTRAN = 2, NPY_KEY_SHAPE = 4, NPY_KEYS_ALL = 7 };
typedef enum npy_type { NPY_U1, NPY_F4, NPY_F8 } npy_type;

typedef struct npy_header {
    char descr[NPY_DESCR_MAX];
    int fortran_order;
    int ndim;
    int64_t shape[ANAMO_MAX_DIMS];
    int seen; /* npy_key bits */
} npy_header;

/* A cursor over the header dict; base is the file offset of text[0], so a syntax error can
 * name the byte at fault. */
typedef struct npy_parser {
    const char *text, *p, *path;
    uint64_t base;
    anamo_err *err;
} npy_parser;

static int host_is_little_endian(void)
{
    const uint16_t one = 1;
    uint8_t first;
    memcpy(&first, &one, 1);
    return first == 1;
}

/* ---- reading the header ------------------------------------------------------------------ */

/* Up to NPY_SHOWN bytes of the file's text for a message, control bytes as '?' so that the
 * message stays one line. */
typedef struct npy_shown {
    char s[NPY_SHOWN + 1];
} npy_shown;

static npy_shown npy_show(const char *text)
{
    npy_shown out;
    size_t k = 0;
    for (; k < NPY_SHOWN && text[k]; k++)
        out.s[k] = (unsigned char)text[k] < 0x20 || text[k] == 0x7f ? '?' : text[k];
    out.s[k] = '\0';
    return out;
}

static int npy_syntax(npy_parser *ps, const char *expected)
{
    npy_shown shown = npy_show(ps->p);
    return anamo_err_set(ps->err, ANAMO_ERR_FORMAT,
                         "%s: offset %llu: header: expected %s, found '%s'", ps->path,
                         (unsigned long long)(ps->base + (uint64_t)(ps->p - ps->text)), expected,
                         *ps->p ? shown.s : "end of header");
}

static void npy_skip_space(npy_parser *ps)
{
    while (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r')
        ps->p++;
}

/* A Python string literal in single or double quotes (numpy never writes escapes). */
static int npy_parse_string(npy_parser *ps, char *buf, size_t cap)
{
    char quote = *ps->p;
    if (quote != '\'' && quote != '"')
        return npy_syntax(ps, "a quoted string");
    const char *start = ps->p + 1, *end = strchr(start, quote);
    if (!end)
        return npy_syntax(ps, "a closing quote");
    if ((size_t)(end - start) >= cap)
        return npy_syntax(ps, "a shorter string");
    memcpy(buf, start, (size_t)(end - start));
    buf[end - start] = '\0';
    ps->p = end + 1;
    return ANAMO_OK;
}

static int npy_parse_bool(npy_parser *ps, int *value)
{
    if (strncmp(ps->p, "True", 4) == 0) {
        *value = 1;
        ps->p += 4;
    } else if (strncmp(ps->p, "False", 5) == 0) {
        *value = 0;
        ps->p += 5;
    } else {
        return npy_syntax(ps, "True or False");
    }
    return ANAMO_OK;
}

/* A tuple of non-negative integers: "()", "(3,)", "(2, 3)", "(2,3,)"; Python 2 files may
 * write "3L". More than ANAMO_MAX_DIMS entries is refused here, naming the limit. */
static int npy_parse_shape(npy_parser *ps, npy_header *hdr)
{
    if (*ps->p != '(')
        return npy_syntax(ps, "a shape tuple '('");
    ps->p++;
    hdr->ndim = 0;
    for (npy_skip_space(ps); *ps->p != ')'; npy_skip_space(ps)) {
        if (*ps->p < '0' || *ps->p > '9')
            return npy_syntax(ps, "a dimension (a non-negative integer)");
        if (hdr->ndim == ANAMO_MAX_DIMS)
            return npy_syntax(ps, "at most 4 dimensions");
        int64_t v = 0;
        for (; *ps->p >= '0' && *ps->p <= '9'; ps->p++) {
            if (v > (INT64_MAX - 9) / 10)
                return npy_syntax(ps, "a dimension that fits in 64 bits");
            v = v * 10 + (*ps->p - '0');
        }
        if (*ps->p == 'L')
            ps->p++;
        hdr->shape[hdr->ndim++] = v;
        npy_skip_space(ps);
        if (*ps->p == ',')
            ps->p++;
        else if (*ps->p != ')')
            return npy_syntax(ps, "',' or ')' in the shape");
    }
    ps->p++;
    return ANAMO_OK;
}

static int npy_parse_value(npy_parser *ps, const char *key, uint64_t key_offset, npy_header *hdr)
{
    if (strcmp(key, "descr") == 0) {
        hdr->seen |= NPY_KEY_DESCR;
        return npy_parse_string(ps, hdr->descr, sizeof hdr->descr);
    }
    if (strcmp(key, "fortran_order") == 0) {
        hdr->seen |= NPY_KEY_FORTRAN;
        return npy_parse_bool(ps, &hdr->fortran_order);
    }
    if (strcmp(key, "shape") == 0) {
        hdr->seen |= NPY_KEY_SHAPE;
        return npy_parse_shape(ps, hdr);
    }
    return anamo_err_set(ps->err, ANAMO_ERR_FORMAT,
                         "%s: offset %llu: header: unknown key '%s' (an NPY header has descr, "
                         "fortran_order and shape)",
                         ps->path, (unsigned long long)key_offset, npy_show(key).s);
}

/* The dict, keys in any order, spaces anywhere, an optional trailing comma. */
static int npy_parse_dict(npy_parser *ps, npy_header *hdr)
{
    char key[32];
    npy_skip_space(ps);
    if (*ps->p != '{')
        return npy_syntax(ps, "'{'");
    ps->p++;
    for (;;) {
        npy_skip_space(ps);
        if (*ps->p == '}')
            break;
        uint64_t key_offset = ps->base + (uint64_t)(ps->p - ps->text);
        int rc = npy_parse_string(ps, key, sizeof key);
        if (rc)
            return rc;
        npy_skip_space(ps);
        if (*ps->p != ':')
            return npy_syntax(ps, "':' after a key");
        ps->p++;
        npy_skip_space(ps);
        if ((rc = npy_parse_value(ps, key, key_offset, hdr)) != ANAMO_OK)
            return rc;
        npy_skip_space(ps);
        if (*ps->p == ',')
            ps->p++;
        else if (*ps->p != '}')
            return npy_syntax(ps, "',' or '}'");
    }
    ps->p++;
    npy_skip_space(ps);
    if (*ps->p)
        return npy_syntax(ps, "the end of the header after '}'");
    if (hdr->seen != NPY_KEYS_ALL)
        return anamo_err_set(ps->err, ANAMO_ERR_FORMAT, "%s: header: missing key '%s'", ps->path,
                             !(hdr->seen & NPY_KEY_DESCR)     ? "descr"
                             : !(hdr->seen & NPY_KEY_FORTRAN) ? "fortran_order"
                                                              : "shape");
    return ANAMO_OK;
}

/* ---- reading the file -------------------------------------------------------------------- */

static int npy_read_exact(data_src *src, const char *path, uint64_t offset, void *buf, uint64_t len,
                          const char *what, anamo_err *err)
{
    uint64_t got;
    int rc = data_src_read(src, buf, len, &got, err);
    if (!rc && got < len)
        rc = anamo_err_set(err, ANAMO_ERR_FORMAT,
                           "%s: offset %llu: expected %llu bytes of %s, found %llu", path,
                           (unsigned long long)offset, (unsigned long long)len, what,
                           (unsigned long long)got);
    return rc;
}

/* Reads the preamble and the header dict; *data_offset gets where the array starts. */
static int npy_read_header(data_src *src, const char *path, npy_header *hdr, uint64_t *data_offset,
                           anamo_err *err)
{
    uint8_t pre[NPY_PREAMBLE_V2];
    int rc = npy_read_exact(src, path, 0, pre, NPY_PREAMBLE_V1, "NPY preamble", err);
    if (rc)
        return rc;
    if (memcmp(pre, NPY_MAGIC, NPY_MAGIC_LEN) != 0)
        return anamo_err_set(err, ANAMO_ERR_FORMAT,
                             "%s: offset 0: not an NPY file (it does not "
                             "start with \\x93NUMPY)",
                             path);
    int major = pre[6], minor = pre[7];
    if ((major < 1 || major > 3) || minor != 0)
        return anamo_err_set(err, ANAMO_ERR_FORMAT,
                             "%s: offset 6: NPY version %d.%d, expected "
                             "1.0, 2.0 or 3.0",
                             path, major, minor);
    uint64_t hlen = pre[8] | (uint64_t)pre[9] << 8, start = NPY_PREAMBLE_V1;
    if (major >= 2) {
        if ((rc = npy_read_exact(src, path, NPY_PREAMBLE_V1, pre + NPY_PREAMBLE_V1, 2,
                                 "NPY preamble", err)) != ANAMO_OK)
            return rc;
        hlen |= (uint64_t)pre[10] << 16 | (uint64_t)pre[11] << 24;
        start = NPY_PREAMBLE_V2;
    }
    if (hlen > NPY_MAX_HEADER)
        return anamo_err_set(err, ANAMO_ERR_FORMAT,
                             "%s: offset 8: header length %llu, more than "
                             "the %d allowed",
                             path, (unsigned long long)hlen, NPY_MAX_HEADER);
    char *text = malloc(hlen + 1);
    if (!text)
        return anamo_err_set(err, ANAMO_ERR_NOMEM, "%s: cannot allocate the header", path);
    rc = npy_read_exact(src, path, start, text, hlen, "header", err);
    if (!rc) {
        text[hlen] = '\0';
        if (strlen(text) != hlen)
            rc = anamo_err_set(err, ANAMO_ERR_FORMAT, "%s: offset %llu: NUL byte in the header",
                               path, (unsigned long long)(start + strlen(text)));
    }
    if (!rc) {
        npy_parser ps = {text, text, path, start, err};
        memset(hdr, 0, sizeof *hdr);
        rc = npy_parse_dict(&ps, hdr);
    }
    free(text);
    *data_offset = start + hlen;
    return rc;
}

static void npy_shape_text(const int64_t *shape, int ndim, char *buf, size_t cap)
{
    size_t used = (size_t)snprintf(buf, cap, "(");
    for (int i = 0; i < ndim && used < cap; i++)
        used += (size_t)snprintf(buf + used, cap - used, "%s%lld", i ? ", " : "",
                                 (long long)shape[i]);
    if (used < cap)
        snprintf(buf + used, cap - used, ndim == 1 ? ",)" : ")");
}

/* Which of our dtypes descr names. u1 has no byte order ('|'); '=' is the host's own. */
static int npy_dtype(const char *path, const char *descr, npy_type *type, size_t *itemsize,
                     anamo_err *err)
{
    int has_order = descr[0] != '\0' && strchr("<>|=", descr[0]) != NULL;
    char order = has_order ? descr[0] : '=';
    const char *code = descr + has_order;
    int little = order == '<' || (order == '=' && host_is_little_endian());
    if (strcmp(code, "u1") == 0) {
        *type = NPY_U1;
        *itemsize = 1;
        return ANAMO_OK;
    }
    if ((strcmp(code, "f4") == 0 || strcmp(code, "f8") == 0) && order != '|') {
        if (!little)
            return anamo_err_set(err, ANAMO_ERR_FORMAT,
                                 "%s: big-endian dtype '%s' is not read; "
                                 "save with a.astype('<%s')",
                                 path, npy_show(descr).s, code);
        *type = code[1] == '4' ? NPY_F4 : NPY_F8;
        *itemsize = code[1] == '4' ? 4 : 8;
        return ANAMO_OK;
    }
    return anamo_err_set(err, ANAMO_ERR_FORMAT,
                         "%s: dtype '%s' is not read; use uint8 ('|u1'), "
                         "float32 ('<f4') or float64 ('<f8')",
                         path, npy_show(descr).s);
}

/* Checks order, shape and size, and fills out's shape fields: (n) c=1; (n, d) c=d;
 * (n, h, w) c=1; (n, c, h, w). *bytes gets the array's length in the file. */
static int npy_layout(const char *path, const npy_header *hdr, size_t itemsize, anamo_dataset *out,
                      int64_t *bytes, anamo_err *err)
{
    char shape[NPY_SHAPE_TEXT];
    npy_shape_text(hdr->shape, hdr->ndim, shape, sizeof shape);
    if (hdr->fortran_order)
        return anamo_err_set(err, ANAMO_ERR_FORMAT,
                             "%s: fortran_order is True; only C-order "
                             "arrays are read (save np.ascontiguousarray(a))",
                             path);
    if (hdr->ndim < 1)
        return anamo_err_set(err, ANAMO_ERR_FORMAT,
                             "%s: shape (): a scalar, expected 1 to %d "
                             "dimensions",
                             path, ANAMO_MAX_DIMS);
    int64_t total = (int64_t)itemsize;
    for (int i = 0; i < hdr->ndim; i++) {
        if (hdr->shape[i] == 0)
            return anamo_err_set(err, ANAMO_ERR_FORMAT, "%s: shape %s has no elements", path,
                                 shape);
        if (i > 0 && hdr->shape[i] > INT_MAX)
            return anamo_err_set(err, ANAMO_ERR_FORMAT,
                                 "%s: shape %s: dimension %d is more than "
                                 "%d",
                                 path, shape, i, INT_MAX);
        if (total > ANAMO_DATA_MAX_BYTES / hdr->shape[i])
            return anamo_err_set(err, ANAMO_ERR_FORMAT,
                                 "%s: shape %s '%s' is larger than the "
                                 "%lld-byte limit",
                                 path, shape, npy_show(hdr->descr).s,
                                 (long long)ANAMO_DATA_MAX_BYTES);
        total *= hdr->shape[i];
    }
    const int64_t *s = hdr->shape;
    out->n = s[0];
    out->c = hdr->ndim == 2 ? (int)s[1] : hdr->ndim == 4 ? (int)s[1] : 1;
    out->h = hdr->ndim == 3 ? (int)s[1] : hdr->ndim == 4 ? (int)s[2] : 1;
    out->w = hdr->ndim == 3 ? (int)s[2] : hdr->ndim == 4 ? (int)s[3] : 1;
    out->dim = (int64_t)out->c * out->h * out->w;
    *bytes = total;
    return ANAMO_OK;
}

/* float64 → float32, refusing values float32 cannot hold (they would turn into Inf silently
 * and surface later as a diverged run) and values that are not numbers at all. */
static int npy_narrow_f8(const char *path, const uint8_t *raw, int64_t first, int64_t m, float *dst,
                         anamo_err *err)
{
    for (int64_t i = 0; i < m; i++) {
        uint64_t u = 0;
        for (int k = 0; k < 8; k++)
            u |= (uint64_t)raw[8 * i + k] << (8 * k);
        double d;
        memcpy(&d, &u, sizeof d);
        if (!isfinite(d) || fabs(d) > FLT_MAX)
            return anamo_err_set(err, ANAMO_ERR_FORMAT, "%s: element %lld: %g %s", path,
                                 (long long)(first + i), d,
                                 isfinite(d) ? "does not fit in float32"
                                             : "is not a finite number");
        dst[i] = (float)d;
    }
    return ANAMO_OK;
}

/* NaN or Inf in the data would surface as a run that "diverged" at its first step; the CSV
 * reader refuses them too. */
static int npy_check_f4(const char *path, const float *x, int64_t first, int64_t m, anamo_err *err)
{
    for (int64_t i = 0; i < m; i++)
        if (!isfinite(x[i]))
            return anamo_err_set(err, ANAMO_ERR_FORMAT,
                                 "%s: element %lld: %g is not a finite "
                                 "number",
                                 path, (long long)(first + i), (double)x[i]);
    return ANAMO_OK;
}

/* Reads count elements in pieces of NPY_F8_BATCH (f8, through raw) or NPY_PIECE bytes, into
 * *data (u1 kept as bytes, f4 and f8 as float32), which grows as they arrive. */
static int npy_read_elements(data_src *src, const char *path, uint64_t offset, npy_type type,
                             int64_t count, uint8_t **data, anamo_err *err)
{
    const int64_t in_size = type == NPY_U1 ? 1 : type == NPY_F4 ? 4 : 8;
    const int64_t out_size = type == NPY_U1 ? 1 : 4;
    const int64_t piece = type == NPY_F8 ? NPY_F8_BATCH : NPY_PIECE / in_size;
    uint8_t *raw = type == NPY_F8 ? malloc(NPY_F8_BATCH * 8) : NULL;
    if (type == NPY_F8 && !raw)
        return anamo_err_set(err, ANAMO_ERR_NOMEM, "%s: cannot allocate a conversion buffer", path);
    int64_t cap = 0, first_cap = data_src_room(src) / in_size;
    first_cap = first_cap < count ? first_cap * out_size : count * out_size;
    int rc = ANAMO_OK;
    for (int64_t first = 0; first < count && !rc; first += piece) {
        int64_t m = count - first < piece ? count - first : piece;
        /* The header's shape is not trusted with the allocation: the buffer starts at what
         * the file can hold and grows as data actually arrives, so a header promising
         * gigabytes over a few bytes costs a megabyte, and a good file one allocation. */
        if (data_reserve(data, &cap, first * out_size, (first + m) * out_size, first_cap,
                         count * out_size)) {
            rc = anamo_err_set(err, ANAMO_ERR_NOMEM, "%s: cannot allocate %lld elements", path,
                               (long long)(first + m));
            break;
        }
        uint8_t *dst = *data + first * out_size;
        uint64_t got;
        rc = data_src_read(src, raw ? raw : dst, (uint64_t)(m * in_size), &got, err);
        if (!rc && got < (uint64_t)(m * in_size))
            rc = anamo_err_set(err, ANAMO_ERR_FORMAT,
                               "%s: offset %llu: expected %lld bytes of "
                               "data, found %llu",
                               path, (unsigned long long)offset, (long long)(count * in_size),
                               (unsigned long long)((uint64_t)(first * in_size) + got));
        if (!rc && raw)
            rc = npy_narrow_f8(path, raw, first, m, (float *)(void *)dst, err);
        else if (!rc && type == NPY_F4 && host_is_little_endian())
            rc = npy_check_f4(path, (const float *)(void *)dst, first, m, err);
    }
    free(raw);
    return rc;
}

/* Reads the array into out->data (anamo_alloc'ed), then insists the file ends there. */
static int npy_read_data(data_src *src, const char *path, uint64_t offset, npy_type type,
                         int64_t bytes, anamo_dataset *out, anamo_err *err)
{
    int64_t count = out->n * out->dim;
    out->dtype = type == NPY_U1 ? ANAMO_U8 : ANAMO_F32;
    uint8_t *data = NULL;
    int rc = npy_read_elements(src, path, offset, type, count, &data, err);
    out->data = data;
    if (!rc && type == NPY_F4 && !host_is_little_endian()) {
        uint8_t *b = data;
        for (int64_t i = 0; i < count; i++, b += 4) {
            uint8_t t0 = b[0], t1 = b[1];
            b[0] = b[3], b[1] = b[2], b[2] = t1, b[3] = t0;
        }
        rc = npy_check_f4(path, (const float *)(void *)data, 0, count, err);
    }
    uint64_t extra = 0;
    if (!rc)
        rc = data_src_end(src, &extra, err);
    if (!rc && extra)
        rc = anamo_err_set(err, ANAMO_ERR_FORMAT,
                           "%s: offset %llu: %llu trailing bytes after %lld "
                           "bytes of data",
                           path, (unsigned long long)(offset + (uint64_t)bytes),
                           (unsigned long long)extra, (long long)bytes);
    return rc;
}

int anamo_npy_read(const char *path, anamo_dataset *out, anamo_err *err)
{
    if (!path || !out)
        return anamo_err_set(err, ANAMO_ERR_ARG, "npy: path and out must not be NULL");
    memset(out, 0, sizeof *out);
    data_src *src;
    int rc = data_src_open(path, "an NPY file", &src, err);
    if (rc)
        return rc;
    npy_header hdr;
    uint64_t offset = 0;
    npy_type type = NPY_U1;
    size_t itemsize = 1;
    int64_t bytes = 0;
    rc = npy_read_header(src, path, &hdr, &offset, err);
    if (!rc)
        rc = npy_dtype(path, hdr.descr, &type, &itemsize, err);
    if (!rc)
        rc = npy_layout(path, &hdr, itemsize, out, &bytes, err);
    if (!rc)
        rc = npy_read_data(src, path, offset, type, bytes, out, err);
    data_src_close(src);
    if (rc) {
        anamo_dataset_free(out);
        return rc;
    }
    snprintf(out->source, sizeof out->source, "%s", path);
    return ANAMO_OK;
}

/* ---- writing ----------------------------------------------------------------------------- */

/* Writes the v1.0 preamble and header, padded as numpy pads it. */
static int npy_write_header(FILE *f, const char *descr, int ndim, const int64_t *shape)
{
    char shape_text[NPY_SHAPE_TEXT], dict[NPY_SHAPE_TEXT + 96];
    npy_shape_text(shape, ndim, shape_text, sizeof shape_text);
    int len = snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': %s, }",
                       descr, shape_text);
    size_t total = NPY_PREAMBLE_V1 + (size_t)len + 1; /* + the final '\n' */
    size_t padded = (total + NPY_ALIGN - 1) / NPY_ALIGN * NPY_ALIGN;
    size_t hlen = padded - NPY_PREAMBLE_V1;
    uint8_t pre[NPY_PREAMBLE_V1] = {
        0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, (uint8_t)(hlen & 0xff), (uint8_t)(hlen >> 8)};
    if (fwrite(pre, 1, sizeof pre, f) != sizeof pre || fputs(dict, f) < 0)
        return -1;
    for (size_t i = total; i < padded; i++)
        if (fputc(' ', f) == EOF)
            return -1;
    return fputc('\n', f) == EOF ? -1 : 0;
}

/* Writes count items little-endian (swapping 4-byte items on a big-endian host). */
static int npy_write_body(FILE *f, const void *data, size_t count, size_t itemsize)
{
    if (itemsize == 1 || host_is_little_endian())
        return fwrite(data, itemsize, count, f) == count ? 0 : -1;
    const uint8_t *b = data;
    for (size_t i = 0; i < count; i++, b += 4) {
        uint8_t le[4] = {b[3], b[2], b[1], b[0]};
        if (fwrite(le, 1, 4, f) != 4)
            return -1;
    }
    return 0;
}

static int npy_write(const char *path, const char *descr, size_t itemsize, const void *data,
                     int ndim, const int64_t *shape, anamo_err *err)
{
    if (!path || !shape || ndim < 1 || ndim > ANAMO_MAX_DIMS)
        return anamo_err_set(err, ANAMO_ERR_ARG, "%s: npy write: %d dimensions, expected 1 to %d",
                             path ? path : "(null)", ndim, ANAMO_MAX_DIMS);
    size_t count = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0 || (shape[i] > 0 && count > SIZE_MAX / itemsize / (size_t)shape[i]))
            return anamo_err_set(err, ANAMO_ERR_ARG, "%s: npy write: bad dimension %d = %lld", path,
                                 i, (long long)shape[i]);
        count *= (size_t)shape[i];
    }
    if (count > 0 && !data)
        return anamo_err_set(err, ANAMO_ERR_ARG, "%s: npy write: data is NULL", path);
    FILE *f = fopen(path, "wb");
    if (!f)
        return anamo_err_set(err, ANAMO_ERR_IO, "%s: cannot create: %s", path, strerror(errno));
    int bad = npy_write_header(f, descr, ndim, shape) || npy_write_body(f, data, count, itemsize);
    int saved = errno;
    if (fclose(f) != 0 && !bad) {
        bad = 1;
        saved = errno;
    }
    if (bad) {
        remove(path); /* a half-written array would read back as a format error later */
        return anamo_err_set(err, ANAMO_ERR_IO, "%s: cannot write: %s", path, strerror(saved));
    }
    return ANAMO_OK;
}

int anamo_npy_write_f32(const char *path, const float *data, int ndim, const int64_t *shape,
                        anamo_err *err)
{
    return npy_write(path, "<f4", sizeof(float), data, ndim, shape, err);
}

int anamo_npy_write_u8(const char *path, const uint8_t *data, int ndim, const int64_t *shape,
                       anamo_err *err)
{
    return npy_write(path, "|u1", 1, data, ndim, shape, err);
}
