/* csv.c — numeric tables: one sample per line, one feature per column, separated by commas
 * (or by ';' or tabs when the first line uses that one alone), with an optional header line,
 * recognised because its fields are not all numbers. Every field must be a finite number that
 * fits in float32; every row must have the header's (or the first row's) number of columns.
 * The whole file is read into memory first (through read.c, so .csv.gz works, its stream
 * checked to the end), which gives CRLF endings, a missing final newline and lines of any
 * length for free.
 * Numbers are parsed with strtod, so the caller must leave LC_NUMERIC as "C" (the default). */
#include "core/err.h"
#include "data/data.h"

#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CSV_FIRST_CAP ((size_t)64 << 10)
#define CSV_SHOWN 40                /* longest field text quoted back in a message */
#define CSV_UTF8_BOM "\xef\xbb\xbf" /* spreadsheets often start a saved CSV with one */

enum csv_field_status { CSV_NUMBER = 0, CSV_EMPTY, CSV_NOT_NUMBER, CSV_NOT_FINITE, CSV_TOO_BIG };

typedef struct csv_reader {
    const char *path;
    char delim;
    int cols;
    anamo_err *err;
} csv_reader;

/* One line of the text, without its '\n' or "\r\n". */
typedef struct csv_line {
    const char *s, *e;
    int64_t number; /* 1-based, counting every physical line */
} csv_line;

/* Makes room for one more byte and the NUL after used bytes, doubling *cap up to the limit. */
static int csv_grow(const char *path, char **buf, size_t *cap, size_t used, anamo_err *err)
{
    if (*cap - used >= 2)
        return ANAMO_OK;
    if (*cap >= (size_t)ANAMO_DATA_MAX_BYTES)
        return anamo_err_set(err, ANAMO_ERR_FORMAT, "%s: larger than the %lld-byte limit", path,
                             (long long)ANAMO_DATA_MAX_BYTES);
    char *grown = realloc(*buf, 2 * *cap);
    if (!grown)
        return anamo_err_set(err, ANAMO_ERR_NOMEM, "%s: cannot allocate %zu bytes", path, 2 * *cap);
    *buf = grown;
    *cap *= 2;
    return ANAMO_OK;
}

/* Reads the whole file into a NUL-terminated buffer. */
static int csv_slurp(const char *path, char **text, size_t *len, anamo_err *err)
{
    data_src *src;
    int rc = data_src_open(path, "a CSV file", &src, err);
    if (rc)
        return rc;
    size_t cap = CSV_FIRST_CAP, used = 0;
    char *buf = malloc(cap);
    uint64_t got = 0, extra = 0;
    rc = buf ? ANAMO_OK : anamo_err_set(err, ANAMO_ERR_NOMEM, "%s: out of memory", path);
    while (!rc && (rc = csv_grow(path, &buf, &cap, used, err)) == ANAMO_OK) {
        size_t want = cap - used - 1;
        rc = data_src_read(src, buf + used, want, &got, err);
        used += (size_t)got;
        if (got < want) /* the file ended */
            break;
    }
    if (!rc)
        rc = data_src_end(src, &extra, err); /* at the end already: 0 bytes left */
    data_src_close(src);
    if (rc) {
        free(buf);
        return rc;
    }
    buf[used] = '\0';
    *text = buf;
    *len = used;
    return ANAMO_OK;
}

/* Advances *p past the next line; 0 at the end of the text. */
static int csv_next_line(const char **p, const char *end, csv_line *ln)
{
    if (*p >= end)
        return 0;
    const char *nl = memchr(*p, '\n', (size_t)(end - *p));
    ln->s = *p;
    ln->e = nl ? nl : end;
    *p = nl ? nl + 1 : end;
    if (ln->e > ln->s && ln->e[-1] == '\r')
        ln->e--;
    ln->number++;
    return 1;
}

static int csv_blank(const csv_line *ln)
{
    for (const char *c = ln->s; c < ln->e; c++)
        if (*c != ' ' && *c != '\t')
            return 0;
    return 1;
}

static int64_t csv_count(const char *s, const char *e, char c)
{
    int64_t k = 0;
    for (; (s = memchr(s, c, (size_t)(e - s))) != NULL; s++)
        k++;
    return k;
}

/* The first line picks the delimiter: whichever of ',' ';' tab it contains; none means one
 * column. Two kinds on one line is ambiguous (is "1,5;2" two numbers with decimal commas?). */
static int csv_delimiter(const char *path, const csv_line *ln, char *delim, anamo_err *err)
{
    const char cands[] = {',', ';', '\t'};
    const char *names[] = {"','", "';'", "tab"};
    int found = -1;
    *delim = ',';
    for (int i = 0; i < 3; i++) {
        if (!memchr(ln->s, cands[i], (size_t)(ln->e - ln->s)))
            continue;
        if (found >= 0)
            return anamo_err_set(err, ANAMO_ERR_FORMAT,
                                 "%s: line %lld: mixes %s and %s "
                                 "delimiters; use one of comma, semicolon or tab",
                                 path, (long long)ln->number, names[found], names[i]);
        found = i;
        *delim = cands[i];
    }
    return ANAMO_OK;
}

/* Splits the field starting at *p off the line (up to the delimiter or e), trimmed of
 * spaces and tabs; *p moves past the delimiter. */
static void csv_next_field(const char **p, const char *e, char delim, const char **fs,
                           const char **fe)
{
    const char *s = *p, *d = memchr(s, delim, (size_t)(e - s));
    const char *end = d ? d : e;
    *p = d ? d + 1 : e;
    while (s < end && (*s == ' ' || *s == '\t'))
        s++;
    while (end > s && (end[-1] == ' ' || end[-1] == '\t'))
        end--;
    *fs = s;
    *fe = end;
}

static int csv_number(const char *fs, const char *fe, float *v)
{
    if (fs == fe)
        return CSV_EMPTY;
    char *endp;
    double d = strtod(fs, &endp);
    if (endp != fe)
        return CSV_NOT_NUMBER;
    if (!isfinite(d))
        return CSV_NOT_FINITE;
    if (!isfinite((float)d))
        return CSV_TOO_BIG;
    *v = (float)d;
    return CSV_NUMBER;
}

static int csv_bad_field(const csv_reader *r, int64_t line, int col, const char *fs, const char *fe,
                         int status)
{
    int shown = fe - fs > CSV_SHOWN ? CSV_SHOWN : (int)(fe - fs);
    const char *more = fe - fs > CSV_SHOWN ? "..." : "";
    const char *why = status == CSV_NOT_FINITE ? "is not a finite number"
                      : status == CSV_TOO_BIG  ? "does not fit in float32"
                                               : "is not a number";
    if (status == CSV_EMPTY)
        return anamo_err_set(r->err, ANAMO_ERR_FORMAT, "%s: line %lld, column %d: empty field",
                             r->path, (long long)line, col);
    char text[CSV_SHOWN + 1]; /* control bytes as '?': the message stays one line */
    for (int i = 0; i < shown; i++)
        text[i] = (unsigned char)fs[i] < 0x20 || fs[i] == 0x7f ? '?' : fs[i];
    text[shown] = '\0';
    return anamo_err_set(r->err, ANAMO_ERR_FORMAT, "%s: line %lld, column %d: '%s%s' %s", r->path,
                         (long long)line, col, text, more, why);
}

/* Parses one data line into dst[0..cols). */
static int csv_row(const csv_reader *r, const csv_line *ln, float *dst)
{
    int64_t found = csv_count(ln->s, ln->e, r->delim) + 1;
    if (found != r->cols)
        return anamo_err_set(r->err, ANAMO_ERR_FORMAT,
                             "%s: line %lld: expected %d columns, found "
                             "%lld",
                             r->path, (long long)ln->number, r->cols, (long long)found);
    const char *p = ln->s, *fs, *fe;
    for (int col = 0; col < r->cols; col++) {
        csv_next_field(&p, ln->e, r->delim, &fs, &fe);
        int status = csv_number(fs, fe, &dst[col]);
        if (status != CSV_NUMBER)
            return csv_bad_field(r, ln->number, col + 1, fs, fe, status);
    }
    return ANAMO_OK;
}

static int csv_all_numbers(const csv_reader *r, const csv_line *ln)
{
    const char *p = ln->s, *fs, *fe;
    float v;
    for (int col = 0; col < r->cols; col++) {
        csv_next_field(&p, ln->e, r->delim, &fs, &fe);
        int status = csv_number(fs, fe, &v);
        if (status == CSV_EMPTY || status == CSV_NOT_NUMBER)
            return 0;
    }
    return 1;
}

/* Reads the first non-blank line: the delimiter, the column count, whether it is a header. */
static int csv_first_line(csv_reader *r, const char **p, const char *end, csv_line *ln, int *header)
{
    while (csv_next_line(p, end, ln))
        if (!csv_blank(ln)) {
            int rc = csv_delimiter(r->path, ln, &r->delim, r->err);
            if (rc)
                return rc;
            int64_t cols = csv_count(ln->s, ln->e, r->delim) + 1;
            if (cols > INT_MAX)
                return anamo_err_set(r->err, ANAMO_ERR_FORMAT,
                                     "%s: line %lld: %lld columns, at "
                                     "most %d allowed",
                                     r->path, (long long)ln->number, (long long)cols, INT_MAX);
            r->cols = (int)cols;
            *header = !csv_all_numbers(r, ln);
            return ANAMO_OK;
        }
    return anamo_err_set(r->err, ANAMO_ERR_FORMAT, "%s: no data rows (only blank lines)", r->path);
}

static int csv_parse(csv_reader *r, const char *text, size_t len, anamo_dataset *out)
{
    const char *p = text, *end = text + len;
    if (len >= 3 && memcmp(p, CSV_UTF8_BOM, 3) == 0)
        p += 3;
    if (len == 0)
        return anamo_err_set(r->err, ANAMO_ERR_FORMAT, "%s: empty file, expected a numeric table",
                             r->path);
    csv_line ln = {NULL, NULL, 0};
    int header = 0;
    int rc = csv_first_line(r, &p, end, &ln, &header);
    if (rc)
        return rc;
    /* an upper bound on the rows, so the table is parsed in one pass: every remaining line
     * could be a row, but a row of cols numbers takes at least 2·cols bytes with its delimiters
     * and newline (only the row that fails may be shorter), so a file of blank lines cannot
     * ask for lines × cols floats */
    int64_t lines = csv_count(p, end, '\n') + 1;
    int64_t fit = (int64_t)(end - p) / (2 * (int64_t)r->cols) + 1;
    int64_t max_rows = (lines < fit ? lines : fit) + (header ? 0 : 1);
    if (max_rows > ANAMO_DATA_MAX_BYTES / (int64_t)sizeof(float) / r->cols)
        return anamo_err_set(r->err, ANAMO_ERR_FORMAT,
                             "%s: %lld lines of %d columns exceed the "
                             "%lld-byte limit",
                             r->path, (long long)max_rows, r->cols,
                             (long long)ANAMO_DATA_MAX_BYTES);
    float *data = anamo_alloc((size_t)max_rows * (size_t)r->cols * sizeof(float));
    if (!data)
        return anamo_err_set(r->err, ANAMO_ERR_NOMEM, "%s: cannot allocate %lld rows of %d columns",
                             r->path, (long long)max_rows, r->cols);
    int64_t n = 0;
    if (!header)
        rc = csv_row(r, &ln, data + n++ * r->cols);
    while (!rc && csv_next_line(&p, end, &ln))
        if (!csv_blank(&ln))
            rc = csv_row(r, &ln, data + n++ * r->cols);
    if (!rc && n == 0)
        rc = anamo_err_set(r->err, ANAMO_ERR_FORMAT, "%s: a header line and no data rows", r->path);
    if (rc) {
        anamo_free(data);
        return rc;
    }
    out->n = n;
    out->c = r->cols;
    out->h = out->w = 1;
    out->dim = r->cols;
    out->dtype = ANAMO_F32;
    out->data = data;
    return ANAMO_OK;
}

int anamo_csv_read(const char *path, anamo_dataset *out, anamo_err *err)
{
    if (!path || !out)
        return anamo_err_set(err, ANAMO_ERR_ARG, "csv: path and out must not be NULL");
    memset(out, 0, sizeof *out);
    char *text = NULL;
    size_t len = 0;
    int rc = csv_slurp(path, &text, &len, err);
    if (rc)
        return rc;
    csv_reader r = {path, ',', 0, err};
    rc = csv_parse(&r, text, len, out);
    free(text);
    if (rc)
        return rc;
    snprintf(out->source, sizeof out->source, "%s", path);
    return ANAMO_OK;
}
