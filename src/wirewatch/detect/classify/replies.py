"""Answers to probes, classified once per batch for the scan detectors.

port_scan reports per target whether probed ports answered open / closed / unfiltered /
unreachable; host_sweep reports per swept service how many hosts answered. Both need
the same reading of a reply: who probed, which host and service were probed, and what
kind of answer it is.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...decode import TCP_ACK, TCP_RST, TCP_SYN, PacketBatch
from ...lut import member_table
from .packets import bare_rst, icmp_unreachable, tcp_rows

OPEN, CLOSED, UNFILTERED, UNREACHABLE, REPLIED = range(5)  # SYN-ACK, RST+ACK, bare RST, ICMP, UDP/ICMP reply
REPLY_OF = {0: 8, 14: 13, 129: 128}  # ICMP echo / timestamp / ICMPv6 echo reply -> its request type
ICMP_REPLIES = member_table(REPLY_OF)
REQUEST_OF = np.zeros(256, np.int64)
REQUEST_OF[list(REPLY_OF)] = list(REPLY_OF.values())


# eq=False: numpy columns have no value ==, and each method dataclass makes is compiled at import (start-up)
@dataclass(frozen=True, eq=False)
class Replies:
    rows: np.ndarray  # rows of the batch that answer a probe
    kind: np.ndarray  # OPEN, CLOSED, UNFILTERED, UNREACHABLE or REPLIED
    prober_hi: np.ndarray  # who the answer goes to
    prober_lo: np.ndarray
    target_hi: np.ndarray  # the probed host (for ICMP unreachable: the quoted destination)
    target_lo: np.ndarray
    service: np.ndarray  # protocol * 65536 + probed port (ICMP: the request type), as packets.service


def replies(b: PacketBatch) -> Replies:
    """Every answer in the batch (computed once per batch; several detectors ask)."""
    if "replies" not in b.derived:
        b.derived["replies"] = _classify(b)
    return b.derived["replies"]


def _classify(b: PacketBatch) -> Replies:
    f = b.tcp_flags
    tcp = tcp_rows(b) & b.flags_ok
    rst = tcp & ((f & TCP_RST) != 0)
    synack = tcp & ~rst & ((f & (TCP_SYN | TCP_ACK)) == (TCP_SYN | TCP_ACK))
    udp = (b.proto == 17) & b.has_ports & (b.ipver != 0)
    icmp = b.has_icmp & ICMP_REPLIES[b.icmp_type]
    unreach = icmp_unreachable(b)
    rows = np.flatnonzero(rst | synack | udp | icmp | unreach)
    kind = np.select([unreach[rows], synack[rows], bare_rst(b)[rows], rst[rows]],
                     [UNREACHABLE, OPEN, UNFILTERED, CLOSED], REPLIED)
    u = unreach[rows]
    proto = np.where(u, b.inner_proto[rows], b.proto[rows]).astype(np.int64)
    port = np.where(u, b.inner_dport[rows], np.where(icmp[rows], REQUEST_OF[b.icmp_type[rows]], b.sport[rows]))
    return Replies(rows, kind, b.dst_hi[rows], b.dst_lo[rows], np.where(u, b.inner_dst_hi[rows], b.src_hi[rows]),
                   np.where(u, b.inner_dst_lo[rows], b.src_lo[rows]), proto * 65536 + port)
