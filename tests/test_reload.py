"""SIGHUP reload (Engine.reconfigure, reload.py): every reloadable key takes effect on the running
detectors; a key that needs a restart is named, not silently ignored."""

from __future__ import annotations

from crafted import T0, types
from scapy.layers.inet import ICMP, IP, TCP

from wirewatch import config
from wirewatch.capture.pcapfile import read_batches
from wirewatch.craft import eth, write_pcap
from wirewatch.engine import Engine

VICTIM = "10.3.0.2"


def feed(engine: Engine, tmp_path, name: str, packets) -> list[dict]:
    path = write_pcap(str(tmp_path / name), packets)
    out = []
    for raw in read_batches(path, 4096):
        out += engine.feed(raw)
    return out + engine.flush()


def build(**overrides) -> config.Config:
    return config.build([(k.rsplit(".", 1)[0], k.rsplit(".", 1)[1], v, "test") for k, v in overrides.items()])


def pings(t0: float, sources: int, each: int):
    return [(t0 + (s * each + i) * 0.001, eth(IP(src=f"10.3.1.{s + 1}", dst=VICTIM) / ICMP(type=8, seq=i)))
            for s in range(sources) for i in range(each)]


def test_traffic_burst_threshold_reaches_the_many_sources_view(tmp_path):
    engine = Engine(build(), [])
    assert "traffic_burst" not in types(feed(engine, tmp_path, "a.pcap", pings(T0, 20, 5)))  # 100 < 1,000
    assert engine.reconfigure(build(**{"detect.traffic_burst.threshold": 50})) == []
    alerts = types(feed(engine, tmp_path, "b.pcap", pings(T0 + 60, 20, 5)))
    (burst,) = alerts["traffic_burst"]
    assert burst.get("dest_ip") == VICTIM and burst["evidence"]["threshold"] == 50


def probes(t0: float, members: int, ports_each: int):
    return [(t0 + (m * ports_each + p) * 0.01,
             eth(IP(src=f"10.3.2.{m + 1}", dst=VICTIM) / TCP(sport=40000, dport=1000 + m * ports_each + p, flags="S")))
            for m in range(members) for p in range(ports_each)]


def test_distributed_scan_member_threshold_follows_the_reload(tmp_path):
    engine = Engine(build(), [])
    first = types(feed(engine, tmp_path, "a.pcap", probes(T0, 5, 8)))["distributed_scan"]
    assert first[0]["evidence"]["member_threshold"] == 20  # port_scan.threshold
    engine.reconfigure(build(**{"detect.distributed_scan.member_threshold": 9}))
    again = types(feed(engine, tmp_path, "b.pcap", probes(T0 + 100, 5, 8)))["distributed_scan"]
    assert again[0]["evidence"]["member_threshold"] == 9
    engine.reconfigure(build(**{"detect.port_scan.threshold": 12}))  # member_threshold 0 follows port_scan
    assert [d for d in engine.detectors if d.name == "distributed_scan"][0].member_threshold == 12


def test_handshake_timeout_follows_the_reload(tmp_path):
    engine = Engine(build(), [])
    engine.reconfigure(build(**{"detect.failed_handshake.timeout": 9.0}))
    syns = [(T0 + i * 0.1, eth(IP(src="10.3.3.1", dst=VICTIM) / TCP(sport=41000 + i, dport=22, flags="S")))
            for i in range(10)]
    later = [(T0 + 6 + i * 0.1, eth(IP(src="10.3.3.9", dst="10.3.0.9") / TCP(sport=1, dport=2, flags="A")))
             for i in range(20)]  # 5-6 s later: older than 3 s, younger than 9 s
    feed(engine, tmp_path, "a.pcap", syns + later)
    state = engine.summary()["detector_state"]
    assert state["handshakes_timeout"] == 0  # a 3 s timeout would have failed all ten
    alerts = types(feed(engine, tmp_path, "b.pcap", [(T0 + 12, later[0][1])]))
    (failed,) = alerts["failed_handshake"]
    assert failed["evidence"]["timeout_s"] == 9.0 and failed["evidence"]["unanswered"] == 10


def test_keys_that_need_a_restart_are_named():
    engine = Engine(build(), [])
    pending = engine.reconfigure(build(**{"detect.port_scan.window": 5.0, "detect.port_scan.threshold": 30,
                                          "alerts.max_identifiers": 50, "general.batch_size": 100,
                                          "detect.syn_flood.enabled": False}))
    assert pending == ["general.batch_size", "alerts.max_identifiers", "detect.port_scan.window",
                       "detect.syn_flood.enabled"]
    scan = [d for d in engine.detectors if d.name == "port_scan"][0]
    assert scan.cfg.threshold == 30 and scan.cfg.window == build().detect.port_scan.window  # the window waits
    assert engine.cfg.alerts.max_identifiers == build().alerts.max_identifiers and engine.cfg.general.batch_size == 16384


def test_expire_interval_waits_for_a_restart(tmp_path):
    """general.expire_interval is restart-only: a reload that changes it names it and the running
    engine keeps cutting slices at the old one. A port scan in the first second is analysed (its
    alert returned by feed, before any flush) once a packet 1.5 s later arrives, as with 1 s slices;
    the reloaded 5 s would hold it until a packet 5 s on. Before, Engine.reconfigure adopted it
    while the reload said it waited for a restart."""
    engine = Engine(build(), [])
    assert engine.reconfigure(build(**{"general.expire_interval": 5.0})) == ["general.expire_interval"]
    assert engine.cfg.general.expire_interval == 1.0
    probes = [(T0 + i * 0.01, eth(IP(src="10.3.4.1", dst=VICTIM) / TCP(sport=40000, dport=1000 + i, flags="S")))
              for i in range(30)]
    later = [(T0 + 1.5, eth(IP(src="10.3.4.9", dst="10.3.0.9") / TCP(sport=1, dport=2, flags="A")))]
    path = write_pcap(str(tmp_path / "scan.pcap"), probes + later)
    fed = [a for raw in read_batches(path, 4096) for a in engine.feed(raw)]
    assert [a["src_ip"] for a in fed if a["type"] == "port_scan"] == ["10.3.4.1"]


def test_store_keys_are_named_as_needing_a_restart():
    """The store sink is opened once: a SIGHUP that changes retention or the spool's size says so."""
    engine = Engine(build(), [])
    pending = engine.reconfigure(build(**{"store.retention_days": 7.0, "store.max_db_mb": 10.0,
                                          "store.spool_max_mb": 5.0}))
    assert pending == ["store.retention_days", "store.max_db_mb", "store.spool_max_mb"]
