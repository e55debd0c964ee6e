/* arrays.c — NumPy arrays in and out of anamo: the caller's float32 rows are read where they
 * are when anamo can read them there (C order, aligned), and converted to a float32 copy when
 * not; anything that is not an array of real numbers of shape (n, dim) or (n, c, h, w) is an
 * anamo.Error that says what it is. */
#include "pyanamo.h"

#include <stdio.h>
#include <string.h>

void pyanamo_shape_text(PyArrayObject *a, char *out, size_t size)
{
    size_t o = (size_t)snprintf(out, size, "(");
    const int nd = PyArray_NDIM(a);
    for (int i = 0; i < nd && o < size; i++)
        o += (size_t)snprintf(out + o, size - o, "%s%lld", i ? ", " : "",
                              (long long)PyArray_DIM(a, i));
    if (o < size)
        snprintf(out + o, size - o, nd == 1 ? ",)" : ")");
}

/* The dtype's name as NumPy prints it ("<U3", "complex128"). */
static void dtype_text(PyArrayObject *a, char *out, size_t size)
{
    PyObject *s = PyObject_Str((PyObject *)PyArray_DESCR(a));
    const char *t = s ? PyUnicode_AsUTF8(s) : NULL;
    snprintf(out, size, "%s", t ? t : "?");
    Py_XDECREF(s);
    PyErr_Clear();
}

PyArrayObject *pyanamo_new_f32(int ndim, const npy_intp *shape)
{
    return (PyArrayObject *)PyArray_SimpleNew(ndim, (npy_intp *)shape, NPY_FLOAT32);
}

static int fail_shape(const char *what, PyArrayObject *a, const char *why)
{
    char shape[128];
    pyanamo_shape_text(a, shape, sizeof shape);
    pyanamo_raise_msg(ANAMO_ERR_ARG, "%s: an array of shape %s %s", what, shape, why);
    return -1;
}

int pyanamo_rows(PyObject *obj, const char *what, int allow_u8, py_rows *out)
{
    memset(out, 0, sizeof *out);
    if (!obj || obj == Py_None) {
        pyanamo_raise_msg(ANAMO_ERR_ARG,
                          "%s: expected an array of shape (n, dim) or (n, c, h, "
                          "w), got None",
                          what);
        return -1;
    }
    PyArrayObject *a = (PyArrayObject *)PyArray_FROM_O(obj);
    if (!a) {
        char prefix[256];
        snprintf(prefix, sizeof prefix, "%s: %.100s is not an array", what, Py_TYPE(obj)->tp_name);
        pyanamo_reraise(prefix);
        return -1;
    }
    const char kind = PyArray_DESCR(a)->kind;
    if (kind != 'b' && kind != 'i' && kind != 'u' && kind != 'f') {
        char dt[64];
        dtype_text(a, dt, sizeof dt);
        pyanamo_raise_msg(ANAMO_ERR_ARG,
                          "%s: dtype %s is not a real number type (expected "
                          "float32%s, or a type convertible to float32)",
                          what, dt, allow_u8 ? " or uint8" : "");
        Py_DECREF(a);
        return -1;
    }
    const int nd = PyArray_NDIM(a);
    int bad = 0;
    if (nd < 2 || nd > 4)
        bad = fail_shape(what, a, "is not (n, dim) or (n, c, h, w)");
    int64_t dim = 1;
    for (int i = 1; !bad && i < nd; i++)
        dim *= (int64_t)PyArray_DIM(a, i);
    if (!bad && dim == 0)
        bad = fail_shape(what, a, "has samples of 0 values");
    if (bad) {
        Py_DECREF(a);
        return -1;
    }
    const int u8 = allow_u8 && PyArray_TYPE(a) == NPY_UINT8;
    /* a new reference to a itself when it is already what anamo reads; else a converted copy */
    PyArrayObject *c = (PyArrayObject *)
        PyArray_FROM_OTF((PyObject *)a, u8 ? NPY_UINT8 : NPY_FLOAT32,
                         NPY_ARRAY_C_CONTIGUOUS | NPY_ARRAY_ALIGNED | NPY_ARRAY_FORCECAST);
    if (!c) {
        Py_DECREF(a);
        pyanamo_reraise(what);
        return -1;
    }
    *out = (py_rows){.arr = c,
                     .data = PyArray_DATA(c),
                     .dtype = u8 ? ANAMO_U8 : ANAMO_F32,
                     .n = (int64_t)PyArray_DIM(c, 0),
                     .dim = dim,
                     .copied = c != a || (PyObject *)a != obj};
    Py_DECREF(a);
    return 0;
}

void pyanamo_rows_release(py_rows *r) { Py_CLEAR(r->arr); }
