"""Blocklist files that are not blocklists: bounded reads, one entry per line (issue 9, defect 9)."""

from __future__ import annotations

import time

import pytest
from conftest import CORPUS, cli

from wirewatch import blocklist

PCAP = str(CORPUS / "dev18_blacklist_src.pcap")


def test_dev_zero_is_refused_quickly_naming_the_file():
    t = time.monotonic()
    r = cli("read", PCAP, "--logfile", "", "--blacklist", "/dev/zero")
    assert time.monotonic() - t < 30
    assert r.returncode == 2
    assert r.stderr.strip() == (f"wirewatch: /dev/zero:1: line longer than {blocklist.MAX_LINE} characters: "
                                "not a blocklist")


def test_two_addresses_on_one_line_is_an_error_naming_file_and_line(tmp_path):
    bl = tmp_path / "block.txt"
    bl.write_text("# feed\n192.0.2.1\n198.51.100.7 203.0.113.9\n")
    r = cli("read", PCAP, "--logfile", "", "--blacklist", str(bl))
    assert r.returncode == 2
    assert r.stderr.strip() == (f"wirewatch: {bl}:3: one address or prefix per line, found 2: "
                                "'198.51.100.7 203.0.113.9'")


def test_comments_after_an_entry_are_still_fine(tmp_path):
    bl = tmp_path / "drop.txt"
    bl.write_text("1.2.3.0/24 ; SBL123\n10.0.0.0/8 # private\n2001:db8::/32\n")
    assert len(blocklist.load([str(bl)])) == 3


def test_a_huge_file_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(blocklist, "MAX_BYTES", 1000)
    bl = tmp_path / "big.txt"
    bl.write_text("".join(f"10.0.{i // 250}.{i % 250}\n" for i in range(200)))
    with pytest.raises(blocklist.BlocklistError, match=r"big.txt:\d+: more than 0 MB: not a blocklist"):
        blocklist.load([str(bl)])
