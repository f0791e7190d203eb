/* Compiled inner loops for detector state (the measured hot path, see README "Benchmarks").
 *
 * numpy cannot express a hash-table probe without one full-array pass per probe step,
 * nor group equal keys without sorting them. These few loops do exactly that and nothing
 * else: all policy (capacity, eviction, expiry, windows) stays in Python/numpy.
 * `kernels.py` holds the numpy reference of every function here, used when this module
 * is not built and compared against it by the tests. Arrays arrive through the buffer
 * protocol (contiguous, checked), so there is no numpy C-API dependency.
 */
#include "buffers.h"

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

/* find(table_keys u64[2^k], keys u64[n], out i64[n], values i64[2^k] or None):
 * slot of each key (or values[slot] when values are given), -1 where absent. */
static PyObject *k_find(PyObject *self, PyObject *args)
{
    PyObject *ot, *ok, *oo, *ov = Py_None;
    Py_buffer t, k, o, v = {0};
    if (!PyArg_ParseTuple(args, "OOO|O", &ot, &ok, &oo, &ov))
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
    if (ov != Py_None && get_buffer(ov, &v, 8, 0, "values") < 0) {
        PyBuffer_Release(&t);
        PyBuffer_Release(&k);
        PyBuffer_Release(&o);
        return NULL;
    }
    const uint64_t *tk = t.buf, *keys = k.buf;
    const int64_t *values = v.buf;
    int64_t *out = o.buf;
    Py_ssize_t nslots = length(&t), n = length(&k);
    int ok_sizes = length(&o) >= n && (!values || length(&v) >= nslots);
    uint64_t mask = (uint64_t)nslots - 1;
    if (ok_sizes) {
        Py_BEGIN_ALLOW_THREADS
        for (Py_ssize_t i = 0; i < n; i++) {
            uint64_t key = keys[i], p = key & mask;
            int64_t found = -1;
            for (Py_ssize_t step = 0; step < nslots; step++) {
                uint64_t cur = tk[p];
                if (cur == key) {
                    found = values ? values[p] : (int64_t)p;
                    break;
                }
                if (cur == EMPTY)
                    break;
                p = (p + 1) & mask;
            }
            out[i] = found;
        }
        Py_END_ALLOW_THREADS
    }
    PyBuffer_Release(&t);
    PyBuffer_Release(&k);
    PyBuffer_Release(&o);
    if (values)
        PyBuffer_Release(&v);
    if (!ok_sizes) {
        PyErr_SetString(PyExc_ValueError, "find: out or values too short");
        return NULL;
    }
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

/* group(keys u64[n], order i64[n], starts i64[n+1], inverse i64[n] or None) -> groups g.
 * Groups equal keys in order of first occurrence, rows stable within a group:
 * rows of group j are order[starts[j]:starts[j+1]]; inverse[i] is row i's group.
 * One hash pass + a counting sort. */
static PyObject *k_group(PyObject *self, PyObject *args)
{
    PyObject *ok, *oo, *os, *oi = Py_None;
    Py_buffer k, o, s, inv = {0};
    if (!PyArg_ParseTuple(args, "OOO|O", &ok, &oo, &os, &oi))
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
    if (oi != Py_None && get_buffer(oi, &inv, 8, 1, "inverse") < 0) {
        PyBuffer_Release(&k);
        PyBuffer_Release(&o);
        PyBuffer_Release(&s);
        return NULL;
    }
    const uint64_t *keys = k.buf;
    int64_t *order = o.buf, *starts = s.buf;
    Py_ssize_t n = length(&k);
    if (length(&o) < n || length(&s) < n + 1 || (inv.buf && length(&inv) < n)) {
        PyBuffer_Release(&k);
        PyBuffer_Release(&o);
        PyBuffer_Release(&s);
        if (inv.buf)
            PyBuffer_Release(&inv);
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
    int64_t *row_gid = inv.buf ? inv.buf : PyMem_RawMalloc((n + 1) * sizeof(int64_t));
    Py_ssize_t g = 0;
    if (!slot_key || !slot_gid || !row_gid) {
        PyMem_RawFree(slot_key);
        PyMem_RawFree(slot_gid);
        if (!inv.buf)
            PyMem_RawFree(row_gid);
        PyBuffer_Release(&k);
        PyBuffer_Release(&o);
        PyBuffer_Release(&s);
        if (inv.buf)
            PyBuffer_Release(&inv);
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
    if (inv.buf)
        PyBuffer_Release(&inv);
    else
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

/* window_add(epoch i64[slots*nb], counts i32|i64[slots*m*nb], slots i64[n], buckets i64[n],
 *            values i64[n*m]): add row i's m values to cell (slot, bucket % nb).
 * A cell holding an older bucket is cleared first; rows older than their cell's bucket
 * are dropped (the ring moved on). Rows with a negative slot are skipped. */
static PyObject *k_window_add(PyObject *self, PyObject *args)
{
    PyObject *oe, *oc, *os, *ob, *ov;
    Py_buffer e, c, sl, bk, v;
    if (!PyArg_ParseTuple(args, "OOOOO", &oe, &oc, &os, &ob, &ov))
        return NULL;
    if (get_buffer(oe, &e, 8, 1, "epoch") < 0)
        return NULL;
    if (get_buffer(oc, &c, 0, 1, "counts") < 0) {
        PyBuffer_Release(&e);
        return NULL;
    }
    Py_buffer *held[5] = {&e, &c, NULL, NULL, NULL};
    int nheld = 2, bad = 0;
    if (get_buffer(os, &sl, 8, 0, "slots") < 0)
        bad = 1;
    else
        held[nheld++] = &sl;
    if (!bad && get_buffer(ob, &bk, 8, 0, "buckets") < 0)
        bad = 1;
    else if (!bad)
        held[nheld++] = &bk;
    if (!bad && get_buffer(ov, &v, 8, 0, "values") < 0)
        bad = 1;
    else if (!bad)
        held[nheld++] = &v;
    Py_ssize_t n = bad ? 0 : length(&sl);
    if (!bad && (c.ndim != 3 || e.ndim != 2 || c.shape[0] != e.shape[0] || c.shape[2] != e.shape[1] ||
                 (c.itemsize != 4 && c.itemsize != 8) || length(&bk) != n || length(&v) != n * c.shape[1])) {
        PyErr_SetString(PyExc_ValueError, "window_add: shapes do not match (counts[slots, m, nb], epoch[slots, nb])");
        bad = 1;
    }
    if (!bad) {
        const Py_ssize_t nslots = c.shape[0], m = c.shape[1], nb = c.shape[2];
        int64_t *epoch = e.buf;
        const int64_t *slots = sl.buf, *buckets = bk.buf, *values = v.buf;
        int wide = c.itemsize == 8;
        int64_t *c64 = c.buf;
        int32_t *c32 = c.buf;
        Py_BEGIN_ALLOW_THREADS
        for (Py_ssize_t i = 0; i < n; i++) {
            int64_t s = slots[i], b = buckets[i];
            if (s < 0 || s >= nslots)
                continue;
            Py_ssize_t ring = (Py_ssize_t)(((b % nb) + nb) % nb), cell = s * nb + ring; /* b < 0: before 1970 */
            if (epoch[cell] > b)
                continue;
            if (epoch[cell] != b) {
                epoch[cell] = b;
                for (Py_ssize_t j = 0; j < m; j++) {
                    if (wide)
                        c64[(s * m + j) * nb + ring] = 0;
                    else
                        c32[(s * m + j) * nb + ring] = 0;
                }
            }
            for (Py_ssize_t j = 0; j < m; j++) {
                if (wide)
                    c64[(s * m + j) * nb + ring] += values[i * m + j];
                else
                    c32[(s * m + j) * nb + ring] += (int32_t)values[i * m + j];
            }
        }
        Py_END_ALLOW_THREADS
    }
    for (int j = 0; j < nheld; j++)
        PyBuffer_Release(held[j]);
    if (bad)
        return NULL;
    Py_RETURN_NONE;
}

/* door_admit(door_key u64[2^b], door_ts f64[2^b], keys u64[k], ts f64[k], window,
 *            slot_out i64[k], back_out u8[k], back_ts f64[k]) -> rows back.
 * The doorkeeper's direct-mapped memory (detect/doorkeeper.py), one candidate row at a time:
 * a key whose slot holds it from within `window` comes back (its parked time is returned
 * and the slot is freed); any other key parks its row in the slot. */
static PyObject *k_door_admit(PyObject *self, PyObject *args)
{
    PyObject *o[7];
    double window;
    if (!PyArg_ParseTuple(args, "OOOOdOOO", &o[0], &o[1], &o[2], &o[3], &window, &o[4], &o[5], &o[6]))
        return NULL;
    static const Py_ssize_t sizes[7] = {8, 8, 8, 8, 8, 1, 8};
    static const int writable[7] = {1, 1, 0, 0, 1, 1, 1};
    Py_buffer v[7];
    int got = 0;
    for (; got < 7; got++)
        if (get_buffer(o[got], &v[got], sizes[got], writable[got], "door_admit argument") < 0)
            break;
    Py_ssize_t nslots = got == 7 ? length(&v[0]) : 0, k = got == 7 ? length(&v[2]) : 0, nback = 0;
    int bad = got != 7;
    if (!bad) {
        bad = length(&v[1]) != nslots || nslots == 0 || (nslots & (nslots - 1)) != 0;
        for (int j = 3; j < 7; j++)
            bad |= length(&v[j]) != k;
        if (bad)
            PyErr_SetString(PyExc_ValueError, "door_admit: array lengths do not match");
    }
    if (!bad) {
        uint64_t *dkey = v[0].buf;
        double *dts = v[1].buf, *bts = v[6].buf;
        const uint64_t *keys = v[2].buf;
        const double *ts = v[3].buf;
        int64_t *slot_out = v[4].buf;
        uint8_t *back = v[5].buf;
        uint64_t mask = (uint64_t)nslots - 1;
        Py_BEGIN_ALLOW_THREADS
        for (Py_ssize_t j = 0; j < k; j++) {
            uint64_t key = keys[j], s = key & mask;
            slot_out[j] = (int64_t)s;
            if (dkey[s] == key && ts[j] - dts[s] <= window) {
                back[j] = 1;
                bts[j] = dts[s];
                dkey[s] = 0;
                nback++;
            } else {
                back[j] = 0;
                dkey[s] = key;
                dts[s] = ts[j];
            }
        }
        Py_END_ALLOW_THREADS
    }
    for (int j = 0; j < got; j++)
        PyBuffer_Release(&v[j]);
    if (bad)
        return NULL;
    return PyLong_FromSsize_t(nback);
}

/* window_totals(epoch i64[S*nb], counts i32|i64[S*m*nb], slots i64[k], current, out i64[k*m]):
 * each slot's per-metric sum over the ring cells whose bucket lies in (current - nb, current]. */
static PyObject *k_window_totals(PyObject *self, PyObject *args)
{
    PyObject *oe, *oc, *os, *oo;
    long long current;
    if (!PyArg_ParseTuple(args, "OOOLO", &oe, &oc, &os, &current, &oo))
        return NULL;
    Py_buffer e, c, sl, o;
    if (get_buffer(oe, &e, 8, 0, "epoch") < 0)
        return NULL;
    if (get_buffer(oc, &c, 0, 0, "counts") < 0) {
        PyBuffer_Release(&e);
        return NULL;
    }
    if (get_buffer(os, &sl, 8, 0, "slots") < 0) {
        PyBuffer_Release(&e);
        PyBuffer_Release(&c);
        return NULL;
    }
    if (get_buffer(oo, &o, 8, 1, "out") < 0) {
        PyBuffer_Release(&e);
        PyBuffer_Release(&c);
        PyBuffer_Release(&sl);
        return NULL;
    }
    int bad = c.ndim != 3 || e.ndim != 2 || c.shape[0] != e.shape[0] || c.shape[2] != e.shape[1] ||
              (c.itemsize != 4 && c.itemsize != 8) || length(&o) != length(&sl) * c.shape[1];
    if (!bad) {
        const Py_ssize_t nslots = c.shape[0], m = c.shape[1], nb = c.shape[2], k = length(&sl);
        const int64_t *epoch = e.buf, *slots = sl.buf, *c64 = c.buf;
        const int32_t *c32 = c.buf;
        int64_t *out = o.buf;
        int wide = c.itemsize == 8;
        Py_BEGIN_ALLOW_THREADS
        for (Py_ssize_t j = 0; j < k; j++) {
            int64_t s = slots[j];
            for (Py_ssize_t mi = 0; mi < m; mi++)
                out[j * m + mi] = 0;
            if (s < 0 || s >= nslots)
                continue;
            for (Py_ssize_t r = 0; r < nb; r++) {
                int64_t b = epoch[s * nb + r];
                if (b <= current - nb || b > current)
                    continue;
                for (Py_ssize_t mi = 0; mi < m; mi++)
                    out[j * m + mi] += wide ? c64[(s * m + mi) * nb + r] : c32[(s * m + mi) * nb + r];
            }
        }
        Py_END_ALLOW_THREADS
    } else {
        PyErr_SetString(PyExc_ValueError, "window_totals: shapes do not match");
    }
    PyBuffer_Release(&e);
    PyBuffer_Release(&c);
    PyBuffer_Release(&sl);
    PyBuffer_Release(&o);
    if (bad)
        return NULL;
    Py_RETURN_NONE;
}

/* hll_add(regs u8[S*2M], epoch i64[S*2], slots i64[n], hashes u64[n], epochs i64[n]):
 * windowed HyperLogLog update (detect/hll.py): half-window e uses register set e % 2,
 * cleared when it last held an earlier half-window (rows older than the set's are
 * dropped); register = low log2(M) bits of the hash,
 * rank = leading zeros of the remaining 55 bits + 1. Rows with a negative slot are skipped. */
static PyObject *k_hll_add(PyObject *self, PyObject *args)
{
    PyObject *o[5];
    if (!PyArg_ParseTuple(args, "OOOOO", &o[0], &o[1], &o[2], &o[3], &o[4]))
        return NULL;
    static const Py_ssize_t sizes[5] = {1, 8, 8, 8, 8};
    static const int writable[5] = {1, 1, 0, 0, 0};
    Py_buffer v[5];
    int got = 0;
    for (; got < 5; got++)
        if (get_buffer(o[got], &v[got], sizes[got], writable[got], "hll_add argument") < 0)
            break;
    int bad = got != 5;
    if (!bad) {
        bad = v[0].ndim != 2 || v[1].ndim != 2 || v[1].shape[1] != 2 || v[0].shape[0] != v[1].shape[0] ||
              (v[0].shape[1] & (v[0].shape[1] - 1)) != 0 || length(&v[3]) != length(&v[2]) ||
              length(&v[4]) != length(&v[2]);
        if (bad)
            PyErr_SetString(PyExc_ValueError, "hll_add: shapes do not match (regs[S, 2M], epoch[S, 2])");
    }
    if (!bad) {
        uint8_t *regs = v[0].buf;
        int64_t *epoch = v[1].buf;
        const int64_t *slots = v[2].buf, *epochs = v[4].buf;
        const uint64_t *hashes = v[3].buf;
        const Py_ssize_t nslots = v[0].shape[0], width = v[0].shape[1], m = width / 2, n = length(&v[2]);
        int shift = 0;
        while (((Py_ssize_t)1 << shift) < m)
            shift++;
        Py_BEGIN_ALLOW_THREADS
        for (Py_ssize_t i = 0; i < n; i++) {
            int64_t s = slots[i], e = epochs[i];
            if (s < 0 || s >= nslots)
                continue;
            int64_t h = ((e % 2) + 2) % 2;
            uint8_t *set = regs + s * width + h * m;
            if (epoch[s * 2 + h] > e) /* the set moved on to a later half-window */
                continue;
            if (epoch[s * 2 + h] != e) {
                memset(set, 0, (size_t)m);
                epoch[s * 2 + h] = e;
            }
            uint64_t rest = hashes[i] >> shift;
            int bits = rest ? 64 - __builtin_clzll(rest) : 0;
            int rank = (64 - shift + 1) - bits; /* 56 - bits for M = 512 */
            if (rank < 1)
                rank = 1;
            uint8_t *reg = set + (hashes[i] & (uint64_t)(m - 1));
            if (*reg < rank)
                *reg = (uint8_t)rank;
        }
        Py_END_ALLOW_THREADS
    }
    for (int j = 0; j < got; j++)
        PyBuffer_Release(&v[j]);
    if (bad)
        return NULL;
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"find", k_find, METH_VARARGS, "find(table_keys, keys, out, values=None): slot (or values[slot]) of each key, or -1"},
    {"insert", k_insert, METH_VARARGS, "insert(table_keys, keys, out) -> tombstones reused"},
    {"group", k_group, METH_VARARGS, "group(keys, order, starts) -> number of groups"},
    {"window_add", k_window_add, METH_VARARGS, "window_add(epoch, counts, slots, buckets, values)"},
    {"window_totals", k_window_totals, METH_VARARGS, "window_totals(epoch, counts, slots, current, out)"},
    {"hll_add", k_hll_add, METH_VARARGS, "hll_add(regs, epoch, slots, hashes, epochs)"},
    {"door_admit", k_door_admit, METH_VARARGS, "door_admit(door_key, door_ts, keys, ts, window, slot, back, back_ts)"},
    {"hash_cols", k_hash_cols, METH_VARARGS, "hash_cols(out, *cols): mixed uint64 key per row"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, .m_name = "_kernels", .m_doc = "Compiled detector-state loops", .m_size = -1, .m_methods = methods};

PyMODINIT_FUNC PyInit__kernels(void) { return PyModule_Create(&module); }
