"""The compiled live loop fills its buffer by what was captured, not by snaplen a packet: each
read takes packets until the buffer has less than snaplen bytes left, and the packet that
might not fit stays in libpcap's ring for the next read (pcap_breakloop). Checked on real
packets: a burst sent onto a veth in namespaces this test creates, read by a LiveSource
whose buffer holds five MTU frames, not the four that snaplen-sized room would give."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap

import pytest
from netns import can_create_namespaces, lab
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether
from scapy.packet import Raw

from wirewatch.capture import live
from wirewatch.craft import BASE_TS, write_pcap

pytestmark = pytest.mark.skipif(not can_create_namespaces() or shutil.which("tcpreplay") is None,
                                reason="needs root, iproute2 and tcpreplay")
PACKETS = 3000
FRAME = 1514  # an MTU frame: 14 + 20 + 8 + 1472
SNAPLEN = 2048
BUFFER = 8192  # 5 frames (7,570 bytes) fit; after 4 the room left (2,136) is still a snaplen

READER = textwrap.dedent("""
    import json, sys, time
    import numpy as np
    from wirewatch.capture import live
    live.BUFFER_MAX = int(sys.argv[3])
    src = live.LiveSource(live.LiveOptions(interface=sys.argv[1], bpf="udp dst port 9999", snaplen=int(sys.argv[4]),
                                           buffer_mb=64, batch_size=4096))
    print("ready", flush=True)
    sys.stdin.readline()  # the burst is in the kernel's ring: read it all now
    seqs, sizes, used, deadline = [], [], [], time.time() + 20
    while len(seqs) < int(sys.argv[2]) and time.time() < deadline:
        b = src.read()
        buf = bytes(b.buf)
        for sec, usec, off, cap in b.meta:
            seqs.append(int.from_bytes(buf[off + 42:off + 46], "big"))
        if len(b.meta):
            sizes.append(len(b.meta))
            used.append(len(buf))
    print(json.dumps({"seqs": seqs, "sizes": sizes, "used": max(used), "compiled": src.compiled,
                      "drops": src.kernel_stats()[1]}), flush=True)
""")


def test_a_read_takes_as_many_packets_as_its_buffer_holds_and_loses_none(tmp_path):
    assert live.compiled_loop(), "libpcap could not be loaded by native/pcapwalk.c"
    wire = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / IP(src="10.77.0.1", dst="10.77.0.2")
    pkts = [(BASE_TS + i * 1e-4, wire / UDP(sport=5000, dport=9999) / Raw(i.to_bytes(4, "big") + b"x" * 1468))
            for i in range(PACKETS)]
    assert len(bytes(pkts[0][1])) == FRAME
    capture = write_pcap(str(tmp_path / "burst.pcap"), pkts)
    with lab() as L:
        reader = L.popen(L.sensor, sys.executable, "-c", READER, L.sensor_if, str(PACKETS), str(BUFFER), str(SNAPLEN),
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert reader.stdout is not None and reader.stdin is not None
        assert reader.stdout.readline().strip() == "ready", reader.communicate(timeout=30)
        sent = L.run(L.attacker, "tcpreplay", "-q", "-i", L.attacker_if, "--topspeed", capture, timeout=60)
        assert sent.returncode == 0, sent.stderr
        out, err = reader.communicate("go\n", timeout=60)
    assert reader.returncode == 0, err
    got = json.loads(out.strip().splitlines()[-1])
    assert got["compiled"] and got["drops"] == 0
    assert got["seqs"] == list(range(PACKETS))  # every packet once, in order: none lost at a break
    assert got["used"] <= BUFFER
    assert max(got["sizes"]) == BUFFER // FRAME == 5
