"""Blocklist formats and vectorized matching."""

from __future__ import annotations

import time

import numpy as np
import pytest

from wirewatch.blocklist import BlocklistError, load


def write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text)
    return str(p)


def test_plain_spamhaus_and_firehol_layouts(tmp_path):
    plain = write(tmp_path, "plain.txt", "# comment\n10.0.0.1\n2001:db8::/32  # doc\n\n")
    drop = write(tmp_path, "drop.txt", "; Spamhaus DROP List 2026/11/21\n1.10.16.0/20 ; SBL256894\n")
    netset = write(tmp_path, "firehol.netset", "#\n# firehol_level1\n#\n5.0.0.0/8\n5.1.2.3\n")
    bl = load([plain, drop, netset])
    addrs = np.array([0x0A000001, 0x010A1005, 0x05FF0000, 0x0A000002], np.uint64)
    idx = bl.match_v4(addrs)
    assert [bl.v4_entry[i] if i >= 0 else None for i in idx] == ["10.0.0.1", "1.10.16.0/20", "5.0.0.0/8", None]
    assert bl.v4_source(int(idx[1])) == ("1.10.16.0/20", "drop.txt")
    assert bl.v4_source(int(idx[2])) == ("5.0.0.0/8", "firehol.netset")
    assert bl.v6_source(bl.match_v6(0x20010DB8 << 96)) == ("2001:db8::/32", "plain.txt") and bl.match_v6(1) == -1


def test_malformed_line_names_file_and_line(tmp_path):
    p = write(tmp_path, "bad.txt", "10.0.0.1\n\nnot-an-ip\n")
    with pytest.raises(BlocklistError, match=r"bad.txt:3: not an IP address or CIDR prefix: 'not-an-ip'"):
        load([p])


def test_unreadable_and_binary_files(tmp_path):
    with pytest.raises(BlocklistError, match="cannot read blocklist"):
        load([str(tmp_path / "none.txt")])
    p = tmp_path / "bin.txt"
    p.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(BlocklistError, match="not a text file"):
        load([str(p)])


def test_nested_prefixes_match(tmp_path):
    bl = load([write(tmp_path, "n.txt", "10.0.0.0/8\n10.1.0.0/16\n10.200.0.5\n")])
    idx = bl.match_v4(np.array([0x0A010203, 0x0AC80005, 0x0B000000], np.uint64))
    assert [bl.v4_entry[i] if i >= 0 else None for i in idx] == ["10.0.0.0/8", "10.0.0.0/8", None]


def test_a_million_prefixes_load_and_match_fast(tmp_path):
    rng = np.random.default_rng(1)
    nets = rng.choice(2 ** 24, size=1_000_000, replace=False)
    text = "\n".join(f"{n >> 16}.{(n >> 8) & 255}.{n & 255}.0/24" for n in nets.tolist())
    bl = load([write(tmp_path, "big.txt", text)])
    assert len(bl) == 1_000_000
    probe = rng.integers(0, 2 ** 32, size=200_000, dtype=np.uint64)
    t = time.perf_counter()
    idx = bl.match_v4(probe)
    elapsed = time.perf_counter() - t
    listed = set(nets.tolist())
    expect = np.array([(int(a) >> 8) in listed for a in probe])
    assert ((idx >= 0) == expect).all()
    print(f"matched 200k addresses against 1M prefixes in {elapsed * 1000:.1f} ms")


def test_matches_v4_at_the_edges_of_the_listed_range(tmp_path):
    bl = load([write(tmp_path, "e.txt", "10.0.0.0/24\n10.0.2.7\n")])
    first, last = 0x0A000000, 0x0A000207
    probe = np.array([first - 1, last, 0x0A000100, first, last + 1, 0x0A0000FF], np.uint64)
    pos, entry = bl.matches_v4(probe)
    assert pos.tolist() == [1, 3, 5]
    assert [bl.v4_entry[i] for i in entry] == ["10.0.2.7", "10.0.0.0/24", "10.0.0.0/24"]
    assert bl.matches_v4(np.zeros(0, np.uint64))[0].size == 0
    assert load([]).matches_v4(probe)[0].size == 0


def _read_with_list(tmp_path, data: bytes):
    from conftest import CORPUS, cli
    p = tmp_path / "list.txt"
    p.write_bytes(data)
    return cli("read", str(CORPUS / "dev18_blacklist_src.pcap"), "--blacklist", str(p), "--logfile", "",
               "--quiet", "--no-progress", "--format", "json"), str(p)


def test_a_list_saved_with_a_byte_order_mark_and_crlf_lines_is_read(tmp_path):
    """Windows Notepad's list: a UTF-8 BOM and CRLF line ends (main: `list.txt:1: not an IP address
    or CIDR prefix: '\\ufeff10.10.0.99'`, exit 2)."""
    import json
    r, _ = _read_with_list(tmp_path, b"\xef\xbb\xbf10.10.0.99\r\n# lab\r\n198.51.100.7 ; x\r\n")
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout)
    assert summary["alerts"] == {"blacklist": 1} and summary["blacklists"] == [{"list": "list.txt", "entries": 2}]
    r, p = _read_with_list(tmp_path, b"10.10.0.99\n\xef\xbb\xbf1.2.3.4\n")  # only a file starts with one
    assert r.returncode == 2 and r.stderr.splitlines() == [f"wirewatch: {p}:2: not an IP address or CIDR "
                                                           "prefix: '\\ufeff1.2.3.4'"]


def test_an_ipv6_zone_is_refused_not_dropped(tmp_path):
    """fe80::1%eth0: ipaddress took it as fe80::1 and the zone was dropped unsaid (main: exit 0)."""
    r, p = _read_with_list(tmp_path, b"10.10.0.99\nfe80::1%eth0 # the router\n")
    assert r.returncode == 2, r.stderr
    assert r.stderr.splitlines() == [f"wirewatch: {p}:2: an IPv6 zone (%eth0) has no meaning in a blocklist "
                                     "(packets carry none): 'fe80::1%eth0'"]


def test_a_prefix_with_host_bits_set_is_refused_naming_file_line_and_value(tmp_path):
    """10.0.0.1/8 was taken as 10.0.0.0/8 unsaid (main: exit 0, every 10/8 packet an alert): a
    typo of 10.0.0.1/32 or of 10.0.0.0/8, so it is refused, IPv4 (the fast path) and IPv6 alike."""
    for entry, network, one in (("10.0.0.1/8", "10.0.0.0/8", "10.0.0.1"), ("2001:db8::1/32", "2001:db8::/32",
                                                                            "2001:db8::1")):
        r, p = _read_with_list(tmp_path, f"10.10.0.99\n# lab\n{entry} ; x\n".encode())
        assert r.returncode == 2 and r.stdout == "", r.stderr
        bits = entry.split("/")[1]
        assert r.stderr.splitlines() == [f"wirewatch: {p}:3: {entry!r} has host bits set (a prefix is written with "
                                         f"its network address): {network} for the /{bits}, or {one} for the one "
                                         "address"]
    r, _ = _read_with_list(tmp_path, b"10.10.0.99\n10.0.0.0/8\n2001:db8::/32\n10.10.0.99/32\n")  # as written: taken
    assert r.returncode == 0, r.stderr
