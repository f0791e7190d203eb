/* Compiled inner loops for detector state (the measured hot path, see README "Benchmarks").
 *
 * numpy cannot express a hash-table probe without one full-array pass per probe step,
 * nor group equal keys without sorting them. These few loops do exactly that and nothing
 * else: all policy (capacity, eviction, expiry, windows) stays in Python/numpy.
 * `kernels.py` holds the numpy reference of every function here, used when this module
 * is not built and compared against it by the tests. Arrays arrive through the buffer
 * protocol (contiguous, checked), so there is no numpy C-API dependency.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#define EMPTY 0u
#define TOMBSTONE 1u
#define K1 0xBF58476D1CE4E5B9ull
#define K2 0x94D049BB133111EBull
#define K3 0x9E3779B97F4A7C15ull
#define SEED 0x2545F4914F6CDD1Dull

static inline uint64_t mix64(uint64_t x)
{
    x = (x ^ (x >> 30)) * K1;
    x = (x ^ (x >> 27)) * K2;
    return x ^ (x >> 31);
}

/* Acquire a C-contiguous buffer of `itemsize` bytes per element. */
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

static Py_ssize_t length(const Py_buffer *v) { return v->len / v->itemsize; }

/* find(table_keys u64[2^k], keys u64[n], out i64[n]): slot of each key or -1. */
static PyObject *k_find(PyObject *self, PyObject *args)
{
    PyObject *ot, *ok, *oo;
    Py_buffer t, k, o;
    if (!PyArg_ParseTuple(args, "OOO", &ot, &ok, &oo))
        return NULL;
    if (get_buffer(ot, &t, 8, 0, "table") < 0)
        return NULL;
    if (get_buffer(ok, &k, 8, 0, "keys") < 0) {
        PyBuffer_Release(&t);
        return NULL;
    }
    if (get_buffer(oo, &o, 8, 1, "out") < 0) {
        PyBuffer_Release(&t);
        PyBuffer_Release(&k);
        return NULL;
    }
    const uint64_t *tk = t.buf, *keys = k.buf;
    int64_t *out = o.buf;
    Py_ssize_t nslots = length(&t), n = length(&k);
    uint64_t mask = (uint64_t)nslots - 1;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < n; i++) {
        uint64_t key = keys[i], p = key & mask;
        int64_t slot = -1;
        for (Py_ssize_t step = 0; step < nslots; step++) {
            uint64_t cur = tk[p];
            if (cur == key) {
                slot = (int64_t)p;
                break;
            }
            if (cur == EMPTY)
                break;
            p = (p + 1) & mask;
        }
        out[i] = slot;
    }
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&t);
    PyBuffer_Release(&k);
    PyBuffer_Release(&o);
    Py_RETURN_NONE;
}

/* insert(table_keys u64[2^k] (written), keys u64[n], out i64[n]) -> tombstones reused.
 * Keys must be absent and distinct; the caller keeps the table under 3/4 full. */
static PyObject *k_insert(PyObject *self, PyObject *args)
{
    PyObject *ot, *ok, *oo;
    Py_buffer t, k, o;
    if (!PyArg_ParseTuple(args, "OOO", &ot, &ok, &oo))
        return NULL;
    if (get_buffer(ot, &t, 8, 1, "table") < 0)
        return NULL;
    if (get_buffer(ok, &k, 8, 0, "keys") < 0) {
        PyBuffer_Release(&t);
        return NULL;
    }
    if (get_buffer(oo, &o, 8, 1, "out") < 0) {
        PyBuffer_Release(&t);
        PyBuffer_Release(&k);
        return NULL;
    }
    uint64_t *tk = t.buf;
    const uint64_t *keys = k.buf;
    int64_t *out = o.buf;
    Py_ssize_t nslots = length(&t), n = length(&k), reused = 0, full = 0;
    uint64_t mask = (uint64_t)nslots - 1;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < n && !full; i++) {
        uint64_t key = keys[i], p = key & mask;
        Py_ssize_t step = 0;
        while (tk[p] > TOMBSTONE && step < nslots) {
            p = (p + 1) & mask;
            step++;
        }
        if (step == nslots) {
            full = 1;
            break;
        }
        reused += tk[p] == TOMBSTONE;
        tk[p] = key;
        out[i] = (int64_t)p;
    }
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&t);
    PyBuffer_Release(&k);
    PyBuffer_Release(&o);
    if (full) {
        PyErr_SetString(PyExc_RuntimeError, "hash table full");
        return NULL;
    }
    return PyLong_FromSsize_t(reused);
}

/* group(keys u64[n], order i64[n], starts i64[n+1]) -> number of groups g.
 * Groups equal keys in order of first occurrence, rows stable within a group:
 * rows of group j are order[starts[j]:starts[j+1]]. One hash pass + a counting sort. */
static PyObject *k_group(PyObject *self, PyObject *args)
{
    PyObject *ok, *oo, *os;
    Py_buffer k, o, s;
    if (!PyArg_ParseTuple(args, "OOO", &ok, &oo, &os))
        return NULL;
    if (get_buffer(ok, &k, 8, 0, "keys") < 0)
        return NULL;
    if (get_buffer(oo, &o, 8, 1, "order") < 0) {
        PyBuffer_Release(&k);
        return NULL;
    }
    if (get_buffer(os, &s, 8, 1, "starts") < 0) {
        PyBuffer_Release(&k);
        PyBuffer_Release(&o);
        return NULL;
    }
    const uint64_t *keys = k.buf;
    int64_t *order = o.buf, *starts = s.buf;
    Py_ssize_t n = length(&k);
    if (length(&o) < n || length(&s) < n + 1) {
        PyBuffer_Release(&k);
        PyBuffer_Release(&o);
        PyBuffer_Release(&s);
        PyErr_SetString(PyExc_ValueError, "group: output buffers too short");
        return NULL;
    }
    int bits = 4;
    while (((Py_ssize_t)1 << bits) < 2 * n)
        bits++;
    Py_ssize_t nslots = (Py_ssize_t)1 << bits;
    uint64_t mask = (uint64_t)nslots - 1;
    uint64_t *slot_key = PyMem_RawMalloc(nslots * sizeof(uint64_t));
    int64_t *slot_gid = PyMem_RawMalloc(nslots * sizeof(int64_t));
    int64_t *row_gid = PyMem_RawMalloc((n + 1) * sizeof(int64_t));
    Py_ssize_t g = 0;
    if (!slot_key || !slot_gid || !row_gid) {
        PyMem_RawFree(slot_key);
        PyMem_RawFree(slot_gid);
        PyMem_RawFree(row_gid);
        PyBuffer_Release(&k);
        PyBuffer_Release(&o);
        PyBuffer_Release(&s);
        return PyErr_NoMemory();
    }
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t j = 0; j < nslots; j++)
        slot_gid[j] = -1;
    memset(starts, 0, (n + 1) * sizeof(int64_t));
    for (Py_ssize_t i = 0; i < n; i++) {
        uint64_t key = keys[i], p = (key * K3) >> (64 - bits);
        while (slot_gid[p] >= 0 && slot_key[p] != key)
            p = (p + 1) & mask;
        if (slot_gid[p] < 0) {
            slot_gid[p] = g++;
            slot_key[p] = key;
        }
        row_gid[i] = slot_gid[p];
        starts[slot_gid[p] + 1]++;
    }
    for (Py_ssize_t j = 0; j < g; j++)
        starts[j + 1] += starts[j];
    /* slot_gid is free again: reuse it as each group's fill position */
    int64_t *fill = slot_gid;
    memcpy(fill, starts, g * sizeof(int64_t));
    for (Py_ssize_t i = 0; i < n; i++)
        order[fill[row_gid[i]]++] = i;
    Py_END_ALLOW_THREADS
    PyMem_RawFree(slot_key);
    PyMem_RawFree(slot_gid);
    PyMem_RawFree(row_gid);
    PyBuffer_Release(&k);
    PyBuffer_Release(&o);
    PyBuffer_Release(&s);
    return PyLong_FromSsize_t(g);
}

/* Read element i of an integer/bool buffer as numpy's astype(uint64) would. */
static int element_reader(const Py_buffer *v, int *is_signed)
{
    const char *f = v->format ? v->format : "B";
    while (*f == '<' || *f == '>' || *f == '=' || *f == '@' || *f == '!')
        f++;
    if (f[0] == '\0' || f[1] != '\0')
        return -1;
    if (strchr("bhilq", f[0]))
        *is_signed = 1;
    else if (strchr("BHILQ?", f[0]))
        *is_signed = 0;
    else
        return -1;
    return 0;
}

static inline uint64_t read_u64(const char *base, Py_ssize_t size, int is_signed, Py_ssize_t i)
{
    switch (size) {
    case 1: return is_signed ? (uint64_t)(int64_t)((const int8_t *)base)[i] : ((const uint8_t *)base)[i];
    case 2: return is_signed ? (uint64_t)(int64_t)((const int16_t *)base)[i] : ((const uint16_t *)base)[i];
    case 4: return is_signed ? (uint64_t)(int64_t)((const int32_t *)base)[i] : ((const uint32_t *)base)[i];
    default: return ((const uint64_t *)base)[i];
    }
}

#define MAX_COLS 8

/* hash_cols(out u64[n], col, col, ...): one well-mixed key per row, never 0 or 1. */
static PyObject *k_hash_cols(PyObject *self, PyObject *args)
{
    Py_ssize_t ncols = PyTuple_GET_SIZE(args) - 1;
    if (ncols < 1 || ncols > MAX_COLS) {
        PyErr_Format(PyExc_TypeError, "hash_cols takes out and 1..%d columns", MAX_COLS);
        return NULL;
    }
    Py_buffer o, cols[MAX_COLS];
    int is_signed[MAX_COLS];
    if (get_buffer(PyTuple_GET_ITEM(args, 0), &o, 8, 1, "out") < 0)
        return NULL;
    Py_ssize_t n = length(&o), got = 0;
    for (; got < ncols; got++) {
        Py_buffer *v = &cols[got];
        if (get_buffer(PyTuple_GET_ITEM(args, got + 1), v, 0, 0, "column") < 0)
            break;
        if (element_reader(v, &is_signed[got]) < 0 || length(v) != n ||
            !(v->itemsize == 1 || v->itemsize == 2 || v->itemsize == 4 || v->itemsize == 8)) {
            PyErr_Format(PyExc_TypeError, "hash_cols: column %zd must be %zd integers", got, n);
            PyBuffer_Release(v);
            break;
        }
    }
    if (got == ncols) {
        uint64_t *out = o.buf;
        Py_BEGIN_ALLOW_THREADS
        for (Py_ssize_t i = 0; i < n; i++)
            out[i] = SEED;
        for (Py_ssize_t c = 0; c < ncols; c++) {
            const char *base = cols[c].buf;
            Py_ssize_t size = cols[c].itemsize;
            int sgn = is_signed[c];
            for (Py_ssize_t i = 0; i < n; i++) {
                uint64_t h = (out[i] ^ read_u64(base, size, sgn, i)) * K3;
                out[i] = h ^ (h >> 29);
            }
        }
        for (Py_ssize_t i = 0; i < n; i++) {
            uint64_t h = mix64(out[i]);
            out[i] = h <= TOMBSTONE ? h + 2 : h;
        }
        Py_END_ALLOW_THREADS
    }
    for (Py_ssize_t c = 0; c < got; c++)
        PyBuffer_Release(&cols[c]);
    PyBuffer_Release(&o);
    if (got != ncols)
        return NULL;
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"find", k_find, METH_VARARGS, "find(table_keys, keys, out): slot of each key or -1"},
    {"insert", k_insert, METH_VARARGS, "insert(table_keys, keys, out) -> tombstones reused"},
    {"group", k_group, METH_VARARGS, "group(keys, order, starts) -> number of groups"},
    {"hash_cols", k_hash_cols, METH_VARARGS, "hash_cols(out, *cols): mixed uint64 key per row"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_kernels", "Compiled detector-state loops", -1, methods};

PyMODINIT_FUNC PyInit__kernels(void) { return PyModule_Create(&module); }
