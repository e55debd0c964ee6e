/* run.c — the Run type: a config trained as `anamo train` trains it (anamo_config_load, the
 * arm's, [quick]'s and the caller's overrides, anamo_run_open, train.threads, anamo_trainer_run,
 * then anamo_evaluate of train, test and validation under the same thread count), with the GIL
 * released while C code trains. The epoch hook takes the GIL back to record the epoch and call
 * the Python callback; a step hook takes it a few times a second to let Ctrl-C through. */
#include "pyanamo.h"

#include <omp.h>
#include <stdlib.h>
#include <string.h>

/* How often (training seconds) the step hook takes the GIL to look for a signal. */
#define SIGNAL_CHECK_SECONDS 0.1

typedef struct RunObject {
    PyObject_HEAD anamo_config *config;
    anamo_run run;
    int opened;              /* run holds what anamo_run_open opened */
    char *config_text;       /* anamo_config_text: what checkpoints store */
    PyObject *history;       /* list of epoch dicts */
    PyObject *metrics;       /* dict, once trained */
    PyThread_type_lock lock; /* the lock of every Model over run.model (model.c) */
    int stopped;             /* the callback stopped the run */
} RunObject;

/* ---- the hooks ----------------------------------------------------------------------------- */

typedef struct train_ctx {
    PyThreadState *ts;  /* this thread's state while the GIL is released */
    PyObject *callback; /* or Py_None */
    PyObject *history;
    int stopped;       /* the callback returned a true value */
    int failed;        /* a Python exception is pending: the callback's, or a signal's */
    double last_check; /* training seconds at the last look for a signal */
} train_ctx;

static int put(PyObject *d, const char *key, PyObject *v)
{
    int rc = v ? PyDict_SetItemString(d, key, v) : -1;
    Py_XDECREF(v);
    return rc;
}

/* The anamo_epoch_row fields; test and validation as nested dicts when there. */
static PyObject *epoch_dict(const anamo_epoch_row *r)
{
    PyObject *d = PyDict_New();
    if (!d)
        return NULL;
#define F(name) put(d, #name, PyFloat_FromDouble(r->name))
#define I(name) put(d, #name, PyLong_FromLongLong((long long)r->name))
    int bad = I(epoch) || put(d, "phase", PyUnicode_FromString(r->phase ? r->phase : "")) ||
              F(train_loss) || F(train_recon_loss) || F(train_code_l1) ||
              (r->has_test && put(d, "test", pyanamo_metrics_dict(&r->test))) ||
              (r->has_validation && put(d, "validation", pyanamo_metrics_dict(&r->validation))) ||
              F(flop) || F(seconds) || I(weights_updated) || I(encoder_steps) || I(decoder_steps) ||
              I(resampled);
#undef F
#undef I
    if (bad)
        Py_CLEAR(d);
    return d;
}

static int on_epoch(void *p, const anamo_epoch_row *row)
{
    train_ctx *c = p;
    PyEval_RestoreThread(c->ts);
    PyObject *d = epoch_dict(row);
    int failed = !d || PyList_Append(c->history, d);
    if (!failed && c->callback != Py_None) {
        PyObject *res = PyObject_CallOneArg(c->callback, d);
        int stop = res ? PyObject_IsTrue(res) : -1;
        Py_XDECREF(res);
        failed = stop < 0;
        c->stopped = stop > 0;
    }
    Py_XDECREF(d);
    if (!failed && PyErr_CheckSignals())
        failed = 1;
    c->failed |= failed;
    c->ts = PyEval_SaveThread();
    return failed || c->stopped;
}

static int on_step(void *p, int64_t iteration, double elapsed)
{
    train_ctx *c = p;
    if (elapsed - c->last_check < SIGNAL_CHECK_SECONDS)
        return 0;
    c->last_check = elapsed;
    PyEval_RestoreThread(c->ts);
    int failed = PyErr_CheckSignals() != 0;
    c->ts = PyEval_SaveThread();
    c->failed |= failed;
    return failed;
}

/* ---- the run ------------------------------------------------------------------------------- */

static void run_dealloc(RunObject *self)
{
    if (self->lock)
        PyThread_free_lock(self->lock);
    if (self->opened)
        anamo_run_close(&self->run);
    anamo_config_free(self->config);
    free(self->config_text);
    Py_CLEAR(self->history);
    Py_CLEAR(self->metrics);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* The config with the arm's, [quick]'s and the overrides applied, in that order. */
static int configure(RunObject *self, const char *path, PyObject *overrides, const char *arm,
                     int quick, anamo_err *err)
{
    int rc = anamo_config_load(path, &self->config, err);
    if (!rc && arm)
        rc = anamo_config_use_arm(self->config, arm, err);
    if (!rc && quick)
        rc = anamo_config_use_quick(self->config, err);
    const Py_ssize_t n = PySequence_Fast_GET_SIZE(overrides);
    for (Py_ssize_t i = 0; !rc && i < n; i++) {
        PyObject *item = PySequence_Fast_GET_ITEM(overrides, i);
        const char *set = PyUnicode_Check(item) ? PyUnicode_AsUTF8(item) : NULL;
        if (!set) {
            if (!PyErr_Occurred())
                PyErr_Format(PyExc_TypeError,
                             "overrides[%zd]: expected 'section.key=value', "
                             "got %.100s",
                             i, Py_TYPE(item)->tp_name);
            return -1;
        }
        rc = anamo_config_set(self->config, set, "overrides", err);
    }
    if (!rc && !(self->config_text = anamo_config_text(self->config)))
        rc = anamo_err_set(err, ANAMO_ERR_NOMEM, "%s: out of memory", path);
    return rc;
}

/* After the loop: a run the callback stopped ends as a finished one would (anamo_trainer_run
 * leaves that to its caller on a stop); then the final metrics. */
static int finish(RunObject *self, const train_ctx *ctx, int train_rc, anamo_err *train_err,
                  anamo_metrics mt[3], anamo_err *err)
{
    anamo_run *r = &self->run;
    int rc = train_rc;
    if (train_rc && ctx->stopped)
        rc = anamo_trainer_finish(r->trainer, err);
    else if (train_rc)
        *err = *train_err;
    const anamo_eval_spec es = anamo_trainer_eval_spec(r->trainer);
    if (!rc)
        rc = anamo_evaluate(r->model, &r->train, &es, &mt[0], err);
    if (!rc && r->has_test)
        rc = anamo_evaluate(r->model, &r->test, &es, &mt[1], err);
    if (!rc && r->has_validation)
        rc = anamo_evaluate(r->model, &r->validation, &es, &mt[2], err);
    return rc;
}

static PyObject *metrics_dict(RunObject *self, const anamo_metrics mt[3])
{
    const anamo_run *r = &self->run;
    PyObject *d = PyDict_New();
    if (!d || put(d, "train", pyanamo_metrics_dict(&mt[0])) ||
        (r->has_test && put(d, "test", pyanamo_metrics_dict(&mt[1]))) ||
        (r->has_validation && put(d, "validation", pyanamo_metrics_dict(&mt[2]))) ||
        put(d, "epochs", PyLong_FromLongLong((long long)anamo_trainer_epochs_done(r->trainer))) ||
        put(d, "seconds", PyFloat_FromDouble(anamo_trainer_seconds(r->trainer))))
        Py_CLEAR(d);
    return d;
}

/* Trains the opened run; 0, or -1 with an exception set. */
static int train_opened(RunObject *self, PyObject *callback)
{
    train_ctx ctx = {.callback = callback, .history = self->history};
    anamo_train_hooks hooks = {.ctx = &ctx, .on_epoch = on_epoch, .on_step = on_step};
    anamo_err train_err = {0}, err = {0};
    anamo_metrics mt[3];
    int rc;
    const int saved_threads = omp_get_max_threads();
    ctx.ts = PyEval_SaveThread();
    if (self->run.threads > 0)
        omp_set_num_threads(self->run.threads);
    const int train_rc = anamo_trainer_run(self->run.trainer, &hooks, &train_err);
    /* the final evaluation under the thread count training had, as the anamo command does */
    rc = ctx.failed ? -1 : finish(self, &ctx, train_rc, &train_err, mt, &err);
    omp_set_num_threads(saved_threads);
    PyEval_RestoreThread(ctx.ts);
    if (ctx.failed)
        return -1; /* the callback's exception, or KeyboardInterrupt */
    if (rc) {
        pyanamo_raise(&err);
        return -1;
    }
    self->stopped = ctx.stopped;
    self->metrics = metrics_dict(self, mt);
    return self->metrics ? 0 : -1;
}

PyObject *pyanamo_train(PyObject *module, PyObject *args, PyObject *kwargs)
{
    static char *kw[] = {"config", "overrides", "arm", "quick", "data_root", "callback", NULL};
    PyObject *path_bytes = NULL, *overrides = NULL, *callback = Py_None;
    const char *arm = NULL, *root = NULL;
    int quick = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O&|OzpzO", kw, PyUnicode_FSConverter,
                                     &path_bytes, &overrides, &arm, &quick, &root, &callback))
        return NULL;
    PyObject *seq = overrides && overrides != Py_None
                        ? PySequence_Fast(overrides, "overrides: expected a list of "
                                                     "'section.key=value' strings")
                        : PyTuple_New(0);
    RunObject *self = seq ? (RunObject *)pyanamo_RunType.tp_alloc(&pyanamo_RunType, 0) : NULL;
    if (self && callback != Py_None && !PyCallable_Check(callback)) {
        pyanamo_raise_msg(ANAMO_ERR_ARG, "train: callback %.100s is not callable",
                          Py_TYPE(callback)->tp_name);
        Py_CLEAR(self);
    }
    if (self && (!(self->history = PyList_New(0)) || !(self->lock = PyThread_allocate_lock()))) {
        Py_CLEAR(self);
        PyErr_NoMemory();
    }
    anamo_err err = {0};
    int rc = 0;
    if (self)
        rc = configure(self, PyBytes_AS_STRING(path_bytes), seq, arm, quick, &err);
    if (self && !rc) {
        Py_BEGIN_ALLOW_THREADS rc = anamo_run_open(self->config, root, &self->run, &err);
        Py_END_ALLOW_THREADS self->opened = rc == ANAMO_OK;
    }
    if (self && rc) {
        if (rc > 0)
            pyanamo_raise(&err);
        Py_CLEAR(self);
    }
    if (self && train_opened(self, callback))
        Py_CLEAR(self);
    Py_XDECREF(seq);
    Py_DECREF(path_bytes);
    return (PyObject *)self;
}

/* ---- the Run's attributes ------------------------------------------------------------------ */

/* A new Model over the run's model each time, holding a reference to the run (so no cycle);
 * they share the run's lock. */
static PyObject *run_get_model(RunObject *self, void *unused)
{
    const anamo_eval_spec es = anamo_trainer_eval_spec(self->run.trainer);
    return pyanamo_model_new(self->run.model, (PyObject *)self, &es, "run", self->lock);
}

/* save(path): a checkpoint of the run (weights, optimizer states, progress, config text), as
 * the anamo command writes model.safetensors */
static PyObject *run_save(RunObject *self, PyObject *arg)
{
    PyObject *path_bytes = NULL;
    if (!PyUnicode_FSConverter(arg, &path_bytes))
        return NULL;
    const char *path = PyBytes_AS_STRING(path_bytes);
    anamo_err err = {0};
    int rc;
    Py_BEGIN_ALLOW_THREADS rc = anamo_checkpoint_save(self->run.model, self->run.trainer,
                                                      self->config_text, path, &err);
    Py_END_ALLOW_THREADS Py_DECREF(path_bytes);
    if (rc)
        return pyanamo_raise(&err);
    Py_RETURN_NONE;
}

/* config_get(section, key) -> the effective value (str) or None */
static PyObject *run_config_get(RunObject *self, PyObject *args)
{
    const char *section, *key;
    if (!PyArg_ParseTuple(args, "ss", &section, &key))
        return NULL;
    const char *v = anamo_config_get(self->config, section, key);
    if (!v)
        Py_RETURN_NONE;
    return PyUnicode_FromString(v);
}

static PyObject *run_getattr_str(const char *s) { return PyUnicode_FromString(s ? s : ""); }
static PyObject *run_config_text(RunObject *self, void *u)
{
    return run_getattr_str(self->config_text);
}
static PyObject *run_encoder(RunObject *self, void *u)
{
    return run_getattr_str(self->run.encoder);
}
static PyObject *run_decoder(RunObject *self, void *u)
{
    return run_getattr_str(self->run.decoder);
}
static PyObject *run_scheme(RunObject *self, void *u) { return run_getattr_str(self->run.scheme); }
static PyObject *run_metrics(RunObject *self, void *u)
{
    return Py_NewRef(self->metrics ? self->metrics : Py_None);
}
static PyObject *run_history(RunObject *self, void *u) { return Py_NewRef(self->history); }
static PyObject *run_stopped(RunObject *self, void *u) { return PyBool_FromLong(self->stopped); }
static PyObject *run_threads(RunObject *self, void *u)
{
    return PyLong_FromLong(self->run.threads);
}

static PyMethodDef RUN_METHODS[] = {{"save", (PyCFunction)run_save, METH_O,
                                     "save(path): writes the run's checkpoint"},
                                    {"config_get", (PyCFunction)run_config_get, METH_VARARGS,
                                     "config_get(section, key) -> the effective value, or None"},
                                    {NULL, NULL, 0, NULL}};

static PyGetSetDef RUN_GETSET[] = {
    {"metrics", (getter)run_metrics, NULL, "final metrics", NULL},
    {"history", (getter)run_history, NULL, "one dict per epoch", NULL},
    {"model", (getter)run_get_model, NULL, "the trained Model", NULL},
    {"stopped", (getter)run_stopped, NULL, "the callback stopped the run", NULL},
    {"config_text", (getter)run_config_text, NULL, "the resolved config (INI)", NULL},
    {"encoder", (getter)run_encoder, NULL, "the encoder's layer list", NULL},
    {"decoder", (getter)run_decoder, NULL, "the decoder's layer list", NULL},
    {"scheme", (getter)run_scheme, NULL, "joint | nam | anamo | freecodes", NULL},
    {"threads", (getter)run_threads, NULL, "train.threads (0: OpenMP's default)", NULL},
    {NULL, NULL, NULL, NULL, NULL}};

PyTypeObject pyanamo_RunType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "anamo._anamo.Run",
    .tp_doc = "A trained run: its model, trainer, data and metrics.",
    .tp_basicsize = sizeof(RunObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_dealloc = (destructor)run_dealloc,
    .tp_methods = RUN_METHODS,
    .tp_getset = RUN_GETSET,
};
