"""privileges.py: a sensor about to drop root hands its user only what it created; an existing
directory keeps its owner (issue 9: `--db /var/lib/x.db` must not give /var/lib away)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from wirewatch.privileges import PrivilegeError, make_dirs, prepare_dir, prepare_path, resolve_user

NOBODY = resolve_user("nobody")


def test_an_unknown_user_is_named():
    with pytest.raises(PrivilegeError, match="--user 'no-such-user-x': no such user"):
        resolve_user("no-such-user-x")


def test_make_dirs_returns_only_the_directories_it_created(tmp_path):
    made = make_dirs(str(tmp_path / "a" / "b" / "c"))
    assert made == [str(tmp_path / "a"), str(tmp_path / "a" / "b"), str(tmp_path / "a" / "b" / "c")]
    assert make_dirs(str(tmp_path / "a" / "b")) == []


@pytest.mark.skipif(os.geteuid() != 0, reason="chown to another user needs root (CI runs as root)")
def test_prepare_path_chowns_the_file_and_new_directories_never_an_existing_one(tmp_path):
    owner = os.stat(tmp_path).st_uid
    db = tmp_path / "new" / "deeper" / "w.db"
    prepare_path(str(db), *NOBODY)
    assert os.stat(tmp_path).st_uid == owner  # existed before: not handed over
    for p in (tmp_path / "new", tmp_path / "new" / "deeper", db):
        assert (os.stat(p).st_uid, os.stat(p).st_gid) == NOBODY
    state = tmp_path / "state"
    state.mkdir()
    (state / "left-by-root").write_text("x")
    prepare_dir(str(state), *NOBODY)
    assert os.stat(state / "left-by-root").st_uid == NOBODY[0]


@pytest.mark.skipif(os.geteuid() != 0, reason="dropping root needs root (CI runs as root)")
def test_drop_to_is_irrevocable():
    uid, gid = NOBODY
    code = (f"import os; from wirewatch.privileges import drop_to; drop_to({uid}, {gid})\n"
            "try:\n    os.setuid(0)\nexcept PermissionError:\n    print('still', os.getuid(), os.getgroups())\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == f"still {NOBODY[0]} []"
