#!/bin/sh
# Records the ICMP error captures of tests/captures (run as root; needs hping3, nping, nmap,
# traceroute or tracepath, tcpdump, xz). Three namespaces, bounded traffic, removed at the end:
#   wwq-a 10.77.1.1 -- wwq-r 10.77.1.254 | 10.77.2.254 -- wwq-b 10.77.2.2
# Captured on wwq-b's interface (snaplen 128, as the corpus), trimmed with tcpdump -c, xz-compressed.
set -eu
OUT=${1:-$(dirname "$0")}
NS="wwq-a wwq-r wwq-b"
cleanup() { for n in $NS; do ip netns del "$n" 2>/dev/null || true; done; }
trap cleanup EXIT
cleanup
for n in $NS; do ip netns add "$n"; ip -n "$n" link set lo up; done
ip link add wwq-a0 netns wwq-a type veth peer name wwq-r0 netns wwq-r
ip link add wwq-b0 netns wwq-b type veth peer name wwq-r1 netns wwq-r
ip -n wwq-a addr add 10.77.1.1/24 dev wwq-a0; ip -n wwq-a link set wwq-a0 up
ip -n wwq-r addr add 10.77.1.254/24 dev wwq-r0; ip -n wwq-r link set wwq-r0 up
ip -n wwq-r addr add 10.77.2.254/24 dev wwq-r1; ip -n wwq-r link set wwq-r1 up
ip -n wwq-b addr add 10.77.2.2/24 dev wwq-b0; ip -n wwq-b link set wwq-b0 up
ip -n wwq-a route add default via 10.77.1.254
ip -n wwq-b route add default via 10.77.2.254
ip netns exec wwq-r sysctl -qw net.ipv4.ip_forward=1
# every error answered, none rate-limited: the genuine errors come as fast as the probes
for n in wwq-r wwq-b; do
    ip netns exec "$n" sysctl -qw net.ipv4.icmp_ratelimit=0 net.ipv4.icmp_msgs_per_sec=1000000 net.ipv4.icmp_msgs_burst=1000000
done

record() {  # NAME PACKETS FILTER COMMAND...: capture on wwq-b0 while COMMAND runs in wwq-a
    name=$1 count=$2 filter=$3; shift 3
    ip netns exec wwq-b tcpdump -q -i wwq-b0 -s 128 -U -c "$count" -w "$OUT/$name.pcap" "$filter" 2>/dev/null &
    pid=$!
    sleep 1
    ip netns exec wwq-a timeout 60 "$@" >/dev/null 2>&1 || true
    sleep 1
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    rm -f "$OUT/$name.pcap.xz"
    xz -9 "$OUT/$name.pcap"
}
# BlackNurse: port unreachables quoting 1.2.3.4 -> 5.6.7.8 (hping3's default quote), one source
record blacknurse_hping3 3000 icmp hping3 --icmp -C 3 -K 3 -c 20000 -i u50 10.77.2.2
# the same from random (forged) sources
record blacknurse_randsrc 3000 icmp hping3 --icmp -C 3 -K 3 -c 20000 -i u50 --rand-source 10.77.2.2
# nping's port unreachables quote nothing at all
record blacknurse_nping 2000 icmp nping --icmp --icmp-type 3 --icmp-code 3 -c 2000 --rate 5000 -q 10.77.2.2
# genuine errors, captured at the prober: a UDP scan's port unreachables and a traceroute's time exceeded
ip netns exec wwq-a tcpdump -q -i wwq-a0 -s 128 -U -w "$OUT/genuine_errors.pcap" 'udp or icmp' 2>/dev/null &
pid=$!
sleep 1
ip netns exec wwq-a timeout 60 nmap -n -Pn -sU -p 1-3000 --max-retries 0 --min-rate 5000 10.77.2.2 >/dev/null 2>&1 || true
ip netns exec wwq-a timeout 30 traceroute -n -q 3 -w 1 10.77.2.2 >/dev/null 2>&1 || true
ip netns exec wwq-a timeout 60 hping3 --udp -p ++33434 --ttl 1 -c 3000 -i u100 10.77.2.2 >/dev/null 2>&1 || true
sleep 1
kill "$pid" 2>/dev/null || true
wait "$pid" 2>/dev/null || true
rm -f "$OUT/genuine_errors.pcap.xz"
xz -9 "$OUT/genuine_errors.pcap"
