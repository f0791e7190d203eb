"""`wirewatch read | monitor | run | dashboard | tune | config`: argument parsing only."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
from collections.abc import Sequence
from typing import Any

from . import __version__, native
from .blocklist import BlocklistError
from .capture.pcapfile import CaptureError, read_batches
from .config import (
    DEFAULT_DB,
    Config,
    ConfigError,
    Override,
    describe,
    load,
    parse_assignment,
)
from .engine import Engine, stats_record
from .privileges import PrivilegeError
from .progress import Progress
from .sinks.console import ConsoleSink
from .sinks.jsonl import JsonlSink
from .store.postgres_schema import is_postgres
from .webserver import WebError, check_bind, serve

EXIT_USAGE = 2


def _common(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("configuration")
    g.add_argument("--config", metavar="FILE", help="TOML config file")
    g.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="set any config key, e.g. --set detect.port_scan.threshold=30 (repeatable)")
    g.add_argument("-i", "--interface", help="interface name (recorded as in_iface)")
    g.add_argument("--sensor", metavar="NAME", help="this sensor's name on alerts, stats and stored rows "
                                                     "(EVE host; default the host name)")
    g.add_argument("--time-window", type=float, metavar="SECONDS", help="default detection window")
    g.add_argument("--scan-threshold", type=int, metavar="N", help="distinct ports that make a port scan")
    g.add_argument("--traffic-threshold", type=int, metavar="N", help="packets per window that make a traffic burst")
    g.add_argument("--cooldown", type=float, metavar="SECONDS", help="suppress repeats of an alert for this long")
    g.add_argument("--logfile", metavar="FILE", help="JSON-lines alert log (default alerts.json)")
    g.add_argument("--db", metavar="FILE", help="alert store: a SQLite file (default var/wirewatch.db) or postgresql://USER@HOST/DB")
    g.add_argument("--syslog", metavar="ADDR", help="also send alerts to syslog: udp://HOST:PORT, tcp://HOST:PORT or /dev/log")
    g.add_argument("--webhook", metavar="URL", help="also post alerts as JSON with a text field (Slack, Mattermost, Teams)")
    g.add_argument("--blacklist", action="append", default=[], metavar="FILE", help="blocklist file (repeatable)")
    g.add_argument("--blacklist-url", action="append", default=[], metavar="URL",
                   help="blocklist feed, fetched at start and every detect.blacklist.refresh s (repeatable)")
    g.add_argument("--suspicious-ports", metavar="P,P,...", help="replace the watched port list")


def _live(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("live capture")
    g.add_argument("--bpf", metavar="FILTER", help="BPF capture filter, e.g. 'not port 22'")
    g.add_argument("--snaplen", type=int, default=262144, metavar="BYTES", help="bytes captured per packet (default 262144)")
    g.add_argument("--no-promisc", action="store_true", help="do not put the interface in promiscuous mode")
    g.add_argument("--buffer-size", type=int, default=64, metavar="MB", help="kernel capture buffer (default 64 MB)")
    g.add_argument("--user", metavar="NAME", help="user to become after opening the capture (default nobody when root)")
    g.add_argument("--capture", choices=("pcap", "scapy"), default="pcap",
                   help="capture backend: libpcap via pcapy-ng (default) or Scapy (portable, slower)")
    g.add_argument("--stats-interval", type=float, default=30.0, metavar="SECONDS",
                   help="seconds between EVE stats events (default 30)")
    g.add_argument("--quiet", action="store_true", help="no [ALERT] lines on the console")


def _web(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("dashboard")
    g.add_argument("--host", metavar="ADDR", help="bind address (default 127.0.0.1)")
    g.add_argument("--port", type=int, metavar="PORT", help="port (default 8080)")


FLAG_KEYS = {
    "interface": ("general", "interface"),
    "sensor": ("general", "sensor"),
    "time_window": ("general", "time_window"),
    "scan_threshold": ("detect.port_scan", "threshold"),
    "traffic_threshold": ("detect.traffic_burst", "threshold"),
    "cooldown": ("alerts", "cooldown"),
    "logfile": ("output", "logfile"),
    "syslog": ("output", "syslog"),
    "webhook": ("output", "webhook"),
    "db": ("output", "db"),
    "suspicious_ports": ("detect.suspicious_port", "ports"),
    "host": ("web", "host"),
    "port": ("web", "port"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="wirewatch", description="Network intrusion detection on packet time.")
    parser.add_argument("--version", action="version", version=f"wirewatch {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    read = sub.add_parser("read", help="analyse pcap/pcapng files")
    read.add_argument("files", nargs="+", metavar="FILE")
    read.add_argument("--format", choices=("text", "json"), default="text", help="summary format (default text)")
    read.add_argument("--quiet", action="store_true", help="no [ALERT] lines on the console")
    read.add_argument("--no-progress", action="store_true", help="never show a progress bar")
    _common(read)
    mon = sub.add_parser("monitor", help="watch a live interface (needs root or CAP_NET_RAW)")
    _live(mon)
    _common(mon)
    run = sub.add_parser("run", help="live sensor and dashboard together (needs root)")
    _live(run)
    _web(run)
    _common(run)
    dash = sub.add_parser("dashboard", help="serve the dashboard over an alert store")
    _web(dash)
    _common(dash)
    tune = sub.add_parser("tune", help="alerts against threshold on your own captures, in one pass")
    tune.add_argument("files", nargs="*", metavar="CAPTURE")
    tune.add_argument("--detector", metavar="NAME", help="only this detector")
    tune.add_argument("--grid", action="append", default=[], metavar="DETECTOR.KEY=LO:HI:STEP",
                      help="threshold values to try, e.g. port_scan.threshold=5:50:5 (repeatable; "
                           "default a range around each detector's default)")
    tune.add_argument("--format", choices=("table", "json"), default="table", help="output format (default table)")
    tune.add_argument("--baseline", action="append", default=[], metavar="CAPTURE",
                      help="traffic you call normal: suggest thresholds that keep it silent (repeatable)")
    tune.add_argument("--margin", type=float, default=1.25, metavar="FACTOR",
                      help="suggested threshold = baseline peak x FACTOR, rounded up (default 1.25)")
    tune.add_argument("--png", metavar="FILE", help="also draw alerts against threshold into a PNG file "
                                                    "(needs matplotlib: the chart extra)")
    tune.add_argument("--no-progress", action="store_true", help="never show a progress bar")
    _common(tune)
    cfg = sub.add_parser("config", help="print the configuration in effect, with help")
    _common(cfg)
    return parser


def config_from_args(args: argparse.Namespace) -> Config:
    cli: list[Override] = []
    for attr, (section, key) in FLAG_KEYS.items():
        value = getattr(args, attr, None)
        if value is not None:
            cli.append((section, key, value, f"--{attr.replace('_', '-')}"))
    if args.blacklist:
        cli.append(("detect.blacklist", "files", list(args.blacklist), "--blacklist"))
    if args.blacklist_url:
        cli.append(("detect.blacklist", "urls", list(args.blacklist_url), "--blacklist-url"))
    cli += [parse_assignment(s) for s in args.set]
    return load(args.config, cli)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        cfg = config_from_args(args)
        if args.command == "config":
            print(describe(cfg))
            return 0
        slow = native.warning() if args.command in ("read", "monitor", "run", "tune") else None
        if slow:
            print(slow, file=sys.stderr)
        if args.command == "monitor":
            return cmd_monitor(args, cfg, output_sinks(cfg))
        if args.command == "dashboard":
            return serve(cfg, cfg.output.db or DEFAULT_DB, cfg.web.host, cfg.web.port)
        if args.command == "run":
            return cmd_run(args, cfg)
        if args.command == "tune":
            from .tune_report import cmd_tune  # imported only for tune: start-up of `read`

            return cmd_tune(args, cfg)
        return cmd_read(args, cfg)
    except BrokenPipeError:  # `wirewatch config | head`: the reader had enough (an OSError: caught first)
        _quiet_stdout()
        return 0
    except (ConfigError, BlocklistError, CaptureError, PrivilegeError, WebError, OSError) as exc:
        print(f"wirewatch: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130


def _quiet_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush does not fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass


def cmd_monitor(args: argparse.Namespace, cfg: Config, extra_sinks: list | None = None) -> int:
    from .capture.live import default_route_interface  # live capture only: libpcap is not loaded for `read`
    from .sensor import Sensor, live_options

    iface = args.interface or default_route_interface()
    if not iface:
        raise CaptureError("no interface given (-i) and no default route to pick one")
    if not args.interface:
        cfg = dataclasses.replace(cfg, general=dataclasses.replace(cfg.general, interface=iface))
    user = args.user or ("nobody" if os.geteuid() == 0 else None)
    try:
        sensor = Sensor(cfg, live_options(args, cfg, iface), lambda: config_from_args(args), user,
                        capture=args.capture, stats_interval=args.stats_interval, quiet=args.quiet,
                        extra_sinks=extra_sinks)
        sensor.open()
    except CaptureError as exc:
        hint = "; to analyse a capture file instead: wirewatch read FILE" if "needs root" in str(exc) else ""
        raise CaptureError(f"{exc}{hint}") from None
    return sensor.run()


def output_sinks(cfg: Config) -> list[Any]:
    """The alert store, the syslog and webhook sinks: opened here, before a sensor drops root."""
    sinks: list[Any] = []
    if cfg.output.db and is_postgres(cfg.output.db):
        from .store.postgres_sink import PostgresSink, postgres_spool  # imported only when used

        sinks.append(PostgresSink(cfg.output.db, postgres_spool(cfg), cfg.store.retention_days))
    elif cfg.output.db:
        from .store.sqlite_sink import SqliteSink  # imported only when used: start-up of `read`

        sinks.append(SqliteSink(cfg.output.db, cfg.store.retention_days, cfg.store.max_db_mb))
    if cfg.output.syslog:
        from .sinks.syslog import SyslogSink

        sinks.append(SyslogSink(cfg.output.syslog, cfg.output.syslog_facility))
    if cfg.output.webhook:
        from .sinks.webhook import WebhookSink

        sinks.append(WebhookSink(cfg.output.webhook, cfg.output.webhook_min_severity, cfg.output.webhook_queue))
    return sinks


def cmd_run(args: argparse.Namespace, cfg: Config) -> int:
    """Sensor in this process (drops root after opening the capture), dashboard in a
    separate unprivileged process over the same store."""
    db = cfg.output.db or DEFAULT_DB
    cfg = dataclasses.replace(cfg, output=dataclasses.replace(cfg.output, db=db))
    check_bind(cfg, cfg.web.host)
    sinks = output_sinks(cfg)  # the sensor hands these files to its user before dropping root
    web_cmd = [sys.executable, "-m", "wirewatch", "dashboard", "--db", db, "--host", cfg.web.host,
               "--port", str(cfg.web.port)] + (["--config", args.config] if args.config else [])
    web_cmd += [x for s in args.set for x in ("--set", s)]
    web = subprocess.Popen(web_cmd)
    try:
        return cmd_monitor(args, cfg, sinks)
    finally:
        web.terminate()
        try:
            web.wait(timeout=10)
        except subprocess.TimeoutExpired:
            web.kill()


def cmd_read(args: argparse.Namespace, cfg: Config) -> int:
    sinks: list[Any] = output_sinks(cfg)
    if cfg.output.console and not args.quiet:
        # with --format json stdout carries only the summary document
        sinks.append(ConsoleSink(sys.stderr if args.format == "json" else sys.stdout))
    if cfg.output.logfile:
        try:
            sinks.append(JsonlSink(cfg.output.logfile))
        except OSError as exc:
            print(f"wirewatch: {exc}", file=sys.stderr)
            return EXIT_USAGE
    engine = Engine(cfg, sinks)
    if cfg.detect.blacklist.urls:  # offline analysis: the feeds as they are now, fetched once before reading
        from .feeds import attach as attach_feeds  # imports the HTTP client: only when feeds are set

        feeds = attach_feeds(engine)
        if feeds is not None:
            feeds.fetch_all()
            feeds.stop()
    status = 0
    files = []
    for path in args.files:
        progress = Progress(path, enabled=not args.no_progress)
        try:
            for raw in read_batches(path, cfg.general.batch_size):
                engine.feed(raw)
                progress.update(raw)
            files.append({"file": path, "ok": True})
        except CaptureError as exc:
            print(f"wirewatch: {exc}", file=sys.stderr)
            files.append({"file": path, "ok": False, "error": str(exc)})
            status = EXIT_USAGE
        finally:
            progress.close()
    engine.flush()
    store = [x for x in sinks if getattr(x, "name", "") in ("sqlite", "postgresql")]
    if store:  # the dashboard's health panel and charts for an offline analysis
        names = [os.path.basename(f) for f in args.files]
        label = names[0] + (f" (+{len(names) - 1} files)" if len(names) > 1 else "")
        store[0].write_event(stats_record(engine, label, (engine.stats.packets, 0, 0), engine.summary()["wall_s"], True,
                                            timeline=True))
    engine.close()
    summary = {"files": files, **engine.summary()}
    if args.format == "json":
        print(json.dumps(summary, indent=2))
    else:
        print(render_summary(summary), file=sys.stderr if not args.quiet else sys.stdout)
    return status


def render_summary(s: dict[str, Any]) -> str:
    lines = ["", "== wirewatch summary =="]
    lines.append(f"packets {s['packets']:,}  bytes {s['bytes']:,}  capture {s['capture_duration_s']:.3f} s  "
                 f"analysed in {s['wall_s']:.3f} s ({s['packets_per_s']:,} packets/s)")
    errs = ", ".join(f"{k} {v}" for k, v in s["decode_errors"].items()) or "none"
    lines.append(f"decode errors: {errs}; non-IP frames: {s['non_ip_frames']}")
    alerts = ", ".join(f"{k} {v}" for k, v in s["alerts"].items()) or "none"
    lines.append(f"alerts: {alerts}")
    if s["suppressed"]:
        lines.append("suppressed duplicates: " + ", ".join(f"{k} {v}" for k, v in s["suppressed"].items()))
    lines.append("top sources: " + ", ".join(f"{t['src_ip']} ({t['packets']:,} pkts)" for t in s["top_sources"][:5]))
    evicted = {k: v for k, v in s["detector_state"].items() if k.endswith("evicted") and v}
    if evicted:
        lines.append("state evictions: " + ", ".join(f"{k} {v:,}" for k, v in evicted.items()))
    if s.get("store"):
        st = s["store"]
        line = f"store: {st['stored']:,} alerts stored; spooled {st['spooled']:,}, replayed {st['replayed']:,}"
        if st["spool_pending"]:
            line += f", {st['spool_pending']:,} still spooled (stored at the next start)"
        lines.append(line)
    for f in s["files"]:
        if not f["ok"]:
            lines.append(f"FAILED: {f['error']}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
