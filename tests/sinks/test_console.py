"""ConsoleSink: one [ALERT] line per alert; nothing from a packet can drive the terminal."""

from __future__ import annotations

import io

from wirewatch.sinks.console import ConsoleSink


def test_one_line_per_alert_with_control_characters_neutralised():
    out = io.StringIO()
    sink = ConsoleSink(out)
    sink.write([{"message": "Possible port scan detected from 10.0.0.1"},
                {"message": "evil \x1b[2J\x1b]0;title\x07 name\nnext"}])
    sink.close()
    assert out.getvalue() == ("[ALERT] Possible port scan detected from 10.0.0.1\n"
                              "[ALERT] evil ?[2J?]0;title? name?next\n")
    assert sink.filter([{"message": "m"}]) == [{"message": "m"}] and not sink.keeps_muted  # SinkBase defaults
