"""Dropping root once the capture handle is open (least privilege)."""

from __future__ import annotations

import os
import pwd


class PrivilegeError(Exception):
    pass


def resolve_user(name: str) -> tuple[int, int]:
    try:
        pw = pwd.getpwnam(name)
    except KeyError:
        raise PrivilegeError(f"--user {name!r}: no such user") from None
    return pw.pw_uid, pw.pw_gid


def make_dirs(path: str) -> list[str]:
    """Create a directory and its missing parents; returns the ones created, outermost
    first: the only directories a process about to drop root may hand to its user."""
    missing: list[str] = []
    probe = os.path.abspath(path)
    while not os.path.isdir(probe):
        missing.append(probe)
        parent = os.path.dirname(probe)
        if parent == probe:
            break
        probe = parent
    os.makedirs(path, exist_ok=True)
    return missing[::-1]


def prepare_path(path: str, uid: int, gid: int) -> None:
    """Create a file's missing directories (and the file) owned by the user we will become;
    an existing directory keeps its owner."""
    if not path:
        return
    for d in make_dirs(os.path.dirname(os.path.abspath(path))):
        os.chown(d, uid, gid)
    if not os.path.exists(path):
        open(path, "a").close()
    os.chown(path, uid, gid)


def prepare_dir(path: str, uid: int, gid: int) -> None:
    """Create a state directory owned by the user we will become (it writes there later)."""
    if not path:
        return
    os.makedirs(path, exist_ok=True)
    os.chown(path, uid, gid)
    for name in os.listdir(path):  # files an earlier run as another user left there
        os.chown(os.path.join(path, name), uid, gid)


def preload() -> None:
    """Import what the standard library loads lazily, while its files are still readable:
    after the drop the interpreter's own directory may be closed to us."""
    import _strptime  # noqa: F401
    import encodings.idna  # noqa: F401
    import logging.handlers  # noqa: F401


def drop_to(uid: int, gid: int) -> None:
    """Irrevocably become uid/gid (no supplementary groups). No-op unless running as root."""
    if os.geteuid() != 0:
        return
    preload()
    os.setgroups([])
    os.setgid(gid)
    os.setuid(uid)
    if os.geteuid() == 0 or os.getuid() == 0:
        raise PrivilegeError("failed to drop root privileges")

