/* fuzz_safetensors.c — libFuzzer target for the safetensors reader (st_open): header length,
 * JSON, dtypes, shapes, offsets, overlaps, metadata.
 *
 * Oracles, for a file st_open accepts:
 *   - it follows the format's rules (github.com/huggingface/safetensors, README "Format" and
 *     the reference reader's validate()), checked here from the header parsed on its own
 *     (st_rules, with cJSON but none of the reader's code): every entry but __metadata__ is a
 *     tensor of a known dtype whose shape's element count × the dtype's size is
 *     end − begin; sorted by (begin, end), the tensors tile the data section: the first
 *     begins at 0, each begins where the one before ends, the last ends exactly at the end of
 *     the file ("the byte buffer needs to be entirely indexed, and cannot contain holes"); no
 *     name appears twice; __metadata__ maps strings to strings, no key twice;
 *   - the reader's tensors are the header's, in its order: names, dtypes, shapes, and bytes
 *     equal to the file's at their offsets; its metadata values are the header's;
 *   - written back with st_write (into /dev/shm, so its fsyncs cost nothing) the file follows
 *     the same rules, with its data section 8-byte aligned, and st_open reads from it the
 *     same tensors and metadata. */
#include "fuzz_util.h"

#include "io/safetensors.h"

#include <cJSON.h>
#include <sys/stat.h>

#define ST_LEN 8
#define ST_ALIGN 8
#define ST_META "__metadata__"
#define ST_INT_MAX 9007199254740992.0 /* 2^53: larger JSON numbers are not exact doubles */

static const char *const META_KEYS[] = {"format",        "anamo.input_shape", "anamo.encoder",
                                        "anamo.decoder", "anamo.progress",    "config"};
static const char *const DTYPES[] = {"F32", "F64", "I64", "I32", "U8"};
static const size_t DTYPE_SIZES[] = {4, 8, 8, 4, 1};
#define NDTYPES (sizeof DTYPES / sizeof DTYPES[0])

/* One tensor as the header describes it. */
typedef struct rule_tensor {
    const cJSON *entry;
    uint64_t begin, end;
} rule_tensor;

/* A header parsed by the harness: the tensors in header order and the metadata object. */
typedef struct rules {
    cJSON *root;
    const cJSON *meta;
    rule_tensor *t;
    int n;
    uint64_t hlen;
} rules;

static int json_u64(const cJSON *v, uint64_t *out)
{
    if (!cJSON_IsNumber(v) || !(v->valuedouble >= 0 && v->valuedouble <= ST_INT_MAX) ||
        v->valuedouble != (double)(uint64_t)v->valuedouble)
        return 0;
    *out = (uint64_t)v->valuedouble;
    return 1;
}

static size_t dtype_size(const char *name)
{
    for (size_t i = 0; i < NDTYPES; i++)
        if (!strcmp(name, DTYPES[i]))
            return DTYPE_SIZES[i];
    return 0;
}

static void no_repeated_key(const cJSON *obj, const char *file, const char *what)
{
    for (const cJSON *a = obj->child; a; a = a->next)
        for (const cJSON *b = a->next; b; b = b->next)
            if (!strcmp(a->string, b->string))
                fuzz_fail("%s: %s '%.60s' appears twice", file, what, a->string);
}

/* Checks one tensor entry; r gets its offsets. */
static void tensor_rules(const cJSON *e, const char *file, rule_tensor *r)
{
    const cJSON *dtype = cJSON_GetObjectItemCaseSensitive(e, "dtype");
    const cJSON *shape = cJSON_GetObjectItemCaseSensitive(e, "shape");
    const cJSON *offs = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
    size_t size = cJSON_IsString(dtype) ? dtype_size(dtype->valuestring) : 0;
    if (!cJSON_IsObject(e) || !size || !cJSON_IsArray(shape) || !cJSON_IsArray(offs) ||
        cJSON_GetArraySize(offs) != 2 || !json_u64(offs->child, &r->begin) ||
        !json_u64(offs->child->next, &r->end) || r->begin > r->end)
        fuzz_fail("%s: tensor '%.60s' lacks a known dtype, a shape or two ordered offsets", file,
                  e->string);
    uint64_t numel = 1;
    int zero = 0, overflow = 0;
    for (const cJSON *d = shape->child; d; d = d->next) {
        uint64_t v;
        if (!json_u64(d, &v))
            fuzz_fail("%s: tensor '%.60s': a dimension is no integer", file, e->string);
        zero |= v == 0;
        overflow |= __builtin_mul_overflow(numel, v, &numel);
    }
    overflow |= __builtin_mul_overflow(numel, (uint64_t)size, &numel);
    if (!zero && (overflow || numel != r->end - r->begin))
        fuzz_fail("%s: tensor '%.60s': shape and dtype make %llu bytes, offsets %llu", file,
                  e->string, overflow ? 0ULL : (unsigned long long)numel,
                  (unsigned long long)(r->end - r->begin));
    if (zero && r->end != r->begin)
        fuzz_fail("%s: tensor '%.60s': no elements over %llu bytes", file, e->string,
                  (unsigned long long)(r->end - r->begin));
}

static int cmp_offsets(const void *a, const void *b)
{
    const rule_tensor *x = a, *y = b;
    if (x->begin != y->begin)
        return x->begin < y->begin ? -1 : 1;
    return (x->end > y->end) - (x->end < y->end);
}

/* The tensors, sorted by (begin, end), cover [0, data) without a hole or an overlap. */
static void tiling_rules(const rules *h, uint64_t data, const char *file)
{
    rule_tensor *sorted = malloc(((size_t)h->n + 1) * sizeof *sorted);
    if (!sorted)
        abort();
    memcpy(sorted, h->t, (size_t)h->n * sizeof *sorted);
    qsort(sorted, (size_t)h->n, sizeof *sorted, cmp_offsets);
    uint64_t at = 0;
    for (int i = 0; i < h->n; i++) {
        if (sorted[i].begin != at)
            fuzz_fail("%s: tensor '%.60s' begins at %llu, where %llu was expected (%s)", file,
                      sorted[i].entry->string, (unsigned long long)sorted[i].begin,
                      (unsigned long long)at, sorted[i].begin > at ? "a hole" : "an overlap");
        at = sorted[i].end;
    }
    free(sorted);
    if (at != data)
        fuzz_fail("%s: the tensors end at %llu, the data section at %llu", file,
                  (unsigned long long)at, (unsigned long long)data);
}

/* Parses and checks the file p[0..n) by the format's rules; aborts on a violation. */
static void st_rules(const uint8_t *p, size_t n, const char *file, rules *h)
{
    memset(h, 0, sizeof *h);
    if (n < ST_LEN)
        fuzz_fail("%s: %zu bytes, no header length", file, n);
    for (int i = ST_LEN - 1; i >= 0; i--)
        h->hlen = h->hlen << 8 | p[i];
    if (h->hlen > n - ST_LEN)
        fuzz_fail("%s: header length %llu past the end", file, (unsigned long long)h->hlen);
    const char *end = NULL;
    h->root = cJSON_ParseWithLengthOpts((const char *)p + ST_LEN, (size_t)h->hlen, &end, 0);
    if (!cJSON_IsObject(h->root))
        fuzz_fail("%s: the header is no JSON object", file);
    for (; end < (const char *)p + ST_LEN + h->hlen; end++)
        if (!*end || !strchr(" \t\r\n", *end))
            fuzz_fail("%s: byte %zu of the header follows the JSON", file,
                      (size_t)(end - (const char *)p - ST_LEN));
    no_repeated_key(h->root, file, "tensor");
    h->t = calloc((size_t)cJSON_GetArraySize(h->root) + 1, sizeof *h->t);
    if (!h->t)
        abort();
    for (const cJSON *e = h->root->child; e; e = e->next) {
        if (strcmp(e->string, ST_META) != 0) {
            h->t[h->n].entry = e;
            tensor_rules(e, file, &h->t[h->n++]);
            continue;
        }
        h->meta = e;
        if (!cJSON_IsObject(e))
            fuzz_fail("%s: %s is no object", file, ST_META);
        for (const cJSON *m = e->child; m; m = m->next)
            if (!cJSON_IsString(m))
                fuzz_fail("%s: metadata '%.60s' is no string", file, m->string);
        no_repeated_key(e, file, "metadata key");
    }
    tiling_rules(h, n - ST_LEN - h->hlen, file);
}

static void rules_free(rules *h)
{
    cJSON_Delete(h->root);
    free(h->t);
}

/* The reader's view of a file against the header's: tensors in order, bytes, metadata. */
static void check_against(const st_file *f, const rules *h, const uint8_t *p, const char *file)
{
    if (st_count(f) != h->n)
        fuzz_fail("%s: st_open found %d tensors, the header has %d", file, st_count(f), h->n);
    const uint8_t *data = p + ST_LEN + h->hlen;
    for (int i = 0; i < h->n; i++) {
        const st_tensor *t = st_at(f, i);
        const cJSON *e = h->t[i].entry;
        const cJSON *shape = cJSON_GetObjectItemCaseSensitive(e, "shape");
        int same = t && !strcmp(t->name, e->string) && st_find(f, t->name) == t &&
                   !strcmp(st_dtype_name(t->dtype),
                           cJSON_GetObjectItemCaseSensitive(e, "dtype")->valuestring) &&
                   t->ndim == cJSON_GetArraySize(shape) &&
                   t->nbytes == h->t[i].end - h->t[i].begin &&
                   !memcmp(t->data, data + h->t[i].begin, t->nbytes);
        int k = 0;
        for (const cJSON *d = shape->child; same && d; d = d->next, k++)
            same = (double)t->shape[k] == d->valuedouble;
        if (!same)
            fuzz_fail("%s: tensor %d ('%.60s') is not the header's", file, i, e->string);
    }
    if (h->meta)
        for (const cJSON *m = h->meta->child; m; m = m->next) {
            const char *v = st_meta_get(f, m->string);
            if (!v || strcmp(v, m->valuestring))
                fuzz_fail("%s: metadata '%.60s' reads as '%.60s'", file, m->string,
                          v ? v : "(none)");
        }
    if (st_find(f, ST_META))
        fuzz_fail("%s: __metadata__ is a tensor", file);
    for (size_t k = 0; k < sizeof META_KEYS / sizeof META_KEYS[0]; k++) {
        const char *v = st_meta_get(f, META_KEYS[k]);
        const cJSON *m = h->meta ? cJSON_GetObjectItemCaseSensitive(h->meta, META_KEYS[k]) : NULL;
        if (!v != !m)
            fuzz_fail("%s: metadata '%s' %s", file, META_KEYS[k], v ? "invented" : "lost");
    }
}

static const char *scratch_path(void)
{
    static char path[FUZZ_PATH_MAX];
    if (!path[0]) {
        struct stat st;
        const char *dir = stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) ? "/dev/shm" : "/tmp";
        snprintf(path, sizeof path, "%s/anamo-fuzz-st-%ld.safetensors", dir, (long)getpid());
    }
    return path;
}

static uint8_t *slurp(const char *path, size_t *n)
{
    FILE *fp = fopen(path, "rb");
    if (!fp)
        fuzz_fail("cannot open %s", path);
    fseek(fp, 0, SEEK_END);
    long len = ftell(fp);
    rewind(fp);
    uint8_t *buf = malloc((size_t)len + 1);
    if (!buf || fread(buf, 1, (size_t)len, fp) != (size_t)len)
        abort();
    fclose(fp);
    *n = (size_t)len;
    return buf;
}

/* Writes f's tensors and h's metadata with st_write, checks the file and reads it back. */
static void round_trip(const st_file *f, const rules *h)
{
    int n = st_count(f), nmeta = h->meta ? cJSON_GetArraySize(h->meta) : 0, k = 0;
    st_tensor *t = malloc(((size_t)n + 1) * sizeof *t);
    st_meta *meta = malloc(((size_t)nmeta + 1) * sizeof *meta);
    if (!t || !meta)
        abort();
    for (int i = 0; i < n; i++)
        t[i] = *st_at(f, i);
    for (const cJSON *m = h->meta ? h->meta->child : NULL; m; m = m->next, k++)
        meta[k] = (st_meta){m->string, m->valuestring};
    const char *path = scratch_path();
    anamo_err err = {0};
    if (st_write(path, t, n, meta, nmeta, &err))
        fuzz_fail("st_write cannot write back what st_open read: %s", err.msg);
    size_t len;
    uint8_t *bytes = slurp(path, &len);
    rules back;
    st_rules(bytes, len, "written back", &back);
    if ((ST_LEN + back.hlen) % ST_ALIGN)
        fuzz_fail("written back: the data section starts at %llu, not a multiple of %d",
                  (unsigned long long)(ST_LEN + back.hlen), ST_ALIGN);
    st_file *g = NULL;
    if (st_open(path, &g, &err))
        fuzz_fail("st_open refused what st_write wrote: %s", err.msg);
    check_against(g, &back, bytes, "written back");
    for (int i = 0; i < n; i++) { /* the same tensors as the input's, in its order */
        const st_tensor *a = st_at(f, i), *b = st_at(g, i);
        if (strcmp(a->name, b->name) || a->dtype != b->dtype || a->ndim != b->ndim ||
            memcmp(a->shape, b->shape, (size_t)a->ndim * sizeof a->shape[0]) ||
            a->nbytes != b->nbytes || memcmp(a->data, b->data, a->nbytes))
            fuzz_fail("written back: tensor %d ('%.60s') differs", i, a->name);
    }
    if ((back.meta ? cJSON_GetArraySize(back.meta) : 0) != nmeta)
        fuzz_fail("written back: %d metadata keys, not %d",
                  back.meta ? cJSON_GetArraySize(back.meta) : 0, nmeta);
    for (k = 0; k < nmeta; k++) {
        const char *v = st_meta_get(g, meta[k].key);
        if (!v || strcmp(v, meta[k].value))
            fuzz_fail("written back: metadata '%.60s' differs", meta[k].key);
    }
    st_close(g);
    rules_free(&back);
    free(bytes);
    free(t);
    free(meta);
    unlink(path);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_file(data, size);
    anamo_err err = {0};
    st_file *f = NULL;
    int rc = st_open(path, &f, &err);
    fuzz_check_error(rc, &err, path);
    if (rc != ANAMO_OK) {
        if (f)
            fuzz_fail("st_open failed and left a file behind");
        return 0;
    }
    rules h;
    st_rules(data, size, "the input st_open accepted", &h);
    check_against(f, &h, data, "st_open");
    round_trip(f, &h);
    rules_free(&h);
    st_close(f);
    return 0;
}
