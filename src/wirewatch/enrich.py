"""Who owns an address: country and autonomous system for the addresses of each alert.

Looked up per alert (never per packet) into `enrichment.src` / `enrichment.dest`. Every
address gets a `label`: `private` (RFC 1918, IPv6 ULA), `loopback`, `link-local`,
`multicast`, `reserved` (anything else not globally routable: shared, documentation,
benchmarking ranges, ...) or `public`; a public address also gets `country` (ISO code),
`country_name` and `as` (`number`, `name`) where the data has them.

Data: MaxMind-format databases the user names in `enrich.mmdb` (GeoLite2 / GeoIP2 Country or
City and ASN, DB-IP lite, ...: read with the maxminddb reader; entries from several files are
merged), or by default the GeoLite2-derived country + ASN data that the geoip2fast package
ships (AS names, no AS numbers: that data keeps only the names). The default data is loaded
on the first public address (about two seconds), so runs that never see one never pay.
"""

from __future__ import annotations

import ipaddress
import sys
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Protocol, TextIO

from .settings import cap, setting

PRIVATE_NETS = [ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7")]
DEFAULT_DATA = "geoip2fast-asn-ipv6.dat.gz"


@dataclass(frozen=True)
class EnrichConfig:
    enabled: bool = setting(True, "Add enrichment.src / enrichment.dest (country, AS, or private/reserved "
                                  "label) to each alert.")
    mmdb: list[str] = setting([], "MaxMind-format databases (GeoLite2/GeoIP2 Country, City, ASN; DB-IP lite) to "
                                  "look addresses up in; empty = the GeoLite2-derived data geoip2fast ships.")
    max_cached: int = cap(65_536, "Cap on addresses whose answer is remembered (least recent go).")


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


class Source(Protocol):
    def lookup(self, ip: str) -> dict[str, Any]: ...


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


class BundledSource:
    """The data the geoip2fast package ships (GeoLite2 country and ASN, IPv4 and IPv6)."""

    def __init__(self) -> None:
        from geoip2fast import GeoIP2Fast

        self.db = GeoIP2Fast(geoip2fast_data_file=DEFAULT_DATA, verbose=False)

    def lookup(self, ip: str) -> dict[str, Any]:
        r = self.db.lookup(ip)
        out: dict[str, Any] = {}
        if r.country_code and len(r.country_code) == 2 and r.country_code != "--":
            out["country"] = r.country_code
            if r.country_name:
                out["country_name"] = r.country_name
        if r.asn_name and r.asn_name not in ("<unknown>", "IANA.ORG"):
            out["as"] = {"name": r.asn_name}
        return out

    def close(self) -> None:
        return None


class Enricher:
    """Adds `enrichment` to alert records; answers per address are cached (capped, LRU)."""

    def __init__(self, cfg: EnrichConfig, log: TextIO | None = None):
        self.cfg = cfg
        self.log = log or sys.stderr
        self.source: Source | None = MaxMindSource(list(cfg.mmdb)) if cfg.mmdb else None
        self.source_failed = False
        self.cache: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self.evicted = 0
        self.lookups = 0

    def _source(self) -> Source | None:
        if self.source is None and not self.source_failed:
            try:
                self.source = BundledSource()
            except Exception as exc:  # noqa: BLE001 - no data: labels only, said once
                self.source_failed = True
                print(f"wirewatch: enrichment data ({DEFAULT_DATA} of geoip2fast) not loaded: {exc}; "
                      f"addresses get only their private/public label", file=self.log)
        return self.source

    def describe(self, address: str) -> dict[str, Any]:
        hit = self.cache.get(address)
        if hit is not None:
            self.cache.move_to_end(address)
            return hit
        ip = ipaddress.ip_address(address)
        out: dict[str, Any] = {"label": label(ip)}
        if out["label"] == "public":
            source = self._source()
            if source is not None:
                self.lookups += 1
                out.update(source.lookup(address))
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
        return {"enrich_cached": len(self.cache), "enrich_evicted": self.evicted, "enrich_lookups": self.lookups}
