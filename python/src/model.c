/* model.c — the Model type: a trained autoencoder's three maps on NumPy arrays (anamo_encode,
 * anamo_decode, anamo_reconstruct; bytes through anamo_dataset_wrap and the dataset maps, so
 * that they are scaled by 1/255 as training scales them), its named tensors, its layers and
 * its evaluation. A model's forward buffers are shared by its calls: a lock lets one call run
 * at a time, and the GIL is released while it runs. */
#include "pyanamo.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_MAX_BATCH 256 /* as the anamo command loads checkpoints (cli/common.c) */

/* ---- life ---------------------------------------------------------------------------------- */

PyObject *pyanamo_model_new(anamo_model *m, PyObject *owner, const anamo_eval_spec *eval,
                            const char *source, PyThread_type_lock lock)
{
    ModelObject *self = PyObject_New(ModelObject, &pyanamo_ModelType);
    if (!self) {
        if (!owner)
            anamo_model_free(m);
        return NULL;
    }
    self->m = m;
    self->owner = owner;
    Py_XINCREF(owner);
    self->eval = *eval;
    snprintf(self->source, sizeof self->source, "%s", source);
    self->own_lock = lock == NULL;
    self->lock = lock ? lock : PyThread_allocate_lock();
    if (!self->lock) {
        Py_DECREF(self);
        return PyErr_NoMemory();
    }
    return (PyObject *)self;
}

static void model_dealloc(ModelObject *self)
{
    if (self->lock && self->own_lock)
        PyThread_free_lock(self->lock);
    if (self->owner)
        Py_DECREF(self->owner);
    else
        anamo_model_free(self->m);
    PyObject_Free(self);
}

/* The lock, waiting for it with the GIL released. */
static void lock_model(ModelObject *self)
{
    if (!PyThread_acquire_lock(self->lock, NOWAIT_LOCK)) {
        Py_BEGIN_ALLOW_THREADS PyThread_acquire_lock(self->lock, WAIT_LOCK);
        Py_END_ALLOW_THREADS
    }
}

/* The objective a checkpoint was trained with, from its stored config, as `anamo eval` reads
 * it (cli/common.c): loss.type, loss.lambda, loss.penalty and train.jacobian_samples (0 there:
 * none); without a readable config, MSE with no penalty. */
/* The objective the checkpoint was trained with (the library's reading of its stored config:
 * MSE, λ 0 and ℓ1 when there is none). */
static anamo_eval_spec checkpoint_objective(const char *path)
{
    anamo_eval_spec spec;
    anamo_checkpoint_eval_spec(path, &spec, NULL);
    return spec;
}

PyObject *pyanamo_load(PyObject *self, PyObject *args, PyObject *kwargs)
{
    static char *kw[] = {"path", "max_batch", NULL};
    PyObject *path_bytes = NULL;
    int max_batch = DEFAULT_MAX_BATCH;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O&|i", kw, PyUnicode_FSConverter, &path_bytes,
                                     &max_batch))
        return NULL;
    const char *path = PyBytes_AS_STRING(path_bytes);
    anamo_model *m = NULL;
    anamo_err err = {0};
    anamo_eval_spec spec;
    int rc;
    Py_BEGIN_ALLOW_THREADS rc = max_batch < 1
                                    ? anamo_err_set(&err, ANAMO_ERR_ARG,
                                                    "load: max_batch %d (at least 1)", max_batch)
                                    : anamo_checkpoint_load_model(path, max_batch, &m, &err);
    if (!rc)
        spec = checkpoint_objective(path);
    Py_END_ALLOW_THREADS PyObject *out = rc ? pyanamo_raise(&err)
                                            : pyanamo_model_new(m, NULL, &spec, path, NULL);
    Py_DECREF(path_bytes);
    return out;
}

/* ---- the maps ------------------------------------------------------------------------------ */

typedef enum map_kind { MAP_ENCODE, MAP_DECODE, MAP_RECONSTRUCT } map_kind;

/* A per-sample shape for wrapping n rows of r as a dataset: the array's own (c, h, w). */
static int sample_shape(const py_rows *r, int *c, int *h, int *w)
{
    const int nd = PyArray_NDIM(r->arr);
    npy_intp d[3] = {1, 1, 1};
    for (int i = 1; i < nd; i++)
        d[i - 1] = PyArray_DIM(r->arr, i);
    if (d[0] > INT_MAX || d[1] > INT_MAX || d[2] > INT_MAX)
        return -1;
    *c = (int)d[0], *h = (int)d[1], *w = (int)d[2];
    return 0;
}

/* Bytes: a dataset over the caller's memory and the dataset maps, which scale by 1/255. */
static int map_bytes(ModelObject *self, const py_rows *r, map_kind k, const char *what, float *out,
                     anamo_err *err)
{
    int c, h, w;
    anamo_dataset ds;
    if (sample_shape(r, &c, &h, &w))
        return anamo_err_set(err, ANAMO_ERR_ARG, "%s: a dimension over %d", what, INT_MAX);
    int rc = anamo_dataset_wrap(&ds, r->data, ANAMO_U8, r->n, c, h, w, NULL, what, err);
    if (!rc)
        rc = k == MAP_ENCODE ? anamo_model_encode(self->m, &ds, 0, r->n, out, err)
                             : anamo_model_reconstruct(self->m, &ds, 0, r->n, out, err);
    return rc;
}

static PyObject *run_map(ModelObject *self, PyObject *x, map_kind k)
{
    static const char *const WHAT[] = {"encode: x", "decode: codes", "reconstruct: x"};
    const char *what = WHAT[k];
    py_rows r;
    if (pyanamo_rows(x, what, k != MAP_DECODE, &r))
        return NULL;
    const int64_t in_dim = anamo_model_input_dim(self->m), code_dim = anamo_model_code_dim(self->m);
    const int64_t want = k == MAP_DECODE ? code_dim : in_dim;
    const int64_t out_dim = k == MAP_ENCODE ? code_dim : in_dim;
    if (r.dim != want) {
        pyanamo_rows_release(&r);
        return pyanamo_raise_msg(ANAMO_ERR_ARG,
                                 "%s: rows of %lld values, the model's %s has "
                                 "%lld",
                                 what, (long long)r.dim, k == MAP_DECODE ? "code" : "input",
                                 (long long)want);
    }
    /* reconstruct gives the input's shape back; encode and decode give rows */
    npy_intp shape[4] = {(npy_intp)r.n, (npy_intp)out_dim};
    int nd = 2;
    if (k == MAP_RECONSTRUCT) {
        nd = PyArray_NDIM(r.arr);
        memcpy(shape, PyArray_DIMS(r.arr), (size_t)nd * sizeof *shape);
    }
    PyArrayObject *out = pyanamo_new_f32(nd, shape);
    if (!out || r.n == 0) {
        pyanamo_rows_release(&r);
        return (PyObject *)out;
    }
    float *o = PyArray_DATA(out);
    anamo_err err = {0};
    int rc;
    lock_model(self);
    Py_BEGIN_ALLOW_THREADS if (r.dtype == ANAMO_U8) rc = map_bytes(self, &r, k, what, o, &err);
    else if (k == MAP_ENCODE) rc = anamo_encode(self->m, r.data, r.n, r.dim, o, out_dim, &err);
    else if (k == MAP_DECODE) rc = anamo_decode(self->m, r.data, r.n, r.dim, o, out_dim, &err);
    else rc = anamo_reconstruct(self->m, r.data, r.n, r.dim, o, out_dim, &err);
    Py_END_ALLOW_THREADS PyThread_release_lock(self->lock);
    pyanamo_rows_release(&r);
    if (rc) {
        Py_DECREF(out);
        return pyanamo_raise(&err);
    }
    return (PyObject *)out;
}

static PyObject *model_encode(ModelObject *self, PyObject *x)
{
    return run_map(self, x, MAP_ENCODE);
}
static PyObject *model_decode(ModelObject *self, PyObject *h)
{
    return run_map(self, h, MAP_DECODE);
}
static PyObject *model_reconstruct(ModelObject *self, PyObject *x)
{
    return run_map(self, x, MAP_RECONSTRUCT);
}

/* ---- evaluation ---------------------------------------------------------------------------- */

/* evaluate(x_or_spec, data_root=None) -> dict of anamo_metrics */
static PyObject *model_evaluate(ModelObject *self, PyObject *args, PyObject *kwargs)
{
    static char *kw[] = {"data", "data_root", NULL};
    PyObject *data;
    const char *root = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O|z", kw, &data, &root))
        return NULL;
    anamo_dataset ds;
    anamo_err err = {0};
    py_rows r = {0};
    int rc, c, h, w;
    if (PyUnicode_Check(data)) {
        const char *spec = PyUnicode_AsUTF8(data);
        if (!spec)
            return NULL;
        Py_BEGIN_ALLOW_THREADS rc = anamo_dataset_open(spec, root, &ds, &err);
        Py_END_ALLOW_THREADS
    } else {
        if (pyanamo_rows(data, "evaluate: x", 1, &r))
            return NULL;
        rc = sample_shape(&r, &c, &h, &w)
                 ? anamo_err_set(&err, ANAMO_ERR_ARG, "evaluate: x: a dimension over %d", INT_MAX)
                 : anamo_dataset_wrap(&ds, r.data, r.dtype, r.n, c, h, w, NULL, "evaluate: x",
                                      &err);
    }
    anamo_metrics mt;
    if (!rc) {
        lock_model(self);
        Py_BEGIN_ALLOW_THREADS rc = anamo_evaluate(self->m, &ds, &self->eval, &mt, &err);
        Py_END_ALLOW_THREADS PyThread_release_lock(self->lock);
        anamo_dataset_free(&ds);
    }
    pyanamo_rows_release(&r);
    return rc ? pyanamo_raise(&err) : pyanamo_metrics_dict(&mt);
}

static PyObject *model_eval_spec(ModelObject *self, void *unused)
{
    static const char *const LOSS[] = {"mse", "mse_sum", "bce"};
    const anamo_eval_spec *e = &self->eval;
    return Py_BuildValue("{s:s,s:d,s:s,s:L}", "loss", LOSS[e->loss <= 2 ? e->loss : 0], "lambda",
                         (double)e->lambda, "penalty",
                         e->penalty == ANAMO_PENALTY_DECODER_L1 ? "decoder_l1" : "l1",
                         "jacobian_samples", (long long)e->jacobian_samples);
}

/* ---- tensors ------------------------------------------------------------------------------- */

static const char *const ROLE_NAMES[] = {"parameter", "buffer", "count", "normalize"};

/* A copy of the tensor a view shows: float32 of its shape, or a 0-d int64 for a count. */
static PyObject *view_array(const anamo_tensor_view *v)
{
    if (v->role == ANAMO_ROLE_COUNT) {
        PyArrayObject *a = (PyArrayObject *)PyArray_SimpleNew(0, NULL, NPY_INT64);
        if (a)
            *(npy_int64 *)PyArray_DATA(a) = v->count ? *v->count : 0;
        return (PyObject *)a;
    }
    npy_intp shape[ANAMO_MAX_DIMS];
    for (int i = 0; i < v->ndim; i++)
        shape[i] = (npy_intp)v->shape[i];
    PyArrayObject *a = pyanamo_new_f32(v->ndim, shape);
    if (a && v->numel > 0)
        memcpy(PyArray_DATA(a), v->data, (size_t)v->numel * sizeof(float));
    return (PyObject *)a;
}

/* tensors() -> [(name, role, array copy), ...] in state_dict order, every role */
static PyObject *model_tensors(ModelObject *self, PyObject *unused)
{
    const int count = anamo_model_tensor_count(self->m);
    PyObject *list = PyList_New(0);
    anamo_err err = {0};
    lock_model(self);
    for (int i = 0; list && i < count; i++) {
        anamo_tensor_view v;
        if (anamo_model_tensor_at(self->m, i, &v, &err)) {
            Py_CLEAR(list);
            pyanamo_raise(&err);
            break;
        }
        PyObject *a = view_array(&v);
        PyObject *item = a ? Py_BuildValue("(ssN)", v.name,
                                           ROLE_NAMES[(unsigned)v.role < 4 ? v.role : 0], a)
                           : NULL;
        if (!item || PyList_Append(list, item))
            Py_CLEAR(list);
        Py_XDECREF(item);
    }
    PyThread_release_lock(self->lock);
    return list;
}

static PyObject *model_tensor(ModelObject *self, PyObject *arg)
{
    const char *name = PyUnicode_Check(arg) ? PyUnicode_AsUTF8(arg) : NULL;
    if (!name)
        return PyErr_Occurred() ? NULL
                                : pyanamo_raise_msg(ANAMO_ERR_ARG,
                                                    "tensor: the name must be a "
                                                    "str, not %.100s",
                                                    Py_TYPE(arg)->tp_name);
    anamo_tensor_view v;
    anamo_err err = {0};
    lock_model(self);
    int rc = anamo_model_tensor(self->m, name, &v, &err);
    PyObject *out = rc ? pyanamo_raise(&err) : view_array(&v);
    PyThread_release_lock(self->lock);
    return out;
}

/* set_tensor(name, value): copies value (of the tensor's shape) into the model */
static PyObject *model_set_tensor(ModelObject *self, PyObject *args)
{
    const char *name;
    PyObject *value;
    if (!PyArg_ParseTuple(args, "sO", &name, &value))
        return NULL;
    anamo_tensor_view v;
    anamo_err err = {0};
    lock_model(self);
    int rc = anamo_model_tensor(self->m, name, &v, &err);
    PyThread_release_lock(self->lock);
    if (rc)
        return pyanamo_raise(&err);
    const int count = v.role == ANAMO_ROLE_COUNT;
    PyArrayObject *a = (PyArrayObject *)PyArray_FROM_OTF(value, count ? NPY_INT64 : NPY_FLOAT32,
                                                         NPY_ARRAY_IN_ARRAY | NPY_ARRAY_FORCECAST);
    if (!a) {
        char prefix[300];
        snprintf(prefix, sizeof prefix, "set_tensor: %.200s", name);
        return pyanamo_reraise(prefix);
    }
    int same = PyArray_NDIM(a) == (count ? 0 : v.ndim);
    for (int i = 0; same && !count && i < v.ndim; i++)
        same = PyArray_DIM(a, i) == v.shape[i];
    if (!same) {
        char got[128], want[128] = "()";
        pyanamo_shape_text(a, got, sizeof got);
        size_t o = 0;
        for (int i = 0; !count && i < v.ndim; i++)
            o += (size_t)snprintf(want + o, sizeof want - o, "%s%lld", i ? ", " : "(",
                                  (long long)v.shape[i]);
        if (!count)
            snprintf(want + o, sizeof want - o, v.ndim == 1 ? ",)" : ")");
        Py_DECREF(a);
        return pyanamo_raise_msg(ANAMO_ERR_ARG,
                                 "set_tensor: %s: an array of shape %s, the "
                                 "model's is %s",
                                 name, got, want);
    }
    lock_model(self);
    if (count && v.count)
        *v.count = *(npy_int64 *)PyArray_DATA(a);
    else if (!count)
        memcpy(v.data, PyArray_DATA(a), (size_t)v.numel * sizeof(float));
    PyThread_release_lock(self->lock);
    Py_DECREF(a);
    Py_RETURN_NONE;
}

/* ---- layers -------------------------------------------------------------------------------- */

static PyObject *model_layers(ModelObject *self, PyObject *unused)
{
    static const char *const KINDS[] = {"linear",    "activation", "conv2d",   "convt2d",
                                        "batchnorm", "flatten",    "unflatten"};
    PyObject *list = PyList_New(0);
    for (int b = 0; list && b < 2; b++)
        for (int i = 0; list && i < anamo_model_layer_count(self->m, b); i++) {
            anamo_layer_info l;
            anamo_err err = {0};
            if (anamo_model_layer(self->m, b, i, &l, &err)) {
                Py_CLEAR(list);
                return pyanamo_raise(&err);
            }
            PyObject *d = Py_BuildValue(
                "{s:s,s:s,s:s,s:i,s:i,s:(iii),s:(iii),s:L,s:L,s:i,s:i,s:i,s:i,s:L}", "name", l.name,
                "item", l.item, "kind", KINDS[(unsigned)l.kind < 7 ? l.kind : 1], "block", l.block,
                "index", l.index, "in_shape", l.in_c, l.in_h, l.in_w, "out_shape", l.out_c, l.out_h,
                l.out_w, "in_dim", (long long)l.in_dim, "out_dim", (long long)l.out_dim, "kernel",
                l.kernel, "stride", l.stride, "padding", l.padding, "output_padding",
                l.output_padding, "params", (long long)l.params);
            if (!d || PyList_Append(list, d))
                Py_CLEAR(list);
            Py_XDECREF(d);
        }
    return list;
}

static PyObject *model_input_dim(ModelObject *self, void *unused)
{
    return PyLong_FromLongLong((long long)anamo_model_input_dim(self->m));
}

static PyObject *model_code_dim(ModelObject *self, void *unused)
{
    return PyLong_FromLongLong((long long)anamo_model_code_dim(self->m));
}

static PyObject *model_conv_impl(ModelObject *self, void *unused)
{
    char text[1024];
    anamo_model_conv_impl(self->m, text, sizeof text);
    return PyUnicode_FromString(text);
}

static PyObject *model_source(ModelObject *self, void *unused)
{
    return PyUnicode_DecodeFSDefault(self->source);
}

static PyMethodDef MODEL_METHODS[] = {
    {"encode", (PyCFunction)model_encode, METH_O, "encode(x) -> codes (n, code_dim) float32"},
    {"decode", (PyCFunction)model_decode, METH_O, "decode(codes) -> (n, input_dim) float32"},
    {"reconstruct", (PyCFunction)model_reconstruct, METH_O,
     "reconstruct(x) -> D(E(x)), float32 of x's shape"},
    {"evaluate", (PyCFunction)(void (*)(void))model_evaluate, METH_VARARGS | METH_KEYWORDS,
     "evaluate(x_or_spec, data_root=None) -> dict of anamo_metrics"},
    {"tensors", (PyCFunction)model_tensors, METH_NOARGS,
     "tensors() -> [(name, role, array copy)] in state_dict order"},
    {"tensor", (PyCFunction)model_tensor, METH_O, "tensor(name) -> array copy"},
    {"set_tensor", (PyCFunction)model_set_tensor, METH_VARARGS,
     "set_tensor(name, array): copies the array into the model's tensor"},
    {"layers", (PyCFunction)model_layers, METH_NOARGS, "layers() -> [dict per layer]"},
    {NULL, NULL, 0, NULL}};

static PyGetSetDef MODEL_GETSET[] = {
    {"input_dim", (getter)model_input_dim, NULL, "values per input sample", NULL},
    {"code_dim", (getter)model_code_dim, NULL, "values per code", NULL},
    {"conv_impl", (getter)model_conv_impl, NULL, "how each convolution runs", NULL},
    {"eval_spec", (getter)model_eval_spec, NULL, "the objective evaluate() measures", NULL},
    {"source", (getter)model_source, NULL, "the checkpoint it came from, or 'run'", NULL},
    {NULL, NULL, NULL, NULL, NULL}};

PyTypeObject pyanamo_ModelType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "anamo._anamo.Model",
    .tp_doc = "An autoencoder held by anamo (a loaded checkpoint or a run's model).",
    .tp_basicsize = sizeof(ModelObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_dealloc = (destructor)model_dealloc,
    .tp_methods = MODEL_METHODS,
    .tp_getset = MODEL_GETSET,
};
