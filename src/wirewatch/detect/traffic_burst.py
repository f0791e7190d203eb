"""traffic_burst: one source sends far more than normal, and it is not a transfer.

Rate alone cannot tell an ICMP/UDP/ACK flood from a bulk download, so the default
looks at what comes back on the same pair of hosts within the window:

* ICMP requests (echo, timestamp...) count on their own: the replies do not make a
  flood legitimate, and the victim's echo replies never count against it; ICMP replies
  count (per pair) when the destination sent (almost) no requests for them to answer
  (hping3 --icmp -C 0: a flood of echo replies);
* UDP counts when the destination sent back (almost) nothing over UDP (a DNS server
  answers every query; a UDP flood gets silence or a few rate-limited ICMP errors) and
  the two hosts hold no TCP connection (a stream set up over one, iperf3 -u or RTSP's
  RTP, is one-way by design), unless the datagrams vary in size and the destination
  refused none of them: a flood tool sends copies of one datagram (hping3, nping, a
  bot's flood loop), while an application's messages differ in length as their
  content does (syslog, metrics and telemetry to a collector, which never answers),
  or unless they are one stream of data: most datagrams continue a flow (the same source and
  destination ports) the pair already sent in its time slice and carry at least STREAM_DATA
  bytes, to a destination that refused none of them: an application sends its data from its
  socket in full datagrams (a video or TS-over-UDP stream of fixed-size datagrams, with no TCP
  control connection and no answer), while flood tools change the source port from datagram to
  datagram (hping3 --udp, forged floods) or, from one socket, send small datagrams for the
  packet rate;
  an ICMP error back (no listener) makes it a flood whatever the sizes or ports; UDP to a multicast
  group or the broadcast address never counts: it goes to whoever joined (IPTV, market data,
  service discovery), one-way by design, and floods no host;
* UDP or TCP that mostly went to a new port each is a scan's (port_scan's), not a flood, unless it
  is a flood tool's datagrams to port after port: most carry data, each from a source port the pair
  had not used yet, and most are one size (hping3 --udp -p ++N -d 64); a scanner sends from the one
  port it reads its answers on (nmap -sU, masscan), or bare headers (traceroute-style probes);
* TCP without SYN (ACK, RST, data) counts when the destination sent back (almost) no
  non-RST TCP: a real transfer is acknowledged, a flood with no connection behind it
  is answered by RSTs or not at all. SYN floods are syn_flood's;
* ICMP errors (unreachable, time exceeded, ...) count on their own when they are forged:
  they quote a packet the destination never sent (its quoted source is another address) or
  no IP header at all (classify.packets.forged_error). BlackNurse floods a host with port
  unreachables (hping3 --icmp -C 3 -K 3 quotes 1.2.3.4 -> 5.6.7.8; nping quotes nothing),
  which a firewall processes at a cost; a real error quotes its receiver's own packet
  (traceroute's time exceeded, a UDP scan's port unreachables, a router's), answers it and
  is never counted. A quote the capture cut (snaplen) is unknown: not counted either.

"Almost nothing" is `min_reply_ratio` (replies per packet sent). An alert's `bytes`, and what
`bytes_threshold` counts, are the bytes of the packets these kinds count (a TCP data segment's
too: it carries ACK, yet it is what the source sends); over `bytes_threshold`, the pair's kind
with the most packets is a burst, answered or not as above.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..decode import PROTO_TCP, PROTO_UDP, TCP_ACK, TCP_RST, TCP_SYN, PacketBatch
from ..settings import Frozen, cap, seconds, setting
from .base import DetectorSpec, Finding, Reconfigurable, Rise, Signature, Tunable
from .classify.packets import (
    ADDR_LABELS,
    addr_labels,
    forged_error,
    icmp_request,
    icmp_unreachable,
    pair_key,
    to_group,
)
from .classify.replies import ICMP_REPLIES
from .count.kernels import group, hash_cols, isin
from .count.report import COOLDOWN, Gate, best_near_misses, near, near_miss
from .count.window import WindowCounter
from .count.window_util import first_rows
from .traffic_burst_spread import KINDS, QUOTE_NOTE, Pairs, VictimFlood

METRICS = ("icmp", "udp", "tcp", "tcp_answer", "bytes", "udp_new_port", "tcp_new_port", "udp_resized", "refused",
           "icmp_reply", "udp_new_flow", "icmp_error", "udp_data", "udp_fresh_data")
ALONE = ("icmp", "icmp_error")  # kinds that count on their own: no answer makes them legitimate
PAIR_KINDS = (*KINDS, "icmp_reply")  # the per-pair view also knows replies that answer no request
# A stream's datagrams carry its data: at least the 512 data octets of the 576-octet datagram every
# IPv4 host accepts (RFC 791, and DNS's classic UDP limit); a packet flood sends less per datagram.
STREAM_DATA = 512
PEAK_MIN_S = 0.001  # a rate over a shorter span than this is reported over this span
BUCKETS = 5  # 2 s resolution on the default 10 s window: 5 x 5 counters per pair
BYTES_NOTE = ("bytes of this pair's ICMP requests and replies, forged ICMP errors, UDP and TCP without SYN in "
              "the window (the packets the flood kinds count)")
NAMES = {"icmp": "ICMP request flood", "udp": "UDP flood", "tcp": "TCP flood without a connection (ACK/RST/data)",
         "icmp_reply": "ICMP reply flood (answering no request)",
         "icmp_error": "ICMP error flood (forged: quoting no packet of the destination)"}
UNITS = {"icmp": "ICMP requests", "udp": "UDP packets", "tcp": "TCP packets without a connection",
         "icmp_reply": "ICMP replies to no request", "icmp_error": "forged ICMP errors"}


@dataclass(frozen=True, eq=False, repr=False)
class TrafficBurstConfig(Frozen):
    enabled: bool = setting(True, "Detect packet floods (ICMP, UDP, ACK/RST, forged ICMP errors) from one source to one host.")
    threshold: int = setting(1000, "Packets from one source to one host within the window (--traffic-threshold).", 1)
    bytes_threshold: int = setting(50_000_000, "Bytes of flood packets (ICMP requests, replies and forged errors, UDP, "
                                               "TCP without SYN) "
                                               "from one source to one host within the window that also make a burst "
                                               "of its main kind (0 = off).", 0)
    min_reply_ratio: float = setting(0.005, "UDP/TCP only count as a flood when the destination answered "
                                            "fewer packets than this share of those sent.", 0, 1)
    window: float = seconds(0.0, "Window in seconds; 0 = general.time_window.", 0)
    max_pairs: int = cap(65_536, "Cap on (source, destination) pairs tracked.")
    min_sources: int = setting(10, "A flood against one host from at least this many sources (each below the "
                                   "threshold, e.g. forged) is reported per destination.", 2)
    max_targets: int = cap(4_096, "Cap on busy destinations tracked for floods from many sources.")


class TrafficBurst(Reconfigurable):
    name = "traffic_burst"

    def __init__(self, cfg: TrafficBurstConfig, window: float, gate: Gate = COOLDOWN):
        self.cfg = cfg
        self.window = cfg.window or window
        self.counter = WindowCounter(self.window, cfg.max_pairs, METRICS, ADDR_LABELS, buckets=BUCKETS, gate=gate,
                                     rank=self._rank)
        self.pair_alerted: dict[tuple[str, str], float] = {}  # (victim, kind) -> last per-pair alert
        self.victims = VictimFlood(self.window, cfg.threshold, cfg.min_reply_ratio, cfg.min_sources, cfg.max_targets, NAMES,
                                  gate)

    def configure(self) -> None:
        """On reload: the many-sources view takes the new thresholds too."""
        v = self.victims
        v.threshold, v.min_reply_ratio, v.min_sources = self.cfg.threshold, self.cfg.min_reply_ratio, self.cfg.min_sources

    def observe(self, b: PacketBatch) -> list[Finding]:
        ip = b.ipver != 0
        tcp = ip & (b.proto == PROTO_TCP) & b.flags_ok
        icmp = icmp_request(b)
        udp = ip & (b.proto == PROTO_UDP) & ~to_group(b)  # a group's streams are one-way by design
        # RST+ACK is how a host refuses a SYN or a stray segment: a reply, never the flood
        tcp_flow = tcp & ((b.tcp_flags & TCP_SYN) == 0) & ((b.tcp_flags & (TCP_RST | TCP_ACK)) != (TCP_RST | TCP_ACK))
        answer = tcp & ((b.tcp_flags & (TCP_RST | TCP_ACK)) == TCP_ACK)  # acknowledging, not resetting
        refusal = icmp_unreachable(b)  # counted on the refusing host's pair, read back as _replies
        reply = ip & b.has_icmp & ICMP_REPLIES[b.icmp_type]  # echo / timestamp replies: a flood if they answer nothing
        forged = forged_error(b)  # ICMP errors about packets the destination never sent: they answer nothing
        rows = np.flatnonzero(icmp | udp | tcp_flow | answer | refusal | reply | forged)
        if not rows.size:
            return []
        p = b.select(rows)
        answers, refused, replied = answer[rows], refusal[rows], reply[rows]
        values = {"icmp": icmp[rows], "udp": udp[rows], "tcp": tcp_flow[rows], "tcp_answer": answers,
                  "refused": refused, "icmp_reply": replied}
        errors = forged[rows]
        if errors.any():  # a metric not given adds nothing: most batches hold no forged error
            values["icmp_error"] = errors
        # bytes: of the packets the kinds count (a TCP data segment acknowledges as it goes, so
        # it is both a flood kind's packet and an answer: counted by what it sends)
        values["bytes"] = p.length * (values["icmp"] | values["udp"] | values["tcp"] | replied | errors)
        # the rows grouped by (source, destination) once: this per-pair count and the
        # many-sources view (per destination, derived from the pairs) share it
        keys = pair_key(p)
        pairs = group(keys, inverse=True)
        values["udp_resized"] = resized(p.length, udp[rows] & p.has_ports, pairs[3])
        # first packet of each (pair, protocol, port) in this batch: a flood hammers a few
        # ports, a FIN/Xmas/ACK/UDP port scan sends one or two packets to each (port_scan's)
        new_port = first_rows(hash_cols(keys, p.proto, p.dport))
        values["udp_new_port"], values["tcp_new_port"] = values["udp"] & new_port, values["tcp"] & new_port
        if values["udp"].any():
            values.update(datagram_metrics(keys, p, values["udp"]))
        # a metric not given adds nothing: on bulk TCP, no UDP or ICMP row
        given = {name: v for name, v in values.items() if v.any()}
        touched = self.counter.add(keys, p.ts, given, addr_labels(p), grouped=pairs)
        now = float(p.ts.max())
        sums = self.counter.all_totals(touched, now)
        # bytes_threshold makes a burst of the pair's main kind (its most packets): a pair's
        # heavy answered UDP or TCP does not make its one ping an ICMP flood
        heavy = sums["bytes"] >= self.cfg.bytes_threshold if self.cfg.bytes_threshold > 0 else False
        main = np.max([sums[k] for k in PAIR_KINDS], axis=0)
        out = []
        for kind in PAIR_KINDS:
            sent = sums[kind]
            big = (sent >= self.cfg.threshold) | ((sent > 0) & (sent == main) & heavy)
            cand = touched[big]
            if kind not in ALONE and cand.size:
                cand = cand[self._flood(cand, sums, big, kind, now)]
            for slot in self.counter.due(cand, now, self.window):
                out.append(self._finding(int(slot), now, kind))
        for f in out:
            self.pair_alerted[(f.dest_ip or "", f.evidence["kind"])] = f.ts
        kinds = {k: values.get(k, errors) for k in KINDS}  # (errors: icmp_error's, all False when not given)
        return out + self.victims.observe(Pairs(p, pairs, float(b.ts.max() - b.ts.min())), kinds, answers,
                                          self._explained, messages(p, values["udp_resized"], refused, keys, pairs))

    def _rank(self, totals: Mapping[str, np.ndarray]) -> np.ndarray:
        """A pair's worth when the table is full: how far it is towards an alert, its largest
        kind over the threshold (or its bytes over bytes_threshold), whatever the kind."""
        worth = np.max([totals[k] for k in PAIR_KINDS], axis=0) / self.cfg.threshold
        if self.cfg.bytes_threshold > 0:
            worth = np.maximum(worth, totals["bytes"] / self.cfg.bytes_threshold)
        return worth

    def _explained(self, victim: str, kind: str) -> bool:
        """A one-source flood is reported per pair; the many-sources view stays quiet about it."""
        seen = self.pair_alerted.get((victim, NAMES[kind]))
        return seen is not None

    def _flood(self, slots: np.ndarray, sums: Mapping[str, np.ndarray], rows: np.ndarray, kind: str,
               now: float) -> np.ndarray:
        """Which of these pairs (`rows` of `sums`, the pairs' totals) over a threshold of `kind` (not
        ICMP requests or forged errors, which count on their own: ALONE) are a flood of it: UDP or TCP the destination left
        (almost) unanswered and that mostly did not go to a new port each (a FIN/Xmas/ACK/UDP port
        scan, port_scan's), or did as a flood tool's copies of one datagram (flood_tool); ICMP replies for which the destination sent (almost) no request (a
        ping flood's replies answer its requests, and never count against its victim)."""
        sent = sums[kind][rows]
        if kind == "icmp_reply":
            return self._replies(slots, now, "icmp") < self.cfg.min_reply_ratio * np.maximum(sent, 1)
        spread = 2 * sums[f"{kind}_new_port"][rows] >= sent  # most packets went to a new port
        if kind == "udp":  # ... as a scan's probes, not copies of one datagram from a new socket each
            spread &= ~flood_tool(sent, sums["udp_fresh_data"][rows], sums["udp_resized"][rows])
        return self._unanswered(slots, sent, kind, now) & ~spread

    def _unanswered(self, slots: np.ndarray, sent: np.ndarray, kind: str, now: float) -> np.ndarray:
        """Pairs whose destination answered (almost) nothing of that kind: fewer UDP datagrams,
        or acknowledging TCP segments, than min_reply_ratio of those sent.

        UDP also counts as answered where the two hosts hold a TCP connection in the window
        (each acknowledged TCP from the other): a one-way stream set up over one is the hosts'
        own business (iperf3 -u and its control connection, RTP media after RTSP), while a
        flood has no connection behind it. And where the datagrams varied in size while the
        destination refused none (no ICMP unreachable back): an application's messages to a
        listener, not copies of one flood datagram. And where most datagrams continued a flow
        the pair had already sent in their slice, most carrying STREAM_DATA bytes or more (one
        socket's stream of data: video, TS over UDP), while the destination refused none: flood
        tools move the source port on per datagram, or send small datagrams for the rate.
        Those two reasons end at bytes_threshold bytes in the window."""
        quiet = self._replies(slots, now, "udp" if kind == "udp" else "tcp_answer") < \
            self.cfg.min_reply_ratio * np.maximum(sent, 1)
        if kind == "udp":
            connected = (self._replies(slots, now, "tcp_answer") > 0) & (self.counter.totals(slots, now, "tcp_answer") > 0)
            accepted = self._replies(slots, now, "refused") == 0
            messages = (self.counter.totals(slots, now, "udp_resized") > 0) & accepted
            stream = (2 * self.counter.totals(slots, now, "udp_new_flow") < sent) & \
                (2 * self.counter.totals(slots, now, "udp_data") > sent) & accepted
            # neither holds at bytes_threshold: a one-socket or varied-size flood that fills the
            # link is a flood whatever its ports and sizes (a video stream is a few Mbit/s)
            if self.cfg.bytes_threshold > 0:
                volume = self.counter.totals(slots, now, "bytes") >= self.cfg.bytes_threshold
                messages, stream = messages & ~volume, stream & ~volume
            quiet &= ~(connected | messages | stream)
        return quiet

    def _replies(self, slots: np.ndarray, now: float, metric: str) -> np.ndarray:
        c = self.counter
        rev = hash_cols(c.label(slots, "dst_hi"), c.label(slots, "dst_lo"), c.label(slots, "src_hi"), c.label(slots, "src_lo"))
        rslots = c.table.find(rev)  # the reverse pair's key
        out = np.zeros(len(slots), np.int64)
        ok = rslots >= 0
        if ok.any():
            out[ok] = self.counter.totals(rslots[ok], now, metric)
        return out

    def _finding(self, slot: int, now: float, kind: str) -> Finding:
        c = self.counter
        s = np.array([slot])
        packets = int(c.totals(s, now, kind)[0])
        nbytes = int(c.totals(s, now, "bytes")[0])
        # the busiest bucket's packets per second; a burst shorter than a bucket is measured
        # over its own duration (1,000 packets in 0.11 s are 9,000/s, not 1,000 / 2 s)
        span = c.last_seen(slot) - c.first_seen(slot)
        if span < c.width:  # every packet of the pair is inside that span
            peak = packets / max(span, PEAK_MIN_S)
        else:
            peak = int(c.peak(s, now, kind)[0]) / c.width
        src, dst = c.src(slot), c.dst(slot)
        reply_metric = {"udp": "udp", "tcp": "tcp_answer", "icmp_reply": "icmp"}.get(kind)
        replies = int(self._replies(s, now, reply_metric)[0]) if reply_metric else None
        return Finding(
            type=self.name, identifier=(src, dst, kind), ts=c.last_seen(slot),
            message=f"High traffic burst from {src} to {dst}: {NAMES[kind]}",
            src_ip=src, dest_ip=dst, proto={"udp": "UDP", "tcp": "TCP"}.get(kind, "ICMP"),
            evidence={"kind": NAMES[kind], "packets": packets, "bytes": nbytes, "window_s": self.window,
                      "threshold": self.cfg.threshold, "bytes_threshold": self.cfg.bytes_threshold,
                      "bytes_note": BYTES_NOTE,
                      "peak_pps": round(peak, 1), "replies": replies, "min_reply_ratio": self.cfg.min_reply_ratio,
                      **({"quote_note": QUOTE_NOTE} if kind == "icmp_error" else {}), **c.seen(slot)},
        )

    def near_misses(self, now: float) -> list[dict[str, Any]]:
        """(source, destination) pairs at >= half the threshold of one kind of flood traffic
        within the window (UDP and TCP only where the destination stayed quiet and most packets
        did not go to new ports, as for an alert); and the many-sources view's victims
        (traffic_burst_spread.VictimFlood.near_misses, keyed by the victim)."""
        c = self.counter
        occ = c.occupied()
        sums = c.all_totals(occ, now)
        out = []
        for kind in PAIR_KINDS:
            sent = sums[kind]
            keep = (sent >= 0.5 * self.cfg.threshold) & (sent < self.cfg.threshold)
            if kind not in ALONE and keep.any():
                keep[np.flatnonzero(keep)[~self._flood(occ[keep], sums, keep, kind, now)]] = False
            slots, figure = near(occ[keep], sent[keep], self.cfg.threshold)
            out += [near_miss(self.name, c.src(s), n, self.cfg.threshold, UNITS[kind], self.window, dest_ip=c.dst(s))
                    for s, n in zip(slots.tolist(), figure.tolist())]
        return best_near_misses(out + self.victims.near_misses(now))  # and the many-sources view's

    def expire(self, now: float) -> None:
        self.counter.expire(now)
        self.victims.expire(now)
        self.pair_alerted = {k: t for k, t in self.pair_alerted.items() if now - t <= self.window}

    def stats(self) -> dict[str, int]:
        return {**self.counter.stats("traffic_burst"), **self.victims.stats()}


def flood_tool(sent: np.ndarray, fresh_data: np.ndarray, resized: np.ndarray) -> np.ndarray:
    """Pairs whose datagrams to port after port are a flood tool's, not a scanner's probes: most
    carry data, each from a source port the pair had not used yet (`fresh_data`), and most are the
    size of the pair's first datagram (fewer than half `resized`): the same datagram sent from a
    new port to a new port (hping3 --udp -p ++N -d 64). A scanner reads its answers on one socket,
    so it sends from one source port (nmap -sU, two with retries; masscan) whatever it sends, even
    one padded datagram to every port (nmap --data-length); a prober that moves its source port
    on to match each answer sends bare headers (traceroute, hping3 --udp --ttl)."""
    return (2 * fresh_data > sent) & (2 * resized < sent)


def datagram_metrics(keys: np.ndarray, p: PacketBatch, udp: np.ndarray) -> dict[str, np.ndarray]:
    """The UDP rows' stream and flood-tool metrics (masks over `p`'s rows), found among the UDP
    rows alone (every other row has another protocol, so it never shares their keys)."""
    rows = np.flatnonzero(udp)
    pair, sport, payload = keys[rows], p.sport[rows], p.payload[rows]
    # first datagram of each (pair, source port, destination port): a stream continues one
    # flow, a flood tool moves its source port on with every datagram
    new_flow = first_rows(hash_cols(pair, sport, p.dport[rows]))
    # datagrams that carry data from a source port the pair had not used yet in this batch: a
    # flood tool's new datagram per port; a scanner asks from one socket, or sends bare headers
    fresh_data = first_rows(hash_cols(pair, sport)) & (payload > 0)
    out = {}
    for name, mask in (("udp_new_flow", new_flow), ("udp_data", payload >= STREAM_DATA), ("udp_fresh_data", fresh_data)):
        out[name] = np.zeros(len(udp), bool)
        out[name][rows] = mask
    return out


def messages(p: PacketBatch, resized: np.ndarray, refused: np.ndarray, keys: np.ndarray,
             pairs: tuple[np.ndarray, ...]) -> np.ndarray:
    """Rows of the pairs whose datagrams varied in size in this batch and whose destination
    refused none of their source's packets in it (no ICMP unreachable back): an application's
    messages, which the many-sources view does not count (a dozen hosts logging to one
    collector are not a flood; a forged source sends one datagram, which cannot vary)."""
    order, starts, pair_of = pairs[0], pairs[1], pairs[3]
    stream = np.zeros(len(starts), bool)
    stream[pair_of[resized]] = True
    if refused.any() and stream.any():
        r = np.flatnonzero(refused)  # from the destination back to the pair's source
        stream &= ~isin(keys[order[starts]], hash_cols(p.dst_hi[r], p.dst_lo[r], p.src_hi[r], p.src_lo[r]))
    return stream[pair_of]


def resized(length: np.ndarray, datagrams: np.ndarray, pair_of: np.ndarray) -> np.ndarray:
    """Datagrams (rows where `datagrams`) whose size differs from the first datagram of their
    pair (`pair_of`: each row's pair) in this batch. A flood repeating one datagram has none."""
    out = np.zeros(len(length), bool)
    rows = np.flatnonzero(datagrams)
    if rows.size:
        order, starts, _, of = group(pair_of[rows].astype(np.uint64), inverse=True)
        out[rows] = length[rows] != length[rows[order[starts]]][of]
    return out


SPEC = DetectorSpec(
    name=TrafficBurst.name, config=TrafficBurstConfig,
    signature=Signature(9000007, "WIREWATCH traffic burst", "Attempted Denial of Service", 2),
    conversation=True,
    build=lambda cfg, shared: TrafficBurst(cfg.detect.traffic_burst, cfg.general.time_window, shared.gate),
    tunables=(Tunable("threshold", "packets", (250, 3000, 250),
                      "bursts raised by bytes_threshold alone are counted at their packet count; the "
                      "many-sources view admits destinations by the threshold's rate and stays quiet "
                      "about victims a per-pair alert covers, so it can differ near the edge"),),
    figure="packets", storm_label="Traffic bursts",
    rises=(Rise("distinct_sources", 100, 1, "a flood from many, often forged, sources"),),
)
