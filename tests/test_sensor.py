"""Sensor loss accounting without a live interface: a fake source reports kernel counters."""

from __future__ import annotations

import io
import time

from wirewatch import config
from wirewatch.capture.live import LiveOptions
from wirewatch.engine import Engine
from wirewatch.sensor import Sensor
from wirewatch.sinks import SinkBase


class FakeSource:
    def __init__(self):
        self.counters = (0, 0, 0)

    def kernel_stats(self):
        return self.counters


class Events(SinkBase):
    name = "events"

    def __init__(self):
        self.records = []

    def write(self, alerts):
        pass

    def write_event(self, record):
        self.records.append(record)

    def close(self):
        pass


def test_stats_events_and_drop_warning():
    cfg = config.build()
    log = io.StringIO()
    sensor = Sensor(cfg, LiveOptions(interface="eth9"), config.build, None, log=log)
    sensor.source = FakeSource()
    events = Events()
    sensor.engine = Engine(cfg, [events])
    sensor.started = time.time()
    sensor.source.counters = (1000, 5, 0)  # 0.5 %: no warning
    sensor.emit_stats()
    assert "warning" not in log.getvalue()
    sensor.source.counters = (2000, 60, 3)  # 55 of 1055 in this interval: 5.2 %
    sensor.emit_stats(final=True)
    assert "warning: kernel dropped 55 of 1,055 packets (5.2 %) in the last interval" in log.getvalue()
    last = events.records[-1]
    assert last["event_type"] == "stats" and last["in_iface"] == "eth9" and last["stats"]["final"] is True
    assert last["stats"]["capture"] == {"kernel_packets": 2000, "kernel_drops": 60, "kernel_ifdrops": 3}
