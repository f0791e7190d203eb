/* The packet decoder of wirewatch/decode.py as one compiled pass over a batch.
 *
 * decode.py's numpy decoder is the reference and the specification: this loop computes
 * exactly the same columns, error counts and non-IP count (the tests compare the two on
 * the corpus, on crafted tunnels and link types, and on random bytes), including its
 * reading rule: every read is clamped to the batch buffer, never to the packet, and a
 * field only counts where the packet's captured length covers it. Only the supported
 * link types come here.
 *
 * Per packet: the link header gives an EtherType-like kind and an offset; `resolve` steps
 * over VLAN tags, MPLS label stacks and PPPoE; `ip_layer` reads the IP header; while the
 * IP payload is a tunnel (`tunnel_header`) and the depth limit allows, the inner packet
 * replaces the outer one when it validates, and the layer is recorded in `tunnel`.
 */
#include "buffers.h"

/* The output columns and the error reasons, each spelled once: the module exports their
 * names (COLUMNS, ERRORS) and decode.py hands over its arrays by those names. */
#define DECODE_COLUMNS(X)                                                                               \
    X(ts, double) X(src_hi, uint64_t) X(src_lo, uint64_t) X(dst_hi, uint64_t) X(dst_lo, uint64_t)       \
    X(ipver, uint8_t) X(proto, uint8_t) X(sport, uint16_t) X(dport, uint16_t) X(has_ports, uint8_t)     \
    X(tcp_flags, uint8_t) X(flags_ok, uint8_t) X(icmp_type, uint8_t) X(icmp_code, uint8_t)              \
    X(has_icmp, uint8_t) X(length, uint32_t) X(payload, int32_t) X(frag, uint8_t)                       \
    X(quote, uint8_t) X(inner_src_hi, uint64_t) X(inner_src_lo, uint64_t)                               \
    X(inner_proto, uint8_t) X(inner_dst_hi, uint64_t) X(inner_dst_lo, uint64_t)                         \
    X(inner_sport, uint16_t) X(inner_dport, uint16_t) X(has_inner, uint8_t) X(tunnel, uint32_t)        \
    X(ttl, uint8_t) X(arp_op, uint8_t) X(arp_spa, uint32_t) X(arp_tpa, uint32_t)
#define DECODE_ERRORS(X)                                                                                \
    X(truncated_link_header) X(truncated_ip_header) X(bad_ip_version) X(bad_ip_header_length)           \
    X(truncated_ipv6_extension) X(truncated_l4_header) X(malformed_inner_packet)

#define COLUMN_ENUM(name, type) C_##name,
#define COLUMN_SIZE(name, type) sizeof(type),
#define COLUMN_NAME(name, type) #name,
#define ERROR_ENUM(name) ERR_##name,
#define ERROR_NAME(name) #name,
enum { DECODE_COLUMNS(COLUMN_ENUM) N_COLS };
enum { DECODE_ERRORS(ERROR_ENUM) N_ERRORS };
static const Py_ssize_t ITEMSIZE[N_COLS] = {DECODE_COLUMNS(COLUMN_SIZE)};
static const char *const COLUMN_NAMES[N_COLS] = {DECODE_COLUMNS(COLUMN_NAME)};
static const char *const ERROR_NAMES[N_ERRORS] = {DECODE_ERRORS(ERROR_NAME)};

enum { FRAG_NONE, FRAG_FIRST, FRAG_LATER };
enum {
    LT_NULL = 0, LT_ETHERNET = 1, LT_PPP = 9, LT_PPP_HDLC = 50, LT_C_HDLC = 104, LT_IEEE802_11 = 105,
    LT_FRELAY = 107, LT_LOOP = 108, LT_SLL = 113, LT_RADIOTAP = 127, LT_NFLOG = 239, LT_IPOIB = 242, LT_SLL2 = 276
};
/* tunnel layer codes: decode.TUNNEL_NAMES */
enum { T_GRE = 1, T_ERSPAN, T_VXLAN, T_GENEVE, T_IPIP, T_IPV6, T_TEREDO, T_GTPU, T_MPLS, T_PPPOE };
enum { HDR_NONE, HDR_SHORT, HDR_OK };

#define ETH_IPV4 0x0800
#define ETH_IPV6 0x86DD
#define ETH_ARP 0x0806
#define ETH_MPLS 0x8847
#define ETH_MPLS_MC 0x8848
#define ETH_PPPOE 0x8864
#define ETH_TEB 0x6558
#define ETH_ERSPAN_1_2 0x88BE
#define ETH_ERSPAN_3 0x22EB
#define MAPPED 0xFFFF00000000ull
#define MAX_VLAN_TAGS 2
#define MAX_IPV6_EXT 8
#define MAX_MPLS_LABELS 8
#define MAX_GTP_EXTENSIONS 4
#define MAX_NFLOG_TLVS 16
#define MAX_TUNNEL_DEPTH 8
#define PREFETCH_PACKETS 16 /* how many packets ahead the decoder asks for headers (measured: 8-32 alike) */

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
/* Wider reads: one load when every byte lies inside the buffer (nearly always), else byte by byte
 * with u8's clamp; the same value either way. */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
#define BE32(x) (x)
#define BE64(x) (x)
#else
#define BE32(x) __builtin_bswap32(x)
#define BE64(x) __builtin_bswap64(x)
#endif
static inline uint64_t u16(const reader *r, int64_t pos)
{
    if (pos >= 0 && pos < r->last)
        return ((uint64_t)r->buf[pos] << 8) | r->buf[pos + 1];
    return (u8(r, pos) << 8) | u8(r, pos + 1);
}
static inline uint64_t u16le(const reader *r, int64_t pos) { return u8(r, pos) | (u8(r, pos + 1) << 8); }
static inline uint64_t u32(const reader *r, int64_t pos)
{
    if (pos >= 0 && pos + 3 <= r->last) {
        uint32_t x;
        memcpy(&x, r->buf + pos, 4);
        return BE32(x);
    }
    return (u16(r, pos) << 16) | u16(r, pos + 2);
}
static inline uint64_t u64(const reader *r, int64_t pos)
{
    if (pos >= 0 && pos + 7 <= r->last) {
        uint64_t x;
        memcpy(&x, r->buf + pos, 8);
        return BE64(x);
    }
    return (u32(r, pos) << 32) | u32(r, pos + 4);
}

static inline int ipv6_ext(uint64_t nh) { return nh == 0 || nh == 43 || nh == 44 || nh == 51 || nh == 60; }
static inline int vlan_tpid(uint64_t t) { return t == 0x8100 || t == 0x88A8 || t == 0x9100; }
/* ICMP errors (decode.ICMP_ERRORS_V4 / _V6): they quote the packet that caused them */
static inline int icmp_error(uint64_t prot, uint64_t t)
{
    return prot == 1 ? (t == 3 || t == 4 || t == 5 || t == 11 || t == 12) : (t >= 1 && t <= 4);
}
/* the quote column: decode.QUOTE_* */
enum { QUOTE_NONE, QUOTE_CUT, QUOTE_BAD, QUOTE_IP };
static inline int is_ip(uint64_t et) { return et == ETH_IPV4 || et == ETH_IPV6; }
static inline uint64_t by_version(const reader *r, int64_t l3)
{
    uint64_t v = u8(r, l3) >> 4;
    return v == 4 ? ETH_IPV4 : v == 6 ? ETH_IPV6 : 0;
}
static inline uint64_t ppp_type(uint64_t proto)
{
    return proto == 0x21 ? ETH_IPV4 : proto == 0x57 ? ETH_IPV6 : proto == 0x281 ? ETH_MPLS : proto == 0x283 ? ETH_MPLS_MC : 0;
}
static inline void push(uint32_t *code, int *depth, uint32_t kind)
{
    *code |= kind << (4 * *depth);
    (*depth)++;
}

/* ---- link layers (decode._link_layer and its helpers) ------------------------------- */
static void ppp(const reader *r, int64_t off, int cisco_too, uint64_t *et, int64_t *l3)
{
    if (cisco_too && (u8(r, off) == 0x0F || u8(r, off) == 0x8F)) {
        *et = u16(r, off + 2);
        *l3 = off + 4;
        return;
    }
    int64_t p = (u8(r, off) == 0xFF && u8(r, off + 1) == 0x03) ? off + 2 : off;
    if (u8(r, p) & 1) {
        *et = ppp_type(u8(r, p));
        *l3 = p + 1;
    } else {
        *et = ppp_type(u16(r, p));
        *l3 = p + 2;
    }
}

static void frame_relay(const reader *r, int64_t off, uint64_t *et, int64_t *l3)
{
    int64_t p = off + ((u8(r, off + 1) & 1) ? 2 : (u8(r, off + 2) & 1) ? 3 : 4);
    if (u8(r, p) != 0x03) { /* Cisco encapsulation: an EtherType */
        *et = u16(r, p);
        *l3 = p + 2;
        return;
    }
    int64_t q = u8(r, p + 1) == 0 ? p + 2 : p + 1;
    uint64_t nlpid = u8(r, q);
    *et = nlpid == 0xCC ? ETH_IPV4 : nlpid == 0x8E ? ETH_IPV6 : nlpid == 0x80 ? u16(r, q + 4) : 0;
    *l3 = nlpid == 0x80 ? q + 6 : q + 1;
}

static void nflog(const reader *r, int64_t off, int64_t end, uint64_t *et, int64_t *l3)
{
    int64_t p = off + 4;
    for (int k = 0; k < MAX_NFLOG_TLVS && p + 4 <= end; k++) {
        int64_t tlen = (int64_t)u16le(r, p);
        if ((u16le(r, p + 2) & 0x3FFF) == 9) {
            *l3 = p + 4;
            *et = by_version(r, p + 4);
            return;
        }
        if (tlen < 4)
            break;
        p += (tlen + 3) & ~(int64_t)3;
    }
    *l3 = p;
    *et = 0;
}

static void ieee802_11(const reader *r, int64_t h, int ok, uint64_t *et, int64_t *l3)
{
    uint64_t fc0 = u8(r, h), fc1 = u8(r, h + 1);
    int data = ok && ((fc0 >> 2) & 3) == 2 && !(fc0 & 0x40) && !(fc1 & 0x40);
    int qos = (fc0 & 0x80) != 0;
    int64_t llc = h + 24 + ((fc1 & 3) == 3 ? 6 : 0) + (qos ? 2 : 0) + (qos && (fc1 & 0x80) ? 4 : 0);
    if (data && u8(r, llc) == 0xAA && u8(r, llc + 1) == 0xAA && u8(r, llc + 2) == 0x03) {
        *et = u16(r, llc + 6);
        *l3 = llc + 8;
    } else {
        *et = 0;
        *l3 = h;
    }
}

static inline __attribute__((always_inline)) void link_layer(const reader *r, int linktype, int64_t off, int64_t end, uint64_t *et, int64_t *l3)
{
    switch (linktype) {
    case LT_ETHERNET: *et = u16(r, off + 12); *l3 = off + 14; return;
    case LT_SLL: *et = u16(r, off + 14); *l3 = off + 16; return;
    case LT_SLL2: *et = u16(r, off); *l3 = off + 20; return;
    case LT_PPP: case LT_PPP_HDLC: ppp(r, off, linktype == LT_PPP_HDLC, et, l3); return;
    case LT_C_HDLC: *et = u16(r, off + 2); *l3 = off + 4; return;
    case LT_FRELAY: frame_relay(r, off, et, l3); return;
    case LT_NFLOG: nflog(r, off, end, et, l3); return;
    case LT_RADIOTAP: ieee802_11(r, off + (int64_t)u16le(r, off + 2), u8(r, off) == 0, et, l3); return;
    case LT_IEEE802_11: ieee802_11(r, off, 1, et, l3); return;
    case LT_IPOIB: *et = u16(r, off + 40); *l3 = off + 44; return;
    default:
        *l3 = off + ((linktype == LT_NULL || linktype == LT_LOOP) ? 4 : 0);
        *et = by_version(r, *l3);
    }
}

static inline int layered(uint64_t et) { return vlan_tpid(et) || et == ETH_MPLS || et == ETH_MPLS_MC || et == ETH_PPPOE; }

/* VLAN tags, an MPLS label stack, a PPPoE session header (decode._resolve). */
static void resolve(const reader *r, uint64_t *et, int64_t *l3, int64_t bound, int *depth, uint32_t *code,
                    int max_depth)
{
    int vlans = 0;
    for (;;) {
        if (vlan_tpid(*et) && vlans < MAX_VLAN_TAGS) {
            *l3 += 4;
            *et = u16(r, *l3 - 2);
            vlans++;
        } else if ((*et == ETH_MPLS || *et == ETH_MPLS_MC) && *depth < max_depth) {
            int64_t pos = *l3;
            int ok = 0;
            for (int k = 0; k < MAX_MPLS_LABELS && pos + 4 <= bound; k++) {
                int bos = u8(r, pos + 2) & 1;
                pos += 4;
                if (bos) {
                    ok = 1;
                    break;
                }
            }
            uint64_t nib = u8(r, pos) >> 4;
            if (ok && (nib == 4 || nib == 6 || nib == 0)) {
                *et = nib == 4 ? ETH_IPV4 : nib == 6 ? ETH_IPV6 : u16(r, pos + 16);
                *l3 = nib == 0 ? pos + 18 : pos; /* 0: pseudowire control word + Ethernet */
                push(code, depth, T_MPLS);
            } else {
                *et = 0;
            }
        } else if (*et == ETH_PPPOE && *depth < max_depth) {
            int64_t p = *l3;
            uint64_t inner = ppp_type(u16(r, p + 6));
            if (p + 8 <= bound && u8(r, p) == 0x11 && u8(r, p + 1) == 0 && inner) {
                *et = inner;
                *l3 = p + 8;
                push(code, depth, T_PPPOE);
            } else {
                *et = 0;
            }
        } else {
            return;
        }
    }
}

/* ---- IP (decode._ip_layer) ----------------------------------------------------------- */
typedef struct {
    int valid;
    uint64_t ver, proto, frag, ttl, src_hi, src_lo, dst_hi, dst_lo;
    int64_t l4, claimed_end, ip_end;
} ip_info;

/* errors NULL: probing an inner packet, whose faults the caller counts as one reason */
static inline __attribute__((always_inline)) void ip_layer(const reader *r, uint64_t et, int64_t l3, int64_t bound, int64_t *errors, ip_info *ip)
{
#define COUNT(reason)                                                                                   \
    do {                                                                                                \
        if (errors)                                                                                     \
            errors[ERR_##reason]++;                                                                     \
    } while (0)
    ip->valid = 0;
    ip->ver = ip->proto = ip->frag = ip->ttl = ip->src_hi = ip->src_lo = ip->dst_hi = ip->dst_lo = 0;
    ip->l4 = 0;
    ip->claimed_end = ip->ip_end = bound;
    if (l3 > bound)
        return;
    if (et == ETH_IPV4) {
        if (l3 + 20 > bound) {
            COUNT(truncated_ip_header);
            return;
        }
        uint64_t b0 = u8(r, l3);
        if ((b0 >> 4) != 4) {
            COUNT(bad_ip_version);
            return;
        }
        int64_t ihl = (int64_t)(b0 & 0x0F) * 4, tot = (int64_t)u16(r, l3 + 2);
        if (tot == 0) /* segmentation offload / BIG TCP: the frame says how long */
            tot = bound - l3;
        if (ihl < 20 || tot < ihl) {
            COUNT(bad_ip_header_length);
            return;
        }
        if (l3 + ihl > bound) {
            COUNT(truncated_ip_header);
            return;
        }
        ip->valid = 1;
        ip->ver = 4;
        ip->proto = u8(r, l3 + 9);
        ip->ttl = u8(r, l3 + 8);
        uint64_t fw = u16(r, l3 + 6);
        ip->frag = (fw & 0x1FFF) > 0 ? FRAG_LATER : (fw & 0x2000) ? FRAG_FIRST : FRAG_NONE;
        ip->src_lo = MAPPED | u32(r, l3 + 12);
        ip->dst_lo = MAPPED | u32(r, l3 + 16);
        ip->l4 = l3 + ihl;
        ip->claimed_end = l3 + tot;
        ip->ip_end = bound < ip->claimed_end ? bound : ip->claimed_end;
    } else if (et == ETH_IPV6) {
        if (l3 + 40 > bound) {
            COUNT(truncated_ip_header);
            return;
        }
        if ((u8(r, l3) >> 4) != 6) {
            COUNT(bad_ip_version);
            return;
        }
        ip->valid = 1;
        ip->ver = 6;
        ip->ttl = u8(r, l3 + 7); /* hop limit */
        int64_t plen = (int64_t)u16(r, l3 + 4);
        if (plen == 0 && u8(r, l3 + 6) != 59) /* jumbogram / BIG TCP, as for IPv4 */
            plen = bound - l3 - 40;
        ip->src_hi = u64(r, l3 + 8);
        ip->src_lo = u64(r, l3 + 16);
        ip->dst_hi = u64(r, l3 + 24);
        ip->dst_lo = u64(r, l3 + 32);
        ip->claimed_end = l3 + 40 + plen;
        ip->ip_end = bound < ip->claimed_end ? bound : ip->claimed_end;
        uint64_t nh = u8(r, l3 + 6), fr = FRAG_NONE;
        int64_t pos = l3 + 40;
        for (int k = 0; k < MAX_IPV6_EXT && ipv6_ext(nh); k++) {
            if (pos + 8 > bound) {
                COUNT(truncated_ipv6_extension);
                nh = 255; /* reserved: stop here */
                break;
            }
            int64_t hb = (int64_t)u8(r, pos + 1);
            int64_t hlen = nh == 44 ? 8 : nh == 51 ? (hb + 2) * 4 : (hb + 1) * 8;
            uint64_t fw = u16(r, pos + 2);
            if (nh == 44)
                fr = (fw >> 3) > 0 ? FRAG_LATER : (fw & 1) ? FRAG_FIRST : FRAG_NONE;
            nh = u8(r, pos);
            pos += hlen;
        }
        ip->proto = nh;
        ip->frag = fr;
        ip->l4 = pos;
    }
#undef COUNT
}

/* ---- tunnels (decode._tunnel_header) ------------------------------------------------- */
typedef struct {
    int kind, status;
    uint64_t et;
    int64_t l3;
} tunnel_hdr;

static inline void ethernet_inside(const reader *r, int64_t frame, tunnel_hdr *t)
{
    t->et = u16(r, frame + 12);
    t->l3 = frame + 14;
}

/* a cheap first look: could this packet's payload be a tunnel tunnel_header decodes? */
static inline int may_tunnel(const reader *r, const ip_info *ip)
{
    if (ip->proto == 17) {
        uint64_t sport = u16(r, ip->l4), dport = u16(r, ip->l4 + 2);
        return dport == 4789 || dport == 6081 || sport == 2152 || dport == 2152 || sport == 3544 || dport == 3544;
    }
    return ip->proto == 47 || ip->proto == 4 || ip->proto == 41;
}

static tunnel_hdr tunnel_header(const reader *r, const ip_info *ip)
{
    tunnel_hdr t = {0, HDR_NONE, 0, ip->l4};
    const int64_t l4 = ip->l4, ip_end = ip->ip_end;
    int cut = 0;
    if (ip->proto == 4 || ip->proto == 41) {
        t.kind = ip->proto == 4 ? T_IPIP : T_IPV6;
        t.et = ip->proto == 4 ? ETH_IPV4 : ETH_IPV6;
    } else if (ip->proto == 47 && l4 + 4 <= ip_end) {
        uint64_t flags = u16(r, l4), ptype = u16(r, l4 + 2);
        if (flags & 0x4FFF) /* routing, version 1 (PPTP), reserved bits */
            return t;
        int seq = (flags & 0x1000) != 0;
        int64_t p = l4 + 4 + ((flags & 0x8000) ? 4 : 0) + ((flags & 0x2000) ? 4 : 0) + (seq ? 4 : 0);
        t.kind = T_GRE;
        if (is_ip(ptype) || ptype == ETH_MPLS || ptype == ETH_MPLS_MC) {
            t.et = ptype;
            t.l3 = p;
        } else if (ptype == ETH_TEB) {
            ethernet_inside(r, p, &t);
        } else if (ptype == ETH_ERSPAN_3) {
            if ((u16(r, p + 10) >> 10) & 0x1F) /* frame type: 0 is Ethernet */
                return t;
            t.kind = T_ERSPAN;
            ethernet_inside(r, p + 12 + ((u8(r, p + 11) & 1) ? 8 : 0), &t);
        } else if (ptype == ETH_ERSPAN_1_2) { /* type I has no ERSPAN header, type II 8 bytes */
            t.kind = T_ERSPAN;
            ethernet_inside(r, p + (seq ? 8 : 0), &t);
        } else {
            return t;
        }
    } else if (ip->proto == 17 && l4 + 8 <= ip_end) {
        uint64_t sport = u16(r, l4), dport = u16(r, l4 + 2), b0 = u8(r, l4 + 8);
        int64_t p = l4 + 8;
        int hdr_cut = p + 8 > ip_end;
        if (dport == 4789) {
            if (!hdr_cut && !(b0 & 0x08))
                return t;
            t.kind = T_VXLAN;
            ethernet_inside(r, p + 8, &t);
            cut = hdr_cut;
        } else if (dport == 6081) {
            uint64_t gtype = u16(r, p + 2);
            int64_t gp = p + 8 + (int64_t)(b0 & 0x3F) * 4;
            if (!hdr_cut && !((b0 >> 6) == 0 && (gtype == ETH_TEB || is_ip(gtype))))
                return t;
            t.kind = T_GENEVE;
            if (gtype == ETH_TEB) {
                ethernet_inside(r, gp, &t);
            } else {
                t.et = gtype;
                t.l3 = gp;
            }
            cut = hdr_cut;
        } else if (sport == 2152 || dport == 2152) {
            int64_t hl = (b0 & 0x07) ? 12 : 8;
            uint64_t next = (b0 & 0x04) ? u8(r, p + 11) : 0;
            int bad = 0;
            for (int e = 0; e < MAX_GTP_EXTENSIONS && next; e++) {
                int64_t elen = (int64_t)u8(r, p + hl) * 4;
                if (!elen) {
                    bad = 1;
                    next = 0;
                    break;
                }
                next = u8(r, p + hl + elen - 1);
                hl += elen;
            }
            if (next)
                bad = 1;
            int64_t q = p + hl;
            uint64_t nib = u8(r, q) >> 4;
            int gcut = hdr_cut || bad || q >= ip_end;
            if (!hdr_cut && !((b0 >> 5) == 1 && (b0 & 0x10) && u8(r, p + 1) == 0xFF))
                return t;
            if (!gcut && nib != 4 && nib != 6)
                return t;
            t.kind = T_GTPU;
            t.et = nib == 4 ? ETH_IPV4 : ETH_IPV6;
            t.l3 = q;
            cut = gcut;
        } else if (sport == 3544 || dport == 3544) {
            int64_t q = p;
            if (u16(r, p) == 0x0001) /* authentication indicator */
                q = p + 13 + (int64_t)u8(r, p + 2) + (int64_t)u8(r, p + 3);
            if (u16(r, q) == 0x0000) /* origin indication */
                q += 8;
            if (!(q + 40 <= ip_end && (u8(r, q) >> 4) == 6 && ip->claimed_end - q == 40 + (int64_t)u16(r, q + 4)))
                return t;
            t.kind = T_TEREDO;
            t.et = ETH_IPV6;
            t.l3 = q;
        } else {
            return t;
        }
    } else {
        return t;
    }
    t.status = (cut || t.l3 > ip_end) ? HDR_SHORT : HDR_OK;
    return t;
}

/* decode_batch(buf, meta u32[n*4], linktype, columns (in COLUMNS order), errors i64[len(ERRORS)],
 *              max_tunnel_depth) -> non_ip */
static PyObject *k_decode_batch(PyObject *self, PyObject *args)
{
    PyObject *obuf, *ometa, *ocols, *oerr;
    int linktype, max_depth;
    if (!PyArg_ParseTuple(args, "OOiO!Oi", &obuf, &ometa, &linktype, &PyTuple_Type, &ocols, &oerr, &max_depth))
        return NULL;
    if (PyTuple_GET_SIZE(ocols) != N_COLS) {
        PyErr_SetString(PyExc_ValueError, "decode_batch: wrong number of columns");
        return NULL;
    }
    if (max_depth < 0 || max_depth > MAX_TUNNEL_DEPTH) {
        PyErr_SetString(PyExc_ValueError, "decode_batch: max_tunnel_depth out of range");
        return NULL;
    }
    PyObject *o[3 + N_COLS] = {obuf, ometa, oerr};
    buffer_spec specs[3 + N_COLS] = {{1, 0, 0, "buf"}, {4, 0, 0, "meta"}, {8, 1, 0, "errors"}};
    for (int c = 0; c < N_COLS; c++) {
        o[3 + c] = PyTuple_GET_ITEM(ocols, c);
        specs[3 + c] = (buffer_spec){ITEMSIZE[c], 1, 0, COLUMN_NAMES[c]};
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
#define COLUMN_POINTER(name, type) type *name = col[C_##name].buf;
        DECODE_COLUMNS(COLUMN_POINTER)
#undef COLUMN_POINTER
        Py_BEGIN_ALLOW_THREADS
        for (Py_ssize_t i = 0; i < n; i++) {
            const uint32_t *m = meta + 4 * i;
            if (i + PREFETCH_PACKETS < n) { /* the headers of a packet ahead: its misses overlap this one */
                const uint8_t *ahead = r.buf + meta[4 * (i + PREFETCH_PACKETS) + 2];
                __builtin_prefetch(ahead);
                __builtin_prefetch(ahead + 64);
            }
            int64_t off = m[2], cap = m[3], end = off + cap;
            ts[i] = (double)m[0] + (double)m[1] * 1e-6;
            uint64_t et;
            int64_t l3;
            int depth = 0;
            uint32_t code = 0;
            link_layer(&r, linktype, off, end, &et, &l3);
            if (layered(et))
                resolve(&r, &et, &l3, end, &depth, &code, max_depth);
            if (l3 > end)
                errors[ERR_truncated_link_header]++;
            ip_info ip;
            ip_layer(&r, et, l3, end, errors, &ip);
            length[i] = ip.valid ? (uint32_t)(ip.claimed_end - off) : (uint32_t)cap;

            /* tunnels: look one layer further while the payload is one and the limit allows */
            while (ip.valid && may_tunnel(&r, &ip) && ip.frag != FRAG_LATER && depth < max_depth) {
                tunnel_hdr t = tunnel_header(&r, &ip);
                if (t.status == HDR_NONE)
                    break;
                if (t.status == HDR_SHORT) {
                    errors[ERR_malformed_inner_packet]++;
                    break;
                }
                int d = depth;
                uint32_t c = code;
                push(&c, &d, (uint32_t)t.kind);
                resolve(&r, &t.et, &t.l3, ip.ip_end, &d, &c, max_depth);
                ip_info in;
                ip_layer(&r, t.et, t.l3, ip.ip_end, NULL, &in);
                if (!in.valid) {
                    if (is_ip(t.et))
                        errors[ERR_malformed_inner_packet]++;
                    break;
                }
                ip = in;
                depth = d;
                code = c;
            }
            tunnel[i] = code;
            src_hi[i] = ip.src_hi;
            src_lo[i] = ip.src_lo;
            dst_hi[i] = ip.dst_hi;
            dst_lo[i] = ip.dst_lo;
            const uint64_t prot = ip.proto, fr = ip.frag;
            const int64_t l4 = ip.l4, ip_end = ip.ip_end, claimed_end = ip.claimed_end;

            /* L4 */
            if (!ip.valid && l3 <= end && !is_ip(et))
                non_ip++;
            /* ARP for IPv4 (RFC 826): addresses after the hardware ones, hlen bytes each */
            int64_t hlen = (int64_t)u8(&r, l3 + 4);
            int arp = !ip.valid && et == ETH_ARP && l3 + 8 + 2 * hlen + 8 <= end && u16(&r, l3 + 2) == ETH_IPV4 &&
                      u8(&r, l3 + 5) == 4;
            uint64_t op = arp ? u16(&r, l3 + 6) : 0;
            arp_op[i] = (uint8_t)(op == 1 || op == 2 ? op : 0);
            arp_spa[i] = arp ? (uint32_t)u32(&r, l3 + 8 + hlen) : 0;
            arp_tpa[i] = arp ? (uint32_t)u32(&r, l3 + 8 + 2 * hlen + 4) : 0;
            int first = ip.valid && fr != FRAG_LATER;
            int is_tcp = first && prot == 6, is_udp = first && prot == 17;
            int is_icmp = first && (prot == 1 || prot == 58);
            int is_sctp = first && prot == 132; /* SCTP's common header starts with the two ports */
            int ported = is_tcp || is_udp || is_sctp;
            int ports = ported && l4 + 4 <= ip_end;
            if (ported && !ports && fr == FRAG_NONE)
                errors[ERR_truncated_l4_header]++;
            sport[i] = ports ? (uint16_t)u16(&r, l4) : 0;
            dport[i] = ports ? (uint16_t)u16(&r, l4 + 2) : 0;
            int flags = is_tcp && l4 + 14 <= ip_end;
            if (is_tcp && ports && !flags && fr == FRAG_NONE)
                errors[ERR_truncated_l4_header]++;
            tcp_flags[i] = flags ? (uint8_t)u8(&r, l4 + 13) : 0;
            int64_t pay = 0;
            if (flags)
                pay = claimed_end - l4 - (int64_t)(u8(&r, l4 + 12) >> 4) * 4;
            else if (is_udp && ports)
                pay = claimed_end - l4 - 8;
            payload[i] = (int32_t)(pay > 0 ? pay : 0);
            int icmp = is_icmp && l4 + 2 <= ip_end;
            if (is_icmp && !icmp)
                errors[ERR_truncated_l4_header]++;
            uint64_t itype = icmp ? u8(&r, l4) : 0;
            icmp_code[i] = icmp ? (uint8_t)u8(&r, l4 + 1) : 0;

            /* ICMP errors quote the offending packet: its header, within the IP length and the capture
             * (no room for it: QUOTE_BAD; cut by the capture: QUOTE_CUT, unknown) */
            int64_t q = l4 + 8;
            uint64_t qs_hi = 0, qs_lo = 0, qd_hi = 0, qd_lo = 0, qp = 0, qsp = 0, qdp = 0;
            int qst = QUOTE_NONE, okq = 0;
            if (icmp && icmp_error(prot, itype)) {
                int v4 = prot == 1;
                int64_t need = v4 ? 20 : 40;
                uint64_t head = u8(&r, q);
                if (claimed_end - q < need)
                    qst = QUOTE_BAD;
                else if (ip_end - q < need)
                    qst = QUOTE_CUT;
                else if (v4 ? (head >> 4) != 4 || (head & 0x0F) < 5 : (head >> 4) != 6)
                    qst = QUOTE_BAD;
                else {
                    qst = QUOTE_IP;
                    int64_t ports;
                    if (v4) {
                        qs_lo = MAPPED | u32(&r, q + 12);
                        qd_lo = MAPPED | u32(&r, q + 16);
                        qp = u8(&r, q + 9);
                        ports = q + (int64_t)(head & 0x0F) * 4;
                    } else {
                        qs_hi = u64(&r, q + 8);
                        qs_lo = u64(&r, q + 16);
                        qd_hi = u64(&r, q + 24);
                        qd_lo = u64(&r, q + 32);
                        qp = u8(&r, q + 6);
                        ports = q + 40;
                    }
                    okq = ports + 4 <= ip_end;
                    if (okq) {
                        qsp = u16(&r, ports);
                        qdp = u16(&r, ports + 2);
                    }
                }
            }
            quote[i] = (uint8_t)qst;
            inner_src_hi[i] = qs_hi;
            inner_src_lo[i] = qs_lo;
            inner_dst_hi[i] = qd_hi;
            inner_dst_lo[i] = qd_lo;
            inner_proto[i] = (uint8_t)qp;
            inner_sport[i] = (uint16_t)qsp;
            inner_dport[i] = (uint16_t)qdp;
            has_inner[i] = (uint8_t)okq;
            ipver[i] = (uint8_t)ip.ver;
            ttl[i] = (uint8_t)ip.ttl;
            proto[i] = (uint8_t)prot;
            frag[i] = (uint8_t)fr;
            has_ports[i] = (uint8_t)ports;
            flags_ok[i] = (uint8_t)flags;
            has_icmp[i] = (uint8_t)icmp;
            icmp_type[i] = (uint8_t)itype;
        }
        Py_END_ALLOW_THREADS
    }
    release_buffers(v, 3 + N_COLS);
    return PyLong_FromLongLong(non_ip);
}

static PyMethodDef methods[] = {
    {"decode_batch", k_decode_batch, METH_VARARGS,
     "decode_batch(buf, meta, linktype, columns, errors, max_tunnel_depth) -> non_ip"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, .m_name = "_decode", .m_doc = "Compiled packet decoder", .m_size = -1, .m_methods = methods};

static PyObject *names_tuple(const char *const *names, int n)
{
    PyObject *t = PyTuple_New(n);
    for (int i = 0; t && i < n; i++) {
        PyObject *s = PyUnicode_FromString(names[i]);
        if (!s) {
            Py_DECREF(t);
            return NULL;
        }
        PyTuple_SET_ITEM(t, i, s);
    }
    return t;
}

PyMODINIT_FUNC PyInit__decode(void)
{
    PyObject *m = PyModule_Create(&module);
    if (!m)
        return NULL;
    PyObject *cols = names_tuple(COLUMN_NAMES, N_COLS), *errs = names_tuple(ERROR_NAMES, N_ERRORS);
    if (!cols || !errs || PyModule_AddObject(m, "COLUMNS", cols) < 0) {
        Py_XDECREF(cols);
        Py_XDECREF(errs);
        Py_DECREF(m);
        return NULL;
    }
    if (PyModule_AddObject(m, "ERRORS", errs) < 0) {
        Py_DECREF(errs);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
