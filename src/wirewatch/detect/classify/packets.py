"""Row masks and keys over a PacketBatch that several detectors share.

Naming what a packet *is* (a probe, a reply, a request) in one place keeps the
detectors short and consistent with each other.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import numpy as np

from ...decode import (
    ARP_REQUEST,
    BATCH_FIELDS,
    FRAG_FIRST,
    PROTO_ICMP,
    PROTO_ICMPV6,
    PROTO_SCTP,
    PROTO_TCP,
    PROTO_UDP,
    QUOTE_BAD,
    QUOTE_IP,
    TCP_ACK,
    TCP_FIN,
    TCP_RST,
    TCP_SYN,
    PacketBatch,
)
from ...lut import member_table
from ..count.kernels import hash_cols, isin

PROTO_NAMES = {1: "ICMP", 2: "IGMP", 4: "IPIP", 6: "TCP", 17: "UDP", 41: "IPv6", 47: "GRE", 50: "ESP",
               51: "AH", 58: "IPv6-ICMP", 89: "OSPF", 103: "PIM", 112: "VRRP", 132: "SCTP"}
ICMP_REQUESTS_V4 = member_table((8, 13, 15, 17))  # echo, timestamp, information, address mask
# Below this IP TTL / hop limit a packet is sent to expire on its way: path discovery
# (traceroute, tracepath, mtr), not a probe of the host it is addressed to. Operating systems
# start at 64, 128 or 255, and no path is 54 hops long; Zeek's detect-traceroute draws the same line.
PATH_PROBE_TTL = 10
T = TypeVar("T")


def proto_name(proto: int) -> str:
    return PROTO_NAMES.get(int(proto), str(int(proto)))


def once(b: PacketBatch, name: str, compute: Callable[[PacketBatch], T]) -> T:
    """`compute(b)` once per batch: several detectors ask the same question of one batch
    (b.derived holds the answer; arrays come back read-only, since they are shared)."""
    if name not in b.derived:
        value = compute(b)
        if isinstance(value, np.ndarray):
            value.flags.writeable = False
        b.derived[name] = value
    return b.derived[name]


def tcp_rows(b: PacketBatch) -> np.ndarray:
    """TCP with ports (first fragment or unfragmented). Once per batch."""
    return once(b, "tcp_rows", lambda b: (b.proto == PROTO_TCP) & b.has_ports & (b.ipver != 0))


def syn_only(b: PacketBatch) -> np.ndarray:
    """Connection attempts: SYN without ACK or RST. Once per batch."""
    return once(b, "syn_only",
                lambda b: tcp_rows(b) & b.flags_ok & ((b.tcp_flags & (TCP_SYN | TCP_ACK | TCP_RST)) == TCP_SYN))


def udp_initiator(b: PacketBatch) -> np.ndarray:
    """UDP datagrams that start an exchange rather than answer one.

    A reply comes *from* a service port (below 1024) to a client's high port; everything
    else counts as the initiator's side. Stateless on purpose: it costs nothing per flow.
    Once per batch.
    """
    return once(b, "udp_initiator", lambda b: initiator(b, PROTO_UDP))


def sctp_initiator(b: PacketBatch) -> np.ndarray:
    """SCTP packets from the initiator's side (the same stateless rule as `udp_initiator`):
    an SCTP port scan (nmap -sY's INITs, -sZ's COOKIE ECHOs) probes one port per packet,
    and the ABORTs or INIT ACKs it draws come back from the service port. Once per batch."""
    return once(b, "sctp_initiator", lambda b: initiator(b, PROTO_SCTP))


def initiator(b: PacketBatch, proto: int) -> np.ndarray:
    """Packets of `proto` (a protocol with ports) sent towards a service."""
    return (b.proto == proto) & b.has_ports & (b.ipver != 0) & towards_service(b)


def towards_service(b: PacketBatch) -> np.ndarray:
    """Not from a service port (below 1024) to a client's high port: the initiator's side."""
    return (b.sport >= 1024) | (b.dport < 1024)


def bare_ack(b: PacketBatch) -> np.ndarray:
    """ACK without SYN/FIN/RST and without payload: what an ACK ping (nmap -PA) sends,
    and also what every established connection sends; callers must tell them apart."""
    f = b.tcp_flags
    return tcp_rows(b) & b.flags_ok & (b.payload == 0) & ((f & (TCP_SYN | TCP_FIN | TCP_RST | TCP_ACK)) == TCP_ACK)


def port_probe(b: PacketBatch) -> np.ndarray:
    """Packets that probe a port: TCP without ACK/RST (SYN, FIN, NULL, Xmas...), a first
    fragment whose flags are cut off (nmap -f), a UDP or SCTP packet from the initiator, or an
    ACK probe that its target answered (see `answered_ack_probes`); none of them a path
    probe (TTL below PATH_PROBE_TTL: traceroute's UDP probes go to a new port each, 33434
    and up, and would count as a scan of the host they end at). Once per batch."""
    return once(b, "port_probe", _port_probe)


def probes(b: PacketBatch) -> PacketBatch:
    """The port_probe rows as a batch of their own (port_scan and distributed_scan both
    count them: its columns are gathered once per batch)."""
    if type(b) is not PacketBatch:  # a selection of a selection: not worth keeping
        return b.select(np.flatnonzero(port_probe(b)))
    # selected from a plain batch of b's columns, not from b: b.derived -> selection -> b
    # would be a reference cycle that keeps every batch's arrays until the cyclic collector runs
    return once(b, "probes", lambda b: PacketBatch(**{name: getattr(b, name) for name in BATCH_FIELDS}).select(
        np.flatnonzero(port_probe(b))))


def probe_port(p: PacketBatch) -> np.ndarray:
    """What a port probe counts as its item: protocol * 65536 + destination port."""
    return once(p, "probe_port", lambda p: p.proto.astype(np.int64) * 65536 + p.dport)


def _port_probe(b: PacketBatch) -> np.ndarray:
    tcp = tcp_rows(b)
    stealth = b.flags_ok & ((b.tcp_flags & (TCP_ACK | TCP_RST)) == 0)
    fragged = ~b.flags_ok & (b.frag == FRAG_FIRST)
    probe = (tcp & (stealth | fragged)) | udp_initiator(b) | sctp_initiator(b)
    probe[answered_ack_probes(b)[0]] = True
    return probe & (b.ttl >= PATH_PROBE_TTL)


def bare_rst(b: PacketBatch) -> np.ndarray:
    """RST without ACK: the answer to a segment that carried an ACK but belongs to no
    connection (RFC 793). Probes without ACK (SYN, FIN, NULL, Xmas) get RST+ACK instead."""
    return tcp_rows(b) & b.flags_ok & ((b.tcp_flags & (TCP_RST | TCP_ACK | TCP_SYN)) == TCP_RST)


def fin_ack(b: PacketBatch) -> np.ndarray:
    """FIN+ACK without payload from the initiator's side: how a connection closes, and what
    a Maimon scan (nmap -sM) sends to every port. Callers must tell them apart."""
    f = b.tcp_flags
    return (tcp_rows(b) & b.flags_ok & (b.payload == 0) & towards_service(b)
            & ((f & (TCP_SYN | TCP_FIN | TCP_RST | TCP_ACK)) == (TCP_FIN | TCP_ACK)))


def answered_ack_probes(b: PacketBatch) -> tuple[np.ndarray, np.ndarray]:
    """Rows of ACK probes that the destination answered, in this batch, with a bare RST from
    the probed port, and the rows of those RSTs. A probe is a bare ACK (no SYN/FIN/RST, no
    payload: nmap -sA finding unfiltered ports) or a FIN+ACK without payload (nmap -sM, the
    Maimon scan: RFC 793 stacks reset it on every port). Both carry an ACK that belongs to no
    connection, and the RFC's answer to that is a bare RST; a segment on a live connection is
    never answered that way, so established traffic (to however many ports) does not count.
    Unanswered (filtered) probes stay invisible. Computed once per batch (several detectors ask)."""
    if "ack_probes" not in b.derived:
        b.derived["ack_probes"] = _pair_acks_with_resets(b)
    return b.derived["ack_probes"]


def _pair_acks_with_resets(b: PacketBatch) -> tuple[np.ndarray, np.ndarray]:
    none = np.zeros(0, np.int64)
    rst = np.flatnonzero(bare_rst(b))
    if not rst.size:
        return none, none
    candidate = bare_ack(b) | fin_ack(b)
    acks = np.flatnonzero(candidate)
    if not acks.size:
        return none, none
    probe = _tuple_key(b, acks)
    answer = _tuple_key(b, rst, reverse=True)
    # A connection that shows a handshake, a FIN other than the probe's own, or data in this
    # batch is a connection, not a probe: e.g. `nc -z` closes at once, the server's banner
    # draws a bare RST, and the server's ACK of the FIN on the same tuple would otherwise
    # look answered.
    f = b.tcp_flags
    busy = np.flatnonzero(tcp_rows(b) & b.flags_ok & (((f & TCP_SYN) != 0) | (b.payload > 0)
                                                      | (((f & TCP_FIN) != 0) & ~candidate)))
    live = np.concatenate([_tuple_key(b, busy), _tuple_key(b, busy, reverse=True)])
    probe_ok = isin(probe, answer) & ~isin(probe, live)
    return acks[probe_ok], rst[isin(answer, probe[probe_ok])]


def _tuple_key(b: PacketBatch, rows: np.ndarray, reverse: bool = False) -> np.ndarray:
    """(src, dst, sport, dport) of rows; reverse=True keys an answer onto what it answers."""
    return flow_keys(b)[1 if reverse else 0][rows]


def flow_keys(b: PacketBatch) -> tuple[np.ndarray, np.ndarray]:
    """Every row's (src, dst, sport, dport) hashed, and the reverse (dst, src, dport, sport),
    which keys an answer onto what it answers. The handshake tracker, the ACK-probe pairing,
    conversations and suspicious_port all key TCP rows so: hashed once per batch, each takes
    its rows."""
    def both(b: PacketBatch) -> tuple[np.ndarray, np.ndarray]:
        fwd = hash_cols(b.src_hi, b.src_lo, b.dst_hi, b.dst_lo, b.sport, b.dport)
        rev = hash_cols(b.dst_hi, b.dst_lo, b.src_hi, b.src_lo, b.dport, b.sport)
        fwd.flags.writeable = rev.flags.writeable = False
        return fwd, rev

    return once(b, "flow_keys", both)


def icmp_request(b: PacketBatch) -> np.ndarray:
    """ICMP echo/timestamp/info/mask requests and ICMPv6 echo requests."""
    v4 = b.has_icmp & (b.proto == PROTO_ICMP) & ICMP_REQUESTS_V4[b.icmp_type]
    v6 = b.has_icmp & (b.proto == PROTO_ICMPV6) & (b.icmp_type == 128)
    return v4 | v6


ND_SOLICITATION, ND_TYPES = 135, (133, 134, 135, 136, 137)  # ICMPv6 neighbour solicitation; RS..redirect
SOLICITED_HI = np.uint64(0xFF02 << 48)  # ff02::1:ffXX:XXXX (RFC 4291 2.7.1): the NS target's low 24 bits
SOLICITED_LO = np.uint64(0x1FF000000)
LOW24 = np.uint64(0xFFFFFF)


def nd_solicitation(b: PacketBatch) -> np.ndarray:
    """Neighbour solicitations that resolve an address (to its solicited-node group, from an
    address: not duplicate address detection's ::, not a unicast reachability check). The
    group names the target's low 24 bits, so it stands for the target."""
    ns = b.has_icmp & (b.proto == PROTO_ICMPV6) & (b.icmp_type == ND_SOLICITATION)
    ns &= (b.dst_hi == SOLICITED_HI) & ((b.dst_lo & ~LOW24) == SOLICITED_LO)
    return ns & ((b.src_hi | b.src_lo) != 0)


def arp_request(b: PacketBatch) -> np.ndarray:
    """ARP requests that resolve another address (not an ARP probe from 0.0.0.0, RFC 5227, nor
    a gratuitous announcement of the sender's own)."""
    return (b.arp_op == ARP_REQUEST) & (b.arp_spa != 0) & (b.arp_spa != b.arp_tpa)


def solicited_group(lo: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(hi, lo) of the solicited-node group of IPv6 addresses with these low 64 bits."""
    return np.full(len(lo), SOLICITED_HI, np.uint64), SOLICITED_LO | (lo & LOW24)


def _quoted_source_is_receiver(b: PacketBatch) -> tuple[np.ndarray, np.ndarray]:
    """(rows quoting an IP header, whether each quotes its receiver's own packet); compared
    on those rows only, once per batch (ICMP errors are a few rows of most batches)."""
    def compute(b: PacketBatch) -> tuple[np.ndarray, np.ndarray]:
        rows = np.flatnonzero(b.quote == QUOTE_IP)
        return rows, (b.inner_src_lo[rows] == b.dst_lo[rows]) & (b.inner_src_hi[rows] == b.dst_hi[rows])
    return once(b, "quoted_source", compute)


def quotes_receiver(b: PacketBatch) -> np.ndarray:
    """ICMP errors whose quoted packet was sent by the host that receives the error: an error
    goes back to the source of the packet that caused it (RFC 792, 4443), so only these can
    answer anything the receiver did. Once per batch."""
    def compute(b: PacketBatch) -> np.ndarray:
        rows, mine = _quoted_source_is_receiver(b)
        out = np.zeros(len(b), bool)
        out[rows[mine]] = True
        return out
    return once(b, "quotes_receiver", compute)


def forged_error(b: PacketBatch) -> np.ndarray:
    """ICMP errors that answer nothing their receiver sent: they quote a packet from another
    source, or no IP header at all (BlackNurse's port unreachables, hping3 --icmp -C 3 and
    nping --icmp-type 3 alike). An error whose quote the capture cut (QUOTE_CUT) is neither:
    unknown. Once per batch."""
    def compute(b: PacketBatch) -> np.ndarray:
        rows, mine = _quoted_source_is_receiver(b)
        out = b.quote == QUOTE_BAD
        out[rows[~mine]] = True
        return out
    return once(b, "forged_error", compute)


def icmp_unreachable(b: PacketBatch) -> np.ndarray:
    """ICMP destination unreachable quoting a packet of its receiver, with its ports (v4 type 3,
    v6 type 1): one quoting somebody else's packet answers nothing the receiver sent."""
    v4 = (b.proto == PROTO_ICMP) & (b.icmp_type == 3)
    v6 = (b.proto == PROTO_ICMPV6) & (b.icmp_type == 1)
    return b.has_icmp & b.has_inner & (v4 | v6) & quotes_receiver(b)


def service(b: PacketBatch) -> np.ndarray:
    """(protocol, port) as one integer; ICMP types stand in for ports."""
    port = np.where(b.has_icmp, b.icmp_type.astype(np.int64), b.dport.astype(np.int64))
    return b.proto.astype(np.int64) * 65536 + port


V4_GROUPS = np.uint64((0xFFFF << 4) | 0xE)  # ::ffff:224.0.0.0/4 in the low 64 bits, shifted right by 28
V4_BROADCAST = np.uint64((0xFFFF << 32) | 0xFFFFFFFF)  # ::ffff:255.255.255.255
V6_GROUPS = np.uint64(0xFF)  # ff00::/8 in the high 64 bits, shifted right by 56


def to_group(b: PacketBatch) -> np.ndarray:
    """Packets to a multicast group (224.0.0.0/4, ff00::/8) or the limited broadcast address:
    addressed to whoever listens, not to one host."""
    v4 = (b.ipver == 4) & (((b.dst_lo >> np.uint64(28)) == V4_GROUPS) | (b.dst_lo == V4_BROADCAST))
    v6 = (b.ipver == 6) & ((b.dst_hi >> np.uint64(56)) == V6_GROUPS)
    return v4 | v6


def pair_key(b: PacketBatch, reverse: bool = False) -> np.ndarray:
    """Directional (src, dst) key; reverse=True keys a reply onto its initiator's pair."""
    if reverse:
        return hash_cols(b.dst_hi, b.dst_lo, b.src_hi, b.src_lo)
    return hash_cols(b.src_hi, b.src_lo, b.dst_hi, b.dst_lo)


def dst_key(b: PacketBatch) -> np.ndarray:
    return hash_cols(b.dst_hi, b.dst_lo)


ADDR_LABELS = {"src_hi": np.uint64, "src_lo": np.uint64, "dst_hi": np.uint64, "dst_lo": np.uint64}


def addr_labels(b: PacketBatch) -> dict[str, np.ndarray]:
    return {"src_hi": b.src_hi, "src_lo": b.src_lo, "dst_hi": b.dst_hi, "dst_lo": b.dst_lo}
