"""Webhook sink against a receiver on 127.0.0.1 that the test starts: every alert of the
corpus arrives exactly once, also when the receiver fails three times first; severity
filter; a full queue drops and counts instead of blocking."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from conftest import CORPUS, cli, read_alerts

from wirewatch.sinks.webhook import WebhookSink

PCAPS = sorted(str(CORPUS / p["file"]) for p in json.loads((CORPUS / "labels.json").read_text())["pcaps"])


class Receiver:
    def __init__(self) -> None:
        self.statuses: list[int] = []  # answered first, in order; then 200
        self.posts: list[dict] = []  # bodies answered with 200
        self.failed = 0
        self.delay = 0.0


@pytest.fixture
def receiver():
    rec = Receiver()
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            time.sleep(rec.delay)
            with lock:
                status = rec.statuses.pop(0) if rec.statuses else 200
                if status == 200:
                    rec.posts.append(body)
                else:
                    rec.failed += 1
            self.send_response(status)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    rec.url = f"http://127.0.0.1:{httpd.server_address[1]}/hooks/wirewatch"
    yield rec
    httpd.shutdown()
    httpd.server_close()


def key(a: dict) -> tuple:
    return a["flow_id"], a["timestamp"], a["type"]


@pytest.mark.parametrize("failures", [0, 3])
def test_every_corpus_alert_arrives_exactly_once(receiver, tmp_path, failures):
    receiver.statuses = [500] * failures
    log = tmp_path / "alerts.json"
    r = cli("read", *PCAPS, "--webhook", receiver.url, "--logfile", str(log), "--quiet", "--no-progress",
            "--blacklist", str(CORPUS / "blacklist.txt"))
    assert r.returncode == 0, r.stderr
    written = read_alerts(log)
    assert len(written) >= 15  # the corpus raises about 19 (scanners' watched-port probes are in their scan alerts)
    got = [a for post in receiver.posts for a in post["alerts"]]
    assert sorted(map(key, got)) == sorted(map(key, written))  # all of them, none twice
    assert receiver.failed == failures
    for post in receiver.posts:  # what chat webhooks display: one line per alert
        lines = post["text"].splitlines()
        assert len(lines) == len(post["alerts"])
        assert all(a["message"] in line for a, line in zip(post["alerts"], lines, strict=True))


def test_min_severity_filters_and_counts(receiver):
    sink = WebhookSink(receiver.url, min_severity=1)
    alerts = [{"alert": {"severity": s}, "type": "t", "message": f"sev {s}", "flow_id": s, "timestamp": "x"}
              for s in (1, 2, 3, 1)]
    sink.write(alerts)
    sink.close()
    assert [a["message"] for p in receiver.posts for a in p["alerts"]] == ["sev 1", "sev 1"]
    assert sink.counters()["below_severity"] == 2 and sink.counters()["sent"] == 2


def test_a_full_queue_drops_and_counts_without_waiting(receiver):
    receiver.delay = 2.0  # a receiver that hangs
    sink = WebhookSink(receiver.url, queue_size=5)
    alerts = [{"alert": {"severity": 1}, "type": "t", "message": str(i), "flow_id": i, "timestamp": "x"}
              for i in range(200)]
    t0 = time.monotonic()
    for a in alerts:
        sink.write([a])
    assert time.monotonic() - t0 < 0.5, "write() waited for the network"
    c = sink.counters()
    assert c["dropped"] >= 200 - 5 - 50 and c["dropped"] + c["queued"] + c["sent"] <= 200
    sink.close()
    c = sink.counters()
    assert c["sent"] + c["dropped"] + c["failed"] == 200


def test_a_receiver_that_never_answers_2xx_is_given_up_and_counted(receiver):
    receiver.statuses = [503] * 100
    sink = WebhookSink(receiver.url, backoff_s=0.01)
    sink.write([{"alert": {"severity": 1}, "type": "t", "message": "m", "flow_id": 1, "timestamp": "x"}])
    deadline = time.monotonic() + 10
    while sink.counters()["failed"] == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    sink.close()
    c = sink.counters()
    assert c["failed"] == 1 and c["failed_posts"] == 6 and c["sent"] == 0


def test_a_bad_url_is_a_config_error(tmp_path):
    r = cli("read", PCAPS[0], "--webhook", "smtp://example.invalid", "--logfile", "", "--quiet")
    assert r.returncode == 2 and "output.webhook = 'smtp://example.invalid'" in r.stderr


def test_stats_events_carry_the_webhook_counters(receiver):
    from test_schema import STATS_SCHEMA, problems

    from wirewatch import config
    from wirewatch.engine import Engine
    from wirewatch.schema import stats_record

    sink = WebhookSink(receiver.url, min_severity=2)
    engine = Engine(config.build(), sinks=[sink])
    sink.write([{"alert": {"severity": 3}, "type": "t", "message": "low", "flow_id": 1, "timestamp": "x"}])
    record = stats_record(engine, "eth0", (0, 0, 0), 1, False)
    engine.close()
    assert record["stats"]["webhook"]["below_severity"] == 1 and problems(record, STATS_SCHEMA) == []


def test_a_forged_source_flood_is_posted_as_its_few_alerts_not_one_post_per_source(receiver, tmp_path):
    """20,000 forged sources against one watched port: the receiver gets the flood's few alerts
    (each naming the destination and the number of sources), exactly what the log holds, in a
    few posts; the forged sources' SYNs to the watched port are the flood's, not 20,000 alerts."""
    from wirewatch.craft import write_syn_storm

    pcap = write_syn_storm(str(tmp_path / "storm.pcap"), 20_000, "10.0.0.2", 4444, duration=5.0)
    log = tmp_path / "alerts.json"
    r = cli("read", pcap, "--webhook", receiver.url, "--logfile", str(log), "--quiet", "--no-progress")
    assert r.returncode == 0, r.stderr
    got = [a for post in receiver.posts for a in post["alerts"]]
    assert sorted(map(key, got)) == sorted(map(key, read_alerts(log)))
    assert 1 <= len(got) <= 20 and len(receiver.posts) <= len(got)
    assert got[-1]["type"] == "syn_flood" and got[-1]["evidence"]["distinct_sources"] == 20_000
    assert got[-1]["evidence"]["watched_ports_touched"] == [4444]
    assert any("10.0.0.2 port 4444 (20000 sources)" in post["text"] for post in receiver.posts)
