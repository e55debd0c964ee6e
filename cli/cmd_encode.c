/* cmd_encode.c — anamo encode: the codes E(x) of every sample, as an N × m float32 NPY. */
#include "cli.h"

#include <stdlib.h>

static const char USAGE[] =
    "usage: anamo encode MODEL --data SPEC -o codes.npy\n"
    "\n"
    "Writes the codes E(x) of every sample of SPEC under MODEL's encoder to a float32 NPY file\n"
    "of shape (samples, code width), row i being sample i.\n";

int cmd_encode(int argc, char **argv, anamo_dist *dist)
{
    (void)dist; /* rank 0 alone runs it (main.c) */
    model_args a = {0};
    int rc = cli_model_args(argc, argv, USAGE, &a);
    if (rc)
        return rc < 0 ? EXIT_OK : rc;
    if (!a.out)
        return cli_usage_error(USAGE, "encode: missing -o codes.npy");
    anamo_model *m;
    anamo_dataset ds;
    if ((rc = cli_load_model_data(&a, &m, &ds)))
        return rc;
    anamo_err err = {0};
    int64_t shape[2] = {ds.n, anamo_model_code_dim(m)};
    float *codes = malloc((size_t)(shape[0] * shape[1]) * sizeof *codes);
    rc = codes ? anamo_model_encode(m, &ds, 0, ds.n, codes, &err)
               : anamo_err_set(&err, ANAMO_ERR_NOMEM, "encode: out of memory");
    if (!rc)
        rc = anamo_npy_write_f32(a.out, codes, 2, shape, &err);
    if (!rc)
        printf("%s: %lld codes of %lld values\n", a.out, (long long)shape[0], (long long)shape[1]);
    free(codes);
    anamo_model_free(m);
    anamo_dataset_free(&ds);
    return rc ? cli_report(&err) : EXIT_OK;
}
