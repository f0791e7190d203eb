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


def test_frozen_compares_hashes_and_prints_as_a_generated_frozen_dataclass():
    """settings.Frozen: a class declared @dataclass(frozen=True, eq=False, repr=False) on it
    gives the ==, hash and repr @dataclass(frozen=True) would generate (fields left out of
    compare or repr included), and stays frozen."""
    from wirewatch.settings import Frozen

    @dataclasses.dataclass(frozen=True)
    class Generated:
        name: str = "a"
        ports: tuple[int, ...] = (1, 2)
        quiet: int = dataclasses.field(default=0, repr=False)
        note: str = dataclasses.field(default="", compare=False)

    @dataclasses.dataclass(frozen=True, eq=False, repr=False)
    class Written(Frozen):
        name: str = "a"
        ports: tuple[int, ...] = (1, 2)
        quiet: int = dataclasses.field(default=0, repr=False)
        note: str = dataclasses.field(default="", compare=False)

    variants = [{}, {"name": "b"}, {"ports": (3,)}, {"quiet": 5}, {"note": "x"}]
    for a in variants:
        assert repr(Written(**a)) == repr(Generated(**a)).replace("Generated", "Written")
        assert hash(Written(**a)) == hash(Generated(**a))
        for b in variants:
            assert (Written(**a) == Written(**b)) == (Generated(**a) == Generated(**b))
    assert Written() != Generated() and Written() != ("a", (1, 2), 0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        Written().name = "b"  # type: ignore[misc]


def test_config_sections_keep_their_value_semantics():
    """The sections (Frozen): equal when their values are, hashable without lists, printed with
    their values; a changed threshold is a different section."""
    from wirewatch.detect.port_scan import PortScanConfig

    cfg, again = config.build(), config.build()
    assert cfg == again and cfg.detect.port_scan == PortScanConfig() and cfg.general == again.general
    assert hash(cfg.general) == hash(again.general)
    changed = config.build([("detect.port_scan", "threshold", 99, "test")])
    assert changed != cfg and changed.detect.port_scan != PortScanConfig()
    shown = repr(changed.detect.port_scan)
    assert shown.startswith("PortScanConfig(enabled=True, ") and "threshold=99" in shown
