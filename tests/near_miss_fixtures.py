"""Near misses for the dashboard's tests: a crafted capture with sources just under two
thresholds, analysed by the real engine into a real stats record, which carries under
`stats.near_misses` what a sensor reports (README "Stats records": detector, src_ip,
dest_ip/dest_port where they apply, figure, threshold, fraction, unit, window, text)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from conftest import run_file
from scapy.layers.inet import IP, TCP

from wirewatch.craft import BASE_TS, eth, syn_scan, write_pcap
from wirewatch.schema import stats_record

SCANNER, VICTIM = "10.0.0.9", "10.0.0.2"
SWEEPER = "10.0.0.7"


def near_miss_capture(path: Path, scanner: str = SCANNER, victim: str = VICTIM, ports: int = 14,
                      sweeper: str = SWEEPER, hosts: int = 12, swept: str = "10.0.1.{}") -> str:
    """10.0.0.9 probes 14 ports of 10.0.0.2 (port_scan: 20), 10.0.0.7 probes 12 hosts on port
    22 (host_sweep: 15), both within 10 s: no alert, two near misses (other addresses and
    counts below the thresholds give another sensor's)."""
    pkts = syn_scan(BASE_TS, scanner, victim, [1000 + p for p in range(ports)], gap=0.2)
    pkts += [(BASE_TS + 0.1 + i * 0.3, eth(IP(src=sweeper, dst=swept.format(i + 1)) / TCP(sport=41000, dport=22, flags="S")))
             for i in range(hosts)]
    return write_pcap(str(path), sorted(pkts, key=lambda p: p[0]))


NEAR_MISSES = [  # what the sensor reports for near_miss_capture
    {"detector": "port_scan", "src_ip": SCANNER, "dest_ip": VICTIM, "figure": 14, "threshold": 20, "fraction": 0.7,
     "unit": "ports", "window": 10.0, "text": f"{SCANNER}: 14 of 20 ports in 10 s"},
    {"detector": "host_sweep", "src_ip": SWEEPER, "dest_port": 22, "figure": 12, "threshold": 15, "fraction": 0.8,
     "unit": "hosts", "window": 10.0, "text": f"{SWEEPER}: 12 of 15 hosts in 10 s"},
]


def stats_event(capture: str, sensor: str, near_misses: list[Any]) -> dict[str, Any]:
    """The stats record `read --db` stores after analysing `capture` as `sensor`, carrying
    `near_misses` (the sensor's producer of them is being built: until then the test says them)."""
    alerts, engine = run_file(capture, {"general.sensor": sensor})
    assert alerts == [], alerts  # near misses only
    record = stats_record(engine, None, (engine.stats.packets, 0, 0), 1.0, True)
    record["stats"]["near_misses"] = near_misses
    return record
