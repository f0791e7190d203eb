"""128-bit address columns (hi, lo) <-> text. IPv4 lives as IPv4-mapped IPv6 (::ffff:a.b.c.d)."""

from __future__ import annotations

import ipaddress

_MAPPED_HI = 0


def addr_str(hi: int, lo: int) -> str:
    hi, lo = int(hi), int(lo)
    if hi == _MAPPED_HI and (lo >> 32) == 0xFFFF:
        return str(ipaddress.IPv4Address(lo & 0xFFFFFFFF))
    return str(ipaddress.IPv6Address((hi << 64) | lo))

