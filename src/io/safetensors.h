/* safetensors.h — reading and writing the safetensors format
 * (https://github.com/huggingface/safetensors): an 8-byte little-endian header length N, then
 * N bytes of JSON {"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, ...,
 * "__metadata__": {"key": "string value", ...}}, then the raw little-endian tensor bytes; offsets
 * are relative to the end of the header. PyTorch users load the file with
 * safetensors.torch.load_file. */
#ifndef ANAMO_IO_SAFETENSORS_H
#define ANAMO_IO_SAFETENSORS_H

#include "anamo.h"

typedef enum st_dtype { ST_F32 = 0, ST_F64, ST_I64, ST_I32, ST_U8 } st_dtype;

#define ST_NAME_MAX 128
typedef struct st_tensor {
    char name[ST_NAME_MAX];
    st_dtype dtype;
    int ndim;
    int64_t shape[ANAMO_MAX_DIMS];
    const void *data; /* writer: the bytes to write; reader: points into the loaded file */
    size_t nbytes;
} st_tensor;

typedef struct st_meta {
    const char *key;
    const char *value;
} st_meta;

/* Writes tensors (in the given order) and string metadata to path atomically: the bytes go to
 * "path.tmp", are flushed and fsync'ed, then renamed over path, so a crash at any moment leaves
 * either the old file or the new one, never a mixture. */
int st_write(const char *path, const st_tensor *tensors, int ntensors, const st_meta *meta,
             int nmeta, anamo_err *err);

/* A loaded file: the whole file is read into memory and its header validated as the reference
 * reader validates it (length within the file, valid JSON, no name twice, known dtypes, shapes
 * whose byte count matches the offsets, and the offsets, sorted, tiling the data section from 0
 * to the file's end: no overlap, no hole, no bytes after the last tensor). */
typedef struct st_file st_file;
int st_open(const char *path, st_file **out, anamo_err *err);
void st_close(st_file *f);
int st_count(const st_file *f);
const st_tensor *st_at(const st_file *f, int i);
const st_tensor *st_find(const st_file *f, const char *name); /* NULL if absent */
const char *st_meta_get(const st_file *f, const char *key);   /* NULL if absent */
const char *st_path(const st_file *f);
size_t st_dtype_size(st_dtype dtype);
const char *st_dtype_name(st_dtype dtype);

#endif
