"""tune_chart.py: `wirewatch tune --png` writes a real PNG of alerts against threshold."""

from __future__ import annotations

from conftest import CORPUS, cli


def test_png_is_written_and_is_a_png(tmp_path):
    out = tmp_path / "tune.png"
    r = cli("tune", str(CORPUS / "dev01_nmap_syn_top100.pcap"), "--png", str(out), "--no-progress")
    assert r.returncode == 0, r.stderr
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
    assert "chart written to" in r.stderr


def test_png_into_a_missing_directory_is_one_line_and_exit_2(tmp_path):
    r = cli("tune", str(CORPUS / "dev01_nmap_syn_top100.pcap"), "--png", str(tmp_path / "no" / "x.png"),
            "--detector", "port_scan", "--no-progress")
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "--png" in r.stderr
