"""Alerts and stats events the real engine produces from crafted packets, for the store's
tests (tests/store/): written through a real sink into either store, read back by queries."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from conftest import run_packets
from scapy.layers.inet import IP, TCP
from scapy.layers.inet6 import IPv6

from wirewatch.craft import BASE_TS, eth, syn_scan
from wirewatch.schema import stats_record

SCANNER, VICTIM = "10.9.8.7", "10.0.0.2"  # port_scan: 40 ports of the victim
SWEEPER = "10.0.0.7"  # host_sweep: port 22 of 20 hosts in 10.0.1.0/24
SCANNER6, VICTIM6 = "fd00::9", "fd00::2"  # port_scan over IPv6, a minute later


def scenario() -> list[tuple[float, Any]]:
    pkts = syn_scan(BASE_TS, SCANNER, VICTIM, range(1000, 1040), gap=0.01)
    pkts += [(BASE_TS + 1 + i * 0.05, eth(IP(src=SWEEPER, dst=f"10.0.1.{i + 1}") / TCP(sport=41000, dport=22, flags="S")))
             for i in range(20)]
    pkts += [(BASE_TS + 60 + p * 0.01, eth(IPv6(src=SCANNER6, dst=VICTIM6) / TCP(sport=40001, dport=p, flags="S")))
             for p in range(2000, 2030)]
    return sorted(pkts, key=lambda p: p[0])


def engine_records(tmp_path: Path, sensor: str = "edge-a") -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """(alerts, final stats event) of the scenario analysed as `sensor`."""
    alerts, engine = run_packets(tmp_path, scenario(), {"general.sensor": sensor}, name=f"{sensor}.pcap")
    return alerts, stats_record(engine, None, (engine.stats.packets, 0, 0), 1.0, True)


def sqlite_at_version(path: str, version: int) -> sqlite3.Connection:
    """A SQLite store as migrations 1..`version` left it (its schema_version says so), on an
    autocommit connection: a store of an earlier release, for migration tests to fill the way
    that release's writer did."""
    from wirewatch.store.schema import MIGRATIONS
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
    conn.execute("INSERT INTO schema_version VALUES (0)")
    for number, script in enumerate(MIGRATIONS[:version], start=1):
        conn.executescript(f"BEGIN; {script}; UPDATE schema_version SET version = {number}; COMMIT;")
    return conn


def insert_as_before_flow_ids(conn: sqlite3.Connection, records: list[dict[str, Any]]) -> Any:
    """Insert `records` the way a writer of schema 15 or earlier did (every column of today's
    rows but flow_id, which migration 16 added); returns what they add to the roll-ups."""
    from wirewatch.store.rollups import prepare
    from wirewatch.store.tables import WRITTEN
    rows, rollup = prepare(records, [None] * len(records))
    at = WRITTEN.index("flow_id")
    names = WRITTEN[:at] + WRITTEN[at + 1:]
    conn.executemany(f"INSERT INTO alerts ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})",
                     [r[:at] + r[at + 1:] for r in rows])
    return rollup
