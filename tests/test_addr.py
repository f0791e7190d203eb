"""addr_str: the decoder's (hi, lo) address columns back to text, IPv4 via IPv4-mapped IPv6; written_prefix:
a prefix as a user wrote it."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wirewatch.addr import HostBits, addr_str, written_prefix


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


def test_a_prefix_is_taken_only_as_written():
    assert str(written_prefix("10.0.0.0/8")) == "10.0.0.0/8" and str(written_prefix("10.0.0.1")) == "10.0.0.1/32"
    assert str(written_prefix("10.0.0.0/255.0.0.0")) == "10.0.0.0/8" and str(written_prefix("fd00::/64")) == "fd00::/64"
    with pytest.raises(HostBits, match=r"^'::1/64' has host bits set .*: ::/64 for the /64, or ::1 for the one"):
        written_prefix("::1/64")  # an IPv6 address below 2**32 is still named as IPv6
    with pytest.raises(HostBits, match=r"'10\.0\.0\.1/255\.0\.0\.0' .*: 10\.0\.0\.0/8 for the /8, or 10\.0\.0\.1 "):
        written_prefix("10.0.0.1/255.0.0.0")
    with pytest.raises(ValueError) as exc:
        written_prefix("10.0.0.300/8")
    assert not isinstance(exc.value, HostBits)
