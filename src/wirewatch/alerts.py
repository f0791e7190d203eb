"""Finding -> Alert: deduplication by identifier with a cooldown in packet time."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from .detect.base import Finding
from .schema import alert_record


@dataclass
class _Seen:
    last_alert: float
    suppressed: int = 0


@dataclass
class AlertManager:
    """Decides whether a finding is a new alert or a suppressed duplicate.

    "The same alert" is (detector type, finding.identifier). A repeat within `cooldown`
    seconds of the last alert for it is suppressed and counted; the next alert for it
    carries `evidence.suppressed_since_last`. Identifiers are capped (least recent go).
    """

    cooldown: float
    max_identifiers: int = 100_000
    iface: str | None = None
    seen: OrderedDict[tuple[Any, ...], _Seen] = field(default_factory=OrderedDict)
    alerts_by_type: dict[str, int] = field(default_factory=dict)
    suppressed_by_type: dict[str, int] = field(default_factory=dict)
    evicted: int = 0

    def ingest(self, findings: list[Finding]) -> list[dict[str, Any]]:
        out = []
        for f in sorted(findings, key=lambda f: (f.ts, f.type, repr(f.identifier))):
            key = (f.type,) + tuple(f.identifier)
            prior = self.seen.get(key)
            if prior is not None and f.ts - prior.last_alert < self.cooldown:
                prior.suppressed += 1
                self.suppressed_by_type[f.type] = self.suppressed_by_type.get(f.type, 0) + 1
                continue
            suppressed = prior.suppressed if prior else 0
            self.seen[key] = _Seen(f.ts)
            self.seen.move_to_end(key)
            if len(self.seen) > self.max_identifiers:
                self.seen.popitem(last=False)
                self.evicted += 1
            self.alerts_by_type[f.type] = self.alerts_by_type.get(f.type, 0) + 1
            out.append(alert_record(f, self.iface, suppressed))
        return out

    def pending_suppressed(self) -> list[dict[str, Any]]:
        """At the end of a run: identifiers with duplicates not yet reported."""
        return [{"type": k[0], "identifier": [str(x) for x in k[1:]], "suppressed": s.suppressed}
                for k, s in self.seen.items() if s.suppressed]
