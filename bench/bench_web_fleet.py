"""`make bench-web` (second part): the fleet dashboard under load, on SQLite and PostgreSQL.

Fills 1,000,000 alerts from three sensors into a SQLite store and into a PostgreSQL
cluster (Debian's postgresql, started as in the tests), both through the real sinks, and
keeps both for the next run (under BENCH_WEB_DIR, default var/bench/: fleet-N.db, pg-N/).
Then, for each store (BENCH_WEB_STORES, default "sqlite,postgresql"), serves it with
`wirewatch dashboard` (waitress, the default 8 threads) while a writer process keeps adding
alerts (1,000/s from a fourth sensor), and 20 concurrent clients (keep-alive HTTP) ask each
query kind in turn; prints p50/p95 in milliseconds per query kind over all requests, and how
many failed (timeouts, errors, a status other than 200: each counts as slower than any answer),
and the CPU milliseconds per request of the dashboard process (and of the PostgreSQL server,
less its writer's share): what a request costs whatever else shares the machine.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path[:0] = [HERE, os.path.join(ROOT, "tests")]

from bench_web import T0, alert  # noqa: E402

N = int(os.environ.get("BENCH_WEB_ALERTS", "1000000"))
CLIENTS = int(os.environ.get("BENCH_WEB_CLIENTS", "20"))
REQUESTS = int(os.environ.get("BENCH_WEB_REQUESTS", "10"))  # per client and query kind
WRITER_RATE = 1000  # alerts/s while the clients run
SENSORS = ("edge-a", "edge-b", "edge-c")
TOKEN = "bench-token"
# the filled stores are kept here and reused (BENCH_WEB_DIR; SQLite fleet-N.db, PostgreSQL's cluster pg-N/)
DIR = os.environ.get("BENCH_WEB_DIR") or os.path.join(ROOT, "var", "bench")
DB = os.path.join(DIR, f"fleet-{N}.db")
PG_DIR = os.path.join(DIR, f"pg-{N}")
TIMEOUT_S = 30.0  # a request not answered in this long counts as a timeout
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
                        ("store", "state_dir", DIR, "bench")])
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
    env = {**os.environ, "WIREWATCH_WEB__TOKEN": TOKEN, "WIREWATCH_STORE__STATE_DIR": DIR}
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


def load(port: int, url: str) -> tuple[list[float], dict[str, int]]:
    """CLIENTS threads, each REQUESTS keep-alive requests of url: the latencies in ms of the
    answered ones (200), and how many were not (`timeout` after TIMEOUT_S, `status N`,
    `error` for a dropped connection); a client reconnects after a failure. (failures'
    `bounded`: answers that searched only part of the store, counted apart, not as failures.)"""
    samples: list[float] = []
    failures: dict[str, int] = {}
    partial = [0]
    lock = threading.Lock()

    def client() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT_S)
        mine: list[float] = []
        failed: list[str] = []
        bounded: list[int] = []
        for _ in range(REQUESTS):
            t = time.perf_counter()
            try:
                conn.request("GET", url, headers={"Authorization": f"Bearer {TOKEN}"})
                resp = conn.getresponse()
                body = resp.read()
            except TimeoutError:
                failed.append("timeout")
            except (OSError, http.client.HTTPException):
                failed.append("error")
            else:
                if resp.status == 200:
                    mine.append((time.perf_counter() - t) * 1000)
                    if b'"bounded"' in body:
                        bounded.append(1)
                    continue
                failed.append(f"status {resp.status}")
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT_S)
        conn.close()
        with lock:
            samples.extend(mine)
            for kind in failed:
                failures[kind] = failures.get(kind, 0) + 1
            if bounded:
                partial[0] += len(bounded)

    threads = [threading.Thread(target=client) for _ in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sorted(samples), failures | ({"bounded": partial[0]} if partial[0] else {})


CASES = [
    ("alerts list, newest page", "/api/alerts?limit=50"),
    ("alerts list, deep page (keyset)", "/api/alerts?limit=50&before=500000"),
    ("filter: type + source CIDR", "/api/alerts?limit=50&type=syn_flood&src=10.3.0.0/16"),
    ("filter: source address", "/api/alerts?limit=50&src=10.5.7.9"),
    ("filter: severity + port", "/api/alerts?limit=50&severity=1&port=4444"),
    ("filter: sensor", "/api/alerts?limit=50&sensor=edge-b"),
    ("filter: acknowledged", "/api/alerts?limit=50&acknowledged=true"),
    ("filter: type + sensor never met", "/api/alerts?limit=50&type=port_scan&sensor=edge-c"),
    ("filter: type + wide time range", f"/api/alerts?limit=50&type=syn_flood&since={T0}"),
    ("filter: type + old time range", f"/api/alerts?limit=50&type=syn_flood&until={T0 + 100000}"),
    ("text search: a word", "/api/alerts?limit=50&q=blacklist"),
    ("text search: an address", "/api/alerts?limit=50&q=10.2.3.4"),
    ("text + a type it never has", "/api/alerts?limit=50&q=blacklist&type=syn_flood"),
    ("text + a sensor it never has", "/api/alerts?limit=50&q=blacklist&sensor=edge-b"),
    ("overview (fleet)", "/api/overview"),
    ("overview (one sensor)", "/api/overview?sensor=edge-a"),
    ("sensors", "/api/sensors"),
    ("incidents", "/api/incidents"),
]


def cpu_s(pids: list[int]) -> dict[int, float]:
    """CPU seconds (user + system) of each of these processes still running."""
    out = {}
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[pid] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return out


def family(pid: int) -> list[int]:
    """pid and its children (a PostgreSQL server's postmaster and its backends)."""
    kids = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                        kids.append(int(d))
            except OSError:
                continue
    return [pid, *kids]


def spent(before: dict[int, float], after: dict[int, float]) -> float:
    return sum(t - before.get(pid, 0.0) for pid, t in after.items())


def measure(label: str, db: str, server_pid: int | None = None) -> None:
    """server_pid: the PostgreSQL server's postmaster, whose CPU (with its backends') is
    counted per request too (less what it spent on the writer alone, measured before)."""
    proc, port = serve(db)
    wait_indexed(port)
    wr = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--writer", db])
    servers = (lambda: family(server_pid)) if server_pid else list
    try:
        time.sleep(1.0)
        idle = cpu_s(servers()), time.monotonic()
        time.sleep(3.0)
        writer_cpu = spent(idle[0], cpu_s(servers())) / (time.monotonic() - idle[1])  # the writer's share, per s
        print(f"\n{label}: {N:,} alerts, {CLIENTS} concurrent clients, a writer adding {WRITER_RATE:,} alerts/s; "
              f"load average {os.getloadavg()[0]:.1f}")
        print(f"{'query':<36} {'p50 ms':>8} {'p95 ms':>8} {'failed':>7} {'CPU ms/req':>11}"
              + (f" {'+server':>8}" if server_pid else ""))
        worst, failed = 0.0, 0
        for name, url in CASES:
            dash0, srv0, t0 = cpu_s([proc.pid]), cpu_s(servers()), time.monotonic()
            s, failures = load(port, url)
            bounded = failures.pop("bounded", 0)  # answered, but only part of the store searched
            n = CLIENTS * REQUESTS
            dash = spent(dash0, cpu_s([proc.pid])) / n * 1000
            srv = max(0.0, spent(srv0, cpu_s(servers())) - writer_cpu * (time.monotonic() - t0)) / n * 1000
            n_failed = sum(failures.values())
            failed += n_failed
            # a failed request counts as slower than any answered one: p95 is over all requests
            ranked = s + [float("inf")] * n_failed
            p50, p95 = ranked[len(ranked) // 2], ranked[int(0.95 * (len(ranked) - 1))]
            worst = max(worst, p95)
            why = ", ".join(f"{k} {v}" for k, v in sorted(failures.items()))
            print(f"{name:<36} {p50:>8.1f} {p95:>8.1f} {n_failed:>7} {dash:>11.1f}"
                  + (f" {srv:>8.1f}" if server_pid else "") + (f"  ({why})" if why else "")
                  + (f"  [bounded answers: {bounded}]" if bounded else ""), flush=True)
        print(f"worst p95 {worst:.1f} ms ({'under' if worst < 100 else 'over'} the 100 ms target); "
              f"{failed} of {len(CASES) * CLIENTS * REQUESTS} requests failed (timeout {TIMEOUT_S:.0f} s)")
    finally:
        wr.kill()
        proc.terminate()
        proc.wait(timeout=10)


def main() -> int:
    if sys.argv[1:2] == ["--writer"]:
        writer(sys.argv[2])
        return 0
    stores = os.environ.get("BENCH_WEB_STORES", "sqlite,postgresql").split(",")  # which stores to measure
    if "sqlite" in stores:
        fill_sqlite()
        measure("sqlite", DB)
    if "postgresql" in stores:
        from pg_server import PgServer
        server = PgServer(keep=PG_DIR)
        try:
            filled = os.path.join(PG_DIR, "filled")
            if not os.path.exists(filled):
                fill_postgres(server.url(), os.path.join(DIR, "fill-spool.jsonl"))
                open(filled, "w").close()
            with open(server.data / "postmaster.pid") as f:
                postmaster = int(f.readline())
            measure("postgresql", server.url(), postmaster)
        finally:
            server.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
