"""The command line: bad input gives one clear line and exit 2, and nothing is lost."""

from __future__ import annotations

import json
import shutil

from conftest import CORPUS, cli, read_alerts

SCAN = str(CORPUS / "dev01_nmap_syn_top100.pcap")


def test_missing_garbage_and_directory_inputs_are_named_and_others_still_analysed(tmp_path):
    garbage = tmp_path / "notes.pcap"
    garbage.write_text("this is not a capture\n")
    log = tmp_path / "a.json"
    r = cli("read", str(tmp_path / "missing.pcap"), str(garbage), str(tmp_path), SCAN, "--logfile", str(log),
            "--format", "json")
    assert r.returncode == 2
    errors = [l for l in r.stderr.splitlines() if l.startswith("wirewatch:")]
    assert errors == [f"wirewatch: {tmp_path / 'missing.pcap'}: no such file",
                      f"wirewatch: {garbage}: not a pcap/pcapng capture (unknown file format)",
                      f"wirewatch: {tmp_path}: is a directory, not a capture file"]
    summary = json.loads(r.stdout)
    assert summary["packets"] == 209 and summary["alerts"]["port_scan"] == 1
    assert [f["ok"] for f in summary["files"]] == [False, False, False, True]


def test_truncated_capture_keeps_every_packet_before_the_damage(tmp_path):
    data = (CORPUS / "dev20_benign_http_200.pcap").read_bytes()
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(data[: len(data) // 2])
    r = cli("read", str(cut), "--logfile", str(tmp_path / "a.json"), "--format", "json")
    assert r.returncode == 2
    assert "damaged capture" in r.stderr and str(cut) in r.stderr
    # count the complete records in the first half with a plain reader
    import struct
    off, n = 24, 0
    half = data[: len(data) // 2]
    while off + 16 <= len(half):
        incl = struct.unpack_from("<I", half, off + 8)[0]
        if off + 16 + incl > len(half):
            break
        off += 16 + incl
        n += 1
    assert json.loads(r.stdout)["packets"] == n


def test_unreadable_file_permission(tmp_path):
    p = tmp_path / "secret.pcap"
    shutil.copy(SCAN, p)
    p.chmod(0)
    r = cli("read", str(p), "--logfile", str(tmp_path / "a.json"), env={"HOME": str(tmp_path)})
    import os
    if os.geteuid() == 0:  # root reads anything: the file must then be analysed
        assert r.returncode == 0
    else:
        assert r.returncode == 2 and "permission denied" in r.stderr


def test_pcapng_is_read(tmp_path):
    from scapy.utils import PcapNgWriter, rdpcap
    pkts = rdpcap(SCAN)
    out = tmp_path / "scan.pcapng"
    with PcapNgWriter(str(out)) as w:
        for p in pkts:
            w.write(p)
    log = tmp_path / "a.json"
    r = cli("read", str(out), "--logfile", str(log), "--quiet")
    assert r.returncode == 0
    assert "port_scan" in {a["type"] for a in read_alerts(log)}


def test_console_lines_and_text_summary(tmp_path):
    r = cli("read", SCAN, "--logfile", str(tmp_path / "a.json"))
    assert "[ALERT] Possible port scan detected from 10.10.0.66" in r.stdout.splitlines()
    assert "packets 209" in r.stderr and "port_scan 1" in r.stderr and "top sources: 10.10.0.66" in r.stderr


def test_familiar_flags_change_behaviour(tmp_path):
    log = tmp_path / "a.json"
    r = cli("read", SCAN, "--logfile", str(log), "--scan-threshold", "200", "--suspicious-ports", "9", "--quiet",
            "--time-window", "5", "--cooldown", "1", "-i", "eth9")
    assert r.returncode == 0
    alerts = read_alerts(log)
    assert {a["type"] for a in alerts} == {"suspicious_port"} and {a["dest_port"] for a in alerts} == {9}
    assert {a["in_iface"] for a in alerts} == {"eth9"}


def test_bad_config_values_are_one_line_errors(tmp_path):
    bad = tmp_path / "w.toml"
    bad.write_text("[detect.port_scan]\nthreshold = 'many'\n")
    r = cli("read", SCAN, "--config", str(bad))
    assert r.returncode == 2
    assert r.stderr.strip() == f"wirewatch: {bad}: detect.port_scan.threshold = 'many': expected an integer"
    r = cli("read", SCAN, "--set", "detect.port_scan.nope=3")
    assert r.returncode == 2 and r.stderr.strip() == "wirewatch: --set: unknown key detect.port_scan.nope"
    r = cli("read", SCAN, "--scan-threshold", "0")
    assert r.returncode == 2 and "detect.port_scan.threshold = 0: must be at least 2" in r.stderr
    r = cli("read", SCAN, "--config", str(tmp_path / "none.toml"))
    assert r.returncode == 2 and "config file not found" in r.stderr
    r = cli("read", SCAN, "--set", "detect.port_scan.max_probes=100000000000")  # 10^11 entries: no machine has that
    assert r.returncode == 2
    assert r.stderr.strip() == ("wirewatch: --set: detect.port_scan.max_probes = '100000000000': "
                                "must be at most 16777216")


def test_malformed_blocklist_line_is_named(tmp_path):
    bl = tmp_path / "bl.txt"
    bl.write_text("# ok\n10.0.0.0/8\n10.0.0.300\n")
    r = cli("read", SCAN, "--blacklist", str(bl))
    assert r.returncode == 2
    assert r.stderr.strip() == f"wirewatch: {bl}:3: not an IP address or CIDR prefix: '10.0.0.300'"


def test_config_command_prints_values_and_help(tmp_path):
    cfgfile = tmp_path / "w.toml"
    cfgfile.write_text("[detect.port_scan]\nthreshold = 33\n[alerts]\ncooldown = 12\n")
    r = cli("config", "--config", str(cfgfile), "--set", "detect.host_sweep.threshold=7",
            env={"WIREWATCH_DETECT__SYN_FLOOD__THRESHOLD": "999"})
    assert r.returncode == 0
    out = r.stdout
    assert "[detect.port_scan]" in out and "threshold = 33" in out and "cooldown = 12.0" in out
    assert "threshold = 7" in out and "threshold = 999" in out
    assert "# Distinct destination ports within the window" in out


def test_layer_order_cli_beats_env_beats_file(tmp_path):
    cfgfile = tmp_path / "w.toml"
    cfgfile.write_text("[detect.port_scan]\nthreshold = 33\n")
    env = {"WIREWATCH_DETECT__PORT_SCAN__THRESHOLD": "44"}
    assert "threshold = 44" in cli("config", "--config", str(cfgfile), env=env).stdout.split("[detect.host_sweep]")[0]
    out = cli("config", "--config", str(cfgfile), "--scan-threshold", "55", env=env).stdout
    assert "threshold = 55" in out.split("[detect.host_sweep]")[0]


def test_dashboard_refuses_open_bind_without_auth(tmp_path):
    r = cli("dashboard", "--db", str(tmp_path / "x.db"), "--host", "0.0.0.0", "--port", "8123")
    assert r.returncode == 2
    assert r.stderr.strip() == ("wirewatch: refusing to serve the dashboard on 0.0.0.0 without authentication "
                                "configured: set web.token (config, WIREWATCH_WEB__TOKEN) or bind 127.0.0.1")


def test_reads_a_capture_from_standard_input(tmp_path):
    """`tcpdump -w - | wirewatch read -`: the same alerts as from the file."""
    import subprocess
    import sys

    def read(args: list[str], stdin: bytes | None = None) -> tuple[int, str, list[dict]]:
        log = tmp_path / "a.json"
        log.unlink(missing_ok=True)
        r = subprocess.run([sys.executable, "-m", "wirewatch", "read", *args, "--quiet", "--logfile", str(log),
                            "--db", ""], input=stdin, capture_output=True, timeout=120)
        return r.returncode, r.stderr.decode(), read_alerts(log)

    code, _, from_file = read([SCAN])
    assert code == 0 and from_file
    code, _, from_stdin = read(["-"], (CORPUS / "dev01_nmap_syn_top100.pcap").read_bytes())
    assert code == 0 and from_stdin == from_file
    code, err, _ = read(["-"], b"this is not a capture\n")
    assert code == 2 and err.strip().endswith("standard input: not a pcap/pcapng capture (unknown file format)")
