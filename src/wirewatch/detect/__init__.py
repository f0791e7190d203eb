"""The registry of built-in detectors: default_detectors(cfg) builds the enabled ones."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .base import Detector, Finding
from .blacklist import Blacklist
from .distributed_scan import DistributedScan
from .failed_handshake import FailedHandshake
from .handshakes import HandshakeTracker
from .host_sweep import HostSweep
from .port_scan import PortScan
from .suspicious_port import SuspiciousPort
from .syn_flood import SynFlood
from .traffic_burst import TrafficBurst
from .unusual_protocol import UnusualProtocol

if TYPE_CHECKING:
    from ..config import Config

__all__ = ["Detector", "Finding", "default_detectors"]


def default_detectors(cfg: "Config") -> list[Detector]:
    d = cfg.detect
    window = cfg.general.time_window
    tracker = HandshakeTracker(d.failed_handshake.timeout, d.failed_handshake.max_attempts)
    built: list[Detector] = []
    if d.blacklist.enabled:
        built.append(Blacklist(d.blacklist))
    if d.suspicious_port.enabled:
        built.append(SuspiciousPort(d.suspicious_port))
    if d.port_scan.enabled:
        built.append(PortScan(d.port_scan, window))
    if d.host_sweep.enabled:
        built.append(HostSweep(d.host_sweep, window))
    if d.distributed_scan.enabled:
        built.append(DistributedScan(d.distributed_scan, d.port_scan.threshold))
    if d.syn_flood.enabled:
        built.append(SynFlood(d.syn_flood, window, tracker))
    if d.failed_handshake.enabled:
        built.append(FailedHandshake(d.failed_handshake, tracker))
    if d.unusual_protocol.enabled:
        built.append(UnusualProtocol(d.unusual_protocol, window))
    if d.traffic_burst.enabled:
        built.append(TrafficBurst(d.traffic_burst, window))
    return built
