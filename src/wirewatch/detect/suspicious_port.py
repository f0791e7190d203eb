"""suspicious_port: connection attempts (TCP SYN) or UDP datagrams to ports on a watch list.

A session that was already established when the capture began has no SYN: data on a TCP
connection whose lower port (the service's side) is watched, on a connection not seen
before, is reported once as a mid-stream session, naming the side that talks *to* the
watched port. Known connections are held in a bounded table (SYNs put them there too).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..addr import addr_str, addr_strs
from ..decode import TCP_RST, TCP_SYN, PacketBatch
from ..lut import member_table
from ..schema import format_ts_many
from ..settings import Frozen, cap, setting
from .base import DetectorSpec, Finding, Reconfigurable, Rise, Signature
from .classify.handshakes import COMPLETED, HandshakeTracker
from .classify.packets import flow_keys, proto_name, syn_only, tcp_rows, udp_initiator
from .count.kernels import hash_cols
from .count.report import times
from .count.table import KeyTable
from .count.window_util import sorted_unique, unique_first_last, unique_last

SESSION_IDLE = 300.0  # seconds of packet time after which a quiet known connection is forgotten
DEFAULT_PORTS = [23, 1337, 2323, 4444, 5554, 6666, 6667, 6668, 6669, 12345, 27374, 31337, 54321]


@dataclass(frozen=True, eq=False, repr=False)
class SuspiciousPortConfig(Frozen):
    enabled: bool = setting(True, "Alert on connection attempts to ports on the watch list.")
    ports: list[int] = setting(DEFAULT_PORTS, "Watched destination ports (telnet, IRC, well-known backdoors "
                                              "and shells); --suspicious-ports replaces the list.", 0, 65535)
    max_sessions: int = cap(65_536, "Cap on connections to watched ports remembered (so a mid-stream "
                                    "session is reported once).")


class SuspiciousPort(Reconfigurable):
    """One finding per (source, destination, protocol, port) and batch: `attempts` counts its
    SYNs or datagrams, first_seen/last_seen span them. A TCP connection to a watched port
    whose handshake completed (seen by the shared handshake tracker) is a finding of its own
    with `completed`: the alert manager folds bare probes of a known scanner into its scan
    alert, never a completed connection."""

    name = "suspicious_port"

    def __init__(self, cfg: SuspiciousPortConfig, tracker: HandshakeTracker | None = None):
        self.cfg = cfg
        self.tracker = tracker
        self.configure()
        self.sessions = KeyTable(cfg.max_sessions)

    def configure(self) -> None:
        self.ports = sorted(set(self.cfg.ports))
        self.watched = member_table(self.ports, np.uint16)

    def observe(self, b: PacketBatch) -> list[Finding]:
        completed = self._completed(b) if self.tracker is not None else []
        return completed + self._attempts(b) + self._midstream(b)

    def _midstream(self, b: PacketBatch) -> list[Finding]:
        """Data on connections to watched ports that no SYN (and no earlier data) announced."""
        syn = np.flatnonzero(syn_only(b) & self.watched[b.dport])
        if syn.size:
            opened = sorted_unique(flow_keys(b)[0][syn])
            self.sessions.upsert(opened, np.full(len(opened), b.ts[syn].max()))
        data = tcp_rows(b) & b.flags_ok & (b.payload > 0) & ((b.tcp_flags & (TCP_SYN | TCP_RST)) == 0)
        to_svc = np.flatnonzero(data & (b.dport < b.sport) & self.watched[b.dport])  # client -> service
        from_svc = np.flatnonzero(data & (b.sport < b.dport) & self.watched[b.sport])  # service -> client
        if not (to_svc.size or from_svc.size):
            return []
        rows = np.concatenate([to_svc, from_svc])
        fwd = np.r_[np.ones(to_svc.size, bool), np.zeros(from_svc.size, bool)]
        c_hi, c_lo = np.where(fwd, b.src_hi[rows], b.dst_hi[rows]), np.where(fwd, b.src_lo[rows], b.dst_lo[rows])
        s_hi, s_lo = np.where(fwd, b.dst_hi[rows], b.src_hi[rows]), np.where(fwd, b.dst_lo[rows], b.src_lo[rows])
        cport, port = np.where(fwd, b.sport[rows], b.dport[rows]), np.where(fwd, b.dport[rows], b.sport[rows])
        keys = np.where(fwd, flow_keys(b)[0][rows], flow_keys(b)[1][rows])  # (client, service, ports)
        uk, last, counts = unique_last(keys)
        known = self.sessions.find(uk) >= 0
        self.sessions.upsert(uk, b.ts[rows[last]])
        out = []
        for i, n in sorted(zip(last[~known].tolist(), counts[~known].tolist())):
            src, dst, p = addr_str(c_hi[i], c_lo[i]), addr_str(s_hi[i], s_lo[i]), int(port[i])
            out.append(Finding(
                type=self.name, identifier=(src, dst, "TCP", p), ts=float(b.ts[rows[i]]),
                message=f"Suspicious TCP session from {src} to port {p} (already established: no SYN seen)",
                src_ip=src, dest_ip=dst, src_port=int(cport[i]), dest_port=p, proto="TCP",
                evidence={"port": p, "midstream": True, "data_segments": int(n), "watched_ports": self.ports,
                          **times(b.ts[rows[i]], b.ts[rows[i]])},
            ))
        return out

    def _attempts(self, b: PacketBatch) -> list[Finding]:
        out: list[Finding] = []
        rows = np.flatnonzero((syn_only(b) | udp_initiator(b)) & self.watched[b.dport])
        if not rows.size:
            return out
        keys = hash_cols(b.src_hi[rows], b.src_lo[rows], b.dst_hi[rows], b.dst_lo[rows], b.dport[rows], b.proto[rows])
        _, first, last, counts = unique_first_last(keys)
        order = np.argsort(last, kind="stable")
        first, last, counts = rows[first[order]], rows[last[order]], counts[order]
        srcs, dsts = addr_strs(b.src_hi[last], b.src_lo[last]), addr_strs(b.dst_hi[last], b.dst_lo[last])
        t0, t1 = format_ts_many(b.ts[first]), format_ts_many(b.ts[last])
        for i, r in enumerate(last.tolist()):
            src, dst = srcs[i], dsts[i]
            proto, port = proto_name(b.proto[r]), int(b.dport[r])
            kind = "connection" if proto == "TCP" else "datagram"
            out.append(Finding(
                type=self.name, identifier=(src, dst, proto, port), ts=float(b.ts[r]),
                message=f"Suspicious {proto} {kind} from {src} to port {port}",
                src_ip=src, dest_ip=dst, src_port=int(b.sport[r]), dest_port=port, proto=proto,
                evidence={"port": port, "attempts": int(counts[i]), "watched_ports": self.ports,
                          "first_seen": t0[i], "last_seen": t1[i]},
            ))
        return out

    def _completed(self, b: PacketBatch) -> list[Finding]:
        ev = self.tracker.observe(b)  # type: ignore[union-attr]
        done = np.flatnonzero((ev.outcome == COMPLETED) & self.watched[ev.dport.astype(np.uint16)])
        out = []
        for i in done.tolist():
            src, dst, port = addr_str(ev.src_hi[i], ev.src_lo[i]), addr_str(ev.dst_hi[i], ev.dst_lo[i]), int(ev.dport[i])
            out.append(Finding(
                type=self.name, identifier=(src, dst, "TCP", port), ts=float(ev.ts[i]),
                message=f"Suspicious TCP connection completed from {src} to port {port}",
                src_ip=src, dest_ip=dst, dest_port=port, proto="TCP",
                evidence={"port": port, "completed": True, "watched_ports": self.ports, **times(ev.ts[i], ev.ts[i])},
            ))
        return out

    def expire(self, now: float) -> None:
        self.sessions.expire(now - SESSION_IDLE, report=False)

    def stats(self) -> dict[str, int]:
        return {"suspicious_port_sessions": self.sessions.size, "suspicious_port_sessions_evicted": self.sessions.evicted}


SPEC = DetectorSpec(
    name=SuspiciousPort.name, config=SuspiciousPortConfig,
    signature=Signature(9000009, "WIREWATCH suspicious port", "Potentially Bad Traffic", 2),
    conversation=True,
    build=lambda cfg, shared: SuspiciousPort(cfg.detect.suspicious_port, shared.handshakes()),
    figure="attempts", storm_label="Suspicious {proto} connections",
    rises=(Rise("completed", 1, 1, "the connection completed"),),
)
