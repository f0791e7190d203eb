"""`make bench-web`: the store's write rate, and dashboard latency with 1,000,000 stored alerts.

First writes an alert storm (STORM alerts, batches of 16,384 as the engine hands them
over) into a fresh store through the real SqliteSink and prints alerts/s ("SQLite insert:
N alerts/s (CPU), N alerts/s (wall)"), and what adding the storm's per-source roll-ups
afterwards costs. Then fills a
store (once, cached under var/bench/) through the same sink, and times
the alerts list (first page and a deep page), a filtered query (type + CIDR), free-text
search and the overview API through the Flask app, and prints p50/p95 in milliseconds.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests"))

from wirewatch.store.deferred import catch_up_sources  # noqa: E402
from wirewatch.store.search import catch_up  # noqa: E402
from wirewatch.store.sqlite_sink import SqliteSink  # noqa: E402
from wirewatch.web import create_app  # noqa: E402

N = int(os.environ.get("BENCH_WEB_ALERTS", "1000000"))
STORM = int(os.environ.get("BENCH_STORE_ALERTS", "300000"))
BATCH = 16384
DB = os.path.join(os.environ.get("BENCH_WEB_DIR") or os.path.join(ROOT, "var", "bench"), f"web-{N}.db")
TYPES = ["port_scan", "host_sweep", "syn_flood", "failed_handshake", "unusual_protocol", "traffic_burst",
         "blacklist", "suspicious_port", "distributed_scan"]
T0 = 1_767_225_600


def alert(i: int) -> dict:
    src = f"10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}"
    t = TYPES[i % len(TYPES)]
    ts = T0 + i * 0.5
    return {"timestamp": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + f".{int(ts % 1 * 1e6):06d}+0000",
            "event_type": "alert", "src_ip": src, "src_port": 40000 + i % 20000, "dest_ip": f"192.168.{i % 7}.{i % 250 + 1}",
            "dest_port": (22, 80, 443, 4444, 3389)[i % 5], "proto": "TCP", "in_iface": "eth0", "flow_id": i,
            "alert": {"action": "allowed", "gid": 1, "signature_id": 9000001 + i % 9, "rev": 1,
                      "signature": f"WIREWATCH {t}", "category": "Misc activity", "severity": 1 + i % 3},
            "type": t, "message": f"Possible {t.replace('_', ' ')} from {src}", "evidence": {"count": i % 1000}}


def fill() -> None:
    if os.path.exists(DB):
        return
    os.makedirs(os.path.dirname(DB), exist_ok=True)
    sink = SqliteSink(DB + ".tmp", retention_days=100000, max_mb=100000)
    start = time.perf_counter()
    for base in range(0, N, 5000):
        sink.write([alert(i) for i in range(base, min(N, base + 5000))])
    sink.close()
    os.replace(DB + ".tmp", DB)
    for ext in ("-wal", "-shm"):
        if os.path.exists(DB + ".tmp" + ext):
            os.remove(DB + ".tmp" + ext)
    print(f"filled {N:,} alerts in {time.perf_counter() - start:.1f} s ({N / (time.perf_counter() - start):,.0f} alerts/s)")


def store_rate() -> None:
    """Alerts/s into a fresh store, in CPU seconds of this process (what the writer costs,
    whatever else shares the machine) and wall clock; then what the storm's per-source
    roll-ups cost when they are added in bulk afterwards (store/deferred.py: by the dashboard,
    or by the writer once the storm is over)."""
    alerts = [alert(i) for i in range(STORM)]
    tmp = tempfile.mkdtemp(prefix="bench-store")
    try:
        path = os.path.join(tmp, "storm.db")
        sink = SqliteSink(path, retention_days=100000, max_mb=100000)
        wall, cpu = time.perf_counter(), time.process_time()
        for lo in range(0, STORM, BATCH):
            sink.write(alerts[lo:lo + BATCH])
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        conn = sqlite3.connect(path, isolation_level=None)
        later_wall, later_cpu = time.perf_counter(), time.process_time()
        added = catch_up_sources(conn)
        later_wall, later_cpu = time.perf_counter() - later_wall, time.process_time() - later_cpu
        conn.close()
        sink.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    load = os.getloadavg()[0]
    print(f"SQLite insert: {STORM / cpu:,.0f} alerts/s (CPU), {STORM / wall:,.0f} alerts/s (wall) "
          f"({STORM:,} alerts in batches of {BATCH:,}: {cpu:.2f} CPU s, {wall:.2f} s; load average {load:.1f})")
    print(f"  then the storm's per-source roll-ups in bulk: {added:,} alerts in {later_cpu:.2f} CPU s, {later_wall:.2f} s "
          f"({added / max(later_cpu, 1e-9):,.0f} alerts/s (CPU)); both together "
          f"{STORM / (cpu + later_cpu):,.0f} alerts/s (CPU)")


def timed(client, url: str, runs: int = 40) -> tuple[float, float]:
    auth = {"Authorization": "Bearer bench"}
    client.get(url, headers=auth)
    samples = []
    for _ in range(runs):
        t = time.perf_counter()
        r = client.get(url, headers=auth)
        samples.append((time.perf_counter() - t) * 1000)
        assert r.status_code == 200, (url, r.status_code)
    samples.sort()
    return statistics.median(samples), samples[int(0.95 * (len(samples) - 1))]


def main() -> int:
    store_rate()
    fill()
    catch_up(DB)  # these are query timings over a complete full-text index (a dashboard indexes in the background)
    client = create_app(DB, "bench").test_client()
    deep = client.get("/api/alerts?limit=50&before=500000", headers={"Authorization": "Bearer bench"}).get_json()
    cases = [
        ("alerts list, newest page", "/api/alerts?limit=50"),
        ("alerts list, page 10,000 deep (keyset)", f"/api/alerts?limit=50&before={deep['alerts'][-1]['id']}"),
        ("filtered: type + source CIDR", "/api/alerts?limit=50&type=syn_flood&src=10.3.0.0/16"),
        ("filtered: severity + port", "/api/alerts?limit=50&severity=1&port=4444"),
        ("filtered: acknowledged", "/api/alerts?limit=50&acknowledged=true"),
        ("filtered: type + old time range", f"/api/alerts?limit=50&type=syn_flood&until={T0 + 100000}"),
        ("free-text search", "/api/alerts?limit=50&q=blacklist"),
        ("free-text + a type it never has", "/api/alerts?limit=50&q=blacklist&type=syn_flood"),
        ("overview API", "/api/overview"),
        ("overview page (HTML)", "/"),
    ]
    print(f"{N:,} alerts in {DB} ({os.path.getsize(DB) / 1e6:.0f} MB)")
    print(f"{'query':<42} {'p50 ms':>8} {'p95 ms':>8}")
    for label, url in cases:
        p50, p95 = timed(client, url)
        print(f"{label:<42} {p50:>8.1f} {p95:>8.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
