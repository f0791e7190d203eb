"""What the default enrichment data's files say about an address, read plainly (csv module,
a scan of every row: the narrowest row covering it wins), to check wirewatch's arrays against."""

from __future__ import annotations

import csv
import ipaddress
from functools import cache

from wirewatch.enrich_data import ASN_PACKAGE, COUNTRY_PACKAGE, FILES, node_modules


@cache
def rows(kind: str, version: int) -> list[tuple[int, int, object]]:
    modules = node_modules()
    assert modules is not None, "npm install puts the data packages in node_modules"
    package = ASN_PACKAGE if kind == "asn" else COUNTRY_PACKAGE
    with open(modules / package / FILES[(kind, version)], newline="", encoding="utf-8") as fh:
        return [(int(r[0]), int(r[1]), (int(r[2]), r[3]) if kind == "asn" else r[2]) for r in csv.reader(fh)]


def covering(kind: str, version: int, x: int) -> object | None:
    found = [r for r in rows(kind, version) if r[0] <= x <= r[1]]
    return max(found, key=lambda r: (r[0], -r[1]))[2] if found else None


def expected(address: str) -> dict:
    """{"country": ..., "as": {"number": ..., "name": ...}} as the files give them."""
    ip = ipaddress.ip_address(address)
    out: dict = {}
    cc = covering("country", ip.version, int(ip))
    if cc is not None:
        out["country"] = cc
    asn = covering("asn", ip.version, int(ip))
    if asn is not None:
        number, name = asn  # type: ignore[misc]
        out["as"] = {k: v for k, v in (("number", number), ("name", name)) if v}
    return out
