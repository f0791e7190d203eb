"""Bad configuration values: one line naming source, key and value, exit 2 (issue 9, defect 9)."""

from __future__ import annotations

import subprocess
import sys

import pytest
from conftest import CORPUS, cli

from wirewatch import config
from wirewatch.settings import MAX_CAP

PCAP = str(CORPUS / "dev01_nmap_syn_top100.pcap")


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "1e999", "+nan"])
def test_non_finite_numbers_are_refused_naming_key_and_value(value):
    r = cli("read", PCAP, "--logfile", "", "--set", f"general.time_window={value}")
    assert r.returncode == 2
    assert r.stderr.strip() == f"wirewatch: --set: general.time_window = '{value}': expected a finite number"
    assert r.stdout == ""


def test_non_finite_numbers_from_a_file_and_the_environment(tmp_path):
    toml = tmp_path / "w.toml"
    toml.write_text("[alerts]\ncooldown = inf\n")
    with pytest.raises(config.ConfigError, match=rf"{toml}: alerts.cooldown = inf: expected a finite number"):
        config.load(str(toml), environ={})
    with pytest.raises(config.ConfigError, match="environment WIREWATCH_DETECT__SYN_FLOOD__WINDOW: "
                                                 "detect.syn_flood.window = 'nan': expected a finite number"):
        config.load(None, environ={"WIREWATCH_DETECT__SYN_FLOOD__WINDOW": "nan"})


@pytest.mark.parametrize("value", [10**9, 10**12])
def test_state_caps_have_an_upper_bound(value):
    r = cli("read", PCAP, "--logfile", "", "--set", f"detect.distributed_scan.max_probes={value}")
    assert r.returncode == 2
    assert r.stderr.strip() == (f"wirewatch: --set: detect.distributed_scan.max_probes = '{value}': "
                                f"must be at most {MAX_CAP}")


def test_every_state_cap_is_bounded():
    caps = [(name, f) for name, cls in config.sections().items() for f in config.dataclasses.fields(cls)
            if f.metadata.get("help", "").startswith("Cap on")]
    assert len(caps) >= 10
    assert all(f.metadata["max"] == MAX_CAP for _, f in caps), [n for n, f in caps if f.metadata["max"] != MAX_CAP]
    config.build([("detect.port_scan", "max_probes", MAX_CAP, "test")])  # the ceiling itself is allowed


def test_config_into_a_closed_pipe_exits_quietly():
    """`wirewatch config | head`: printed '[Errno 32] Broken pipe' and exited 2."""
    proc = subprocess.Popen([sys.executable, "-m", "wirewatch", "config"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    proc.stdout.close()  # the reader is gone before the first line
    err = proc.stderr.read()
    assert proc.wait(timeout=60) == 0
    assert err == b""
    head = subprocess.run(f"'{sys.executable}' -m wirewatch config | head -n 2", shell=True, capture_output=True,
                          text=True, check=True)
    assert head.stdout.startswith("[general]\n") and head.stderr == ""
