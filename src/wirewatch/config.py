"""Configuration: dataclass defaults -> TOML file -> WIREWATCH_* environment -> CLI flags.

Everything is validated once into a frozen Config; a bad key or value raises ConfigError
naming the key, the value and where it came from.
"""

from __future__ import annotations

import dataclasses
import math
import os
import socket
import typing
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .decode import DecodeConfig
from .detect import registry
from .enrich import EnrichConfig
from .settings import Frozen, cap, seconds, setting

ENV_PREFIX = "WIREWATCH_"
DEFAULT_DB = "var/wirewatch.db"


class ConfigError(Exception):
    """A configuration problem; the message is one line naming key, value and source."""


@dataclass(frozen=True, eq=False, repr=False)
class GeneralConfig(Frozen):
    sensor: str = setting("", "This sensor's name, on every alert and stats event (EVE `host`) and stored row; "
                              "empty = the host name.")
    time_window: float = seconds(10.0, "Default rolling window in seconds of packet time (--time-window).", 0.1)
    interface: str = setting("", "Interface name reported as in_iface (-i/--interface).")
    batch_size: int = setting(16384, "Most packets per capture read (and at most 8 MiB of the capture). Reads within one expire_interval are "
                                     "analysed together, up to 32,768 packets per detector pass; alerts never "
                                     "depend on it (nor on the reader or compression).", 1, 1_000_000)
    workers: int = setting(0, "Processes that analyse a capture (`wirewatch read`): 2 = a forked worker runs "
                              "port_scan, host_sweep, distributed_scan, traffic_burst and unusual_protocol on the "
                              "slices the engine reads, the same alerts in about the time of the slower half; "
                              "1 = one process; 0 = 2 when this process may use two CPUs, else 1.", 0, 2)
    expire_interval: float = seconds(1.0, "Seconds of packet time per time slice: state expires between slices, "
                                          "and a slice's packets are analysed when it ends.", 0.01)


def sensor_name(general: GeneralConfig) -> str:
    """general.sensor, or the host name when it is empty."""
    return general.sensor or socket.gethostname()


@dataclass(frozen=True, eq=False, repr=False)
class AlertsConfig(Frozen):
    cooldown: float = seconds(30.0, "Seconds of packet time during which a repeat of the same alert "
                                    "is suppressed and counted (--cooldown).", 0)
    max_identifiers: int = cap(100_000, "Cap on distinct alert identifiers remembered for dedup; `wirewatch "
                                        "tune` keeps at most this many alert keys per threshold (the lowest "
                                        "peaks evicted first, counted and said).")
    escalation_factor: float = setting(10.0, "A repeat inside the cooldown whose main figure (distinct sources, "
                                             "packets, ports) reached this multiple of the alert that started the "
                                             "cooldown is a new alert with escalated_from (0 = never by figure; a "
                                             "higher severity always escalates).", 0)
    storm_sources: int = setting(10, "Storm control: once one alert type against one destination (and port) "
                                     "comes from more than this many distinct sources within the cooldown, "
                                     "further ones fold into one aggregate alert (0 = off).", 0)
    max_storm_sources: int = cap(1_048_576, "Cap on source addresses all storms remember together "
                                            "(beyond it the least recent storm is forgotten).")


@dataclass(frozen=True, eq=False, repr=False)
class OutputConfig(Frozen):
    logfile: str = setting("alerts.json", "JSON-lines alert log, EVE field names; appended to (--logfile). "
                                          "Empty = no log.")
    console: bool = setting(True, "Print [ALERT] lines on stdout.")
    db: str = setting(DEFAULT_DB, "Alert store for the dashboard (--db): a SQLite file, or postgresql://USER@HOST/DB "
                                  "for a fleet's shared PostgreSQL store. Empty = no store.")
    syslog: str = setting("", "Also send each alert to syslog as its EVE JSON (--syslog): udp://HOST:PORT, "
                              "tcp://HOST:PORT or a unix socket path such as /dev/log. Empty = off.")
    syslog_facility: str = setting("local5", "Syslog facility of those messages (Suricata's EVE default).")
    webhook: str = setting("", "Also post alerts as JSON to this http(s) URL (--webhook): a `text` field that "
                               "Slack, Mattermost and Teams incoming webhooks show, plus the records. Empty = off.")
    webhook_min_severity: int = setting(3, "Post alerts of this severity or higher (1 = high .. 3 = low: "
                                           "2 posts severities 1 and 2).", 1, 3)
    webhook_queue: int = setting(10_000, "Alerts waiting for the webhook beyond this are dropped and counted "
                                         "(capture never waits).", 1, 10_000_000)
    alert_frames: int = setting(100, "An alert's packets kept with it (--alert-frames): from a capture file the "
                                     "frame numbers of its first this many packets (`packets` in EVE), live a "
                                     "pcap of them in pcap_dir. 0 = off.", 0, 100_000)
    packet_ring: int = setting(262_144, "Recent packets the engine remembers (addresses, ports, time, frame) "
                                        "to find an alert's packets; older ones are evicted and counted.", 1024,
                               1 << 26)
    packet_ring_mb: float = setting(16.0, "At most this much memory for that ring (46 bytes a packet).", 1)
    pcap_dir: str = setting("var/pcap", "Live capture: where each alert's packets are written as a pcap "
                                        "(a state directory; the dashboard serves them from here).")
    pcap_ring_mb: float = setting(64.0, "Live capture: the recent packets' bytes (as captured) kept in memory "
                                        "for those pcaps, whole batches, oldest let go first.", 1)
    pcap_max_files: int = setting(1000, "Live capture: at most this many pcaps in pcap_dir (oldest removed "
                                        "first), kept by each sensor: sensors sharing a pcap_dir together keep "
                                        "up to the sum.", 1, 10_000_000)
    pcap_max_mb: float = setting(256.0, "Live capture: at most this many MB of pcaps in pcap_dir (oldest "
                                        "removed first), kept by each sensor: sensors sharing a pcap_dir "
                                        "together keep up to the sum.", 1)


@dataclass(frozen=True, eq=False, repr=False)
class StoreConfig(Frozen):
    retention_days: float = setting(30.0, "Delete alerts and stats stored more than this many days ago "
                                          "(insertion time, not packet time).", 0.01)
    max_db_mb: float = setting(1024.0, "Delete the oldest alerts when the store grows beyond this size.", 1)
    spool_max_mb: float = setting(1024.0, "Largest size of the spool where alerts wait while the store cannot take "
                                          "them; when full, further alerts are dropped from the store (counted as "
                                          "spool_dropped, said once) until it is replayed: the sensor never blocks, and "
                                          "they still reach the log and the other outputs.", 1)
    state_dir: str = setting("var", "Local directory for what a PostgreSQL store needs on this machine: the spool "
                                    "where alerts wait while the database is unreachable (spool-SENSOR.jsonl), and "
                                    "the dashboard's web-token.")


@dataclass(frozen=True, eq=False, repr=False)
class WebConfig(Frozen):
    host: str = setting("127.0.0.1", "Dashboard bind address (--host). Anything but loopback needs web.token set.")
    port: int = setting(8080, "Dashboard port (--port).", 1, 65535)
    token: str = setting("", "Access token for the dashboard and API; empty = generate one at first start and "
                             "keep it in web-token (mode 0600) next to the database.")
    user: str = setting("nobody", "Unprivileged user the dashboard runs as when started as root.")
    threads: int = setting(8, "Worker threads of the WSGI server.", 1, 256)


class DetectConfig:
    """The [detect.<name>] sections, one per registered detector (detect/registry.py):
    cfg.detect.port_scan is a PortScanConfig. Frozen, like the rest of Config."""

    __slots__ = ("_sections",)

    def __init__(self, sections: Mapping[str, Any] | None = None) -> None:
        given = dict(sections or {})
        specs = {spec.name: spec.config for spec in registry.DETECTORS}
        unknown = sorted(set(given) - set(specs))
        if unknown:
            raise TypeError(f"DetectConfig: no registered detector {unknown[0]!r}")
        object.__setattr__(self, "_sections", {name: given[name] if name in given else cls()
                                               for name, cls in specs.items()})

    def __getattr__(self, name: str) -> Any:
        try:
            return self._sections[name]
        except KeyError:
            raise AttributeError(f"no detector section {name!r}") from None

    def __setattr__(self, name: str, value: Any) -> None:
        raise dataclasses.FrozenInstanceError(f"cannot assign to field {name!r}")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, DetectConfig) and self._sections == other._sections

    __hash__ = None  # type: ignore[assignment]  # sections hold lists, like the other (unhashable) sections

    def __reduce__(self) -> tuple[Any, ...]:
        return DetectConfig, (self._sections,)

    def __repr__(self) -> str:
        return "DetectConfig(" + ", ".join(f"{k}={v!r}" for k, v in self._sections.items()) + ")"


@dataclass(frozen=True, eq=False, repr=False)
class Config(Frozen):
    general: GeneralConfig = dataclasses.field(default_factory=GeneralConfig)
    decode: DecodeConfig = dataclasses.field(default_factory=DecodeConfig)
    alerts: AlertsConfig = dataclasses.field(default_factory=AlertsConfig)
    output: OutputConfig = dataclasses.field(default_factory=OutputConfig)
    store: StoreConfig = dataclasses.field(default_factory=StoreConfig)
    web: WebConfig = dataclasses.field(default_factory=WebConfig)
    enrich: EnrichConfig = dataclasses.field(default_factory=EnrichConfig)
    detect: DetectConfig = dataclasses.field(default_factory=DetectConfig)


def sections() -> dict[str, type]:
    """Dotted section name -> its dataclass, e.g. 'detect.port_scan' -> PortScanConfig."""
    out: dict[str, type] = {}
    hints = typing.get_type_hints(Config)  # evaluates every field's annotation: once, not once a field
    for f in dataclasses.fields(Config):
        if f.name == "detect":
            for spec in registry.DETECTORS:
                out[f"detect.{spec.name}"] = spec.config
        else:
            out[f.name] = hints[f.name]
    return out


def _coerce(value: Any, kind: Any, where: str) -> Any:
    """Convert one raw value to the declared type or raise ConfigError."""
    if isinstance(value, str) and kind is not str:
        value = _parse_text(value, kind)
    origin = typing.get_origin(kind)
    if origin is list:
        (elem,) = typing.get_args(kind)
        if not isinstance(value, list):
            value = [value]
        return [_coerce(v, elem, where) for v in value]
    if kind is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{where}: expected true or false")
    if kind is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f"{where}: expected an integer")
    if kind is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            try:
                number = float(value)
            except OverflowError:  # an integer beyond any float
                raise ConfigError(f"{where}: expected a finite number") from None
            if not math.isfinite(number):  # nan compares false with every bound; inf passes a minimum
                raise ConfigError(f"{where}: expected a finite number")
            return number
        raise ConfigError(f"{where}: expected a number")
    if kind is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"{where}: expected a string")
    raise ConfigError(f"{where}: unsupported setting type {kind}")


def _parse_text(text: str, kind: Any) -> Any:
    """Text from the environment or --set: TOML syntax, or comma-separated for lists."""
    text = text.strip()
    if typing.get_origin(kind) is list and not text.startswith("["):
        return [t.strip() for t in text.split(",") if t.strip()]
    if kind is bool and text.lower() in ("yes", "on", "1", "no", "off", "0"):
        return text.lower() in ("yes", "on", "1")
    import tomllib  # only for a config file or a value given as text: a plain `read` needs neither

    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def _check_bounds(value: Any, f: dataclasses.Field, where: str) -> None:
    lo, hi = f.metadata.get("min"), f.metadata.get("max")
    for v in value if isinstance(value, list) else [value]:
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            if lo is not None and v < lo:
                raise ConfigError(f"{where}: must be at least {lo}")
            if hi is not None and v > hi:
                raise ConfigError(f"{where}: must be at most {hi}")


Override = tuple[str, str, Any, str]  # (section, key, raw value, source)


def _flatten_toml(data: Mapping[str, Any], source: str) -> list[Override]:
    known = sections()
    out: list[Override] = []

    def walk(prefix: str, node: Mapping[str, Any]) -> None:
        for k, v in node.items():
            path = f"{prefix}.{k}" if prefix else k
            if isinstance(v, dict):
                if path in known or path == "detect":
                    walk(path, v)
                else:
                    raise ConfigError(f"{source}: unknown section [{path}]")
            else:
                if prefix not in known:
                    raise ConfigError(f"{source}: unknown key {path}")
                out.append((prefix, k, v, source))

    walk("", data)
    return out


def load_file(path: str) -> list[Override]:
    import tomllib

    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except PermissionError:
        raise ConfigError(f"{path}: permission denied") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None
    return _flatten_toml(data, path)


def from_environment(environ: Mapping[str, str]) -> list[Override]:
    """WIREWATCH_SECTION__KEY=value, e.g. WIREWATCH_DETECT__PORT_SCAN__THRESHOLD=30."""
    out: list[Override] = []
    for name, value in sorted(environ.items()):
        if not name.startswith(ENV_PREFIX) or "__" not in name:
            continue
        parts = name[len(ENV_PREFIX):].lower().split("__")
        out.append((".".join(parts[:-1]), parts[-1], value, f"environment {name}"))
    return out


def parse_assignment(text: str, source: str = "--set") -> Override:
    if "=" not in text:
        raise ConfigError(f"{source} {text!r}: expected section.key=value")
    path, value = text.split("=", 1)
    path = path.strip()
    if "." not in path:
        raise ConfigError(f"{source} {text!r}: expected section.key=value")
    section, key = path.rsplit(".", 1)
    return section, key, value, source


def build(overrides: Iterable[Override] = ()) -> Config:
    """Apply overrides (later wins) to the defaults and validate everything."""
    known = sections()
    values: dict[str, dict[str, Any]] = {name: {} for name in known}
    for section, key, raw, source in overrides:
        if section not in known:
            raise ConfigError(f"{source}: unknown section {section!r} (for key {section}.{key})")
        cls = known[section]
        fields = {f.name: f for f in dataclasses.fields(cls)}
        if key not in fields:
            raise ConfigError(f"{source}: unknown key {section}.{key}")
        where = f"{source}: {section}.{key} = {raw!r}"
        value = _coerce(raw, typing.get_type_hints(cls)[key], where)
        _check_bounds(value, fields[key], where)
        values[section][key] = value
    top: dict[str, Any] = {}
    for f in dataclasses.fields(Config):
        if f.name == "detect":
            top["detect"] = DetectConfig({spec.name: spec.config(**values[f"detect.{spec.name}"])
                                          for spec in registry.DETECTORS})
        else:
            top[f.name] = known[f.name](**values[f.name])
    return Config(**top)


def load(config_file: str | None = None, cli: Iterable[Override] = (),
         environ: Mapping[str, str] | None = None) -> Config:
    layers: list[Override] = []
    if config_file:
        layers += load_file(config_file)
    layers += from_environment(os.environ if environ is None else environ)
    layers += list(cli)
    return build(layers)


def describe(cfg: Config, masks: Mapping[str, tuple[Callable[[str], str], str]] | None = None) -> str:
    """The values in effect, as TOML with each key's help as a comment. masks: a dotted key
    ("output.db") -> (what its value is shown as, a secret left out; the comment a value it
    changes gets, saying what was left out)."""
    lines: list[str] = []
    for name in sections():
        obj: Any = cfg
        for part in name.split("."):
            obj = getattr(obj, part)
        lines.append(f"[{name}]")
        for f in dataclasses.fields(obj):
            lines.append(f"# {f.metadata.get('help', '')}")
            value = getattr(obj, f.name)
            mask, note = (masks or {}).get(f"{name}.{f.name}", (None, ""))
            if mask is not None and (masked := mask(value)) != value:
                lines.append(f"{f.name} = {_toml_value(masked)}  # {note}")
            else:
                lines.append(f"{f.name} = {_toml_value(value)}")
        lines.append("")
    return "\n".join(lines)


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    return repr(v)


def markdown(cfg: Config | None = None) -> str:
    """Every key with its default and help, as the Markdown tables README.md shows."""
    cfg = cfg or build()
    out: list[str] = []
    for name in sections():
        obj: Any = cfg
        for part in name.split("."):
            obj = getattr(obj, part)
        out += [f"**[{name}]**", "", "| key | default | meaning |", "|---|---|---|"]
        for f in dataclasses.fields(obj):
            out.append(f"| `{f.name}` | `{_toml_value(getattr(obj, f.name))}` | {f.metadata.get('help', '')} |")
        out.append("")
    return "\n".join(out)
