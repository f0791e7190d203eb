"""store/schema.py: the SQLite store's migrations, address keys that compare as text, CIDR
ranges, and records as the JSON text the store keeps."""

from __future__ import annotations

import ipaddress
import json
import sqlite3

import numpy as np
import pytest

from wirewatch.store.schema import MIGRATIONS, addr_key, cidr_range, migrate, record_json, spool_path, store_files


def test_migrate_reaches_the_latest_version_and_is_idempotent(tmp_path):
    c = sqlite3.connect(tmp_path / "ww.db", isolation_level=None)
    assert migrate(c) == len(MIGRATIONS) and migrate(c) == len(MIGRATIONS)
    assert c.execute("SELECT version FROM schema_version").fetchall() == [(len(MIGRATIONS),)]
    names = {r[0] for r in c.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"alerts", "stats", "mutes", "alert_batches", "sensors", "sensor_sources", "alert_owners"} <= names


@pytest.mark.parametrize("ip", ["10.0.0.1", "0.0.0.0", "255.255.255.255", "fd00::9", "::1", "fe80::1%eth0"])
def test_addr_key_is_the_ipv4_mapped_128_bit_value(ip):
    value = ipaddress.ip_address(ip.split("%")[0])
    if value.version == 4:
        value = ipaddress.IPv6Address(f"::ffff:{value}")
    assert addr_key(ip) == f"{int(value):032x}"
    assert addr_key(None) is None and addr_key("") is None


def test_cidr_ranges_contain_exactly_their_addresses():
    lo, hi = cidr_range(" 10.0.1.0/24 ")
    inside = [addr_key(f"10.0.1.{i}") for i in (0, 77, 255)]
    outside = [addr_key(a) for a in ("10.0.0.255", "10.0.2.0", "::ffff:10.0.2.0", "fd00::1")]
    assert all(lo <= k <= hi for k in inside) and not any(lo <= k <= hi for k in outside)
    assert cidr_range("10.0.1.7") == (addr_key("10.0.1.7"),) * 2 and cidr_range("10.0.1.7/24") == (lo, hi)
    for bad in ("10.0.1.0/33", "nope", ""):
        with pytest.raises(ValueError):
            cidr_range(bad)


def test_record_json_handles_numpy_and_unknown_types():
    text = record_json({"n": np.int64(7), "f": np.float32(0.5), 3: "x"})
    assert json.loads(text) == {"n": 7, "f": 0.5, "3": "x"}
    from pathlib import PurePosixPath
    assert json.loads(record_json({"file": PurePosixPath("/var/x.pcap")})) == {"file": "/var/x.pcap"}  # str()


def test_the_store_files_are_those_that_exist_beside_the_database(tmp_path):
    db = str(tmp_path / "ww.db")
    assert spool_path(db) == db + ".spool" and store_files(db) == []
    c = sqlite3.connect(db)
    c.execute("PRAGMA journal_mode=WAL")
    migrate(c)
    open(spool_path(db), "w").close()
    assert store_files(db) == [db, db + "-wal", db + "-shm", db + ".spool"]
    c.close()
