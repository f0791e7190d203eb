"""commands/outputs.py: the sinks `output.*` asks for, opened before a sensor drops root; an
alert of a real capture reaches the SQLite store and a syslog receiver on loopback."""

from __future__ import annotations

import json
import socket
import sqlite3

from conftest import CORPUS

from wirewatch import config
from wirewatch.capture.pcapfile import read_batches
from wirewatch.commands.outputs import output_sinks
from wirewatch.engine import Engine


def test_no_store_no_syslog_no_webhook_opens_nothing():
    assert output_sinks(config.build([("output", "db", "", "test")])) == []


def test_store_and_syslog_receive_the_alerts_of_a_capture(tmp_path):
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.bind(("127.0.0.1", 0))
    receiver.settimeout(5)
    db = tmp_path / "w.db"
    cfg = config.build([("output", "db", str(db), "test"), ("store", "state_dir", str(tmp_path), "test"),
                        ("output", "syslog", f"udp://127.0.0.1:{receiver.getsockname()[1]}", "test")])
    sinks = output_sinks(cfg)
    assert [s.name for s in sinks] == ["sqlite", "syslog"]
    engine = Engine(cfg, sinks)
    for raw in read_batches(str(CORPUS / "dev01_nmap_syn_top100.pcap"), 4096):
        engine.feed(raw)
    engine.flush()
    engine.close()
    datagram = receiver.recv(65536).decode()
    receiver.close()
    sent = json.loads(datagram[datagram.index("{"):])
    assert sent["type"] == "port_scan" and sent["src_ip"] == "10.10.0.66"
    with sqlite3.connect(db) as con:
        stored = con.execute("SELECT type, src_ip FROM alerts").fetchall()
    assert stored == [("port_scan", "10.10.0.66")]
