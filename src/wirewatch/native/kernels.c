/* Compiled inner loops for detector state (the measured hot path, see README "Benchmarks").
 *
 * numpy cannot express a hash-table probe without one full-array pass per probe step,
 * nor group equal keys without sorting them. These few loops do exactly that and nothing
 * else: all policy (capacity, eviction, expiry, windows) stays in Python/numpy.
 * detect/count/kernels.py holds the numpy reference of every function here, used when this
 * module is not built and compared against it by the tests. Arrays arrive through the
 * buffer protocol (contiguous, checked), so there is no numpy C-API dependency.
 */
#include "buffers.h"
#include <math.h>

#ifdef __GLIBC__
#include <malloc.h>
#endif

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

/* ---- hash table ------------------------------------------------------------------- */

/* The slot holding key in an open-addressed index of 2^k slots (linear probing from
 * key & mask, stopping at the first empty slot; tombstones are passed over), or -1.
 * find and upsert both look keys up through it. */
static inline int64_t probe(const uint64_t *tk, uint64_t mask, Py_ssize_t nslots, uint64_t key)
{
    uint64_t p = key & mask;
    for (Py_ssize_t step = 0; step < nslots; step++) {
        uint64_t cur = tk[p];
        if (cur == key)
            return (int64_t)p;
        if (cur == EMPTY)
            return -1;
        p = (p + 1) & mask;
    }
    return -1;
}

/* find(table_keys u64[2^k], keys u64[n], out i64[n], values i32[2^k] or None):
 * slot of each key (or values[slot] when values are given), -1 where absent. */
static PyObject *k_find(PyObject *self, PyObject *args)
{
    PyObject *o[4] = {NULL, NULL, NULL, Py_None};
    if (!PyArg_ParseTuple(args, "OOO|O", &o[0], &o[1], &o[2], &o[3]))
        return NULL;
    static const buffer_spec specs[4] = {{8, 0, 0, "table"}, {8, 0, 0, "keys"}, {8, 1, 0, "out"}, {4, 0, 1, "values"}};
    Py_buffer v[4];
    if (get_buffers(o, v, specs, 4) < 0)
        return NULL;
    const uint64_t *tk = v[0].buf, *keys = v[1].buf;
    const int32_t *values = v[3].buf;
    int64_t *out = v[2].buf;
    Py_ssize_t nslots = length(&v[0]), n = length(&v[1]);
    int bad = length(&v[2]) < n || (values && length(&v[3]) < nslots);
    uint64_t mask = (uint64_t)nslots - 1;
    if (!bad) {
        Py_BEGIN_ALLOW_THREADS
        for (Py_ssize_t i = 0; i < n; i++) {
            int64_t slot = probe(tk, mask, nslots, keys[i]);
            out[i] = slot < 0 ? -1 : values ? values[slot] : slot;
        }
        Py_END_ALLOW_THREADS
    }
    return finish(v, 4, bad, "find: out or values too short");
}

/* insert(table_keys u64[2^k] (written), keys u64[n], out i64[n]) -> tombstones reused.
 * Keys must be absent and distinct; the caller keeps the table under 3/4 full. */
static PyObject *k_insert(PyObject *self, PyObject *args)
{
    PyObject *o[3];
    if (!PyArg_ParseTuple(args, "OOO", &o[0], &o[1], &o[2]))
        return NULL;
    static const buffer_spec specs[3] = {{8, 1, 0, "table"}, {8, 0, 0, "keys"}, {8, 1, 0, "out"}};
    Py_buffer v[3];
    if (get_buffers(o, v, specs, 3) < 0)
        return NULL;
    uint64_t *tk = v[0].buf;
    const uint64_t *keys = v[1].buf;
    int64_t *out = v[2].buf;
    Py_ssize_t nslots = length(&v[0]), n = length(&v[1]), reused = 0;
    int full = length(&v[2]) < n;
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
    release_buffers(v, 3);
    if (full) {
        PyErr_SetString(PyExc_ValueError, "insert: hash table full (or out too short)");
        return NULL;
    }
    return PyLong_FromSsize_t(reused);
}

/* upsert(index_keys u64[N], index_rows i32[N], row_keys u64[C], slot_of i32[C], free i32[C],
 *        last_seen f64[C], keys u64[n], ts f64[n], out i64[n], is_new u8[n], nfree, used, max_new)
 * -> (new, tombstones reused, nfree, used), or None when more than max_new keys are absent.
 * KeyTable.upsert's find-or-insert in one call (detect/count/table.py): the row of each
 * distinct key, found through the index, else a new row (freed rows first, newest freed
 * first, then never-used rows) inserted into the index in key order; last_seen is the
 * newer of its own and ts (new rows: ts). With more than max_new absent keys nothing is
 * changed: out then holds the found rows (-1 absent) and the caller takes the slow path. */
static PyObject *k_upsert(PyObject *self, PyObject *args)
{
    PyObject *o[10];
    Py_ssize_t nfree, used, max_new;
    if (!PyArg_ParseTuple(args, "OOOOOOOOOOnnn", &o[0], &o[1], &o[2], &o[3], &o[4], &o[5], &o[6], &o[7], &o[8],
                          &o[9], &nfree, &used, &max_new))
        return NULL;
    static const buffer_spec specs[10] = {{8, 1, 0, "index_keys"}, {4, 1, 0, "index_rows"}, {8, 1, 0, "row_keys"},
                                          {4, 1, 0, "slot_of"}, {4, 0, 0, "free"}, {8, 1, 0, "last_seen"},
                                          {8, 0, 0, "keys"}, {8, 0, 0, "ts"}, {8, 1, 0, "out"}, {1, 1, 0, "is_new"}};
    Py_buffer v[10];
    if (get_buffers(o, v, specs, 10) < 0)
        return NULL;
    Py_ssize_t nslots = length(&v[0]), cap = length(&v[2]), n = length(&v[6]);
    int bad = length(&v[1]) != nslots || nslots == 0 || (nslots & (nslots - 1)) != 0 || length(&v[3]) != cap ||
              length(&v[4]) != cap || length(&v[5]) != cap || length(&v[7]) != n || length(&v[8]) != n ||
              length(&v[9]) != n || nfree < 0 || nfree > cap || used < 0 || used > cap ||
              cap > INT32_MAX || nslots > ((Py_ssize_t)1 << 31); /* rows and slots are int32 */
    if (bad)
        return finish(v, 10, 1, "upsert: array lengths do not match");
    uint64_t *tk = v[0].buf, *row_keys = v[2].buf;
    int32_t *trow = v[1].buf, *slot_of = v[3].buf;
    int64_t *out = v[8].buf;
    const int32_t *freed = v[4].buf;
    double *last_seen = v[5].buf;
    const uint64_t *keys = v[6].buf;
    const double *ts = v[7].buf;
    uint8_t *is_new = v[9].buf;
    uint64_t mask = (uint64_t)nslots - 1;
    Py_ssize_t absent = 0, reused = 0, overflow = 0;
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < n; i++) {
        int64_t slot = probe(tk, mask, nslots, keys[i]);
        int64_t found = slot < 0 ? -1 : trow[slot];
        out[i] = found;
        absent += found < 0;
    }
    if (absent > max_new || absent > nfree + (cap - used)) {
        overflow = 1;
    } else {
        for (Py_ssize_t i = 0; i < n; i++) {
            int64_t row = out[i];
            if (row >= 0) {
                is_new[i] = 0;
                double held = last_seen[row], t = ts[i]; /* np.maximum: NaN wins */
                last_seen[row] = (held != held || t != t) ? held + t : (t > held ? t : held);
                continue;
            }
            uint64_t key = keys[i], p = key & mask;
            Py_ssize_t step = 0;
            while (tk[p] > TOMBSTONE && step < nslots) {
                p = (p + 1) & mask;
                step++;
            }
            if (step == nslots) { /* cannot happen: max_new keeps the index under 3/4 full */
                overflow = 2;
                break;
            }
            row = nfree > 0 ? freed[--nfree] : (int64_t)used++;
            reused += tk[p] == TOMBSTONE;
            tk[p] = key;
            trow[p] = (int32_t)row;
            slot_of[row] = (int32_t)p;
            row_keys[row] = key;
            last_seen[row] = ts[i];
            is_new[i] = 1;
            out[i] = row;
        }
    }
    Py_END_ALLOW_THREADS
    release_buffers(v, 10);
    if (overflow == 2) {
        PyErr_SetString(PyExc_ValueError, "upsert: hash index full");
        return NULL;
    }
    if (overflow)
        Py_RETURN_NONE;
    return Py_BuildValue("nnnn", absent, reused, nfree, used);
}

/* The hash set group and unique build over a batch's keys: one 16-byte slot per key (the key,
 * its group number and the call that wrote it), so a probe touches one cache line, and at
 * least 2n slots for n rows (probe runs stay short). The slots are kept from call to call (one
 * set per thread, grown to the largest batch seen): a slot written by an earlier call counts as
 * empty, so no call clears them (zeroing 2n slots cost more than the probes of a batch with
 * few distinct keys). */
typedef struct {
    uint64_t key;
    uint32_t call; /* the call that wrote the slot: other calls see it empty */
    uint32_t gid;
} group_slot;

typedef struct {
    group_slot *slots;
    Py_ssize_t nslots;
    uint32_t call;
} group_set;

static _Thread_local group_set group_sets;

/* The slots for a call over n rows (2^bits of them, bits >= 4), this call's number in *call;
 * NULL when out of memory or n >= 2^31. */
static group_slot *group_slots(Py_ssize_t n, int *bits_out, uint32_t *call)
{
    int bits = 4;
    while (((Py_ssize_t)1 << bits) < 2 * n)
        bits++;
    if (n >= ((Py_ssize_t)1 << 31))
        return NULL;
    group_set *gs = &group_sets;
    Py_ssize_t need = (Py_ssize_t)1 << bits;
    if (gs->nslots < need || ++gs->call == 0) { /* larger, or the call numbers wrapped round */
        Py_ssize_t size = gs->nslots > need ? gs->nslots : need;
        PyMem_RawFree(gs->slots);
        gs->slots = PyMem_RawCalloc((size_t)size, sizeof(group_slot));
        gs->nslots = gs->slots ? size : 0;
        gs->call = 1;
    }
    *bits_out = bits;
    *call = gs->call;
    return gs->slots;
}

/* The group number of `key` (new ones numbered from *g on, *g incremented), and whether it is new. */
static inline int64_t group_of(group_slot *slots, int bits, uint32_t call, uint64_t key, Py_ssize_t *g, int *is_new)
{
    uint64_t mask = ((uint64_t)1 << bits) - 1, p = (key * K3) >> (64 - bits);
    while (slots[p].call == call && slots[p].key != key)
        p = (p + 1) & mask;
    if (slots[p].call != call) {
        slots[p].key = key;
        slots[p].call = call;
        slots[p].gid = (uint32_t)(*g)++;
        *is_new = 1;
    } else {
        *is_new = 0;
    }
    return slots[p].gid;
}

/* group(keys u64[n], order i64[n], starts i64[n+1], inverse i64[n] or None) -> groups g.
 * Groups equal keys in order of first occurrence, rows stable within a group:
 * rows of group j are order[starts[j]:starts[j+1]]; inverse[i] is row i's group.
 * One hash pass + a counting sort. */
static PyObject *k_group(PyObject *self, PyObject *args)
{
    PyObject *o[4] = {NULL, NULL, NULL, Py_None};
    if (!PyArg_ParseTuple(args, "OOO|O", &o[0], &o[1], &o[2], &o[3]))
        return NULL;
    static const buffer_spec specs[4] = {{8, 0, 0, "keys"}, {8, 1, 0, "order"}, {8, 1, 0, "starts"},
                                         {8, 1, 1, "inverse"}};
    Py_buffer v[4];
    if (get_buffers(o, v, specs, 4) < 0)
        return NULL;
    const uint64_t *keys = v[0].buf;
    int64_t *order = v[1].buf, *starts = v[2].buf, *inverse = v[3].buf;
    Py_ssize_t n = length(&v[0]), g = 0;
    if (length(&v[1]) < n || length(&v[2]) < n + 1 || (inverse && length(&v[3]) < n))
        return finish(v, 4, 1, "group: output buffers too short");
    int bits;
    uint32_t call;
    group_slot *slots = group_slots(n, &bits, &call);
    int64_t *row_gid = inverse ? inverse : PyMem_RawMalloc((n + 1) * sizeof(int64_t));
    if (!slots || !row_gid) {
        if (!inverse)
            PyMem_RawFree(row_gid);
        release_buffers(v, 4);
        return PyErr_NoMemory();
    }
    Py_BEGIN_ALLOW_THREADS
    starts[0] = 0;
    int64_t gid = -1;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (!i || keys[i] != keys[i - 1]) { /* a run of one key (a flood's packets) is looked up once */
            int is_new;
            gid = group_of(slots, bits, call, keys[i], &g, &is_new);
            if (is_new)
                starts[gid + 1] = 0;
        }
        row_gid[i] = gid;
        starts[gid + 1]++;
    }
    for (Py_ssize_t j = 0; j < g; j++)
        starts[j + 1] += starts[j]; /* starts[j + 1]: the end of group j */
    for (Py_ssize_t i = n - 1; i >= 0; i--) /* backwards from each group's end: rows stay in order */
        order[--starts[row_gid[i] + 1]] = i;
    memmove(starts, starts + 1, g * sizeof(int64_t)); /* starts[j + 1] was group j's start */
    starts[g] = n;
    Py_END_ALLOW_THREADS
    if (!inverse)
        PyMem_RawFree(row_gid);
    release_buffers(v, 4);
    return PyLong_FromSsize_t(g);
}

/* unique(keys u64[n], uk u64[n], first i64[n], last i64[n], counts i64[n]) -> groups g.
 * The distinct keys in order of first occurrence (uk[:g]), each one's first and last row and
 * how many rows hold it: group's answer without the rows' order (one hash pass). */
static PyObject *k_unique(PyObject *self, PyObject *args)
{
    PyObject *o[5];
    if (!PyArg_ParseTuple(args, "OOOOO", &o[0], &o[1], &o[2], &o[3], &o[4]))
        return NULL;
    static const buffer_spec specs[5] = {{8, 0, 0, "keys"}, {8, 1, 0, "uk"}, {8, 1, 0, "first"},
                                         {8, 1, 0, "last"}, {8, 1, 0, "counts"}};
    Py_buffer v[5];
    if (get_buffers(o, v, specs, 5) < 0)
        return NULL;
    const uint64_t *keys = v[0].buf;
    uint64_t *uk = v[1].buf;
    int64_t *first = v[2].buf, *last = v[3].buf, *counts = v[4].buf;
    Py_ssize_t n = length(&v[0]), g = 0;
    if (length(&v[1]) < n || length(&v[2]) < n || length(&v[3]) < n || length(&v[4]) < n)
        return finish(v, 5, 1, "unique: output buffers too short");
    int bits;
    uint32_t call;
    group_slot *slots = group_slots(n, &bits, &call);
    if (!slots) {
        release_buffers(v, 5);
        return PyErr_NoMemory();
    }
    Py_BEGIN_ALLOW_THREADS
    int64_t gid = -1;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (!i || keys[i] != keys[i - 1]) { /* a run of one key is looked up once */
            int is_new;
            gid = group_of(slots, bits, call, keys[i], &g, &is_new);
            if (is_new) {
                uk[gid] = keys[i];
                first[gid] = i;
                counts[gid] = 0;
            }
        }
        last[gid] = i;
        counts[gid]++;
    }
    Py_END_ALLOW_THREADS
    release_buffers(v, 5);
    return PyLong_FromSsize_t(g);
}

/* isin(keys u64[n], of u64[m], out bool[n]): out[i] = keys[i] is among `of` (np.isin, in
 * one pass over each: a hash set of `of`, then one probe per key). */
static PyObject *k_isin(PyObject *self, PyObject *args)
{
    PyObject *o[3];
    if (!PyArg_ParseTuple(args, "OOO", &o[0], &o[1], &o[2]))
        return NULL;
    static const buffer_spec specs[3] = {{8, 0, 0, "keys"}, {8, 0, 0, "of"}, {1, 1, 0, "out"}};
    Py_buffer v[3];
    if (get_buffers(o, v, specs, 3) < 0)
        return NULL;
    const uint64_t *keys = v[0].buf, *of = v[1].buf;
    uint8_t *out = v[2].buf;
    Py_ssize_t n = length(&v[0]), m = length(&v[1]);
    if (length(&v[2]) < n)
        return finish(v, 3, 1, "isin: out shorter than keys");
    int bits = 4;
    while (((Py_ssize_t)1 << bits) < 2 * m)
        bits++;
    Py_ssize_t nslots = (Py_ssize_t)1 << bits;
    uint64_t mask = (uint64_t)nslots - 1;
    uint64_t *slot_key = PyMem_RawMalloc(nslots * sizeof(uint64_t));
    uint8_t *used = PyMem_RawCalloc(nslots, 1);
    if (!slot_key || !used) {
        PyMem_RawFree(slot_key);
        PyMem_RawFree(used);
        release_buffers(v, 3);
        return PyErr_NoMemory();
    }
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t j = 0; j < m; j++) {
        uint64_t key = of[j], p = (key * K3) >> (64 - bits);
        while (used[p] && slot_key[p] != key)
            p = (p + 1) & mask;
        used[p] = 1;
        slot_key[p] = key;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        uint64_t key = keys[i], p = (key * K3) >> (64 - bits);
        while (used[p] && slot_key[p] != key)
            p = (p + 1) & mask;
        out[i] = used[p];
    }
    Py_END_ALLOW_THREADS
    PyMem_RawFree(slot_key);
    PyMem_RawFree(used);
    return finish(v, 3, 0, NULL);
}

/* Whether a buffer's elements are signed integers (bool and unsigned: 0); -1 if not integers. */
static int integer_kind(const Py_buffer *v)
{
    const char *f = v->format ? v->format : "B";
    while (*f == '<' || *f == '>' || *f == '=' || *f == '@' || *f == '!')
        f++;
    if (f[0] == '\0' || f[1] != '\0')
        return -1;
    if (strchr("bhilq", f[0]))
        return 1;
    return strchr("BHILQ?", f[0]) ? 0 : -1;
}

#define MAX_COLS 8

static inline uint64_t mix_step(uint64_t h, uint64_t x)
{
    h = (h ^ x) * K3;
    return h ^ (h >> 29);
}

/* A row's key from its mixed columns: never EMPTY or TOMBSTONE. */
static inline uint64_t finish_key(uint64_t h)
{
    h = mix64(h);
    return h <= TOMBSTONE ? h + 2 : h;
}

/* hash_cols(out u64[n], col, col, ...): one well-mixed key per row, never 0 or 1. */
static PyObject *k_hash_cols(PyObject *self, PyObject *args)
{
    int n_args = (int)PyTuple_GET_SIZE(args), ncols = n_args - 1;
    if (ncols < 1 || ncols > MAX_COLS) {
        PyErr_Format(PyExc_TypeError, "hash_cols takes out and 1..%d columns", MAX_COLS);
        return NULL;
    }
    PyObject *o[MAX_COLS + 1];
    buffer_spec specs[MAX_COLS + 1] = {{8, 1, 0, "out"}};
    for (int i = 0; i < n_args; i++) {
        o[i] = PyTuple_GET_ITEM(args, i);
        if (i)
            specs[i] = (buffer_spec){0, 0, 0, "column"};
    }
    Py_buffer v[MAX_COLS + 1] = {{0}};
    if (get_buffers(o, v, specs, n_args) < 0)
        return NULL;
    Py_ssize_t n = length(&v[0]);
    int is_signed[MAX_COLS + 1] = {0}, bad = 0;
    for (int c = 1; c < n_args; c++) {
        is_signed[c] = integer_kind(&v[c]);
        Py_ssize_t size = v[c].itemsize;
        bad |= is_signed[c] < 0 || length(&v[c]) != n || !(size == 1 || size == 2 || size == 4 || size == 8);
    }
    if (!bad) {
        uint64_t *out = v[0].buf;
        Py_BEGIN_ALLOW_THREADS
        /* Column after column, each row's h = (h ^ value) * K3, h ^= h >> 29 from SEED, then
         * mix64. A run of up to four 8-byte columns (addresses come as hi, lo pairs) is mixed in
         * one loop, the first starts from SEED and the last one finishes the key: h stays in a
         * register instead of going through out between columns. */
        for (int c = 1; c < n_args;) {
            int run = 0;
            while (run < 4 && c + run < n_args && v[c + run].itemsize == 8)
                run++;
            int step = run ? run : 1, begin = c == 1, end = c + step == n_args;
#define ROWS(BODY)                                                    \
    for (Py_ssize_t i = 0; i < n; i++) {                              \
        uint64_t h = begin ? SEED : out[i];                           \
        BODY;                                                         \
        out[i] = end ? finish_key(h) : h;                             \
    }
            if (run) {
                const uint64_t *a = v[c].buf, *b = v[c + (run > 1)].buf, *d = v[c + (run > 2) * 2].buf;
                const uint64_t *e = v[c + (run > 3) * 3].buf;
                switch (run) {
                case 1: ROWS(h = mix_step(h, a[i])) break;
                case 2: ROWS(h = mix_step(mix_step(h, a[i]), b[i])) break;
                case 3: ROWS(h = mix_step(mix_step(mix_step(h, a[i]), b[i]), d[i])) break;
                default: ROWS(h = mix_step(mix_step(mix_step(mix_step(h, a[i]), b[i]), d[i]), e[i])) break;
                }
            } else {
                /* one loop per element type, so the element read is not decided per element */
                const char *base = v[c].buf;
#define MIX_COLUMN(T) ROWS(h = mix_step(h, (uint64_t)(int64_t)((const T *)base)[i]))
                switch (v[c].itemsize * 2 + (is_signed[c] == 1)) {
                case 2: MIX_COLUMN(uint8_t) break;
                case 3: MIX_COLUMN(int8_t) break;
                case 4: MIX_COLUMN(uint16_t) break;
                case 5: MIX_COLUMN(int16_t) break;
                case 8: MIX_COLUMN(uint32_t) break;
                default: MIX_COLUMN(int32_t) break;
                }
#undef MIX_COLUMN
            }
#undef ROWS
            c += step;
        }
        Py_END_ALLOW_THREADS
    }
    return finish(v, n_args, bad, "hash_cols: every column must hold as many integers as out");
}

/* door_admit(door_key u64[2^b], door_ts f64[2^b], keys u64[k], ts f64[k], window,
 *            slot_out i64[k], back_out u8[k], back_ts f64[k]) -> rows back.
 * The doorkeeper's direct-mapped memory (detect/count/doorkeeper.py), one candidate row at a time:
 * a key whose slot holds it from within `window` comes back (its parked time is returned
 * and the slot is freed); any other key parks its row in the slot. */
static PyObject *k_door_admit(PyObject *self, PyObject *args)
{
    PyObject *o[7];
    double window;
    if (!PyArg_ParseTuple(args, "OOOOdOOO", &o[0], &o[1], &o[2], &o[3], &window, &o[4], &o[5], &o[6]))
        return NULL;
    static const buffer_spec specs[7] = {{8, 1, 0, "door_key"}, {8, 1, 0, "door_ts"}, {8, 0, 0, "keys"},
                                         {8, 0, 0, "ts"}, {8, 1, 0, "slot"}, {1, 1, 0, "back"}, {8, 1, 0, "back_ts"}};
    Py_buffer v[7];
    if (get_buffers(o, v, specs, 7) < 0)
        return NULL;
    Py_ssize_t nslots = length(&v[0]), k = length(&v[2]), nback = 0;
    int bad = length(&v[1]) != nslots || nslots == 0 || (nslots & (nslots - 1)) != 0;
    for (int j = 3; j < 7; j++)
        bad |= length(&v[j]) != k;
    if (bad)
        return finish(v, 7, 1, "door_admit: array lengths do not match");
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
    release_buffers(v, 7);
    return PyLong_FromSsize_t(nback);
}

/* ---- rolling windows ---------------------------------------------------------------- */

/* counts[slot, metric, ring] as int32 or int64 */
static inline int64_t count_at(const Py_buffer *c, Py_ssize_t i)
{
    return c->itemsize == 8 ? ((const int64_t *)c->buf)[i] : ((const int32_t *)c->buf)[i];
}

static inline void count_set(Py_buffer *c, Py_ssize_t i, int64_t value)
{
    if (c->itemsize == 8)
        ((int64_t *)c->buf)[i] = value;
    else
        ((int32_t *)c->buf)[i] = (int32_t)value;
}

/* A ring cell that holds bucket *cell_epoch receives a row of bucket b: -1 = the row is
 * older than the cell (drop it), 1 = the cell moves on to b (clear its contents first),
 * 0 = same bucket. Shared by window_add and hll_add. */
static inline int advance_cell(int64_t *cell_epoch, int64_t b)
{
    if (*cell_epoch > b)
        return -1;
    if (*cell_epoch == b)
        return 0;
    *cell_epoch = b;
    return 1;
}

/* epoch[S, nb] and counts[S, m, nb] agree, and counts are int32 or int64 */
static int ring_shapes_ok(const Py_buffer *e, const Py_buffer *c)
{
    return c->ndim == 3 && e->ndim == 2 && c->shape[0] == e->shape[0] && c->shape[2] == e->shape[1] &&
           (c->itemsize == 4 || c->itemsize == 8);
}

/* window_add(epoch i64[S*nb], counts i32|i64[S*m*nb], slots i64[n], buckets i64[n],
 *            values i64[n*m]): add row i's m values to cell (slot, bucket % nb).
 * A cell holding an older bucket is cleared first; rows older than their cell's bucket
 * are dropped (the ring moved on). Rows with a negative slot are skipped. */
static PyObject *k_window_add(PyObject *self, PyObject *args)
{
    PyObject *o[5];
    if (!PyArg_ParseTuple(args, "OOOOO", &o[0], &o[1], &o[2], &o[3], &o[4]))
        return NULL;
    static const buffer_spec specs[5] = {{8, 1, 0, "epoch"}, {0, 1, 0, "counts"}, {8, 0, 0, "slots"},
                                         {8, 0, 0, "buckets"}, {8, 0, 0, "values"}};
    Py_buffer v[5];
    if (get_buffers(o, v, specs, 5) < 0)
        return NULL;
    Py_ssize_t n = length(&v[2]);
    int bad = !ring_shapes_ok(&v[0], &v[1]) || length(&v[3]) != n || length(&v[4]) != n * v[1].shape[1];
    if (!bad) {
        const Py_ssize_t nslots = v[1].shape[0], m = v[1].shape[1], nb = v[1].shape[2];
        int64_t *epoch = v[0].buf;
        const int64_t *slots = v[2].buf, *buckets = v[3].buf, *values = v[4].buf;
        Py_BEGIN_ALLOW_THREADS
        for (Py_ssize_t i = 0; i < n; i++) {
            int64_t s = slots[i], b = buckets[i];
            if (s < 0 || s >= nslots)
                continue;
            Py_ssize_t ring = (Py_ssize_t)(((b % nb) + nb) % nb); /* b < 0: before 1970 */
            int moved = advance_cell(&epoch[s * nb + ring], b);
            if (moved < 0)
                continue;
            for (Py_ssize_t j = 0; moved && j < m; j++)
                count_set(&v[1], (s * m + j) * nb + ring, 0);
            for (Py_ssize_t j = 0; j < m; j++) {
                Py_ssize_t at = (s * m + j) * nb + ring;
                count_set(&v[1], at, count_at(&v[1], at) + values[i * m + j]);
            }
        }
        Py_END_ALLOW_THREADS
    }
    return finish(v, 5, bad, "window_add: shapes do not match (counts[slots, m, nb], epoch[slots, nb])");
}

#define MAX_METRICS 16

/* window_add_rows(epoch i64[S, nb], counts i32|i64[S, m, nb], slots i64[g], inverse i64[n], ts f64[n],
 *                 width, (values i64[n] or None) * m):
 * window_add of rows given as WindowCounter.add holds them: row i goes to the slot of its
 * key (slots[inverse[i]]), into bucket floor(ts[i] / width), adding values[j][i] to metric
 * j (a metric without values adds 0). No per-row slot, bucket or value matrix is built. */
static PyObject *k_window_add_rows(PyObject *self, PyObject *args)
{
    PyObject *o[5 + MAX_METRICS], *cols;
    double width;
    if (!PyArg_ParseTuple(args, "OOOOOdO!", &o[0], &o[1], &o[2], &o[3], &o[4], &width, &PyTuple_Type, &cols))
        return NULL;
    Py_ssize_t m = PyTuple_GET_SIZE(cols);
    if (m > MAX_METRICS) {
        PyErr_SetString(PyExc_ValueError, "window_add_rows: too many metrics");
        return NULL;
    }
    buffer_spec specs[5 + MAX_METRICS] = {{8, 1, 0, "epoch"}, {0, 1, 0, "counts"}, {8, 0, 0, "slots"},
                                          {8, 0, 0, "inverse"}, {8, 0, 0, "ts"}};
    for (Py_ssize_t j = 0; j < m; j++) {
        o[5 + j] = PyTuple_GET_ITEM(cols, j);
        specs[5 + j] = (buffer_spec){8, 0, 1, "values"};
    }
    int nbuf = 5 + (int)m;
    Py_buffer v[5 + MAX_METRICS];
    if (get_buffers(o, v, specs, nbuf) < 0)
        return NULL;
    Py_ssize_t n = length(&v[3]), g = length(&v[2]);
    int bad = !ring_shapes_ok(&v[0], &v[1]) || v[1].shape[1] != m || length(&v[4]) != n || !(width > 0);
    for (Py_ssize_t j = 0; j < m; j++)
        bad |= v[5 + j].buf != NULL && length(&v[5 + j]) != n;
    if (!bad) {
        const Py_ssize_t nslots = v[1].shape[0], nb = v[1].shape[2];
        int64_t *epoch = v[0].buf;
        const int64_t *slots = v[2].buf, *inverse = v[3].buf;
        const double *ts = v[4].buf;
        /* only the metrics given are added: their columns and where they go in a cell's row */
        const int64_t *values[MAX_METRICS];
        Py_ssize_t metric[MAX_METRICS], given = 0;
        for (Py_ssize_t j = 0; j < m; j++) {
            if (v[5 + j].buf) {
                values[given] = v[5 + j].buf;
                metric[given++] = j;
            }
        }
        Py_BEGIN_ALLOW_THREADS
        /* one loop per count type, so the cell's width is not decided per value */
#define ADD_ROWS(T)                                                                           \
    {                                                                                         \
        T *counts = v[1].buf;                                                                 \
        for (Py_ssize_t i = 0; i < n; i++) {                                                  \
            int64_t k = inverse[i];                                                           \
            if (k < 0 || k >= g)                                                              \
                continue;                                                                     \
            double q = ts[i] / width;                                                         \
            int64_t s = slots[k], b = (int64_t)q;                                             \
            b -= q < (double)b; /* floor: truncation moved down for a negative fraction */    \
            if (s < 0 || s >= nslots)                                                         \
                continue;                                                                     \
            int64_t ring = b % nb; /* one division: b < 0 (before 1970) gives a negative rest */ \
            ring += ring < 0 ? nb : 0;                                                        \
            int moved = advance_cell(&epoch[s * nb + ring], b);                               \
            if (moved < 0)                                                                    \
                continue;                                                                     \
            T *cell = counts + s * m * nb + ring; /* metric j at cell[j * nb] */              \
            for (Py_ssize_t j = 0; moved && j < m; j++)                                       \
                cell[j * nb] = 0;                                                             \
            for (Py_ssize_t x = 0; x < given; x++)                                            \
                cell[metric[x] * nb] = (T)((int64_t)cell[metric[x] * nb] + values[x][i]);     \
        }                                                                                     \
    }
        if (v[1].itemsize == 8)
            ADD_ROWS(int64_t)
        else
            ADD_ROWS(int32_t)
#undef ADD_ROWS
        Py_END_ALLOW_THREADS
    }
    return finish(v, nbuf, bad, "window_add_rows: shapes do not match (counts[slots, m, nb], epoch[slots, nb], "
                                "a value column per metric)");
}

/* window_totals(epoch i64[S*nb], counts i32|i64[S*m*nb], slots i64[k], current, out i64[k*m]):
 * each slot's per-metric sum over the ring cells whose bucket lies in (current - nb, current]. */
static PyObject *k_window_totals(PyObject *self, PyObject *args)
{
    PyObject *o[4];
    long long current;
    if (!PyArg_ParseTuple(args, "OOOLO", &o[0], &o[1], &o[2], &current, &o[3]))
        return NULL;
    static const buffer_spec specs[4] = {{8, 0, 0, "epoch"}, {0, 0, 0, "counts"}, {8, 0, 0, "slots"}, {8, 1, 0, "out"}};
    Py_buffer v[4];
    if (get_buffers(o, v, specs, 4) < 0)
        return NULL;
    int bad = !ring_shapes_ok(&v[0], &v[1]) || length(&v[3]) != length(&v[2]) * v[1].shape[1];
    if (!bad) {
        const Py_ssize_t nslots = v[1].shape[0], m = v[1].shape[1], nb = v[1].shape[2], k = length(&v[2]);
        const int64_t *epoch = v[0].buf, *slots = v[2].buf;
        int64_t *out = v[3].buf;
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
                    out[j * m + mi] += count_at(&v[1], (s * m + mi) * nb + r);
            }
        }
        Py_END_ALLOW_THREADS
    }
    return finish(v, 4, bad, "window_totals: shapes do not match");
}

/* hll_add(regs u8[S*2M], epoch i64[S*2], slots i64[n], hashes u64[n], epochs i64[n]):
 * windowed HyperLogLog update (detect/count/hll.py): half-window e uses register set e % 2,
 * cleared when it last held an earlier half-window (rows older than the set's are
 * dropped); register = low log2(M) bits of the hash, rank = leading zeros of the
 * remaining bits + 1. Rows with a negative slot are skipped. */
static PyObject *k_hll_add(PyObject *self, PyObject *args)
{
    PyObject *o[5];
    if (!PyArg_ParseTuple(args, "OOOOO", &o[0], &o[1], &o[2], &o[3], &o[4]))
        return NULL;
    static const buffer_spec specs[5] = {{1, 1, 0, "regs"}, {8, 1, 0, "epoch"}, {8, 0, 0, "slots"},
                                         {8, 0, 0, "hashes"}, {8, 0, 0, "epochs"}};
    Py_buffer v[5];
    if (get_buffers(o, v, specs, 5) < 0)
        return NULL;
    int bad = v[0].ndim != 2 || v[1].ndim != 2 || v[1].shape[1] != 2 || v[0].shape[0] != v[1].shape[0] ||
              (v[0].shape[1] & (v[0].shape[1] - 1)) != 0 || length(&v[3]) != length(&v[2]) ||
              length(&v[4]) != length(&v[2]);
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
            int moved = advance_cell(&epoch[s * 2 + h], e);
            if (moved < 0)
                continue;
            if (moved)
                memset(set, 0, (size_t)m);
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
    return finish(v, 5, bad, "hll_add: shapes do not match (regs[S, 2M], epoch[S, 2])");
}

/* ---- the process heap ---------------------------------------------------------------- */

/* keep_heap(trim_bytes, mmap_threshold) -> whether glibc took both settings.
 * A slice's temporaries (a few hundred KB to a few MB per column) are allocated and freed
 * again dozens of times per slice. With glibc's defaults the freed top of the heap is
 * handed back to the kernel (and arrays above the dynamic mmap threshold get mappings of
 * their own), so the next slice faults the same memory in again, zeroed: on bulk.pcap
 * about 60 % of the process's page faults. A fixed mmap threshold and a higher trim
 * threshold keep that memory in the heap (peak RSS grows by about the trim threshold). */
static PyObject *k_keep_heap(PyObject *self, PyObject *args)
{
    Py_ssize_t trim, threshold;
    if (!PyArg_ParseTuple(args, "nn", &trim, &threshold))
        return NULL;
#ifdef __GLIBC__
    int ok = trim > 0 && threshold > 0 && threshold <= INT_MAX && trim <= INT_MAX &&
             mallopt(M_MMAP_THRESHOLD, (int)threshold) == 1 && mallopt(M_TRIM_THRESHOLD, (int)trim) == 1;
    return PyBool_FromLong(ok);
#else
    (void)trim;
    (void)threshold;
    Py_RETURN_FALSE;
#endif
}

static PyMethodDef methods[] = {
    {"find", k_find, METH_VARARGS, "find(table_keys, keys, out, values=None): slot (or values[slot]) of each key, or -1"},
    {"insert", k_insert, METH_VARARGS, "insert(table_keys, keys, out) -> tombstones reused"},
    {"upsert", k_upsert, METH_VARARGS, "upsert(index_keys, index_rows, row_keys, slot_of, free, last_seen, keys, ts, "
                                       "out, is_new, nfree, used, max_new) -> (new, reused, nfree, used) or None"},
    {"group", k_group, METH_VARARGS, "group(keys, order, starts, inverse=None) -> number of groups"},
    {"unique", k_unique, METH_VARARGS, "unique(keys, uk, first, last, counts) -> number of distinct keys"},
    {"isin", k_isin, METH_VARARGS, "isin(keys, of, out): whether each key is among `of`"},
    {"hash_cols", k_hash_cols, METH_VARARGS, "hash_cols(out, *cols): mixed uint64 key per row"},
    {"door_admit", k_door_admit, METH_VARARGS, "door_admit(door_key, door_ts, keys, ts, window, slot, back, back_ts)"},
    {"window_add", k_window_add, METH_VARARGS, "window_add(epoch, counts, slots, buckets, values)"},
    {"window_add_rows", k_window_add_rows, METH_VARARGS,
     "window_add_rows(epoch, counts, slots, inverse, ts, width, (values or None, ...))"},
    {"window_totals", k_window_totals, METH_VARARGS, "window_totals(epoch, counts, slots, current, out)"},
    {"hll_add", k_hll_add, METH_VARARGS, "hll_add(regs, epoch, slots, hashes, epochs)"},
    {"keep_heap", k_keep_heap, METH_VARARGS, "keep_heap(trim_bytes, mmap_threshold) -> whether glibc took them"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, .m_name = "_kernels", .m_doc = "Compiled detector-state loops", .m_size = -1,
    .m_methods = methods};

PyMODINIT_FUNC PyInit__kernels(void) { return PyModule_Create(&module); }
