"""Escalation (alerts.py): a repeat inside the cooldown whose main figure grew tenfold is a new
alert naming the one it outgrew; a bigger attack is not hidden by a smaller one's cooldown; a
repeat that grew less is the alert's update (`update_of`) when the cooldown or the run ends."""

from __future__ import annotations

import numpy as np
from conftest import cli, decode_file, read_alerts

from wirewatch.craft import BASE_TS, eth, write_pcap, write_syn_storm
from wirewatch.decode import TCP_ACK, TCP_RST, TCP_SYN
from wirewatch.schema import format_ts

VICTIM = "10.0.0.2"


def one_source_flood(path: str) -> str:
    """600 SYNs from one source to port 80 within a second, never completed."""
    from scapy.layers.inet import IP, TCP
    pkts = [(BASE_TS + i / 600, eth(IP(src="10.1.0.1", dst=VICTIM) / TCP(sport=1024 + i, dport=80, flags="S")))
            for i in range(600)]
    return write_pcap(path, pkts)


def syns(path: str) -> tuple[np.ndarray, np.ndarray]:
    """(packet times, source addresses as one integer) of the SYNs to the victim in a capture."""
    b = decode_file(path)
    ok = ((b.tcp_flags & (TCP_SYN | TCP_ACK | TCP_RST)) == TCP_SYN) & (b.proto == 6)
    return b.ts[ok], b.src_lo[ok]


def run(tmp_path, *files: str, extra: tuple[str, ...] = ()) -> list[dict]:
    log = tmp_path / "a.json"
    log.unlink(missing_ok=True)
    r = cli("read", *files, "--logfile", str(log), "--quiet", *extra)
    assert r.returncode == 0, r.stderr
    return [a for a in read_alerts(log) if a["type"] == "syn_flood"]


def test_a_forged_source_flood_inside_the_cooldown_of_a_one_source_flood_escalates(tmp_path):
    first = one_source_flood(str(tmp_path / "one.pcap"))
    # 12 s later (inside the 30 s cooldown, after the 10 s window): 20,000 forged sources
    second = write_syn_storm(str(tmp_path / "many.pcap"), 20_000, VICTIM, 8080, t0=BASE_TS + 12, duration=2.0)
    floods = run(tmp_path, first, second)
    assert len(floods) == 3  # the alert, its escalation at the storm's first slice, the escalation's update
    small, big, grown = floods
    assert small["evidence"]["distinct_sources"] == 1 and "escalated_from" not in small
    assert big["escalated_from"] == {"flow_id": small["flow_id"], "timestamp": small["timestamp"],
                                     "message": small["message"], "distinct_sources": 1}
    assert big["flow_id"] == small["flow_id"]  # the same alert identity, grown
    assert "[escalated: distinct_sources 1 -> " in big["message"]
    # the figures against the captures themselves
    ts1, src1 = syns(first)
    ts2, src2 = syns(second)
    assert small["evidence"]["syns"] == len(ts1) and small["evidence"]["top_sources"][0]["src_ip"] == "10.1.0.1"
    assert small["evidence"]["busiest_port"] == {"port": 80, "syns": 600}
    e = big["evidence"]
    upto = np.array([format_ts(t) <= e["last_seen"] for t in ts2])  # what the alert had seen
    assert e["scope"] == "host and port" and big.get("dest_port") == 8080
    assert e["first_seen"] == format_ts(ts2.min()) and e["last_seen"] in {format_ts(t) for t in ts2}
    assert e["syns"] == upto.sum()  # the one-source flood has left the 10 s window
    exact = len(np.unique(src2[upto]))
    assert abs(e["distinct_sources"] - exact) <= 0.05 * exact  # HyperLogLog: within its error
    assert sum(s["syns"] for s in e["top_sources"]) + e["other_sources_syns"] == e["host_syns"] == e["syns"]
    assert e["busiest_port"] == {"port": 8080, "syns": upto.sum()}
    # the storm went on growing after its escalation: the update at the end of the run says by how much
    g = grown["evidence"]
    assert grown["update_of"] == {"flow_id": big["flow_id"], "timestamp": big["timestamp"],
                                  "message": big["message"].split(" [escalated: ")[0],
                                  "distinct_sources": e["distinct_sources"]}
    assert "escalated_from" not in grown and "[update: distinct_sources " in grown["message"]
    upto = np.array([format_ts(t) <= g["last_seen"] for t in ts2])
    assert g["syns"] == upto.sum() and g["distinct_sources"] >= 1.5 * e["distinct_sources"]
    assert abs(g["distinct_sources"] - len(np.unique(src2[upto]))) <= 0.05 * len(np.unique(src2[upto]))


def fifty_source_flood(path: str, t0: float, sources: int = 50) -> str:
    """600 SYNs to port 80 within a second from 50 sources (12 each): more sources, but fewer than
    the 100 that raise syn_flood's severity, so only the figure can escalate it."""
    from scapy.layers.inet import IP, TCP
    pkts = [(t0 + i / 600, eth(IP(src=f"10.1.1.{1 + i % sources}", dst=VICTIM) / TCP(sport=1024 + i, dport=80, flags="S")))
            for i in range(600)]
    return write_pcap(path, pkts)


def test_without_escalation_the_bigger_flood_is_the_alerts_update_not_a_new_alert(tmp_path):
    first = one_source_flood(str(tmp_path / "one.pcap"))
    second = fifty_source_flood(str(tmp_path / "fifty.pcap"), BASE_TS + 12)
    floods = run(tmp_path, first, second, extra=("--set", "alerts.escalation_factor=0"))
    assert len(floods) == 2 and floods[0]["evidence"]["distinct_sources"] == 1
    # not a new alert, but not lost either: the largest repeat is the alert's update when its cooldown ends
    small, update = floods
    assert "escalated_from" not in update and update["update_of"]["timestamp"] == small["timestamp"]
    assert abs(update["evidence"]["distinct_sources"] - 50) <= 2 and update["flow_id"] == small["flow_id"]  # HyperLogLog
    assert small["alert"]["severity"] == update["alert"]["severity"] == 2


def test_a_repeat_that_grew_less_than_the_update_growth_is_told_when_the_run_ends(tmp_path):
    """While the cooldown runs an update waits for UPDATE_GROWTH (1.5x); when the run ends, any
    growth is told: a repeat from 50 sources after an alert from 40 (1.25x) is the alert's update
    (main: the run ended with the alert's 40; a 12-source distributed scan was told with 8)."""
    first = fifty_source_flood(str(tmp_path / "forty.pcap"), BASE_TS, sources=40)
    second = fifty_source_flood(str(tmp_path / "fifty.pcap"), BASE_TS + 12)
    floods = run(tmp_path, first, second)
    assert len(floods) == 2
    alert, update = floods
    assert abs(alert["evidence"]["distinct_sources"] - 40) <= 2 and "update_of" not in alert  # HyperLogLog
    assert update["update_of"]["timestamp"] == alert["timestamp"] and update["flow_id"] == alert["flow_id"]
    assert abs(update["evidence"]["distinct_sources"] - 50) <= 2 and "[update: distinct_sources " in update["message"]


def test_a_rise_in_severity_escalates_whatever_the_factor(tmp_path):
    first = one_source_flood(str(tmp_path / "one.pcap"))
    second = write_syn_storm(str(tmp_path / "many.pcap"), 20_000, VICTIM, 8080, t0=BASE_TS + 12, duration=2.0)
    floods = run(tmp_path, first, second, extra=("--set", "alerts.escalation_factor=0"))
    small, big = floods[:2]
    assert (small["alert"]["severity"], big["alert"]["severity"]) == (2, 1)  # 100 sources or more: severity 1
    assert big["escalated_from"]["timestamp"] == small["timestamp"] and "severity 2 -> 1" in big["message"]


def test_the_escalation_factor_is_configurable(tmp_path):
    first = one_source_flood(str(tmp_path / "one.pcap"))
    second = fifty_source_flood(str(tmp_path / "fifty.pcap"), BASE_TS + 12)
    floods = run(tmp_path, first, second)
    assert len(floods) == 2 and floods[1]["escalated_from"]["distinct_sources"] == 1  # 1 -> 50 sources
    floods = run(tmp_path, first, second, extra=("--set", "alerts.escalation_factor=1000"))
    assert [("escalated_from" in a, "update_of" in a) for a in floods] == [(False, False), (False, True)]  # 50 is not 1,000 x 1


def test_growth_is_told_at_once_and_tallied_when_the_cooldown_ends(tmp_path):
    """60,000 forged sources over 60 s, 1,000 a second (escalation off): the alert at 1 s; an
    update as soon as its sources grew 1.5-fold (it waited for the cooldown to end), and no
    other while the cooldown runs; when the cooldown ends the largest repeat is the tally, told
    before the next alert (a new alert in the slice the cooldown ended in dropped it)."""
    storm = write_syn_storm(str(tmp_path / "long.pcap"), 60_000, VICTIM, 8080, duration=60.0)
    log = tmp_path / "a.json"
    r = cli("read", storm, "--logfile", str(log), "--quiet", "--set", "alerts.escalation_factor=0")
    assert r.returncode == 0, r.stderr
    floods = [a for a in read_alerts(log) if a["type"] == "syn_flood"]
    alerts = [a for a in floods if "update_of" not in a]
    assert len(alerts) == 2  # the second after the 30 s cooldown
    first, second = alerts
    ts = {a["timestamp"]: np.datetime64(a["timestamp"][:26]) for a in floods}
    mine = [a for a in floods if a.get("update_of", {}).get("timestamp") == first["timestamp"]]
    assert len(mine) == 2
    early, tally = mine
    fig = [a["evidence"]["distinct_sources"] for a in (first, early, tally)]
    assert (ts[early["timestamp"]] - ts[first["timestamp"]]) / np.timedelta64(1, "s") <= 1.01  # the next slice
    assert fig[1] >= 1.5 * fig[0] and fig[2] >= 1.5 * fig[1]
    assert floods.index(tally) == floods.index(second) - 1  # the tally, then the new alert
    assert tally["evidence"]["distinct_sources"] == max(a["evidence"]["distinct_sources"] for a in floods)
    later = [a for a in floods if a.get("update_of", {}).get("timestamp") == second["timestamp"]]
    assert len(later) <= 2 and all(a["flow_id"] == first["flow_id"] for a in floods)
