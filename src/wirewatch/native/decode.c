/* The packet decoder of wirewatch/decode.py as one compiled pass over a batch.
 *
 * decode.py's numpy decoder is the reference and the specification: this loop computes
 * exactly the same columns, error counts and non-IP count (the tests compare the two on
 * the corpus and on random bytes), including its reading rule: every read is clamped to
 * the batch buffer, never to the packet, and a field only counts where the packet's
 * captured length covers it. Only the supported link types come here.
 */
#include "buffers.h"

enum { ERR_LINK, ERR_IP, ERR_VERSION, ERR_HLEN, ERR_V6EXT, ERR_L4, N_ERRORS };
enum { FRAG_NONE, FRAG_FIRST, FRAG_LATER };
enum { LT_NULL = 0, LT_ETHERNET = 1, LT_LOOP = 108, LT_SLL = 113, LT_SLL2 = 276 };

#define ETH_IPV4 0x0800
#define ETH_IPV6 0x86DD
#define MAPPED 0xFFFF00000000ull
#define MAX_VLAN_TAGS 2
#define MAX_IPV6_EXT 8

/* output columns, in decode.BATCH_FIELDS order */
enum {
    C_TS, C_SRC_HI, C_SRC_LO, C_DST_HI, C_DST_LO, C_IPVER, C_PROTO, C_SPORT, C_DPORT, C_HAS_PORTS,
    C_TCP_FLAGS, C_FLAGS_OK, C_ICMP_TYPE, C_ICMP_CODE, C_HAS_ICMP, C_LENGTH, C_PAYLOAD, C_FRAG,
    C_INNER_PROTO, C_INNER_DST_HI, C_INNER_DST_LO, C_INNER_SPORT, C_INNER_DPORT, C_HAS_INNER, N_COLS
};
static const Py_ssize_t ITEMSIZE[N_COLS] = {8, 8, 8, 8, 8, 1, 1, 2, 2, 1, 1, 1, 1, 1, 1, 4, 4, 1, 1, 8, 8, 2, 2, 1};

typedef struct {
    const uint8_t *buf;
    int64_t last; /* index of the last byte, or -1 for an empty buffer */
} reader;

static inline uint64_t u8(const reader *r, int64_t pos)
{
    if (r->last < 0 || pos < 0) /* positions are never negative; the check keeps it so */
        return 0;
    return r->buf[pos < r->last ? pos : r->last];
}
static inline uint64_t u16(const reader *r, int64_t pos) { return (u8(r, pos) << 8) | u8(r, pos + 1); }
static inline uint64_t u32(const reader *r, int64_t pos) { return (u16(r, pos) << 16) | u16(r, pos + 2); }
static inline uint64_t u64(const reader *r, int64_t pos) { return (u32(r, pos) << 32) | u32(r, pos + 4); }

static inline int ipv6_ext(uint64_t nh) { return nh == 0 || nh == 43 || nh == 44 || nh == 51 || nh == 60; }
static inline int vlan_tpid(uint64_t t) { return t == 0x8100 || t == 0x88A8 || t == 0x9100; }
static inline int icmp4_error(uint64_t t) { return t == 3 || t == 11 || t == 12; }

/* decode_batch(buf, meta u32[n*4], linktype, columns (24 arrays of n), errors i64[6]) -> non_ip */
static PyObject *k_decode_batch(PyObject *self, PyObject *args)
{
    PyObject *obuf, *ometa, *ocols, *oerr;
    int linktype;
    if (!PyArg_ParseTuple(args, "OOiO!O", &obuf, &ometa, &linktype, &PyTuple_Type, &ocols, &oerr))
        return NULL;
    if (PyTuple_GET_SIZE(ocols) != N_COLS) {
        PyErr_SetString(PyExc_ValueError, "decode_batch: wrong number of columns");
        return NULL;
    }
    PyObject *o[3 + N_COLS] = {obuf, ometa, oerr};
    buffer_spec specs[3 + N_COLS] = {{1, 0, 0, "buf"}, {4, 0, 0, "meta"}, {8, 1, 0, "errors"}};
    for (int c = 0; c < N_COLS; c++) {
        o[3 + c] = PyTuple_GET_ITEM(ocols, c);
        specs[3 + c] = (buffer_spec){ITEMSIZE[c], 1, 0, "column"};
    }
    Py_buffer v[3 + N_COLS], *col = v + 3;
    if (get_buffers(o, v, specs, 3 + N_COLS) < 0)
        return NULL;
    Py_ssize_t n = length(&v[1]) / 4;
    int bad = length(&v[2]) < N_ERRORS;
    for (int c = 0; c < N_COLS; c++)
        bad |= length(&col[c]) != n;
    if (bad)
        return finish(v, 3 + N_COLS, 1, "decode_batch: errors array too short or a column of the wrong length");
    int64_t non_ip = 0;
    {
        const reader r = {v[0].buf, (int64_t)v[0].len - 1};
        const uint32_t *meta = v[1].buf;
        int64_t *errors = v[2].buf;
        double *ts = col[C_TS].buf;
        uint64_t *src_hi = col[C_SRC_HI].buf, *src_lo = col[C_SRC_LO].buf, *dst_hi = col[C_DST_HI].buf,
                 *dst_lo = col[C_DST_LO].buf, *inner_dst_hi = col[C_INNER_DST_HI].buf,
                 *inner_dst_lo = col[C_INNER_DST_LO].buf;
        uint8_t *ipver = col[C_IPVER].buf, *proto_out = col[C_PROTO].buf, *has_ports_out = col[C_HAS_PORTS].buf,
                *tcp_flags = col[C_TCP_FLAGS].buf, *flags_ok_out = col[C_FLAGS_OK].buf,
                *icmp_type_out = col[C_ICMP_TYPE].buf, *icmp_code = col[C_ICMP_CODE].buf,
                *has_icmp_out = col[C_HAS_ICMP].buf, *frag_out = col[C_FRAG].buf, *inner_proto = col[C_INNER_PROTO].buf,
                *has_inner = col[C_HAS_INNER].buf;
        uint16_t *sport = col[C_SPORT].buf, *dport = col[C_DPORT].buf, *inner_sport = col[C_INNER_SPORT].buf,
                 *inner_dport = col[C_INNER_DPORT].buf;
        uint32_t *length_out = col[C_LENGTH].buf;
        int32_t *payload_out = col[C_PAYLOAD].buf;
        Py_BEGIN_ALLOW_THREADS
        for (Py_ssize_t i = 0; i < n; i++) {
            const uint32_t *m = meta + 4 * i;
            int64_t off = m[2], cap = m[3], end = off + cap;
            ts[i] = (double)m[0] + (double)m[1] * 1e-6;
            uint64_t ethertype, proto = 0, ver = 0, frag = FRAG_NONE;
            int64_t l3, l4 = 0, ip_end = end, claimed_end = end;
            uint32_t len = (uint32_t)cap;
            src_hi[i] = src_lo[i] = dst_hi[i] = dst_lo[i] = 0;

            /* link layer */
            int vlan = 1;
            if (linktype == LT_ETHERNET) {
                ethertype = u16(&r, off + 12);
                l3 = off + 14;
            } else if (linktype == LT_SLL) {
                ethertype = u16(&r, off + 14);
                l3 = off + 16;
            } else if (linktype == LT_SLL2) {
                ethertype = u16(&r, off);
                l3 = off + 20;
            } else {
                l3 = off + ((linktype == LT_NULL || linktype == LT_LOOP) ? 4 : 0);
                uint64_t version = u8(&r, l3) >> 4;
                ethertype = version == 4 ? ETH_IPV4 : version == 6 ? ETH_IPV6 : 0;
                vlan = 0;
            }
            for (int t = 0; vlan && t < MAX_VLAN_TAGS && vlan_tpid(ethertype); t++) {
                l3 += 4;
                ethertype = u16(&r, l3 - 2);
            }
            if (l3 > end)
                errors[ERR_LINK]++;

            /* IPv4 */
            int v4 = ethertype == ETH_IPV4 && l3 <= end;
            if (v4 && !(l3 + 20 <= end)) {
                errors[ERR_IP]++;
                v4 = 0;
            }
            uint64_t b0 = u8(&r, l3);
            if (v4 && (b0 >> 4) != 4) {
                errors[ERR_VERSION]++;
                v4 = 0;
            }
            int64_t ihl = (int64_t)(b0 & 0x0F) * 4, tot = (int64_t)u16(&r, l3 + 2);
            if (v4 && (ihl < 20 || tot < ihl)) {
                errors[ERR_HLEN]++;
                v4 = 0;
            }
            if (v4 && !(l3 + ihl <= end)) {
                errors[ERR_IP]++;
                v4 = 0;
            }
            if (v4) {
                ver = 4;
                proto = u8(&r, l3 + 9);
                uint64_t fw = u16(&r, l3 + 6);
                frag = (fw & 0x1FFF) > 0 ? FRAG_LATER : (fw & 0x2000) ? FRAG_FIRST : FRAG_NONE;
                src_lo[i] = MAPPED | u32(&r, l3 + 12);
                dst_lo[i] = MAPPED | u32(&r, l3 + 16);
                l4 = l3 + ihl;
                claimed_end = l3 + tot;
                ip_end = end < claimed_end ? end : claimed_end;
                len = (uint32_t)(l3 - off + tot);
            }

            /* IPv6 */
            int v6 = ethertype == ETH_IPV6 && l3 <= end;
            if (v6 && !(l3 + 40 <= end)) {
                errors[ERR_IP]++;
                v6 = 0;
            }
            if (v6 && (u8(&r, l3) >> 4) != 6) {
                errors[ERR_VERSION]++;
                v6 = 0;
            }
            if (v6) {
                ver = 6;
                int64_t plen = (int64_t)u16(&r, l3 + 4);
                src_hi[i] = u64(&r, l3 + 8);
                src_lo[i] = u64(&r, l3 + 16);
                dst_hi[i] = u64(&r, l3 + 24);
                dst_lo[i] = u64(&r, l3 + 32);
                len = (uint32_t)(l3 - off + 40 + plen);
                claimed_end = l3 + 40 + plen;
                ip_end = end < claimed_end ? end : claimed_end;
                uint64_t nh = u8(&r, l3 + 6), fr = FRAG_NONE;
                int64_t pos = l3 + 40;
                for (int k = 0; k < MAX_IPV6_EXT && ipv6_ext(nh); k++) {
                    if (!(pos + 8 <= end)) {
                        errors[ERR_V6EXT]++;
                        nh = 255; /* reserved: stop here */
                        break;
                    }
                    int64_t hb = (int64_t)u8(&r, pos + 1);
                    int64_t hlen = nh == 44 ? 8 : nh == 51 ? (hb + 2) * 4 : (hb + 1) * 8;
                    uint64_t fw = u16(&r, pos + 2);
                    if (nh == 44)
                        fr = (fw >> 3) > 0 ? FRAG_LATER : (fw & 1) ? FRAG_FIRST : FRAG_NONE;
                    nh = u8(&r, pos);
                    pos += hlen;
                }
                proto = nh;
                frag = fr;
                l4 = pos;
            }

            /* L4 */
            int ip = ver != 0;
            if (!ip && l3 <= end && ethertype != ETH_IPV4 && ethertype != ETH_IPV6)
                non_ip++;
            int first = ip && frag != FRAG_LATER;
            int is_tcp = first && proto == 6, is_udp = first && proto == 17;
            int is_icmp = first && (proto == 1 || proto == 58);
            int ported = is_tcp || is_udp;
            int has_ports = ported && l4 + 4 <= ip_end;
            if (ported && !has_ports && frag == FRAG_NONE)
                errors[ERR_L4]++;
            sport[i] = has_ports ? (uint16_t)u16(&r, l4) : 0;
            dport[i] = has_ports ? (uint16_t)u16(&r, l4 + 2) : 0;
            int flags_ok = is_tcp && l4 + 14 <= ip_end;
            if (is_tcp && has_ports && !flags_ok && frag == FRAG_NONE)
                errors[ERR_L4]++;
            tcp_flags[i] = flags_ok ? (uint8_t)u8(&r, l4 + 13) : 0;
            int64_t payload = 0;
            if (flags_ok)
                payload = claimed_end - l4 - (int64_t)(u8(&r, l4 + 12) >> 4) * 4;
            else if (is_udp && has_ports)
                payload = claimed_end - l4 - 8;
            payload_out[i] = (int32_t)(payload > 0 ? payload : 0);
            int has_icmp = is_icmp && l4 + 2 <= ip_end;
            if (is_icmp && !has_icmp)
                errors[ERR_L4]++;
            uint64_t icmp_type = has_icmp ? u8(&r, l4) : 0;
            icmp_code[i] = has_icmp ? (uint8_t)u8(&r, l4 + 1) : 0;

            /* ICMP errors quote the offending packet */
            int64_t q = l4 + 8;
            inner_proto[i] = 0;
            inner_dst_hi[i] = inner_dst_lo[i] = 0;
            inner_sport[i] = inner_dport[i] = 0;
            has_inner[i] = 0;
            if (has_icmp && proto == 1 && icmp4_error(icmp_type) && q + 20 <= end && (u8(&r, q) >> 4) == 4) {
                int64_t qihl = (int64_t)(u8(&r, q) & 0x0F) * 4;
                inner_proto[i] = (uint8_t)u8(&r, q + 9);
                inner_dst_lo[i] = MAPPED | u32(&r, q + 16);
                int okq = q + qihl + 4 <= end && qihl >= 20;
                inner_sport[i] = okq ? (uint16_t)u16(&r, q + qihl) : 0;
                inner_dport[i] = okq ? (uint16_t)u16(&r, q + qihl + 2) : 0;
                has_inner[i] = (uint8_t)okq;
            } else if (has_icmp && proto == 58 && icmp_type >= 1 && icmp_type <= 4 && q + 44 <= end &&
                       (u8(&r, q) >> 4) == 6) {
                inner_proto[i] = (uint8_t)u8(&r, q + 6);
                inner_dst_hi[i] = u64(&r, q + 24);
                inner_dst_lo[i] = u64(&r, q + 32);
                inner_sport[i] = (uint16_t)u16(&r, q + 40);
                inner_dport[i] = (uint16_t)u16(&r, q + 42);
                has_inner[i] = 1;
            }
            ipver[i] = (uint8_t)ver;
            proto_out[i] = (uint8_t)proto;
            frag_out[i] = (uint8_t)frag;
            length_out[i] = len;
            has_ports_out[i] = (uint8_t)has_ports;
            flags_ok_out[i] = (uint8_t)flags_ok;
            has_icmp_out[i] = (uint8_t)has_icmp;
            icmp_type_out[i] = (uint8_t)icmp_type;
        }
        Py_END_ALLOW_THREADS
    }
    release_buffers(v, 3 + N_COLS);
    return PyLong_FromLongLong(non_ip);
}

static PyMethodDef methods[] = {
    {"decode_batch", k_decode_batch, METH_VARARGS, "decode_batch(buf, meta, linktype, columns, errors) -> non_ip"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, .m_name = "_decode", .m_doc = "Compiled packet decoder", .m_size = -1, .m_methods = methods};

PyMODINIT_FUNC PyInit__decode(void) { return PyModule_Create(&module); }
