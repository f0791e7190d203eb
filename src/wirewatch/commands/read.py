"""`wirewatch read FILE...`: analyse capture files, then print (or emit as JSON) the summary."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from ..capture.pcapfile import CaptureError, read_batches
from ..config import Config
from ..engine import Engine
from ..progress import Progress
from ..schema import stats_record
from ..sinks.console import ConsoleSink
from ..sinks.jsonl import JsonlSink
from ..worker import split, wanted
from .outputs import output_sinks

EXIT_USAGE = 2


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
        from ..feeds import attach as attach_feeds  # imports the HTTP client: only when feeds are set

        feeds = attach_feeds(engine)
        if feeds is not None:
            feeds.fetch_all()
            feeds.stop()
    link = split(engine) if wanted(cfg) else None
    try:
        status, files = _read_files(args, cfg, engine)
        engine.finish()  # the run-end updates before the final stats record, which counts them
    finally:
        if link is not None:
            link.close()
    if link is not None:
        for what, n in link.component_errors().items():
            engine.stats.component_errors[what] = engine.stats.component_errors.get(what, 0) + n
    store = [x for x in sinks if getattr(x, "name", "") in ("sqlite", "postgresql")]
    log = [x for x in sinks if isinstance(x, JsonlSink)]
    if store or log:  # the dashboard's health panel and charts for an offline analysis; the log's final stats event
        names = [os.path.basename(f) for f in args.files]
        label = names[0] + (f" (+{len(names) - 1} files)" if len(names) > 1 else "")
        record = stats_record(engine, label, (engine.stats.packets, 0, 0), engine.summary()["wall_s"], True)
        for sink in log:
            sink.write_event(record)
        if store:
            store[0].write_event({**record, "stats": {**record["stats"], "timeline": engine.timeline.rates()}})
    engine.close()
    summary = {"files": files, **engine.summary()}
    if link is not None:
        summary["worker"] = link.report()
    if args.format == "json":
        print(json.dumps(summary, indent=2))
    else:
        print(render_summary(summary), file=sys.stderr if not args.quiet else sys.stdout)
    halted = engine.halted()  # the store's schema moved ahead while we wrote: the rest is spooled
    if halted:
        print(f"wirewatch: {halted}", file=sys.stderr)
        return EXIT_USAGE
    return status


def _read_files(args: argparse.Namespace, cfg: Config, engine: Engine) -> tuple[int, list[dict[str, Any]]]:
    """Feed every file to the engine; a damaged one is reported and the next one read."""
    status = 0
    files = []
    for path in args.files:
        progress = Progress(path, enabled=not args.no_progress)
        engine.begin_file(path)
        steady = path != "-" and os.path.isfile(path)  # never waits for more input
        try:
            for raw in read_batches(path, cfg.general.batch_size):
                engine.feed(raw)
                if not steady:  # a pipe may pause: what its packets showed must not wait for the next ones
                    engine.settle()
                progress.update(raw)
            files.append({"file": path, "ok": True})
        except CaptureError as exc:
            print(f"wirewatch: {exc}", file=sys.stderr)
            files.append({"file": path, "ok": False, "error": str(exc)})
            status = EXIT_USAGE
        finally:
            progress.close()
    return status, files


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
