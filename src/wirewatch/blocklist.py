"""Blocklists (plain, Spamhaus DROP, FireHOL netset, abuse.ch-style CSV) and vectorized matching.

IPv4 prefixes become disjoint [start, end] intervals over the 32-bit space (a prefix
nested in a wider one is covered by it), matched for a whole batch with one
`np.searchsorted`: a million prefixes cost ~16 comparisons per packet. IPv6 entries are
matched per distinct address (IPv6 blocklists are short in practice).
"""

from __future__ import annotations

import bisect
import os
import re
import socket
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import TextIO

import numpy as np

from .addr import HostBits, host_bits, written_prefix


class BlocklistError(Exception):
    """A blocklist that cannot be used; the message names file and line."""


# eq=False, repr=False: running state, compared and shown by identity (each method dataclass makes is
# compiled at import: start-up)
@dataclass(eq=False, repr=False)
class Blocklist:
    v4_start: np.ndarray = field(default_factory=lambda: np.zeros(0, np.uint64))
    v4_end: np.ndarray = field(default_factory=lambda: np.zeros(0, np.uint64))
    v4_entry: list[str] = field(default_factory=list)
    v6_start: list[int] = field(default_factory=list)
    v6_end: list[int] = field(default_factory=list)
    v6_entry: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)  # list names (file base names)
    v4_file: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int16))  # per v4 entry: index in files
    v6_file: list[int] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.v4_entry) + len(self.v6_entry)

    def match_v4(self, addr: np.ndarray) -> np.ndarray:
        """Index into v4_entry of the prefix holding each IPv4 address (uint32 values), -1 if none."""
        out = np.full(len(addr), -1, np.int64)
        pos, entry = self.matches_v4(addr)
        out[pos] = entry
        return out

    def matches_v4(self, addr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The positions in `addr` (uint32 values) of the addresses inside a listed prefix, in
        order, and each one's index into v4_entry. Only addresses between the first prefix's
        start and the last one's end are searched: with a short list, the few that match."""
        if not len(self.v4_start):
            none = np.zeros(0, np.int64)
            return none, none
        pos = np.flatnonzero((addr >= self.v4_start[0]) & (addr <= self.v4_end[-1]))
        near = addr[pos]
        i = np.searchsorted(self.v4_start, near, side="right") - 1  # >= 0: near >= v4_start[0]
        ok = near <= self.v4_end[i]
        return pos[ok], i[ok]

    def match_v6(self, value: int) -> int:
        """Index into v6_entry of the prefix holding this 128-bit address, -1 if none."""
        i = bisect.bisect_right(self.v6_start, value) - 1
        return i if i >= 0 and value <= self.v6_end[i] else -1

    def v4_source(self, i: int) -> tuple[str, str]:
        return self.v4_entry[i], self.files[int(self.v4_file[i])]

    def v6_source(self, i: int) -> tuple[str, str]:
        return self.v6_entry[i], self.files[self.v6_file[i]]


MAX_LINE = 4096  # characters: no address, prefix or comment needs more
MAX_BYTES = 512 * 1024 * 1024  # a blocklist bigger than this is not a blocklist (/dev/zero, a disk image)


def parse_line(raw: str) -> str | None:
    """The address/prefix on a line, or None for blank and comment lines.

    `#` and `;` start comments (Spamhaus DROP: `1.2.3.0/24 ; SBL123`); FireHOL netsets
    are one entry per line with `#` comments; abuse.ch-style CSV has the address in the
    first column (`"1.2.3.4","443",...`). Anything else after the entry is an error
    (ValueError): keeping the first of two addresses would silently drop the second.
    """
    text = raw.split("#", 1)[0].split(";", 1)[0].strip()
    if not text:
        return None
    if "," in text:  # CSV: the other columns are ports, dates, malware names
        text = text.split(",", 1)[0].strip().strip('"').strip()
        if not text:
            raise ValueError("empty first column: expected an address or prefix")
    words = text.split()
    if len(words) > 1:
        raise ValueError(f"one address or prefix per line, found {len(words)}: {text[:100]!r}")
    return words[0]


def _lines(fh: TextIO, path: str) -> Iterator[tuple[int, str]]:
    """(line number, line) with the line length and the total size bounded."""
    total = 0
    lineno = 0
    while True:
        raw = fh.readline(MAX_LINE + 1)
        if not raw:
            return
        lineno += 1
        total += len(raw)
        if len(raw) > MAX_LINE:
            raise BlocklistError(f"{path}:{lineno}: line longer than {MAX_LINE} characters: not a blocklist")
        if total > MAX_BYTES:
            raise BlocklistError(f"{path}:{lineno}: more than {MAX_BYTES // (1024 * 1024)} MB: not a blocklist")
        yield lineno, raw


_V4 = re.compile(r"^(\d{1,3}(?:\.\d{1,3}){3})(?:/(\d{1,2}))?$")


def _v4_range(entry: str) -> tuple[int, int] | None:
    """Fast path for dotted-quad IPv4 (the bulk of real lists); None = let ipaddress decide.
    ValueError for a prefix with host bits set (addr.host_bits)."""
    m = _V4.match(entry)
    if not m:
        return None
    try:
        value = struct.unpack("!I", socket.inet_aton(m.group(1)))[0]
    except OSError:
        return None
    if any(int(part) > 255 for part in m.group(1).split(".")):
        return None
    bits = int(m.group(2)) if m.group(2) is not None else 32
    if bits > 32:
        return None
    refused = host_bits(entry, value, bits, 32)
    if refused:
        raise ValueError(refused)
    return value, value | (1 << (32 - bits)) - 1


Prefix = tuple[int, int, str]  # first address, last address, the entry as written


@dataclass
class ParsedList:
    """One list's entries, before lists are combined into a Blocklist."""

    name: str  # what alerts call the list: a file's base name or a feed's URL
    v4: list[Prefix] = field(default_factory=list)
    v6: list[Prefix] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.v4) + len(self.v6)


def parse_lines(fh: TextIO, where: str, name: str) -> ParsedList:
    """Entries of a list (bounded as _lines bounds it); a bad line raises BlocklistError
    naming `where` (file or URL) and the line."""
    out = ParsedList(name)
    for lineno, raw in _lines(fh, where):
        if lineno == 1:
            raw = raw.removeprefix("\ufeff")  # a byte order mark (a list saved by Windows Notepad)
        try:
            entry = parse_line(raw)
        except ValueError as exc:
            raise BlocklistError(f"{where}:{lineno}: {exc}") from None
        if entry is None:
            continue
        try:
            fast = _v4_range(entry)
        except ValueError as exc:
            raise BlocklistError(f"{where}:{lineno}: {exc}") from None
        if fast is not None:
            out.v4.append((fast[0], fast[1], entry))
            continue
        if "%" in entry:  # ipaddress takes fe80::1%eth0 as fe80::1: a zone no packet carries, dropped unsaid
            raise BlocklistError(f"{where}:{lineno}: an IPv6 zone ({entry[entry.index('%'):]}) has no meaning "
                                 f"in a blocklist (packets carry none): {entry!r}")
        try:
            net = written_prefix(entry)
        except HostBits as exc:
            raise BlocklistError(f"{where}:{lineno}: {exc}") from None
        except ValueError:
            raise BlocklistError(f"{where}:{lineno}: not an IP address or CIDR prefix: {entry!r}") from None
        (out.v4 if net.version == 4 else out.v6).append((int(net.network_address), int(net.broadcast_address), entry))
    return out


def read_file(path: str) -> ParsedList:
    try:
        with open(path, encoding="utf-8", errors="strict") as fh:
            return parse_lines(fh, path, os.path.basename(path))
    except OSError as exc:
        raise BlocklistError(f"{path}: cannot read blocklist: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise BlocklistError(f"{path}: not a text file") from None


def load(paths: list[str]) -> Blocklist:
    return combine([read_file(p) for p in paths])


def combine(lists: Iterable[ParsedList]) -> Blocklist:
    """One matcher over several lists; an entry remembers which list it came from."""
    lists = list(lists)
    v4 = [(a, b, e, fi) for fi, pl in enumerate(lists) for a, b, e in pl.v4]
    v6 = [(a, b, e, fi) for fi, pl in enumerate(lists) for a, b, e in pl.v6]
    bl = Blocklist(files=[pl.name for pl in lists])
    if v4:
        starts = np.array([t[0] for t in v4], np.uint64)
        ends = np.array([t[1] for t in v4], np.uint64)
        order = np.lexsort((-ends.astype(np.int64), starts))
        starts, ends = starts[order], ends[order]
        prev_max = np.maximum.accumulate(ends)
        keep = np.r_[True, ends[1:] > prev_max[:-1]]  # drop prefixes nested in an earlier one
        bl.v4_start, bl.v4_end = starts[keep], ends[keep]
        kept = order[keep]
        bl.v4_entry = [v4[j][2] for j in kept]
        bl.v4_file = np.array([v4[j][3] for j in kept], np.int16)
    if v6:
        v6.sort(key=lambda t: (t[0], -t[1]))
        reach = -1
        for start, end, entry, fi in v6:
            if end > reach:
                bl.v6_start.append(start)
                bl.v6_end.append(end)
                bl.v6_entry.append(entry)
                bl.v6_file.append(fi)
                reach = end
    return bl
