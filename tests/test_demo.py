"""The sample capture `make sample` builds: the benign client is silent, the scan is found."""

from __future__ import annotations

from conftest import run_file

from wirewatch import demo


def test_sample_capture_has_exactly_the_one_scan(tmp_path):
    out = tmp_path / "sub" / "sample.pcap"
    assert demo.main(["demo", str(out)]) == 0
    alerts, engine = run_file(str(out))
    assert {a["src_ip"] for a in alerts} == {demo.SCANNER}  # nothing about the browsing client
    (scan,) = [a for a in alerts if a["type"] == "port_scan"]
    assert scan["dest_ip"] == demo.SERVER and scan["evidence"]["answers"]["open"] == 3
    assert engine.stats.packets == len(demo.sample_packets())
