/* fuzz_safetensors.c — libFuzzer target for the safetensors reader (st_open): header length,
 * JSON, dtypes, shapes, offsets inside the file, overlaps, metadata. Every tensor of an
 * accepted file is read through (ASan sees a span outside the buffer) and found by name; the
 * metadata keys a checkpoint uses are looked up. */
#include "fuzz_util.h"

#include "io/safetensors.h"

static const char *const META_KEYS[] = {"format", "anamo.input_shape", "anamo.encoder",
                                        "anamo.decoder", "anamo.progress", "config"};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_file(data, size);
    anamo_err err = {0};
    st_file *f = NULL;
    int rc = st_open(path, &f, &err);
    fuzz_check_error(rc, &err, path);
    if (rc != ANAMO_OK) {
        if (f)
            abort();
        return 0;
    }
    volatile uint8_t acc = 0;
    for (int i = 0; i < st_count(f); i++) {
        const st_tensor *t = st_at(f, i);
        if (st_find(f, t->name) != t || t->nbytes % st_dtype_size(t->dtype))
            abort();
        const uint8_t *p = t->data;
        for (size_t k = 0; k < t->nbytes; k++)
            acc ^= p[k];
    }
    for (size_t k = 0; k < sizeof META_KEYS / sizeof META_KEYS[0]; k++) {
        const char *v = st_meta_get(f, META_KEYS[k]);
        if (v)
            acc ^= (uint8_t)strlen(v);
    }
    (void)acc;
    if (st_find(f, "__metadata__"))
        abort(); /* the metadata is not a tensor */
    st_close(f);
    return 0;
}
