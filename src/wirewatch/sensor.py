"""`wirewatch monitor`: the live sensor loop, its signals and its loss accounting.

SIGINT/SIGTERM stop after draining what the kernel still holds, writing every alert and a
final stats event; SIGHUP reopens the log (logrotate) and reloads thresholds and
blocklists from the config file, keeping all detector state.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TextIO

from .capture.live import LiveOptions, LiveSource, ScapySource
from .config import Config
from .decode import headers_snaplen
from .engine import Engine
from .enrich import Enricher, cache_root
from .privileges import drop_to, make_dirs, prepare_dir, prepare_path, resolve_user
from .schema import stats_record
from .sinks.console import ConsoleSink
from .sinks.jsonl import JsonlSink

DROP_WARN = 0.01
MAX_DRAIN_BATCHES = 1000
DRAIN_S = 1.5  # with the store's close (at most store.sqlite_sink.CLOSE_S) a stop takes well under 5 s


@dataclass
class Flags:
    stop: bool = False
    reload: bool = False
    signals: list[int] = field(default_factory=list)


def install_handlers(flags: Flags) -> None:
    def on_stop(signum: int, _frame: Any) -> None:
        flags.stop = True
        flags.signals.append(signum)

    def on_hup(signum: int, _frame: Any) -> None:
        flags.reload = True

    signal.signal(signal.SIGINT, on_stop)
    signal.signal(signal.SIGTERM, on_stop)
    signal.signal(signal.SIGHUP, on_hup)


class Sensor:
    def __init__(self, cfg: Config, opts: LiveOptions, reload_config: Callable[[], Config],
                 user: str | None, capture: str = "pcap", stats_interval: float = 30.0,
                 quiet: bool = False, log: TextIO | None = None, extra_sinks: list | None = None):
        self.cfg = cfg
        self.opts = opts
        self.reload_config = reload_config
        self.user = user
        self.capture = capture
        self.stats_interval = stats_interval
        self.quiet = quiet
        self.log = log or sys.stderr
        self.extra_sinks = extra_sinks or []
        self.flags = Flags()
        self.last_kernel = (0, 0, 0)

    def open(self) -> None:
        """Open the capture (needs privileges), then give them up."""
        source_cls = ScapySource if self.capture == "scapy" else LiveSource
        self.source = source_cls(self.opts)
        feed_cfg = self.cfg.detect.blacklist
        client = None
        if feed_cfg.urls:
            from .feeds import new_client  # the HTTP client: imported only when feeds are set

            client = new_client()  # reads the CA bundle: before the drop
        if self.user:
            uid, gid = resolve_user(self.user)
            prepare_path(self.cfg.output.logfile, uid, gid)
            if feed_cfg.urls:
                from .feeds import cache_dir

                prepare_dir(cache_dir(self.cfg), uid, gid)
            if self.cfg.enrich.enabled and self.cfg.enrich.default_data:
                prepare_dir(cache_root(self.cfg), uid, gid)  # the default data's arrays, built once
                Enricher.preload()  # what building them needs, imported while we can read it
            for sink in self.extra_sinks:
                for path in sink.paths():
                    prepare_path(path, uid, gid)
            if self.cfg.output.alert_frames:  # alerts' pcaps: only directories created here change owner
                for d in make_dirs(self.cfg.output.pcap_dir):
                    os.chown(d, uid, gid)
                    os.chmod(d, 0o750)  # packets with payloads: the sensor's user and group only
            drop_to(uid, gid)
        self.jsonl = JsonlSink(self.cfg.output.logfile) if self.cfg.output.logfile else None
        sinks: list[Any] = []
        if self.cfg.output.console and not self.quiet:
            sinks.append(ConsoleSink())
        if self.jsonl:
            sinks.append(self.jsonl)
        sinks += self.extra_sinks
        self.engine = Engine(self.cfg, sinks, log=self.log)
        self.engine.keep_packets()  # each alert's packets to a pcap in output.pcap_dir
        if self.engine.enricher is not None:
            self.engine.enricher.warm()  # the default data, ready before the first alert; capture never waits
        self.feeds = None
        if client is not None:
            from .feeds import attach

            self.feeds = attach(self.engine, self.log, client)
        self.started = time.time()

    def run(self) -> int:
        install_handlers(self.flags)
        print(f"wirewatch: monitoring {self.opts.interface} ({self.capture}, snaplen {self.opts.snaplen}); "
              "Ctrl-C to stop", file=self.log)
        if self.feeds is not None:
            self.feeds.start()
        next_stats = time.monotonic() + self.stats_interval
        while not self.flags.stop and not self.engine.halted():
            raw = self.source.read()
            if len(raw.meta):
                self.engine.feed(raw)
            else:
                self.engine.idle(time.time())
            if self.flags.reload:
                self.flags.reload = False
                self.reload()
            if time.monotonic() >= next_stats:
                next_stats = time.monotonic() + self.stats_interval
                self.emit_stats()
        if self.feeds is not None:
            self.feeds.stop()
        if not self.engine.halted():  # (halted: what the kernel holds would only be spooled)
            self.drain()
        self.engine.finish()  # the run-end updates before the final stats event, which counts them
        self.emit_stats(final=True)
        self.engine.close()
        self.source.close()
        s = self.engine.summary()
        kp, kd, ki = self.last_kernel
        store = s["store"]
        stored = (f"; store: spooled {store['spooled']:,}, replayed {store['replayed']:,}, "
                  f"still spooled {store['spool_pending']:,}" if store else "")
        print(f"wirewatch: stopped; packets {s['packets']:,}, kernel received {kp:,}, kernel drops {kd:,}, "
              f"interface drops {ki:,}, decode errors {sum(s['decode_errors'].values()):,}, "
              f"alerts {sum(s['alerts'].values()):,}{stored}", file=self.log)
        halted = self.engine.halted()  # after the close: the records it spooled are counted
        if halted:
            print(f"wirewatch: {halted}", file=self.log)
            return 2
        return 0

    def drain(self) -> None:
        """After a stop signal: analyse what the kernel already captured, for at most
        DRAIN_S seconds (during a storm the kernel refills as fast as we drain; systemd
        kills a unit that takes too long to stop, losing everything not yet written)."""
        deadline = time.monotonic() + DRAIN_S
        for _ in range(MAX_DRAIN_BATCHES):
            if time.monotonic() >= deadline:
                return
            raw = self.source.drain()
            if not len(raw.meta):
                return
            self.engine.feed(raw)

    def reload(self) -> None:
        try:
            new = self.reload_config()
        except Exception as exc:  # noqa: BLE001 - a bad edit must not stop the sensor
            print(f"wirewatch: reload failed, keeping the running config: {exc}", file=self.log)
            return
        pending = self.engine.reconfigure(new)
        self.reload_outputs()
        if pending:
            print(f"wirewatch: reload: {', '.join(pending)} changed; these take effect only after a restart "
                  "(the running values stay)", file=self.log)
        self.cfg = self.engine.cfg  # the new config, the keys that need a restart at their running values
        problem = self.jsonl.reopen() if self.jsonl else None
        if problem:
            print(f"wirewatch: {problem}", file=self.log)
        print(f"wirewatch: reloaded config and blocklists; log {'kept' if problem else 'reopened'}", file=self.log)

    def reload_outputs(self) -> None:
        """The blocklist feeds and the webhook of the reloaded config (engine.cfg); one that
        cannot be applied (a URL that is not http(s)) keeps the running one, said in one line."""
        from .config import ConfigError

        cfg = self.engine.cfg
        try:
            if self.feeds is not None or cfg.detect.blacklist.urls:
                from .feeds import reattach  # the HTTP client: imported only when feeds are or were set

                self.feeds = reattach(self.engine, self.feeds, self.log)
        except ConfigError as exc:
            print(f"wirewatch: reload: {exc}; the running feeds stay", file=self.log)
        try:
            if cfg.output.webhook or any(s.name == "webhook" for s in self.engine.sinks):
                from .sinks.webhook import reconfigure

                reconfigure(self.engine, cfg)
        except ConfigError as exc:
            print(f"wirewatch: reload: {exc}; the running webhook stays", file=self.log)

    def emit_stats(self, final: bool = False) -> None:
        recv, drop, ifdrop = self.source.kernel_stats()
        prev = self.last_kernel
        self.last_kernel = (recv, drop, ifdrop)
        d_recv, d_drop = recv - prev[0], drop - prev[1]
        if d_recv + d_drop > 0 and d_drop / (d_recv + d_drop) > DROP_WARN:
            print(f"wirewatch: warning: kernel dropped {d_drop:,} of {d_recv + d_drop:,} packets "
                  f"({100 * d_drop / (d_recv + d_drop):.1f} %) in the last interval", file=self.log)
        record = stats_record(self.engine, self.opts.interface, (recv, drop, ifdrop), time.time() - self.started, final)
        self.engine.emit_event(record)


def live_options(args: Any, cfg: Config, interface: str) -> LiveOptions:
    """Capture options; without --snaplen the kernel copies only the headers the decoder reads at the
    configured tunnel depth (decode.headers_snaplen), never payload no detector looks at."""
    snaplen = args.snaplen if args.snaplen is not None else headers_snaplen(cfg.decode.max_tunnel_depth)
    return LiveOptions(interface=interface, bpf=args.bpf or "", snaplen=snaplen, promisc=not args.no_promisc,
                       buffer_mb=args.buffer_size, batch_size=cfg.general.batch_size)
