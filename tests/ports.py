"""A TCP port for a test's server: one the OS hands out, never a fixed number.

A fixed port collides when two checkouts (or two tests) run at once; the OS picks one that is
free now. The socket is closed before the server binds, which leaves a small race, but only
with another process asking the OS for a port at the same instant.
"""

from __future__ import annotations

import socket
import subprocess
import time


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
