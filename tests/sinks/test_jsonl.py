"""sinks/jsonl.py: one EVE object per line, appended; after logrotate a new file at the same
path, and when that cannot be opened the old handle keeps the alerts (issue 9)."""

from __future__ import annotations

import json
import os

import pytest

from wirewatch.sinks.jsonl import JsonlSink


def test_lines_are_appended_one_object_each(tmp_path):
    log = tmp_path / "logs" / "a.json"  # the directory is created
    sink = JsonlSink(str(log))
    sink.write([{"event_type": "alert", "n": 1}, {"event_type": "alert", "n": 2}])
    sink.write([])
    sink.write_event({"event_type": "stats"})
    sink.close()
    JsonlSink(str(log)).close()  # reopening appends, never truncates
    assert [json.loads(x) for x in log.read_text().splitlines()] == [
        {"event_type": "alert", "n": 1}, {"event_type": "alert", "n": 2}, {"event_type": "stats"}]


def test_reopen_after_rotation_writes_a_new_file(tmp_path):
    log = tmp_path / "a.json"
    sink = JsonlSink(str(log))
    sink.write([{"n": 1}])
    os.rename(log, tmp_path / "a.json.1")
    assert sink.reopen() is None
    sink.write([{"n": 2}])
    sink.close()
    assert log.read_text() == '{"n": 2}\n' and (tmp_path / "a.json.1").read_text() == '{"n": 1}\n'


def test_a_log_that_cannot_be_reopened_keeps_the_old_handle(tmp_path):
    log = tmp_path / "a.json"
    sink = JsonlSink(str(log))
    os.rename(log, tmp_path / "a.json.1")
    os.mkdir(log)  # the path is now a directory: open() fails whoever we are
    problem = sink.reopen()
    assert problem is not None and problem.startswith(f"{log}: cannot reopen alert log: ")
    assert problem.endswith("still writing to the old file")
    sink.write([{"n": 3}])
    sink.close()
    assert (tmp_path / "a.json.1").read_text() == '{"n": 3}\n'


def test_an_unopenable_path_is_one_clear_error(tmp_path):
    (tmp_path / "dir").mkdir()
    with pytest.raises(OSError, match=r"dir: cannot open alert log: Is a directory"):
        JsonlSink(str(tmp_path / "dir"))
