/* fuzz_csv.c — libFuzzer target for the CSV reader (anamo_csv_read): delimiters, header
 * detection, column counts, number syntax, blank lines, BOM, CRLF, plain or gzip.
 *
 * Oracles:
 *   - every value of an accepted table is finite (the reader's promise);
 *   - the rows are the file's non-blank lines but a header, and the first line is a header
 *     iff some field of it is not a number at all: a field strtod reads whole is a number, so
 *     a line of them is data even when one is NaN, infinite or too large for float32, and
 *     must then be refused rather than dropped as a header;
 *   - written back ("%.9g", commas, one row a line: 9 significant digits give every float32
 *     back) and read again, the table is the same, bit for bit, and has no header;
 *   - a gzip input is accepted only when zlib's inflate finds it complete (fuzz_util.h), and
 *     then reads as its inflated content does in a plain file. */
#include "fuzz_util.h"

#include <math.h>

#define CSV_FLOAT_DIGITS 9 /* FLT_DECIMAL_DIG */
#define CSV_BOM "\xef\xbb\xbf"

static int is_blank(const char *s, const char *e)
{
    for (; s < e; s++)
        if (*s != ' ' && *s != '\t')
            return 0;
    return 1;
}

/* 1 when every field of line [s, e) (split at delim, trimmed of spaces and tabs) is a number
 * to strtod, whole. Each field is copied first, so strtod cannot read past it, and a NUL byte
 * inside a field stops strtod short of the field's end, as it does in the reader. */
static int all_numbers(const char *s, const char *e, char delim)
{
    char *field = malloc((size_t)(e - s) + 1), *stop;
    if (!field)
        abort();
    int numbers = 1;
    for (const char *f = s; numbers;) {
        const char *d = memchr(f, delim, (size_t)(e - f)), *fe = d ? d : e;
        while (f < fe && (*f == ' ' || *f == '\t'))
            f++;
        while (fe > f && (fe[-1] == ' ' || fe[-1] == '\t'))
            fe--;
        size_t len = (size_t)(fe - f);
        memcpy(field, f, len);
        field[len] = '\0';
        numbers = len > 0 && (strtod(field, &stop), stop == field + len);
        if (!d)
            break;
        f = d + 1;
    }
    free(field);
    return numbers;
}

/* The rows a table of this text must have, or -1 when the oracle has no opinion (the first
 * line mixes delimiters, which the reader refuses). */
static int64_t expected_rows(const fuzz_content *c)
{
    const char *p = (const char *)c->p, *end = p + c->n, *first = NULL, *first_end = NULL;
    if (c->n >= 3 && !memcmp(p, CSV_BOM, 3))
        p += 3;
    int64_t lines = 0;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p)), *e = nl ? nl : end;
        const char *le = e > p && e[-1] == '\r' ? e - 1 : e;
        if (!is_blank(p, le) && lines++ == 0)
            first = p, first_end = le;
        p = nl ? nl + 1 : end;
    }
    if (!first)
        return 0;
    char delim = ',';
    int kinds = 0;
    for (const char *k = ",;\t"; *k; k++)
        if (memchr(first, *k, (size_t)(first_end - first)))
            delim = *k, kinds++;
    if (kinds > 1)
        return -1;
    return all_numbers(first, first_end, delim) ? lines : lines - 1;
}

/* The table as CSV text: malloc'd, NUL-terminated, *len its length. */
static char *csv_encode(const anamo_dataset *ds, size_t *len)
{
    const float *x = ds->data;
    size_t cap = (size_t)(ds->n * ds->dim) * 18 + 1, used = 0; /* "-1.23456789e-38," */
    char *text = malloc(cap);
    if (!text)
        abort();
    for (int64_t r = 0; r < ds->n; r++)
        for (int64_t k = 0; k < ds->dim; k++)
            used += (size_t)snprintf(text + used, cap - used, "%.*g%c", CSV_FLOAT_DIGITS,
                                     (double)x[r * ds->dim + k], k + 1 < ds->dim ? ',' : '\n');
    *len = used;
    return text;
}

static void round_trip(const anamo_dataset *ds)
{
    size_t len;
    char *text = csv_encode(ds, &len);
    const char *path = fuzz_file_at(FUZZ_SLOT_DERIVED, (const uint8_t *)text, len);
    anamo_dataset back;
    anamo_err err = {0};
    int rc = anamo_csv_read(path, &back, &err);
    if (rc)
        fuzz_fail("anamo_csv_read refused its table written back: %s\n---\n%.400s", err.msg, text);
    fuzz_check_same(ds, &back, "anamo_csv_read: the table written back and read again");
    anamo_dataset_free(&back);
    free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_file(data, size);
    fuzz_content c;
    fuzz_content_of(data, size, &c);
    anamo_err err = {0};
    anamo_dataset ds;
    int rc = anamo_csv_read(path, &ds, &err);
    fuzz_check_error(rc, &err, path);
    fuzz_check_gzip(rc == ANAMO_OK, &c, "anamo_csv_read");
    if (rc == ANAMO_OK) {
        fuzz_check_dataset(&ds);
        if (ds.dtype != ANAMO_F32 || ds.labels || ds.h != 1 || ds.w != 1)
            fuzz_fail("anamo_csv_read: dtype %d, %d x %d x %d per row", (int)ds.dtype, ds.c, ds.h,
                      ds.w);
        int64_t rows = expected_rows(&c);
        if (rows >= 0 && ds.n != rows)
            fuzz_fail("anamo_csv_read: %lld rows, the file has %lld (a header taken for data, "
                      "or a line of numbers taken for a header)",
                      (long long)ds.n, (long long)rows);
        const float *x = ds.data;
        for (int64_t i = 0; i < ds.n * ds.dim; i++)
            if (!isfinite(x[i]))
                fuzz_fail("anamo_csv_read: value %lld is %g", (long long)i, (double)x[i]);
    }
    fuzz_check_plain_copy(&c, rc, &ds, anamo_csv_read, "anamo_csv_read");
    if (rc == ANAMO_OK) {
        round_trip(&ds);
        anamo_dataset_free(&ds);
    }
    fuzz_content_free(&c);
    return 0;
}
