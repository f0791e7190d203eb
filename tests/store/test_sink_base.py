"""What both store sinks share (store/sink_base.py): mutes read back on a cadence and kept
while the store cannot answer, muted alerts marked, retention every RETENTION_EVERY alerts
and at least hourly with the stats events."""

from __future__ import annotations

from typing import Any

from wirewatch.store.sink_base import MUTE_REFRESH_S, RETENTION_EVERY, RETENTION_PERIOD_S, MuteRow, Mutes, StoreSink


class FakeDelivery:
    def __init__(self) -> None:
        self.batches: list[list[dict[str, Any]]] = []

    def deliver(self, records: list[dict[str, Any]]) -> None:
        self.batches.append(records)


class FakeSink(StoreSink):
    def __init__(self) -> None:
        self.now = 1000.0
        self.clock = lambda: self.now
        self.delivery = FakeDelivery()  # type: ignore[assignment]
        self.answer: list[MuteRow] | None = [(7, "port_scan", "10.0.0.0/8", None, 5000.0)]
        self.loads = 0
        self.retentions = 0
        self._init_cadence()

    def _load_mutes(self, now: float) -> list[MuteRow] | None:
        self.loads += 1
        return self.answer

    def enforce_retention(self) -> None:
        self.retentions += 1
        self.last_retention = self.clock()


def alert(src: str, typ: str = "port_scan") -> dict[str, Any]:
    return {"type": typ, "src_ip": src, "dest_ip": "192.168.1.1", "dest_port": 22}


def test_mutes_mark_matching_alerts_and_refresh_on_a_cadence():
    s = FakeSink()
    out = s.filter([alert("10.1.2.3"), alert("11.1.2.3"), alert("10.1.2.3", "host_sweep")])
    assert [a.get("muted") for a in out] == [7, None, None]
    s.answer = None  # the store is busy: the last known mutes stay in force
    s.now += MUTE_REFRESH_S
    assert s.filter([alert("10.9.9.9")])[0]["muted"] == 7 and s.loads == 2
    s.filter([alert("10.9.9.9")])
    assert s.loads == 2  # within MUTE_REFRESH_S: not read again
    s.answer = []
    s.refresh_mutes(force=True)
    assert "muted" not in s.filter([alert("10.9.9.9")])[0]


def test_mutes_match_port_and_expiry():
    m = Mutes([(1, "*", "10.0.0.0/8", 22, 100.0)])
    assert m.match(alert("10.0.0.1"), 50.0) == 1
    assert m.match(alert("10.0.0.1") | {"dest_port": 23}, 50.0) is None
    assert m.match(alert("10.0.0.1"), 150.0) is None


def test_retention_runs_every_so_many_alerts_and_hourly_with_stats():
    s = FakeSink()
    for _ in range(RETENTION_EVERY // 100 - 1):
        s.write([alert("1.1.1.1")] * 100)
    assert s.retentions == 0
    s.write([alert("1.1.1.1")] * 100)
    assert s.retentions == 1
    s.write_event({"event_type": "stats"})
    assert s.retentions == 1
    s.now += RETENTION_PERIOD_S
    s.write_event({"event_type": "stats"})
    assert s.retentions == 2 and len(s.delivery.batches) == RETENTION_EVERY // 100 + 2
