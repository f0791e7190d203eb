"""Build the benchmark capture: deterministic, >= 1.2M packets, written with numpy.

Mix (packet time spans ~60 s):
* ordinary two-way TCP flows (handshake, small data both ways, FIN close) between many
  clients and servers: the bulk of the packets;
* DNS over UDP (query + answer), ICMP echo (request + reply);
* a SYN flood from 200,000 random sources against one server;
* a full 65,535-port SYN scan answered by RSTs;
* a few probes to a suspicious port and from a blocklisted address.
"""

from __future__ import annotations

import os
import struct
import sys

import numpy as np

SEED = 20261121
VERSION = 2
T0 = 1_767_225_600
DURATION = 60.0
ETH = bytes.fromhex("020000000002" "020000000001" "0800")


def ip4(a: int, b: int, c: int, d: int) -> int:
    return (a << 24) | (b << 16) | (c << 8) | d


def frames(src, dst, proto, sport, dport, flags, payload_len, ts) -> dict:
    return {"src": np.asarray(src, np.uint32), "dst": np.asarray(dst, np.uint32), "proto": np.asarray(proto, np.uint8),
            "sport": np.asarray(sport, np.uint16), "dport": np.asarray(dport, np.uint16),
            "flags": np.asarray(flags, np.uint8), "plen": np.asarray(payload_len, np.int64), "ts": np.asarray(ts, np.float64)}


def _cat(parts: list[dict]) -> dict:
    return {k: np.concatenate([np.broadcast_to(p[k], p["ts"].shape) for p in parts]) for k in parts[0]}


def tcp_flows(rng, n_flows: int, data_pkts: int) -> dict:
    clients = ip4(10, 20, 0, 0) + rng.integers(1, 4000, n_flows)
    servers = ip4(10, 30, 0, 0) + rng.integers(1, 300, n_flows)
    sports = rng.integers(32768, 60999, n_flows)
    dports = rng.choice([80, 443, 8080, 22, 5432, 3306, 6379, 8443], n_flows)
    start = rng.uniform(0, DURATION - 2, n_flows)
    parts = []
    hs = [(0, "c", 0x02, 0), (0.0005, "s", 0x12, 0), (0.001, "c", 0x10, 0)]
    for k in range(data_pkts):
        hs.append((0.002 + 0.002 * k, "c" if k % 2 == 0 else "s", 0x18 if k % 2 == 0 else 0x10, 60 if k % 2 == 0 else 0))
    hs += [(0.003 + 0.002 * data_pkts, "c", 0x11, 0), (0.0035 + 0.002 * data_pkts, "s", 0x11, 0),
           (0.004 + 0.002 * data_pkts, "c", 0x10, 0)]
    for dt, who, flags, plen in hs:
        c2s = who == "c"
        parts.append(frames(clients if c2s else servers, servers if c2s else clients, 6,
                            sports if c2s else dports, dports if c2s else sports, flags, plen, start + dt))
    return _cat(parts)


def udp_dns(rng, n: int) -> dict:
    clients = ip4(10, 20, 0, 0) + rng.integers(1, 4000, n)
    server = ip4(10, 30, 0, 53)
    sports = rng.integers(32768, 60999, n)
    t = rng.uniform(0, DURATION, n)
    return _cat([frames(clients, server, 17, sports, 53, 0, 40, t), frames(server, clients, 17, 53, sports, 0, 80, t + 0.001)])


def icmp_ping(rng, n: int) -> dict:
    src = ip4(10, 20, 0, 0) + rng.integers(1, 4000, n)
    dst = ip4(10, 30, 0, 0) + rng.integers(1, 300, n)
    t = rng.uniform(0, DURATION, n)
    return _cat([frames(src, dst, 1, 8 << 8, 0, 0, 56, t), frames(dst, src, 1, 0, 0, 0, 56, t + 0.0005)])


def syn_flood(rng, n: int) -> dict:
    src = rng.integers(ip4(11, 0, 0, 0), ip4(126, 0, 0, 0), n)  # random public-looking sources
    t = 20.0 + np.sort(rng.uniform(0, 4.0, n))
    return frames(src, ip4(10, 30, 0, 80), 6, rng.integers(1024, 65535, n), 80, 0x02, 0, t)


def full_scan(rng) -> dict:
    ports = rng.permutation(np.arange(1, 65536))
    t = 35.0 + np.arange(len(ports)) * 0.00005
    scanner, victim = ip4(10, 66, 0, 66), ip4(10, 30, 0, 7)
    return _cat([frames(scanner, victim, 6, 61000, ports, 0x02, 0, t),
                 frames(victim, scanner, 6, ports, 61000, 0x14, 0, t + 0.00002)])


def extras(rng) -> dict:
    t = 50.0 + np.arange(20) * 0.1
    return _cat([frames(ip4(10, 20, 0, 9), ip4(10, 30, 0, 9), 6, 40000 + np.arange(20), 4444, 0x02, 0, t),
                 frames(ip4(198, 51, 100, 23), ip4(10, 30, 0, 9), 6, 40100 + np.arange(20), 80, 0x02, 0, t + 0.01)])


def build(path: str) -> int:
    rng = np.random.default_rng(SEED)
    p = _cat([tcp_flows(rng, 62_000, 10), udp_dns(rng, 60_000), icmp_ping(rng, 15_000), syn_flood(rng, 200_000),
              full_scan(rng), extras(rng)])
    order = np.argsort(p["ts"], kind="stable")
    p = {k: v[order] for k, v in p.items()}
    n = len(p["ts"])
    proto = p["proto"]
    l4len = np.where(proto == 6, 20, 8)
    iplen = 20 + l4len + p["plen"]
    flen = 14 + iplen
    rec = 16 + flen
    offsets = np.r_[0, np.cumsum(rec)[:-1]]
    out = np.zeros(int(rec.sum()), np.uint8)

    def put(pos, values, width):
        v = np.asarray(values).astype(np.uint64)
        for i in range(width):
            out[pos + i] = ((v >> np.uint64(8 * (width - 1 - i))) & np.uint64(0xFF)).astype(np.uint8)

    def put_le(pos, values):
        v = np.asarray(values).astype(np.uint64)
        for i in range(4):
            out[pos + i] = ((v >> np.uint64(8 * i)) & np.uint64(0xFF)).astype(np.uint8)

    sec = np.floor(p["ts"]).astype(np.int64)
    usec = np.round((p["ts"] - sec) * 1e6).astype(np.int64).clip(0, 999_999)
    put_le(offsets, T0 + sec)
    put_le(offsets + 4, usec)
    put_le(offsets + 8, flen)
    put_le(offsets + 12, flen)
    f = offsets + 16
    for i, byte in enumerate(ETH):
        out[f + i] = byte
    ipo = f + 14
    out[ipo] = 0x45
    put(ipo + 2, iplen, 2)
    put(ipo + 4, np.arange(n) & 0xFFFF, 2)
    out[ipo + 8] = 64
    out[ipo + 9] = proto
    put(ipo + 12, p["src"], 4)
    put(ipo + 16, p["dst"], 4)
    l4 = ipo + 20
    put(l4, p["sport"], 2)  # for ICMP: type in the high byte of "sport"
    put(l4 + 2, p["dport"], 2)
    tcp = proto == 6
    put(l4[tcp] + 4, np.arange(n)[tcp] * 1000, 4)
    out[l4[tcp] + 12] = 0x50
    out[l4[tcp] + 13] = p["flags"][tcp]
    put(l4[tcp] + 14, np.full(int(tcp.sum()), 64240), 2)
    udp = proto == 17
    put(l4[udp] + 4, 8 + p["plen"][udp], 2)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path + ".tmp", "wb") as fh:
        fh.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        fh.write(out.tobytes())
    os.replace(path + ".tmp", path)
    return n


def ensure(path: str) -> str:
    stamp = path + f".v{VERSION}"
    if not (os.path.exists(path) and os.path.exists(stamp)):
        n = build(path)
        with open(stamp, "w") as fh:
            fh.write(f"{n}\n")
    return path


if __name__ == "__main__":
    print(ensure(sys.argv[1] if len(sys.argv) > 1 else "var/bench/bench.pcap"))
