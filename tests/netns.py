"""Throw-away network namespaces joined by a veth pair, for live tests.

Every name is unique per test run and everything is deleted on exit, also on failure.
Traffic stays between the two namespaces: nothing is routed anywhere else.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import SRC, read_events


def can_create_namespaces() -> bool:
    return os.geteuid() == 0 and shutil.which("ip") is not None


def sh(*cmd: str, check: bool = True, timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, check=check, timeout=timeout)


@dataclass
class Lab:
    attacker: str  # namespace names
    sensor: str
    attacker_if: str
    sensor_if: str
    attacker_ip: str = "10.203.0.66"
    sensor_ip: str = "10.203.0.2"

    def run(self, ns: str, *cmd: str, timeout: float = 60, check: bool = False) -> subprocess.CompletedProcess:
        return sh("ip", "netns", "exec", ns, *cmd, timeout=timeout, check=check)

    def popen(self, ns: str, *cmd: str, **kw) -> subprocess.Popen:
        return subprocess.Popen(["ip", "netns", "exec", ns, *cmd], **kw)

    def add_address(self, ns: str, iface: str, cidr: str) -> None:
        self.run(ns, "ip", "addr", "add", cidr, "dev", iface, check=True)


@contextmanager
def lab() -> Iterator[Lab]:
    tag = uuid.uuid4().hex[:6]
    a, s = f"wwt{tag}a", f"wwt{tag}s"
    va, vs = f"wa{tag}", f"ws{tag}"
    try:
        sh("ip", "netns", "add", a)
        sh("ip", "netns", "add", s)
        sh("ip", "link", "add", va, "type", "veth", "peer", "name", vs)
        sh("ip", "link", "set", va, "netns", a)
        sh("ip", "link", "set", vs, "netns", s)
        L = Lab(a, s, va, vs)
        for ns, iface, ip in ((a, va, L.attacker_ip), (s, vs, L.sensor_ip)):
            L.run(ns, "ip", "addr", "add", f"{ip}/24", "dev", iface, check=True)
            L.run(ns, "ip", "link", "set", iface, "up", check=True)
            L.run(ns, "ip", "link", "set", "lo", "up", check=True)
            for feature in ("tso", "gso", "gro"):
                L.run(ns, "ethtool", "-K", iface, feature, "off")
        yield L
    finally:
        for ns in (a, s):
            pids = sh("ip", "netns", "pids", ns, check=False).stdout.split()
            for pid in pids:
                sh("kill", "-9", pid, check=False)
            sh("ip", "netns", "del", ns, check=False)


class Monitor:
    """`wirewatch monitor` in the lab's sensor namespace, logging under logdir/logs; returns
    once its first stats event is in the log."""

    def __init__(self, L: Lab, logdir: Path, *extra: str, iface: str | None = None):
        self.log = logdir / "logs" / "alerts.json"
        self.L = L
        self.proc = L.popen(L.sensor, sys.executable, "-m", "wirewatch", "monitor", "-i", iface or L.sensor_if,
                            "--logfile", str(self.log), "--stats-interval", "1", *extra,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=str(logdir),
                            env={**os.environ, "PYTHONPATH": SRC})
        deadline = time.time() + 15
        while time.time() < deadline and not (self.log.exists() and self.events("stats")):
            assert self.proc.poll() is None, self.proc.communicate()
            time.sleep(0.1)
        assert self.events("stats"), "sensor did not start"

    def events(self, kind: str = "alert") -> list[dict]:
        return read_events(self.log, kind)

    def wait_for(self, alert_type: str, since: float, limit: float = 2.0) -> float:
        """Seconds from `since` until an alert of this type is in the log (fails after limit + slack)."""
        deadline = since + limit + 3
        while time.time() < deadline:
            if any(a["type"] == alert_type for a in self.events()):
                return time.time() - since
            time.sleep(0.05)
        pytest.fail(f"no {alert_type} alert within {limit} s; got {[a['type'] for a in self.events()]}")

    def stop(self, sig: int = signal.SIGTERM) -> tuple[int, str, str]:
        self.proc.send_signal(sig)
        out, err = self.proc.communicate(timeout=20)
        return self.proc.returncode, out, err
