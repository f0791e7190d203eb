"""setting/cap: one declaration carries default, help and bounds; list defaults are not shared."""

from __future__ import annotations

import dataclasses

import pytest

from wirewatch import config
from wirewatch.settings import MAX_CAP, cap, setting


@dataclasses.dataclass(frozen=True)
class Example:
    ports: list[int] = setting([1, 2], "Ports.", 0, 65535)
    max_keys: int = cap(1024, "Cap on keys.")


def test_metadata_and_unshared_list_defaults():
    a, b = Example(), Example()
    assert a.ports == [1, 2] and a.ports is not b.ports
    meta = {f.name: dict(f.metadata) for f in dataclasses.fields(Example)}
    assert meta["ports"] == {"help": "Ports.", "min": 0, "max": 65535}
    assert meta["max_keys"] == {"help": "Cap on keys.", "min": 16, "max": MAX_CAP}


def test_every_detector_cap_is_bounded_by_max_cap():
    with pytest.raises(config.ConfigError, match=f"must be at most {MAX_CAP}"):
        config.build([("detect.port_scan", "max_sources", MAX_CAP + 1, "test")])
