/* module.c — the module anamo._anamo: anamo.Error, the metrics as dicts, datasets opened by
 * spec, the machine the products run on, and the version. */
#define PYANAMO_IMPORT_ARRAY
#include "pyanamo.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

PyObject *pyanamo_Error;

/* ---- errors ------------------------------------------------------------------------------ */

/* Sets anamo.Error(msg) with .msg, .code and .status. */
static PyObject *raise_text(int code, PyObject *msg)
{
    if (!msg)
        return NULL;
    PyObject *exc = PyObject_CallOneArg(pyanamo_Error, msg);
    PyObject *name = PyUnicode_FromString(anamo_status_name(code));
    PyObject *status = PyLong_FromLong(code);
    if (exc && name && status && !PyObject_SetAttrString(exc, "msg", msg) &&
        !PyObject_SetAttrString(exc, "code", name) &&
        !PyObject_SetAttrString(exc, "status", status))
        PyErr_SetObject(pyanamo_Error, exc);
    Py_XDECREF(exc);
    Py_XDECREF(name);
    Py_XDECREF(status);
    Py_DECREF(msg);
    return NULL;
}

/* anamo's messages are UTF-8; one cut at ANAMO_ERR_MSG_MAX may end inside a character. */
static PyObject *decode_msg(const char *msg)
{
    return PyUnicode_DecodeUTF8(msg, (Py_ssize_t)strlen(msg), "replace");
}

PyObject *pyanamo_raise(const anamo_err *err)
{
    const int code = err->code ? err->code : ANAMO_ERR_ARG;
    return raise_text(code, decode_msg(err->msg[0] ? err->msg : anamo_status_name(code)));
}

PyObject *pyanamo_raise_msg(int code, const char *fmt, ...)
{
    anamo_err err = {.code = code};
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err.msg, sizeof err.msg, fmt, ap);
    va_end(ap);
    return pyanamo_raise(&err);
}

PyObject *pyanamo_reraise(const char *prefix)
{
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    PyErr_NormalizeException(&type, &value, &tb);
    PyObject *text = value ? PyObject_Str(value) : NULL;
    PyErr_Clear();
    PyObject *msg = text ? PyUnicode_FromFormat("%s: %U", prefix, text)
                         : PyUnicode_FromString(prefix);
    Py_XDECREF(text);
    raise_text(ANAMO_ERR_ARG, msg);
    if (value && PyErr_Occurred()) { /* chain: `raise anamo.Error(...) from value` */
        PyObject *t2, *v2, *tb2;
        PyErr_Fetch(&t2, &v2, &tb2);
        PyErr_NormalizeException(&t2, &v2, &tb2);
        if (v2)
            PyException_SetCause(v2, Py_NewRef(value));
        PyErr_Restore(t2, v2, tb2);
    }
    Py_XDECREF(type);
    Py_XDECREF(value);
    Py_XDECREF(tb);
    return NULL;
}

/* ---- metrics ----------------------------------------------------------------------------- */

static int put(PyObject *d, const char *key, PyObject *v)
{
    int rc = v ? PyDict_SetItemString(d, key, v) : -1;
    Py_XDECREF(v);
    return rc;
}

PyObject *pyanamo_metrics_dict(const anamo_metrics *m)
{
    PyObject *d = PyDict_New();
    if (!d)
        return NULL;
#define F(name) put(d, #name, PyFloat_FromDouble(m->name))
#define I(name) put(d, #name, PyLong_FromLongLong((long long)m->name))
    int bad = I(n) || F(loss) || F(recon_loss) || F(mse) || F(bias) || F(code_l1) || F(input_l1) ||
              F(zero_codes) || I(dead_units) || F(dead_fraction) || F(l0) || F(code_l1_decoder) ||
              F(code_l1_jacobian) || I(jacobian_samples) || F(explained_variance) ||
              put(d, "mean_from_train", PyBool_FromLong(m->mean_from_train)) || F(ones) ||
              I(bits_used) || I(distinct_codes);
#undef F
#undef I
    if (bad)
        Py_CLEAR(d);
    return d;
}

/* ---- datasets ---------------------------------------------------------------------------- */

/* open_dataset(spec, data_root, raw) -> (x, labels or None): x of shape (n, c, h, w), floats
 * in the scale training sees (bytes / 255, anamo_dataset_rows) or, raw, as stored (uint8 or
 * float32). */
static PyObject *open_dataset(PyObject *self, PyObject *args, PyObject *kwargs)
{
    static char *kw[] = {"spec", "data_root", "raw", NULL};
    const char *spec, *root = NULL;
    int raw = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "s|zp", kw, &spec, &root, &raw))
        return NULL;
    anamo_dataset ds;
    anamo_err err = {0};
    int rc;
    Py_BEGIN_ALLOW_THREADS rc = anamo_dataset_open(spec, root, &ds, &err);
    Py_END_ALLOW_THREADS if (rc) return pyanamo_raise(&err);
    npy_intp shape[4] = {(npy_intp)ds.n, ds.c, ds.h, ds.w};
    const int u8 = raw && ds.dtype == ANAMO_U8;
    PyArrayObject *x = (PyArrayObject *)PyArray_SimpleNew(4, shape, u8 ? NPY_UINT8 : NPY_FLOAT32);
    PyObject *labels = Py_None;
    Py_INCREF(labels);
    if (x && ds.labels) {
        Py_DECREF(labels);
        labels = PyArray_SimpleNew(1, shape, NPY_UINT8);
        if (labels)
            memcpy(PyArray_DATA((PyArrayObject *)labels), ds.labels, (size_t)ds.n);
    }
    if (x && labels) {
        if (raw)
            memcpy(PyArray_DATA(x), ds.data, (size_t)(ds.n * ds.dim) * (u8 ? 1 : sizeof(float)));
        else
            rc = anamo_dataset_rows(&ds, 0, ds.n, PyArray_DATA(x), &err);
    }
    anamo_dataset_free(&ds);
    PyObject *out = x && labels && !rc ? PyTuple_Pack(2, (PyObject *)x, labels) : NULL;
    if (rc)
        pyanamo_raise(&err);
    Py_XDECREF(x);
    Py_XDECREF(labels);
    return out;
}

/* ---- the machine ------------------------------------------------------------------------- */

static PyObject *machine(PyObject *self, PyObject *unused)
{
    anamo_machine mc;
    anamo_machine_describe(&mc);
    return Py_BuildValue("{s:s,s:i,s:i,s:s,s:s,s:s,s:s,s:s,s:s,s:s}", "cpu", mc.cpu, "family",
                         mc.family, "model", mc.model, "features", mc.features, "blas", mc.blas,
                         "kernel", mc.kernel, "best_kernel", mc.best_kernel, "kernel_note",
                         mc.kernel_note, "dnnl", mc.dnnl, "omp_wait", mc.omp_wait);
}

/* The address, rows, width, dtype and copy flag of the rows anamo would read from x: for the
 * tests of zero-copy and of misaligned arrays. */
static PyObject *rows_info(PyObject *self, PyObject *args)
{
    PyObject *x;
    int allow_u8 = 0;
    if (!PyArg_ParseTuple(args, "O|p", &x, &allow_u8))
        return NULL;
    py_rows r;
    if (pyanamo_rows(x, "x", allow_u8, &r))
        return NULL;
    PyObject *out = Py_BuildValue("{s:K,s:L,s:L,s:s,s:O}", "address",
                                  (unsigned long long)(uintptr_t)r.data, "n", (long long)r.n, "dim",
                                  (long long)r.dim, "dtype",
                                  r.dtype == ANAMO_U8 ? "uint8" : "float32", "copied",
                                  r.copied ? Py_True : Py_False);
    pyanamo_rows_release(&r);
    return out;
}

static PyMethodDef METHODS[] = {
    {"train", (PyCFunction)(void (*)(void))pyanamo_train, METH_VARARGS | METH_KEYWORDS,
     "train(config, overrides=(), arm=None, quick=False, data_root=None, callback=None) -> Run"},
    {"load", (PyCFunction)(void (*)(void))pyanamo_load, METH_VARARGS | METH_KEYWORDS,
     "load(path, max_batch=256) -> Model: the model a checkpoint holds"},
    {"open_dataset", (PyCFunction)(void (*)(void))open_dataset, METH_VARARGS | METH_KEYWORDS,
     "open_dataset(spec, data_root=None, raw=False) -> (x, labels or None)"},
    {"machine", machine, METH_NOARGS, "machine() -> dict: the CPU, BLAS and kernel in use"},
    {"_rows_info", rows_info, METH_VARARGS, "the rows anamo would read from an array"},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef MODULE = {PyModuleDef_HEAD_INIT,
                                    "anamo._anamo",
                                    "The anamo C library (include/anamo.h), bound.",
                                    -1,
                                    METHODS,
                                    NULL,
                                    NULL,
                                    NULL,
                                    NULL};

static int add_status_names(PyObject *mod)
{
    static const struct {
        const char *name;
        int code;
    } CODES[] = {{"OK", ANAMO_OK},
                 {"ERR_IO", ANAMO_ERR_IO},
                 {"ERR_FORMAT", ANAMO_ERR_FORMAT},
                 {"ERR_CONFIG", ANAMO_ERR_CONFIG},
                 {"ERR_ARG", ANAMO_ERR_ARG},
                 {"ERR_NOMEM", ANAMO_ERR_NOMEM},
                 {"ERR_DIVERGED", ANAMO_ERR_DIVERGED},
                 {"ERR_INTERRUPTED", ANAMO_ERR_INTERRUPTED}};
    for (size_t i = 0; i < sizeof CODES / sizeof CODES[0]; i++)
        if (PyModule_AddIntConstant(mod, CODES[i].name, CODES[i].code))
            return -1;
    return 0;
}

PyMODINIT_FUNC PyInit__anamo(void)
{
    import_array();
    PyObject *mod = PyModule_Create(&MODULE);
    if (!mod)
        return NULL;
    pyanamo_Error = PyErr_NewExceptionWithDoc(
        "anamo.Error",
        "An anamo call failed: str(e) and e.msg are the library's one-line message, e.code the "
        "status name (\"invalid argument\", \"format error\", ...), e.status its number.",
        PyExc_Exception, NULL);
    if (!pyanamo_Error || PyModule_AddObjectRef(mod, "Error", pyanamo_Error) ||
        PyType_Ready(&pyanamo_ModelType) || PyType_Ready(&pyanamo_RunType) ||
        PyModule_AddObjectRef(mod, "Model", (PyObject *)&pyanamo_ModelType) ||
        PyModule_AddObjectRef(mod, "Run", (PyObject *)&pyanamo_RunType) ||
        PyModule_AddStringConstant(mod, "version", ANAMO_VERSION_STRING) ||
        PyModule_AddIntConstant(mod, "JACOBIAN_SAMPLES", ANAMO_JACOBIAN_SAMPLES) ||
        add_status_names(mod)) {
        Py_DECREF(mod);
        return NULL;
    }
    return mod;
}
