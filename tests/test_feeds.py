"""Blocklist feeds against a real HTTP server on 127.0.0.1 that each test starts and scripts:
first fetch, 304 on refresh, HTML error page, empty list, shrink, size cap, restart with the
server down (the cache), the refresh thread, and alerts naming the feed URL and entry."""

from __future__ import annotations

import io
import json
import threading
import time
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from conftest import CORPUS, cli, read_alerts
from scapy.layers.inet import IP, TCP

from wirewatch import config
from wirewatch.capture.pcapfile import read_batches
from wirewatch.craft import eth, write_pcap
from wirewatch.engine import Engine
from wirewatch.feeds import attach
from wirewatch.schema import stats_record
from wirewatch.store.sqlite_sink import SqliteSink
from wirewatch.web import create_app


class Feed:
    """What the server answers: body, content type, status; ETag/Last-Modified handled like a
    static file server (304 when the client's validators match)."""

    def __init__(self) -> None:
        self.body, self.content_type, self.status = b"", "text/plain", 200
        self.etag, self.delay = '"v1"', 0.0
        self.modified = formatdate(1_700_000_000, usegmt=True)
        self.requests: list[dict[str, str]] = []

    def set(self, body: str, etag: str, **kw) -> None:
        self.body, self.etag = body.encode(), etag
        for k, v in kw.items():
            setattr(self, k, v)


@pytest.fixture
def server():
    feed = Feed()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            feed.requests.append(dict(self.headers))
            time.sleep(feed.delay)
            if feed.status == 200 and self.headers.get("If-None-Match") == feed.etag:
                self.send_response(304)
                self.end_headers()
                return
            self.send_response(feed.status)
            self.send_header("Content-Type", feed.content_type)
            self.send_header("Content-Length", str(len(feed.body)))
            self.send_header("ETag", feed.etag)
            self.send_header("Last-Modified", feed.modified)
            self.end_headers()
            self.wfile.write(feed.body)

        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    feed.url = f"http://127.0.0.1:{httpd.server_address[1]}/drop.txt"
    feed.shutdown = lambda: (httpd.shutdown(), httpd.server_close())
    yield feed
    httpd.shutdown()
    httpd.server_close()


def engine_with(url: str, cache: Path, **keys) -> tuple[Engine, io.StringIO]:
    settings = {"urls": [url], "cache_dir": str(cache), **keys}
    cfg = config.build([("detect.blacklist", k, v, "test") for k, v in settings.items()])
    log = io.StringIO()
    engine = Engine(cfg, sinks=[], log=log)
    engine.feeds = attach(engine, log)
    return engine, log


def feed_state(engine: Engine) -> dict:
    (state,) = stats_record(engine, None, (0, 0, 0), 0, False)["stats"]["blacklists"]
    return state


def alerts_for(engine: Engine, tmp_path: Path, *addresses: str) -> list[dict]:
    pkts = [(1.0 + i, eth(IP(src=a, dst="10.0.0.5") / TCP(sport=40000 + i, dport=22, flags="S")))
            for i, a in enumerate(addresses)]
    path = write_pcap(str(tmp_path / "t.pcap"), pkts)
    found = []
    for raw in read_batches(path):
        found += engine.feed(raw)
    return found + engine.flush()


DROP = "; Spamhaus DROP List\n198.51.100.0/24 ; SBL1\n203.0.113.0/24 ; SBL2\n192.0.2.0/25 ; SBL3\n"


def test_first_fetch_then_304_keeps_the_list_and_sends_validators(server, tmp_path):
    server.set(DROP, '"v1"')
    engine, log = engine_with(server.url, tmp_path / "cache")
    engine.feeds.fetch_all()
    state = feed_state(engine)
    assert state["list"] == server.url and state["entries"] == 3 and "last_error" not in state
    first_fetch = state["last_fetch"]
    assert "If-None-Match" not in server.requests[0]
    time.sleep(0.01)
    engine.feeds.fetch_all()  # the refresh: unchanged on the server
    assert server.requests[1]["If-None-Match"] == '"v1"'
    assert server.requests[1]["If-Modified-Since"] == server.modified
    state = feed_state(engine)
    assert state["entries"] == 3 and state["last_fetch"] > first_fetch and log.getvalue() == ""
    (a,) = alerts_for(engine, tmp_path, "203.0.113.9")
    assert a["evidence"]["list"] == server.url and a["evidence"]["entry"] == "203.0.113.0/24"
    assert a["alert"]["source"]["ip"] == "203.0.113.9"


@pytest.mark.parametrize("bad, why", [
    ({"body": "<!DOCTYPE html><html><body>503 Service Unavailable</body></html>", "content_type": "text/html"},
     "an HTML page, not a blocklist"),
    ({"body": "# nothing listed today\n"}, "no entries"),
    ({"body": "198.51.100.0/24\n"}, "shrank from 3 to 1 entries"),
    ({"body": "198.51.100.0/24\nnot-an-address\n"}, "does not parse"),
    ({"body": "", "status": 500}, "HTTP 500"),
])
def test_a_bad_copy_keeps_the_previous_list_and_says_why_once(server, tmp_path, bad, why):
    server.set(DROP, '"v1"')
    engine, log = engine_with(server.url, tmp_path / "cache")
    engine.feeds.fetch_all()
    body = bad.pop("body")
    server.set(body, '"v2"', **bad)
    engine.feeds.fetch_all()
    lines = log.getvalue().splitlines()
    assert len(lines) == 1 and server.url in lines[0] and why in lines[0] and "keeping the previous list" in lines[0]
    state = feed_state(engine)
    assert state["entries"] == 3 and why in state["last_error"]
    assert [a["evidence"]["entry"] for a in alerts_for(engine, tmp_path, "192.0.2.1")] == ["192.0.2.0/25"]
    cached = next(p for p in (tmp_path / "cache").iterdir() if p.suffix == ".txt")
    assert cached.read_text() == DROP  # the cache still holds the last good copy


def test_a_feed_larger_than_the_cap_is_refused(server, tmp_path):
    server.set("10.0.0.1\n" * 200, '"big"')
    engine, log = engine_with(server.url, tmp_path / "cache", max_bytes=1024)
    engine.feeds.fetch_all()
    assert "larger than detect.blacklist.max_bytes = 1024" in log.getvalue()
    assert feed_state(engine)["entries"] == 0


def test_restart_with_the_server_down_uses_the_cache(server, tmp_path):
    server.set(DROP, '"v1"')
    engine, _ = engine_with(server.url, tmp_path / "cache")
    engine.feeds.fetch_all()
    server.shutdown()
    engine2, log = engine_with(server.url, tmp_path / "cache")  # a new process: nothing but the cache
    assert feed_state(engine2)["entries"] == 3
    engine2.feeds.fetch_all()
    assert server.url in log.getvalue() and "keeping the previous list (3 entries)" in log.getvalue()
    assert [a["evidence"]["list"] for a in alerts_for(engine2, tmp_path, "198.51.100.77")] == [server.url]


@pytest.mark.parametrize("body, address, entry", [
    ("#\n# firehol_level1\n#\n198.51.100.0/24\n203.0.113.5\n", "203.0.113.5", "203.0.113.5"),
    ('# abuse.ch Feodo Tracker\n# ip_address,port,status\n"203.0.113.5","443","online"\n198.51.100.8,447,offline\n',
     "198.51.100.8", "198.51.100.8"),
])
def test_firehol_and_abuse_ch_csv_feeds(server, tmp_path, body, address, entry):
    server.set(body, '"v1"')
    engine, log = engine_with(server.url, tmp_path / "cache")
    engine.feeds.fetch_all()
    assert log.getvalue() == "" and feed_state(engine)["entries"] == 2
    assert [a["evidence"]["entry"] for a in alerts_for(engine, tmp_path, address)] == [entry]


def test_the_refresh_thread_swaps_lists_without_blocking_analysis(server, tmp_path):
    """A slow server holds up only the feed thread: packets are analysed meanwhile, and
    the new list is in effect once the thread has it."""
    server.set("198.51.100.0/24\n", '"v1"')
    engine, _ = engine_with(server.url, tmp_path / "cache", refresh=1)
    engine.feeds.fetch_all()
    server.set("198.51.100.0/24\n203.0.113.0/24\n", '"v2"', delay=1.5)
    engine.feeds.start()
    try:
        t0 = time.monotonic()
        assert alerts_for(engine, tmp_path, "203.0.113.1") == []  # old list: not yet listed
        assert time.monotonic() - t0 < 1.0, "analysis waited for the feed"
        deadline = time.monotonic() + 10
        while feed_state(engine)["entries"] != 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert feed_state(engine)["entries"] == 2
        (a,) = alerts_for(engine, tmp_path, "203.0.113.2")
        assert a["evidence"]["entry"] == "203.0.113.0/24"
    finally:
        engine.feeds.stop()


def test_wirewatch_read_names_the_feed_url_and_entry(server, tmp_path):
    server.set("# a feed\n10.10.0.99\n", '"v1"')
    log = tmp_path / "alerts.json"
    r = cli("read", str(CORPUS / "dev18_blacklist_src.pcap"), "--blacklist-url", server.url, "--logfile", str(log),
            "--set", f"detect.blacklist.cache_dir={tmp_path / 'cache'}", "--quiet", "--no-progress", "--format", "json")
    assert r.returncode == 0, r.stderr
    (a,) = [a for a in read_alerts(log) if a["type"] == "blacklist"]
    assert a["evidence"]["list"] == server.url and a["evidence"]["entry"] == "10.10.0.99"
    assert server.url in a["message"]
    assert json.loads(r.stdout)["blacklists"][0] == {"list": server.url, "entries": 1,
                                                     "last_fetch": json.loads(r.stdout)["blacklists"][0]["last_fetch"]}


def test_a_url_that_is_not_http_is_a_config_error(tmp_path):
    r = cli("read", str(CORPUS / "dev18_blacklist_src.pcap"), "--blacklist-url", "ftp://example.invalid/x",
            "--logfile", "", "--quiet")
    assert r.returncode == 2 and "detect.blacklist.urls = 'ftp://example.invalid/x'" in r.stderr


def test_stats_and_metrics_give_entries_last_fetch_and_last_error(server, tmp_path):
    server.set(DROP, '"v1"')
    engine, _ = engine_with(server.url, tmp_path / "cache")
    engine.feeds.fetch_all()
    server.set("<html>oops</html>", '"v2"', content_type="text/html")
    engine.feeds.fetch_all()
    db = str(tmp_path / "ww.db")
    sink = SqliteSink(db)
    sink.write_event(stats_record(engine, "eth0", (0, 0, 0), 5, False))
    sink.close()
    token = "feed-test-token-" + "9" * 32
    metrics = create_app(db, token).test_client().get(
        "/metrics", headers={"Authorization": f"Bearer {token}"}).get_data(as_text=True)
    assert f'wirewatch_blacklist_entries{{list="{server.url}"}} 3' in metrics
    assert f'wirewatch_blacklist_last_fetch_timestamp_seconds{{list="{server.url}"}}' in metrics
    assert f'wirewatch_blacklist_error{{list="{server.url}",error="an HTML page, not a blocklist"}} 1' in metrics


def test_tls_is_verified_a_self_signed_server_is_refused(tmp_path):
    """An https feed whose certificate no CA vouches for is not loaded (and not cached)."""
    import ssl
    import subprocess

    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
                    "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True)
    served = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            served.append(self.path)
            self.send_response(200)
            self.send_header("Content-Length", "11")
            self.end_headers()
            self.wfile.write(b"203.0.113.5")

        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(cert), str(key))
    httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    url = f"https://127.0.0.1:{httpd.server_address[1]}/list.txt"
    try:
        engine, log = engine_with(url, tmp_path / "cache")
        engine.feeds.fetch_all()
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert url in log.getvalue() and "CERTIFICATE_VERIFY_FAILED" in log.getvalue() and "no list yet" in log.getvalue()
    assert served == [] and feed_state(engine)["entries"] == 0 and not (tmp_path / "cache").exists()


def test_the_cache_defaults_to_blocklists_in_the_state_directory(server, tmp_path):
    server.set(DROP, '"v1"')
    cfg = config.build([("detect.blacklist", "urls", [server.url], "test"),
                        ("store", "state_dir", str(tmp_path / "state"), "test")])
    engine = Engine(cfg, sinks=[], log=io.StringIO())
    attach(engine).fetch_all()
    assert [p.suffix for p in sorted((tmp_path / "state" / "blocklists").iterdir())] == [".json", ".txt"]
