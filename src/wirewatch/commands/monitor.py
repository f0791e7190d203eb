"""`wirewatch monitor` (live sensor) and `wirewatch run` (sensor + dashboard in a child process)."""

from __future__ import annotations

import argparse
import dataclasses
import os
import subprocess
import sys
from collections.abc import Callable

from ..capture.pcapfile import CaptureError
from ..config import DEFAULT_DB, Config
from ..webserver import check_bind
from .outputs import output_sinks


def cmd_monitor(args: argparse.Namespace, cfg: Config, reload: Callable[[], Config],
                extra_sinks: list | None = None) -> int:
    """`reload` reads the configuration again (SIGHUP) the way the command line first did."""
    from ..capture.live import default_route_interface  # live capture only: libpcap is not loaded for `read`
    from ..sensor import Sensor, live_options

    iface = args.interface or default_route_interface()
    if not iface:
        raise CaptureError("no interface given (-i) and no default route to pick one")
    if not args.interface:
        cfg = dataclasses.replace(cfg, general=dataclasses.replace(cfg.general, interface=iface))
    user = args.user or ("nobody" if os.geteuid() == 0 else None)
    try:
        sensor = Sensor(cfg, live_options(args, cfg, iface), reload, user,
                        capture=args.capture, stats_interval=args.stats_interval, quiet=args.quiet,
                        extra_sinks=extra_sinks)
        sensor.open()
    except CaptureError as exc:
        hint = "; to analyse a capture file instead: wirewatch read FILE" if "needs root" in str(exc) else ""
        raise CaptureError(f"{exc}{hint}") from None
    return sensor.run()


def cmd_run(args: argparse.Namespace, cfg: Config, reload: Callable[[], Config]) -> int:
    """Sensor in this process (drops root after opening the capture), dashboard in a
    separate unprivileged process over the same store."""
    db = cfg.output.db or DEFAULT_DB
    cfg = dataclasses.replace(cfg, output=dataclasses.replace(cfg.output, db=db))
    check_bind(cfg, cfg.web.host)
    sinks = output_sinks(cfg)  # the sensor hands these files to its user before dropping root
    web_cmd = [sys.executable, "-m", "wirewatch", "dashboard", "--host", cfg.web.host,
               "--port", str(cfg.web.port)] + (["--config", args.config] if args.config else [])
    web_cmd += [x for s in args.set for x in ("--set", s)]
    # the store in the child's environment, not its command line: `ps` shows every user a
    # command line, and a PostgreSQL URL from the config file may hold a password (a string
    # setting takes the variable's text as it is)
    web = subprocess.Popen(web_cmd, env={**os.environ, "WIREWATCH_OUTPUT__DB": db})
    try:
        return cmd_monitor(args, cfg, reload, sinks)
    finally:
        web.terminate()
        try:
            web.wait(timeout=10)
        except subprocess.TimeoutExpired:
            web.kill()
