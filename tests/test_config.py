"""Config parsing raises only its own error type, whatever it is given."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wirewatch import config
from wirewatch.config import ConfigError


def test_defaults_are_valid_and_frozen():
    cfg = config.build()
    assert cfg.detect.port_scan.threshold == 20 and cfg.alerts.cooldown == 30.0
    import dataclasses
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.alerts.cooldown = 1  # type: ignore[misc]


def test_list_values_from_text():
    cfg = config.build([config.parse_assignment("detect.suspicious_port.ports=23, 4444")])
    assert cfg.detect.suspicious_port.ports == [23, 4444]
    cfg = config.build([config.parse_assignment("detect.suspicious_port.ports=[1,2]")])
    assert cfg.detect.suspicious_port.ports == [1, 2]


def test_unknown_section_in_file(tmp_path):
    p = tmp_path / "c.toml"
    p.write_text("[detect.port_scam]\nthreshold=3\n")
    with pytest.raises(ConfigError, match=r"unknown section \[detect.port_scam\]"):
        config.load(str(p), environ={})


def test_invalid_toml(tmp_path):
    p = tmp_path / "c.toml"
    p.write_text("[general\n")
    with pytest.raises(ConfigError, match="invalid TOML"):
        config.load(str(p), environ={})


keys = st.sampled_from(["general.time_window", "detect.port_scan.threshold", "detect.blacklist.files",
                        "detect.suspicious_port.ports", "output.console", "alerts.cooldown", "nope.key", "x"])


@settings(max_examples=300, deadline=None)
@given(keys, st.one_of(st.text(max_size=30), st.integers(), st.floats(), st.booleans(),
                       st.lists(st.one_of(st.integers(), st.text(max_size=5)), max_size=3)))
def test_parsing_raises_only_config_error(key, value):
    section, _, name = key.rpartition(".")
    try:
        config.build([(section, name, value, "fuzz")])
    except ConfigError:
        pass


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=60))
def test_assignments_raise_only_config_error(text):
    try:
        config.build([config.parse_assignment(text)])
    except ConfigError:
        pass


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=80))
def test_toml_files_raise_only_config_error(tmp_path_factory, text):
    p = tmp_path_factory.mktemp("c") / "c.toml"
    p.write_text(text)
    try:
        config.load(str(p), environ={})
    except ConfigError:
        pass
