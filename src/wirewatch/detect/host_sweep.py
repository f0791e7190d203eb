"""host_sweep: one source probes many distinct hosts on the same service.

A service is (protocol, port) for TCP SYNs and UDP, or the ICMP request type (echo,
timestamp) for ping sweeps, so `nmap -sn` and `nmap -p22 10.0.0.0/24` are both found.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

import numpy as np

from ..addr import addr_str
from ..decode import PacketBatch
from ..settings import setting
from .base import DetectorSpec, Finding, Reconfigurable, Signature
from .classify.packets import (
    ADDR_LABELS,
    addr_labels,
    answered_ack_probes,
    icmp_request,
    proto_name,
    service,
    syn_only,
    udp_initiator,
)
from .classify.replies import UNREACHABLE, replies
from .count.kernels import hash_cols
from .count.report import due, src_of, times
from .count.window import DistinctCounter, WindowCounter

SAMPLE = 20


@dataclass(frozen=True)
class HostSweepConfig:
    enabled: bool = setting(True, "Detect one source probing many hosts on one service.")
    threshold: int = setting(15, "Distinct hosts probed on one service within the window.", 2)
    window: float = setting(0.0, "Window in seconds; 0 = general.time_window.", 0)
    max_sources: int = setting(32_768, "Cap on (source, service) pairs tracked.", 16)
    max_targets: int = setting(131_072, "Cap on (source, service, host) triples tracked.", 16)


class HostSweep(Reconfigurable):
    name = "host_sweep"

    def __init__(self, cfg: HostSweepConfig, window: float):
        self.cfg = cfg
        self.window = cfg.window or window
        labels = {**ADDR_LABELS, "service": np.int64}
        self.counter = DistinctCounter(self.window, cfg.max_sources, cfg.max_targets, labels,
                                       {"host_hi": np.uint64, "host_lo": np.uint64}, doorkeeper_bits=16)
        self.answers = WindowCounter(self.window, cfg.max_sources, ("replied", "unreachable"))

    def observe(self, b: PacketBatch) -> list[Finding]:
        probe = syn_only(b) | udp_initiator(b) | icmp_request(b)
        probe[answered_ack_probes(b)[0]] = True  # nmap -PA: ACKs that live hosts refuse with a bare RST
        rows = np.flatnonzero(probe)
        if not rows.size:
            return []
        p = b.select(rows)
        svc = service(p)
        keys = hash_cols(p.src_hi, p.src_lo, svc)
        host = hash_cols(p.dst_hi, p.dst_lo)
        touched = self.counter.observe(keys, host, p.ts, {**addr_labels(p), "service": svc},
                                       {"host_hi": p.dst_hi, "host_lo": p.dst_lo})
        self._count_answers(b)
        g = self.counter.groups
        hot = touched[g.cols["distinct"][touched] >= self.cfg.threshold]
        return [self._finding(s) for s in due(g, hot, float(p.ts.max()), self.window)]

    def _count_answers(self, b: PacketBatch) -> None:
        """Answers to a sweeper, keyed back onto its (source, service): see replies.py."""
        r = replies(b)
        keys = hash_cols(r.prober_hi, r.prober_lo, r.service)
        known = self.counter.groups.find(keys) >= 0
        if known.any():
            u = r.kind[known] == UNREACHABLE
            self.answers.add(keys[known], b.ts[r.rows[known]], {"replied": ~u, "unreachable": u})

    def _finding(self, slot: int) -> Finding:
        c = self.counter
        g = c.groups
        svc = int(g.cols["service"][slot])
        proto, port = svc // 65536, svc % 65536
        items = c.items_of(int(g.keys[slot]))
        hosts = sorted((addr_str(h, l) for h, l in zip(c.items.cols["host_hi"][items], c.items.cols["host_lo"][items])),
                       key=_addr_sort)
        src = src_of(g, slot)
        is_icmp = proto in (1, 58)
        what = f"ICMP type {port}" if is_icmp else f"{proto_name(proto)} port {port}"
        return Finding(
            type=self.name, identifier=(src, svc), ts=float(g.last_seen[slot]),
            message=f"Possible host sweep from {src} ({what})",
            src_ip=src, dest_port=None if is_icmp else port, proto=proto_name(proto),
            evidence={"distinct_hosts": int(g.cols["distinct"][slot]), "window_s": self.window,
                      "threshold": self.cfg.threshold, "service": what,
                      "probes": int(c.items.cols["hits"][items].sum()),
                      **times(g.cols["first_seen"][slot], g.last_seen[slot]), "sample_hosts": hosts[:SAMPLE],
                      "answers": self._answers(int(g.keys[slot]), float(g.last_seen[slot]))},
        )

    def _answers(self, key: int, now: float) -> dict[str, int]:
        slot = self.answers.table.find(np.array([key], np.uint64))
        if slot[0] < 0:
            return {"replied": 0, "unreachable": 0}
        return {m: int(self.answers.totals(slot, now, m)[0]) for m in ("replied", "unreachable")}

    def expire(self, now: float) -> None:
        self.counter.expire(now)
        self.answers.expire(now)

    def stats(self) -> dict[str, int]:
        return {**self.counter.stats("host_sweep"), **self.answers.stats("host_sweep_answers")}


def _addr_sort(text: str) -> tuple[int, str]:
    ip = ipaddress.ip_address(text)
    return ip.version, f"{int(ip):040d}"


SPEC = DetectorSpec(
    name=HostSweep.name, config=HostSweepConfig,
    signature=Signature(9000002, "WIREWATCH host sweep", "Attempted Information Leak", 2),
    build=lambda cfg, shared: HostSweep(cfg.detect.host_sweep, cfg.general.time_window),
)
