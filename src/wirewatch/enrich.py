"""Who owns an address: country and autonomous system for the addresses of each alert.

Looked up per alert (never per packet) into `enrichment.src` / `enrichment.dest`. Every
address gets a `label`: `private` (RFC 1918, IPv6 ULA), `loopback`, `link-local`,
`multicast`, `reserved` (anything else not globally routable: shared, documentation,
benchmarking ranges, ...) or `public`; a public address also gets `country` (ISO code),
`country_name` and `as` (`number`, `name`) where the data has them.

Data, first to answer wins (country and AS each as a whole): the MaxMind-format databases the
user names in `enrich.mmdb` (GeoLite2 / GeoIP2 Country or City and ASN, DB-IP lite,
ip-location-db's .mmdb files, ...: read with the maxminddb reader), then, unless
`enrich.default_data` is off, the ip-location-db data that package.json installs
(enrich_data.py: AS number and organisation, country code; IPv4 and IPv6). Country names
the data lacks come from the iso3166 package. The default data is mapped from its cache at
the first public address (milliseconds); building that cache from the packages' CSV files
takes seconds, once per data version: `make setup` does it for `var`. Elsewhere `read` builds
it at its first public address (offline: waiting loses nothing), while the live sensor calls
warm(), which never makes capture wait: a missing cache is built by a forked child, and
until it is ready alerts get their labels and what enrich.mmdb answers (`enrich_unready`
counts those addresses).
"""

from __future__ import annotations

import ipaddress
import os
import sys
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TextIO

from .settings import Frozen, cap, setting

if TYPE_CHECKING:
    from .enrich_data import ChildBuild

PRIVATE_NETS = [ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7")]


@dataclass(frozen=True, eq=False, repr=False)
class EnrichConfig(Frozen):
    enabled: bool = setting(True, "Add enrichment.src / enrichment.dest (country, AS, or private/reserved "
                                  "label) to each alert.")
    mmdb: list[str] = setting([], "MaxMind-format databases (GeoLite2/GeoIP2 Country, City, ASN; DB-IP lite) to "
                                  "look addresses up in first; what they do not answer comes from the default data.")
    default_data: bool = setting(True, "Look addresses up in the ip-location-db data package.json installs (AS "
                                       "number and name, country; IPv4 and IPv6) after the enrich.mmdb files.")
    cache_dir: str = setting("", "Where the default data's lookup arrays are cached (built once per data version); "
                                 "empty = enrich/ in store.state_dir.")
    max_cached: int = cap(65_536, "Cap on addresses whose answer is remembered (least recent go).")


def cache_root(cfg: Any) -> str:
    """The default data's cache of a Config: enrich.cache_dir, else enrich/ in the state directory."""
    return cfg.enrich.cache_dir or os.path.join(cfg.store.state_dir, "enrich")


def label(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    if ip.is_loopback:
        return "loopback"
    if ip.is_link_local:
        return "link-local"
    if ip.is_multicast:
        return "multicast"
    if any(ip in net for net in PRIVATE_NETS if net.version == ip.version):
        return "private"
    return "public" if ip.is_global else "reserved"


def country_name(code: str) -> str | None:
    """English short name of an ISO 3166-1 alpha-2 code (iso3166 package), None if unknown."""
    import iso3166

    found = iso3166.countries_by_alpha2.get(code.upper())
    return found.apolitical_name if found else None


class Source(Protocol):
    def lookup(self, ip: str) -> dict[str, Any]: ...

    def close(self) -> None: ...


class MaxMindSource:
    """One or more .mmdb files; the first to answer a field wins."""

    def __init__(self, paths: list[str]):
        import maxminddb

        from .config import ConfigError  # config imports EnrichConfig from here: import late

        self.readers = []
        for path in paths:
            try:
                self.readers.append(maxminddb.open_database(path))
            except (OSError, ValueError, maxminddb.InvalidDatabaseError) as exc:
                raise ConfigError(f"enrich.mmdb = {path!r}: not a readable MaxMind database: {exc}") from None

    def lookup(self, ip: str) -> dict[str, Any]:
        out: dict[str, Any] = {}
        asn: dict[str, Any] = {}
        for reader in self.readers:
            found = reader.get(ip)
            if not isinstance(found, dict):
                continue
            rec: dict[str, Any] = found
            country = rec.get("country") or rec.get("registered_country") or {}
            if "country" not in out and country.get("iso_code"):
                out["country"] = country["iso_code"]
                name = (country.get("names") or {}).get("en")
                if name:
                    out["country_name"] = name
            elif "country" not in out and isinstance(rec.get("country_code"), str) and rec["country_code"]:
                out["country"] = rec["country_code"]  # ip-location-db's country .mmdb files
            if "number" not in asn and rec.get("autonomous_system_number") is not None:
                asn["number"] = int(rec["autonomous_system_number"])
            if "name" not in asn and rec.get("autonomous_system_organization"):
                asn["name"] = rec["autonomous_system_organization"]
        if asn:
            out["as"] = asn
        return out

    def close(self) -> None:
        for r in self.readers:
            r.close()


class Enricher:
    """Adds `enrichment` to alert records; answers per address are cached (capped, LRU)."""

    def __init__(self, cfg: EnrichConfig, log: TextIO | None = None, cache_dir: str = os.path.join("var", "enrich")):
        self.cfg = cfg
        self.log = log or sys.stderr
        self.cache_dir = cache_dir
        self.mmdb: Source | None = MaxMindSource(list(cfg.mmdb)) if cfg.mmdb else None
        self.default: Source | None = None  # the ip-location-db data, loaded at the first public address
        self.default_failed = not cfg.default_data
        self._warming: threading.Thread | None = None  # maps a cached copy
        self._building: ChildBuild | None = None  # builds a missing one
        self.blocking = True  # wait for the default data (read); warm() turns it off (live)
        self.cache: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self.evicted = 0
        self.lookups = 0
        self.unready = 0

    @staticmethod
    def preload() -> None:
        """Import what building the default data needs while the interpreter's files are still
        readable (the sensor calls it before dropping root, like privileges.preload)."""
        from . import enrich_data  # noqa: F401

    def _load_default(self) -> None:
        from .enrich_data import DefaultData

        try:
            self.default = DefaultData(self.cache_dir, self.log)
        except Exception as exc:  # noqa: BLE001 - no data: labels (and the .mmdb files) only, said once
            self.default_failed = True
            print(f"wirewatch: default enrichment data not loaded: {exc}; public addresses get only what "
                  f"enrich.mmdb answers", file=self.log)

    def warm(self) -> None:
        """Never make the caller wait for the default data (the live sensor, once it runs as its
        own user): a cached copy is mapped now in a background thread (milliseconds); a missing
        one is built, when the first public address needs it, in a forked child (seconds of CPU
        on the other core, not under this process's GIL; forked, not exec'd, because after the
        privilege drop the interpreter's files may be closed to us: enrich_data is imported
        before it, see preload())."""
        self.blocking = False
        if self.default is not None or self.default_failed or self._warming:
            return
        from .enrich_data import is_cached

        if is_cached(self.cache_dir):
            self._warming = threading.Thread(target=self._load_default, name="enrich-data", daemon=True)
            self._warming.start()

    def _build_in_child(self) -> bool:
        """Whether the cache is there to map (non-blocking mode): starts the child that builds
        it, or sees it done. A child that could not be forked, failed or could not save leaves the default data
        off, said once (building it here would make capture wait)."""
        from .enrich_data import ChildBuild, is_cached

        if self._building is None:
            if is_cached(self.cache_dir):
                return True
            try:
                self._building = ChildBuild(self.cache_dir)
            except OSError as exc:  # could not fork: as a failed build, said once (not at every alert)
                self.default_failed = True
                print(f"wirewatch: default enrichment data not built in {self.cache_dir}: cannot start the "
                      f"builder: {exc}; public addresses get only what enrich.mmdb answers", file=self.log)
                return True
            return False
        done = self._building.poll()
        if done is None:
            return False
        if done == "" and is_cached(self.cache_dir):
            print(f"wirewatch: enrichment data built beside capture in {self._building.seconds():.1f} s, "
                  f"cached in {self.cache_dir}", file=self.log)
        else:
            self.default_failed = True
            print(f"wirewatch: default enrichment data not built in {self.cache_dir}: {done or 'not saved'}; "
                  f"public addresses get only what enrich.mmdb answers", file=self.log)
        return True

    def sources(self) -> tuple[list[Source], bool]:
        """The sources to ask, and whether that is all of them (False while the default data
        is being built beside a live sensor)."""
        if self._warming is not None:  # mapping a cached copy takes milliseconds: wait for it
            self._warming.join()
            self._warming = None
        if self.default is None and not self.default_failed:
            if not self.blocking and not self._build_in_child():
                return [s for s in (self.mmdb,) if s is not None], False
            if not self.default_failed:
                self._load_default()
        return [s for s in (self.mmdb, self.default) if s is not None], True

    def close(self) -> None:
        """Stop a build still running: it unwinds, and its temporary directory is removed,
        never renamed into place."""
        if self._building is not None:
            self._building.stop()

    def describe(self, address: str) -> dict[str, Any]:
        hit = self.cache.get(address)
        if hit is not None:
            self.cache.move_to_end(address)
            return hit
        ip = ipaddress.ip_address(address)
        out: dict[str, Any] = {"label": label(ip)}
        complete = True
        if out["label"] == "public":
            sources, complete = self.sources()
            if not complete:
                self.unready += 1
            if sources:
                self.lookups += 1
            for source in sources:
                found = source.lookup(address)
                if "country" in found and "country" not in out:
                    out["country"] = found["country"]
                    name = found.get("country_name") or country_name(found["country"])
                    if name:
                        out["country_name"] = name
                if "as" in found and "as" not in out:
                    out["as"] = found["as"]
        if not complete:
            return out  # not remembered: the next alert from the address gets the whole answer
        self.cache[address] = out
        if len(self.cache) > self.cfg.max_cached:
            self.cache.popitem(last=False)
            self.evicted += 1
        return out

    def annotate(self, alerts: list[dict[str, Any]]) -> None:
        for a in alerts:
            found = {side: self.describe(a[key]) for side, key in (("src", "src_ip"), ("dest", "dest_ip")) if a.get(key)}
            if found:
                a["enrichment"] = found

    def stats(self) -> dict[str, int]:
        return {"enrich_cached": len(self.cache), "enrich_evicted": self.evicted, "enrich_lookups": self.lookups,
                "enrich_unready": self.unready}
