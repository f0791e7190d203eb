"""Shared fixtures: run crafted packets or corpus pcaps through the real pipeline."""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from wirewatch import config
from wirewatch.capture.pcapfile import read_batches
from wirewatch.craft import write_pcap
from wirewatch.decode import PacketBatch, decode
from wirewatch.engine import Engine

CORPUS = Path(__file__).parent / "corpus"
# WIREWATCH_PURE_NUMPY=1: the suite runs on the numpy references on purpose (native.load); the
# compiled modules are still built, and the tests comparing the two import them themselves
PURE_NUMPY = bool(os.environ.get("WIREWATCH_PURE_NUMPY"))


def built(name: str):
    """The compiled module wirewatch.native.<name> as built, whatever WIREWATCH_PURE_NUMPY says
    (ImportError when `make setup` did not build it)."""
    import importlib
    return importlib.import_module(f"wirewatch.native.{name}")


@contextlib.contextmanager
def native_paths(compiled: bool) -> Iterator[None]:
    """Run the block on the compiled decoder, kernels and pcap walker as built, or on their numpy
    references, whichever the suite runs under: a test comparing the two compares them under
    WIREWATCH_PURE_NUMPY=1 too."""
    from wirewatch import decode as decode_module
    from wirewatch.capture import walk
    from wirewatch.detect.count import kernels
    with pytest.MonkeyPatch.context() as mp:
        for module, name in ((decode_module, "_decode"), (kernels, "_kernels"), (walk, "_pcapwalk")):
            mp.setattr(module, "_compiled", built(name) if compiled else None)
        yield


def run_packets(tmp_path: Path, packets, overrides: dict | None = None, name: str = "t.pcap") -> tuple[list[dict], Engine]:
    """Write packets to a pcap, analyse it with the given config overrides, return (alerts, engine)."""
    path = write_pcap(str(tmp_path / name), packets)
    return run_file(path, overrides)


def run_file(path: str, overrides: dict | None = None, batch_size: int = 4096) -> tuple[list[dict], Engine]:
    ov = [(k.rsplit(".", 1)[0], k.rsplit(".", 1)[1], v, "test") for k, v in (overrides or {}).items()]
    cfg = config.build(ov)
    engine = Engine(cfg, sinks=[])
    alerts = []
    for raw in read_batches(path, batch_size):
        alerts += engine.feed(raw)
    alerts += engine.flush()
    assert not engine.stats.component_errors, f"a detector or sink raised: {engine.stats.component_errors}"
    return alerts, engine


def decode_file(path: str) -> PacketBatch:
    batches = [decode(r.buf, r.meta, r.linktype) for r in read_batches(path)]
    return PacketBatch.concat(batches)


def cli(*args: str, cwd: str | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    base = {**os.environ, "WIREWATCH_OUTPUT__DB": ""}  # no alert store unless a test asks for one
    return subprocess.run([sys.executable, "-m", "wirewatch", *args], capture_output=True, text=True,
                          cwd=cwd, env={**base, **(env or {})}, timeout=300)


def read_alerts(path: Path) -> list[dict]:
    """The alerts of a JSON-lines log (read and monitor also write stats events there)."""
    records = [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
    return [r for r in records if r.get("event_type") != "stats"]


def read_events(path: Path, kind: str = "alert") -> list[dict]:
    """The events of one type in the JSON-lines log of a sensor that is still writing it:
    a half-written last line is skipped (it is whole at the next read); no log yet, none."""
    out = []
    for line in path.read_text().splitlines() if path.exists() else []:
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line being written
        if rec.get("event_type") == kind:
            out.append(rec)
    return out


SRC = str(Path(__file__).resolve().parent.parent / "src")  # PYTHONPATH of a sensor started in a namespace


def need(tool: str) -> None:
    """A tool a live test runs (nmap, hping3, tcpdump, ...): missing is a failure, not a skip."""
    import shutil
    if shutil.which(tool) is None:
        pytest.fail(f"{tool} is not installed (.ci/run installs it)")


@pytest.fixture
def world():
    """A directory under /tmp the sensor can still use after it drops root (0755, removed after)."""
    import shutil
    import tempfile
    d = Path(tempfile.mkdtemp(prefix="wwlive", dir="/tmp"))
    os.chmod(d, 0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def net():
    """Two network namespaces joined by a veth pair (tests/netns.py), deleted after the test."""
    from netns import lab
    with lab() as L:
        yield L



_databases = itertools.count(1)


@pytest.fixture(scope="session")
def postgres():
    """One throwaway PostgreSQL server for the whole run (tests/pg_server.py); each test takes
    its own database from it with `pg_url`."""
    from pg_server import PgServer
    server = PgServer()
    yield server
    server.close()


@pytest.fixture
def pg_url(postgres) -> str:
    """A new, empty database on the session's PostgreSQL server."""
    return postgres.create_database(f"t{os.getpid()}_{next(_databases)}")


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request, tmp_path) -> str:
    """An empty alert store of each kind: a SQLite path, then a PostgreSQL URL."""
    if request.param == "sqlite":
        return str(tmp_path / "ww.db")
    return request.getfixturevalue("pg_url")


def store_sink(url: str, state_dir: Path, **kw):
    """The sink a sensor writes `url` with (SqliteSink or PostgresSink, its spool in state_dir)."""
    from wirewatch.store.postgres_schema import is_postgres
    if is_postgres(url):
        from wirewatch.store.postgres_sink import PostgresSink
        return PostgresSink(url, str(state_dir / "spool.jsonl"), **kw)
    from wirewatch.store.sqlite_sink import SqliteSink
    return SqliteSink(url, **kw)
