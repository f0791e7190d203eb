"""The syslog sink: every alert reaches a collector as `<PRI>wirewatch: {EVE JSON}`."""

from __future__ import annotations

import json
import re
import socket
import threading

import pytest
from conftest import CORPUS, cli, read_alerts

PCAP = str(CORPUS / "dev18_blacklist_src.pcap")  # blacklist (severity 1) and more
MESSAGE = re.compile(r"^<(\d+)>wirewatch: (\{.*\})$")
LOCAL5 = 21


def parse(messages: list[str]) -> list[tuple[int, dict]]:
    out = []
    for m in messages:
        match = MESSAGE.match(m)
        assert match, m
        out.append((int(match.group(1)), json.loads(match.group(2))))
    return out


def check_against_logfile(received: list[tuple[int, dict]], log) -> None:
    logged = read_alerts(log)
    assert logged and [r for _, r in received] == logged
    for pri, record in received:
        facility, level = divmod(pri, 8)
        assert facility == LOCAL5
        assert level == {1: 1, 2: 4, 3: 5}[record["alert"]["severity"]]  # alert, warning, notice


def read_alerts_with(tmp_path, address: str) -> tuple[object, str]:
    log = tmp_path / "a.json"
    r = cli("read", PCAP, "--syslog", address, "--logfile", str(log), "--blacklist", str(CORPUS / "blacklist.txt"))
    assert r.returncode == 0, r.stderr
    assert "(continuing)" not in r.stderr
    return log, r.stderr


def drain_datagrams(sock: socket.socket) -> list[str]:
    sock.settimeout(0.5)
    out = []
    try:
        while True:
            out.append(sock.recv(65536).decode())
    except TimeoutError:
        return out


def test_udp(tmp_path):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        log, _ = read_alerts_with(tmp_path, f"udp://127.0.0.1:{sock.getsockname()[1]}")
        received = parse(drain_datagrams(sock))
    assert any(r["type"] == "blacklist" for _, r in received)
    check_against_logfile(received, log)


def test_tcp_one_message_per_line(tmp_path):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        chunks: list[bytes] = []

        def collect() -> None:
            conn, _ = server.accept()
            with conn:
                while data := conn.recv(65536):
                    chunks.append(data)

        t = threading.Thread(target=collect)
        t.start()
        log, _ = read_alerts_with(tmp_path, f"tcp://127.0.0.1:{server.getsockname()[1]}")
        t.join(timeout=10)
    check_against_logfile(parse(b"".join(chunks).decode().splitlines()), log)


def test_unix_socket(tmp_path):
    path = str(tmp_path / "log.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(path)
        log, _ = read_alerts_with(tmp_path, path)
        check_against_logfile(parse(drain_datagrams(sock)), log)


@pytest.mark.parametrize("flags,message", [
    (["--syslog", "ftp://127.0.0.1:514"], "wirewatch: output.syslog = 'ftp://127.0.0.1:514': expected udp://HOST:PORT, "
                                          "tcp://HOST:PORT or a unix socket path such as /dev/log"),
    (["--syslog", "udp://127.0.0.1:514", "--set", "output.syslog_facility=kitchen"],
     "wirewatch: output.syslog_facility = 'kitchen': expected one of "),
    (["--syslog", "tcp://127.0.0.1:1"], "wirewatch: syslog tcp://127.0.0.1:1: Connection refused"),
])
def test_bad_syslog_settings_are_one_line_errors(flags, message):
    r = cli("read", PCAP, *flags)
    assert r.returncode == 2
    assert r.stderr.strip().startswith(message) and len(r.stderr.strip().splitlines()) == 1, r.stderr
