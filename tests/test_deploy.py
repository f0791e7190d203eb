"""Deployment files: the systemd units verify, carry the hardening the README promises,
start wirewatch with options it accepts, and `make install-files` puts everything in place."""

from __future__ import annotations

import configparser
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from wirewatch.cli import build_parser

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
UNITS = {"sensor": DEPLOY / "systemd" / "wirewatch-sensor@.service",
         "dashboard": DEPLOY / "systemd" / "wirewatch-dashboard.service"}
INSTALLED_BIN = "/opt/wirewatch/bin/wirewatch"


def service(unit: Path) -> configparser.SectionProxy:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # keys are case-sensitive
    parser.read_string(unit.read_text())
    return parser["Service"]


def exec_args(unit: Path, instance: str = "eth0") -> list[str]:
    line = service(unit)["ExecStart"].replace("\\\n", " ").replace("%i", instance)
    return shlex.split(line)


def test_systemd_analyze_verify_passes(tmp_path):
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze not found: systemd is absent on this machine, the units cannot be verified")
    wirewatch = Path(sys.executable).with_name("wirewatch")
    assert wirewatch.exists(), wirewatch
    names = []
    for unit in UNITS.values():  # the installed path is the venv's on this machine
        text = unit.read_text().replace(INSTALLED_BIN, str(wirewatch))
        name = unit.name.replace("@.", "@eth0.")
        (tmp_path / name).write_text(text)
        names.append(str(tmp_path / name))
    r = subprocess.run([analyze, "verify", "--man=no", *names], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stderr.strip() == "", r.stderr


def test_sensor_has_only_the_capture_capabilities_and_is_confined():
    s = service(UNITS["sensor"])
    assert s["User"] == "wirewatch" and s["Group"] == "wirewatch"
    assert set(s["CapabilityBoundingSet"].split()) == {"CAP_NET_RAW", "CAP_NET_ADMIN"}
    assert set(s["AmbientCapabilities"].split()) == {"CAP_NET_RAW", "CAP_NET_ADMIN"}
    for key, value in (("ProtectSystem", "strict"), ("NoNewPrivileges", "yes"), ("PrivateTmp", "yes"),
                       ("StateDirectory", "wirewatch"), ("LogsDirectory", "wirewatch")):
        assert s[key] == value, key
    assert "AF_PACKET" in s["RestrictAddressFamilies"]
    assert s["ExecReload"].endswith("kill -HUP $MAINPID")


def test_dashboard_is_its_own_unprivileged_user_without_capabilities():
    s = service(UNITS["dashboard"])
    assert s["User"] == "wirewatch-web" != service(UNITS["sensor"])["User"]
    assert s["CapabilityBoundingSet"] == "" and s["AmbientCapabilities"] == ""
    for key, value in (("ProtectSystem", "strict"), ("NoNewPrivileges", "yes"), ("PrivateTmp", "yes"),
                       ("StateDirectory", "wirewatch-web")):
        assert s[key] == value, key
    assert "AF_PACKET" not in s["RestrictAddressFamilies"]


def test_units_start_wirewatch_with_options_it_accepts(tmp_path):
    for name, unit in UNITS.items():
        args = exec_args(unit)
        assert args[0] == INSTALLED_BIN
        parsed = build_parser().parse_args(args[1:])
        assert parsed.command == ("monitor" if name == "sensor" else "dashboard")
        assert parsed.config == "/etc/wirewatch/wirewatch.toml"
    # the example config the units read loads, with the units' --set overrides
    state = [a for a in exec_args(UNITS["sensor"]) if a.startswith("store.state_dir=")]
    r = subprocess.run([sys.executable, "-m", "wirewatch", "config", "--config", str(DEPLOY / "wirewatch.toml"),
                        "--set", state[0]], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert 'state_dir = "/var/lib/wirewatch"' in r.stdout and "console = false" in r.stdout


def test_logrotate_signals_the_sensors_that_write_the_logs():
    snippet = (DEPLOY / "logrotate" / "wirewatch").read_text()
    log_arg = exec_args(UNITS["sensor"])[exec_args(UNITS["sensor"]).index("--logfile") + 1]
    assert log_arg.startswith("/var/log/wirewatch/") and "/var/log/wirewatch/*.json" in snippet
    assert "--signal=HUP" in snippet and "wirewatch-sensor@*.service" in snippet and "postrotate" in snippet


def test_make_install_files_puts_everything_in_place(tmp_path):
    r = subprocess.run(["make", "-s", "install-files", f"DESTDIR={tmp_path}"], cwd=ROOT, capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    for path in ("etc/systemd/system/wirewatch-sensor@.service", "etc/systemd/system/wirewatch-dashboard.service",
                 "etc/logrotate.d/wirewatch", "etc/wirewatch/wirewatch.toml", "opt/wirewatch/share/README.md"):
        assert (tmp_path / path).is_file(), path
    assert (tmp_path / "etc/systemd/system/wirewatch-sensor@.service").read_text() == UNITS["sensor"].read_text()
    mine = tmp_path / "etc/wirewatch/wirewatch.toml"
    mine.write_text("# edited by the admin\n")
    subprocess.run(["make", "-s", "install-files", f"DESTDIR={tmp_path}"], cwd=ROOT, check=True, timeout=60)
    assert mine.read_text() == "# edited by the admin\n"  # an existing config is kept
