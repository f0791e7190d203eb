"""`make bench`: wirewatch read throughput and memory vs. tcpdump and a per-packet Scapy IDS.

Prints first, on the reference captures of real traffic, wirewatch next to tcpdump
(bench/reference.py); then, on the cached deterministic capture (bench/make_capture.py):
* packets/s and peak RSS of `wirewatch read` with all detectors, and with only the
  foundation detectors (blacklist, suspicious_port);
* packets/s of the Scapy per-packet way on a prefix of the same capture, and the ratios;
* with BENCH_PER_DETECTOR=1, what each detector costs (the time saved by disabling it alone);
* what enrichment costs on captures whose alerts are few: CPU seconds (user + sys) of
  `wirewatch read` with enrichment on and off, alternating BENCH_RUNS times (BENCH_ENRICH=0 skips).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import make_capture
import reference
import scapy_baseline

from wirewatch import native
from wirewatch.detect import registry

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CAPTURE = os.path.join(ROOT, "var", "bench", "bench.pcap")
MIXED = os.path.join(ROOT, "var", "bench", "mixed.pcap")  # recorded by bench/reference.py
BLOCKLIST = os.path.join(ROOT, "tests", "corpus", "blacklist.txt")
SCAPY_PACKETS = int(os.environ.get("BENCH_SCAPY_PACKETS", "30000"))
PER_DETECTOR = os.environ.get("BENCH_PER_DETECTOR", "") not in ("", "0")
ENRICH = os.environ.get("BENCH_ENRICH", "1") != "0"
RUNS = int(os.environ.get("BENCH_RUNS", "5"))
PUBLIC_LIST = os.path.join(ROOT, "var", "bench", "public-blocklist.txt")  # puts a few public sources on alerts
DETECTORS = tuple(registry.names())  # every registered detector, as the sensor runs them
FOUNDATION = ("blacklist", "suspicious_port")  # one look-up per packet, no windows
FOUNDATION_ONLY = [x for d in DETECTORS if d not in FOUNDATION for x in ("--set", f"detect.{d}.enabled=false")]


def run_wirewatch(extra: list[str], capture: str = CAPTURE) -> tuple[dict, float, float]:
    """Run `wirewatch read` in a child; return (summary, wall seconds, peak RSS MiB)."""
    cmd = [sys.executable, "-m", "wirewatch", "read", capture, "--quiet", "--format", "json",
           "--logfile", os.path.join(ROOT, "var", "bench", "alerts.json"), "--blacklist", BLOCKLIST, *extra]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, cwd=ROOT)
    out = proc.stdout.read()  # type: ignore[union-attr]
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    if status != 0:
        raise SystemExit(f"wirewatch read failed with status {status}")
    summary = json.loads(out)
    if summary.get("component_errors"):
        raise SystemExit(f"a detector raised during the run: {summary['component_errors']}")
    return summary, wall, usage.ru_maxrss / 1024


def main() -> int:
    if os.environ.get("BENCH_REFERENCE", "1") != "0":
        # in a child that imports only the standard library: a child's peak RSS starts at its parent's,
        # and this process holds numpy and Scapy (tcpdump would be charged ~50 MiB of them)
        subprocess.run([sys.executable, reference.__file__, CAPTURE], check=True)
    t = time.perf_counter()
    # in a child: building the capture takes ~0.5 GB, which every later child's peak RSS would inherit
    subprocess.run([sys.executable, make_capture.__file__, CAPTURE], check=True, stdout=subprocess.DEVNULL)
    print(f"capture: {CAPTURE} ({os.path.getsize(CAPTURE) / 1e6:.0f} MB, ready in {time.perf_counter() - t:.1f} s)")
    built = native.active()
    print("compiled hot path:", "yes (wirewatch/native)" if built else "NO: numpy reference (not built, or WIREWATCH_PURE_NUMPY)")
    rows = []
    for label, extra, all_det in (("all detectors", [], True), ("foundation (blacklist + suspicious_port)", FOUNDATION_ONLY, False)):
        summary, wall, rss = run_wirewatch(extra)
        entries = [line.split("#")[0].strip() for line in open(BLOCKLIST) if line.split("#")[0].strip()]
        n, secs = scapy_baseline.run(CAPTURE, SCAPY_PACKETS, entries, all_det)
        scapy_pps = n / secs
        rows.append((label, summary, wall, rss, scapy_pps))
        print(f"\n[{label}]")
        print(f"  packets            {summary['packets']:,}")
        print(f"  wirewatch          {summary['packets_per_s']:,} packets/s (pipeline), "
              f"{summary['packets'] / wall:,.0f} packets/s (whole process, {wall:.2f} s)")
        print(f"  peak RSS           {rss:,.0f} MiB")
        print(f"  scapy per-packet   {scapy_pps:,.0f} packets/s (first {n:,} packets)")
        print(f"  ratio              {summary['packets_per_s'] / scapy_pps:,.0f}x")
        print(f"  alerts             {summary['alerts']}")
        evicted = {k: v for k, v in summary["detector_state"].items() if k.endswith("evicted") and v}
        print(f"  evictions          {evicted or 'none'}")
    if PER_DETECTOR:
        per_detector_costs()
    if ENRICH:
        enrichment_cost()
    return 0


def pipeline_seconds(extra: list[str], capture: str, runs: int = 3) -> float:
    """Best of `runs` pipeline times (the machine's noise only ever adds time)."""
    return min(s["packets"] / s["packets_per_s"] for s, _, _ in (run_wirewatch(extra, capture) for _ in range(runs)))


def per_detector_costs() -> None:
    """What each detector costs: the pipeline time it saves when it alone is disabled, on the
    recorded mixed capture when there is one (bench/reference.py), else on the generated one."""
    capture = MIXED if os.path.exists(MIXED) else CAPTURE
    base = pipeline_seconds([], capture)
    print(f"\n[cost of each detector on {os.path.basename(capture)}] all detectors: {base:.3f} s pipeline (best of 3)")
    for name in DETECTORS:
        without = pipeline_seconds(["--set", f"detect.{name}.enabled=false"], capture)
        print(f"  {name:<18} {base - without:6.3f} s")
    print("  (syn_flood and failed_handshake share the handshake tracker: alone, each saves only its own part)")


def cpu_seconds(capture: str, extra: list[str]) -> tuple[float, dict]:
    """User + sys CPU seconds of one `wirewatch read` child, and its summary."""
    cmd = [sys.executable, "-m", "wirewatch", "read", capture, "--quiet", "--format", "json", "--logfile", "", *extra]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, cwd=ROOT)
    out = proc.stdout.read()  # type: ignore[union-attr]
    _, status, usage = os.wait4(proc.pid, 0)
    if status != 0:
        raise SystemExit(f"wirewatch read failed with status {status}")
    return usage.ru_utime + usage.ru_stime, json.loads(out)


def median(values: list[float]) -> float:
    v = sorted(values)
    return (v[len(v) // 2] + v[(len(v) - 1) // 2]) / 2


def enrichment_cost() -> None:
    """Enrichment on vs off (`enrich.enabled`), alternating, on captures whose alerts are few:
    the generated capture (its alerts' addresses are private or reserved: labels only), the
    same with a blocklist that puts a few public flood sources on alerts (the default data is
    mapped and looked up), and the recorded mixed capture when there is one."""
    with open(PUBLIC_LIST, "w") as fh:
        fh.write("10.10.0.99\n45.0.0.0/16\n")
    cases = [("bench.pcap", CAPTURE, ["--blacklist", BLOCKLIST]),
             ("bench.pcap, public sources listed", CAPTURE, ["--blacklist", PUBLIC_LIST])]
    if os.path.exists(MIXED):
        cases.append(("mixed.pcap", MIXED, ["--blacklist", BLOCKLIST]))
    print(f"\n[enrichment on vs off: CPU seconds (user + sys) of wirewatch read, {RUNS} alternating runs each, "
          f"load average {os.getloadavg()[0]:.1f}]")
    for label, capture, extra in cases:
        on: list[float] = []
        off: list[float] = []
        summary: dict = {}
        for _ in range(RUNS):
            secs, summary = cpu_seconds(capture, extra)
            on.append(secs)
            off.append(cpu_seconds(capture, [*extra, "--set", "enrich.enabled=false"])[0])
        m_on, m_off = median(on), median(off)
        state = summary["detector_state"]
        diffs = [100 * (a - b) / b for a, b in zip(on, off)]  # each run against the one right after it
        print(f"  {label:<36} on {m_on:6.3f} s  off {m_off:6.3f} s  ({100 * (m_on - m_off) / m_off:+.1f} %; "
              f"pairs {min(diffs):+.1f} .. {max(diffs):+.1f} %)  alerts {sum(summary['alerts'].values())}, public addresses looked up {state.get('enrich_lookups', 0)}")
    print(f"  (load average {os.getloadavg()[0]:.1f} at the end)")


if __name__ == "__main__":
    sys.exit(main())
