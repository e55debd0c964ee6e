/* cmd_eval.c — anamo eval: a trained model's metrics on a dataset, as JSON on stdout. */
#include "cli.h"

#include <cJSON.h>

static const char USAGE[] =
    "usage: anamo eval MODEL --data SPEC\n"
    "\n"
    "Prints the metrics of MODEL (a model.safetensors or its run directory) on SPEC as JSON:\n"
    "loss and reconstruction loss (the loss MODEL was trained with), MSE per element, the\n"
    "reconstruction bias (1/M) sum ||x - x^||, code l1, input l1, zero-code fraction, dead units.\n";

/* cJSON escapes the path and prints numbers with 17 significant digits, as summary.json has */
static void print_json(const char *data, const anamo_metrics *mt)
{
    cJSON *o = cli_metrics_json(mt);
    cJSON_AddStringToObject(o, "data", data);
    char *text = cJSON_PrintUnformatted(o);
    if (text)
        puts(text);
    cJSON_free(text);
    cJSON_Delete(o);
}

int cmd_eval(int argc, char **argv)
{
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
    anamo_loss_kind loss;
    float lambda;
    cli_checkpoint_loss(path, &loss, &lambda);
    anamo_metrics mt;
    anamo_err err = {0};
    rc = anamo_evaluate(m, &ds, loss, lambda, &mt, &err);
    if (!rc)
        print_json(a.data, &mt);
    anamo_model_free(m);
    anamo_dataset_free(&ds);
    return rc ? cli_report(&err) : EXIT_OK;
}
