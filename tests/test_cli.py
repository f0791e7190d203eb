"""The command line: bad input gives one clear line and exit 2, and nothing is lost."""

from __future__ import annotations

from conftest import CORPUS, cli, read_alerts

SCAN = str(CORPUS / "dev01_nmap_syn_top100.pcap")


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
