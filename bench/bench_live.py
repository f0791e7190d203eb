"""`make bench-live` (root): replay a capture onto a veth with tcpreplay and measure the sensor.

A namespace pair is created for the run and deleted afterwards; tcpreplay sends in one
namespace, `wirewatch monitor` captures in the other (default headers-only snapshot). For
each reader (the compiled dispatch loop, and pcapy-ng's next_batch) and each rate (packets/s,
or "topspeed") it prints packets/s captured, kernel drop percentage and the sensor's CPU use,
then the highest rate with zero drops and the sensor's CPU share at it. BENCH_LIVE_CAPTURE
replays another capture (e.g. var/bench/bulk.pcap, MTU frames) instead of the generated one;
BENCH_LIVE_READERS=compiled or =pcapy runs one reader only; BENCH_LIVE_SNAPLEN=262144 captures
whole packets instead of the default headers-only snapshot.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests"))
sys.path.insert(0, HERE)

import make_capture  # noqa: E402
from netns import lab  # noqa: E402

PACKETS = int(os.environ.get("BENCH_LIVE_PACKETS", "1000000"))
STATS_INTERVAL = 0.1  # seconds between the sensor's stats events: the resolution of "done in"
RATES = os.environ.get("BENCH_LIVE_RATES", "50000,100000,200000,400000,topspeed").split(",")
READERS = {"compiled": {}, "pcapy": {"WIREWATCH_LIVE_READER": "pcapy"}}
CHOSEN = os.environ.get("BENCH_LIVE_READERS", "compiled,pcapy").split(",")
SNAPLEN = os.environ.get("BENCH_LIVE_SNAPLEN", "")
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def wait_caught_up(log: str, packets: int, t0: float, limit: float = 120.0) -> float:
    """Seconds from the start of the replay until the sensor had analysed every packet
    (read from its stats events, so +- STATS_INTERVAL)."""
    while time.time() - t0 < limit:
        for line in reversed(open(log).readlines()):
            if '"event_type": "stats"' in line:
                if json.loads(line)["stats"]["decoder"]["pkts"] >= packets:
                    return time.time() - t0
                break
        time.sleep(0.05)
    return limit


def one_rate(capture: str, rate: str, extra: list[str], env: dict[str, str]) -> dict:
    workdir = tempfile.mkdtemp(prefix="wwbench", dir="/tmp")
    os.chmod(workdir, 0o755)
    log = os.path.join(workdir, "logs", "alerts.json")
    with lab() as L:
        mon = L.popen(L.sensor, sys.executable, "-m", "wirewatch", "monitor", "-i", L.sensor_if, "--quiet",
                      "--logfile", log, "--stats-interval", str(STATS_INTERVAL), "--buffer-size", "256", *extra,
                      stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=workdir,
                      env={**os.environ, "PYTHONPATH": os.path.join(ROOT, "src"), **env})
        while not (os.path.exists(log) and os.path.getsize(log)):
            time.sleep(0.1)
        cpu0, t0 = cpu_seconds(mon.pid), time.time()
        speed = ["--topspeed"] if rate == "topspeed" else [f"--pps={rate}"]
        L.run(L.attacker, "tcpreplay", "-q", "-i", L.attacker_if, *speed, "--loop=0", f"--limit={PACKETS}", capture,
              timeout=600)  # loops the capture until PACKETS have been sent
        sent_s = time.time() - t0
        caught_up = wait_caught_up(log, PACKETS, t0)
        cpu = cpu_seconds(mon.pid) - cpu0
        wall = time.time() - t0
        mon.send_signal(signal.SIGTERM)
        mon.communicate(timeout=60)
    stats = [json.loads(line) for line in open(log) if '"event_type": "stats"' in line][-1]["stats"]
    got, drops = stats["capture"]["kernel_packets"], stats["capture"]["kernel_drops"]
    return {"rate": rate, "sent_s": sent_s, "captured": got, "drops": drops, "analysed": stats["decoder"]["pkts"],
            "pps": stats["decoder"]["pkts"] / sent_s, "done_s": caught_up,
            "sustained": stats["decoder"]["pkts"] / max(caught_up, sent_s), "drop_pct": 100 * drops / max(1, got + drops),
            "cpu_pct": 100 * cpu / wall}


def main() -> int:
    if os.geteuid() != 0:
        print("bench-live needs root (network namespaces and capture)", file=sys.stderr)
        return 2
    capture = os.environ.get("BENCH_LIVE_CAPTURE") or make_capture.ensure(os.path.join(ROOT, "var", "bench", "bench.pcap"))
    extra = ["--snaplen", SNAPLEN] if SNAPLEN else []
    for reader in CHOSEN:
        env = READERS[reader]
        print(f"[all detectors, {reader} reader, snaplen {SNAPLEN or 'default'}] replaying {PACKETS:,} packets of {capture} (load {os.getloadavg()[0]:.1f})")
        print(f"{'rate':>10} {'sent in':>8} {'analysed':>10} {'sent pps':>10} {'done in':>8} {'sustained':>10} "
              f"{'drops':>8} {'drop %':>7} {'CPU %':>6}")
        best = None
        for rate in RATES:
            r = one_rate(capture, rate, extra, env)
            print(f"{r['rate']:>10} {r['sent_s']:>7.2f}s {r['analysed']:>10,} {r['pps']:>10,.0f} {r['done_s']:>7.2f}s "
                  f"{r['sustained']:>10,.0f} {r['drops']:>8,} {r['drop_pct']:>6.2f}% {r['cpu_pct']:>5.0f}%", flush=True)
            if r["drops"] == 0:
                best = r
        if best:
            print(f"{reader}: highest send rate with zero kernel drops: {best['pps']:,.0f} packets/s (requested "
                  f"{best['rate']}); sensor analysed them at {best['sustained']:,.0f} packets/s using "
                  f"{best['cpu_pct']:.0f} % of one core")
        else:
            print(f"{reader}: every rate dropped packets")
    return 0


if __name__ == "__main__":
    sys.exit(main())
