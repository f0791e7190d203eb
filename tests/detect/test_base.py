"""The Detector contract: every registered detector has what the engine calls, and the optional
parts' defaults do nothing (no clock-driven findings; reconfigure keeps the new settings)."""

from __future__ import annotations

import inspect

from wirewatch import config
from wirewatch.detect import registry
from wirewatch.detect.base import Detector, Reconfigurable

CALLED = [name for name, _ in inspect.getmembers(Detector, inspect.isfunction) if not name.startswith("_")]


def test_every_built_detector_has_every_method_the_engine_calls():
    assert sorted(CALLED) == ["expire", "finish", "near_misses", "observe", "reconfigure", "stats", "tick"]
    for det in registry.default_detectors(config.build()):
        assert isinstance(det.name, str) and det.name in registry.names()
        assert [m for m in CALLED if not callable(getattr(det, m, None))] == [], det.name


def test_defaults_no_clock_findings_and_reconfigure_applies_the_section():
    class Quiet(Reconfigurable):
        configured = 0

        def configure(self) -> None:
            self.configured += 1

    q = Quiet()
    assert q.tick(123.0) == []
    assert q.finish(123.0) == []  # nothing held back to decide at the end of input
    assert q.near_misses(123.0) == []  # a detector without a figure growing towards a threshold
    section = config.build().detect.port_scan
    q.reconfigure(section)
    assert q.cfg is section and q.configured == 1
