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
    assert r.returncode == 2 and "detect.port_scan.threshold = '0': must be at least 2" in r.stderr
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


def _one_line(r, line: str) -> None:
    assert r.returncode == 2, r.stderr
    assert r.stderr.splitlines() == [line] and r.stdout == ""


def test_a_config_flag_s_bad_value_is_the_config_line(tmp_path):
    """The flags that set a config key are validated as --set is (main: argparse's whole usage,
    then `wirewatch read: error: argument --scan-threshold: invalid int value: 'nan'`)."""
    cases = [("--scan-threshold", "nan", "detect.port_scan.threshold = 'nan': expected an integer"),
             ("--traffic-threshold", "inf", "detect.traffic_burst.threshold = 'inf': expected an integer"),
             ("--scan-threshold", "-5", "detect.port_scan.threshold = '-5': must be at least 2"),
             ("--alert-frames", "1e3", "output.alert_frames = '1e3': expected an integer"),
             ("--time-window=-inf", None, "general.time_window = '-inf': expected a finite number"),
             ("--cooldown", "1e999", "alerts.cooldown = '1e999': expected a finite number")]
    for flag, value, said in cases:
        args = [flag] if value is None else [flag, value]
        _one_line(cli("read", SCAN, "--logfile", "", *args), f"wirewatch: {flag.split('=')[0]}: {said}")
    _one_line(cli("dashboard", "--port", "0"), "wirewatch: --port: web.port = '0': must be at least 1")


def test_any_other_bad_command_line_is_one_line(tmp_path):
    """argparse printed its usage (10 lines) before its error."""
    _one_line(cli("read", SCAN, "--time-window", "-inf"),
              "wirewatch read: argument --time-window: expected one argument (a value that starts with '-' "
              "is written --option=VALUE) (see wirewatch read --help)")
    _one_line(cli("read", SCAN, "--format", "xml"),
              "wirewatch read: argument --format: invalid choice: 'xml' (choose from 'text', 'json') "
              "(see wirewatch read --help)")
    _one_line(cli("read"), "wirewatch read: the following arguments are required: FILE (see wirewatch read --help)")
    _one_line(cli("tune", SCAN, "--margin", "x"),
              "wirewatch tune: argument --margin: invalid float value: 'x' (see wirewatch tune --help)")


def test_live_options_out_of_range_are_refused_before_capture():
    """--snaplen -5 and 99999999999, --buffer-size 999999999 ended in tracebacks (ValueError: negative
    count; OverflowError) once the capture opened; --buffer-size 0, --stats-interval nan, 0 or -1 were
    taken as they were. Refused by the parser now, before any capture is opened (no root needed)."""
    for command in ("monitor", "run"):
        for flag, value, said in [("--snaplen", "-5", "must be from 1 to 262144"),
                                  ("--snaplen", "99999999999", "must be from 1 to 262144"),
                                  ("--snaplen", "x", "expected a whole number"),
                                  ("--buffer-size", "0", "must be from 1 to 2047"),
                                  ("--buffer-size", "999999999", "must be from 1 to 2047"),
                                  ("--stats-interval", "nan", "must be from 0.1 to 86400"),
                                  ("--stats-interval", "0", "must be from 0.1 to 86400"),
                                  ("--stats-interval", "inf", "must be from 0.1 to 86400")]:
            _one_line(cli(command, "-i", "lo", f"{flag}={value}"),
                      f"wirewatch {command}: argument {flag}: {value!r}: {said} (see wirewatch {command} --help)")


def test_a_duration_beyond_a_year_is_refused(tmp_path):
    """general.time_window = 1e18 was taken, and syn_flood's alert then failed to name its window's
    start (before year 1): `detector syn_flood failed: OSError: [Errno 75] Value too large for defined
    data type (continuing)`, exit 0 and the flood's alert lost."""
    flood = str(CORPUS / "dev10_hping3_syn_flood.pcap")
    for key in ("general.time_window", "detect.syn_flood.window", "detect.port_scan.slow_window",
                "alerts.cooldown", "detect.failed_handshake.timeout", "detect.blacklist.refresh"):
        _one_line(cli("read", flood, "--logfile", "", "--set", f"{key}=1e18"),
                  f"wirewatch: --set: {key} = '1e18': must be at most 31536000")
    log = tmp_path / "a.json"
    r = cli("read", flood, "--logfile", str(log), "--quiet", "--set", "general.time_window=31536000")
    assert r.returncode == 0 and "failed" not in r.stderr, r.stderr
    assert [a["type"] for a in read_alerts(log)] == ["syn_flood"]


def test_a_command_line_parses_as_with_every_command_s_parser():
    """main builds only the parser of the command the line starts with (start-up): each
    command's line gives the namespace the whole parser gives; a line that starts with
    anything else (--help, --version, a mistake) gets every command's parser."""
    from wirewatch.cli import COMMANDS, build_parser, command_of

    lines = [["read", "a.pcap", "b.pcap", "--format", "json", "--quiet", "--set", "general.workers=1"],
             ["monitor", "-i", "eth0", "--bpf", "tcp", "--snaplen", "832"],
             ["run", "-i", "lo", "--port", "9000", "--buffer-size", "8"],
             ["dashboard", "--host", "127.0.0.1", "--db", "x.db"],
             ["tune", "a.pcap", "--grid", "port_scan.threshold=5:50:5", "--margin", "2"],
             ["extract", "12", "-o", "-"],
             ["config", "--db", ""]]
    assert [line[0] for line in lines] == list(COMMANDS)
    for argv in lines:
        assert command_of(argv) == argv[0]
        assert build_parser(command_of(argv)).parse_args(argv) == build_parser().parse_args(argv)
    assert [command_of(x) for x in (["--help", "read"], ["--version"], ["reed", "a.pcap"], [])] == [None] * 4
    r = cli("read")  # a read without a file: read's own one-line usage error
    assert r.returncode == 2 and r.stderr.strip().splitlines() == [
        "wirewatch read: the following arguments are required: FILE (see wirewatch read --help)"]
