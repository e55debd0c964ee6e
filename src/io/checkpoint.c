/* checkpoint.c — a model and its training state as one safetensors file.
 *
 * Tensors: every parameter under its PyTorch state_dict name ("encoder.0.weight" (out, in),
 * "encoder.0.bias", …) and batch norm's buffers ("encoder.1.running_mean", "…running_var",
 * "…num_batches_tracked" as an I64 scalar), "optim.encoder.state" and "optim.decoder.state" (the flat optimizer
 * state; Adam: m then v), "normalize.mean" and "normalize.std" when inputs are standardized,
 * "data.mean" (the training set's mean, explained variance's x̄), "train.last_active" (I64 per
 * code unit: the last step it was nonzero, for dead-unit resampling).
 * __metadata__ (all strings): "format", "anamo.input_shape" ("C,H,W"), "anamo.encoder",
 * "anamo.decoder", "anamo.init", "anamo.seed", "anamo.standardize", "anamo.progress" (JSON of
 * train_progress) and "config" (the caller's config text, verbatim). */
#include "core/err.h"
#include "io/safetensors.h"
#include "train/trainer.h"

#include <cJSON.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECKPOINT_FORMAT "anamo-checkpoint-1"
#define CKPT_MAX_TENSORS (2 * BLOCK_MAX_PARAMS + 2 * BLOCK_MAX_BUFFERS + 8)

static void add_tensor(st_tensor *ts, int *n, const char *name, const float *data, int ndim,
                       const int64_t *shape)
{
    st_tensor *t = &ts[(*n)++];
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    t->dtype = ST_F32;
    t->ndim = ndim;
    int64_t numel = 1;
    for (int i = 0; i < ndim; i++) {
        t->shape[i] = shape[i];
        numel *= shape[i];
    }
    t->data = data;
    t->nbytes = (size_t)numel * sizeof(float);
}

static void add_block(st_tensor *ts, int *n, const block *b, int with_state)
{
    for (int i = 0; i < b->nparams_tensors; i++) {
        const param_ref *p = &b->params_ref[i];
        add_tensor(ts, n, p->name, b->params + p->offset, p->ndim, p->shape);
    }
    for (int i = 0; i < b->nbuffers; i++) { /* batch norm's running statistics */
        const buffer_ref *r = &b->buffers_ref[i];
        if (!r->is_count) {
            add_tensor(ts, n, r->name, r->data, 1, &r->numel);
            continue;
        }
        st_tensor *t = &ts[(*n)++]; /* num_batches_tracked: an int64 scalar, as PyTorch's */
        memset(t, 0, sizeof *t);
        snprintf(t->name, sizeof t->name, "%s", r->name);
        t->dtype = ST_I64;
        t->ndim = 0;
        t->data = r->count;
        t->nbytes = sizeof(int64_t);
    }
    if (with_state && b->nstate > 0) {
        char name[64];
        snprintf(name, sizeof name, "optim.%s.state", b->name);
        add_tensor(ts, n, name, b->opt_state, 1, &b->nstate);
    }
}

/* Adds key = v to o; clears *ok when cJSON could not (out of memory). */
static void put(cJSON *o, const char *key, double v, int *ok)
{
    if (!o || !cJSON_AddNumberToObject(o, key, v))
        *ok = 0;
}

static int put_schedules(cJSON *o, const train_progress *p, int nphases)
{
    cJSON *sched = cJSON_AddArrayToObject(o, "schedules");
    int ok = sched != NULL;
    for (int i = 0; ok && i < nphases; i++) {
        const schedule_state *st = &p->sched[i];
        cJSON *e = cJSON_CreateObject();
        put(e, "lr", st->lr, &ok);
        put(e, "best", isfinite(st->best) ? st->best : -1.0, &ok);
        put(e, "bad_epochs", st->bad_epochs, &ok);
        put(e, "epochs", (double)st->epochs, &ok);
        if (!ok || !cJSON_AddItemToArray(sched, e)) {
            cJSON_Delete(e);
            ok = 0;
        }
    }
    return ok;
}

/* The progress as JSON text, or NULL when any part of it could not be made: a checkpoint
 * missing a key could not be resumed. */
static char *progress_json(const train_progress *p, int nphases)
{
    cJSON *o = cJSON_CreateObject();
    int ok = o != NULL;
    put(o, "pass", (double)p->pass, &ok);
    put(o, "offset", (double)p->offset, &ok);
    put(o, "phase_idx", p->phase_idx, &ok);
    put(o, "phase_iters", (double)p->phase_iters, &ok);
    put(o, "phase_samples", (double)p->phase_samples, &ok);
    put(o, "iteration", (double)p->iteration, &ok);
    put(o, "samples", (double)p->samples, &ok);
    put(o, "encoder_steps", (double)p->steps[0], &ok);
    put(o, "decoder_steps", (double)p->steps[1], &ok);
    put(o, "encoder_optimizer", p->opt_kind[0], &ok);
    put(o, "decoder_optimizer", p->opt_kind[1], &ok);
    put(o, "elapsed", p->elapsed, &ok);
    put(o, "epoch_seconds", p->epoch_seconds, &ok);
    put(o, "weights_updated", p->weights_updated, &ok);
    put(o, "free_codes_ready", p->free_codes_ready, &ok);
    put(o, "finished", p->finished, &ok);
    put(o, "resampled", (double)p->resampled, &ok);
    put(o, "encoder_lipschitz", p->lipschitz[0], &ok);
    put(o, "decoder_lipschitz", p->lipschitz[1], &ok);
    put(o, "best_validation", isfinite(p->best_validation) ? p->best_validation : -1.0, &ok);
    put(o, "best_epoch", (double)p->best_epoch, &ok);
    put(o, "stopped_early", p->stopped_early, &ok);
    for (int k = 0; k < 2; k++) {
        char key[32];
        snprintf(key, sizeof key, "%s_forward_samples", k ? "decoder" : "encoder");
        put(o, key, (double)p->work[k].forward_samples, &ok);
        snprintf(key, sizeof key, "%s_backward_samples", k ? "decoder" : "encoder");
        put(o, key, (double)p->work[k].backward_samples, &ok);
        snprintf(key, sizeof key, "%s_flop", k ? "decoder" : "encoder");
        put(o, key, p->work[k].flop, &ok);
    }
    ok = ok && put_schedules(o, p, nphases);
    char *s = ok ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    return s;
}

int anamo_checkpoint_save(const anamo_model *m, const anamo_trainer *t, const char *config_text,
                          const char *path, anamo_err *err)
{
    st_tensor ts[CKPT_MAX_TENSORS];
    int n = 0;
    add_block(ts, &n, &m->enc, t != NULL);
    add_block(ts, &n, &m->dec, t != NULL);
    int64_t codes_shape[2] = {t ? t->train->n : 0, m->enc.out_dim};
    if (t && t->free_codes && t->p.free_codes_ready) /* a free-codes run resumes with them */
        add_tensor(ts, &n, "train.free_codes", t->free_codes, 2, codes_shape);
    if (t && t->last_active) { /* resampling's activity window */
        st_tensor *a = &ts[n++];
        memset(a, 0, sizeof *a);
        snprintf(a->name, sizeof a->name, "train.last_active");
        a->dtype = ST_I64, a->ndim = 1, a->shape[0] = m->enc.out_dim;
        a->data = t->last_active;
        a->nbytes = (size_t)m->enc.out_dim * sizeof(int64_t);
    }
    if (m->data_mean) /* explained variance's x̄ */
        add_tensor(ts, &n, "data.mean", m->data_mean, 1, &m->in_dim);
    if (m->standardize) {
        add_tensor(ts, &n, "normalize.mean", m->norm_mean, 1, &m->in_dim);
        add_tensor(ts, &n, "normalize.std", m->norm_std, 1, &m->in_dim);
    }
    char shape[64], seed[32];
    snprintf(shape, sizeof shape, "%d,%d,%d", m->in_c, m->in_h, m->in_w);
    snprintf(seed, sizeof seed, "%" PRIu64, m->seed);
    char *progress = t ? progress_json(&t->p, t->spec.nphases) : NULL;
    if (t && !progress)
        return anamo_err_set(err, ANAMO_ERR_NOMEM, "%s: out of memory for the progress", path);
    st_meta meta[] = {{"format", CHECKPOINT_FORMAT},
                      {"anamo.input_shape", shape},
                      {"anamo.encoder", m->encoder_spec},
                      {"anamo.decoder", m->decoder_spec},
                      {"anamo.init", init_name(m->init)},
                      {"anamo.seed", seed},
                      {"anamo.standardize", m->standardize ? "1" : "0"},
                      {"anamo.binary_codes", m->binary_codes ? "1" : "0"},
                      {"config", config_text ? config_text : ""},
                      {"anamo.progress", progress ? progress : "{}"}};
    int rc = st_write(path, ts, n, meta, (int)(sizeof meta / sizeof meta[0]), err);
    cJSON_free(progress);
    return rc;
}

/* Copies the tensor called name into dst (numel floats), checking its dtype and size. */
static int load_floats(const st_file *f, const char *name, float *dst, int64_t numel,
                       anamo_err *err)
{
    const st_tensor *t = st_find(f, name);
    if (!t)
        return anamo_err_set(err, ANAMO_ERR_FORMAT, "%s: tensor '%s' is missing", st_path(f), name);
    if (t->dtype != ST_F32 || t->nbytes != (size_t)numel * sizeof(float))
        return anamo_err_set(err, ANAMO_ERR_FORMAT,
                             "%s: tensor '%s' is %s of %zu bytes; expected F32 of %lld values",
                             st_path(f), name, st_dtype_name(t->dtype), t->nbytes,
                             (long long)numel);
    memcpy(dst, t->data, t->nbytes); /* the data may be unaligned in the file buffer */
    return ANAMO_OK;
}

static int load_count(const st_file *f, const char *name, int64_t *dst, anamo_err *err)
{
    const st_tensor *t = st_find(f, name);
    if (!t || t->dtype != ST_I64 || t->nbytes != sizeof *dst)
        return anamo_err_set(err, ANAMO_ERR_FORMAT, "%s: tensor '%s' is missing or not one I64",
                             st_path(f), name);
    memcpy(dst, t->data, sizeof *dst);
    return ANAMO_OK;
}

static int load_block(const st_file *f, block *b, anamo_err *err)
{
    int rc = ANAMO_OK;
    for (int i = 0; !rc && i < b->nparams_tensors; i++) {
        const param_ref *p = &b->params_ref[i];
        rc = load_floats(f, p->name, b->params + p->offset, p->numel, err);
    }
    for (int i = 0; !rc && i < b->nbuffers; i++) {
        const buffer_ref *r = &b->buffers_ref[i];
        rc = r->is_count ? load_count(f, r->name, r->count, err)
                         : load_floats(f, r->name, r->data, r->numel, err);
    }
    return rc;
}

/* The training set's mean, when the checkpoint has it (older ones do not). */
static int load_data_mean(const st_file *f, anamo_model *m, anamo_err *err)
{
    if (!st_find(f, "data.mean"))
        return ANAMO_OK;
    if (!m->data_mean && !(m->data_mean = anamo_alloc((size_t)m->in_dim * sizeof(float))))
        return anamo_err_set(err, ANAMO_ERR_NOMEM, "%s: out of memory", st_path(f));
    return load_floats(f, "data.mean", m->data_mean, m->in_dim, err);
}

static int load_norm(const st_file *f, anamo_model *m, anamo_err *err)
{
    int rc = load_data_mean(f, m, err);
    if (rc)
        return rc;
    const char *s = st_meta_get(f, "anamo.standardize");
    m->standardize = s && !strcmp(s, "1");
    if (!m->standardize)
        return ANAMO_OK;
    rc = load_floats(f, "normalize.mean", m->norm_mean, m->in_dim, err);
    return rc ? rc : load_floats(f, "normalize.std", m->norm_std, m->in_dim, err);
}

/* The tensors a block built from spec would load are all in the file, F32 and of the right
 * size: checked on a plan of the block, before the model is allocated, so that metadata naming
 * a layer of millions of units over a file of a few kilobytes is refused, not allocated. */
static int check_block_tensors(const st_file *f, const char *name, const char *spec, int *c, int *h,
                               int *w, anamo_err *err)
{
    block plan;
    int rc = block_plan(&plan, name, spec, *c, *h, *w, err);
    for (int i = 0; !rc && i < plan.nparams_tensors; i++) {
        const param_ref *p = &plan.params_ref[i];
        const st_tensor *t = st_find(f, p->name);
        if (!t)
            rc = anamo_err_set(err, ANAMO_ERR_FORMAT, "%s: tensor '%s' is missing", st_path(f),
                               p->name);
        else if (t->dtype != ST_F32 || t->nbytes != (size_t)p->numel * sizeof(float))
            rc = anamo_err_set(err, ANAMO_ERR_FORMAT,
                               "%s: tensor '%s' is %s of %zu bytes; the metadata's %s '%.64s' "
                               "needs F32 of %lld values",
                               st_path(f), p->name, st_dtype_name(t->dtype), t->nbytes, name, spec,
                               (long long)p->numel);
    }
    *c = plan.out_c, *h = plan.out_h, *w = plan.out_w;
    return rc;
}

static int model_from_meta(const st_file *f, int max_batch, anamo_model **out, anamo_err *err)
{
    const char *fmt = st_meta_get(f, "format"), *shape = st_meta_get(f, "anamo.input_shape");
    const char *enc = st_meta_get(f, "anamo.encoder"), *dec = st_meta_get(f, "anamo.decoder");
    const char *binary = st_meta_get(f, "anamo.binary_codes");
    anamo_model_spec spec = {.encoder = enc,
                             .decoder = dec,
                             .max_batch = max_batch,
                             .binary_codes = binary && !strcmp(binary, "1")};
    if (!fmt || strcmp(fmt, CHECKPOINT_FORMAT) || !shape || !enc || !dec ||
        sscanf(shape, "%d,%d,%d", &spec.in_c, &spec.in_h, &spec.in_w) != 3)
        return anamo_err_set(
            err, ANAMO_ERR_FORMAT,
            "%s: not an anamo checkpoint (metadata 'format' = '%s', expected '%s')", st_path(f),
            fmt ? fmt : "(none)", CHECKPOINT_FORMAT);
    int c = spec.in_c, h = spec.in_h, w = spec.in_w;
    int rc = check_block_tensors(f, "encoder", enc, &c, &h, &w, err);
    if (!rc)
        rc = check_block_tensors(f, "decoder", dec, &c, &h, &w, err);
    if (!rc)
        rc = anamo_model_create(&spec, out, err);
    if (rc)
        return anamo_err_context(err, "%s", st_path(f));
    return ANAMO_OK;
}

int anamo_checkpoint_load_model(const char *path, int max_batch, anamo_model **out, anamo_err *err)
{
    *out = NULL;
    st_file *f;
    int rc = st_open(path, &f, err);
    if (rc)
        return rc;
    anamo_model *m = NULL;
    rc = model_from_meta(f, max_batch, &m, err);
    if (!rc)
        rc = load_block(f, &m->enc, err);
    if (!rc)
        rc = load_block(f, &m->dec, err);
    if (!rc)
        rc = load_norm(f, m, err);
    st_close(f);
    if (rc)
        anamo_model_free(m);
    else
        *out = m;
    return rc;
}

static int64_t json_int(const cJSON *o, const char *key, int *ok)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsNumber(v)) {
        *ok = 0;
        return 0;
    }
    return (int64_t)v->valuedouble;
}

static double json_double(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(v) ? v->valuedouble : 0.0;
}

static void parse_schedules(const cJSON *arr, train_progress *p, int *ok)
{
    int i = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, arr) {
        if (i == ANAMO_MAX_PHASES) {
            *ok = 0;
            return;
        }
        schedule_state *st = &p->sched[i++];
        st->lr = (float)json_double(e, "lr");
        double best = json_double(e, "best");
        st->best = best < 0 ? INFINITY : best;
        st->bad_epochs = (int)json_double(e, "bad_epochs");
        st->epochs = (int64_t)json_double(e, "epochs");
    }
}

static int parse_progress(const st_file *f, train_progress *p, anamo_err *err)
{
    const char *s = st_meta_get(f, "anamo.progress");
    cJSON *o = s ? cJSON_Parse(s) : NULL;
    int ok = o != NULL;
    p->pass = json_int(o, "pass", &ok);
    p->offset = json_int(o, "offset", &ok);
    p->phase_idx = (int)json_int(o, "phase_idx", &ok);
    p->phase_iters = json_int(o, "phase_iters", &ok);
    p->phase_samples = json_int(o, "phase_samples", &ok);
    p->iteration = json_int(o, "iteration", &ok);
    p->samples = json_int(o, "samples", &ok);
    p->steps[0] = json_int(o, "encoder_steps", &ok);
    p->steps[1] = json_int(o, "decoder_steps", &ok);
    p->opt_kind[0] = (int)json_int(o, "encoder_optimizer", &ok);
    p->opt_kind[1] = (int)json_int(o, "decoder_optimizer", &ok);
    p->elapsed = json_double(o, "elapsed");
    p->epoch_seconds = json_double(o, "epoch_seconds");
    p->weights_updated = json_double(o, "weights_updated");
    p->free_codes_ready = (int)json_double(o, "free_codes_ready");
    p->finished = (int)json_double(o, "finished");
    p->resampled = (int64_t)json_double(o, "resampled");
    p->lipschitz[0] = json_double(o, "encoder_lipschitz");
    p->lipschitz[1] = json_double(o, "decoder_lipschitz");
    /* checkpoints from before validation sets lack these: no best yet, not stopped */
    const cJSON *best = cJSON_GetObjectItemCaseSensitive(o, "best_validation");
    p->best_validation = cJSON_IsNumber(best) && best->valuedouble >= 0 ? best->valuedouble
                                                                        : INFINITY;
    p->best_epoch = (int64_t)json_double(o, "best_epoch");
    p->stopped_early = (int)json_double(o, "stopped_early");
    for (int k = 0; k < 2; k++) { /* checkpoints from before the counts: 0 */
        char key[32];
        snprintf(key, sizeof key, "%s_forward_samples", k ? "decoder" : "encoder");
        p->work[k].forward_samples = (int64_t)json_double(o, key);
        snprintf(key, sizeof key, "%s_backward_samples", k ? "decoder" : "encoder");
        p->work[k].backward_samples = (int64_t)json_double(o, key);
        snprintf(key, sizeof key, "%s_flop", k ? "decoder" : "encoder");
        p->work[k].flop = json_double(o, key);
    }
    parse_schedules(cJSON_GetObjectItemCaseSensitive(o, "schedules"), p, &ok);
    cJSON_Delete(o);
    if (!ok)
        return anamo_err_set(err, ANAMO_ERR_FORMAT,
                             "%s: metadata 'anamo.progress' is missing or incomplete", st_path(f));
    return ANAMO_OK;
}

/* Resampling's activity window; a checkpoint of a run without resampling has none (zeros). */
static int load_last_active(const st_file *f, int64_t *dst, int64_t n, anamo_err *err)
{
    const st_tensor *t = st_find(f, "train.last_active");
    if (!t)
        return ANAMO_OK;
    if (t->dtype != ST_I64 || t->nbytes != (size_t)n * sizeof *dst)
        return anamo_err_set(err, ANAMO_ERR_FORMAT,
                             "%s: tensor 'train.last_active' is %s of %zu bytes; expected I64 of "
                             "%lld values",
                             st_path(f), st_dtype_name(t->dtype), t->nbytes, (long long)n);
    memcpy(dst, t->data, t->nbytes);
    return ANAMO_OK;
}

/* Whether some phase of the run steps block `which` (0 encoder, 1 decoder) with kind: its
 * compiled optimizer, or the fixed ones of ANAMO (inner_enter_phase: FISTA on the encoder,
 * the accelerated method on the decoder) and free codes (freecodes_enter_phase and the fit:
 * the accelerated method on the decoder, Adam on the encoder). */
static int run_steps_block_with(const anamo_trainer *t, int which, int kind)
{
    for (int i = 0; i < t->spec.nphases; i++) {
        const anamo_phase_kind b = t->spec.phases[i].kind;
        if (b == ANAMO_PHASE_ANAMO && kind == (which ? OPTIM_ACCELERATED : OPTIM_FISTA))
            return 1;
        if (b == ANAMO_PHASE_FREECODES && kind == (which ? OPTIM_ACCELERATED : OPTIM_ADAM))
            return 1;
        _Static_assert(ANAMO_PHASE_ENCODER == (int)ANAMO_ENCODER &&
                           ANAMO_PHASE_DECODER == (int)ANAMO_DECODER,
                       "a NAM phase's kind is its block's number");
        const int steps_it = b == ANAMO_PHASE_JOINT || (int)b == which;
        const int own_optimizer = b != ANAMO_PHASE_ANAMO && b != ANAMO_PHASE_FREECODES;
        if (own_optimizer && steps_it && (int)t->rt[i].opt.kind == kind)
            return 1;
    }
    return 0;
}

/* A block's optimizer state as the checkpoint holds it: of a kind that some phase of this run
 * steps the block with (else the state would be read as another method's, or dropped without a
 * word), and of that kind's size. A checkpoint of a run configured with `nesterov` before that
 * name went to torch's Nesterov momentum holds the accelerated method's state (x_j, x_{j−1},
 * s_j): its config now asks for something else, and the message says what to write instead. */
static int load_state(const st_file *f, const anamo_trainer *tr, block *b, int which, int kind,
                      anamo_err *err)
{
    char name[64];
    snprintf(name, sizeof name, "optim.%s.state", b->name);
    if (kind < 0)
        return block_alloc_state(b, 0, err);
    if (kind >= OPTIM_COUNT)
        return anamo_err_set(err, ANAMO_ERR_FORMAT,
                             "%s: the %s's optimizer is number %d, which "
                             "this anamo does not know",
                             st_path(f), b->name, kind);
    if (!run_steps_block_with(tr, which, kind))
        return anamo_err_set(err, ANAMO_ERR_CONFIG,
                             "%s: the %s's optimizer state is %s's, but no phase of this run steps "
                             "the %s with %s%s",
                             st_path(f), b->name, optim_name((optim_kind)kind), b->name,
                             optim_name((optim_kind)kind),
                             kind == OPTIM_ACCELERATED
                                 ? " (a run configured with 'nesterov' before it was renamed "
                                   "'accelerated' holds this: resume it with optimizer = "
                                   "accelerated, or start it again for torch's nesterov)"
                                 : ": resume with the optimizer it was trained with");
    const int64_t n = optim_state_floats((optim_kind)kind, b->nparams);
    const st_tensor *t = st_find(f, name);
    if (n == 0 && !t)
        return block_alloc_state(b, 0, err);
    int rc = block_alloc_state(b, n, err);
    return rc ? rc : load_floats(f, name, b->opt_state, n, err);
}

int anamo_checkpoint_restore(anamo_model *m, anamo_trainer *t, const char *path, anamo_err *err)
{
    st_file *f;
    int rc = st_open(path, &f, err);
    if (rc)
        return rc;
    train_progress p = t->p; /* keys a checkpoint lacks keep this run's values */
    rc = load_block(f, &m->enc, err);
    if (!rc)
        rc = load_block(f, &m->dec, err);
    if (!rc)
        rc = load_norm(f, m, err);
    if (!rc)
        rc = parse_progress(f, &p, err);
    const char *binary = st_meta_get(f, "anamo.binary_codes");
    if (!rc && binary && !strcmp(binary, "1"))
        m->binary_codes = 1;
    if (!rc && (p.phase_idx < 0 || p.phase_idx >= t->spec.nphases || p.offset < 0 ||
                p.offset > t->train->n))
        rc = anamo_err_set(err, ANAMO_ERR_FORMAT,
                           "%s: progress (phase %d, offset %lld) does not fit this run's %d phases "
                           "and %lld training samples",
                           path, p.phase_idx, (long long)p.offset, t->spec.nphases,
                           (long long)t->train->n);
    if (!rc && t->free_codes && p.free_codes_ready)
        rc = load_floats(f, "train.free_codes", t->free_codes, t->train->n * m->enc.out_dim, err);
    if (!rc && t->last_active)
        rc = load_last_active(f, t->last_active, m->enc.out_dim, err);
    if (!rc)
        rc = load_state(f, t, &m->enc, 0, p.opt_kind[0], err);
    if (!rc)
        rc = load_state(f, t, &m->dec, 1, p.opt_kind[1], err);
    st_close(f);
    if (rc)
        return rc;
    t->p = p;
    t->phase_ready = 0;
    t->codes_valid = 0;
    return ANAMO_OK;
}

char *anamo_checkpoint_config(const char *path, anamo_err *err)
{
    st_file *f;
    if (st_open(path, &f, err))
        return NULL;
    const char *s = st_meta_get(f, "config");
    char *copy = s ? strdup(s) : NULL;
    if (!s)
        anamo_err_set(err, ANAMO_ERR_FORMAT, "%s: no 'config' in the metadata", path);
    st_close(f);
    return copy;
}
