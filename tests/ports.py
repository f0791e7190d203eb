"""A TCP port for a test's server: one the OS hands out, never a fixed number.

A fixed port collides when two checkouts (or two tests) run at once; the OS picks one that is
free now. The socket is closed before the server binds, which leaves a small race, but only
with another process asking the OS for a port at the same instant.
"""

from __future__ import annotations

import socket


def free_port() -> int:
    """A TCP port free on 127.0.0.1 at the time of the call."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
