/* pyanamo.h — what the files of the CPython extension anamo._anamo share.
 *
 * The extension binds the public header include/anamo.h and nothing else: module.c (the module,
 * anamo.Error, datasets, the machine), arrays.c (NumPy arrays in and out), model.c (the Model
 * type: encode, decode, reconstruct, tensors, evaluation) and run.c (the Run type: training a
 * config with the GIL released, a Python callback per epoch). */
#ifndef PYANAMO_H
#define PYANAMO_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <pythread.h>

#define NPY_NO_DEPRECATED_API NPY_1_7_API_VERSION
#define PY_ARRAY_UNIQUE_SYMBOL pyanamo_ARRAY_API
#ifndef PYANAMO_IMPORT_ARRAY
#define NO_IMPORT_ARRAY
#endif
#include <numpy/arrayobject.h>

#include "anamo.h"

/* ---- errors (module.c) ------------------------------------------------------------------- */
/* anamo.Error, a subclass of Exception: .msg the one-line message, .code the status name
 * (anamo_status_name), .status the status number. */
extern PyObject *pyanamo_Error;
/* Raises anamo.Error from err; returns NULL, for `return pyanamo_raise(&err);`. */
PyObject *pyanamo_raise(const anamo_err *err);
/* The same from a status and a printf-formatted message. */
PyObject *pyanamo_raise_msg(int code, const char *fmt, ...);
/* Replaces the pending exception (a NumPy conversion's TypeError, say) with an anamo.Error
 * whose message is "prefix: <that exception's message>", chained to it. */
PyObject *pyanamo_reraise(const char *prefix);

/* ---- arrays (arrays.c) ------------------------------------------------------------------- */
/* Rows for anamo to read: a C-contiguous, aligned array of n rows of dim values. */
typedef struct py_rows {
    PyArrayObject *arr; /* a reference to the array anamo reads (the caller's or a copy) */
    const void *data;
    anamo_dtype dtype; /* ANAMO_U8 only where the caller allowed bytes */
    int64_t n, dim;
    int copied; /* the caller's array was not float32 (uint8), C-contiguous and aligned */
} py_rows;
/* obj as rows of shape (n, dim) or (n, c, h, w) (ndim 2 to 4). Zero-copy when obj is a
 * C-contiguous, aligned float32 array (or uint8, when allow_u8); any other real-valued array
 * (another dtype, another byte order, strided, misaligned) is converted to a float32 copy.
 * None, a non-numeric or complex dtype, a wrong number of dimensions or an empty sample raise
 * anamo.Error naming `what` and the problem. Returns 0, or -1 with the exception set. */
int pyanamo_rows(PyObject *obj, const char *what, int allow_u8, py_rows *out);
void pyanamo_rows_release(py_rows *r);
/* "(3, 784)" */
void pyanamo_shape_text(PyArrayObject *a, char *out, size_t size);
/* A new float32 array of shape (n, dim) (or the given shape), C order. */
PyArrayObject *pyanamo_new_f32(int ndim, const npy_intp *shape);

/* ---- metrics ----------------------------------------------------------------------------- */
/* The anamo_metrics fields by their C names. */
PyObject *pyanamo_metrics_dict(const anamo_metrics *m);

/* ---- models (model.c) -------------------------------------------------------------------- */
typedef struct ModelObject {
    PyObject_HEAD anamo_model *m;
    PyObject *owner;         /* the Run whose model this is (it frees m), or NULL: ours */
    anamo_eval_spec eval;    /* the objective evaluate() measures */
    PyThread_type_lock lock; /* one call at a time: the model's forward buffers are shared */
    int own_lock;            /* lock is ours (a loaded model), else the run's */
    char source[512];        /* the checkpoint it came from, or "run" */
} ModelObject;
extern PyTypeObject pyanamo_ModelType;
/* A Model over m; owner (may be NULL) keeps m alive and frees it, else the Model does. lock:
 * the owner's, shared by every Model over m, or NULL for one of its own. */
PyObject *pyanamo_model_new(anamo_model *m, PyObject *owner, const anamo_eval_spec *eval,
                            const char *source, PyThread_type_lock lock);
/* anamo._anamo.load(path, max_batch=256) */
PyObject *pyanamo_load(PyObject *self, PyObject *args, PyObject *kwargs);

/* ---- runs (run.c) ------------------------------------------------------------------------ */
extern PyTypeObject pyanamo_RunType;
/* anamo._anamo.train(config, overrides, arm, quick, data_root, callback) */
PyObject *pyanamo_train(PyObject *self, PyObject *args, PyObject *kwargs);

#endif
