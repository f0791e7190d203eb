"""`wirewatch tune` packets/s against `wirewatch read`'s on the same capture (target >= 0.5x).

The capture is the deterministic benchmark capture (bench/make_capture.py, cached under
var/bench/; BENCH_TUNE_CAPTURE=FILE picks another). Each command runs in a child, twice;
the faster run counts. Packets/s is the file's packet count over the child's wall time, and over
its CPU seconds (user + sys), which a machine shared with other work does not inflate.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import make_capture

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BLOCKLIST = os.path.join(ROOT, "tests", "corpus", "blacklist.txt")
RUNS = 2


def cpu_children() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def timed(cmd: list[str]) -> tuple[float, float, str]:
    """The best wall seconds and the best CPU seconds of RUNS runs, and the output."""
    best, best_cpu, out = float("inf"), float("inf"), ""
    for _ in range(RUNS):
        t, c = time.perf_counter(), cpu_children()
        r = subprocess.run(cmd, capture_output=True, text=True, check=True)
        best, best_cpu, out = min(best, time.perf_counter() - t), min(best_cpu, cpu_children() - c), r.stdout
    return best, best_cpu, out


def main() -> int:
    capture = os.environ.get("BENCH_TUNE_CAPTURE") or os.path.join(ROOT, "var", "bench", "bench.pcap")
    if not os.environ.get("BENCH_TUNE_CAPTURE"):  # make_capture builds it once (cached by version)
        subprocess.run([sys.executable, make_capture.__file__, capture], check=True, stdout=subprocess.DEVNULL)
    base = [sys.executable, "-m", "wirewatch"]
    read_s, read_cpu, out = timed([*base, "read", capture, "--quiet", "--format", "json", "--no-progress", "--logfile", "",
                         "--blacklist", BLOCKLIST])
    packets = json.loads(out)["packets"]
    tune_s, tune_cpu, out = timed([*base, "tune", capture, "--format", "json", "--no-progress", "--blacklist", BLOCKLIST])
    assert json.loads(out)["packets"] == packets, "tune and read saw different packet counts"
    print(f"bench_tune: {os.path.basename(capture)} {packets:,} packets: read {packets / read_s:,.0f} packets/s, "
          f"tune {packets / tune_s:,.0f} packets/s, tune/read {read_s / tune_s:.2f}x (target >= 0.5x); "
          f"by CPU seconds: read {read_cpu:.2f} s ({packets / read_cpu:,.0f} packets/s), "
          f"tune {tune_cpu:.2f} s ({packets / tune_cpu:,.0f} packets/s), tune/read {read_cpu / tune_cpu:.2f}x; "
          f"load average {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
