/* The record walker of wirewatch/capture/walk.py, compiled: classic pcap records and pcapng
 * packet blocks found in a buffer (a mapped file or a streamed chunk), one batch per call.
 *
 * Nothing is copied: each packet becomes one row of `meta` (sec, usec, offset, caplen) with
 * its offset relative to the first packet's data (`base`), so the caller hands the decoder
 * the window buf[base : base + last offset + last caplen] of the same buffer. The
 * nanoseconds beyond the microsecond go to `sub` (0..999).
 *
 * walk.py's Python walker is the reference: the same arguments, statuses and rows (the
 * tests compare the two, and both with libpcap). A call stops at the first of: `sub` full,
 * the end of the buffer, an incomplete record at the end (the stream reads more, a mapped
 * file is truncated), damage, a block the Python side handles (pcapng section header and
 * interface description), or a packet whose link type differs from the batch's.
 */
#include "buffers.h"

#include <dlfcn.h>
#include <signal.h>
#include <sys/time.h>
#include <sys/mman.h>
#include <unistd.h>

/* keep in step with walk.py */
enum {
    ST_FULL, ST_END, ST_INCOMPLETE, ST_BAD_CAPLEN, ST_BAD_BLOCK_LENGTH, ST_BAD_INTERFACE, ST_BAD_PACKET_LENGTH,
    ST_HEADER, ST_LINKTYPE
};
#define MAX_CAPLEN 262144u           /* libpcap's largest snapshot for the usual link types */
#define MAX_BLOCK (16u * 1024 * 1024) /* libpcap's largest pcapng block */
#define WINDOW_MAX 0xFFFFFFFFull     /* offsets in meta are uint32 */
#define PREFETCH_RECORDS 16 /* how many records ahead the walk asks for headers (measured: 8-32 alike) */
#define MAP_AHEAD 65536u /* bytes: the kernel's fault-around (16 pages); 32-128 KiB measured alike */
#define BT_SHB 0x0A0D0D0Au
#define BT_IDB 1u
#define BT_PB 2u
#define BT_SPB 3u
#define BT_EPB 6u

static inline uint32_t rd32(const uint8_t *p, int big)
{
    return big ? ((uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3])
               : ((uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 | p[0]);
}
static inline uint16_t rd16(const uint8_t *p, int big)
{
    return big ? (uint16_t)(p[0] << 8 | p[1]) : (uint16_t)(p[1] << 8 | p[0]);
}

/* A hint, never a read: the cache line at p + at, when it lies inside the buffer. */
static inline void prefetch_ahead(const uint8_t *p, int64_t at, int64_t end)
{
    if (at < end)
        __builtin_prefetch(p + at);
}

/* Have the pages MAP_AHEAD bytes ahead of pos mapped: one read a MAP_AHEAD block. A prefetch
 * into a page not yet mapped is dropped, and a mapped file's pages are mapped by the fault of a
 * first read (the kernel maps the 16 pages around it): without this, the records of each
 * block's last stretch would each wait for memory. Returns the new high-water mark. */
static inline int64_t map_ahead(const uint8_t *p, int64_t pos, int64_t touched, int64_t end)
{
    while (touched <= pos + MAP_AHEAD && touched < end) {
        (void)*(volatile const uint8_t *)(p + touched);
        touched += MAP_AHEAD;
    }
    return touched;
}

typedef struct {
    uint32_t *meta;
    uint16_t *sub;
    Py_ssize_t cap, n;
    int64_t base;
} rows;

/* Append one packet; 0 when the window would outgrow uint32 offsets (the batch ends first). */
static inline int add_row(rows *r, uint64_t sec, uint64_t nsec, int64_t data, uint32_t caplen)
{
    if (r->n == 0)
        r->base = data;
    else if ((uint64_t)(data - r->base) + caplen > WINDOW_MAX)
        return 0;
    uint32_t *m = r->meta + 4 * r->n;
    m[0] = (uint32_t)sec;
    m[1] = (uint32_t)(nsec / 1000);
    m[2] = (uint32_t)(data - r->base);
    m[3] = caplen;
    r->sub[r->n] = (uint16_t)(nsec % 1000);
    r->n++;
    return 1;
}

static int get_rows(PyObject *ometa, PyObject *osub, Py_buffer *v, rows *r)
{
    PyObject *o[2] = {ometa, osub};
    const buffer_spec specs[2] = {{4, 1, 0, "meta"}, {2, 1, 0, "sub"}};
    if (get_buffers(o, v, specs, 2) < 0)
        return -1;
    r->meta = v[0].buf;
    r->sub = v[1].buf;
    r->cap = length(&v[1]);
    r->n = 0;
    r->base = 0;
    if (length(&v[0]) < 4 * r->cap) {
        release_buffers(v, 2);
        PyErr_SetString(PyExc_ValueError, "walk: meta has fewer than 4 x len(sub) items");
        return -1;
    }
    return 0;
}

/* walk_pcap(buf, pos, big, nano, snapshot, meta, sub) -> (n, pos, status, base) */
static PyObject *k_walk_pcap(PyObject *self, PyObject *args)
{
    PyObject *obuf, *ometa, *osub;
    Py_ssize_t pos;
    int big, nano;
    unsigned int snapshot;
    if (!PyArg_ParseTuple(args, "OniiIOO", &obuf, &pos, &big, &nano, &snapshot, &ometa, &osub))
        return NULL;
    Py_buffer b, v[2];
    rows r;
    if (get_buffer(obuf, &b, 0, 0, "buf") < 0)
        return NULL;
    if (get_rows(ometa, osub, v, &r) < 0) {
        PyBuffer_Release(&b);
        return NULL;
    }
    if (pos < 0 || pos > b.len) { /* the loop reads p + pos: never outside the buffer */
        release_buffers(v, 2);
        return finish(&b, 1, 1, "walk_pcap: pos outside the buffer");
    }
    const uint8_t *p = b.buf;
    const int64_t end = b.len;
    int status = ST_FULL;
    int64_t touched = pos - pos % MAP_AHEAD;
    Py_BEGIN_ALLOW_THREADS
    while (r.n < r.cap) {
        touched = map_ahead(p, pos, touched, end);
        if (pos == end) {
            status = ST_END;
            break;
        }
        if (pos + 16 > end) {
            status = ST_INCOMPLETE;
            break;
        }
        const uint8_t *h = p + pos;
        uint32_t sec = rd32(h, big), frac = rd32(h + 4, big), caplen = rd32(h + 8, big);
        if (caplen > MAX_CAPLEN) {
            status = ST_BAD_CAPLEN;
            break;
        }
        if (pos + 16 + (int64_t)caplen > end) {
            status = ST_INCOMPLETE;
            break;
        }
        /* the records ahead are likely the same size as this one (bulk transfers): ask for their
         * headers now, so that their cache misses overlap this walk instead of following it */
        prefetch_ahead(p, pos + (int64_t)PREFETCH_RECORDS * (16 + caplen), end);
        uint64_t nsec = nano ? frac : (uint64_t)frac * 1000;
        if (!add_row(&r, sec, nsec, pos + 16, caplen < snapshot ? caplen : snapshot))
            break;
        pos += 16 + caplen;
    }
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&b);
    release_buffers(v, 2);
    return Py_BuildValue("nnnL", r.n, pos, (Py_ssize_t)status, (long long)r.base);
}

/* Interface description blocks seen so far in the section, as arrays indexed by interface id. */
typedef struct {
    const int32_t *linktype;
    const uint32_t *snaplen;
    const uint64_t *units; /* time stamp units per second (if_tsresol) */
    const int64_t *offset; /* seconds added to every time stamp (if_tsoffset) */
    Py_ssize_t count;
} interfaces;

static inline void split_ts(uint64_t ts, uint64_t units, int64_t offset, uint64_t *sec, uint64_t *nsec)
{
    *sec = ts / units + (uint64_t)offset;
    *nsec = (uint64_t)(((unsigned __int128)(ts % units) * 1000000000u) / units);
}

/* walk_pcapng(buf, pos, big, linktypes, snaplens, units, offsets, meta, sub) -> (n, pos, status, base, linktype) */
static PyObject *k_walk_pcapng(PyObject *self, PyObject *args)
{
    PyObject *obuf, *olt, *osnap, *ounits, *ooff, *ometa, *osub;
    Py_ssize_t pos;
    int big;
    if (!PyArg_ParseTuple(args, "OniOOOOOO", &obuf, &pos, &big, &olt, &osnap, &ounits, &ooff, &ometa, &osub))
        return NULL;
    PyObject *o[5] = {obuf, olt, osnap, ounits, ooff};
    const buffer_spec specs[5] = {{0, 0, 0, "buf"}, {4, 0, 0, "linktypes"}, {4, 0, 0, "snaplens"},
                                  {8, 0, 0, "units"}, {8, 0, 0, "offsets"}};
    Py_buffer in[5], v[2];
    rows r;
    if (get_buffers(o, in, specs, 5) < 0)
        return NULL;
    if (get_rows(ometa, osub, v, &r) < 0) {
        release_buffers(in, 5);
        return NULL;
    }
    interfaces ifs = {in[1].buf, in[2].buf, in[3].buf, in[4].buf, length(&in[1])};
    if (length(&in[2]) < ifs.count || length(&in[3]) < ifs.count || length(&in[4]) < ifs.count) {
        release_buffers(v, 2);
        return finish(in, 5, 1, "walk_pcapng: interface arrays of different lengths");
    }
    for (Py_ssize_t i = 0; i < ifs.count; i++) {
        if (ifs.units[i] == 0) {
            release_buffers(v, 2);
            return finish(in, 5, 1, "walk_pcapng: zero time stamp units");
        }
    }
    if (pos < 0 || pos > in[0].len) {
        release_buffers(v, 2);
        return finish(in, 5, 1, "walk_pcapng: pos outside the buffer");
    }
    const uint8_t *p = in[0].buf;
    const int64_t end = in[0].len;
    int status = ST_FULL;
    int64_t linktype = -1;
    int64_t touched = pos - pos % MAP_AHEAD;
    Py_BEGIN_ALLOW_THREADS
    while (r.n < r.cap) {
        touched = map_ahead(p, pos, touched, end);
        if (pos == end) {
            status = ST_END;
            break;
        }
        if (pos + 12 > end) {
            status = ST_INCOMPLETE;
            break;
        }
        const uint8_t *h = p + pos;
        uint32_t type = rd32(h, big), total = rd32(h + 4, big);
        if (type == BT_SHB || type == BT_IDB) {
            status = ST_HEADER;
            break;
        }
        if (total < 12 || total % 4 || total > MAX_BLOCK) {
            status = ST_BAD_BLOCK_LENGTH;
            break;
        }
        if (pos + (int64_t)total > end) {
            status = ST_INCOMPLETE;
            break;
        }
        prefetch_ahead(p, pos + (int64_t)PREFETCH_RECORDS * total, end); /* as in walk_pcap */
        prefetch_ahead(p, pos + (int64_t)(PREFETCH_RECORDS + 1) * total - 4, end); /* its trailer */
        if (rd32(h + total - 4, big) != total) {
            status = ST_BAD_BLOCK_LENGTH;
            break;
        }
        if (type == BT_EPB || type == BT_PB || type == BT_SPB) {
            uint32_t ifid, caplen, body;
            uint64_t ts = 0;
            int64_t data;
            if (type == BT_SPB) {
                if (total < 16) {
                    status = ST_BAD_BLOCK_LENGTH;
                    break;
                }
                ifid = 0;
                body = total - 16;
                caplen = rd32(h + 8, big); /* the original length: what of it fits is captured */
                if (caplen > body)
                    caplen = body;
                data = pos + 12;
            } else {
                if (total < 32) {
                    status = ST_BAD_BLOCK_LENGTH;
                    break;
                }
                ifid = type == BT_EPB ? rd32(h + 8, big) : rd16(h + 8, big);
                ts = (uint64_t)rd32(h + 12, big) << 32 | rd32(h + 16, big);
                caplen = rd32(h + 20, big);
                body = total - 32;
                if (caplen > body) {
                    status = ST_BAD_PACKET_LENGTH;
                    break;
                }
                data = pos + 28;
            }
            if (ifid >= (uint64_t)ifs.count) {
                status = ST_BAD_INTERFACE;
                break;
            }
            if (linktype >= 0 && ifs.linktype[ifid] != linktype) {
                status = ST_LINKTYPE;
                break;
            }
            /* as libpcap: a simple packet is cut to the snapshot, any other longer one is damage */
            uint32_t snap = ifs.snaplen[ifid];
            if (caplen > snap && type != BT_SPB) {
                status = ST_BAD_CAPLEN;
                break;
            }
            if (caplen > snap)
                caplen = snap;
            uint64_t sec, nsec;
            split_ts(ts, ifs.units[ifid], ifs.offset[ifid], &sec, &nsec); /* simple packets: 0 + offset */
            if (!add_row(&r, sec, nsec, data, caplen))
                break;
            linktype = ifs.linktype[ifid];
        }
        pos += total;
    }
    Py_END_ALLOW_THREADS
    release_buffers(in, 5);
    release_buffers(v, 2);
    return Py_BuildValue("nnnLL", r.n, pos, (Py_ssize_t)status, (long long)r.base, (long long)linktype);
}

/* ---- SIGBUS guard for mapped capture files ------------------------------------------------
 * A page of a file mapping that lies beyond the file's end (another process truncated the
 * file while we read it) raises SIGBUS on access, which would kill the process. The handler
 * below maps anonymous zero pages over the rest of a registered mapping from the faulting
 * page on, counts the fault for that mapping, and returns: the access, and every later one,
 * reads zeros instead. The reader (capture/sources.py) checks the count after each walk and
 * each decode, learns the new size with fstat, and ends the file with the damage rule.
 * Faults outside a registered mapping go to the previous handler (faulthandler, default). */
#define MAX_GUARDS 64
static volatile uintptr_t guard_start[MAX_GUARDS], guard_end[MAX_GUARDS];
static volatile sig_atomic_t guard_faults[MAX_GUARDS];
static struct sigaction previous_bus;
static int bus_installed;
static uintptr_t page_size;

static void on_sigbus(int sig, siginfo_t *info, void *ctx)
{
    uintptr_t a = (uintptr_t)info->si_addr;
    for (int i = 0; i < MAX_GUARDS; i++) {
        uintptr_t start = guard_start[i], end = guard_end[i];
        if (start <= a && a < end) {
            uintptr_t page = a & ~(page_size - 1);
            if (mmap((void *)page, end - page, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) != MAP_FAILED) {
                guard_faults[i]++;
                return;
            }
            break;
        }
    }
    if ((previous_bus.sa_flags & SA_SIGINFO) && previous_bus.sa_sigaction) {
        previous_bus.sa_sigaction(sig, info, ctx);
    } else if (previous_bus.sa_handler != SIG_DFL && previous_bus.sa_handler != SIG_IGN) {
        previous_bus.sa_handler(sig);
    } else {
        signal(sig, SIG_DFL); /* returning re-runs the access: the default action (core dump) */
    }
}

/* guard(buffer) -> slot: protect the mapping `buffer` points into (its start to its end) */
static PyObject *k_guard(PyObject *self, PyObject *args)
{
    PyObject *obuf;
    if (!PyArg_ParseTuple(args, "O", &obuf))
        return NULL;
    Py_buffer b;
    if (get_buffer(obuf, &b, 0, 0, "buf") < 0)
        return NULL;
    uintptr_t start = (uintptr_t)b.buf, end = start + (uintptr_t)b.len;
    PyBuffer_Release(&b);
    struct sigaction current;
    if (sigaction(SIGBUS, NULL, &current) == 0 && current.sa_sigaction != on_sigbus)
        bus_installed = 0; /* someone (faulthandler.enable) installed theirs since: chain to it */
    if (!bus_installed) {
        page_size = (uintptr_t)sysconf(_SC_PAGESIZE);
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_sigaction = on_sigbus;
        sa.sa_flags = SA_SIGINFO | SA_NODEFER;
        sigemptyset(&sa.sa_mask);
        if (sigaction(SIGBUS, &sa, &previous_bus) < 0)
            return PyErr_SetFromErrno(PyExc_OSError);
        bus_installed = 1;
    }
    for (int i = 0; i < MAX_GUARDS; i++) {
        if (guard_end[i] == 0) {
            guard_faults[i] = 0;
            guard_start[i] = start;
            guard_end[i] = end;
            return PyLong_FromLong(i);
        }
    }
    return PyLong_FromLong(-1); /* all slots taken: unguarded */
}

/* unguard(slot): the mapping is gone */
static PyObject *k_unguard(PyObject *self, PyObject *args)
{
    int i;
    if (!PyArg_ParseTuple(args, "i", &i))
        return NULL;
    if (i >= 0 && i < MAX_GUARDS) {
        guard_end[i] = 0;
        guard_start[i] = 0;
    }
    Py_RETURN_NONE;
}

/* faults(slot) -> SIGBUS faults caught in that mapping so far */
static PyObject *k_faults(PyObject *self, PyObject *args)
{
    int i;
    if (!PyArg_ParseTuple(args, "i", &i))
        return NULL;
    return PyLong_FromLong(i >= 0 && i < MAX_GUARDS ? (long)guard_faults[i] : 0);
}

/* ---- live capture: libpcap's dispatch loop into a preallocated buffer --------------------
 * libpcap is opened at run time (dlopen), so building needs no libpcap headers and a machine
 * without libpcap still imports this module (live_available() is then false and
 * capture/live.py uses pcapy-ng). The handle is opened, configured and read here; each
 * packet is copied once, from libpcap's ring into the caller's buffer, with one meta row
 * (sec, usec, offset, caplen): no Python object per packet. */
typedef struct {
    struct timeval ts;
    uint32_t caplen, len;
} pkthdr;
typedef struct {
    unsigned int bf_len;
    void *bf_insns;
} bpf_program;
typedef struct {
    unsigned int ps_recv, ps_drop, ps_ifdrop;
} pcap_stat_t;
typedef void (*handler_fn)(unsigned char *, const pkthdr *, const unsigned char *);

static struct {
    int loaded;
    void *(*create)(const char *, char *);
    int (*set_snaplen)(void *, int);
    int (*set_promisc)(void *, int);
    int (*set_timeout)(void *, int);
    int (*set_buffer_size)(void *, int);
    int (*activate)(void *);
    char *(*geterr)(void *);
    int (*compile)(void *, bpf_program *, const char *, int, uint32_t);
    int (*setfilter)(void *, bpf_program *);
    void (*freecode)(bpf_program *);
    int (*setnonblock)(void *, int, char *);
    int (*get_selectable_fd)(void *);
    int (*datalink)(void *);
    int (*stats)(void *, pcap_stat_t *);
    void (*close)(void *);
    int (*dispatch)(void *, int, handler_fn, unsigned char *);
    void (*breakloop)(void *);
} lp;

static int load_libpcap(void)
{
    if (lp.loaded)
        return lp.loaded > 0;
    const char *names[] = {"libpcap.so.1", "libpcap.so.0.8", "libpcap.so", NULL};
    void *h = NULL;
    for (int i = 0; names[i] && !h; i++)
        h = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
    lp.loaded = -1;
    if (!h)
        return 0;
#define SYM(field, name)                                 \
    if (!(*(void **)&lp.field = dlsym(h, name))) \
        return 0;
    SYM(create, "pcap_create")
    SYM(set_snaplen, "pcap_set_snaplen")
    SYM(set_promisc, "pcap_set_promisc")
    SYM(set_timeout, "pcap_set_timeout")
    SYM(set_buffer_size, "pcap_set_buffer_size")
    SYM(activate, "pcap_activate")
    SYM(geterr, "pcap_geterr")
    SYM(compile, "pcap_compile")
    SYM(setfilter, "pcap_setfilter")
    SYM(freecode, "pcap_freecode")
    SYM(setnonblock, "pcap_setnonblock")
    SYM(get_selectable_fd, "pcap_get_selectable_fd")
    SYM(datalink, "pcap_datalink")
    SYM(stats, "pcap_stats")
    SYM(close, "pcap_close")
    SYM(dispatch, "pcap_dispatch")
    SYM(breakloop, "pcap_breakloop")
#undef SYM
    lp.loaded = 1;
    return 1;
}

#define HANDLE_NAME "wirewatch.live_handle"

static void *handle_of(PyObject *capsule)
{
    void *p = PyCapsule_GetPointer(capsule, HANDLE_NAME);
    if (p == NULL && !PyErr_Occurred())
        PyErr_SetString(PyExc_ValueError, "live: the handle is closed");
    return p;
}

static void close_capsule(PyObject *capsule)
{
    void *p = PyCapsule_GetPointer(capsule, HANDLE_NAME);
    if (p)
        lp.close(p);
}

/* live_available() -> whether libpcap could be loaded */
static PyObject *k_live_available(PyObject *self, PyObject *args) { return PyBool_FromLong(load_libpcap()); }

/* live_open(device, snaplen, promisc, timeout_ms, buffer_bytes, bpf) -> (handle, status, message)
 * status: pcap_activate's (negative: failed, handle None) or -100 for a filter that does not compile */
static PyObject *k_live_open(PyObject *self, PyObject *args)
{
    const char *dev, *bpf;
    int snaplen, promisc, timeout, buffer;
    if (!PyArg_ParseTuple(args, "siiiis", &dev, &snaplen, &promisc, &timeout, &buffer, &bpf))
        return NULL;
    if (!load_libpcap()) {
        PyErr_SetString(PyExc_OSError, "libpcap could not be loaded");
        return NULL;
    }
    char errbuf[512] = "";
    void *p = lp.create(dev, errbuf);
    if (!p)
        return Py_BuildValue("Ois", Py_None, -1, errbuf);
    lp.set_snaplen(p, snaplen);
    lp.set_promisc(p, promisc);
    lp.set_timeout(p, timeout);
    lp.set_buffer_size(p, buffer);
    int status = lp.activate(p);
    if (status < 0) {
        PyObject *r = Py_BuildValue("Ois", Py_None, status, lp.geterr(p));
        lp.close(p);
        return r;
    }
    if (bpf[0]) {
        bpf_program prog;
        if (lp.compile(p, &prog, bpf, 1, 0xFFFFFFFFu) < 0) {
            PyObject *r = Py_BuildValue("Ois", Py_None, -100, lp.geterr(p));
            lp.close(p);
            return r;
        }
        int bad = lp.setfilter(p, &prog) < 0;
        lp.freecode(&prog);
        if (bad) {
            PyObject *r = Py_BuildValue("Ois", Py_None, -100, lp.geterr(p));
            lp.close(p);
            return r;
        }
    }
    if (lp.setnonblock(p, 1, errbuf) < 0) {
        PyObject *r = Py_BuildValue("Ois", Py_None, -1, errbuf);
        lp.close(p);
        return r;
    }
    PyObject *capsule = PyCapsule_New(p, HANDLE_NAME, close_capsule);
    if (!capsule) {
        lp.close(p);
        return NULL;
    }
    PyObject *r = Py_BuildValue("Ois", capsule, status, "");
    Py_DECREF(capsule);
    return r;
}

typedef struct {
    uint8_t *buf;
    int64_t cap, used;
    uint32_t *meta;
    Py_ssize_t n, max;
    uint32_t *wire; /* each packet's length on the wire (h->len), beside meta's caplen */
    int64_t snaplen;
    void *handle;
} live_rows;

static void on_packet(unsigned char *user, const pkthdr *h, const unsigned char *bytes)
{
    live_rows *r = (live_rows *)user;
    uint32_t caplen = h->caplen;
    if (r->n >= r->max || r->used + caplen > r->cap)
        return; /* never: the caller's count leaves room for a full snapshot per packet */
    memcpy(r->buf + r->used, bytes, caplen);
    uint32_t *m = r->meta + 4 * r->n;
    m[0] = (uint32_t)h->ts.tv_sec;
    m[1] = (uint32_t)h->ts.tv_usec;
    m[2] = (uint32_t)r->used;
    m[3] = caplen;
    r->wire[r->n] = h->len;
    r->used += caplen;
    r->n++;
    /* the next packet may not fit: libpcap stops before it (it stays in the ring for the next
     * call) and pcap_dispatch returns PCAP_ERROR_BREAK */
    if (r->cap - r->used < r->snaplen)
        lp.breakloop(r->handle);
}

/* live_dispatch(handle, buf, meta, wire, snaplen) -> (packets, bytes): what one pcap_dispatch gives
 * now, up to len(meta) / 4 packets (and len(wire)), until len(buf) has less than `snaplen` bytes
 * left (len(buf) >= snaplen); wire[i] is packet i's length on the wire, meta[i][3] what was
 * captured of it. The room is checked after each packet, not reserved at `snaplen` bytes a
 * packet up front: with whole packets (snaplen 262144) a 16 MB buffer would take 64 packets a
 * call, and each call's batch costs the detectors a pass however small it is */
static PyObject *k_live_dispatch(PyObject *self, PyObject *args)
{
    PyObject *capsule, *obuf, *ometa, *owire;
    int snaplen;
    if (!PyArg_ParseTuple(args, "OOOOi", &capsule, &obuf, &ometa, &owire, &snaplen))
        return NULL;
    void *p = handle_of(capsule);
    if (!p)
        return NULL;
    PyObject *o[3] = {obuf, ometa, owire};
    const buffer_spec specs[3] = {{1, 1, 0, "buf"}, {4, 1, 0, "meta"}, {4, 1, 0, "wire"}};
    Py_buffer v[3];
    if (get_buffers(o, v, specs, 3) < 0)
        return NULL;
    Py_ssize_t rows = length(&v[1]) / 4 < length(&v[2]) ? length(&v[1]) / 4 : length(&v[2]);
    if (snaplen < 1)
        snaplen = 1;
    live_rows r = {v[0].buf, v[0].len, 0, v[1].buf, 0, rows, v[2].buf, snaplen, p};
    int failed = 0;
    /* one pcap_dispatch call, as pcapy-ng's next_batch: at most what the ring holds now (a
     * storm then hands over ring blocks, not a full batch each time, and a stop signal is
     * seen between them) */
    Py_ssize_t count = r.cap >= snaplen ? r.max : 0;
    Py_BEGIN_ALLOW_THREADS
    if (count > 0) {
        int got = lp.dispatch(p, (int)(count > 1 << 30 ? 1 << 30 : count), on_packet, (unsigned char *)&r);
        failed = got < 0 && got != -2; /* -2: pcap_breakloop */
    }
    Py_END_ALLOW_THREADS
    release_buffers(v, 3);
    if (failed) {
        PyErr_Format(PyExc_OSError, "live capture: %s", lp.geterr(p));
        return NULL;
    }
    return Py_BuildValue("nL", r.n, (long long)r.used);
}

/* live_fd(handle) -> the descriptor to select() on; live_datalink(handle) -> DLT */
static PyObject *k_live_fd(PyObject *self, PyObject *args)
{
    PyObject *capsule;
    if (!PyArg_ParseTuple(args, "O", &capsule))
        return NULL;
    void *p = handle_of(capsule);
    return p ? PyLong_FromLong(lp.get_selectable_fd(p)) : NULL;
}

static PyObject *k_live_datalink(PyObject *self, PyObject *args)
{
    PyObject *capsule;
    if (!PyArg_ParseTuple(args, "O", &capsule))
        return NULL;
    void *p = handle_of(capsule);
    return p ? PyLong_FromLong(lp.datalink(p)) : NULL;
}

/* live_stats(handle) -> (received, dropped, dropped by the interface), or None when libpcap fails */
static PyObject *k_live_stats(PyObject *self, PyObject *args)
{
    PyObject *capsule;
    if (!PyArg_ParseTuple(args, "O", &capsule))
        return NULL;
    void *p = handle_of(capsule);
    if (!p)
        return NULL;
    pcap_stat_t st;
    if (lp.stats(p, &st) < 0)
        Py_RETURN_NONE;
    return Py_BuildValue("III", st.ps_recv, st.ps_drop, st.ps_ifdrop);
}

/* live_close(handle) */
static PyObject *k_live_close(PyObject *self, PyObject *args)
{
    PyObject *capsule;
    if (!PyArg_ParseTuple(args, "O", &capsule))
        return NULL;
    void *p = PyCapsule_GetPointer(capsule, HANDLE_NAME);
    if (p) {
        lp.close(p);
        PyCapsule_SetDestructor(capsule, NULL);
    }
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"live_available", k_live_available, METH_NOARGS, "live_available() -> libpcap could be loaded"},
    {"live_open", k_live_open, METH_VARARGS, "live_open(device, snaplen, promisc, timeout_ms, buffer_bytes, bpf) -> (handle, status, message)"},
    {"live_dispatch", k_live_dispatch, METH_VARARGS, "live_dispatch(handle, buf, meta, wire, snaplen) -> (packets, bytes)"},
    {"live_fd", k_live_fd, METH_VARARGS, "live_fd(handle) -> selectable descriptor"},
    {"live_datalink", k_live_datalink, METH_VARARGS, "live_datalink(handle) -> DLT"},
    {"live_stats", k_live_stats, METH_VARARGS, "live_stats(handle) -> (received, dropped, ifdropped) or None"},
    {"live_close", k_live_close, METH_VARARGS, "live_close(handle)"},
    {"guard", k_guard, METH_VARARGS, "guard(buffer) -> slot: SIGBUS in the mapping reads zeros and is counted"},
    {"unguard", k_unguard, METH_VARARGS, "unguard(slot)"},
    {"faults", k_faults, METH_VARARGS, "faults(slot) -> SIGBUS faults caught in the mapping"},
    {"walk_pcap", k_walk_pcap, METH_VARARGS, "walk_pcap(buf, pos, big, nano, snapshot, meta, sub) -> (n, pos, status, base)"},
    {"walk_pcapng", k_walk_pcapng, METH_VARARGS,
     "walk_pcapng(buf, pos, big, linktypes, snaplens, units, offsets, meta, sub) -> (n, pos, status, base, linktype)"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_pcapwalk", "Capture-file record walker.", -1, methods};

PyMODINIT_FUNC PyInit__pcapwalk(void) { return PyModule_Create(&module); }
