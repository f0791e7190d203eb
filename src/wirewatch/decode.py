"""Raw capture batch -> PacketBatch: one vectorized pass over many packets.

The decoder never looks at a packet on its own: every header field is read for the whole
batch at once with numpy fancy indexing into the concatenated packet bytes. Reads are
clamped to the buffer and validated against each packet's captured length, so hostile or
truncated frames are counted by reason and never raise.

Addresses are 128-bit, split in two uint64 columns (hi, lo); IPv4 addresses are stored as
IPv4-mapped IPv6 (::ffff:a.b.c.d), so one representation serves both families.

Tunnels: a packet's columns describe its innermost decodable IP packet (the one the
detectors should judge); the `tunnel` column names the layers it was found inside, four
bits per layer, outermost in the low bits (`tunnel_names`). Descent is bounded by
`max_tunnel_depth`; an inner packet that does not validate leaves the row describing the
outer packet and is counted as `malformed_inner_packet`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import native
from .lut import member_table
from .settings import Frozen, cap, setting

_compiled = native.load("_decode")

# Link types (LINKTYPE_* values as written in pcap files; DLT_RAW has two historic numbers).
LINKTYPE_NULL = 0
LINKTYPE_ETHERNET = 1
LINKTYPE_PPP = 9
LINKTYPE_PPP_HDLC = 50
LINKTYPE_RAW = 101
LINKTYPE_C_HDLC = 104
LINKTYPE_IEEE802_11 = 105
LINKTYPE_FRELAY = 107
LINKTYPE_LOOP = 108
LINKTYPE_LINUX_SLL = 113
LINKTYPE_IEEE802_11_RADIOTAP = 127
LINKTYPE_IPV4 = 228
LINKTYPE_IPV6 = 229
LINKTYPE_NFLOG = 239
LINKTYPE_IPOIB = 242
LINKTYPE_LINUX_SLL2 = 276
SUPPORTED_LINKTYPES = {
    LINKTYPE_NULL: "BSD loopback",
    LINKTYPE_ETHERNET: "Ethernet",
    LINKTYPE_PPP: "PPP",
    LINKTYPE_PPP_HDLC: "PPP in HDLC-like framing",
    LINKTYPE_RAW: "raw IP",
    12: "raw IP",
    14: "raw IP",
    LINKTYPE_C_HDLC: "Cisco HDLC",
    LINKTYPE_IEEE802_11: "IEEE 802.11",
    LINKTYPE_FRELAY: "Frame Relay",
    LINKTYPE_LOOP: "OpenBSD loopback",
    LINKTYPE_LINUX_SLL: "Linux cooked v1",
    LINKTYPE_IEEE802_11_RADIOTAP: "IEEE 802.11 with radiotap",
    LINKTYPE_IPV4: "raw IPv4",
    LINKTYPE_IPV6: "raw IPv6",
    LINKTYPE_NFLOG: "Linux NFLOG",
    LINKTYPE_IPOIB: "Linux IP over InfiniBand",
    LINKTYPE_LINUX_SLL2: "Linux cooked v2",
}

ETH_IPV4 = 0x0800
ETH_IPV6 = 0x86DD
ETH_ARP = 0x0806
ARP_REQUEST, ARP_REPLY = 1, 2
ETH_MPLS = 0x8847
ETH_MPLS_MULTICAST = 0x8848
ETH_PPPOE_SESSION = 0x8864
ETH_TEB = 0x6558  # transparent Ethernet bridging (GRE, Geneve)
ETH_ERSPAN_1_2 = 0x88BE
ETH_ERSPAN_3 = 0x22EB
VLAN_TPIDS = member_table((0x8100, 0x88A8, 0x9100), np.uint16)
IPV6_EXT = member_table((0, 43, 44, 51, 60))  # hop-by-hop, routing, fragment, AH, dst opts
MAX_VLAN_TAGS = 2
MAX_IPV6_EXT = 8
MAX_MPLS_LABELS = 8
MAX_GTP_EXTENSIONS = 4
MAX_NFLOG_TLVS = 16
# ICMP errors, which quote the packet that caused them (RFC 792, 4443): unreachable, source quench,
# redirect, time exceeded, parameter problem; ICMPv6 unreachable, too big, time exceeded, parameter problem
ICMP_ERRORS_V4 = member_table((3, 4, 5, 11, 12))
ICMP_ERRORS_V6 = member_table((1, 2, 3, 4))
# the `quote` column: what an ICMP error's quoted packet is (native/decode.c uses the same numbers)
QUOTE_NONE = 0  # not an ICMP error (or its own header is cut)
QUOTE_CUT = 1  # an ICMP error whose quoted IP header the capture cut (snaplen): unknown
QUOTE_BAD = 2  # an ICMP error quoting no IP header: no room for one in the packet, or not one of its version
QUOTE_IP = 3  # the quoted IP header is there: inner_src, inner_dst and inner_proto hold it

PROTO_ICMP = 1
PROTO_IPIP = 4
PROTO_TCP = 6
PROTO_UDP = 17
PROTO_IPV6 = 41
PROTO_GRE = 47
PROTO_ICMPV6 = 58
PROTO_SCTP = 132
PORT_VXLAN, PORT_GENEVE, PORT_GTPU, PORT_TEREDO = 4789, 6081, 2152, 3544

TCP_FIN, TCP_SYN, TCP_RST, TCP_PSH, TCP_ACK, TCP_URG = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20

FRAG_NONE, FRAG_FIRST, FRAG_LATER = 0, 1, 2

IPV4_MAPPED = np.uint64(0xFFFF << 32)

# Tunnel layer codes in the `tunnel` column (4 bits per layer; native/decode.c uses the same numbers).
TUNNEL_NAMES = {1: "gre", 2: "erspan", 3: "vxlan", 4: "geneve", 5: "ip-in-ip", 6: "ipv6-in-ip", 7: "teredo",
                8: "gtp-u", 9: "mpls", 10: "pppoe"}
T_GRE, T_ERSPAN, T_VXLAN, T_GENEVE, T_IPIP, T_IPV6, T_TEREDO, T_GTPU, T_MPLS, T_PPPOE = range(1, 11)
TUNNEL_PROTOS = member_table((PROTO_IPIP, PROTO_IPV6, PROTO_GRE))
TUNNEL_DPORTS = member_table((PORT_VXLAN, PORT_GENEVE, PORT_GTPU, PORT_TEREDO), np.uint16)
MAX_TUNNEL_DEPTH = 8  # the tunnel column holds 8 layers of 4 bits
DEFAULT_TUNNEL_DEPTH = 4
# tunnel header parse results
_NONE, _SHORT, _OK = 0, 1, 2


@dataclass(frozen=True, eq=False, repr=False)
class DecodeConfig(Frozen):
    max_tunnel_depth: int = setting(
        DEFAULT_TUNNEL_DEPTH, "Encapsulation layers (GRE, VXLAN, Geneve, IP-in-IP, Teredo, GTP-U, MPLS, PPPoE) the decoder "
           "looks through to reach the inner packet; 0 = analyse the outermost packet.", 0, MAX_TUNNEL_DEPTH)
    tunnel_addresses: int = cap(65_536, "Cap on addresses remembered with the tunnel they were last seen in (an "
                                        "alert's `tunnel` evidence); the least recently seen go first, counted.")


def tunnel_names(code: int) -> list[str]:
    """The outer layers a `tunnel` column value names, outermost first."""
    names = []
    while code:
        names.append(TUNNEL_NAMES.get(code & 0xF, f"layer{code & 0xF}"))
        code >>= 4
    return names


def _column(dtype: type, doc: str) -> dict[str, Any]:
    """A PacketBatch column's metadata: its dtype is declared there and nowhere else (the
    compiled decoder binds its outputs by name, see `decode`)."""
    return {"dtype": np.dtype(dtype), "doc": doc}


# eq=False, repr=False: a whole batch's columns, compared and shown by identity (each method dataclass
# makes is compiled at import: start-up)
@dataclass(eq=False, repr=False)
class PacketBatch:
    """Decoded columns for one batch; row i of every array describes packet i."""

    ts: np.ndarray = field(metadata=_column(np.float64, "seconds since the epoch, the capture's record time"))
    src_hi: np.ndarray = field(metadata=_column(np.uint64, "source address, high 64 bits"))
    src_lo: np.ndarray = field(metadata=_column(np.uint64, "source address, low 64 bits"))
    dst_hi: np.ndarray = field(metadata=_column(np.uint64, "destination address, high 64 bits"))
    dst_lo: np.ndarray = field(metadata=_column(np.uint64, "destination address, low 64 bits"))
    ipver: np.ndarray = field(metadata=_column(np.uint8, "4, 6, or 0 for a frame that is not (decodable) IP"))
    proto: np.ndarray = field(metadata=_column(np.uint8, "final IP protocol (after IPv6 extension headers)"))
    sport: np.ndarray = field(metadata=_column(np.uint16, "valid where has_ports"))
    dport: np.ndarray = field(metadata=_column(np.uint16, "valid where has_ports"))
    has_ports: np.ndarray = field(metadata=_column(np.bool_, "TCP/UDP ports present (first fragment or unfragmented)"))
    tcp_flags: np.ndarray = field(metadata=_column(np.uint8, "valid where flags_ok"))
    flags_ok: np.ndarray = field(metadata=_column(np.bool_, "TCP flags present"))
    icmp_type: np.ndarray = field(metadata=_column(np.uint8, "valid where has_icmp (ICMP and ICMPv6)"))
    icmp_code: np.ndarray = field(metadata=_column(np.uint8, "valid where has_icmp"))
    has_icmp: np.ndarray = field(metadata=_column(np.bool_, "ICMP type and code present"))
    length: np.ndarray = field(metadata=_column(np.uint32, "wire length: link header + the outermost IP length"))
    payload: np.ndarray = field(metadata=_column(np.int32, "L4 payload bytes (TCP/UDP), 0 otherwise"))
    frag: np.ndarray = field(metadata=_column(np.uint8, "FRAG_NONE / FRAG_FIRST / FRAG_LATER"))
    quote: np.ndarray = field(metadata=_column(np.uint8, "ICMP error: QUOTE_CUT / QUOTE_BAD / QUOTE_IP, QUOTE_NONE otherwise"))
    inner_src_hi: np.ndarray = field(metadata=_column(np.uint64, "ICMP error: source of the quoted packet (QUOTE_IP)"))
    inner_src_lo: np.ndarray = field(metadata=_column(np.uint64, "ICMP error: source of the quoted packet (QUOTE_IP)"))
    inner_proto: np.ndarray = field(metadata=_column(np.uint8, "ICMP error: protocol of the packet it quotes (QUOTE_IP)"))
    inner_dst_hi: np.ndarray = field(metadata=_column(np.uint64, "ICMP error: destination of the quoted packet (QUOTE_IP)"))
    inner_dst_lo: np.ndarray = field(metadata=_column(np.uint64, "ICMP error: destination of the quoted packet (QUOTE_IP)"))
    inner_sport: np.ndarray = field(metadata=_column(np.uint16, "ICMP error: ports of the quoted packet (has_inner)"))
    inner_dport: np.ndarray = field(metadata=_column(np.uint16, "ICMP error: ports of the quoted packet (has_inner)"))
    has_inner: np.ndarray = field(metadata=_column(np.bool_, "ICMP error quoting an IP header and the 4 bytes after it"))
    tunnel: np.ndarray = field(metadata=_column(np.uint32, "outer layers, 4 bits each (tunnel_names)"))
    ttl: np.ndarray = field(metadata=_column(np.uint8, "IPv4 TTL or IPv6 hop limit of the (innermost) IP header, 0 if not IP"))
    arp_op: np.ndarray = field(metadata=_column(np.uint8, "ARP for IPv4: ARP_REQUEST or ARP_REPLY, 0 otherwise"))
    arp_spa: np.ndarray = field(metadata=_column(np.uint32, "ARP: sender protocol (IPv4) address, valid where arp_op"))
    arp_tpa: np.ndarray = field(metadata=_column(np.uint32, "ARP: target protocol (IPv4) address, valid where arp_op"))
    errors: dict[str, int] = field(default_factory=dict)
    non_ip: int = 0
    seq: int = -1  # set by the engine: identifies this slice for per-batch caches
    derived: dict = field(default_factory=dict, repr=False, compare=False)  # values several detectors derive

    def __len__(self) -> int:
        return len(self.ts)

    def select(self, mask: np.ndarray | slice) -> PacketBatch:
        """A new batch holding only the selected rows (errors not carried). A slice gives
        views; a mask or index array gives a batch that gathers each column on first use,
        since a detector reads only a few of them."""
        if isinstance(mask, slice):
            return PacketBatch(**{name: getattr(self, name)[mask] for name in BATCH_FIELDS})
        if _every_row(mask, len(self)):  # bulk traffic: a detector's rows are often all of them
            return _SelectedRows(self, slice(None))  # views, not copies
        return _SelectedRows(self, mask)

    @classmethod
    def concat(cls, batches: list[PacketBatch],
               into: Callable[[str, int], np.ndarray] | None = None) -> PacketBatch:
        """The batches one after the other; with `into` (column name, rows -> array), each column
        is written into the array it gives (a worker's slot) instead of a new one."""
        n = sum(len(b) for b in batches)
        cols: dict[str, Any] = {name: np.concatenate([getattr(b, name) for b in batches],
                                                     out=None if into is None else into(name, n))
                                for name in BATCH_FIELDS}
        out = cls(**cols)
        for b in batches:
            for k, v in b.errors.items():
                out.errors[k] = out.errors.get(k, 0) + v
            out.non_ip += b.non_ip
        return out


# The one list of columns, with their dtypes: PacketBatch's declaration order.
COLUMN_DTYPES = {f.name: f.metadata["dtype"] for f in dataclasses.fields(PacketBatch) if "dtype" in f.metadata}
BATCH_FIELDS = tuple(COLUMN_DTYPES)
_FIELDS = frozenset(BATCH_FIELDS)


def _every_row(mask: np.ndarray, n: int) -> bool:
    """Whether a mask or index array selects rows 0..n-1 in order (n ascending indices from 0 to n - 1 are those)."""
    mask = np.asarray(mask)
    if len(mask) != n or not n:
        return False
    if mask.dtype == np.bool_:
        return bool(mask.all())
    return bool(mask[0] == 0 and mask[-1] == n - 1 and (n == 1 or (mask[1:] > mask[:-1]).all()))


class _SelectedRows(PacketBatch):
    """PacketBatch.select's result: columns are gathered from the parent when first read."""

    def __init__(self, parent: PacketBatch, rows: np.ndarray | slice):
        # no super().__init__(): that would gather every column now
        self._parent, self._rows = parent, rows
        self.errors, self.derived = {}, {}

    def __getattr__(self, name: str) -> np.ndarray:
        if name not in _FIELDS:
            raise AttributeError(name)
        col = getattr(self._parent, name)[self._rows]
        setattr(self, name, col)  # cached: later reads are plain attribute lookups
        return col


class _Reader:
    """Clamped big-endian field reads at many positions at once."""

    def __init__(self, buf: bytes | memoryview, end: np.ndarray):
        self.arr = np.frombuffer(buf, dtype=np.uint8) if len(buf) else np.zeros(1, np.uint8)
        self.last = len(self.arr) - 1
        self.end = end

    def u8(self, pos: np.ndarray) -> np.ndarray:
        return self.arr[np.minimum(pos, self.last)]  # positions are never negative

    def u16(self, pos: np.ndarray) -> np.ndarray:
        return (self.u8(pos).astype(np.uint16) << 8) | self.u8(pos + 1)

    def u16le(self, pos: np.ndarray) -> np.ndarray:
        return (self.u8(pos + 1).astype(np.uint16) << 8) | self.u8(pos)

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


def _count(errors: dict[str, int] | None, reason: str, mask: np.ndarray) -> None:
    if errors is None:
        return
    n = int(np.count_nonzero(mask))
    if n:
        errors[reason] = errors.get(reason, 0) + n


def _by_version(r: _Reader, l3: np.ndarray) -> np.ndarray:
    """IP carried without a type field: the version nibble says which."""
    version = r.u8(l3) >> 4
    return np.where(version == 4, ETH_IPV4, np.where(version == 6, ETH_IPV6, 0)).astype(np.int64)


def _ppp_type(proto: np.ndarray) -> np.ndarray:
    """PPP protocol number -> the EtherType the rest of the decoder dispatches on."""
    return np.select([proto == 0x21, proto == 0x57, proto == 0x281, proto == 0x283],
                     [ETH_IPV4, ETH_IPV6, ETH_MPLS, ETH_MPLS_MULTICAST], 0).astype(np.int64)


def _ppp(r: _Reader, off: np.ndarray, cisco_too: bool) -> tuple[np.ndarray, np.ndarray]:
    """PPP (RFC 1661/1662): optional FF 03 address/control, then a 1- or 2-byte protocol.
    PPP-in-HDLC captures may hold Cisco HDLC frames too (address 0x0F or 0x8F)."""
    ac = (r.u8(off) == 0xFF) & (r.u8(off + 1) == 0x03)
    p = np.where(ac, off + 2, off)
    short = (r.u8(p) & 1) == 1  # protocol field compression: a single odd byte
    proto = np.where(short, r.u8(p).astype(np.int64), r.u16(p).astype(np.int64))
    et, l3 = _ppp_type(proto), np.where(short, p + 1, p + 2)
    if cisco_too:
        cisco = (r.u8(off) == 0x0F) | (r.u8(off) == 0x8F)
        et = np.where(cisco, r.u16(off + 2), et)
        l3 = np.where(cisco, off + 4, l3)
    return et, l3


def _frame_relay(r: _Reader, off: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Q.922 address (2-4 bytes, the EA bit ends it), then RFC 2427 (UI control, optional
    pad, NLPID: IPv4, IPv6 or SNAP) or Cisco's encapsulation (an EtherType)."""
    alen = np.where(r.u8(off + 1) & 1, 2, np.where(r.u8(off + 2) & 1, 3, 4))
    p = off + alen
    ui = r.u8(p) == 0x03
    q = np.where(ui & (r.u8(p + 1) == 0), p + 2, p + 1)
    nlpid = r.u8(q)
    snap_type = r.u16(q + 4).astype(np.int64)
    et = np.select([nlpid == 0xCC, nlpid == 0x8E, nlpid == 0x80], [ETH_IPV4, ETH_IPV6, snap_type], 0)
    l3 = np.where(nlpid == 0x80, q + 6, q + 1)
    return np.where(ui, et, r.u16(p)).astype(np.int64), np.where(ui, l3, p + 2)


def _nflog(r: _Reader, off: np.ndarray, end: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """NFLOG: a 4-byte header, then TLVs (length and type in the capturing host's byte
    order, read here as little-endian) until the payload TLV (type 9)."""
    p = off + 4
    found = np.zeros(len(off), bool)
    stop = np.zeros(len(off), bool)
    for _ in range(MAX_NFLOG_TLVS):
        active = ~found & ~stop & (p + 4 <= end)
        stop |= ~found & ~active
        if not active.any():
            break
        tlen = r.u16le(p).astype(np.int64)
        payload = active & ((r.u16le(p + 2) & 0x3FFF) == 9)
        found |= payload
        step = active & ~payload
        stop |= step & (tlen < 4)
        p = np.where(step & (tlen >= 4), p + ((tlen + 3) & ~3), p)
    l3 = np.where(found, p + 4, p)
    return np.where(found, _by_version(r, l3), 0), l3


def _ieee802_11(r: _Reader, h: np.ndarray, ok: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """An 802.11 data frame carrying LLC/SNAP: the EtherType after AA AA 03 + OUI.
    Management, control, null-data and protected (encrypted) frames are not IP."""
    fc0, fc1 = r.u8(h), r.u8(h + 1)
    data = ok & (((fc0 >> 2) & 3) == 2) & ((fc0 & 0x40) == 0) & ((fc1 & 0x40) == 0)
    qos = (fc0 & 0x80) != 0
    hdr = 24 + 6 * ((fc1 & 3) == 3) + 2 * qos + 4 * (qos & ((fc1 & 0x80) != 0))
    llc = h + hdr
    snap = data & (r.u8(llc) == 0xAA) & (r.u8(llc + 1) == 0xAA) & (r.u8(llc + 2) == 0x03)
    return np.where(snap, r.u16(llc + 6), 0).astype(np.int64), np.where(snap, llc + 8, h)


def _link_layer(r: _Reader, off: np.ndarray, end: np.ndarray, linktype: int) -> tuple[np.ndarray, np.ndarray]:
    """Return (EtherType-like L3 kind, L3 offset) per packet for the capture's link type."""
    if linktype == LINKTYPE_ETHERNET:
        return r.u16(off + 12).astype(np.int64), off + 14
    if linktype == LINKTYPE_LINUX_SLL:
        return r.u16(off + 14).astype(np.int64), off + 16
    if linktype == LINKTYPE_LINUX_SLL2:
        return r.u16(off).astype(np.int64), off + 20
    if linktype in (LINKTYPE_PPP, LINKTYPE_PPP_HDLC):
        return _ppp(r, off, linktype == LINKTYPE_PPP_HDLC)
    if linktype == LINKTYPE_C_HDLC:
        return r.u16(off + 2).astype(np.int64), off + 4
    if linktype == LINKTYPE_FRELAY:
        return _frame_relay(r, off)
    if linktype == LINKTYPE_NFLOG:
        return _nflog(r, off, end)
    if linktype == LINKTYPE_IEEE802_11_RADIOTAP:
        return _ieee802_11(r, off + r.u16le(off + 2), r.u8(off) == 0)
    if linktype == LINKTYPE_IEEE802_11:
        return _ieee802_11(r, off, np.ones(len(off), bool))
    if linktype == LINKTYPE_IPOIB:
        return r.u16(off + 40).astype(np.int64), off + 44
    l3 = off + (4 if linktype in (LINKTYPE_NULL, LINKTYPE_LOOP) else 0)
    return _by_version(r, l3), l3


def _push(code: np.ndarray, depth: np.ndarray, kind: int | np.ndarray, where: np.ndarray) -> None:
    """Record one more outer layer (in place) on the rows `where` (a mask or row numbers);
    `kind` is one code or one per row."""
    layer = kind[where] if isinstance(kind, np.ndarray) else kind
    code[where] |= np.asarray(layer, np.uint32) << (4 * depth[where]).astype(np.uint32)
    depth[where] += 1


def _resolve(r: _Reader, et: np.ndarray, l3: np.ndarray, bound: np.ndarray, depth: np.ndarray,
             code: np.ndarray, max_depth: int) -> tuple[np.ndarray, np.ndarray]:
    """Step over what may sit between a link header and IP: VLAN tags, an MPLS label stack,
    a PPPoE session header. One step per row per round, in that order of preference, as
    native/decode.c's loop does; `depth` and `code` are updated in place."""
    et, l3 = et.copy(), l3.copy()
    vlans = np.zeros(len(et), np.int64)
    while True:
        vlan = VLAN_TPIDS[np.minimum(et, 0xFFFF)] & (vlans < MAX_VLAN_TAGS)
        room = depth < max_depth
        mpls = ~vlan & room & ((et == ETH_MPLS) | (et == ETH_MPLS_MULTICAST))
        pppoe = ~vlan & room & (et == ETH_PPPOE_SESSION)
        if not (vlan.any() or mpls.any() or pppoe.any()):
            return et, l3
        if vlan.any():
            l3 = np.where(vlan, l3 + 4, l3)
            et = np.where(vlan, r.u16(l3 - 2), et)
            vlans += vlan
        if mpls.any():
            i = np.flatnonzero(mpls)
            pos, b = l3[i], bound[i]
            done = np.zeros(len(i), bool)
            ok = np.zeros(len(i), bool)
            for _ in range(MAX_MPLS_LABELS):
                fits = ~done & (pos + 4 <= b)
                done |= ~fits
                bos = fits & ((r.u8(pos + 2) & 1) == 1)
                pos = np.where(fits, pos + 4, pos)
                ok |= bos
                done |= bos
            nib = r.u8(pos) >> 4
            ok &= (nib == 4) | (nib == 6) | (nib == 0)
            pw_type = r.u16(pos + 16).astype(np.int64)
            et[i] = np.where(ok, np.select([nib == 4, nib == 6], [ETH_IPV4, ETH_IPV6], pw_type), 0)
            l3[i] = np.where(ok, np.where(nib == 0, pos + 18, pos), l3[i])  # 0: pseudowire control word + Ethernet
            _push(code, depth, T_MPLS, i[ok])
        if pppoe.any():
            i = np.flatnonzero(pppoe)
            p = l3[i]
            inner = _ppp_type(r.u16(p + 6).astype(np.int64))
            ok = (p + 8 <= bound[i]) & (r.u8(p) == 0x11) & (r.u8(p + 1) == 0) & (inner != 0)
            et[i] = np.where(ok, inner, 0)
            l3[i] = np.where(ok, p + 8, p)
            _push(code, depth, T_PPPOE, i[ok])


def _ip_layer(r: _Reader, et: np.ndarray, l3: np.ndarray, bound: np.ndarray,
              errors: dict[str, int] | None) -> dict[str, np.ndarray]:
    """The IPv4/IPv6 header at l3 (datagram bytes end at `bound`) for every row: addresses,
    protocol, fragment state, L4 offset. `errors` None: a probe of an inner packet, whose
    faults the caller counts as one reason."""
    k = len(l3)
    z64 = np.zeros(k, np.uint64)
    out = {"valid": np.zeros(k, bool), "ver": np.zeros(k, np.uint8), "proto": np.zeros(k, np.uint8), "ttl": np.zeros(k, np.uint8),
           "frag": np.zeros(k, np.uint8), "src_hi": z64.copy(), "src_lo": z64.copy(), "dst_hi": z64.copy(),
           "dst_lo": z64.copy(), "l4": np.zeros(k, np.int64), "claimed_end": bound.copy(), "ip_end": bound.copy()}

    # ---- IPv4 -------------------------------------------------------------------------
    v4 = (et == ETH_IPV4) & (l3 <= bound)
    v4_short = v4 & ~r.has(l3, 20, bound)
    _count(errors, "truncated_ip_header", v4_short)
    v4 &= ~v4_short
    b0 = r.u8(l3)
    bad_ver = v4 & ((b0 >> 4) != 4)
    _count(errors, "bad_ip_version", bad_ver)
    v4 &= ~bad_ver
    ihl = (b0 & 0x0F).astype(np.int64) * 4
    tot = r.u16(l3 + 2).astype(np.int64)
    tot = np.where(tot == 0, bound - l3, tot)  # segmentation offload / BIG TCP: the frame says how long
    bad_hl = v4 & ((ihl < 20) | (tot < ihl))
    _count(errors, "bad_ip_header_length", bad_hl)
    v4 &= ~bad_hl
    opt_short = v4 & ~r.has(l3, ihl, bound)
    _count(errors, "truncated_ip_header", opt_short)
    v4 &= ~opt_short
    if v4.any():
        i = np.flatnonzero(v4)
        p3 = l3[i]
        out["ver"][i] = 4
        out["proto"][i] = r.u8(p3 + 9)
        out["ttl"][i] = r.u8(p3 + 8)
        fragword = r.u16(p3 + 6)
        fo, mf = fragword & 0x1FFF, (fragword & 0x2000) != 0
        out["frag"][i] = np.where(fo > 0, FRAG_LATER, np.where(mf, FRAG_FIRST, FRAG_NONE))
        pair = r.u32_pairs(p3 + 12)
        out["src_lo"][i] = IPV4_MAPPED | pair[:, 0]
        out["dst_lo"][i] = IPV4_MAPPED | pair[:, 1]
        out["l4"][i] = p3 + ihl[i]
        out["claimed_end"][i] = p3 + tot[i]
        out["ip_end"][i] = np.minimum(bound[i], p3 + tot[i])

    # ---- IPv6 -------------------------------------------------------------------------
    v6 = (et == ETH_IPV6) & (l3 <= bound)
    v6_short = v6 & ~r.has(l3, 40, bound)
    _count(errors, "truncated_ip_header", v6_short)
    v6 &= ~v6_short
    bad6 = v6 & ((r.u8(l3) >> 4) != 6)
    _count(errors, "bad_ip_version", bad6)
    v6 &= ~bad6
    if v6.any():
        idx = np.flatnonzero(v6)
        p3, b = l3[idx], bound[idx]
        out["ver"][idx] = 6
        out["ttl"][idx] = r.u8(p3 + 7)  # hop limit
        plen = r.u16(p3 + 4).astype(np.int64)
        plen = np.where((plen == 0) & (r.u8(p3 + 6) != 59), b - p3 - 40, plen)  # jumbogram / BIG TCP, as for IPv4
        words = r.bytes_be(p3 + 8, 32)
        for c, name in enumerate(("src_hi", "src_lo", "dst_hi", "dst_lo")):
            out[name][idx] = words[:, c]
        out["claimed_end"][idx] = p3 + 40 + plen
        out["ip_end"][idx] = np.minimum(b, p3 + 40 + plen)
        nh = r.u8(p3 + 6)
        pos = p3 + 40
        fr = np.zeros(len(idx), np.uint8)
        for _ in range(MAX_IPV6_EXT):
            ext = IPV6_EXT[nh]
            if not ext.any():
                break
            short = ext & ~r.has(pos, 8, b)
            if short.any():
                _count(errors, "truncated_ipv6_extension", short)
                nh = np.where(short, 255, nh).astype(np.uint8)  # 255 = reserved: stop here
                ext &= ~short
            hlen_byte = r.u8(pos + 1).astype(np.int64)
            hlen = np.where(nh == 44, 8, np.where(nh == 51, (hlen_byte + 2) * 4, (hlen_byte + 1) * 8))
            fw = r.u16(pos + 2)
            this = np.where((fw >> 3) > 0, FRAG_LATER, np.where(fw & 1, FRAG_FIRST, FRAG_NONE))
            fr = np.where(ext & (nh == 44), this, fr).astype(np.uint8)
            nh = np.where(ext, r.u8(pos), nh)
            pos = np.where(ext, pos + hlen, pos)
        out["proto"][idx] = nh
        out["frag"][idx] = fr
        out["l4"][idx] = pos
    out["valid"] = v4 | v6
    return out


def _ethernet_inside(r: _Reader, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(EtherType, L3 offset) of an Ethernet frame starting at p."""
    return r.u16(p + 12).astype(np.int64), p + 14


def _may_tunnel(r: _Reader, ip: dict[str, np.ndarray], i: np.ndarray) -> np.ndarray:
    """A cheap first look (native/decode.c's may_tunnel): could row i's payload be a tunnel?"""
    proto, l4 = ip["proto"][i], ip["l4"][i]
    sport, dport = r.u16(l4), r.u16(l4 + 2)
    udp = (proto == PROTO_UDP) & (TUNNEL_DPORTS[dport] | (sport == PORT_GTPU) | (sport == PORT_TEREDO))
    return TUNNEL_PROTOS[proto] | udp


def _tunnel_header(r: _Reader, ip: dict[str, np.ndarray], i: np.ndarray) -> tuple[np.ndarray, ...]:
    """For rows i (valid IP, not a later fragment): (kind, status, inner EtherType, inner L3
    offset) of the tunnel the packet's payload is, if any. status _NONE: not a tunnel;
    _SHORT: a tunnel whose header or inner link header is cut short; _OK: look inside."""
    k = len(i)
    proto, l4, ip_end = ip["proto"][i], ip["l4"][i], ip["ip_end"][i]
    kind = np.zeros(k, np.int64)
    et = np.zeros(k, np.int64)
    l3 = l4.copy()
    recognised = np.zeros(k, bool)
    short = np.zeros(k, bool)  # for kinds whose length rule differs from "inner L3 within the datagram"

    # IP in IP
    for number, kind_code, ethertype in ((PROTO_IPIP, T_IPIP, ETH_IPV4), (PROTO_IPV6, T_IPV6, ETH_IPV6)):
        m = proto == number
        kind[m], et[m], recognised[m] = kind_code, ethertype, True

    # GRE (RFC 2784/2890): checksum, key and sequence words are optional; routing and
    # version 1 (PPTP) are not decoded.
    gre = (proto == PROTO_GRE) & (l4 + 4 <= ip_end)
    if gre.any():
        flags, ptype = r.u16(l4), r.u16(l4 + 2).astype(np.int64)
        gre &= (flags & 0x4FFF) == 0
        seq = (flags & 0x1000) != 0
        p = l4 + 4 + 4 * ((flags & 0x8000) != 0) + 4 * ((flags & 0x2000) != 0) + 4 * seq
        ip_in = (ptype == ETH_IPV4) | (ptype == ETH_IPV6) | (ptype == ETH_MPLS) | (ptype == ETH_MPLS_MULTICAST)
        span3 = ptype == ETH_ERSPAN_3
        span = (ptype == ETH_ERSPAN_1_2) | span3
        frame = np.select([ptype == ETH_TEB, span3, ptype == ETH_ERSPAN_1_2],
                          [p, p + 12 + 8 * (r.u8(p + 11) & 1), p + 8 * seq])  # ERSPAN I has no header, II 8 bytes
        ieth, il3 = _ethernet_inside(r, frame)
        eth = (ptype == ETH_TEB) | span
        not_ethernet = span3 & (((r.u16(p + 10) >> 10) & 0x1F) != 0)  # ERSPAN III frame type: 0 is Ethernet
        gre &= ip_in | (eth & ~not_ethernet)
        kind = np.where(gre, np.where(span, T_ERSPAN, T_GRE), kind)
        et = np.where(gre, np.where(eth, ieth, ptype), et)
        l3 = np.where(gre, np.where(eth, il3, p), l3)
        recognised |= gre

    udp = (proto == PROTO_UDP) & (l4 + 8 <= ip_end)
    if udp.any():
        sport, dport, p = r.u16(l4), r.u16(l4 + 2), l4 + 8
        vxlan = udp & (dport == PORT_VXLAN)
        geneve = udp & ~vxlan & (dport == PORT_GENEVE)
        gtp = udp & ~vxlan & ~geneve & ((sport == PORT_GTPU) | (dport == PORT_GTPU))
        teredo = udp & ~vxlan & ~geneve & ~gtp & ((sport == PORT_TEREDO) | (dport == PORT_TEREDO))
        b0 = r.u8(p)
        # VXLAN (RFC 7348): 8 bytes, the I flag set, then Ethernet
        vx_hdr_short = vxlan & (p + 8 > ip_end)
        vxlan &= vx_hdr_short | ((b0 & 0x08) != 0)
        ieth, il3 = _ethernet_inside(r, p + 8)
        kind, et, l3 = np.where(vxlan, T_VXLAN, kind), np.where(vxlan, ieth, et), np.where(vxlan, il3, l3)
        short |= vx_hdr_short
        # Geneve (RFC 8926): version 0, options, a protocol type
        gn_hdr_short = geneve & (p + 8 > ip_end)
        gtype = r.u16(p + 2).astype(np.int64)
        gp = p + 8 + (b0 & 0x3F).astype(np.int64) * 4
        geneve &= gn_hdr_short | (((b0 >> 6) == 0) & ((gtype == ETH_TEB) | (gtype == ETH_IPV4) | (gtype == ETH_IPV6)))
        ieth, il3 = _ethernet_inside(r, gp)
        teb = gtype == ETH_TEB
        kind = np.where(geneve, T_GENEVE, kind)
        et = np.where(geneve, np.where(teb, ieth, gtype), et)
        l3 = np.where(geneve, np.where(teb, il3, gp), l3)
        short |= gn_hdr_short
        # GTP-U (3GPP TS 29.281): version 1, G-PDU, optional sequence/N-PDU/extension headers
        gt_hdr_short = gtp & (p + 8 > ip_end)
        gtp &= gt_hdr_short | (((b0 >> 5) == 1) & ((b0 & 0x10) != 0) & (r.u8(p + 1) == 0xFF))
        hl = np.where((b0 & 0x07) != 0, 12, 8).astype(np.int64)
        nxt = np.where((b0 & 0x04) != 0, r.u8(p + 11), 0).astype(np.int64)
        bad_ext = np.zeros(k, bool)
        for _ in range(MAX_GTP_EXTENSIONS):
            more = nxt != 0
            if not more.any():
                break
            elen = r.u8(p + hl).astype(np.int64) * 4
            bad_ext |= more & (elen == 0)
            more &= elen != 0
            nxt = np.where(more, r.u8(p + hl + elen - 1), np.where(elen == 0, 0, nxt))
            hl = np.where(more, hl + elen, hl)
        bad_ext |= nxt != 0
        gq = p + hl
        gnib = r.u8(gq) >> 4
        gt_short = gt_hdr_short | bad_ext | (gq >= ip_end)
        gtp &= gt_short | (gnib == 4) | (gnib == 6)
        kind = np.where(gtp, T_GTPU, kind)
        et = np.where(gtp, np.where(gnib == 4, ETH_IPV4, ETH_IPV6), et)
        l3 = np.where(gtp, gq, l3)
        short |= gtp & gt_short
        # Teredo (RFC 4380): optional authentication and origin indication, then IPv6
        # whose payload length accounts for the rest of the datagram
        auth = r.u16(p) == 0x0001
        tp = np.where(auth, p + 13 + r.u8(p + 2).astype(np.int64) + r.u8(p + 3), p)
        tp = np.where(r.u16(tp) == 0x0000, tp + 8, tp)
        teredo &= (tp + 40 <= ip_end) & ((r.u8(tp) >> 4) == 6)
        teredo &= ip["claimed_end"][i] - tp == 40 + r.u16(tp + 4).astype(np.int64)
        kind, et, l3 = np.where(teredo, T_TEREDO, kind), np.where(teredo, ETH_IPV6, et), np.where(teredo, tp, l3)
        recognised |= vxlan | geneve | gtp | teredo

    status = np.where(recognised, np.where(short | (l3 > ip_end), _SHORT, _OK), _NONE)
    return kind, status, et, l3


def _depth_bound(max_tunnel_depth: int) -> int:
    """The tunnel depth a decoder uses: the setting, held within 0..MAX_TUNNEL_DEPTH."""
    return min(max(max_tunnel_depth, 0), MAX_TUNNEL_DEPTH)


# Headers-only live capture (`monitor`'s default --snaplen): the bytes the decoder reads of a
# packet, at most, budgeted per layer. Link: Ethernet with two VLAN tags (22), cooked v2 (20),
# IPoIB (44), usual radiotap and NFLOG prefixes. Each tunnel layer: an outer IPv4 header with
# options (60) or IPv6 with 24 bytes of extension headers, UDP or GRE, the tunnel header with
# up to 24 bytes of options (VXLAN, Geneve, GTP-U, ERSPAN, an MPLS stack...), the inner Ethernet
# header and a VLAN tag. Innermost: IPv6 with 92 bytes of extension headers and a TCP header
# with options (60), or an ICMP error quoting an IPv4 header with options and its ports.
SNAP_LINK, SNAP_PER_TUNNEL, SNAP_INNER = 128, 128, 192


def headers_snaplen(max_tunnel_depth: int = DEFAULT_TUNNEL_DEPTH) -> int:
    """Bytes per packet that cover every header the decoder reads at this tunnel depth (832 at 4)."""
    return SNAP_LINK + _depth_bound(max_tunnel_depth) * SNAP_PER_TUNNEL + SNAP_INNER


def decode(buf: bytes | memoryview, meta: np.ndarray, linktype: int,
           max_tunnel_depth: int = DEFAULT_TUNNEL_DEPTH) -> PacketBatch:
    """Decode a batch: `meta` rows are (sec, usec, offset, caplen) into `buf`.

    Runs compiled (native/decode.c) when it is built and the link type is supported;
    `decode_numpy` is the reference it must match, field for field."""
    meta = np.ascontiguousarray(meta, dtype=np.uint32).reshape(-1, 4)
    if _compiled is None or linktype not in SUPPORTED_LINKTYPES:
        return decode_numpy(buf, meta, linktype, max_tunnel_depth)
    n = len(meta)
    cols: dict[str, Any] = {name: np.empty(n, dtype) for name, dtype in COLUMN_DTYPES.items()}
    counts = np.zeros(len(_compiled.ERRORS), np.int64)
    non_ip = _compiled.decode_batch(buf, meta, linktype, tuple(cols[name] for name in _compiled.COLUMNS), counts,
                                    _depth_bound(max_tunnel_depth))
    errors = {reason: int(c) for reason, c in zip(_compiled.ERRORS, counts) if c}
    return PacketBatch(**cols, errors=errors, non_ip=non_ip)


def decode_numpy(buf: bytes | memoryview, meta: np.ndarray, linktype: int,
                 max_tunnel_depth: int = DEFAULT_TUNNEL_DEPTH) -> PacketBatch:
    """The numpy decoder: the reference and the fallback of `decode`."""
    max_depth = _depth_bound(max_tunnel_depth)
    meta = np.asarray(meta, dtype=np.uint32).reshape(-1, 4)
    n = len(meta)
    errors: dict[str, int] = {}
    off = meta[:, 2].astype(np.int64)
    cap = meta[:, 3].astype(np.int64)
    end = off + cap
    r = _Reader(buf, end)
    ts = meta[:, 0].astype(np.float64) + meta[:, 1].astype(np.float64) * 1e-6
    depth = np.zeros(n, np.int64)
    tunnel = np.zeros(n, np.uint32)

    if linktype not in SUPPORTED_LINKTYPES:
        _count(errors, f"unknown_linktype_{linktype}", np.ones(n, bool))
        ethertype, l3 = np.zeros(n, np.int64), off
    else:
        ethertype, l3 = _link_layer(r, off, end, linktype)
        ethertype, l3 = _resolve(r, ethertype, l3, end, depth, tunnel, max_depth)
        _count(errors, "truncated_link_header", l3 > end)

    ip = _ip_layer(r, ethertype, l3, end, errors)
    length = np.where(ip["valid"], ip["claimed_end"] - off, cap).astype(np.uint32)

    # ---- tunnels: each round looks one layer further into the rows still carrying one --
    rows = np.flatnonzero(ip["valid"] & (ip["frag"] != FRAG_LATER) & (depth < max_depth))
    while rows.size:
        rows = rows[_may_tunnel(r, ip, rows)]
        if not rows.size:
            break
        kind, status, et_in, l3_in = _tunnel_header(r, ip, rows)
        _count(errors, "malformed_inner_packet", status == _SHORT)
        keep = status == _OK
        rows, kind, et_in, l3_in = rows[keep], kind[keep], et_in[keep], l3_in[keep]
        if not rows.size:
            break
        bound = ip["ip_end"][rows]
        sub_depth, sub_code = depth[rows].copy(), tunnel[rows].copy()
        _push(sub_code, sub_depth, kind, np.ones(len(rows), bool))
        et_in, l3_in = _resolve(r, et_in, l3_in, bound, sub_depth, sub_code, max_depth)
        inner = _ip_layer(r, et_in, l3_in, bound, None)
        ok = inner["valid"]
        _count(errors, "malformed_inner_packet", ~ok & ((et_in == ETH_IPV4) | (et_in == ETH_IPV6)))
        rows, sub = rows[ok], np.flatnonzero(ok)
        for name, col in ip.items():
            col[rows] = inner[name][sub]
        depth[rows], tunnel[rows] = sub_depth[sub], sub_code[sub]
        rows = rows[(ip["frag"][rows] != FRAG_LATER) & (depth[rows] < max_depth)]

    ipver, proto, frag, l4 = ip["ver"], ip["proto"], ip["frag"], ip["l4"]
    src_hi, src_lo, dst_hi, dst_lo = ip["src_hi"], ip["src_lo"], ip["dst_hi"], ip["dst_lo"]
    ip_end, claimed_end = ip["ip_end"], ip["claimed_end"]

    # ---- L4 ---------------------------------------------------------------------------
    valid = ip["valid"]
    non_ip_mask = ~valid & (l3 <= end) & (ethertype != ETH_IPV4) & (ethertype != ETH_IPV6)
    non_ip = int(np.count_nonzero(non_ip_mask)) if linktype in SUPPORTED_LINKTYPES else 0
    # ARP for IPv4 (RFC 826): the addresses follow the hardware ones, hlen bytes each
    hlen = r.u8(l3 + 4).astype(np.int64)
    arp = ~valid & (ethertype == ETH_ARP) & r.has(l3, 8 + 2 * hlen + 8) & (r.u16(l3 + 2) == ETH_IPV4) & (r.u8(l3 + 5) == 4)
    op = np.where(arp, r.u16(l3 + 6), 0)
    arp_op = np.where((op == ARP_REQUEST) | (op == ARP_REPLY), op, 0).astype(np.uint8)
    arp_spa = np.where(arp, r.u32_pairs(l3 + 8 + hlen)[:, 0], 0).astype(np.uint32)
    arp_tpa = np.where(arp, r.u32_pairs(l3 + 8 + 2 * hlen + 4)[:, 0], 0).astype(np.uint32)
    first = valid & (frag != FRAG_LATER)
    is_tcp = first & (proto == PROTO_TCP)
    is_udp = first & (proto == PROTO_UDP)
    is_sctp = first & (proto == PROTO_SCTP)  # SCTP's common header starts with the two ports, as UDP's does
    is_icmp = first & ((proto == PROTO_ICMP) | (proto == PROTO_ICMPV6))
    ported = is_tcp | is_udp | is_sctp
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

    # ICMP errors quote the offending packet: keep its addresses, protocol and ports (who
    # really sent it: "answered by ICMP unreachable", closed-port accounting, forged errors).
    # Bounded by the packet's IP length and the capture: a quote the packet has no room for
    # is QUOTE_BAD, one the capture cut is QUOTE_CUT (unknown), never read past either.
    inner_proto = np.zeros(n, np.uint8)
    inner_src_hi, inner_src_lo = np.zeros(n, np.uint64), np.zeros(n, np.uint64)
    inner_dst_hi, inner_dst_lo = np.zeros(n, np.uint64), np.zeros(n, np.uint64)
    inner_sport = np.zeros(n, np.uint16)
    inner_dport = np.zeros(n, np.uint16)
    has_inner = np.zeros(n, bool)
    quote = np.zeros(n, np.uint8)
    q = l4 + 8
    v4 = proto == PROTO_ICMP
    err = has_icmp & np.where(v4, ICMP_ERRORS_V4[icmp_type], ICMP_ERRORS_V6[icmp_type])
    if err.any():
        i = np.flatnonzero(err)
        qi, e4 = q[i], v4[i]
        need = np.where(e4, 20, 40)
        head = r.u8(qi)
        ok = ((head >> 4) == np.where(e4, 4, 6)) & (~e4 | ((head & 0x0F) >= 5))
        fits, captured = claimed_end[i] - qi >= need, ip_end[i] - qi >= need
        quote[i] = np.where(fits & captured, np.where(ok, QUOTE_IP, QUOTE_BAD), np.where(fits, QUOTE_CUT, QUOTE_BAD))
        j = i[quote[i] == QUOTE_IP]
        qj, j4 = q[j], v4[j]
        src6, dst6 = r.bytes_be(qj + 8, 16), r.bytes_be(qj + 24, 16)
        a4 = r.u32_pairs(qj + 12)
        inner_src_hi[j] = np.where(j4, 0, src6[:, 0])
        inner_src_lo[j] = np.where(j4, IPV4_MAPPED | a4[:, 0], src6[:, 1])
        inner_dst_hi[j] = np.where(j4, 0, dst6[:, 0])
        inner_dst_lo[j] = np.where(j4, IPV4_MAPPED | a4[:, 1], dst6[:, 1])
        inner_proto[j] = np.where(j4, r.u8(qj + 9), r.u8(qj + 6))
        ports = qj + np.where(j4, (r.u8(qj) & 0x0F).astype(np.int64) * 4, 40)
        pok = ports + 4 <= ip_end[j]
        inner_sport[j] = np.where(pok, r.u16(ports), 0)
        inner_dport[j] = np.where(pok, r.u16(ports + 2), 0)
        has_inner[j] = pok

    return PacketBatch(
        ts=ts, src_hi=src_hi, src_lo=src_lo, dst_hi=dst_hi, dst_lo=dst_lo, ipver=ipver,
        proto=proto, sport=sport, dport=dport, has_ports=has_ports, tcp_flags=tcp_flags,
        flags_ok=flags_ok, icmp_type=icmp_type, icmp_code=icmp_code, has_icmp=has_icmp,
        length=length, payload=payload, frag=frag, quote=quote, inner_src_hi=inner_src_hi,
        inner_src_lo=inner_src_lo, inner_proto=inner_proto,
        inner_dst_hi=inner_dst_hi, inner_dst_lo=inner_dst_lo, inner_sport=inner_sport,
        inner_dport=inner_dport, has_inner=has_inner, tunnel=tunnel, ttl=ip["ttl"],
        arp_op=arp_op, arp_spa=arp_spa, arp_tpa=arp_tpa, errors=errors, non_ip=non_ip,
    )
