/* settings.c — what a validated config asks for, typed: the data, the model, and the scheme as
 * a list of phases (joint: one; NAM: the default decoder/encoder cycle or [phase NAME]
 * sections; ANAMO and free codes: one phase of their own), and the objective a checkpoint's
 * stored config trained with. */
#include "config/config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static double num(const anamo_config *c, const char *section, const char *key)
{
    const char *v = config_get(c, section, key);
    return v ? strtod(v, NULL) : 0.0;
}

/* A phase's own batch size when its section sets one, else the run's. */
static int batch_of(const anamo_config *c, const char *section, int batch)
{
    return config_find(c, section, "batch") ? (int)num(c, section, "batch") : batch;
}

static int flag(const anamo_config *c, const char *section, const char *key)
{
    const char *v = config_get(c, section, key);
    return v && !strcmp(v, "true");
}

/* A name the config's validation has already checked against its table. */
static int kind(const anamo_config *c, const char *section, const char *key, anamo_enum e)
{
    return anamo_enum_parse(e, config_get(c, section, key));
}

static void fill_optimizer(const anamo_config *c, const char *section, anamo_phase *ph)
{
    anamo_optim_settings *o = &ph->opt;
    o->kind = (anamo_optimizer)kind(c, section, "optimizer", ANAMO_ENUM_OPTIMIZER);
    o->lr = (float)num(c, section, "lr");
    o->beta1 = (float)num(c, section, "beta1");
    o->beta2 = (float)num(c, section, "beta2");
    o->eps = (float)num(c, section, "eps");
    o->weight_decay = (float)num(c, section, "weight_decay");
    o->momentum = (float)num(c, section, "momentum");
    o->alpha = (float)num(c, section, "alpha");
    o->prox = (anamo_prox)kind(c, section, "prox", ANAMO_ENUM_PROX);
    o->prox_lambda = (float)num(c, section, "prox_lambda");
    o->restart = (anamo_restart)kind(c, section, "restart", ANAMO_ENUM_RESTART);
    o->step_rule = (anamo_step_rule)kind(c, section, "step", ANAMO_ENUM_STEP_RULE);
    o->backtrack_eta = (float)num(c, section, "backtrack_eta");
    anamo_lr_schedule *s = &ph->schedule;
    s->kind = (anamo_schedule)kind(c, section, "schedule", ANAMO_ENUM_SCHEDULE);
    s->step_size = (int)num(c, section, "step_size");
    s->gamma = (float)num(c, section, "gamma");
    s->factor = (float)num(c, section, "factor");
    s->patience = (int)num(c, section, "patience");
    s->threshold = (float)num(c, section, "threshold");
    s->min_lr = (float)num(c, section, "min_lr");
}

static int named_phase(const anamo_config *c, const char *name, int batch, anamo_phase *ph,
                       anamo_err *err)
{
    char section[CFG_SECTION_MAX];
    snprintf(section, sizeof section, "phase %s", name);
    const char *which = config_get(c, section, "block");
    if (!which)
        return anamo_err_set(err, ANAMO_ERR_CONFIG,
                             "%s: [nam] phases names '%s', but [%s] has no 'block' "
                             "(encoder|decoder|both)",
                             c->path, name, section);
    *ph = anamo_phase_default(name,
                              !strcmp(which, "encoder")   ? ANAMO_PHASE_ENCODER
                              : !strcmp(which, "decoder") ? ANAMO_PHASE_DECODER
                                                          : ANAMO_PHASE_JOINT,
                              ANAMO_OPT_ADAM, 1e-3f, batch, 1.0);
    fill_optimizer(c, section, ph);
    ph->batch = batch_of(c, section, batch);
    ph->epochs = num(c, section, "epochs");
    ph->iterations = (int64_t)num(c, section, "iterations");
    return ANAMO_OK;
}

static int nam_phases(const anamo_config *c, anamo_train_spec *t, int batch, anamo_err *err)
{
    char names[ANAMO_MAX_PHASES][ANAMO_NAME_MAX];
    int n = split_list(config_get(c, "nam", "phases"), names, ANAMO_MAX_PHASES);
    for (int i = 0; i < n; i++) {
        int rc = named_phase(c, names[i], batch, &t->phases[i], err);
        if (rc)
            return rc;
    }
    t->nphases = n;
    if (n > 0)
        return ANAMO_OK;
    /* the default cycle: decoder and encoder alternating, each for epochs_per_phase */
    int enc_first = !strcmp(config_get(c, "nam", "start"), "encoder");
    double len = num(c, "nam", "epochs_per_phase");
    const anamo_optimizer opt = (anamo_optimizer)kind(c, "nam", "optimizer", ANAMO_ENUM_OPTIMIZER);
    anamo_phase dec = anamo_phase_default("decoder", ANAMO_PHASE_DECODER, opt,
                                          (float)num(c, "nam", "decoder_lr"), batch, len);
    anamo_phase enc = anamo_phase_default("encoder", ANAMO_PHASE_ENCODER, opt,
                                          (float)num(c, "nam", "encoder_lr"), batch, len);
    t->phases[0] = enc_first ? enc : dec;
    t->phases[1] = enc_first ? dec : enc;
    t->nphases = 2;
    return ANAMO_OK;
}

/* ANAMO: one phase whose every step runs the inner encoder and decoder iterations. */
static void anamo_inner_phase(const anamo_config *c, anamo_train_spec *t, int batch)
{
    anamo_phase *ph = &t->phases[0];
    const char *sec = "anamo";
    *ph = anamo_phase_default("anamo", ANAMO_PHASE_ANAMO, ANAMO_OPT_FISTA,
                              (float)num(c, sec, "enc_lr"), batch_of(c, sec, batch), 1.0);
    anamo_anamo_settings *a = &ph->anamo;
    a->enc_iters = (int)num(c, sec, "enc_iters");
    a->dec_iters = (int)num(c, sec, "dec_iters");
    a->enc_lr = (float)num(c, sec, "enc_lr");
    a->dec_lr = (float)num(c, sec, "dec_lr");
    a->prox_iters = (int)num(c, sec, "prox_iters");
    a->prox_step = (float)num(c, sec, "prox_step");
    ph->opt.step_rule = (anamo_step_rule)kind(c, sec, "step", ANAMO_ENUM_STEP_RULE);
    ph->opt.backtrack_eta = (float)num(c, sec, "backtrack_eta");
    ph->opt.restart = (anamo_restart)kind(c, sec, "restart", ANAMO_ENUM_RESTART);
    t->nphases = 1;
}

/* Binary codes by free codes (seed 000's third variant): one phase, then the encoder fit. */
static void free_codes_phase(const anamo_config *c, anamo_train_spec *t, int batch)
{
    anamo_phase *ph = &t->phases[0];
    const char *sec = "freecodes";
    *ph = anamo_phase_default("freecodes", ANAMO_PHASE_FREECODES, ANAMO_OPT_FISTA,
                              (float)num(c, sec, "code_lr"), batch_of(c, sec, batch), 1.0);
    anamo_freecodes_settings *f = &ph->freecodes;
    f->code_iters = (int)num(c, sec, "code_iters");
    f->dec_iters = (int)num(c, sec, "dec_iters");
    f->code_lr = (float)num(c, sec, "code_lr");
    f->dec_lr = (float)num(c, sec, "dec_lr");
    f->fit = (anamo_fit)kind(c, sec, "fit", ANAMO_ENUM_FIT);
    f->fit_epochs = (int)num(c, sec, "fit_epochs");
    f->fit_lr = (float)num(c, sec, "fit_lr");
    f->refit_epochs = (int)num(c, sec, "refit_epochs");
    ph->opt.restart = (anamo_restart)kind(c, sec, "restart", ANAMO_ENUM_RESTART);
    t->nphases = 1;
}

/* data.validation: a number is the fraction of the training set held out, anything else a data
 * spec of its own. */
static int validation_settings(const anamo_config *c, run_settings *s, anamo_err *err)
{
    const char *v = config_get(c, "data", "validation");
    s->validation_seed = (uint64_t)num(c, "data", "validation_seed");
    if (!*v)
        return ANAMO_OK;
    char *end;
    double f = strtod(v, &end);
    if (end == v || *end) { /* not a number: a spec */
        snprintf(s->validation_spec, sizeof s->validation_spec, "%s", v);
        return ANAMO_OK;
    }
    if (!(f > 0.0 && f < 1.0))
        return anamo_err_set(err, ANAMO_ERR_CONFIG,
                             "%s: data.validation = %s: a fraction of the "
                             "training set must lie in (0, 1)",
                             c->path, v);
    s->validation_fraction = f;
    return ANAMO_OK;
}

int config_settings(const anamo_config *c, run_settings *s, anamo_err *err)
{
    memset(s, 0, sizeof *s);
    snprintf(s->train_spec, sizeof s->train_spec, "%s", config_get(c, "data", "train"));
    snprintf(s->test_spec, sizeof s->test_spec, "%s", config_get(c, "data", "test"));
    s->standardize = flag(c, "data", "standardize");
    int rc = validation_settings(c, s, err);
    if (rc)
        return rc;
    snprintf(s->encoder, sizeof s->encoder, "%s", config_get(c, "model", "encoder"));
    snprintf(s->decoder, sizeof s->decoder, "%s", config_get(c, "model", "decoder"));
    snprintf(s->scheme, sizeof s->scheme, "%s", config_get(c, "train", "scheme"));
    int batch = (int)num(c, "train", "batch");
    anamo_model_spec *m = &s->model;
    m->encoder = s->encoder;
    m->decoder = s->decoder;
    m->init = (anamo_init_kind)anamo_enum_parse(ANAMO_ENUM_INIT, config_get(c, "model", "init"));
    m->init_scale = (float)num(c, "model", "init_scale");
    m->seed = (uint64_t)num(c, "model", "seed");
    m->binary_codes = flag(c, "model", "binary_codes");
    m->conv = (anamo_conv_impl)anamo_enum_parse(ANAMO_ENUM_CONV, config_get(c, "model", "conv"));
    anamo_train_spec *t = &s->train;
    t->loss = (anamo_loss_kind)anamo_enum_parse(ANAMO_ENUM_LOSS, config_get(c, "loss", "type"));
    t->lambda = (float)num(c, "loss", "lambda");
    t->penalty = (anamo_penalty_kind)anamo_enum_parse(ANAMO_ENUM_PENALTY,
                                                      config_get(c, "loss", "penalty"));
    t->decoder_norm = (anamo_decoder_norm)anamo_enum_parse(ANAMO_ENUM_DECODER_NORM,
                                                           config_get(c, "train", "decoder_norm"));
    t->resample_every = (int64_t)num(c, "train", "resample_every");
    t->resample_window = config_get(c, "train", "resample_window")
                             ? (int64_t)num(c, "train", "resample_window")
                             : t->resample_every;
    t->jacobian_samples = (int64_t)num(c, "train", "jacobian_samples");
    if (t->jacobian_samples == 0)
        t->jacobian_samples = -1; /* the config's 0 is "none"; the library's 0, its default */
    t->epochs = num(c, "train", "epochs");
    t->seed = (uint64_t)num(c, "train", "seed");
    t->log_every = (int)num(c, "train", "log_every");
    const char *cache = config_get(c, "train", "cache_codes");
    t->cache_codes = !cache || !strcmp(cache, "auto") ? ANAMO_CACHE_CODES_AUTO
                                                      : !strcmp(cache, "true");
    t->eval_every_epoch = flag(c, "train", "eval_every_epoch");
    t->early_stopping = (int)num(c, "train", "early_stopping");
    t->flop_budget = num(c, "train", "flop_budget");
    if (t->early_stopping > 0 && !s->validation_fraction && !s->validation_spec[0])
        return anamo_err_set(err, ANAMO_ERR_CONFIG,
                             "%s: train.early_stopping = %d watches a "
                             "validation set; set data.validation (a fraction such as 0.1, or a "
                             "data spec)",
                             c->path, t->early_stopping);
    s->threads = (int)num(c, "train", "threads");
    s->checkpoint_every = (int)num(c, "train", "checkpoint_every");
    s->checkpoint_iterations = (int64_t)num(c, "train", "checkpoint_iterations");
    s->checkpoint_seconds = num(c, "train", "checkpoint_seconds");
    if (!strcmp(s->scheme, "joint")) {
        t->nphases = 1;
        /* one epoch-long phase that follows itself: the optimizer and its state carry on, and
         * a resumed run with a larger budget walks the same phase boundaries */
        t->phases[0] = anamo_phase_default("joint", ANAMO_PHASE_JOINT,
                                           (anamo_optimizer)kind(c, "joint", "optimizer",
                                                                 ANAMO_ENUM_OPTIMIZER),
                                           (float)num(c, "joint", "lr"), batch, 1.0);
        fill_optimizer(c, "joint", &t->phases[0]);
    } else if (!strcmp(s->scheme, "anamo")) {
        anamo_inner_phase(c, t, batch);
    } else if (!strcmp(s->scheme, "freecodes")) {
        free_codes_phase(c, t, batch);
    } else {
        rc = nam_phases(c, t, batch, err);
        if (rc)
            return rc;
    }
    int max_batch = batch;
    for (int i = 0; i < t->nphases; i++)
        max_batch = t->phases[i].batch > max_batch ? t->phases[i].batch : max_batch;
    m->max_batch = max_batch;
    return ANAMO_OK;
}

int anamo_checkpoint_eval_spec(const char *path, anamo_eval_spec *out, anamo_err *err)
{
    if (!out)
        return anamo_err_set(err, ANAMO_ERR_ARG, "checkpoint eval spec: out is NULL");
    *out = (anamo_eval_spec){.loss = ANAMO_LOSS_MSE, .penalty = ANAMO_PENALTY_L1};
    anamo_err local = {0};
    char *text = anamo_checkpoint_config(path, &local);
    anamo_config c = {0};
    run_settings s;
    /* not validated: a config an older anamo stored gives its objective if it can */
    int rc = text ? config_load_text(&c, text, path, &local) : local.code;
    if (!rc)
        rc = config_settings(&c, &s, &local);
    if (!rc) {
        out->loss = s.train.loss;
        out->lambda = s.train.lambda;
        out->penalty = s.train.penalty;
        out->jacobian_samples = s.train.jacobian_samples;
    }
    config_free(&c);
    free(text);
    if (rc && err)
        *err = local;
    return rc;
}
