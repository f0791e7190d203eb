"""A live sensor (network namespaces the test creates, dropping root to nobody) with a
blocklist feed served on the sensor namespace's loopback: the feed is fetched after the
drop into a cache the unprivileged user owns, and a change on the server is picked up by
the refresh thread while capture goes on."""

from __future__ import annotations

import os
import pwd
import subprocess
import sys
import time

import pytest
from conftest import need
from netns import Monitor, can_create_namespaces

pytestmark = pytest.mark.skipif(not can_create_namespaces(), reason="live tests need root and iproute2")


def test_feed_is_fetched_cached_and_refreshed_by_the_unprivileged_sensor(net, world):
    need("curl")
    feed_dir = world / "feed"
    feed_dir.mkdir()
    os.chmod(feed_dir, 0o755)
    (feed_dir / "drop.txt").write_text("; Spamhaus DROP style\n10.203.0.99/32 ; SBL1\n")
    server = net.popen(net.sensor, sys.executable, "-m", "http.server", "8765", "--bind", "127.0.0.1",
                       "--directory", str(feed_dir), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = "http://127.0.0.1:8765/drop.txt"
    cache = world / "cache"
    try:
        time.sleep(0.5)
        first, second = "10.203.0.99", "10.203.0.98"
        for bad in (first, second):
            net.add_address(net.attacker, net.attacker_if, f"{bad}/24")
        m = Monitor(net, world, "--blacklist-url", url, "--set", "detect.blacklist.refresh=1",
                    "--set", f"detect.blacklist.cache_dir={cache}")
        deadline = time.time() + 10
        while time.time() < deadline and not any(p.suffix == ".txt" for p in cache.glob("*")):
            time.sleep(0.1)
        nobody = pwd.getpwnam("nobody").pw_uid
        assert cache.stat().st_uid == nobody and all(p.stat().st_uid == nobody for p in cache.iterdir())
        net.run(net.attacker, "curl", "-s", "--max-time", "1", "--interface", first, f"http://{net.sensor_ip}:81/",
                timeout=10)
        m.wait_for("blacklist", time.time())
        (feed_dir / "drop.txt").write_text(f"; Spamhaus DROP style\n{first}/32 ; SBL1\n{second}/32 ; SBL2\n")
        os.utime(feed_dir / "drop.txt", (time.time() + 5, time.time() + 5))  # a newer Last-Modified
        deadline = time.time() + 10
        while time.time() < deadline and not any(
                bl.get("entries") == 2 for s in m.events("stats") for bl in s["stats"].get("blacklists", [])):
            time.sleep(0.2)
        net.run(net.attacker, "curl", "-s", "--max-time", "1", "--interface", second, f"http://{net.sensor_ip}:81/",
                timeout=10)
        deadline = time.time() + 5
        while time.time() < deadline and len([a for a in m.events() if a["type"] == "blacklist"]) < 2:
            time.sleep(0.1)
        rc, _, err = m.stop()
        assert rc == 0, err
        alerts = [a for a in m.events() if a["type"] == "blacklist"]
        assert [(a["src_ip"], a["evidence"]["list"], a["evidence"]["entry"]) for a in alerts] == \
            [(first, url, f"{first}/32"), (second, url, f"{second}/32")]
        final = m.events("stats")[-1]["stats"]["blacklists"]
        assert final[0]["list"] == url and final[0]["entries"] == 2 and "last_error" not in final[0]
    finally:
        server.terminate()
        server.wait(timeout=10)
