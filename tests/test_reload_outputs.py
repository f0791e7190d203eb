"""SIGHUP applies blocklist feed URLs (detect.blacklist.urls and the feed settings) and the
webhook (output.webhook, its minimum severity and queue) without a restart. One HTTP server
on 127.0.0.1, started by the test, serves the feeds and receives the webhook posts: first on
the running engine (feeds.reattach, webhook.reconfigure), then on a real `wirewatch monitor`
on the loopback interface (root: live capture) that gets a real SIGHUP."""

from __future__ import annotations

import io
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from scapy.layers.inet import IP, TCP

from wirewatch import config
from wirewatch.capture.pcapfile import read_batches
from wirewatch.config import ConfigError
from wirewatch.craft import eth, write_pcap
from wirewatch.engine import Engine
from wirewatch.feeds import attach, reattach
from wirewatch.schema import stats_record
from wirewatch.sinks.webhook import WebhookSink, reconfigure

SRC = str(Path(__file__).resolve().parent.parent / "src")


class Server:
    """Feeds by path (GET) and webhook posts by path (POST)."""

    def __init__(self) -> None:
        self.feeds: dict[str, str] = {}
        self.gets: list[str] = []
        self.posts: dict[str, list[dict]] = {}
        self.lock = threading.Lock()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def alerts(self, path: str) -> list[dict]:
        with self.lock:
            return [a for body in self.posts.get(path, []) for a in body["alerts"]]


@pytest.fixture
def server():
    srv = Server()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            with srv.lock:
                srv.gets.append(self.path)
                body = srv.feeds.get(self.path)
            self.send_response(200 if body is not None else 404)
            data = (body or "").encode()
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            with srv.lock:
                srv.posts.setdefault(self.path, []).append(body)
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.port = httpd.server_address[1]
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield srv
    httpd.shutdown()
    httpd.server_close()


def build(**keys) -> config.Config:
    return config.build([(k.rsplit(".", 1)[0], k.rsplit(".", 1)[1], v, "test") for k, v in keys.items()])


def traffic(engine: Engine, tmp_path: Path, name: str, *sources: str, t0: float = 1.0) -> list[dict]:
    pkts = [(t0 + i, eth(IP(src=s, dst="10.0.0.5") / TCP(sport=40000 + i, dport=22, flags="S")))
            for i, s in enumerate(sources)]
    found: list[dict] = []
    for raw in read_batches(write_pcap(str(tmp_path / name), pkts)):
        found += engine.feed(raw)
    return found + engine.flush()


def lists(engine: Engine) -> list[dict]:
    return stats_record(engine, None, (0, 0, 0), 0, False)["stats"]["blacklists"]


def test_changed_feed_urls_replace_the_running_feeds(server, tmp_path):
    server.feeds = {"/a.txt": "198.51.100.7\n", "/b.txt": "203.0.113.0/24 ; SBL9\n"}
    a, b = server.url("/a.txt"), server.url("/b.txt")
    common = {"detect.blacklist.cache_dir": str(tmp_path / "cache")}
    log = io.StringIO()
    engine = Engine(build(**{"detect.blacklist.urls": [a], **common}), [], log=log)
    feeds = attach(engine, log)
    feeds.fetch_all()
    assert [x["src_ip"] for x in traffic(engine, tmp_path, "1.pcap", "198.51.100.7", "203.0.113.5")] == ["198.51.100.7"]

    same = build(**{"detect.blacklist.urls": [a], **common})
    engine.reconfigure(same)
    assert reattach(engine, feeds, log, start=False) is feeds  # nothing changed: the running feeds stay

    engine.reconfigure(build(**{"detect.blacklist.urls": [b], **common}))
    new = reattach(engine, feeds, log, start=False)
    assert new is not feeds and feeds._stop.is_set() and server.gets[-1] == "/b.txt"
    assert [x["list"] for x in lists(engine)] == [b]  # the old feed's list has left the matcher
    found = traffic(engine, tmp_path, "2.pcap", "198.51.100.7", "203.0.113.5", t0=100.0)
    assert [(x["src_ip"], x["evidence"]["list"], x["evidence"]["entry"]) for x in found] == \
        [("203.0.113.5", b, "203.0.113.0/24")]

    engine.reconfigure(build(**common))  # no feeds any more
    assert reattach(engine, new, log, start=False) is None and lists(engine) == []
    assert traffic(engine, tmp_path, "3.pcap", "203.0.113.6", t0=200.0) == []
    assert log.getvalue() == ""


def test_a_bad_feed_url_on_reload_is_refused_and_the_running_feeds_stay(server, tmp_path):
    server.feeds = {"/a.txt": "198.51.100.7\n"}
    a = server.url("/a.txt")
    engine = Engine(build(**{"detect.blacklist.urls": [a], "detect.blacklist.cache_dir": str(tmp_path)}), [])
    feeds = attach(engine, io.StringIO())
    feeds.fetch_all()
    engine.reconfigure(build(**{"detect.blacklist.urls": ["ftp://example.invalid/x"],
                                "detect.blacklist.cache_dir": str(tmp_path)}))
    with pytest.raises(ConfigError, match="detect.blacklist.urls = 'ftp://example.invalid/x'"):
        reattach(engine, feeds, io.StringIO(), start=False)
    assert not feeds._stop.is_set() and [x["list"] for x in lists(engine)] == [a]


def webhook(engine: Engine) -> WebhookSink | None:
    return next((s for s in engine.sinks if isinstance(s, WebhookSink)), None)


def test_a_changed_webhook_url_takes_the_next_alerts_and_the_counters_go_on(server, tmp_path):
    bl = tmp_path / "bl.txt"
    bl.write_text("198.51.100.0/24\n")
    keys = {"detect.blacklist.files": [str(bl)]}
    one, two = server.url("/one"), server.url("/two")
    first = build(**keys, **{"output.webhook": one})
    engine = Engine(first, [WebhookSink(one)])
    traffic(engine, tmp_path, "1.pcap", "198.51.100.1")
    old = webhook(engine)
    assert reconfigure(engine, build(**keys, **{"output.webhook": one, "output.webhook_min_severity": 1})) is old
    assert old.min_severity == 1  # applied in place

    engine.reconfigure(build(**keys, **{"output.webhook": two}))
    new = reconfigure(engine, engine.cfg)
    assert new is not old and webhook(engine) is new and new.url == two and new.min_severity == 3
    traffic(engine, tmp_path, "2.pcap", "198.51.100.2", t0=100.0)
    deadline = time.time() + 10
    while time.time() < deadline and not (server.alerts("/one") and server.alerts("/two")
                                          and new.counters()["sent"] == 2):  # counted once the answer is read
        time.sleep(0.05)
    assert [a["src_ip"] for a in server.alerts("/one")] == ["198.51.100.1"]  # the old sink sent what it had
    assert [a["src_ip"] for a in server.alerts("/two")] == ["198.51.100.2"]
    assert new.counters()["sent"] == 2  # the run's totals, not the new sink's alone

    assert reconfigure(engine, build(**keys)) is None and webhook(engine) is None  # webhook removed
    with pytest.raises(ConfigError, match="output.webhook"):
        reconfigure(engine, build(**keys, **{"output.webhook": "mailto:x@example.invalid"}))
    engine.close()


def test_reload_no_longer_names_the_feed_and_webhook_keys_as_needing_a_restart():
    from wirewatch.reload import restart_only_changes

    old = build()
    new = build(**{"detect.blacklist.urls": ["http://127.0.0.1:1/x"], "detect.blacklist.refresh": 60,
                   "output.webhook": "http://127.0.0.1:1/h", "output.webhook_min_severity": 1,
                   "output.webhook_queue": 10, "output.logfile": "elsewhere.json"})
    assert restart_only_changes(old, new) == ["output.logfile"]


# -- a real sensor and a real SIGHUP ----------------------------------------------------------

LISTED_A, LISTED_B = "127.0.0.66", "127.0.0.77"


def wait_until(what, timeout: float, why: str) -> None:
    deadline = time.time() + timeout
    while not what():
        assert time.time() < deadline, why
        time.sleep(0.1)


@pytest.mark.skipif(os.geteuid() != 0, reason="live capture on lo needs root (CI runs as root)")
def test_sighup_to_a_monitor_applies_new_feed_urls_and_a_new_webhook(server):
    server.feeds = {"/a.txt": f"{LISTED_A}\n", "/b.txt": f"{LISTED_B}/32 ; SBL77\n"}
    world = Path(tempfile.mkdtemp(prefix="wwhup", dir="/tmp"))
    os.chmod(world, 0o755)
    conf = world / "wirewatch.toml"

    def write_config(feed: str, hook: str) -> None:
        conf.write_text(f'[detect.blacklist]\nurls = ["{server.url(feed)}"]\n'
                        f'[output]\nwebhook = "{server.url(hook)}"\nlogfile = "{world / "alerts.json"}"\n')

    write_config("/a.txt", "/one")
    err_path = world / "err.log"
    with open(err_path, "w") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "wirewatch", "monitor", "-i", "lo", "--config", str(conf), "--quiet",
             "--bpf", f"udp and (host {LISTED_A} or host {LISTED_B})", "--stats-interval", "1"],
            stdout=subprocess.DEVNULL, stderr=err, cwd=str(world), env={**os.environ, "PYTHONPATH": SRC})
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        wait_until(lambda: "monitoring lo" in err_path.read_text() and "/a.txt" in server.gets, 20,
                   "the monitor did not start and fetch its feed")
        time.sleep(0.5)
        sock.sendto(b"x", (LISTED_A, 9))
        wait_until(lambda: server.alerts("/one"), 15, "no alert posted to the first webhook")
        assert server.alerts("/one")[0]["evidence"]["list"] == server.url("/a.txt")

        write_config("/b.txt", "/two")
        proc.send_signal(signal.SIGHUP)
        wait_until(lambda: "reloaded config" in err_path.read_text() and "/b.txt" in server.gets, 15,
                   "SIGHUP did not fetch the new feed")
        time.sleep(0.5)
        sock.sendto(b"x", (LISTED_B, 9))
        wait_until(lambda: server.alerts("/two"), 15, "no alert posted to the new webhook")
        (alert,) = server.alerts("/two")
        assert (alert["evidence"]["list"], alert["evidence"]["entry"]) == (server.url("/b.txt"), f"{LISTED_B}/32")
        assert len(server.alerts("/one")) == 1  # the old webhook got nothing more
        time.sleep(1.5)  # a stats event with the new feed
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0, err_path.read_text()
        records = [json.loads(line) for line in (world / "alerts.json").read_text().splitlines()]
        final = [r for r in records if r["event_type"] == "stats"][-1]["stats"]
        assert [x["list"] for x in final["blacklists"]] == [server.url("/b.txt")]
        assert final["webhook"]["sent"] == 2
        err_text = err_path.read_text()
        assert "take effect only after a restart" not in err_text, err_text
    finally:
        sock.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        subprocess.run(["rm", "-rf", str(world)], check=False)
