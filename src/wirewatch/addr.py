"""128-bit address columns (hi, lo) <-> text. IPv4 lives as IPv4-mapped IPv6 (::ffff:a.b.c.d).
Also what a prefix a user wrote must be: its network address (host_bits)."""

from __future__ import annotations

import ipaddress

import numpy as np

_MAPPED_HI = 0


def addr_str(hi: int, lo: int) -> str:
    hi, lo = int(hi), int(lo)
    if hi == _MAPPED_HI and (lo >> 32) == 0xFFFF:
        return str(ipaddress.IPv4Address(lo & 0xFFFFFFFF))
    return str(ipaddress.IPv6Address((hi << 64) | lo))


def addr_cols(text: str) -> tuple[int, int]:
    """The decoder's (hi, lo) columns of an address in text (the inverse of addr_str)."""
    ip = ipaddress.ip_address(text)
    value = int(ip) | (0xFFFF << 32) if ip.version == 4 else int(ip)
    return value >> 64, value & 0xFFFFFFFFFFFFFFFF


def addr_strs(hi: np.ndarray, lo: np.ndarray) -> list[str]:
    """addr_str over columns: IPv4 rows without ipaddress (a storm names 200,000 sources)."""
    hi, lo = np.asarray(hi, np.uint64), np.asarray(lo, np.uint64)
    v4 = (hi == 0) & ((lo >> np.uint64(32)) == np.uint64(0xFFFF))
    v = (lo & np.uint64(0xFFFFFFFF)).astype(np.int64)
    octets = [((v >> s) & 255).tolist() for s in (24, 16, 8, 0)]
    out = [f"{a}.{b}.{c}.{d}" for a, b, c, d in zip(*octets)]
    for i in np.flatnonzero(~v4).tolist():
        out[i] = addr_str(hi[i], lo[i])
    return out



def host_bits(entry: str, value: int, bits: int, width: int) -> str | None:
    """Why `entry` (`value`/`bits` in an address space of `width` bits) is refused as a prefix, or
    None: 10.0.0.1/8 has host bits set, and ipaddress's strict=False would take it as 10.0.0.0/8
    unsaid; a typo there (10.0.0.1/8 for 10.0.0.1/32) covers 16 million addresses."""
    host = (1 << (width - bits)) - 1
    if not value & host:
        return None
    network = ipaddress.ip_network(entry, strict=False)
    one = ipaddress.IPv4Address(value) if width == 32 else ipaddress.IPv6Address(value)
    return (f"{entry!r} has host bits set (a prefix is written with its network address): "
            f"{network} for the /{bits}, or {one} for the one address")


class HostBits(ValueError):
    """A prefix written with bits set past its length; the message says what to write."""


def written_prefix(entry: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    """The network an address or CIDR prefix names, exactly as written: ValueError when it is
    neither, HostBits when it has host bits set."""
    given = ipaddress.ip_interface(entry)  # the address as written, and the prefix it names
    net = given.network
    refused = host_bits(entry, int(given.ip), net.prefixlen, net.max_prefixlen)
    if refused:
        raise HostBits(refused)
    return net
