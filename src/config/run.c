/* run.c — a run as a config describes it (anamo_run_open): the data opened where runs look
 * for it, the validation set held out or opened, the model built to the data's shape (its
 * standardization fitted) and the trainer created; anamo_run_close releases it all. */
#include "config/config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Where dataset specs are looked up unless the caller says: $ANAMO_DATA, else ./data. */
static const char *default_data_root(void)
{
    const char *env = getenv("ANAMO_DATA");
    return env && *env ? env : "data";
}

int anamo_run_open_data(const char *spec, const char *data_root, anamo_dataset *out, anamo_err *err)
{
    if (!spec || !out)
        return anamo_err_set(err, ANAMO_ERR_ARG, "run data: %s is NULL", spec ? "out" : "the spec");
    const char *root = data_root ? data_root : default_data_root();
    int rc = anamo_dataset_open(spec, root, out, err);
    /* a named dataset (mnist:train, ...) not found: say which root was searched, unless the
     * reader's message already tells how to change it */
    if (rc && err && rc != ANAMO_ERR_NOMEM && strchr(spec, ':') &&
        !strstr(err->msg, "ANAMO_DATA")) {
        if (data_root)
            anamo_err_context(err, "data root %s", root);
        else
            anamo_err_context(err,
                              getenv("ANAMO_DATA") ? "data root $ANAMO_DATA=%s"
                                                   : "data root %s (set $ANAMO_DATA to "
                                                     "change it)",
                              root);
    }
    return rc;
}

/* The training and test sets, and the validation set: a fraction of the training set held out
 * (data.validation a number), or a data spec of its own. */
static int open_data(const run_settings *s, const char *data_root, anamo_run *r, anamo_err *err)
{
    int rc = anamo_run_open_data(s->train_spec, data_root, &r->train, err);
    if (!rc && s->test_spec[0]) {
        rc = anamo_run_open_data(s->test_spec, data_root, &r->test, err);
        r->has_test = rc == ANAMO_OK;
    }
    if (!rc && s->validation_fraction > 0)
        rc = anamo_dataset_hold_out(&r->train, s->validation_fraction, s->validation_seed,
                                    &r->validation, err);
    else if (!rc && s->validation_spec[0])
        rc = anamo_run_open_data(s->validation_spec, data_root, &r->validation, err);
    r->has_validation = !rc && (s->validation_fraction > 0 || s->validation_spec[0]);
    return rc;
}

/* The model to the training set's shape, its standardization, and the trainer over the sets. */
static int build(const run_settings *s, anamo_run *r, anamo_err *err)
{
    snprintf(r->scheme, sizeof r->scheme, "%s", s->scheme);
    snprintf(r->encoder, sizeof r->encoder, "%s", s->encoder);
    snprintf(r->decoder, sizeof r->decoder, "%s", s->decoder);
    r->threads = s->threads;
    r->train_spec = s->train;
    r->model_spec = s->model;
    r->model_spec.encoder = r->encoder;
    r->model_spec.decoder = r->decoder;
    r->model_spec.in_c = r->train.c, r->model_spec.in_h = r->train.h;
    r->model_spec.in_w = r->train.w;
    int rc = anamo_model_create(&r->model_spec, &r->model, err);
    if (!rc && s->standardize)
        rc = anamo_model_fit_standardize(r->model, &r->train, err);
    if (!rc)
        rc = anamo_trainer_create(r->model, &r->train_spec, &r->train,
                                  r->has_test ? &r->test : NULL, &r->trainer, err);
    if (!rc && r->has_validation)
        rc = anamo_trainer_set_validation(r->trainer, &r->validation, err);
    return rc;
}

int anamo_run_open(const anamo_config *c, const char *data_root, anamo_run *out, anamo_err *err)
{
    if (!c || !out)
        return anamo_err_set(err, ANAMO_ERR_ARG, "run: %s is NULL", c ? "out" : "the config");
    memset(out, 0, sizeof *out);
    run_settings *s = malloc(sizeof *s);
    int rc = s ? config_settings(c, s, err)
               : anamo_err_set(err, ANAMO_ERR_NOMEM, "%s: out of memory", c->path);
    if (!rc)
        rc = open_data(s, data_root, out, err);
    if (!rc)
        rc = build(s, out, err);
    free(s);
    if (rc) /* nothing half-open is left to the caller */
        anamo_run_close(out);
    return rc;
}

void anamo_run_close(anamo_run *r)
{
    if (!r)
        return;
    anamo_trainer_free(r->trainer);
    anamo_model_free(r->model);
    anamo_dataset_free(&r->train);
    if (r->has_test)
        anamo_dataset_free(&r->test);
    if (r->has_validation)
        anamo_dataset_free(&r->validation);
    memset(r, 0, sizeof *r);
}
