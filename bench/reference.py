"""`make bench`, first part: wirewatch read next to `tcpdump -r FILE -w /dev/null` on the two
reference captures of real traffic (shared/bench/record.sh: "mixed" and "bulk"; found through
BENCH_RECORD_SH, else beside the checkout (../shared), else in /work/shared).

Each capture is recorded once (root) and cached under var/bench/, then made four times
longer from time-shifted copies (editcap -t, mergecap -a, Debian's wireshark-common), so
that start-up does not decide the figure. The two programs run alternately, BENCH_RUNS
times each (default 5); printed: medians of packets/s and peak RSS of the whole process
(with a worker, the two processes' peaks summed), the median of the per-pair ratios, and the
peak PSS summed over the processes in one more run. Without root (recording needs network namespaces)
it says so and uses the generated capture of bench/make_capture.py instead.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VAR = os.path.join(ROOT, "var", "bench")
RECORD_CANDIDATES = (os.path.join(ROOT, "..", "shared", "bench", "record.sh"), "/work/shared/bench/record.sh")
BLOCKLIST = os.path.join(VAR, "reference-blocklist.txt")  # the captures' "blacklisted" source
RUNS = int(os.environ.get("BENCH_RUNS", "5"))
SHIFT_S = {"mixed": 70, "bulk": 10}  # more than each capture lasts
TARGETS = {"mixed": 0.15, "bulk": 1.0}
COPIES = 4
PSS_EVERY_S = 0.02


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise SystemExit(f"bench: {name} is not installed (Debian: apt-get install -y "
                         f"{'wireshark-common' if name in ('editcap', 'mergecap') else name})")
    return path


def record_script() -> str | None:
    """record.sh: $BENCH_RECORD_SH when set (it must exist), else the first of RECORD_CANDIDATES that does."""
    override = os.environ.get("BENCH_RECORD_SH")
    if override:
        if not os.path.isfile(override):
            raise SystemExit(f"bench: BENCH_RECORD_SH={override}: no such file")
        return override
    return next((path for path in RECORD_CANDIDATES if os.path.isfile(path)), None)


def recorded(kind: str) -> str | None:
    """var/bench/KIND.pcap, recorded now when missing; None when that needs root or record.sh is missing."""
    path = os.path.join(VAR, f"{kind}.pcap")
    if os.path.exists(path):
        return path
    if os.geteuid() != 0:
        print(f"  not root: {kind}.pcap cannot be recorded (record.sh needs network namespaces)")
        return None
    script = record_script()
    if script is None:
        print(f"  {kind}.pcap cannot be recorded: record.sh not found (set BENCH_RECORD_SH, or looked in "
              f"{' and '.join(RECORD_CANDIDATES)})")
        return None
    os.makedirs(VAR, exist_ok=True)
    print(f"recording {kind}.pcap once with {script} (cached in var/bench/) ...", flush=True)
    subprocess.run(["bash", script, kind, path], check=True, cwd=ROOT)
    return path


def longer(path: str, shift_s: int) -> str:
    """FILE-4x.pcap: the capture and three copies of it, each shifted by shift_s more."""
    out = path.replace(".pcap", f"-{COPIES}x.pcap")
    if os.path.exists(out) and os.path.getmtime(out) >= os.path.getmtime(path):
        return out
    editcap, mergecap = _tool("editcap"), _tool("mergecap")
    parts = [path]
    try:
        for k in range(1, COPIES):
            part = path.replace(".pcap", f".{k}.tmp.pcap")
            subprocess.run([editcap, "-t", str(k * shift_s), path, part], check=True)
            parts.append(part)
        subprocess.run([mergecap, "-a", "-F", "pcap", "-w", out + ".part", *parts], check=True)
        os.replace(out + ".part", out)
    finally:
        for part in parts[1:]:
            if os.path.exists(part):
                os.unlink(part)
    return out


def _timed(cmd: list[str]) -> tuple[float, float, bytes, float]:
    """Whole-process wall seconds, peak RSS (MiB, the child's own, from wait4), stdout and CPU
    seconds (user + system) of one command."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT)
    out = proc.stdout.read()  # type: ignore[union-attr]
    err = proc.stderr.read()  # type: ignore[union-attr]
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    if status != 0:
        raise SystemExit(f"bench: {' '.join(cmd)} failed: {err.decode(errors='replace').strip()}")
    return wall, usage.ru_maxrss / 1024, out, usage.ru_utime + usage.ru_stime


def _pss(pid: int) -> int:
    """Proportional set size (KiB) of a process: its shared pages divided among their users."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as fh:
            return next((int(line.split()[1]) for line in fh if line.startswith("Pss:")), 0)
    except OSError:  # ended between the listing and the read
        return 0


def peak_pss(cmd: list[str], every_s: float = PSS_EVERY_S) -> float | None:
    """Peak of the PSS summed over a command and its children (MiB), sampled every `every_s`
    (a run of its own: the sampling takes CPU). Summed peak RSS counts the pages the engine and
    its forked worker share (libraries, the heap before the fork, the two slots) in both; PSS
    counts each page once. None where /proc has no smaps_rollup."""
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
    peak = 0
    children = f"/proc/{proc.pid}/task/{proc.pid}/children"
    while proc.poll() is None:
        try:
            with open(children) as fh:
                pids = [proc.pid, *map(int, fh.read().split())]
        except OSError:
            pids = [proc.pid]
        peak = max(peak, sum(_pss(pid) for pid in pids))
        time.sleep(every_s)
    if proc.returncode != 0:
        raise SystemExit(f"bench: {' '.join(cmd)} failed (exit {proc.returncode})")
    return peak / 1024 if peak else None


def _packet_count(path: str) -> int | None:
    """The file's packet count by capinfos (wireshark-common), or None without it."""
    capinfos = shutil.which("capinfos")
    if capinfos is None:
        return None
    out = subprocess.run([capinfos, "-c", "-M", "-T", path], capture_output=True, text=True, check=True).stdout
    return int(out.strip().splitlines()[-1].split("\t")[-1])


def compare(label: str, path: str, blocklist: str | None) -> dict:
    """Alternate wirewatch read and tcpdump -r on `path`; print and return the medians."""
    tcpdump = _tool("tcpdump")
    ww = [sys.executable, "-m", "wirewatch", "read", path, "--quiet", "--logfile", "", "--db", "", "--format",
          "json", "--no-progress"] + (["--blacklist", blocklist] if blocklist else [])
    expected = _packet_count(path)
    rows: list[tuple[float, ...]] = []
    single: list[tuple[float, ...]] = []
    for _ in range(RUNS):  # the default (two processes on two CPUs), general.workers=1, tcpdump, alternating
        t_wall, t_rss, _, t_cpu = _timed([tcpdump, "-r", path, "-w", "/dev/null"])
        for variant, out_rows in (([], rows), (["--set", "general.workers=1"], single)):
            packets, w_wall, w_rss, w_cpu = _wirewatch(ww + variant, path, expected)
            out_rows.append((packets / w_wall, w_rss, packets / t_wall, t_rss, t_wall / w_wall, w_cpu, t_cpu))
    pss = peak_pss(ww, PSS_EVERY_S)
    med = [statistics.median(col) for col in zip(*rows)]
    one = [statistics.median(col) for col in zip(*single)]
    ratios = sorted(r[4] for r in rows)
    print(f"  {label:<10} {packets:>10,} packets  wirewatch {med[0]:>11,.0f} packets/s, peak RSS {med[1]:5.0f} MiB"
          f"  |  tcpdump {med[2]:>11,.0f} packets/s, peak RSS {med[3]:4.0f} MiB  |  ratio {med[4]:.3f}x"
          f" (runs {ratios[0]:.3f}-{ratios[-1]:.3f})  |  CPU s wirewatch {med[5]:.2f}, tcpdump {med[6]:.2f}"
          f"  |  load {os.getloadavg()[0]:.2f}", flush=True)
    print(f"  {'':<10} {'':>10}          one process (general.workers=1): {one[0]:>11,.0f} packets/s, "
          f"peak RSS {one[1]:5.0f} MiB, ratio {one[4]:.3f}x, CPU s {one[5]:.2f}", flush=True)
    if pss is not None:
        print(f"  {'':<10} {'':>10}          peak PSS summed over the processes (sampled every "
              f"{PSS_EVERY_S * 1000:.0f} ms, a run of its own): {pss:5.0f} MiB", flush=True)
    return {"capture": label, "packets": packets, "wirewatch_pps": med[0], "wirewatch_rss_mib": med[1],
            "tcpdump_pps": med[2], "tcpdump_rss_mib": med[3], "ratio": med[4],
            "wirewatch_cpu_s": med[5], "tcpdump_cpu_s": med[6], "one_process_ratio": one[4],
            "one_process_rss_mib": one[1], "one_process_cpu_s": one[5], "wirewatch_pss_mib": pss}


def _wirewatch(cmd: list[str], path: str, expected: int | None) -> tuple[int, float, float, float]:
    """Packets, wall seconds, peak RSS in MiB (with a worker: the engine's and the worker's summed)
    and CPU seconds (the worker's included: it is reaped before the engine ends) of one read."""
    wall, rss, out, cpu = _timed(cmd)
    summary = json.loads(out)
    packets = summary["packets"]
    if expected is not None and packets != expected:  # the run must have done the whole file's work
        raise SystemExit(f"bench: wirewatch analysed {packets:,} packets of {path}, capinfos counts {expected:,}")
    if summary.get("component_errors"):
        raise SystemExit(f"bench: a detector raised: {summary['component_errors']}")
    worker = summary.get("worker")
    if worker is not None:
        rss = (worker["engine_peak_rss_kib"] + worker["peak_rss_kib"]) / 1024
    return packets, wall, rss, cpu


def main(generated: str) -> list[dict]:
    print(f"[wirewatch read vs tcpdump -r FILE -w /dev/null: whole process, all detectors, "
          f"median of {RUNS} alternating runs]")
    results = []
    captures = {kind: recorded(kind) for kind in ("mixed", "bulk")}
    if not all(captures.values()):
        print("  the reference captures are missing: using the generated capture instead")
        subprocess.run([sys.executable, os.path.join(ROOT, "bench", "make_capture.py"), generated], check=True,
                       stdout=subprocess.DEVNULL)
        captures = {"generated": generated}
        blocklist = None
    else:
        os.makedirs(VAR, exist_ok=True)
        with open(BLOCKLIST, "w") as fh:
            fh.write("10.213.77.66\n")
        blocklist = BLOCKLIST
    for kind, path in captures.items():
        results.append(compare(kind, path, blocklist))
        long_path = longer(path, SHIFT_S.get(kind, 70))
        result = compare(f"{kind}-{COPIES}x", long_path, blocklist)
        if kind in TARGETS:
            verdict = "reached" if result["ratio"] >= TARGETS[kind] else "NOT reached"
            print(f"  target {kind}-{COPIES}x >= {TARGETS[kind]}x tcpdump: {verdict}; "
                  f"peak RSS <= 200 MiB: {'yes' if result['wirewatch_rss_mib'] <= 200 else 'NO'}"
                  + ("" if result["wirewatch_pss_mib"] is None else
                     f" (summed PSS <= 200 MiB: {'yes' if result['wirewatch_pss_mib'] <= 200 else 'NO'})"))
        results.append(result)
    return results


if __name__ == "__main__":  # bench_read.py runs this in a child of its own: see main()
    main(sys.argv[1])
