"""The registry of detectors: DETECTORS lists one DetectorSpec per detector.

How to add a detector (one file plus one line):
  1. Write detect/<name>.py: its settings dataclass (fields made with settings.setting, one of
     them `enabled`), the detector class (observe / expire / stats: see base.Detector) and
     `SPEC = DetectorSpec(name, Config, Signature(signature_id, signature, category, severity),
     build=lambda cfg, shared: ...)`.
  2. Add its module name to BUILT_IN below.
Everything else follows from this list: the [detect.<name>] config section and its keys in
`wirewatch config` (config.py), the alert's signature block (schema.alert_record), the
dashboard's type filter, and README's config, detection and signature tables (checked by
tests/test_readme.py). tests/detect/test_registry.py shows a throwaway detector doing this.
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib import import_module
from typing import TYPE_CHECKING, Any

from .base import Detector, DetectorSpec, Signature
from .classify.handshakes import HandshakeTracker
from .count.report import COOLDOWN, Gate

if TYPE_CHECKING:
    from ..config import Config

# One detector module of this package per line, in the order detectors see each batch (so the
# order their alerts come out in); config sections are listed in this order too.
BUILT_IN = (
    "blacklist",
    "suspicious_port",
    "port_scan",
    "host_sweep",
    "distributed_scan",
    "syn_flood",
    "failed_handshake",
    "unusual_protocol",
    "traffic_burst",
)
DETECTORS: list[DetectorSpec] = [import_module(f"{__package__}.{name}").SPEC for name in BUILT_IN]


class Shared:
    """State more than one detector reads, built once by the first builder that asks for it."""

    def __init__(self, cfg: Config, gate: Gate = COOLDOWN):
        """`gate`: when a key over its threshold is reported (count.report.Gate); tune opens it."""
        self.cfg = cfg
        self.gate = gate
        self._handshakes: HandshakeTracker | None = None

    def handshakes(self) -> HandshakeTracker:
        """The TCP handshake tracker syn_flood and failed_handshake both read (its timeout and
        cap are failed_handshake's settings)."""
        if self._handshakes is None:
            fh = self.cfg.detect.failed_handshake
            self._handshakes = HandshakeTracker(fh.timeout, fh.max_attempts)
        return self._handshakes


def names() -> list[str]:
    return [spec.name for spec in DETECTORS]


def severity_for(finding_type: str, evidence: Mapping[str, Any]) -> int:
    """The signature's severity, raised by the detector's `rises` that the evidence meets."""
    severity = signature_of(finding_type).severity
    for spec in DETECTORS:
        if spec.name == finding_type:
            severity = min([severity] + [r.severity for r in spec.rises if r.applies(evidence)])
    return severity


def signature_of(finding_type: str) -> Signature:
    """A registered detector's signature; a finding of any other type (from a detector handed
    to Engine directly, not registered) gets the catch-all id 9000099."""
    for spec in DETECTORS:
        if spec.name == finding_type:
            return spec.signature
    return Signature(9000099, f"WIREWATCH {finding_type}", "Misc activity", 3)


def default_detectors(cfg: Config) -> list[Detector]:
    """The enabled detectors, in registry order. Each allocates its capped state here: a cap
    too large for this machine is a config error naming the detector."""
    from ..config import ConfigError  # config reads this registry: import late

    shared = Shared(cfg)
    built: list[Detector] = []
    for spec in DETECTORS:
        if getattr(cfg.detect, spec.name).enabled:
            try:
                built.append(spec.build(cfg, shared))
            except MemoryError:
                raise ConfigError(f"detect.{spec.name}: its state caps (max_...) need more memory than this "
                                  f"machine has; lower them") from None
    return built


def signatures_markdown() -> str:
    """README's signature table."""
    rows = ["| type | signature_id | signature | category | severity | rises to |", "|---|---|---|---|---|---|"]
    for spec in sorted(DETECTORS, key=lambda s: s.signature.signature_id):
        s = spec.signature
        rises = "; ".join(f"{r.severity} when `{r.key}` ≥ {r.at_least:g}{f' ({r.why})' if r.why else ''}"
                          for r in spec.rises) or "—"
        rows.append(f"| `{spec.name}` | {s.signature_id} | {s.signature} | {s.category} | {s.severity} | {rises} |")
    return "\n".join(rows)
