"""A truncated capture on inputs that cannot seek: `wirewatch read <(head -c N x.pcap)` and
standard input keep every good packet (also those of the failing batch), name the right
packet and exit 2 with one line (issue 9, defect 9). Behaviour only: holds for any reader."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from alert_captures import storm_capture

CUT = 7515  # bytes: the 24-byte header and 107 whole 70-byte records, then part of the 108th
GOOD = 107


@pytest.fixture(scope="module")
def capture(tmp_path_factory):
    return storm_capture(str(tmp_path_factory.mktemp("damage") / "x.pcap"), 300)


def summary_and_errors(r: subprocess.CompletedProcess) -> tuple[dict, list[str]]:
    return json.loads(r.stdout), [line for line in r.stderr.splitlines() if line.strip()]


@pytest.mark.parametrize("batch", ["16", "4096"])
def test_process_substitution(capture, batch):
    cmd = (f"'{sys.executable}' -m wirewatch read <(head -c {CUT} '{capture}') --logfile '' --quiet "
           f"--format json --set general.batch_size={batch}")
    r = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True, timeout=120, check=False,
                       env={"PATH": "/usr/bin:/bin", "WIREWATCH_OUTPUT__DB": ""})
    assert r.returncode == 2, r.stderr
    summary, errors = summary_and_errors(r)
    assert len(errors) == 1 and "Traceback" not in r.stderr
    assert errors[0].startswith("wirewatch: /dev/fd/") and f"after packet {GOOD}" in errors[0], errors
    assert summary["packets"] == GOOD and summary["alerts"] == {"suspicious_port": GOOD}


@pytest.mark.parametrize("batch", ["16", "4096"])
def test_standard_input(capture, batch):
    with open(capture, "rb") as fh:
        data = fh.read(CUT)
    r = subprocess.run([sys.executable, "-m", "wirewatch", "read", "-", "--logfile", "", "--quiet", "--format", "json",
                        "--set", f"general.batch_size={batch}"], input=data, capture_output=True, timeout=120, check=False,
                       env={"PATH": "/usr/bin:/bin", "WIREWATCH_OUTPUT__DB": ""})
    r = subprocess.CompletedProcess(r.args, r.returncode, r.stdout.decode(), r.stderr.decode())
    assert r.returncode == 2, r.stderr
    summary, errors = summary_and_errors(r)
    assert len(errors) == 1 and "standard input" in errors[0] and f"after packet {GOOD}" in errors[0], errors
    assert summary["packets"] == GOOD and summary["alerts"] == {"suspicious_port": GOOD}
    assert summary["files"] == [{"file": "-", "ok": False, "error": errors[0].removeprefix("wirewatch: ")}]
