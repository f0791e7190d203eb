#!/bin/sh
# Records the fast UDP scan captures of tests/captures (run as root; needs nmap, masscan, tcpdump,
# xz). Two namespaces on one veth, bounded traffic, removed at the end:
#   wwu-a 10.78.1.1 -- wwu-b 10.78.1.2 (no UDP service; the kernel's default ICMP rate limit)
# Captured on wwu-b's interface (snaplen 128, as the corpus), the first 2,000 packets, xz-compressed.
set -eu
OUT=${1:-$(dirname "$0")}
NS="wwu-a wwu-b"
cleanup() { for n in $NS; do ip netns del "$n" 2>/dev/null || true; done; }
trap cleanup EXIT
cleanup
for n in $NS; do ip netns add "$n"; ip -n "$n" link set lo up; done
ip link add wwu-a0 netns wwu-a type veth peer name wwu-b0 netns wwu-b
ip -n wwu-a addr add 10.78.1.1/24 dev wwu-a0; ip -n wwu-a link set wwu-a0 up
ip -n wwu-b addr add 10.78.1.2/24 dev wwu-b0; ip -n wwu-b link set wwu-b0 up
ip netns exec wwu-a ping -c 1 -W 1 10.78.1.2 >/dev/null
BMAC=$(ip -n wwu-b link show wwu-b0 | awk '/ether/ {print $2}')

record() {  # NAME COMMAND...: capture on wwu-b0 while COMMAND runs in wwu-a
    name=$1; shift
    ip netns exec wwu-b tcpdump -q -i wwu-b0 -s 128 -U -c 2000 -w "$OUT/$name.pcap" 'udp or icmp' 2>/dev/null &
    pid=$!
    sleep 1
    ip netns exec wwu-a timeout 30 "$@" >/dev/null 2>&1 || true
    sleep 1
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    rm -f "$OUT/$name.pcap.xz"
    xz -9 "$OUT/$name.pcap"
}
# nmap at 5,000 probes/s from one source port: empty datagrams and its protocol payloads
record udp_scan_nmap_fast nmap -n -Pn -sU -p 1-5000 --max-retries 0 --min-rate 5000 10.78.1.2
# the same datagram to every port: 40 random bytes each (--data-length), still from one source port
record udp_scan_nmap_data_length nmap -n -Pn -sU -p 1-5000 --max-retries 0 --min-rate 5000 --data-length 40 10.78.1.2
# masscan's own stack, 5,000 packets/s, one source port
record udp_scan_masscan masscan 10.78.1.2 -pU:1-5000 --rate 5000 --wait 1 --adapter wwu-a0 --adapter-ip 10.78.1.1 \
    --router-mac "$BMAC"
