"""A TCP port for a test's server: one the OS hands out, never a fixed number; a dashboard
process on one (start_dashboard), and the headless Chromium the browser tests drive.

A fixed port collides when two checkouts (or two tests) run at once; the OS picks one that is
free now. The socket is closed before the server binds, which leaves a small race, but only
with another process asking the OS for a port at the same instant.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def free_port() -> int:
    """A TCP port free on 127.0.0.1 at the time of the call."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_listening(port: int, proc: subprocess.Popen, seconds: float = 30.0) -> None:
    """Until a server started as `proc` accepts on 127.0.0.1:port; fails at once if it exited."""
    deadline = time.time() + seconds
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            assert proc.poll() is None, proc.communicate()
            assert time.time() < deadline, f"nothing listens on 127.0.0.1:{port} after {seconds:g} s"
            time.sleep(0.2)


def wait_answering(url: str, seconds: float) -> None:
    """Until `url` gives an HTTP answer, whatever its status (a server that accepted already)."""
    try:
        urllib.request.urlopen(url, timeout=seconds).close()
    except urllib.error.HTTPError:
        pass  # an answer all the same (401, 404)


@contextmanager
def start_dashboard(env: dict, *args: str, seconds: float = 30.0) -> Iterator[tuple[str, subprocess.Popen]]:
    """A `wirewatch dashboard` process on a free port (its store from `args` or `env`): yields
    (its base URL, the process) once it has answered a request; terminated on the way out.

    Answered, not only accepting: the dashboard listens before its warm-up and its drop from
    root, and serves nothing until both are done (a test that checks its uid on the first
    connection could otherwise see root)."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "wirewatch", "dashboard", *args, "--port", str(port)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        wait_listening(port, proc, seconds)
        wait_answering(f"http://127.0.0.1:{port}/login", seconds)
        yield f"http://127.0.0.1:{port}", proc
    finally:
        proc.terminate()
        proc.wait(timeout=10)


CHROMIUM = "/usr/bin/chromium"  # Debian's (.ci/run installs it)
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]


def need_chromium() -> None:
    import pytest
    if not os.path.exists(CHROMIUM):
        pytest.fail("Debian's chromium is not installed (.ci/run installs it)")


def launch_chromium(playwright: Any) -> Any:
    """Headless Debian Chromium under Playwright, without sandbox (root in CI), GPU or background traffic."""
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)


def open_page(browser: Any, width: int, height: int) -> tuple[Any, list[str]]:
    """A new page of `width` x `height`, and the list its script errors are collected into."""
    page = browser.new_page(viewport={"width": width, "height": height})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    return page, errors


@contextmanager
def nobody_store(prefix: str) -> Iterator[tuple[Path, Path]]:
    """(a work directory under /tmp, a store path in its store/ folder) that a dashboard started
    as root can still use after it drops to nobody; removed on the way out. Call
    hand_to_nobody(db) once the store is filled."""
    work = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    try:
        os.chmod(work, 0o777)
        db = work / "store" / "ww.db"
        db.parent.mkdir()
        os.chmod(db.parent, 0o777)
        yield work, db
    finally:
        shutil.rmtree(work, ignore_errors=True)


def hand_to_nobody(db: Path) -> None:
    """The store's files (database, WAL, spool) writable by the dropped dashboard."""
    for f in db.parent.iterdir():
        os.chmod(f, 0o666)
