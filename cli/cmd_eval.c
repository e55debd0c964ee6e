/* cmd_eval.c — anamo eval: a trained model's metrics on a dataset, as JSON on stdout. */
#include "cli.h"

#include <cJSON.h>

static const char USAGE[] =
    "usage: anamo eval MODEL --data SPEC [--jacobian-samples N]\n"
    "\n"
    "Prints the metrics of MODEL (a model.safetensors or its run directory) on SPEC as JSON:\n"
    "loss and reconstruction loss (the objective MODEL was trained with), MSE per element,\n"
    "the reconstruction bias (1/M) sum ||x - x^||, explained variance (against the training\n"
    "mean the checkpoint holds), input l1, and the code measures: raw code l1, code l1 weighted\n"
    "by the decoder's first-layer column norms (code_l1_decoder) and by its Jacobian\n"
    "(code_l1_jacobian, on N evenly spaced samples: the config's train.jacobian_samples,\n"
    "256 by default; 0 skips it), L0 (nonzero codes per sample), zero-code fraction, dead\n"
    "units and their fraction. docs/MEASURES.md says what each is invariant to.\n";

/* cJSON escapes the path and prints numbers with 17 significant digits, as summary.json has */
static int print_json(const char *data, const anamo_metrics *mt, anamo_err *err)
{
    cJSON *o = cli_metrics_json(mt);
    char *text = o && cJSON_AddStringToObject(o, "data", data) ? cJSON_PrintUnformatted(o) : NULL;
    int rc = text ? ANAMO_OK : anamo_err_set(err, ANAMO_ERR_NOMEM, "eval: out of memory");
    if (text && (puts(text) < 0 || fflush(stdout) != 0))
        rc = anamo_err_set(err, ANAMO_ERR_IO, "eval: cannot write to standard output");
    cJSON_free(text);
    cJSON_Delete(o);
    return rc;
}

int cmd_eval(int argc, char **argv, anamo_dist *dist)
{
    (void)dist; /* rank 0 alone runs it (main.c) */
    model_args a = {0};
    int rc = cli_model_args(argc, argv, USAGE, &a);
    if (rc)
        return rc < 0 ? EXIT_OK : rc;
    anamo_model *m;
    anamo_dataset ds;
    if ((rc = cli_load_model_data(&a, &m, &ds)))
        return rc;
    char path[4096];
    cli_model_path(a.model, path, sizeof path);
    anamo_eval_spec spec;
    anamo_checkpoint_eval_spec(path, &spec, NULL); /* its defaults when the config is unread */
    if (a.jacobian_samples)
        spec.jacobian_samples = a.jacobian_samples;
    anamo_metrics mt;
    anamo_err err = {0};
    rc = anamo_evaluate(m, &ds, &spec, &mt, &err);
    if (!rc)
        rc = print_json(a.data, &mt, &err);
    anamo_model_free(m);
    anamo_dataset_free(&ds);
    return rc ? cli_report(&err) : EXIT_OK;
}
