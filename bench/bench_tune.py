"""`wirewatch tune` packets/s against `wirewatch read`'s on the same capture (target >= 0.5x).

The capture is the deterministic benchmark capture (bench/make_capture.py, cached under
var/bench/; BENCH_TUNE_CAPTURE=FILE picks another). Each command runs in a child, twice;
the faster run counts. Packets/s is the file's packet count over the child's wall time.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import make_capture

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BLOCKLIST = os.path.join(ROOT, "tests", "corpus", "blacklist.txt")
RUNS = 2


def timed(cmd: list[str]) -> tuple[float, str]:
    best, out = float("inf"), ""
    for _ in range(RUNS):
        t = time.perf_counter()
        r = subprocess.run(cmd, capture_output=True, text=True, check=True)
        best, out = min(best, time.perf_counter() - t), r.stdout
    return best, out


def main() -> int:
    capture = os.environ.get("BENCH_TUNE_CAPTURE") or os.path.join(ROOT, "var", "bench", "bench.pcap")
    if not os.environ.get("BENCH_TUNE_CAPTURE"):  # make_capture builds it once (cached by version)
        subprocess.run([sys.executable, make_capture.__file__, capture], check=True, stdout=subprocess.DEVNULL)
    base = [sys.executable, "-m", "wirewatch"]
    read_s, out = timed([*base, "read", capture, "--quiet", "--format", "json", "--no-progress", "--logfile", "",
                         "--blacklist", BLOCKLIST])
    packets = json.loads(out)["packets"]
    tune_s, out = timed([*base, "tune", capture, "--format", "json", "--no-progress", "--blacklist", BLOCKLIST])
    assert json.loads(out)["packets"] == packets, "tune and read saw different packet counts"
    ratio = read_s / tune_s
    print(f"bench_tune: {os.path.basename(capture)} {packets:,} packets: read {packets / read_s:,.0f} packets/s, "
          f"tune {packets / tune_s:,.0f} packets/s, tune/read {ratio:.2f}x (target >= 0.5x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
