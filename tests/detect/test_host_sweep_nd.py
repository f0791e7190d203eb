"""host_sweep: IPv6 host discovery on the segment by neighbour solicitations alone (nmap -6 -sn
on a LAN), against a router that resolves as many neighbours to forward packets to them."""

from __future__ import annotations

from socket import AF_INET6

from conftest import run_packets
from crafted import ADDRS, T0, host, types
from scapy.layers.inet import IP, TCP
from scapy.layers.inet6 import ICMPv6ND_NA, ICMPv6ND_NS, IPv6, in6_getnsma, inet_ntop, inet_pton
from scapy.layers.l2 import ARP, Ether


def solicit(src: str, target: str, t: float):
    group = inet_ntop(AF_INET6, in6_getnsma(inet_pton(AF_INET6, target)))
    return t, Ether(dst="33:33:ff:00:00:01") / IPv6(src=src, dst=group, hlim=255) / ICMPv6ND_NS(tgt=target)


def advert(target: str, to: str, t: float):
    return t, Ether(dst="02:00:00:00:00:02") / IPv6(src=target, dst=to, hlim=255) / ICMPv6ND_NA(tgt=target, S=1, O=1)


def resolve(src: str, n: int, alive, then=None) -> list:
    """src solicits n addresses; those `alive` answers; `then(h, t)` adds a packet after each answer."""
    pkts = []
    for h in range(n):
        t = T0 + h * 0.01
        pkts.append(solicit(src, host(6, h), t))
        if alive(h):
            pkts.append(advert(host(6, h), src, t + 0.001))
            if then is not None:
                pkts.append(then(h, t + 0.002))
    return pkts


def test_nd_sweep_is_a_host_sweep(tmp_path):
    src = ADDRS[6][0]
    sweep = resolve(src, 30, alive=lambda h: h % 10 == 0)  # three answer; nothing is sent to them
    fired = types(run_packets(tmp_path, sweep)[0])["host_sweep"]
    assert [a["src_ip"] for a in fired] == [src]
    ev = fired[0]["evidence"]
    assert ev["method"] == "ND" and ev["distinct_hosts"] == 30 and ev["service"] == "neighbour solicitation"
    assert "host_sweep" not in types(run_packets(tmp_path, resolve(src, 14, alive=lambda h: False))[0])


def test_router_resolving_neighbours_is_silent(tmp_path):
    # the router solicits 30 hosts that all answer, then forwards each a packet from outside
    router = "fd00:1::1"

    def forward(h, t):
        return t, Ether(dst="02:00:00:00:00:02") / IPv6(src="2001:db8::5", dst=host(6, h)) / TCP(sport=443, dport=50000 + h, flags="A")
    alerts = run_packets(tmp_path, resolve(router, 30, alive=lambda h: True, then=forward))[0]
    assert "host_sweep" not in types(alerts)


def test_duplicate_address_detection_is_not_a_probe(tmp_path):
    # hosts coming up solicit their own tentative addresses from ::
    dad = [solicit("::", host(6, h), T0 + h * 0.01) for h in range(30)]
    assert "host_sweep" not in types(run_packets(tmp_path, dad)[0])


def arp_resolve(src: str, n: int, alive, then=None) -> list:
    """ARP: src asks who-has for n addresses; those `alive` answer; `then(h, t)` follows an answer."""
    pkts = []
    for h in range(n):
        t, target = T0 + h * 0.01, host(4, h)
        pkts.append((t, Ether(dst="ff:ff:ff:ff:ff:ff") / ARP(op=1, psrc=src, pdst=target)))
        if alive(h):
            pkts.append((t + 0.001, Ether(dst="02:00:00:00:00:02") / ARP(op=2, psrc=target, pdst=src)))
            if then is not None:
                pkts.append(then(h, t + 0.002))
    return pkts


def test_arp_sweep_is_a_host_sweep(tmp_path):
    src = ADDRS[4][0]
    fired = types(run_packets(tmp_path, arp_resolve(src, 30, alive=lambda h: h % 10 == 0))[0])["host_sweep"]
    assert [a["src_ip"] for a in fired] == [src] and fired[0]["proto"] == "ARP" and "dest_port" not in fired[0]
    ev = fired[0]["evidence"]
    assert ev["method"] == "ARP" and ev["distinct_hosts"] == 30 and ev["sample_hosts"][0] == host(4, 0)
    assert "host_sweep" not in types(run_packets(tmp_path, arp_resolve(src, 14, alive=lambda h: False))[0])


def test_gateway_resolving_hosts_is_silent(tmp_path):
    # a NAT gateway resolves 30 hosts that all answer and forwards each a packet from outside
    def forward(h, t):
        return t, Ether(dst="02:00:00:00:00:02") / IP(src="192.0.2.5", dst=host(4, h)) / TCP(sport=443, dport=50000 + h, flags="A")
    alerts = run_packets(tmp_path, arp_resolve("10.1.0.1", 30, alive=lambda h: True, then=forward))[0]
    assert "host_sweep" not in types(alerts)


def test_arp_probes_and_announcements_are_not_probes(tmp_path):
    # RFC 5227 probes from 0.0.0.0 and gratuitous ARP for the sender's own address
    pkts = [(T0 + h * 0.01, Ether(dst="ff:ff:ff:ff:ff:ff") / ARP(op=1, psrc="0.0.0.0", pdst=host(4, h))) for h in range(30)]
    pkts += [(T0 + 1 + h * 0.01, Ether(dst="ff:ff:ff:ff:ff:ff") / ARP(op=1, psrc=host(4, h), pdst=host(4, h))) for h in range(30)]
    assert "host_sweep" not in types(run_packets(tmp_path, pkts)[0])
