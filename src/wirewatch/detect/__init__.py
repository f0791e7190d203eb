"""The registry of built-in detectors: default_detectors(cfg) builds the enabled ones."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from .base import Detector, Finding
from .blacklist import Blacklist
from .classify.handshakes import HandshakeTracker
from .distributed_scan import DistributedScan
from .failed_handshake import FailedHandshake
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
    """The enabled detectors, in a fixed order. Each allocates its capped state here: a cap
    too large for this machine is a config error naming the detector."""
    from ..config import ConfigError  # config imports the detectors' settings: import late

    d = cfg.detect
    window = cfg.general.time_window
    shared: list[HandshakeTracker] = []

    def tracker() -> HandshakeTracker:  # one for syn_flood and failed_handshake, built if either is on
        if not shared:
            shared.append(HandshakeTracker(d.failed_handshake.timeout, d.failed_handshake.max_attempts))
        return shared[0]

    builders: dict[str, Callable[[], Detector]] = {
        "blacklist": lambda: Blacklist(d.blacklist),
        "suspicious_port": lambda: SuspiciousPort(d.suspicious_port),
        "port_scan": lambda: PortScan(d.port_scan, window),
        "host_sweep": lambda: HostSweep(d.host_sweep, window),
        "distributed_scan": lambda: DistributedScan(d.distributed_scan, d.port_scan.threshold),
        "syn_flood": lambda: SynFlood(d.syn_flood, window, tracker()),
        "failed_handshake": lambda: FailedHandshake(d.failed_handshake, tracker()),
        "unusual_protocol": lambda: UnusualProtocol(d.unusual_protocol, window),
        "traffic_burst": lambda: TrafficBurst(d.traffic_burst, window),
    }
    built: list[Detector] = []
    for name, build in builders.items():
        if getattr(d, name).enabled:
            try:
                built.append(build())
            except MemoryError:
                raise ConfigError(f"detect.{name}: its state caps (max_...) need more memory than this "
                                  f"machine has; lower them") from None
    return built
