#!/bin/bash
# Record tests/mixed/mixed-small.pcap.xz: a small version of the benchmark's mixed capture
# (../shared/bench/record.sh mixed), recorded with the same real tools in the same order, for
# tests/test_alerts_mixed.py. Needs root and iproute2 ethtool tcpdump nmap hping3 curl
# netcat-openbsd iperf3 python3 xz. About 30 s; the namespaces (wwt<tag>a, wwt<tag>b) are
# deleted at exit, every load is bounded by a count and by `timeout`.
#
#   usage: sudo tests/mixed/record.sh [OUT.pcap.xz]   (default: next to this script)
#
#   wwt<tag>a  10.213.77.1 (client / attacker) + 10.213.77.66 (the "blacklisted" source)
#   wwt<tag>b  10.213.77.2 (server / victim; the capture point, tcpdump -s 128 on its veth)
set -euo pipefail
OUT=${1:-$(cd "$(dirname "$0")" && pwd)/mixed-small.pcap.xz}
[[ $EUID -eq 0 ]] || { echo "record.sh needs root (network namespaces, capture)" >&2; exit 2; }
for t in ip ethtool tcpdump timeout python3 iperf3 nmap hping3 curl nc xz; do
  command -v "$t" >/dev/null || { echo "record.sh: $t is not installed" >&2; exit 2; }
done
TAG=$(head -c3 /dev/urandom | od -An -tx1 | tr -d ' \n')
NA=wwt${TAG}a NB=wwt${TAG}b
A=(ip netns exec $NA) B=(ip netns exec $NB)
SRC=10.213.77.1 BAD=10.213.77.66 DST=10.213.77.2
WORK=$(mktemp -d)
PIDS=()
cleanup() {
  set +e
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
  ip netns del $NA 2>/dev/null; ip netns del $NB 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ip netns add $NA
ip netns add $NB
ip link add wa$TAG netns $NA type veth peer name wb$TAG netns $NB
ip -n $NA addr add $SRC/24 dev wa$TAG
ip -n $NA addr add $BAD/24 dev wa$TAG
ip -n $NB addr add $DST/24 dev wb$TAG
for ns in $NA $NB; do
  ip -n $ns link set lo up
  ip netns exec $ns sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
done
ip -n $NA link set wa$TAG up
ip -n $NB link set wb$TAG up
"${A[@]}" ethtool -K wa$TAG tso off gso off gro off tx off rx off >/dev/null 2>&1 || true
"${B[@]}" ethtool -K wb$TAG tso off gso off gro off tx off rx off >/dev/null 2>&1 || true
timeout 10 "${A[@]}" ping -c1 -W2 $DST >/dev/null

bg() { "$@" >/dev/null 2>&1 & PIDS+=($!); }
# flood COUNT OPTION...: two hping3 side by side, COUNT SYNs each
flood() {
  local n=$1 p1 p2; shift
  timeout -s INT 30 "${A[@]}" hping3 -q -S -c $n --faster "$@" $DST >/dev/null 2>&1 & p1=$!
  timeout -s INT 30 "${A[@]}" hping3 -q -S -c $n --faster "$@" $DST >/dev/null 2>&1 & p2=$!
  PIDS+=($p1 $p2)
  wait $p1 $p2 || true
}

cd "$WORK"
head -c 1500 /dev/urandom | base64 -w 76 >small.html
bg timeout 300 "${B[@]}" python3 -m http.server 80 --bind $DST
bg timeout 300 "${B[@]}" iperf3 -s -p 5201
for p in 4444 6667 31337; do bg timeout 300 "${B[@]}" nc -lk $p; done
sleep 1
"${B[@]}" tcpdump -i wb$TAG -n -s 128 -B 65536 -Z root -w "$WORK/out.pcap" 2>"$WORK/tcpdump.err" &
TD=$!; PIDS+=($TD)
sleep 2
# 1) web traffic in the background: 400 small pages
"${A[@]}" timeout 120 sh -c "for i in \$(seq 1 400); do curl -s -o /dev/null http://$DST/small.html; done" &
WEB=$!; PIDS+=($WEB)
# 2) SYN scan of ports 1-3000 (watched ports 23, 1337, 2323 among them), then 1-500 from the blacklisted address
timeout 120 "${A[@]}" nmap -n -Pn -sS -p 1-3000 -T5 --max-retries 0 $DST >/dev/null || true
timeout 120 "${A[@]}" nmap -n -Pn -sS -S $BAD -e wa$TAG -p 1-500 -T4 $DST >/dev/null || true
# 3) SYN flood from one source to the open port 80: 2 x 4,000 SYNs
flood 4000 -p 80
# 4) right after it, the same victim from random (forged) sources, closed port 8080: 2 x 8,000 SYNs
flood 8000 -p 8080 --rand-source
# 5) small UDP datagrams for 1 s
timeout 30 "${A[@]}" iperf3 -c $DST -p 5201 -u -l 120 -b 8M -t 1 >/dev/null 2>&1 || true
# 6) watched ports: 10 short connections each, then 300 SYN probes each
for p in 4444 6667 31337; do
  "${A[@]}" timeout 60 sh -c "for i in \$(seq 1 10); do echo hello | timeout 1 nc -q0 $DST $p; done" >/dev/null 2>&1 || true
  timeout 30 "${A[@]}" hping3 -q -S -p $p -c 300 -i u500 $DST >/dev/null 2>&1 || true
done
# 7) the blacklisted address browsing: 20 page loads
"${A[@]}" timeout 60 sh -c "for i in \$(seq 1 20); do curl -s --interface $BAD -o /dev/null http://$DST/small.html; done" || true
wait $WEB || true
sleep 1
kill -INT $TD; wait $TD || true
grep -E 'packets (captured|dropped by kernel)' "$WORK/tcpdump.err" | tr '\n' ';'; echo
if grep -qE '^[1-9][0-9]* packets dropped by kernel' "$WORK/tcpdump.err"; then
  echo "record.sh: tcpdump dropped packets (a busy machine?); run it again" >&2; exit 1
fi
xz -9 -c "$WORK/out.pcap" >"$OUT.part" && mv "$OUT.part" "$OUT"
echo "recorded $OUT ($(du -k "$OUT" | cut -f1) kB)"
