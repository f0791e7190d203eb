"""A PostgreSQL store's URL may carry its password (postgresql://USER:PASSWORD@HOST/DB): every
line a command prints about the store names it without the password (postgres_schema.shown),
whether the store is unreachable, refused or lacks the alert."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from conftest import CORPUS, cli
from ports import free_port

SECRET = "s3cr3t-pw"
UNREACHABLE = f"postgresql://ww:{SECRET}@127.0.0.1:1/alerts"  # port 1: nothing listens
CAPTURE = str(CORPUS / "dev11_failed_handshake_rst.pcap")


def _with_password(url: str) -> str:
    """The tests' server trusts its role, so a password in the URL is accepted and unused."""
    scheme, rest = url.split("://", 1)
    user, host = rest.split("@", 1)
    return f"{scheme}://{user}:{SECRET}@{host}"


def _failed_without_password(r, store: str) -> str:
    assert r.returncode == 2, r.stderr
    assert SECRET not in r.stderr + r.stdout
    assert store in r.stderr, r.stderr  # the store is still named: host, port and database
    return r.stderr


@pytest.mark.parametrize("command", [
    ("extract", "1", "-o", "OUT"),
    ("dashboard", "--port", "PORT"),
    ("tune", CAPTURE),
    ("read", CAPTURE, "--logfile", "", "--quiet", "--no-progress"),
])
def test_an_unreachable_store_is_named_without_its_password(tmp_path, command):
    args = [{"OUT": str(tmp_path / "x.pcap"), "PORT": str(free_port())}.get(a, a) for a in command]
    r = cli(*args, "--db", UNREACHABLE, env={"WIREWATCH_STORE__STATE_DIR": str(tmp_path)})
    line = _failed_without_password(r, "host=127.0.0.1 port=1")
    assert "cannot open alert store" in line


def test_extract_names_a_store_without_its_password(tmp_path, pg_url):
    url = _with_password(pg_url)
    env = {"WIREWATCH_STORE__STATE_DIR": str(tmp_path)}
    assert cli("read", CAPTURE, "--db", url, "--logfile", "", "--quiet", env=env).returncode == 0
    r = cli("extract", "999999", "--db", url, "-o", str(tmp_path / "x.pcap"), env=env)
    assert "no alert 999999" in _failed_without_password(r, "dbname=" + pg_url.rsplit("/", 1)[1])
    r = cli("tune", CAPTURE, "--db", url, env=env)
    assert r.returncode == 0 and "tune run 1 saved to" in r.stderr and SECRET not in r.stderr, r.stderr


@pytest.mark.parametrize("source", ["--db", "env", "file"])
def test_config_prints_the_store_without_its_password(tmp_path, source):
    """wirewatch config prints the settings in effect; output.db's password stays off the terminal
    (main printed `db = "postgresql://ww:s3cr3t-pw@127.0.0.1:1/alerts"`)."""
    args, env = ["config"], {}
    if source == "--db":
        args += ["--db", UNREACHABLE]
    elif source == "env":
        env["WIREWATCH_OUTPUT__DB"] = UNREACHABLE
    else:
        (tmp_path / "site.toml").write_text(f'[output]\ndb = "{UNREACHABLE}"\n')
        args += ["--config", str(tmp_path / "site.toml")]
    if source == "file":  # cli() empties WIREWATCH_OUTPUT__DB, which would win over the file
        env = {k: v for k, v in os.environ.items() if k != "WIREWATCH_OUTPUT__DB"}
        r = subprocess.run([sys.executable, "-m", "wirewatch", *args], capture_output=True, text=True,
                           env=env, timeout=60)
    else:
        r = cli(*args, env=env)
    assert r.returncode == 0, r.stderr
    assert SECRET not in r.stdout + r.stderr
    (line,) = [ln for ln in r.stdout.splitlines() if ln.startswith("db = ")]
    assert line == ('db = "user=ww dbname=alerts host=127.0.0.1 port=1"'
                    "  # without its password, as every command names the store")


def test_config_prints_a_sqlite_store_as_it_is(tmp_path):
    r = cli("config", "--db", str(tmp_path / "a.db"))
    assert r.returncode == 0 and f'db = "{tmp_path / "a.db"}"' in r.stdout.splitlines()


def test_config_prints_no_dashboard_token_nor_webhook_path(tmp_path):
    """The dashboard's token and a webhook's path (where Slack and Teams keep the hook's secret)
    are secrets too: config names them as set, not their values (main printed both)."""
    hook = f"https://hook-user:{SECRET}@hooks.example/services/T000/B000/{SECRET}"
    (tmp_path / "site.toml").write_text(f'[web]\ntoken = "{SECRET}"\n[output]\nwebhook = "{hook}"\n')
    r = cli("config", "--config", str(tmp_path / "site.toml"))
    assert r.returncode == 0, r.stderr
    assert SECRET not in r.stdout + r.stderr
    lines = r.stdout.splitlines()
    assert 'token = "..."  # set; not printed (it is a secret)' in lines
    assert 'webhook = "https://hooks.example/..."  # its path not printed (a webhook\'s path is its secret)' in lines
    unset = cli("config").stdout.splitlines()  # nothing set: shown as it is, empty
    assert 'token = ""' in unset and 'webhook = ""' in unset
