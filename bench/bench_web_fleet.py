"""`make bench-web` (second part): the fleet dashboard under load, on SQLite and PostgreSQL.

Fills 1,000,000 alerts from three sensors into a SQLite store (cached under var/bench/)
and into a throwaway PostgreSQL server (Debian's postgresql, started as in the tests),
both through the real sinks. Then, for each store, serves it with `wirewatch dashboard`
(waitress, the default 8 threads) while a writer process keeps adding alerts (1,000/s
from a fourth sensor), and 20 concurrent clients (keep-alive HTTP) ask each query kind in
turn; prints p50/p95 in milliseconds per query kind.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path[:0] = [HERE, os.path.join(ROOT, "tests")]

from bench_web import alert  # noqa: E402

N = int(os.environ.get("BENCH_WEB_ALERTS", "1000000"))
CLIENTS = int(os.environ.get("BENCH_WEB_CLIENTS", "20"))
REQUESTS = int(os.environ.get("BENCH_WEB_REQUESTS", "10"))  # per client and query kind
WRITER_RATE = 1000  # alerts/s while the clients run
SENSORS = ("edge-a", "edge-b", "edge-c")
TOKEN = "bench-token"
DB = os.path.join(ROOT, "var", "bench", f"fleet-{N}.db")
BATCH = 16384


def fleet_alert(i: int) -> dict:
    return alert(i) | {"host": SENSORS[i % len(SENSORS)]}


def fill(sink, n: int = N) -> float:
    start = time.perf_counter()
    for lo in range(0, n, BATCH):
        sink.write([fleet_alert(i) for i in range(lo, min(n, lo + BATCH))])
    for name in SENSORS:
        sink.write_event({"timestamp": "2026-01-01T00:00:00.000000+0000", "event_type": "stats", "host": name,
                          "in_iface": "eth0", "stats": {"uptime": 60, "final": False,
                          "capture": {"kernel_packets": 1000, "kernel_drops": 0, "kernel_ifdrops": 0},
                          "decoder": {"pkts": 1000, "bytes": 64000, "invalid": 0}}})
    return n / (time.perf_counter() - start)


def fill_sqlite() -> None:
    from wirewatch.store.sqlite_sink import SqliteSink
    if os.path.exists(DB):
        return
    os.makedirs(os.path.dirname(DB), exist_ok=True)
    tmp = DB + ".tmp"
    sink = SqliteSink(tmp, retention_days=100000, max_mb=100000)
    rate = fill(sink)
    sink.close()
    for ext in ("", "-wal", "-shm"):
        if os.path.exists(tmp + ext):
            os.replace(tmp + ext, DB + ext)
    print(f"sqlite: filled {N:,} alerts ({rate:,.0f} alerts/s through SqliteSink; the dashboard indexes them "
          "for text search when it starts)")


def fill_postgres(url: str, spool: str) -> None:
    from wirewatch.store.postgres_sink import PostgresSink
    sink = PostgresSink(url, spool, retention_days=100000)
    rate = fill(sink)
    sink.close()
    print(f"postgresql: filled {N:,} alerts ({rate:,.0f} alerts/s through PostgresSink)")


def writer(db: str) -> None:
    """A sensor writing WRITER_RATE alerts/s in batches of a tenth of a second, until killed."""
    from wirewatch import config
    from wirewatch.commands.outputs import output_sinks
    cfg = config.build([("output", "db", db, "bench"), ("general", "sensor", "writer", "bench"),
                        ("store", "state_dir", os.path.join(ROOT, "var", "bench"), "bench")])
    (sink,) = output_sinks(cfg)
    i = N
    while True:
        t = time.monotonic()
        sink.write([fleet_alert(j) | {"host": "writer"} for j in range(i, i + WRITER_RATE // 10)])
        i += WRITER_RATE // 10
        time.sleep(max(0.0, 0.1 - (time.monotonic() - t)))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(db: str) -> tuple[subprocess.Popen, int]:
    port = free_port()
    env = {**os.environ, "WIREWATCH_WEB__TOKEN": TOKEN, "WIREWATCH_STORE__STATE_DIR": os.path.join(ROOT, "var", "bench")}
    proc = subprocess.Popen([sys.executable, "-m", "wirewatch", "dashboard", "--db", db, "--port", str(port)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    started = time.perf_counter()
    for _ in range(6000):  # it serves at once; a SQLite store's pending full-text indexing goes on in the background
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            print(f"dashboard serving {time.perf_counter() - started:.1f} s after it was started", flush=True)
            return proc, port
        except OSError:
            if proc.poll() is not None:
                raise SystemExit("the dashboard exited") from None
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("the dashboard did not start")


def wait_indexed(port: int, timeout_s: float = 3600) -> None:
    """Until the dashboard's background full-text indexing is complete (the timings below
    are of a complete index); says how long it took."""
    started = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    while True:
        conn.request("GET", "/api/alerts?limit=1&q=blacklist", headers={"Authorization": f"Bearer {TOKEN}"})
        s = json.loads(conn.getresponse().read())["search"]
        if s["complete"]:
            break
        if time.perf_counter() - started > timeout_s:
            raise SystemExit(f"full-text index incomplete after {timeout_s:.0f} s: {s}")
        time.sleep(2.0)
    conn.close()
    print(f"full-text index complete {time.perf_counter() - started:.1f} s later (text search meanwhile "
          f"covered the alerts indexed so far)", flush=True)


def load(port: int, url: str) -> list[float]:
    """CLIENTS threads, each REQUESTS keep-alive requests of url; latencies in ms."""
    samples: list[float] = []
    lock = threading.Lock()
    failures: list[str] = []

    def client() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        mine = []
        for _ in range(REQUESTS):
            t = time.perf_counter()
            conn.request("GET", url, headers={"Authorization": f"Bearer {TOKEN}"})
            resp = conn.getresponse()
            resp.read()
            mine.append((time.perf_counter() - t) * 1000)
            if resp.status != 200:
                failures.append(f"{url}: {resp.status}")
        conn.close()
        with lock:
            samples.extend(mine)

    threads = [threading.Thread(target=client) for _ in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if failures:
        raise SystemExit(failures[0])
    return sorted(samples)


CASES = [
    ("alerts list, newest page", "/api/alerts?limit=50"),
    ("alerts list, deep page (keyset)", "/api/alerts?limit=50&before=500000"),
    ("filter: type + source CIDR", "/api/alerts?limit=50&type=syn_flood&src=10.3.0.0/16"),
    ("filter: source address", "/api/alerts?limit=50&src=10.5.7.9"),
    ("filter: severity + port", "/api/alerts?limit=50&severity=1&port=4444"),
    ("filter: sensor", "/api/alerts?limit=50&sensor=edge-b"),
    ("text search: a word", "/api/alerts?limit=50&q=blacklist"),
    ("text search: an address", "/api/alerts?limit=50&q=10.2.3.4"),
    ("overview (fleet)", "/api/overview"),
    ("overview (one sensor)", "/api/overview?sensor=edge-a"),
    ("sensors", "/api/sensors"),
    ("incidents", "/api/incidents"),
]


def measure(label: str, db: str) -> None:
    proc, port = serve(db)
    wait_indexed(port)
    wr = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--writer", db])
    try:
        time.sleep(1.0)
        print(f"\n{label}: {N:,} alerts, {CLIENTS} concurrent clients, a writer adding {WRITER_RATE:,} alerts/s")
        print(f"{'query':<36} {'p50 ms':>8} {'p95 ms':>8}")
        worst = 0.0
        for name, url in CASES:
            s = load(port, url)
            p50, p95 = statistics.median(s), s[int(0.95 * (len(s) - 1))]
            worst = max(worst, p95)
            print(f"{name:<36} {p50:>8.1f} {p95:>8.1f}", flush=True)
        print(f"worst p95 {worst:.1f} ms ({'under' if worst < 100 else 'over'} the 100 ms target)")
    finally:
        wr.kill()
        proc.terminate()
        proc.wait(timeout=10)


def main() -> int:
    if sys.argv[1:2] == ["--writer"]:
        writer(sys.argv[2])
        return 0
    fill_sqlite()
    measure("sqlite", DB)
    from pg_server import PgServer
    server = PgServer()
    try:
        spool = os.path.join(ROOT, "var", "bench", "fill-spool.jsonl")
        fill_postgres(server.url(), spool)
        measure("postgresql", server.url())
    finally:
        server.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
