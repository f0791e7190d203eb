"""suspicious_port: connection attempts (TCP SYN) or UDP datagrams to ports on a watch list."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..addr import addr_str
from ..decode import PacketBatch
from ..lut import member_table
from ..settings import setting
from .base import DetectorSpec, Finding, Reconfigurable, Signature
from .classify.packets import proto_name, syn_only, udp_initiator
from .count.kernels import hash_cols
from .count.report import times
from .count.window_util import unique_last

DEFAULT_PORTS = [23, 1337, 2323, 4444, 5554, 6666, 6667, 6668, 6669, 12345, 27374, 31337, 54321]


@dataclass(frozen=True)
class SuspiciousPortConfig:
    enabled: bool = setting(True, "Alert on connection attempts to ports on the watch list.")
    ports: list[int] = setting(DEFAULT_PORTS, "Watched destination ports (telnet, IRC, well-known backdoors "
                                              "and shells); --suspicious-ports replaces the list.", 0, 65535)


class SuspiciousPort(Reconfigurable):
    name = "suspicious_port"

    def __init__(self, cfg: SuspiciousPortConfig):
        self.cfg = cfg
        self.configure()

    def configure(self) -> None:
        self.ports = sorted(set(self.cfg.ports))
        self.watched = member_table(self.ports, np.uint16)

    def observe(self, b: PacketBatch) -> list[Finding]:
        rows = np.flatnonzero((syn_only(b) | udp_initiator(b)) & self.watched[b.dport])
        if not rows.size:
            return []
        keys = hash_cols(b.src_hi[rows], b.src_lo[rows], b.dst_hi[rows], b.dst_lo[rows], b.dport[rows], b.proto[rows])
        _, last, counts = unique_last(keys)
        out = []
        for i, n in sorted(zip(last.tolist(), counts.tolist())):
            r = rows[i]
            src, dst = addr_str(b.src_hi[r], b.src_lo[r]), addr_str(b.dst_hi[r], b.dst_lo[r])
            proto, port = proto_name(b.proto[r]), int(b.dport[r])
            kind = "connection" if proto == "TCP" else "datagram"
            out.append(Finding(
                type=self.name, identifier=(src, dst, proto, port), ts=float(b.ts[r]),
                message=f"Suspicious {proto} {kind} from {src} to port {port}",
                src_ip=src, dest_ip=dst, src_port=int(b.sport[r]), dest_port=port, proto=proto,
                evidence={"port": port, "attempts": int(n), "watched_ports": self.ports,
                          **times(b.ts[r], b.ts[r])},
            ))
        return out

    def expire(self, now: float) -> None:
        return None

    def stats(self) -> dict[str, int]:
        return {}


SPEC = DetectorSpec(
    name=SuspiciousPort.name, config=SuspiciousPortConfig,
    signature=Signature(9000009, "WIREWATCH suspicious port", "Potentially Bad Traffic", 2),
    build=lambda cfg, shared: SuspiciousPort(cfg.detect.suspicious_port),
)
