"""`wirewatch read | monitor | run | dashboard | tune | extract | config`: argument parsing and dispatch
only; what each command does lives in commands/ (and tune_report.py for tune)."""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from . import __version__, native
from .blocklist import BlocklistError
from .capture.pcapfile import CaptureError
from .config import (
    DEFAULT_DB,
    Config,
    ConfigError,
    Override,
    describe,
    load,
    parse_assignment,
)
from .privileges import PrivilegeError

EXIT_USAGE = 2
MAX_SNAPLEN = 262144  # libpcap's largest snapshot (capture/walk.MAX_CAPLEN)
MAX_BUFFER_MB = 2047  # pcap_set_buffer_size takes an int of bytes
MIN_STATS_INTERVAL = 0.1  # a stats record every 100 ms is the most a test or a dashboard uses
MAX_STATS_INTERVAL = 86400.0


class OneLineParser(argparse.ArgumentParser):
    """A bad command line is one line naming the option and the value, exit status 2, as every
    other bad input (argparse prints its whole usage first). Subcommands' parsers are of this class."""

    def error(self, message: str) -> NoReturn:
        if message.endswith("expected one argument"):
            message += " (a value that starts with '-' is written --option=VALUE)"
        self.exit(EXIT_USAGE, f"{self.prog}: {message} (see {self.prog} --help)\n")


def _number(kind: type, lo: float, hi: float) -> Callable[[str], Any]:
    """An argparse type for an option that is no config key: a finite number from lo to hi."""
    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{text!r}: expected {'a whole number' if kind is int else 'a number'}") from None
        if not (math.isfinite(value) and lo <= value <= hi):
            raise argparse.ArgumentTypeError(f"{text!r}: must be from {lo:g} to {hi:g}")
        return value
    return parse


def _common(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("configuration")
    g.add_argument("--config", metavar="FILE", help="TOML config file")
    g.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="set any config key, e.g. --set detect.port_scan.threshold=30 (repeatable)")
    g.add_argument("-i", "--interface", help="interface name (recorded as in_iface)")
    g.add_argument("--sensor", metavar="NAME", help="this sensor's name on alerts, stats and stored rows "
                                                     "(EVE host; default the host name)")
    # The flags that set a config key take its text: config validates it as it validates --set, in
    # one line naming flag, key and value (an argparse type= would print its usage instead).
    g.add_argument("--time-window", metavar="SECONDS", help="default detection window")
    g.add_argument("--scan-threshold", metavar="N", help="distinct ports that make a port scan")
    g.add_argument("--traffic-threshold", metavar="N", help="packets per window that make a traffic burst")
    g.add_argument("--cooldown", metavar="SECONDS", help="suppress repeats of an alert for this long")
    g.add_argument("--logfile", metavar="FILE", help="JSON-lines alert log (default alerts.json)")
    g.add_argument("--db", metavar="FILE|URL", help="alert store: a SQLite file (default var/wirewatch.db) or postgresql://USER@HOST/DB")
    g.add_argument("--syslog", metavar="ADDR", help="also send alerts to syslog: udp://HOST:PORT, tcp://HOST:PORT or /dev/log")
    g.add_argument("--webhook", metavar="URL", help="also post alerts as JSON with a text field (Slack, Mattermost, Teams)")
    g.add_argument("--blacklist", action="append", default=[], metavar="FILE", help="blocklist file (repeatable)")
    g.add_argument("--blacklist-url", action="append", default=[], metavar="URL",
                   help="blocklist feed, fetched at start and every detect.blacklist.refresh s (repeatable)")
    g.add_argument("--suspicious-ports", metavar="P,P,...", help="replace the watched port list")
    g.add_argument("--alert-frames", metavar="N",
                   help="keep an alert's first N packets with it (frame numbers, live a pcap; 0 = off)")


def _live(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("live capture")
    g.add_argument("--bpf", metavar="FILTER", help="BPF capture filter, e.g. 'not port 22'")
    g.add_argument("--snaplen", type=_number(int, 1, MAX_SNAPLEN), metavar="BYTES",
                   help="bytes captured per packet (default: the headers the decoder reads, 832 at "
                        "decode.max_tunnel_depth 4; 262144 whole packets)")
    g.add_argument("--no-promisc", action="store_true", help="do not put the interface in promiscuous mode")
    g.add_argument("--buffer-size", type=_number(int, 1, MAX_BUFFER_MB), default=64, metavar="MB", help="kernel capture buffer (default 64 MB)")
    g.add_argument("--user", metavar="NAME", help="user to become after opening the capture (default nobody when root)")
    g.add_argument("--capture", choices=("pcap", "scapy"), default="pcap",
                   help="capture backend: libpcap (default; a compiled read loop, else pcapy-ng) or Scapy (portable, slower)")
    g.add_argument("--stats-interval", type=_number(float, MIN_STATS_INTERVAL, MAX_STATS_INTERVAL), default=30.0, metavar="SECONDS",
                   help="seconds between EVE stats events (default 30)")
    g.add_argument("--quiet", action="store_true", help="no [ALERT] lines on the console")


def _web(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("dashboard")
    g.add_argument("--host", metavar="ADDR", help="bind address (default 127.0.0.1)")
    g.add_argument("--port", metavar="PORT", help="port (default 8080)")


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
    "alert_frames": ("output", "alert_frames"),
    "host": ("web", "host"),
    "port": ("web", "port"),
}


def _read(p: argparse.ArgumentParser) -> None:
    p.add_argument("files", nargs="+", metavar="FILE")
    p.add_argument("--format", choices=("text", "json"), default="text", help="summary format (default text)")
    p.add_argument("--quiet", action="store_true", help="no [ALERT] lines on the console")
    p.add_argument("--no-progress", action="store_true", help="never show a progress bar")
    _common(p)


def _monitor(p: argparse.ArgumentParser) -> None:
    _live(p)
    _common(p)


def _run(p: argparse.ArgumentParser) -> None:
    _live(p)
    _web(p)
    _common(p)


def _dashboard(p: argparse.ArgumentParser) -> None:
    _web(p)
    _common(p)


def _tune(p: argparse.ArgumentParser) -> None:
    p.add_argument("files", nargs="*", metavar="CAPTURE")
    p.add_argument("--detector", metavar="NAME", help="only this detector")
    p.add_argument("--grid", action="append", default=[], metavar="DETECTOR.KEY=LO:HI:STEP",
                   help="threshold values to try, e.g. port_scan.threshold=5:50:5 (repeatable; "
                        "default a range around each detector's default)")
    p.add_argument("--format", choices=("table", "json"), default="table", help="output format (default table)")
    p.add_argument("--baseline", action="append", default=[], metavar="CAPTURE",
                   help="traffic you call normal: suggest thresholds that keep it silent (repeatable)")
    p.add_argument("--margin", type=float, default=1.25, metavar="FACTOR",
                   help="suggested threshold = baseline peak x FACTOR, rounded up (default 1.25)")
    p.add_argument("--png", metavar="FILE", help="also draw alerts against threshold into a PNG file "
                                                 "(needs matplotlib: the chart extra)")
    p.add_argument("--no-progress", action="store_true", help="never show a progress bar")
    _common(p)


def _extract(p: argparse.ArgumentParser) -> None:
    p.add_argument("alert_id", metavar="ALERT_ID", help="the alert's id in the store (the dashboard's /alerts/ID)")
    p.add_argument("-o", "--output", required=True, metavar="OUT.pcap", help="pcap file to write; - for standard output (e.g. | tcpdump -r -)")
    _common(p)


# command -> (its line in `wirewatch --help`, what adds its arguments)
COMMANDS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None]]] = {
    "read": ("analyse pcap/pcapng files", _read),
    "monitor": ("watch a live interface (needs root or CAP_NET_RAW)", _monitor),
    "run": ("live sensor and dashboard together (needs root)", _run),
    "dashboard": ("serve the dashboard over an alert store", _dashboard),
    "tune": ("alerts against threshold on your own captures, in one pass", _tune),
    "extract": ("write a stored alert's packets to a pcap file", _extract),
    "config": ("print the configuration in effect, with help", _common),
}


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The command line; with `only` (a command) only that command's parser, which is all a
    command line that starts with it needs (start-up: argparse builds a help formatter for
    every option it adds, and every command takes some 25)."""
    parser = OneLineParser(prog="wirewatch", description="Network intrusion detection on packet time.")
    parser.add_argument("--version", action="version", version=f"wirewatch {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (text, add_arguments) in COMMANDS.items():
        if only is None or only == name:
            add_arguments(sub.add_parser(name, help=text))
    return parser


def command_of(argv: Sequence[str]) -> str | None:
    """The command a command line starts with; None when it starts with anything else
    (--help, --version, a mistake: those need every command's parser, to list them)."""
    return argv[0] if argv and argv[0] in COMMANDS else None


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


def secrets_left_out() -> dict[str, tuple[Callable[[str], str], str]]:
    """What `wirewatch config` prints in place of the settings that hold a secret: a store's
    password (as every command names the store), the dashboard's token, and a webhook's path
    (Slack, Mattermost and Teams put the hook's secret there). Output gets pasted into
    tickets and chats; the config file or web-token holds the real values."""
    from .store.postgres_schema import shown

    def webhook_origin(url: str) -> str:
        scheme, _, rest = url.partition("://")
        host = rest.split("/", 1)[0].rsplit("@", 1)[-1]  # nor a user:password@ before the host
        return f"{scheme}://{host}/..." if url else url

    return {"output.db": (shown, "without its password, as every command names the store"),
            "web.token": (lambda token: "..." if token else token, "set; not printed (it is a secret)"),
            "output.webhook": (webhook_origin, "its path not printed (a webhook's path is its secret)")}


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser(command_of(argv)).parse_args(argv)
    try:
        cfg = config_from_args(args)
        if args.command == "config":
            print(describe(cfg, secrets_left_out()))
            return 0
        slow = native.warning() if args.command in ("read", "monitor", "run", "tune") else None
        if slow:
            print(slow, file=sys.stderr)
        if args.command == "dashboard":
            from .webserver import serve  # the dashboard's modules: `read` does not load them

            return serve(cfg, cfg.output.db or DEFAULT_DB, cfg.web.host, cfg.web.port)
        if args.command in ("monitor", "run"):
            from .commands import monitor  # live capture only: `read` does not load it
            from .commands.outputs import output_sinks

            def reload() -> Config:
                return config_from_args(args)

            if args.command == "run":
                return monitor.cmd_run(args, cfg, reload)
            return monitor.cmd_monitor(args, cfg, reload, output_sinks(cfg))
        if args.command == "extract":
            from .commands.extract import cmd_extract

            return cmd_extract(args, cfg)
        if args.command == "tune":
            from .tune_report import cmd_tune  # imported only for tune: start-up of `read`

            return cmd_tune(args, cfg)
        from .commands.read import cmd_read

        return cmd_read(args, cfg)
    except BrokenPipeError:  # `wirewatch config | head`: the reader had enough (an OSError: caught first)
        quiet_stdout()
        return 0
    except _usage_errors() as exc:
        print(f"wirewatch: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130


def _usage_errors() -> tuple[type[Exception], ...]:
    """The errors that are one line and exit status 2. The dashboard's own (WebError) only
    once its module was loaded (dashboard, run): nothing else raises it, and `read` stays
    without the web modules (start-up)."""
    web = sys.modules.get(f"{__package__}.webserver")
    return (ConfigError, BlocklistError, CaptureError, PrivilegeError, OSError) + ((web.WebError,) if web else ())


def quiet_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush does not fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass


if __name__ == "__main__":
    sys.exit(main())
