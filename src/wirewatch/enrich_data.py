"""The default enrichment data: address ranges of the ip-location-db npm packages, as sorted
numpy arrays built once and cached on disk.

package.json installs two data packages into node_modules (the same way as Chart.js):
`@ip-location-db/asn` (range -> AS number and organisation; RouteViews, the five RIRs and
DB-IP's IP-to-ASN Lite, CC BY 4.0) and `@ip-location-db/geo-whois-asn-country` (range ->
country code; geofeeds, RIR whois and AS country, CC0). Their CSV files (~1.1 M rows) take
seconds to parse, so the first lookup turns them into arrays of inclusive ranges (IPv4 as
uint32, IPv6 as (hi, lo) uint64 pairs, like the decoder's columns) and saves them as .npy
files in a directory named after the packages' versions; later runs map those files
(`np.load(mmap_mode="r")`, a few milliseconds, only the pages a lookup touches resident).
A lookup is a binary search (`np.searchsorted`). The source files have a few overlapping
rows (a range inside or across another); they are flattened so that the later, narrower
row wins inside it and the enclosing row still answers around it.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

import numpy as np

ASN_PACKAGE = "@ip-location-db/asn"
COUNTRY_PACKAGE = "@ip-location-db/geo-whois-asn-country"
FILES = {("asn", 4): "asn-ipv4-num.csv", ("asn", 6): "asn-ipv6-num.csv",
         ("country", 4): "geo-whois-asn-country-ipv4-num.csv", ("country", 6): "geo-whois-asn-country-ipv6-num.csv"}
CACHE_FORMAT = 1  # bump when the arrays change shape: old caches are then rebuilt
MASK64 = (1 << 64) - 1


class DataMissing(Exception):
    """The data packages are not installed (npm install was not run)."""


def node_modules() -> Path | None:
    """node_modules holding the data packages: WIREWATCH_NODE_MODULES, else the nearest
    node_modules above this file (the checkout's, or an install prefix's)."""
    env = os.environ.get("WIREWATCH_NODE_MODULES")
    candidates = [Path(env)] if env else []
    candidates += [p / "node_modules" for p in Path(__file__).resolve().parents]
    for c in candidates:
        if (c / ASN_PACKAGE / "package.json").exists() and (c / COUNTRY_PACKAGE / "package.json").exists():
            return c
    return None


def package_version(modules: Path, package: str) -> str:
    with open(modules / package / "package.json", encoding="utf-8") as fh:
        return str(json.load(fh)["version"])


def data_date(version: str) -> str:
    """ip-location-db versions end in the data's date and hour: 2.3.2026061719 -> 2026-06-17."""
    stamp = version.rsplit(".", 1)[-1]
    return f"{stamp[:4]}-{stamp[4:6]}-{stamp[6:8]}" if len(stamp) >= 8 and stamp.isdigit() else version


# -- parsing and flattening -----------------------------------------------------------------

def read_rows(path: Path, kind: str) -> Iterator[tuple[int, int, Any]]:
    """(start, end, value) of each row of an ip-location-db -num.csv file: value is
    (AS number, organisation) for the asn files, the country code for the country files."""
    with open(path, encoding="utf-8", newline="") as fh:
        for line in fh:
            if kind == "country":
                start, end, code = line.rstrip("\r\n").split(",")
                yield int(start), int(end), code
                continue
            if '"' in line:
                start, end, number, name = next(csv.reader([line]))
            else:
                start, end, number, name = line.rstrip("\r\n").split(",", 3)
            yield int(start), int(end), (int(number), name)


def flatten(rows: list[tuple[int, int, Any]]) -> list[tuple[int, int, Any]]:
    """Non-overlapping ranges from rows that may overlap: a row starting inside another wins
    from its start to its end, and the enclosing one answers again after it."""
    rows = sorted(rows, key=lambda r: (r[0], -r[1]))
    out: list[tuple[int, int, Any]] = []
    stack: list[tuple[int, Any]] = []  # (end, value) of the rows open at `cur`, innermost last
    cur = 0  # first address not yet emitted

    def close_until(limit: int) -> None:
        nonlocal cur
        while stack and stack[-1][0] < limit:
            end, value = stack.pop()
            if cur <= end:
                out.append((cur, end, value))
                cur = end + 1

    for start, end, value in rows:
        close_until(start)
        if stack and cur < start:
            out.append((cur, start - 1, stack[-1][1]))
        cur = max(cur, start)
        stack.append((end, value))
    close_until(1 << 129)
    return out


# -- the arrays -----------------------------------------------------------------------------

class RangeTable:
    """Sorted, non-overlapping inclusive ranges; find() gives the row holding an address."""

    def __init__(self, arrays: dict[str, np.ndarray], v6: bool):
        self.v6 = v6
        if v6:
            self.start_hi, self.start_lo = arrays["start_hi"], arrays["start_lo"]
            self.end_hi, self.end_lo = arrays["end_hi"], arrays["end_lo"]
        else:
            self.start, self.end = arrays["start"], arrays["end"]

    def __len__(self) -> int:
        return len(self.start_hi if self.v6 else self.start)

    def find(self, n: int) -> int:
        """Row index whose range holds address n (an int), or -1."""
        if not self.v6:
            i = int(np.searchsorted(self.start, np.uint32(n), side="right")) - 1
            return i if i >= 0 and n <= int(self.end[i]) else -1
        hi, lo = np.uint64(n >> 64), np.uint64(n & MASK64)
        first = int(np.searchsorted(self.start_hi, hi, side="left"))  # rows before: start_hi < hi
        last = int(np.searchsorted(self.start_hi, hi, side="right"))  # rows [first, last): start_hi == hi
        i = first + int(np.searchsorted(self.start_lo[first:last], lo, side="right")) - 1
        if i < 0:
            return -1
        return i if n <= (int(self.end_hi[i]) << 64 | int(self.end_lo[i])) else -1


def range_arrays(rows: list[tuple[int, int, Any]], v6: bool) -> dict[str, np.ndarray]:
    starts = [r[0] for r in rows]
    ends = [r[1] for r in rows]
    if not v6:
        return {"start": np.array(starts, dtype=np.uint32), "end": np.array(ends, dtype=np.uint32)}
    return {"start_hi": np.array([s >> 64 for s in starts], dtype=np.uint64),
            "start_lo": np.array([s & MASK64 for s in starts], dtype=np.uint64),
            "end_hi": np.array([e >> 64 for e in ends], dtype=np.uint64),
            "end_lo": np.array([e & MASK64 for e in ends], dtype=np.uint64)}


def build_arrays(modules: Path) -> dict[str, np.ndarray]:
    """Every array of the data, named `<kind><version>_<field>` plus the AS names' blob."""
    out: dict[str, np.ndarray] = {}
    names: dict[str, int] = {}
    for (kind, version), filename in FILES.items():
        package = ASN_PACKAGE if kind == "asn" else COUNTRY_PACKAGE
        rows = flatten(list(read_rows(modules / package / filename, kind)))
        prefix = f"{kind}{version}_"
        for field, arr in range_arrays(rows, version == 6).items():
            out[prefix + field] = arr
        if kind == "asn":
            out[prefix + "number"] = np.array([r[2][0] for r in rows], dtype=np.uint32)
            out[prefix + "name"] = np.array([names.setdefault(r[2][1], len(names)) for r in rows], dtype=np.uint32)
        else:
            out[prefix + "code"] = np.array([r[2] for r in rows], dtype="S2")
    encoded = [n.encode("utf-8") for n in names]  # dicts keep insertion order: index i is the i-th name
    out["names_offset"] = np.cumsum([0] + [len(b) for b in encoded], dtype=np.uint64)
    out["names_blob"] = np.frombuffer(b"".join(encoded), dtype=np.uint8).copy()
    return out


def building_dir(cache_root: str) -> str:
    """Where this process writes a cache before renaming it into place (one per process)."""
    return os.path.join(cache_root, f".build-{os.getpid()}")


def save(arrays: dict[str, np.ndarray], directory: str, manifest: dict[str, Any]) -> None:
    """Write the arrays and the manifest into `directory`, whole or not at all (a temporary
    directory renamed into place: a reader never sees half a cache)."""
    parent = os.path.dirname(directory)
    os.makedirs(parent, exist_ok=True)
    tmp = building_dir(parent)
    shutil.rmtree(tmp, ignore_errors=True)  # left by an earlier process that had this pid and was killed
    os.mkdir(tmp, 0o700)
    try:
        for name, arr in arrays.items():
            np.save(os.path.join(tmp, name + ".npy"), arr, allow_pickle=False)
        with open(os.path.join(tmp, "manifest.json"), "w", encoding="utf-8") as fh:
            json.dump(manifest, fh, indent=1)
        os.chmod(tmp, 0o755)
        try:
            os.rename(tmp, directory)
        except OSError:  # another process built it first: theirs is as good
            if not os.path.exists(os.path.join(directory, "manifest.json")):
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def load(directory: str) -> dict[str, np.ndarray] | None:
    """The cached arrays, memory-mapped; None when there is no complete cache there."""
    try:
        with open(os.path.join(directory, "manifest.json"), encoding="utf-8") as fh:
            manifest = json.load(fh)
        return {name: np.load(os.path.join(directory, name + ".npy"), mmap_mode="r", allow_pickle=False)
                for name in manifest["arrays"]}
    except (OSError, ValueError, KeyError):
        return None


def installed() -> tuple[Path, dict[str, str]]:
    """node_modules with the data packages and their versions; DataMissing when absent."""
    modules = node_modules()
    if modules is None:
        raise DataMissing(f"{ASN_PACKAGE} and {COUNTRY_PACKAGE} are not installed (npm install)")
    return modules, {p: package_version(modules, p) for p in (ASN_PACKAGE, COUNTRY_PACKAGE)}


def cache_directory(cache_root: str, versions: dict[str, str]) -> str:
    key = "-".join(v.rsplit(".", 1)[-1] for v in versions.values())
    return os.path.join(cache_root, f"ip-location-db-{key}-v{CACHE_FORMAT}")


def is_cached(cache_root: str) -> bool:
    """Whether the installed data's arrays are already cached under cache_root (then loading
    them takes milliseconds; otherwise building takes seconds)."""
    try:
        _, versions = installed()
    except DataMissing:
        return False
    return os.path.exists(os.path.join(cache_directory(cache_root, versions), "manifest.json"))


class DefaultData:
    """The Source for enrich.py: country and AS of an address from the ip-location-db data."""

    def __init__(self, cache_root: str, log: TextIO | None = None):
        log = log or sys.stderr
        modules, self.versions = installed()
        self.directory = cache_directory(cache_root, self.versions)
        started = time.perf_counter()
        arrays = load(self.directory)
        self.built = arrays is None
        self.saved = f"cached in {self.directory}"
        if arrays is None:
            arrays = build_arrays(modules)
            manifest = {"packages": self.versions, "arrays": sorted(arrays), "format": CACHE_FORMAT,
                        "rows": {f"{k}{v}": int(len(arrays[f"{k}{v}_number" if k == "asn" else f"{k}{v}_code"]))
                                 for k, v in FILES}}
            try:
                save(arrays, self.directory, manifest)
                saved = f"cached in {self.directory}"
            except OSError as exc:
                saved = f"not cached ({exc.strerror or exc}: {self.directory}): built again next run"
            self.saved = saved
            print(f"wirewatch: enrichment data built from {ASN_PACKAGE} {self.versions[ASN_PACKAGE]} and "
                  f"{COUNTRY_PACKAGE} {self.versions[COUNTRY_PACKAGE]} in {time.perf_counter() - started:.1f} s, "
                  f"{saved}", file=log)
        self.load_s = time.perf_counter() - started
        self.arrays = arrays
        self.tables = {(k, v): RangeTable({f: arrays[f"{k}{v}_{f}"] for f in
                                           (("start_hi", "start_lo", "end_hi", "end_lo") if v == 6 else ("start", "end"))},
                                          v == 6)
                       for k, v in FILES}
        self.names_offset, self.names_blob = arrays["names_offset"], arrays["names_blob"]

    def as_name(self, index: int) -> str:
        lo, hi = int(self.names_offset[index]), int(self.names_offset[index + 1])
        return bytes(self.names_blob[lo:hi]).decode("utf-8")

    def lookup(self, ip: str) -> dict[str, Any]:
        import ipaddress

        addr = ipaddress.ip_address(ip)
        n, v = int(addr), addr.version
        out: dict[str, Any] = {}
        i = self.tables[("country", v)].find(n)
        if i >= 0:
            out["country"] = bytes(self.arrays[f"country{v}_code"][i]).decode("ascii")
        i = self.tables[("asn", v)].find(n)
        if i >= 0:
            asn: dict[str, Any] = {}
            number = int(self.arrays[f"asn{v}_number"][i])
            if number:
                asn["number"] = number
            name = self.as_name(int(self.arrays[f"asn{v}_name"][i]))
            if name:
                asn["name"] = name
            if asn:
                out["as"] = asn
        return out

    def describe(self) -> str:
        return (f"{ASN_PACKAGE} {self.versions[ASN_PACKAGE]} and {COUNTRY_PACKAGE} "
                f"{self.versions[COUNTRY_PACKAGE]} (data of {data_date(self.versions[ASN_PACKAGE])})")

    def close(self) -> None:
        return None


def stopped(cache_root: str) -> None:
    """The building child's SIGTERM: remove what it wrote and leave at once (an exception
    raised here could land in a finalizer, which would swallow it)."""
    shutil.rmtree(building_dir(cache_root), ignore_errors=True)
    os._exit(128 + signal.SIGTERM)


class ChildBuild:
    """The cache built in a forked child, so that a live sensor's capture never waits for it.
    Forked without exec: after the privilege drop the interpreter's own files may be closed
    to the sensor's user, and every module this needs is already imported. The child only
    parses, saves and leaves with os._exit (no parent's cleanups, no locks another thread of
    the parent may have held at the fork: it writes its error, if any, with os.write)."""

    def __init__(self, cache_root: str):
        self.started = time.monotonic()
        self.error = ""
        read_end, write_end = os.pipe()
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})  # no stop before the handler below
        try:
            pid = os.fork()
        except OSError:  # no child (the user's process limit, memory): the mask and the pipe as they were
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
            os.close(read_end)
            os.close(write_end)
            raise
        if pid == 0:
            os.close(read_end)
            code = 1
            try:
                signal.signal(signal.SIGTERM, lambda _signum, _frame: stopped(cache_root))
                signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent's Ctrl-C is the parent's to handle
                signal.signal(signal.SIGHUP, signal.SIG_IGN)
                signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
                data = DefaultData(cache_root, io.StringIO())  # the parent says it was built
                if not is_cached(cache_root):
                    os.write(write_end, data.saved.encode()[:4000])
                code = 0
            except BaseException as exc:  # noqa: BLE001 - reported to the parent, which says it once
                os.write(write_end, f"{type(exc).__name__}: {exc}".encode()[:4000])
            finally:
                os._exit(code)
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
        os.close(write_end)
        self.pid, self.pipe = pid, read_end
        self.code: int | None = None

    def poll(self) -> str | None:
        """None while building; then "" when it succeeded, else what went wrong."""
        if self.code is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid == 0:
                return None
            self._finish(status)
        return self.error

    def _finish(self, status: int) -> None:
        self.code = os.waitstatus_to_exitcode(status)
        self.error = os.read(self.pipe, 4000).decode(errors="replace")
        os.close(self.pipe)
        if self.code != 0 and not self.error:
            self.error = f"the builder exited with {self.code}"

    def seconds(self) -> float:
        return time.monotonic() - self.started

    def stop(self) -> None:
        if self.code is None:
            os.kill(self.pid, signal.SIGTERM)
            self._finish(os.waitpid(self.pid, 0)[1])


def main(argv: list[str] | None = None) -> int:
    """`python -m wirewatch.enrich_data [STATE_DIR]`: build the cache under STATE_DIR/enrich now
    (make setup does, for the state directory `var`), so the first alert of a fresh checkout does
    not wait."""
    args = sys.argv[1:] if argv is None else argv
    root = os.path.join(args[0] if args else "var", "enrich")
    try:
        data = DefaultData(root, sys.stdout)
    except DataMissing as exc:
        print(f"wirewatch: {exc}", file=sys.stderr)
        return 2
    print(f"wirewatch: enrichment data: {data.describe()} in {data.directory}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
