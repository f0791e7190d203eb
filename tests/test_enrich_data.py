"""The default enrichment data's arrays: built from ip-location-db CSV files (here small ones
the test writes, shaped like the packages': quoted names, overlapping rows, IPv6 ranges that
share their upper 64 bits), cached whole or not at all, mapped again without a rebuild; and
the real packages' cache against a plain reading of their files."""

from __future__ import annotations

import ipaddress
import json
import os
import random
import time

import enrich_reference as reference
import pytest

from wirewatch import enrich_data
from wirewatch.enrich_data import ASN_PACKAGE, COUNTRY_PACKAGE, FILES, DefaultData, data_date, flatten


def n(ip: str) -> int:
    return int(ipaddress.ip_address(ip))


ASN4 = [("1.0.0.0", "1.0.0.255", 13335, '"Cloudflare, Inc."'), ("2.0.0.0", "2.255.255.255", 3215, "Orange S.A."),
        ("2.1.0.0", "2.1.0.255", 64500, '"LLC ""SPUTNIK"""'),  # inside the row above
        ("9.0.0.0", "9.0.0.9", 64501, "Across"), ("9.0.0.5", "9.0.0.20", 64502, "Over")]  # overlapping
ASN6 = [("2001:db8::", "2001:db8::ffff", 64510, "Low half"), ("2001:db8::1:0", "2001:db8::1:ffff", 64511, "High half"),
        ("2a00::", "2a00:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 64512, "Wide")]
CC4 = [("1.0.0.0", "1.0.0.255", "AU"), ("2.0.0.0", "2.255.255.255", "FR"), ("2.1.0.0", "2.1.0.127", "RU")]
CC6 = [("2001:db8::", "2001:db8::1:ffff", "JP"), ("2a00::", "2a00::ffff", "DE")]


@pytest.fixture
def packages(tmp_path, monkeypatch):
    """A node_modules with the two data packages, written from the rows above."""
    modules = tmp_path / "node_modules"
    for package in (ASN_PACKAGE, COUNTRY_PACKAGE):
        (modules / package).mkdir(parents=True)
        (modules / package / "package.json").write_text(json.dumps({"name": package, "version": "2.3.2026061719"}))
    for (kind, version), filename in FILES.items():
        rows = {("asn", 4): ASN4, ("asn", 6): ASN6, ("country", 4): CC4, ("country", 6): CC6}[(kind, version)]
        package = ASN_PACKAGE if kind == "asn" else COUNTRY_PACKAGE
        lines = [",".join([str(n(r[0])), str(n(r[1])), *map(str, r[2:])]) for r in rows]
        (modules / package / filename).write_text("\n".join(lines) + "\n")
    monkeypatch.setenv("WIREWATCH_NODE_MODULES", str(modules))
    return modules


def test_lookups_follow_the_rows_and_the_narrower_row_wins_where_they_overlap(packages, tmp_path):
    d = DefaultData(str(tmp_path / "cache"))
    assert d.built
    assert d.lookup("1.0.0.7") == {"country": "AU", "as": {"number": 13335, "name": "Cloudflare, Inc."}}
    assert d.lookup("2.1.0.1") == {"country": "RU", "as": {"number": 64500, "name": 'LLC "SPUTNIK"'}}
    # after the inner rows end, the enclosing rows answer again
    assert d.lookup("2.1.0.200") == {"country": "FR", "as": {"number": 64500, "name": 'LLC "SPUTNIK"'}}
    assert d.lookup("2.1.1.0") == {"country": "FR", "as": {"number": 3215, "name": "Orange S.A."}}
    assert d.lookup("9.0.0.4")["as"]["number"] == 64501 and d.lookup("9.0.0.5")["as"]["number"] == 64502
    assert d.lookup("9.0.0.20")["as"]["number"] == 64502 and d.lookup("9.0.0.21") == {}
    assert d.lookup("1.0.1.0") == {} and d.lookup("0.255.255.255") == {}
    # IPv6: two rows with the same upper 64 bits, told apart by the lower ones
    assert d.lookup("2001:db8::1") == {"country": "JP", "as": {"number": 64510, "name": "Low half"}}
    assert d.lookup("2001:db8::1:1") == {"country": "JP", "as": {"number": 64511, "name": "High half"}}
    assert d.lookup("2001:db8::2:0") == {}
    assert d.lookup("2a00::1") == {"country": "DE", "as": {"number": 64512, "name": "Wide"}}
    assert d.lookup("2a00:1::1") == {"as": {"number": 64512, "name": "Wide"}}
    assert d.lookup("2a01::") == {} and d.lookup("::1") == {}
    assert "data of 2026-06-17" in d.describe() and data_date("2.3.2026061719") == "2026-06-17"


def test_flatten_matches_the_narrowest_covering_row_on_random_rows():
    rng = random.Random(7)
    rows = []
    for i in range(300):
        s = rng.randrange(0, 5000)
        rows.append((s, s + rng.choice([0, 3, 40, 500]), i))
    flat = flatten(rows)
    assert all(a[1] < b[0] for a, b in zip(flat, flat[1:])) and all(s <= e for s, e, _ in flat)
    for x in range(0, 5600, 7):
        covering = [r for r in rows if r[0] <= x <= r[1]]
        want = max(covering, key=lambda r: (r[0], -r[1], r[2]))[2] if covering else None
        got = next((v for s, e, v in flat if s <= x <= e), None)
        assert got == want, x


def test_the_cache_is_mapped_on_the_next_load_and_rebuilt_when_damaged(packages, tmp_path, capsys):
    root = str(tmp_path / "cache")
    first = DefaultData(root)
    assert first.built and "cached in" in capsys.readouterr().err
    again = DefaultData(root)
    assert not again.built and again.lookup("1.0.0.1") == first.lookup("1.0.0.1")
    assert not os.listdir(root)[0].startswith(".build")  # no temporary directory left behind
    os.remove(os.path.join(first.directory, "asn4_start.npy"))  # half a cache is no cache
    assert DefaultData(root).built


def test_an_unwritable_cache_directory_still_answers_and_says_so(packages, tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    d = DefaultData(str(blocker / "enrich"))
    assert d.built and d.lookup("1.0.0.1")["as"]["number"] == 13335
    assert "not cached" in capsys.readouterr().err


def test_missing_packages_are_reported(tmp_path, monkeypatch):
    monkeypatch.setenv("WIREWATCH_NODE_MODULES", str(tmp_path))
    monkeypatch.setattr(enrich_data, "__file__", str(tmp_path / "enrich_data.py"))
    with pytest.raises(enrich_data.DataMissing, match="npm install"):
        DefaultData(str(tmp_path / "cache"))
    assert enrich_data.main([str(tmp_path)]) == 2


def test_the_real_data_cache_agrees_with_its_files_and_loads_fast(tmp_path):
    """The packages package.json installs, cached where make setup builds it (var/enrich):
    random addresses from every file's rows give what the files say (the narrowest covering
    row), and mapping the cache takes milliseconds, not the seconds of a build."""
    modules = enrich_data.node_modules()
    assert modules is not None, "npm install puts the data packages in node_modules"
    d = DefaultData(os.path.join("var", "enrich"))
    started = time.perf_counter()
    again = DefaultData(os.path.join("var", "enrich"))
    assert not again.built and time.perf_counter() - started < 1.0
    rng = random.Random(16)
    for kind, version in FILES:
        rows = reference.rows(kind, version)
        xs = [rng.randint(r[0], r[1]) for r in rng.sample(rows, 6)]
        # where rows overlap: inside the later row, and just after it ends
        overlaps = [i for i in range(len(rows) - 1) if rows[i][1] >= rows[i + 1][0]][:3]
        xs += [x for i in overlaps for x in (rows[i + 1][0], rows[i + 1][1] + 1)]
        for x in xs:
            want = reference.covering(kind, version, x)
            if want is None:
                continue
            ip = str(ipaddress.IPv6Address(x) if version == 6 else ipaddress.IPv4Address(x))
            got = d.lookup(ip)
            if kind == "asn":
                assert (got["as"]["number"], got["as"]["name"]) == want, ip
            else:
                assert got["country"] == want, ip
