"""`make bench-storm`: 200,000 SYNs from 200,000 forged sources to watched port 4444, analysed by
`wirewatch read --db` (a fresh SQLite store), whole process timed. Prints the wall time, the
alerts written and the largest source count they name; exits 1 when it took 10 s or more or
wrote more than 20 alerts (issue 9's storm-control target)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time

from wirewatch.craft import write_syn_storm

N, LIMIT_S, LIMIT_ALERTS = 200_000, 10.0, 20


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        pcap = write_syn_storm(os.path.join(tmp, "storm.pcap"), N, "10.0.0.2", 4444, duration=20.0)
        log, db = os.path.join(tmp, "a.json"), os.path.join(tmp, "a.db")
        t0 = time.perf_counter()
        r = subprocess.run([sys.executable, "-m", "wirewatch", "read", pcap, "--logfile", log, "--db", db, "--quiet"],
                           capture_output=True, text=True)
        wall = time.perf_counter() - t0
        if r.returncode != 0:
            print(r.stderr, file=sys.stderr)
            return 1
        with open(log) as fh:
            alerts = [a for a in map(json.loads, fh) if a.get("event_type") == "alert"]
    most = max((a["evidence"].get("distinct_sources", 1) for a in alerts), default=0)
    print(f"storm: {N:,} forged-source SYNs to 10.0.0.2:4444 -> {len(alerts)} alerts (largest names {most:,} sources); "
          f"wirewatch read --db took {wall:.2f} s (limit {LIMIT_S:.0f} s)")
    return 0 if wall < LIMIT_S and len(alerts) <= LIMIT_ALERTS else 1


if __name__ == "__main__":
    sys.exit(main())
