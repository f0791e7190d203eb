"""What both store sinks (SQLite, PostgreSQL) share: marking muted alerts, reading the
mutes back every few seconds, delivering each batch through Delivery (store/spool.py) and
the retention cadence. A backend says only how it reads its mutes (`_load_mutes`), how
it delivers (`_deliver`, e.g. stamping uids first) and how it enforces retention."""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Callable
from typing import Any

from ..sinks import SinkBase
from .spool import Delivery

MUTE_REFRESH_S = 2.0
RETENTION_EVERY = 500  # alerts between retention checks
RETENTION_PERIOD_S = 3600.0  # and at least hourly (with the stats events)

MuteRow = tuple[int, str, str, "int | None", float]


class Mutes:
    """Active mutes: (type, network, dest_port or None, until)."""

    def __init__(self, rows: list[MuteRow]):
        self.rows = [(mid, t, ipaddress.ip_network(c, strict=False), p, u) for mid, t, c, p, u in rows]

    def match(self, alert: dict[str, Any], now: float) -> int | None:
        for mid, typ, net, port, until in self.rows:
            if until < now or typ not in (alert["type"], "*"):
                continue
            if port is not None and alert.get("dest_port") != port:
                continue
            for ip in (alert.get("src_ip"), alert.get("dest_ip")):
                if ip and ipaddress.ip_address(ip).version == net.version and ipaddress.ip_address(ip) in net:
                    return mid
        return None


class StoreSink(SinkBase):
    """The part of a store sink that does not know SQL."""

    keeps_muted = True
    clock: Callable[[], float]
    delivery: Delivery

    def _init_cadence(self) -> None:
        self.mutes = Mutes([])
        self.mutes_loaded = 0.0
        self.since_retention = 0
        self.last_retention = self.clock()

    def _load_mutes(self, now: float) -> list[MuteRow] | None:
        """The mutes in force at `now`, or None when the store cannot answer now (the last
        known mutes then stay in force)."""
        raise NotImplementedError

    def _deliver(self, records: list[dict[str, Any]]) -> None:
        self.delivery.deliver(records)

    def enforce_retention(self) -> None:
        raise NotImplementedError

    def halted(self) -> str:
        """Once the store's schema moved ahead of this writer (spool.StoreAhead): the one line
        that says so and where its records wait."""
        d = self.delivery
        if not d.halted:
            return ""
        return (f"{d.what}: {d.halted}; stopped writing, {d.spool.pending:,} records kept in {d.spool.path} "
                "(an upgraded wirewatch stores them when it starts)")

    def refresh_mutes(self, force: bool = False) -> None:
        """Mutes made on the dashboard reach this sensor within MUTE_REFRESH_S."""
        now = self.clock()
        if not force and now - self.mutes_loaded < MUTE_REFRESH_S:
            return
        self.mutes_loaded = now
        rows = self._load_mutes(now)
        if rows is not None:
            self.mutes = Mutes(rows)

    def filter(self, alerts: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Mark alerts that a mute covers (alert["muted"] = mute id); called before other sinks."""
        self.refresh_mutes()
        if not self.mutes.rows:
            return alerts
        now = self.clock()
        for a in alerts:
            mid = self.mutes.match(a, now)
            if mid is not None:
                a["muted"] = mid
        return alerts

    def write(self, alerts: list[dict[str, Any]]) -> None:
        if not alerts:
            return
        self._deliver(alerts)
        self.since_retention += len(alerts)
        if self.since_retention >= RETENTION_EVERY:
            self.since_retention = 0
            self.enforce_retention()

    def write_event(self, record: dict[str, Any]) -> None:
        if record.get("event_type") == "stats":
            self._deliver([record])
            if self.clock() - self.last_retention >= RETENTION_PERIOD_S:  # a quiet sensor still ages out
                self.enforce_retention()


def epoch(ts: str) -> float:
    """EVE timestamp -> epoch seconds (fromisoformat is C code: no lazy import after a privilege drop)."""
    return dt.datetime.fromisoformat(ts).timestamp()
