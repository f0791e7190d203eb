"""Adding a detector is one module plus one registry line: a throwaway detector, defined here,
gets a config section, a signature, a place in `wirewatch config` and the dashboard, and fires."""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pytest
from scapy.layers.inet import IP, UDP

from wirewatch import cli, config
from wirewatch.addr import addr_str
from wirewatch.craft import BASE_TS, eth, write_pcap
from wirewatch.decode import PacketBatch
from wirewatch.detect import registry
from wirewatch.detect.base import DetectorSpec, Finding, Reconfigurable, Signature
from wirewatch.schema import alert_record
from wirewatch.settings import setting


# ---- the "file": a whole detector, as a new detect/port_zero.py would hold it ----
@dataclass(frozen=True)
class PortZeroConfig:
    enabled: bool = setting(True, "Detect datagrams to port 0.")
    threshold: int = setting(3, "Datagrams to port 0 from one source within a batch.", 1)


class PortZero(Reconfigurable):
    name = "port_zero"

    def __init__(self, cfg: PortZeroConfig):
        self.cfg = cfg

    def observe(self, b: PacketBatch) -> list[Finding]:
        rows = np.flatnonzero(b.has_ports & (b.dport == 0))
        keys, counts = np.unique(np.stack([b.src_hi[rows], b.src_lo[rows]]), axis=1, return_counts=True)
        return [Finding(self.name, (addr_str(int(hi), int(lo)),), float(b.ts[rows].max()),
                        f"Datagrams to port 0 from {addr_str(int(hi), int(lo))}", src_ip=addr_str(int(hi), int(lo)),
                        evidence={"packets": int(n), "threshold": self.cfg.threshold})
                for (hi, lo), n in zip(keys.T, counts) if n >= self.cfg.threshold]

    def expire(self, now: float) -> None:
        """Nothing outlives a batch."""

    def stats(self) -> dict[str, int]:
        return {}


SPEC = DetectorSpec(name=PortZero.name, config=PortZeroConfig,
                    signature=Signature(9000100, "WIREWATCH datagrams to port 0", "Potentially Bad Traffic", 3),
                    build=lambda cfg, shared: PortZero(cfg.detect.port_zero))


# ---- the "line": registering it ----
@pytest.fixture
def registered(monkeypatch):
    monkeypatch.setattr(registry, "DETECTORS", [*registry.DETECTORS, SPEC])


def port_zero_pcap(tmp_path, n: int) -> str:
    packets = [(BASE_TS + i * 0.01, eth(IP(src="10.5.0.7", dst="10.5.0.1") / UDP(sport=5000 + i, dport=0)))
               for i in range(n)]
    return write_pcap(str(tmp_path / "zero.pcap"), packets)


def test_a_registered_detector_gets_a_config_section_with_validation(registered):
    assert config.sections()["detect.port_zero"] is PortZeroConfig
    cfg = config.build([("detect.port_zero", "threshold", "5", "test")])
    assert cfg.detect.port_zero == PortZeroConfig(threshold=5)
    with pytest.raises(config.ConfigError, match="detect.port_zero.threshold = 0: must be at least 1"):
        config.build([("detect.port_zero", "threshold", 0, "test")])
    assert "**[detect.port_zero]**" in config.markdown()


def test_a_registered_detector_is_in_wirewatch_config(registered, capsys):
    assert cli.main(["config", "--set", "detect.port_zero.threshold=7"]) == 0
    out = capsys.readouterr().out
    section = out.split("[detect.port_zero]\n")[1].split("\n\n")[0]
    assert section == "# Detect datagrams to port 0.\nenabled = true\n" \
                      "# Datagrams to port 0 from one source within a batch.\nthreshold = 7"


def test_a_registered_detector_fires_with_its_signature(registered, tmp_path):
    log = tmp_path / "alerts.json"
    pcap = port_zero_pcap(tmp_path, 4)
    assert cli.main(["read", pcap, "--logfile", str(log), "--db", "", "--quiet", "--no-progress"]) == 0
    *alerts, stats = [json.loads(line) for line in log.read_text().splitlines()]
    assert stats["event_type"] == "stats" and stats["stats"]["detect"]["alerts"] == {"port_zero": 1}
    assert [(a["type"], a["src_ip"], a["evidence"]["packets"]) for a in alerts] == [("port_zero", "10.5.0.7", 4)]
    assert alerts[0]["alert"] == {"action": "allowed", "gid": 1, "signature_id": 9000100, "rev": 1,
                                  "signature": "WIREWATCH datagrams to port 0",
                                  "category": "Potentially Bad Traffic", "severity": 3,
                                  "source": {"ip": "10.5.0.7"}}


def test_a_disabled_detector_is_not_built(registered):
    assert "port_zero" in [d.name for d in registry.default_detectors(config.build())]
    off = config.build([("detect.port_zero", "enabled", False, "test")])
    assert "port_zero" not in [d.name for d in registry.default_detectors(off)]


def test_a_registered_detector_is_in_the_dashboard_type_filter(registered, tmp_path):
    from wirewatch.store.sqlite_sink import SqliteSink
    from wirewatch.web import create_app

    db = str(tmp_path / "ww.db")
    SqliteSink(db).close()
    client = create_app(db, "tok").test_client()
    client.get("/login?token=tok")
    assert "<option>port_zero</option>" in client.get("/alerts").get_data(as_text=True)


def test_every_built_in_detector_declares_enabled_and_a_unique_signature():
    ids = [s.signature.signature_id for s in registry.DETECTORS]
    assert len(set(ids)) == len(ids) and len(set(registry.names())) == len(ids)
    for spec in registry.DETECTORS:
        assert spec.config().enabled in (True, False), spec.name


def test_an_unregistered_finding_type_gets_the_catch_all_signature():
    rec = alert_record(Finding("made_up", ("x",), BASE_TS, "m"), None, 0)
    assert rec["alert"]["signature_id"] == 9000099 and rec["alert"]["signature"] == "WIREWATCH made_up"
