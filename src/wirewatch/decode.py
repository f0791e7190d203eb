"""Raw capture batch -> PacketBatch: one vectorized pass over many packets.

The decoder never looks at a packet on its own: every header field is read for the whole
batch at once with numpy fancy indexing into the concatenated packet bytes. Reads are
clamped to the buffer and validated against each packet's captured length, so hostile or
truncated frames are counted by reason and never raise.

Addresses are 128-bit, split in two uint64 columns (hi, lo); IPv4 addresses are stored as
IPv4-mapped IPv6 (::ffff:a.b.c.d), so one representation serves both families.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import native
from .lut import member_table

_compiled = native.load("_decode")

# Link types (LINKTYPE_* values as written in pcap files; DLT_RAW has two historic numbers).
LINKTYPE_NULL = 0
LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101
LINKTYPE_RAW_ALT = (12, 14)
LINKTYPE_LOOP = 108
LINKTYPE_LINUX_SLL = 113
LINKTYPE_IPV4 = 228
LINKTYPE_IPV6 = 229
LINKTYPE_LINUX_SLL2 = 276
SUPPORTED_LINKTYPES = {
    LINKTYPE_NULL: "BSD loopback",
    LINKTYPE_ETHERNET: "Ethernet",
    LINKTYPE_RAW: "raw IP",
    12: "raw IP",
    14: "raw IP",
    LINKTYPE_LOOP: "OpenBSD loopback",
    LINKTYPE_LINUX_SLL: "Linux cooked v1",
    LINKTYPE_IPV4: "raw IPv4",
    LINKTYPE_IPV6: "raw IPv6",
    LINKTYPE_LINUX_SLL2: "Linux cooked v2",
}

ETH_IPV4 = 0x0800
ETH_IPV6 = 0x86DD
VLAN_TPIDS = member_table((0x8100, 0x88A8, 0x9100), np.uint16)
IPV6_EXT = member_table((0, 43, 44, 51, 60))  # hop-by-hop, routing, fragment, AH, dst opts
MAX_VLAN_TAGS = 2
MAX_IPV6_EXT = 8
ICMP_ERRORS_V4 = member_table((3, 11, 12))  # unreachable, time exceeded, parameter problem

PROTO_ICMP = 1
PROTO_TCP = 6
PROTO_UDP = 17
PROTO_ICMPV6 = 58

TCP_FIN, TCP_SYN, TCP_RST, TCP_PSH, TCP_ACK, TCP_URG = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20

FRAG_NONE, FRAG_FIRST, FRAG_LATER = 0, 1, 2

IPV4_MAPPED = np.uint64(0xFFFF << 32)

# reasons the compiled decoder counts, in native/decode.c's order
ERROR_REASONS = ("truncated_link_header", "truncated_ip_header", "bad_ip_version", "bad_ip_header_length",
                 "truncated_ipv6_extension", "truncated_l4_header")
BATCH_FIELDS = (
    "ts", "src_hi", "src_lo", "dst_hi", "dst_lo", "ipver", "proto", "sport", "dport",
    "has_ports", "tcp_flags", "flags_ok", "icmp_type", "icmp_code", "has_icmp", "length",
    "payload", "frag", "inner_proto", "inner_dst_hi", "inner_dst_lo", "inner_sport",
    "inner_dport", "has_inner",
)
COLUMN_DTYPES = (np.float64, np.uint64, np.uint64, np.uint64, np.uint64, np.uint8, np.uint8, np.uint16, np.uint16,
                 bool, np.uint8, bool, np.uint8, np.uint8, bool, np.uint32, np.int32, np.uint8, np.uint8,
                 np.uint64, np.uint64, np.uint16, np.uint16, bool)  # per BATCH_FIELDS


@dataclass
class PacketBatch:
    """Decoded columns for one batch; row i of every array describes packet i."""

    ts: np.ndarray  # float64 seconds since the epoch, the capture's record time
    src_hi: np.ndarray  # uint64
    src_lo: np.ndarray
    dst_hi: np.ndarray
    dst_lo: np.ndarray
    ipver: np.ndarray  # uint8: 4, 6, or 0 for a frame that is not (decodable) IP
    proto: np.ndarray  # uint8: final IP protocol (after IPv6 extension headers)
    sport: np.ndarray  # uint16, valid where has_ports
    dport: np.ndarray
    has_ports: np.ndarray  # bool: TCP/UDP ports present (first fragment or unfragmented)
    tcp_flags: np.ndarray  # uint8, valid where flags_ok
    flags_ok: np.ndarray
    icmp_type: np.ndarray  # uint8, valid where has_icmp (ICMP and ICMPv6)
    icmp_code: np.ndarray
    has_icmp: np.ndarray
    length: np.ndarray  # uint32 wire length: link header + IP length from the IP header
    payload: np.ndarray  # int32 L4 payload bytes (TCP/UDP), 0 otherwise
    frag: np.ndarray  # uint8 FRAG_NONE / FRAG_FIRST / FRAG_LATER
    inner_proto: np.ndarray  # ICMP error: protocol of the packet it quotes
    inner_dst_hi: np.ndarray  # ICMP error: destination of the quoted packet
    inner_dst_lo: np.ndarray
    inner_sport: np.ndarray
    inner_dport: np.ndarray
    has_inner: np.ndarray
    errors: dict[str, int] = field(default_factory=dict)
    non_ip: int = 0
    seq: int = -1  # set by the engine: identifies this slice for per-batch caches
    derived: dict = field(default_factory=dict, repr=False, compare=False)  # values several detectors derive

    def __len__(self) -> int:
        return len(self.ts)

    @property
    def is_v4(self) -> np.ndarray:
        return self.ipver == 4

    @property
    def is_ip(self) -> np.ndarray:
        return self.ipver != 0

    def tcp(self) -> np.ndarray:
        return (self.proto == PROTO_TCP) & self.is_ip

    def select(self, mask: np.ndarray | slice) -> "PacketBatch":
        """A new batch holding only the selected rows (errors not carried). A slice gives
        views; a mask or index array gives a batch that gathers each column on first use,
        since a detector reads only a few of them."""
        if isinstance(mask, slice):
            return PacketBatch(**{name: getattr(self, name)[mask] for name in BATCH_FIELDS})
        return _SelectedRows(self, mask)

    @classmethod
    def concat(cls, batches: list["PacketBatch"]) -> "PacketBatch":
        cols = {name: np.concatenate([getattr(b, name) for b in batches]) for name in BATCH_FIELDS}
        out = cls(**cols)
        for b in batches:
            for k, v in b.errors.items():
                out.errors[k] = out.errors.get(k, 0) + v
            out.non_ip += b.non_ip
        return out



class _SelectedRows(PacketBatch):
    """PacketBatch.select's result: columns are gathered from the parent when first read."""

    def __init__(self, parent: PacketBatch, rows: np.ndarray):
        # no super().__init__(): that would gather every column now
        self._parent, self._rows = parent, rows
        self.errors, self.derived = {}, {}

    def __getattr__(self, name: str) -> np.ndarray:
        if name not in _FIELDS:
            raise AttributeError(name)
        col = getattr(self._parent, name)[self._rows]
        setattr(self, name, col)  # cached: later reads are plain attribute lookups
        return col


_FIELDS = frozenset(BATCH_FIELDS)

class _Reader:
    """Clamped big-endian field reads at many positions at once."""

    def __init__(self, buf: bytes, end: np.ndarray):
        self.arr = np.frombuffer(buf, dtype=np.uint8) if len(buf) else np.zeros(1, np.uint8)
        self.last = len(self.arr) - 1
        self.end = end

    def u8(self, pos: np.ndarray) -> np.ndarray:
        return self.arr[np.minimum(pos, self.last)]  # positions are never negative

    def u16(self, pos: np.ndarray) -> np.ndarray:
        return (self.u8(pos).astype(np.uint16) << 8) | self.u8(pos + 1)

    def has(self, pos: np.ndarray, size: int | np.ndarray, end: np.ndarray | None = None) -> np.ndarray:
        return pos + size <= (self.end if end is None else end)

    def bytes_be(self, pos: np.ndarray, width: int) -> np.ndarray:
        """Read `width` (8 or 16) bytes at each position as big-endian uint64 words: (k, width//8)."""
        idx = np.minimum(pos[:, None] + np.arange(width), self.last)
        return np.ascontiguousarray(self.arr[idx]).view(">u8").astype(np.uint64)

    def u32_pairs(self, pos: np.ndarray) -> np.ndarray:
        """Two consecutive big-endian uint32 at each position: (k, 2)."""
        idx = np.minimum(pos[:, None] + np.arange(8), self.last)
        return np.ascontiguousarray(self.arr[idx]).view(">u4").astype(np.uint64)


def _count(errors: dict[str, int], reason: str, mask: np.ndarray) -> None:
    n = int(np.count_nonzero(mask))
    if n:
        errors[reason] = errors.get(reason, 0) + n


def empty_batch() -> PacketBatch:
    return decode(b"", np.zeros((0, 4), dtype=np.uint32), LINKTYPE_ETHERNET)


def _link_layer(r: _Reader, off: np.ndarray, linktype: int) -> tuple[np.ndarray, np.ndarray]:
    """Return (ethertype-like L3 kind, L3 offset) per packet for the capture's link type."""
    if linktype == LINKTYPE_ETHERNET:
        ethertype, l3 = r.u16(off + 12), off + 14
    elif linktype == LINKTYPE_LINUX_SLL:
        ethertype, l3 = r.u16(off + 14), off + 16
    elif linktype == LINKTYPE_LINUX_SLL2:
        ethertype, l3 = r.u16(off), off + 20
    else:
        l3 = off + (4 if linktype in (LINKTYPE_NULL, LINKTYPE_LOOP) else 0)
        version = r.u8(l3) >> 4
        ethertype = np.where(version == 4, ETH_IPV4, np.where(version == 6, ETH_IPV6, 0)).astype(np.uint16)
        return ethertype, l3
    for _ in range(MAX_VLAN_TAGS):  # 802.1Q and 802.1ad (QinQ) tags sit before the real type
        tagged = VLAN_TPIDS[ethertype]
        if not tagged.any():
            break
        l3 = np.where(tagged, l3 + 4, l3)
        ethertype = np.where(tagged, r.u16(l3 - 2), ethertype)
    return ethertype, l3


def decode(buf: bytes, meta: np.ndarray, linktype: int) -> PacketBatch:
    """Decode a batch: `meta` rows are (sec, usec, offset, caplen) into `buf`.

    Runs compiled (native/decode.c) when it is built and the link type is supported;
    `decode_numpy` is the reference it must match, field for field."""
    meta = np.ascontiguousarray(meta, dtype=np.uint32).reshape(-1, 4)
    if _compiled is None or linktype not in SUPPORTED_LINKTYPES:
        return decode_numpy(buf, meta, linktype)
    n = len(meta)
    cols = tuple(np.empty(n, dtype) for dtype in COLUMN_DTYPES)
    counts = np.zeros(len(ERROR_REASONS), np.int64)
    non_ip = _compiled.decode_batch(buf, meta, linktype, cols, counts)
    errors = {reason: int(c) for reason, c in zip(ERROR_REASONS, counts) if c}
    return PacketBatch(*cols, errors=errors, non_ip=non_ip)


def decode_numpy(buf: bytes, meta: np.ndarray, linktype: int) -> PacketBatch:
    """The numpy decoder: the reference and the fallback of `decode`."""
    meta = np.asarray(meta, dtype=np.uint32).reshape(-1, 4)
    n = len(meta)
    errors: dict[str, int] = {}
    off = meta[:, 2].astype(np.int64)
    cap = meta[:, 3].astype(np.int64)
    end = off + cap
    r = _Reader(buf, end)
    ts = meta[:, 0].astype(np.float64) + meta[:, 1].astype(np.float64) * 1e-6

    z64 = np.zeros(n, np.uint64)
    ipver = np.zeros(n, np.uint8)
    proto = np.zeros(n, np.uint8)
    src_hi, src_lo, dst_hi, dst_lo = z64.copy(), z64.copy(), z64.copy(), z64.copy()
    length = cap.astype(np.uint32)
    frag = np.zeros(n, np.uint8)
    l4 = np.zeros(n, np.int64)
    ip_end = end.copy()  # end of the IP datagram as captured (bounds every read)
    claimed_end = end.copy()  # end of the IP datagram on the wire (for payload sizes)

    if linktype not in SUPPORTED_LINKTYPES:
        _count(errors, f"unknown_linktype_{linktype}", np.ones(n, bool))
        ethertype, l3 = np.zeros(n, np.uint16), off
    else:
        ethertype, l3 = _link_layer(r, off, linktype)
        _count(errors, "truncated_link_header", l3 > end)

    # ---- IPv4 -------------------------------------------------------------------------
    v4 = (ethertype == ETH_IPV4) & (l3 <= end)
    v4_short = v4 & ~r.has(l3, 20)
    _count(errors, "truncated_ip_header", v4_short)
    v4 &= ~v4_short
    b0 = r.u8(l3)
    bad_ver = v4 & ((b0 >> 4) != 4)
    _count(errors, "bad_ip_version", bad_ver)
    v4 &= ~bad_ver
    ihl = (b0 & 0x0F).astype(np.int64) * 4
    tot = r.u16(l3 + 2).astype(np.int64)
    bad_hl = v4 & ((ihl < 20) | (tot < ihl))
    _count(errors, "bad_ip_header_length", bad_hl)
    v4 &= ~bad_hl
    opt_short = v4 & ~r.has(l3, ihl)
    _count(errors, "truncated_ip_header", opt_short)
    v4 &= ~opt_short
    if v4.any():
        ipver[v4] = 4
        proto[v4] = r.u8(l3[v4] + 9)
        fragword = r.u16(l3[v4] + 6)
        fo, mf = fragword & 0x1FFF, (fragword & 0x2000) != 0
        frag[v4] = np.where(fo > 0, FRAG_LATER, np.where(mf, FRAG_FIRST, FRAG_NONE))
        pair = r.u32_pairs(l3[v4] + 12)
        src_lo[v4] = IPV4_MAPPED | pair[:, 0]
        dst_lo[v4] = IPV4_MAPPED | pair[:, 1]
        l4[v4] = l3[v4] + ihl[v4]
        claimed_end[v4] = l3[v4] + tot[v4]
        ip_end[v4] = np.minimum(end[v4], claimed_end[v4])
        length[v4] = (l3[v4] - off[v4] + tot[v4]).astype(np.uint32)

    # ---- IPv6 -------------------------------------------------------------------------
    v6 = (ethertype == ETH_IPV6) & (l3 <= end)
    v6_short = v6 & ~r.has(l3, 40)
    _count(errors, "truncated_ip_header", v6_short)
    v6 &= ~v6_short
    bad6 = v6 & ((r.u8(l3) >> 4) != 6)
    _count(errors, "bad_ip_version", bad6)
    v6 &= ~bad6
    if v6.any():
        idx = np.flatnonzero(v6)
        p3 = l3[idx]
        ipver[idx] = 6
        plen = r.u16(p3 + 4).astype(np.int64)
        words = r.bytes_be(p3 + 8, 32)
        src_hi[idx], src_lo[idx], dst_hi[idx], dst_lo[idx] = words[:, 0], words[:, 1], words[:, 2], words[:, 3]
        length[idx] = (p3 - off[idx] + 40 + plen).astype(np.uint32)
        claimed_end[idx] = p3 + 40 + plen
        ip_end[idx] = np.minimum(end[idx], claimed_end[idx])
        nh = r.u8(p3 + 6)
        pos = p3 + 40
        fr = np.zeros(len(idx), np.uint8)
        for _ in range(MAX_IPV6_EXT):
            ext = IPV6_EXT[nh]
            if not ext.any():
                break
            short = ext & ~r.has(pos, 8, end[idx])
            if short.any():
                _count(errors, "truncated_ipv6_extension", short)
                nh = np.where(short, 255, nh).astype(np.uint8)  # 255 = reserved: stop here
                ext &= ~short
            hlen_byte = r.u8(pos + 1).astype(np.int64)
            hlen = np.where(nh == 44, 8, np.where(nh == 51, (hlen_byte + 2) * 4, (hlen_byte + 1) * 8))
            fw = r.u16(pos + 2)
            fr = np.where(ext & (nh == 44), np.where((fw >> 3) > 0, FRAG_LATER, np.where(fw & 1, FRAG_FIRST, FRAG_NONE)), fr).astype(np.uint8)
            nh = np.where(ext, r.u8(pos), nh)
            pos = np.where(ext, pos + hlen, pos)
        proto[idx] = nh
        frag[idx] = fr
        l4[idx] = pos

    # ---- L4 ---------------------------------------------------------------------------
    ip = ipver != 0
    non_ip_mask = ~ip & (l3 <= end) & (ethertype != ETH_IPV4) & (ethertype != ETH_IPV6)
    non_ip = int(np.count_nonzero(non_ip_mask)) if linktype in SUPPORTED_LINKTYPES else 0
    first = ip & (frag != FRAG_LATER)
    is_tcp = first & (proto == PROTO_TCP)
    is_udp = first & (proto == PROTO_UDP)
    is_icmp = first & ((proto == PROTO_ICMP) | (proto == PROTO_ICMPV6))
    ported = is_tcp | is_udp
    has_ports = ported & r.has(l4, 4, ip_end)
    _count(errors, "truncated_l4_header", (ported & ~has_ports) & (frag == FRAG_NONE))
    sport = np.where(has_ports, r.u16(l4), 0).astype(np.uint16)
    dport = np.where(has_ports, r.u16(l4 + 2), 0).astype(np.uint16)
    flags_ok = is_tcp & r.has(l4, 14, ip_end)
    _count(errors, "truncated_l4_header", is_tcp & has_ports & ~flags_ok & (frag == FRAG_NONE))
    tcp_flags = np.where(flags_ok, r.u8(l4 + 13), 0).astype(np.uint8)
    doff = (r.u8(l4 + 12) >> 4).astype(np.int64) * 4
    payload = np.where(flags_ok, claimed_end - l4 - doff, np.where(is_udp & has_ports, claimed_end - l4 - 8, 0))
    payload = np.maximum(payload, 0).astype(np.int32)
    has_icmp = is_icmp & r.has(l4, 2, ip_end)
    _count(errors, "truncated_l4_header", is_icmp & ~has_icmp)
    icmp_type = np.where(has_icmp, r.u8(l4), 0).astype(np.uint8)
    icmp_code = np.where(has_icmp, r.u8(l4 + 1), 0).astype(np.uint8)

    # ICMP errors quote the offending packet: keep its destination and ports (for
    # "answered by ICMP unreachable" and closed-port accounting).
    inner_proto = np.zeros(n, np.uint8)
    inner_dst_hi, inner_dst_lo = z64.copy(), z64.copy()
    inner_sport = np.zeros(n, np.uint16)
    inner_dport = np.zeros(n, np.uint16)
    has_inner = np.zeros(n, bool)
    q = l4 + 8
    err4 = has_icmp & (proto == PROTO_ICMP) & ICMP_ERRORS_V4[icmp_type] & r.has(q, 20, end)
    err4 &= (r.u8(q) >> 4) == 4
    if err4.any():
        i = np.flatnonzero(err4)
        qi = q[i]
        qihl = (r.u8(qi) & 0x0F).astype(np.int64) * 4
        inner_proto[i] = r.u8(qi + 9)
        inner_dst_lo[i] = IPV4_MAPPED | r.u32_pairs(qi + 12)[:, 1]
        ok = r.has(qi + qihl, 4, end[i]) & (qihl >= 20)
        inner_sport[i] = np.where(ok, r.u16(qi + qihl), 0)
        inner_dport[i] = np.where(ok, r.u16(qi + qihl + 2), 0)
        has_inner[i] = ok
    err6 = has_icmp & (proto == PROTO_ICMPV6) & (icmp_type >= 1) & (icmp_type <= 4) & r.has(q, 44, end)
    err6 &= (r.u8(q) >> 4) == 6
    if err6.any():
        i = np.flatnonzero(err6)
        qi = q[i]
        inner_proto[i] = r.u8(qi + 6)
        w = r.bytes_be(qi + 24, 16)
        inner_dst_hi[i], inner_dst_lo[i] = w[:, 0], w[:, 1]
        inner_sport[i] = r.u16(qi + 40)
        inner_dport[i] = r.u16(qi + 42)
        has_inner[i] = True

    return PacketBatch(
        ts=ts, src_hi=src_hi, src_lo=src_lo, dst_hi=dst_hi, dst_lo=dst_lo, ipver=ipver,
        proto=proto, sport=sport, dport=dport, has_ports=has_ports, tcp_flags=tcp_flags,
        flags_ok=flags_ok, icmp_type=icmp_type, icmp_code=icmp_code, has_icmp=has_icmp,
        length=length, payload=payload, frag=frag, inner_proto=inner_proto,
        inner_dst_hi=inner_dst_hi, inner_dst_lo=inner_dst_lo, inner_sport=inner_sport,
        inner_dport=inner_dport, has_inner=has_inner, errors=errors, non_ip=non_ip,
    )
