"""addr_str: the decoder's (hi, lo) address columns back to text, IPv4 via IPv4-mapped IPv6."""

from __future__ import annotations

import ipaddress

from hypothesis import given
from hypothesis import strategies as st

from wirewatch.addr import addr_str


@given(st.integers(0, 2**32 - 1))
def test_ipv4_mapped_addresses_print_as_ipv4(v4):
    assert addr_str(0, (0xFFFF << 32) | v4) == str(ipaddress.IPv4Address(v4))


@given(st.integers(0, 2**128 - 1))
def test_other_addresses_print_as_ipv6(value):
    hi, lo = value >> 64, value & (2**64 - 1)
    text = addr_str(hi, lo)
    if hi == 0 and lo >> 32 == 0xFFFF:
        assert ipaddress.ip_address(text).version == 4
    else:
        assert ipaddress.IPv6Address(text) == ipaddress.IPv6Address(value)
