"""worker.py: `wirewatch read` split over two processes gives the alerts of one process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from conftest import cli

from wirewatch.capture.pcapfile import read_batches
from wirewatch.config import Config
from wirewatch.decode import COLUMN_DTYPES
from wirewatch.detect.registry import default_detectors
from wirewatch.engine import Engine
from wirewatch.slices import decode_raw
from wirewatch.worker import WORKER_SHARE, RemoteDetector, SliceSlot, split

HERE = Path(__file__).resolve().parent
CORPUS = sorted((HERE / "corpus").glob("*.pcap"))
BUSY = sorted((HERE / "corpus-busy").glob("*.pcap.xz"))
SAME = ("packets", "bytes", "alerts", "suppressed", "decode_errors", "non_ip_frames", "detector_state",
        "top_sources", "component_errors")


def read(tmp_path: Path, workers: int, *files: str, stdin: str | None = None) -> tuple[list[dict], dict, str]:
    log = tmp_path / f"w{workers}.json"
    args = ["read", *files, "--quiet", "--no-progress", "--format", "json", "--logfile", str(log),
            "--blacklist", str(HERE / "corpus" / "blacklist.txt"), "--set", f"general.workers={workers}"]
    if stdin is None:
        p = cli(*args)
    else:
        with open(stdin, "rb") as fh:
            p = subprocess.run([sys.executable, "-m", "wirewatch", *args], stdin=fh, capture_output=True, text=True,
                               env={**os.environ, "WIREWATCH_OUTPUT__DB": ""}, timeout=300)
    assert p.returncode in (0, 2), p.stderr
    alerts = []
    for line in log.read_text().splitlines():
        rec = json.loads(line)
        if rec["event_type"] == "alert":
            rec.pop("timestamp")  # when it was written
            alerts.append(rec)
    summary = json.loads(p.stdout)
    summary["returncode"] = p.returncode
    return alerts, summary, p.stderr


def assert_alike(one: tuple[list[dict], dict, str], two: tuple[list[dict], dict, str]) -> None:
    assert two[0] == one[0]
    for key in SAME + ("returncode",):
        assert two[1][key] == one[1][key], key


def test_the_corpus_split_over_two_processes_gives_the_alerts_of_one(tmp_path):
    files = [str(f) for f in CORPUS]
    one, two = read(tmp_path, 1, *files), read(tmp_path, 2, *files)
    assert "worker" not in one[1]
    assert two[1]["worker"]["status"] == 0 and two[1]["worker"]["cpu_s"] > 0
    # the worker's share did find things: the comparison is not of empty lists
    assert {a["alert"]["category"] for a in two[0]} and set(two[1]["alerts"]) & WORKER_SHARE
    assert set(two[1]["alerts"]) - WORKER_SHARE
    assert_alike(one, two)


def test_compressed_busy_captures_alike(tmp_path):
    """.xz captures go through the streaming reader, in both processes."""
    files = [str(f) for f in BUSY]
    one, two = read(tmp_path, 1, *files), read(tmp_path, 2, *files)
    assert two[1]["worker"]["status"] == 0 and len(two[0]) > 0
    assert_alike(one, two)


def test_a_damaged_file_is_reported_once_and_the_next_file_read_in_both(tmp_path):
    scan = HERE / "corpus" / "dev01_nmap_syn_top100.pcap"
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(scan.read_bytes()[: scan.stat().st_size * 2 // 3 + 7])  # inside a record
    files = (str(cut), str(HERE / "corpus" / "dev07_nmap_ping_sweep.pcap"))
    one, two = read(tmp_path, 1, *files), read(tmp_path, 2, *files)
    assert two[1]["returncode"] == 2 and two[2].count("cut.pcap") == 1, two[2]
    assert {"port_scan", "host_sweep"} <= set(two[1]["alerts"])
    assert_alike(one, two)


def test_standard_input_is_split_too(tmp_path):
    """The engine alone reads: a pipe, read once, feeds both processes."""
    scan = str(HERE / "corpus" / "dev01_nmap_syn_top100.pcap")
    alone = read(tmp_path, 1, scan)
    piped = read(tmp_path, 2, "-", stdin=scan)
    assert piped[1]["worker"]["status"] == 0
    assert piped[0] and [a["alert"] for a in piped[0]] == [a["alert"] for a in alone[0]]


class Failing:
    """A detector of the worker's share that raises on every slice after the first."""

    name = "host_sweep"

    def __init__(self) -> None:
        self.slices = 0

    def observe(self, batch):
        self.slices += 1
        if self.slices > 1:
            raise ValueError(f"slice {self.slices}")
        return []

    def expire(self, now): pass
    def tick(self, now): return []
    def finish(self, now): return []
    def reconfigure(self, cfg, root=None): pass
    def stats(self): return {"failing_slices": self.slices}
    def near_misses(self, now): return []


class Dying(Failing):
    """A detector of the worker's share whose process ends at its second slice."""

    name = "traffic_burst"

    def observe(self, batch):
        self.slices += 1
        if self.slices > 1:
            os._exit(3)
        return []


def run_split(detectors, path: Path) -> tuple[list[dict], Engine, dict]:
    engine = Engine(Config(), (), detectors)
    link = split(engine)
    assert [type(d) for d in engine.detectors].count(RemoteDetector) == len(
        [d for d in detectors if d.name in WORKER_SHARE])
    return feed_split(engine, link, path), engine, link.report()


def feed_split(engine: Engine, link, path: Path, size: int = 4096) -> list[dict]:
    """The alerts of `path` read `size` packets at a time through a split engine; the worker
    reaped after."""
    alerts: list[dict] = []
    try:
        for raw in read_batches(str(path), size):
            alerts += engine.feed(raw)
        alerts += engine.flush()
    finally:
        link.close()
    return alerts


def real(name: str, extra) -> list:
    built = [d for d in default_detectors(Config()) if d.name == name]
    assert built
    return [*built, extra]


def test_a_detector_failing_in_the_worker_is_counted_and_the_others_go_on(tmp_path, capfd):
    path = HERE / "corpus" / "dev01_nmap_syn_top100.pcap"
    failing = Failing()
    alerts, engine, report = run_split(real("port_scan", failing), path)
    assert failing.slices == 0  # the engine's copy never ran: the worker's did
    assert report["status"] == 0
    assert any(a["type"] == "port_scan" for a in alerts)
    summary_state = engine.detectors[1].stats()
    assert summary_state["failing_slices"] >= 2
    err = capfd.readouterr().err
    assert err.count("detector host_sweep failed: ValueError: slice 2") == 1


def test_a_lost_worker_is_reported_and_the_engine_goes_on(tmp_path, capfd):
    path = HERE / "corpus" / "dev10_hping3_syn_flood.pcap"
    alerts, engine, report = run_split(real("syn_flood", Dying()), path)
    assert report["status"] == 3
    assert engine.stats.component_errors["detector traffic_burst"] >= 1
    assert any(a["type"] == "syn_flood" for a in alerts)  # the engine's own detector went on
    err = capfd.readouterr().err
    assert err.count("detector traffic_burst failed: WorkerLost: the detector worker ended early (exit status 3)") == 1


def test_without_two_cpus_or_a_share_one_process(tmp_path):
    scan = str(HERE / "corpus" / "dev01_nmap_syn_top100.pcap")
    off = [f"--set=detect.{name}.enabled=false" for name in sorted(WORKER_SHARE)]
    _, summary, _ = read(tmp_path, 2, scan, *off)
    assert "worker" not in summary and "port_scan" not in summary["alerts"]
    auto = ["read", scan, "--quiet", "--format", "json", "--logfile", ""]
    assert "worker" in json.loads(cli(*auto).stdout)  # 0 = auto: two CPUs here
    one_cpu = subprocess.run(["taskset", "-c", "0", sys.executable, "-m", "wirewatch", *auto], capture_output=True,
                             text=True, env={**os.environ, "WIREWATCH_OUTPUT__DB": ""}, timeout=300)
    assert one_cpu.returncode == 0 and "worker" not in json.loads(one_cpu.stdout)


def test_the_slot_gives_the_worker_the_slice_read_only():
    engine = Engine(Config(), (), [])
    batches = [b for raw in read_batches(str(CORPUS[0]), 4096) for b in engine.slicer.add(decode_raw(raw, 8))]
    batch = batches[0]
    slot = SliceSlot(len(batch) + 3)
    slot.put(batch)
    seen = slot.batch(len(batch), 7)
    assert seen.seq == 7 and len(seen) == len(batch) > 0
    for name in COLUMN_DTYPES:
        assert (getattr(seen, name) == getattr(batch, name)).all(), name
        assert not getattr(seen, name).flags.writeable  # a detector cannot change what the engine wrote
    assert seen.select(seen.proto == 6).src_lo.tolist() == batch.select(batch.proto == 6).src_lo.tolist()


def test_the_reads_of_a_slice_are_joined_straight_into_the_slot():
    """Many small reads per slice: the engine writes them into the worker's slot (no
    concatenated copy first); the alerts are those of one process."""
    path = HERE / "corpus" / "dev01_nmap_syn_top100.pcap"
    cfg = Config()
    engine = Engine(cfg, (), default_detectors(cfg))
    link = split(engine)
    placed: list[bool] = []
    join = engine.slicer.join

    def watched(parts):
        batch = join(parts)
        slot = link.slots[(link.submitted + 1) % len(link.slots)]
        placed.append(len(parts) > 1 and np.shares_memory(batch.ts, np.frombuffer(slot.mapping, np.uint8)))
        return batch

    engine.slicer.join = watched
    alerts = feed_split(engine, link, path, 64)
    one = Engine(cfg, (), default_detectors(cfg))
    alone = [a for raw in read_batches(str(path), 64) for a in one.feed(raw)] + one.flush()
    assert any(placed) and link.report()["status"] == 0
    assert any(a["alert"]["signature"].startswith("WIREWATCH port scan") for a in alerts)
    assert [a["alert"] for a in alerts] == [a["alert"] for a in alone]


def test_slices_longer_than_the_slot_go_down_the_pipe(tmp_path):
    """A slice limit raised after the fork: the columns travel in the message; same alerts."""
    path = HERE / "corpus" / "dev01_nmap_syn_top100.pcap"
    small = Config()
    engine = Engine(small, (), default_detectors(small))
    engine.slice_packets = 16
    link = split(engine)
    engine.slice_packets = 4096  # slices of up to 4096 packets, a slot of 16
    alerts = feed_split(engine, link, path)
    one = Engine(small, (), default_detectors(small))
    alone = [a for raw in read_batches(str(path), 4096) for a in one.feed(raw)] + one.flush()
    assert link.report()["status"] == 0 and not engine.stats.component_errors
    assert any(a["alert"]["signature"].startswith("WIREWATCH port scan") for a in alerts)
    assert [a["alert"] for a in alerts] == [a["alert"] for a in alone]


def test_a_read_without_packets_ends_the_worker_cleanly(tmp_path):
    empty = tmp_path / "empty.pcap"
    empty.write_bytes((HERE / "corpus" / "dev01_nmap_syn_top100.pcap").read_bytes()[:24])  # the file header alone
    _, summary, err = read(tmp_path, 2, str(empty))
    assert summary["packets"] == 0 and summary["worker"]["status"] == 0, err
    assert summary["worker"]["cpu_s"] >= 0 and summary["worker"]["peak_rss_kib"] > 0
