"""A throwaway PostgreSQL server for tests: Debian's `postgresql` package (.ci/run installs
it), initdb + pg_ctl in a temporary directory, run as an unprivileged user (`nobody` when
the tests run as root; PostgreSQL refuses to run as root), listening on 127.0.0.1 on a free
port with trust authentication for one role, `wirewatch`."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from ports import free_port

ROLE = "wirewatch"


def bin_dir() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    return Path(found[-1]).parent if found else None


class PgServer:
    """`keep`: a directory whose cluster is reused (made there the first time) and kept at
    close (the benchmark's filled store); else a temporary one, removed at close."""

    def __init__(self, keep: str | None = None) -> None:
        bins = bin_dir()
        if bins is None:
            pytest.skip("PostgreSQL server binaries not installed (Debian package postgresql; .ci/run installs it)")
        self.bins = bins
        self.keep = keep is not None
        if keep is not None:
            os.makedirs(keep, exist_ok=True)
        self.dir = Path(keep) if keep is not None else Path(tempfile.mkdtemp(prefix="wirewatch-pg-"))
        self.data = self.dir / "data"
        self.port = free_port()
        self.as_user: dict = {}
        if os.geteuid() == 0:
            import pwd
            pw = pwd.getpwnam("nobody")
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
            self.as_user = {"user": pw.pw_uid, "group": pw.pw_gid, "extra_groups": []}
        made = not (self.data / "PG_VERSION").exists()
        if made:
            self._run("initdb", "-D", str(self.data), "-U", ROLE, "--auth=trust", "-E", "UTF8", "--no-sync",
                      "--no-instructions")
        self.start()
        if made:
            self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", ROLE, ROLE)

    def _run(self, tool: str, *args: str) -> subprocess.CompletedProcess:
        r = subprocess.run([str(self.bins / tool), *args], capture_output=True, text=True, timeout=120,
                           cwd=self.dir, env={"PATH": os.environ.get("PATH", ""), "LC_ALL": "C"}, **self.as_user)
        if r.returncode != 0:
            log = (self.dir / "log").read_text() if (self.dir / "log").exists() else ""
            raise RuntimeError(f"{tool} failed: {r.stderr or r.stdout}\n{log[-2000:]}")
        return r

    def url(self, db: str = ROLE) -> str:
        return f"postgresql://{ROLE}@127.0.0.1:{self.port}/{db}"

    def start(self) -> None:
        opts = (f"-c listen_addresses=127.0.0.1 -p {self.port} -c unix_socket_directories={self.dir} "
                "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200")
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.dir / "log"), "-o", opts, "-w", "-t", "60", "start")

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")

    def create_database(self, name: str) -> str:
        self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", ROLE, name)
        return self.url(name)

    def close(self) -> None:
        try:
            self.stop("fast" if self.keep else "immediate")
        except RuntimeError:
            pass  # already stopped
        if not self.keep:
            shutil.rmtree(self.dir, ignore_errors=True)
