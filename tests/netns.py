"""Throw-away network namespaces joined by a veth pair, for live tests.

Every name is unique per test run and everything is deleted on exit, also on failure.
Traffic stays between the two namespaces: nothing is routed anywhere else.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass


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
