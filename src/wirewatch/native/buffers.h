/* Shared by the compiled modules: numpy arrays arrive through the buffer protocol. */
#ifndef WIREWATCH_BUFFERS_H
#define WIREWATCH_BUFFERS_H
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

typedef struct {
    Py_ssize_t itemsize; /* bytes per element; 0 = any */
    int writable;
    int optional; /* None is accepted: the view is left empty (buf == NULL) */
    const char *name;
} buffer_spec;

/* Acquire a C-contiguous buffer of `itemsize` bytes per element (0 = any). */
static int get_buffer(PyObject *obj, Py_buffer *view, Py_ssize_t itemsize, int writable, const char *what)
{
    int flags = PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | (writable ? PyBUF_WRITABLE : 0);
    if (PyObject_GetBuffer(obj, view, flags) < 0)
        return -1;
    if (itemsize && view->itemsize != itemsize) {
        PyErr_Format(PyExc_TypeError, "%s: expected %zd-byte items, got %zd", what, itemsize, view->itemsize);
        PyBuffer_Release(view);
        return -1;
    }
    return 0;
}

static void release_buffers(Py_buffer *views, int n)
{
    for (int i = 0; i < n; i++)
        PyBuffer_Release(&views[i]); /* a no-op on an empty view */
}

/* Acquire views[i] of objs[i] as specs[i] says; on failure release what was taken. */
static int get_buffers(PyObject *const *objs, Py_buffer *views, const buffer_spec *specs, int n)
{
    for (int i = 0; i < n; i++) {
        if (specs[i].optional && objs[i] == Py_None) {
            memset(&views[i], 0, sizeof(Py_buffer));
            continue;
        }
        if (get_buffer(objs[i], &views[i], specs[i].itemsize, specs[i].writable, specs[i].name) < 0) {
            release_buffers(views, i);
            return -1;
        }
    }
    return 0;
}

static inline Py_ssize_t length(const Py_buffer *v) { return v->itemsize ? v->len / v->itemsize : 0; }

/* Release the views and raise ValueError(message) when `bad`; else return None. */
static PyObject *finish(Py_buffer *views, int n, int bad, const char *message)
{
    release_buffers(views, n);
    if (bad) {
        PyErr_SetString(PyExc_ValueError, message);
        return NULL;
    }
    Py_RETURN_NONE;
}

#endif
