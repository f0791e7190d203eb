"""Conversations: evidence that a probe reached a service that was then really used.

A sweep or a scan touches many hosts or ports and exchanges nothing with them; a user
browsing 17 web sites from behind a NAT address, or a monitoring host checking a few
services, also touches many, but each handshake completes and carries data. This module
names, per batch, the (prober, target, service) triples that show such an exchange, in
the same terms as a probe (packets.service), so a detector can tell its probes that
turned into conversations from the ones that did not:

* a TCP segment with payload from the service port: the server sent data (a response, a
  banner, a download whose client only acknowledges);
* a TCP segment with payload to the service port that the target acknowledged in the same
  batch (any segment back on that connection but a reset): an upload. Data the target never
  answered proves nothing: a sweeper could follow each SYN with one unsolicited byte;
* a UDP datagram *from* the probed port back to the prober: the service answered (a DNS
  server, NTP polled from port 123 on both sides).

ICMP never counts: an echo reply is exactly what a ping sweep looks for.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...decode import PROTO_TCP, PROTO_UDP, TCP_RST, TCP_SYN, PacketBatch
from ..count.kernels import group, hash_cols, isin
from .packets import flow_keys, tcp_rows


# eq=False: numpy columns have no value ==, and each method dataclass makes is compiled at import (start-up)
@dataclass(frozen=True, eq=False)
class Conversations:
    prober_hi: np.ndarray  # the side that would have probed (the initiator)
    prober_lo: np.ndarray
    target_hi: np.ndarray  # the host it talked with
    target_lo: np.ndarray
    service: np.ndarray  # protocol * 65536 + the target's port, as packets.service


def conversations(b: PacketBatch) -> Conversations:
    """This batch's conversation triples (computed once per batch; several detectors ask)."""
    if "conversations" not in b.derived:
        b.derived["conversations"] = _find(b)
    return b.derived["conversations"]


def _find(b: PacketBatch) -> Conversations:
    tcp = tcp_rows(b) & b.flags_ok
    data = np.flatnonzero(tcp & (b.payload > 0) & ((b.tcp_flags & (TCP_SYN | TCP_RST)) == 0))
    fwd = data[_answered(b, data, np.flatnonzero(tcp & ((b.tcp_flags & TCP_RST) == 0)))]
    udp = np.flatnonzero((b.proto == PROTO_UDP) & b.has_ports & (b.ipver != 0))
    # every row of one flow names the same triple: keep each flow's first row (a transfer
    # repeats one flow per data segment), so only a few rows are gathered and hashed below
    fwd, data, udp = _first_of_each_flow(b, fwd), _first_of_each_flow(b, data), _first_of_each_flow(b, udp)
    tcp_svc = np.int64(PROTO_TCP) * 65536
    # forward: acknowledged data from the initiator to the service port; backward: data from
    # the service port to the initiator, and a UDP answer from the probed port (prober = its
    # destination)
    c = Conversations(
        prober_hi=np.concatenate([b.src_hi[fwd], b.dst_hi[data], b.dst_hi[udp]]),
        prober_lo=np.concatenate([b.src_lo[fwd], b.dst_lo[data], b.dst_lo[udp]]),
        target_hi=np.concatenate([b.dst_hi[fwd], b.src_hi[data], b.src_hi[udp]]),
        target_lo=np.concatenate([b.dst_lo[fwd], b.src_lo[data], b.src_lo[udp]]),
        service=np.concatenate([tcp_svc + b.dport[fwd].astype(np.int64), tcp_svc + b.sport[data].astype(np.int64),
                                np.int64(PROTO_UDP) * 65536 + b.sport[udp].astype(np.int64)]),
    )
    # each triple once: its users only mark it (idempotent), and a transfer repeats one
    # triple per data segment (bulk.pcap: about 3 distinct triples in a batch of 16,384 packets)
    if len(c.service) < 2:
        return c
    order, starts, _ = group(hash_cols(c.prober_hi, c.prober_lo, c.target_hi, c.target_lo, c.service))
    if len(starts) == len(c.service):
        return c
    first = order[starts]  # in order of first occurrence
    return Conversations(*(col[first] for col in (c.prober_hi, c.prober_lo, c.target_hi, c.target_lo, c.service)))


def _first_of_each_flow(b: PacketBatch, rows: np.ndarray) -> np.ndarray:
    """The first of `rows` of each (src, dst, sport, dport), in row order."""
    if len(rows) < 2:
        return rows
    order, starts, _ = group(flow_keys(b)[0][rows])
    return rows if len(starts) == len(rows) else rows[order[starts]]  # first occurrences: ascending


def _answered(b: PacketBatch, rows: np.ndarray, replies: np.ndarray) -> np.ndarray:
    """Which of `rows` have a segment back on the same connection among `replies`."""
    if not len(rows) or not len(replies):
        return np.zeros(len(rows), bool)
    fwd, rev = flow_keys(b)
    return isin(fwd[rows], rev[replies])
