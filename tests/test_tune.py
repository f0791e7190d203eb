"""tune.py: one recording pass gives, at the threshold in effect, exactly the distinct alerts
`read` raises, on every capture of both corpora; bad --grid values are one clear error."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import CORPUS, cli
from crafted import many_sources_capture

from wirewatch.capture.pcapfile import read_batches
from wirewatch.config import Config, ConfigError, load
from wirewatch.engine import Engine
from wirewatch.tune import grids, lowered, parse_grid, record

BUSY = CORPUS.parent / "corpus-busy"


def captures() -> list[Path]:
    out = []
    for folder in (CORPUS, BUSY):
        if folder.exists():
            labels = json.loads((folder / "labels.json").read_text())
            out += [folder / e["file"] for e in labels["pcaps"] if (folder / e["file"]).exists()]
    return out


CAPTURES = captures()


def config_for(path: Path) -> Config:
    return load(None, [("detect.blacklist", "files", [str(path.parent / "blacklist.txt")], "test")])


def read_keys(cfg: Config, path: Path) -> dict[str, set[int]]:
    """What `read` raises: per detector type, the distinct alerts (flow_id = detector type and
    finding identifier, what the alert manager deduplicates on; suppressed repeats not counted)."""
    engine = Engine(cfg)
    alerts = []
    for raw in read_batches(str(path), cfg.general.batch_size):
        alerts += engine.feed(raw)
    alerts += engine.flush()
    engine.close()
    out: dict[str, set[int]] = {}
    for a in alerts:
        out.setdefault(a["type"], set()).add(a["flow_id"])
    return out


def tune_keys(cfg: Config, path: Path) -> dict[str, set[int]]:
    """What tune says fires at the value in effect, per detector type, as flow_ids."""
    from wirewatch.schema import flow_id

    sweep = grids(cfg)
    peaks = record(cfg, [str(path)], sweep, progress=False)
    out: dict[str, set[int]] = {}
    for g in sweep:
        out.setdefault(g.detector, set()).update(flow_id(k) for k in peaks.at(g.label, g.current))
    for name, table in peaks.untuned.items():
        out.setdefault(name, set()).update(flow_id(k) for k in table.keys)
    return {k: v for k, v in out.items() if v}


def test_both_corpora_are_swept():
    assert len(CAPTURES) >= 30


@pytest.mark.parametrize("path", CAPTURES, ids=[p.name for p in CAPTURES])
def test_count_at_the_threshold_in_effect_is_what_read_raises(path):
    cfg = config_for(path)
    tuned, read = tune_keys(cfg, path), read_keys(cfg, path)
    # read's alert manager folds a scanner's watched-port probes into its scan alert (correlate.py);
    # tune counts findings before it, so its suspicious_port keys are a superset of read's
    assert read.pop("suspicious_port", set()) <= tuned.pop("suspicious_port", set())
    assert tuned == read


def test_a_grid_value_between_counts_what_read_raises_with_that_threshold(tmp_path):
    """Not only at the default: port_scan at 3 ports on a capture with a small UDP scan."""
    path = CORPUS / "dev03_nmap_udp_small.pcap"
    cfg = load(None, [("detect.port_scan", "threshold", 3, "test")])
    assert tune_keys(cfg, path).get("port_scan") == read_keys(cfg, path).get("port_scan")


def test_recording_pass_lowers_only_the_swept_thresholds_and_pins_derived_ones():
    cfg = load()
    run = lowered(cfg, grids(cfg, ["port_scan.threshold=4:30:2"]))
    assert run.detect.port_scan.threshold == 4
    assert run.detect.distributed_scan.member_threshold == cfg.detect.port_scan.threshold
    assert run.detect.port_scan.window == cfg.detect.port_scan.window


@pytest.mark.parametrize(("grid", "message"), [
    ("port_scan.threshold=5:50", "expected DETECTOR.KEY=LO:HI:STEP"),
    ("port_scan.threshold=a:50:5", "must be numbers"),
    ("port_scan.threshold=50:5:5", "HI is below LO"),
    ("port_scan.threshold=5:50:0", "STEP must be above 0"),
    ("port_scan.threshold=5.5:50:5", "whole number"),
    ("port_scan.threshold=1:50:1", "below the setting's minimum 2"),
    ("port_scan.threshold=2:1e9:1", "at most 1000"),
    ("port_scan.window=1:5:1", "not a tunable threshold"),
    ("nosuch.threshold=1:5:1", "not a tunable threshold"),
    ("port_scan.threshold=nan:5:1", "finite"),
])
def test_bad_grid_is_one_clear_line_and_exit_2(grid, message):
    r = cli("tune", str(CORPUS / "dev01_nmap_syn_top100.pcap"), "--grid", grid)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and grid in lines[0], r.stderr
    assert r.stdout == ""


def test_grid_parsing_accepts_the_section_prefix():
    assert parse_grid("detect.syn_flood.threshold=100:500:100") == ("syn_flood", "threshold", (100.0, 500.0, 100.0))
    with pytest.raises(ConfigError):
        grids(load(), ["syn_flood.max_completion=0:1:0.1"])


def test_tune_shows_progress_on_a_terminal_for_a_big_capture(tmp_path):
    """On a multi-gigabyte capture tune shows progress as read does: the same bar on standard
    error when it is a terminal and the capture is big (progress.MIN_BYTES), ending at 100 % (the
    walker once left the file header out of the bytes consumed: 99 %); none with --no-progress."""
    import os
    import pty
    import struct
    import subprocess
    import sys

    from scapy.layers.inet import IP, UDP
    from scapy.layers.l2 import Ether

    from wirewatch.progress import MIN_BYTES
    frame = bytes(Ether() / IP(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=5000, dport=6000) / (b"x" * 1400))
    big = tmp_path / "big.pcap"
    count = MIN_BYTES // (16 + len(frame)) + 1000
    with open(big, "wb") as fh:
        fh.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        for i in range(count):
            fh.write(struct.pack("<IIII", 1_767_225_600 + i // 1000, (i % 1000) * 1000, len(frame), len(frame)) + frame)
    shown = {}
    for flags in ((), ("--no-progress",)):
        main, sub = pty.openpty()
        try:
            proc = subprocess.run([sys.executable, "-m", "wirewatch", "tune", str(big), "--detector", "port_scan", *flags],
                                  stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=sub, timeout=300,
                                  env={**os.environ, "WIREWATCH_OUTPUT__DB": ""})
            os.close(sub)
            err = b""
            while True:
                try:
                    chunk = os.read(main, 65536)
                except OSError:  # EIO: the terminal's other side is closed
                    break
                if not chunk:
                    break
                err += chunk
        finally:
            os.close(main)
        assert proc.returncode == 0, err
        shown[flags] = err.decode(errors="replace")
    assert "big.pcap [" in shown[()] and "100%" in shown[()]
    assert "big.pcap [" not in shown[("--no-progress",)]


CAP = 16  # alerts.max_identifiers in these tests: the smallest cap a setting takes


def test_peak_tables_stay_at_the_cap_evicting_the_lowest_peaks_and_the_count_in_effect_stays_exact(tmp_path,
                                                                                                    monkeypatch):
    """A many-source capture against a small alerts.max_identifiers: no table of peaks ever holds
    more than the cap, evictions are counted and drop the lowest peaks (the 7-port sources), so
    the three 30-port scanners are kept and the count at port_scan's default threshold is still
    what `read` raises with the same config; below the highest peak evicted it is a lower bound."""
    from wirewatch import tune

    path = Path(many_sources_capture(tmp_path / "many.pcap"))
    cfg = load(None, [("alerts", "max_identifiers", CAP, "test")])
    largest: dict[int, int] = {}
    keep = tune.PeakTable.keep

    def watched(self, key, figure, source):
        keep(self, key, figure, source)
        largest[id(self)] = max(largest.get(id(self), 0), len(self))

    monkeypatch.setattr(tune.PeakTable, "keep", watched)
    peaks = record(cfg, [str(path)], grids(cfg), progress=False)
    assert largest and max(largest.values()) <= CAP
    scans = peaks.table("port_scan.threshold")
    assert scans.cap == CAP and scans.evicted >= 83 - CAP
    assert scans.floor is not None and 5 <= scans.floor <= 7  # only the 7-port sources' peaks were dropped
    assert {k[1] for k in scans.at(20)} == {"10.66.0.20", "10.66.0.50", "10.66.0.79"}
    assert scans.exact_at(20) and not scans.exact_at(scans.floor)
    knocks = peaks.untuned["suspicious_port"]
    assert len(knocks) <= CAP and knocks.evicted >= 40 - CAP
    monkeypatch.undo()
    tuned, read = tune_keys(cfg, path), read_keys(cfg, path)
    # suspicious_port: read folds the 40 knocks into one storm alert; tune kept at most CAP of them (above)
    tuned.pop("suspicious_port", None), read.pop("suspicious_port", None)
    assert tuned == read and len(read["port_scan"]) == 3


def test_tune_output_says_how_many_keys_were_evicted_and_which_counts_are_lower_bounds(tmp_path):
    path = many_sources_capture(tmp_path / "many.pcap")
    args = ("tune", path, "--no-progress", "--set", f"alerts.max_identifiers={CAP}", "--detector")
    r = cli(*args, "port_scan", "--format", "json")
    assert r.returncode == 0, r.stderr
    (t,) = json.loads(r.stdout)["thresholds"]
    assert t["evicted"] >= 83 - CAP and t["exact_above"] == pytest.approx(7, abs=2)
    assert f"{t['evicted']:,} evictions of alert keys (at most {CAP} kept, alerts.max_identifiers" in t["capped"]
    rows = {r["value"]: r for r in t["rows"]}
    assert rows[5]["at_least"] and rows[5]["alerts"] <= CAP  # 83 keys fire at 5; the table kept at most 16
    assert not rows[10]["at_least"] and rows[10]["alerts"] == 3
    assert rows[20]["current"] and not rows[20]["at_least"] and rows[20]["alerts"] == 3
    r = cli(*args, "suspicious_port")
    assert r.returncode == 0, r.stderr
    (line,) = [x for x in r.stdout.splitlines() if x.strip().startswith("suspicious_port:")]
    assert line.split()[1:3] == ["at", "least"] and 0 < int(line.split()[3]) <= CAP
    assert "the count is a lower bound" in r.stdout
    r = cli(*args, "port_scan")
    five = next(x for x in r.stdout.splitlines() if x.split()[:1] == ["5"])
    assert five.split()[1].startswith(">=")
    assert "capped:" in r.stdout and "are lower bounds" in r.stdout
