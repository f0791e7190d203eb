"""host_sweep: one source probes many distinct hosts on the same service.

A service is (protocol, port) for TCP SYNs, ACK pings and UDP, or the ICMP request type
(echo, timestamp) for ping sweeps, so `nmap -sn` and `nmap -p22 10.0.0.0/24` are both found.

Busy or hostile: a host that *uses* the service of each host it reaches (a user behind a
NAT address browsing many sites: every handshake completes and carries data) is not
sweeping. Hosts it held a conversation with (classify/conversations.py) do not count.
Host discovery on the local segment (nmap -6 -sn on a LAN) sends only neighbour
solicitations: the service is ICMPv6 type 135 and the host the target's solicited-node group.
Every host resolves its neighbours, so an address counts only if no packet is then sent
to it (a resolution is made to deliver one, which a router forwards from other sources; a
sweep asks and moves on).
An echo request to a multicast group or the broadcast address (ping6 ff02::1%eth0, THC's alive6,
ping -b) probes every host that answers it: each echo reply to that requester, within the
window, counts as a host it probed on that service (the reply names the host).
Two windows, as in port_scan: `threshold` hosts within `window`, and `slow_threshold`
hosts within `slow_window` for slow sweeps (one new host every few seconds).

Monitoring or sweeping: a sweep discovers, so it asks each host once and moves on (nmap and
fping retry only the hosts that stayed silent); a monitor (fping or ping every second or two,
Nagios-style TCP checks, a load balancer's health checks) asks the same hosts again, round
after round, after they answered. A host that answered a source's probe and is probed again
by it on the same service is monitored (`monitored` in the evidence); a source that comes back
to most of the hosts it swept is a monitor, while a sweep retries a few now and then (nmap
pings one host twice in dev07, nping re-sends to the host before each address that does not
resolve). A monitor's first round looks exactly like a sweep, so a source that crosses a
threshold is held for one `window` of packet time (its evidence as it stood) and reported
unless, by then, most of the hosts it swept were monitored (or fewer than the threshold are
left unconversed); input that ends first decides what is held (`finish`), a live sensor's
quiet wire too (`tick`).
"""

from __future__ import annotations

import heapq
import ipaddress
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..addr import addr_str
from ..decode import IPV4_MAPPED, PROTO_ICMPV6, PacketBatch
from ..settings import Frozen, cap, seconds, setting
from .base import DetectorSpec, Finding, Reconfigurable, Rise, Signature, Tunable, one_per_source
from .classify.conversations import conversations
from .classify.packets import (
    ADDR_LABELS,
    ND_SOLICITATION,
    ND_TYPES,
    addr_labels,
    answered_ack_probes,
    arp_request,
    bare_ack,
    icmp_request,
    nd_solicitation,
    proto_name,
    service,
    solicited_group,
    syn_only,
    to_group,
    towards_service,
    udp_initiator,
)
from .classify.replies import ICMP_REPLIES, REQUEST_OF, UNREACHABLE, Replies, replies
from .count.kernels import hash_cols, isin
from .count.report import COOLDOWN, Gate, best_near_misses, near, near_miss
from .count.window import DistinctCounter, WindowCounter
from .count.window_util import sorted_unique

SAMPLE = 20
ND_SERVICE = PROTO_ICMPV6 * 65536 + ND_SOLICITATION
ARP_SERVICE = 256 * 65536  # beyond IP protocol numbers


@dataclass(frozen=True, eq=False, repr=False)
class HostSweepConfig(Frozen):
    enabled: bool = setting(True, "Detect one source probing many hosts on one service.")
    threshold: int = setting(15, "Distinct hosts probed on one service within the window.", 2)
    window: float = seconds(0.0, "Window in seconds; 0 = general.time_window.", 0)
    slow_threshold: int = setting(0, "Distinct hosts within slow_window that make a slow sweep "
                                     "(0 = the same as threshold).", 0)
    slow_window: float = seconds(120.0, "Long window (seconds) for slow sweeps.", 1)
    max_sources: int = cap(32_768, "Cap on (source, service) pairs tracked.")
    max_targets: int = cap(131_072, "Cap on (source, service, host) triples tracked.")


class HostSweep(Reconfigurable):
    name = "host_sweep"

    def __init__(self, cfg: HostSweepConfig, window: float, gate: Gate = COOLDOWN):
        self.cfg = cfg
        self.window = cfg.window or window
        self.configure()
        labels = {**ADDR_LABELS, "service": np.int64}
        # one table, two windows: distinct_inner counts the short window, distinct the long one
        self.counter = DistinctCounter(max(cfg.slow_window, self.window), cfg.max_sources, cfg.max_targets, labels,
                                       {"host_hi": np.uint64, "host_lo": np.uint64, "talked": np.uint8,
                                        "answered": np.uint8, "monitored": np.uint8},
                                       doorkeeper_bits=16, inner_window=self.window, gate=gate)
        self.resolve_until = -np.inf  # packet time until which an ARP request or solicitation is remembered
        # solicited-node groups of IPv6 addresses sent unicast traffic while solicitations are about
        self.used = WindowCounter(max(cfg.slow_window, self.window), cfg.max_targets, ("used",))
        self.answers = WindowCounter(max(cfg.slow_window, self.window), cfg.max_sources, ("replied", "unreachable"))
        # crossings held for a window: (source, service) key -> when to decide, the finding as
        # it stood, the hash of each host it counted, its threshold (bounded by max_sources)
        self.held: dict[int, tuple[float, Finding, np.ndarray, int]] = {}
        self.group_pingers: dict[int, float] = {}  # requester key -> its last echo request to a group (packet time)
        self.group_pingers_evicted = 0

    def configure(self) -> None:
        self.slow_threshold = self.cfg.slow_threshold or self.cfg.threshold

    def observe(self, b: PacketBatch) -> list[Finding]:
        nd = nd_solicitation(b)
        # a ping of a group probes the hosts that answer it (_group_ping_answers), not the group
        group = to_group(b)  # once a batch: the probes, the group pings and the used bookkeeping read it
        probe = syn_only(b) | udp_initiator(b) | (icmp_request(b) & ~group) | nd | (bare_ack(b) & towards_service(b))
        probe[answered_ack_probes(b)[0]] = True  # nmap -PA: ACKs that live hosts refuse with a bare RST
        rows = np.flatnonzero(probe)
        touched = np.zeros(0, np.int64)
        if rows.size:
            p = b.select(rows)
            addrs, svc = addr_labels(p), service(p)
            self._mark_monitored(addrs, svc)
            touched = self._observe(p.ts, addrs, svc)
        arp = np.flatnonzero(arp_request(b))
        if arp.size:  # ARP rows carry no IP addresses: the sender asks for the target
            zero = np.zeros(arp.size, np.uint64)
            spa, tpa = IPV4_MAPPED | b.arp_spa[arp].astype(np.uint64), IPV4_MAPPED | b.arp_tpa[arp].astype(np.uint64)
            addrs = {"src_hi": zero, "src_lo": spa, "dst_hi": zero, "dst_lo": tpa}
            found = self._observe(b.ts[arp], addrs, np.full(arp.size, ARP_SERVICE, np.int64))
            touched = sorted_unique(np.concatenate([touched, found]))
        echo = self._group_ping_answers(b, group)
        if echo.size:  # the hosts that answered a group ping: the requester probed each
            addrs = {"src_hi": b.dst_hi[echo], "src_lo": b.dst_lo[echo], "dst_hi": b.src_hi[echo], "dst_lo": b.src_lo[echo]}
            svc = b.proto[echo].astype(np.int64) * 65536 + REQUEST_OF[b.icmp_type[echo]]
            touched = sorted_unique(np.concatenate([touched, self._observe(b.ts[echo], addrs, svc)]))
        resolving = np.concatenate([b.ts[nd], b.ts[arp]])
        if resolving.size:
            self.resolve_until = max(self.resolve_until, float(resolving.max()) + max(self.cfg.slow_window, self.window))
        self._mark_conversations(b)
        self._record_used(b, group)
        answers = replies(b)  # once a batch: who answered, and the answers counted below
        self._mark_answered(answers)
        now = float(b.ts.max()) if len(b) else -np.inf
        if not touched.size:
            return self._decide(now)
        self._count_answers(b, answers)
        c = self.counter
        fired = set()
        for inner, limit, window in ((True, self.cfg.threshold, self.window), (False, self.slow_threshold, self.cfg.slow_window)):
            hot = c.over(touched, limit, inner)
            self._mark_used(hot)
            hot = hot[self._swept(hot, inner) >= limit]
            for slot in c.due(hot, now, window, inner):
                key = int(c.key(int(slot)))
                if int(slot) not in fired and key not in self.held:
                    self._hold(int(slot), key, limit, window, inner, now)
                    fired.add(int(slot))
        return self._decide(now)

    def tick(self, now: float) -> list[Finding]:
        """A live sensor's quiet wire: decide the crossings whose window has passed."""
        return self._decide(now)

    def finish(self, now: float) -> list[Finding]:
        """The input ended: decide every crossing still held, on the evidence there is."""
        return self._decide(np.inf)

    def _hold(self, slot: int, key: int, limit: int, window: float, inner: bool, now: float) -> None:
        """Keep a crossing for one window: a monitor comes back to the hosts in that time."""
        c = self.counter
        items = c.members(slot, inner)
        swept = items[c.item(items, "talked") == 0]
        hosts = hash_cols(c.item(swept, "host_hi"), c.item(swept, "host_lo"))
        finding = self._finding(slot, limit, window, inner)
        if len(self.held) >= self.cfg.max_sources:  # full: the oldest crossing is decided now
            oldest = min(self.held, key=lambda k: self.held[k][0])
            self.held[oldest] = (-np.inf, *self.held[oldest][1:])
        self.held[key] = (now + self.window, finding, hosts, limit)

    def _decide(self, now: float) -> list[Finding]:
        """The held crossings whose window has passed: reported when at least their threshold
        of the hosts they counted were still not talked with, unless most of those hosts were
        probed again after answering (monitored): a monitor's rounds."""
        due = [k for k, (until, *_) in self.held.items() if until <= now]
        if not due:
            return []
        c = self.counter
        out = []
        for key in due:
            _, f, hosts, limit = self.held.pop(key)
            slot = int(c.groups.find(np.array([key], np.uint64))[0])
            if slot >= 0:
                self._mark_used(np.array([slot]))
            items = c.find_items(np.full(hosts.size, key, np.uint64), hosts)
            known = items >= 0
            talked = np.zeros(hosts.size, bool)
            monitored = np.zeros(hosts.size, bool)
            talked[known] = c.item(items[known], "talked") != 0
            monitored[known] = c.item(items[known], "monitored") != 0
            still = int(hosts.size - talked.sum())
            if still < limit or 2 * int(monitored.sum()) > hosts.size:
                continue
            ev = f.evidence
            ev["distinct_hosts"] = still
            ev["conversations"] += int(talked.sum())
            ev["monitored"] = int(monitored.sum())
            if talked.any():
                gone = {addr_str(h, lo) for h, lo in zip(c.item(items[talked], "host_hi"), c.item(items[talked], "host_lo"))}
                ev["sample_hosts"] = [h for h in ev["sample_hosts"] if h not in gone]
            out.append(f)
        return _one_per_source(out)

    def _mark_monitored(self, addrs: dict[str, np.ndarray], svc: np.ndarray) -> None:
        """Probes of hosts that already answered this source on this service: monitoring (a
        sweep asks a host once, retrying now and then): marked `monitored`."""
        c = self.counter
        keys = hash_cols(addrs["src_hi"], addrs["src_lo"], svc)
        items = c.find_items(keys, hash_cols(addrs["dst_hi"], addrs["dst_lo"]))
        known = items[items >= 0]
        again = known[c.item(known, "answered") != 0]
        if again.size:
            c.items.cols["monitored"][again] = 1

    def _mark_answered(self, r: Replies) -> None:
        """Hosts that answered a probe (SYN-ACK, RST, an ICMP or UDP reply, an unreachable)."""
        if len(r.rows):
            self.counter.mark(hash_cols(r.prober_hi, r.prober_lo, r.service), hash_cols(r.target_hi, r.target_lo), "answered")

    def _group_ping_answers(self, b: PacketBatch, group: np.ndarray) -> np.ndarray:
        """Rows of unicast ICMP replies to a source that sent an ICMP request to a multicast group
        or the broadcast address within the window (this batch's requests included)."""
        ask = np.flatnonzero(icmp_request(b) & group)
        if ask.size:
            for k, t in zip(hash_cols(b.src_hi[ask], b.src_lo[ask]).tolist(), b.ts[ask].tolist()):
                self.group_pingers[k] = max(t, self.group_pingers.get(k, t))
            self._cap_group_pingers()
        if not self.group_pingers:
            return np.zeros(0, np.int64)
        rows = np.flatnonzero(b.has_icmp & ICMP_REPLIES[b.icmp_type] & ~group)
        if not rows.size:
            return rows
        asked = np.fromiter(self.group_pingers, np.uint64, len(self.group_pingers))
        to = hash_cols(b.dst_hi[rows], b.dst_lo[rows])
        mine = isin(to, asked)
        rows, to = rows[mine], to[mine]
        if not rows.size:
            return rows
        since = np.array([self.group_pingers[int(k)] for k in to.tolist()])
        return rows[(b.ts[rows] >= since) & (b.ts[rows] - since <= self.window)]

    def _cap_group_pingers(self) -> None:
        """Over max_sources requesters (forged sources pinging a group): the oldest go, a
        sixteenth of the cap more at once, so a flood of them costs one partial sort a batch,
        not a scan of the table per requester; counted (host_sweep_group_pingers_evicted)."""
        excess = len(self.group_pingers) - self.cfg.max_sources
        if excess <= 0:
            return
        oldest = heapq.nsmallest(excess + self.cfg.max_sources // 16, self.group_pingers,
                                 key=self.group_pingers.__getitem__)
        for k in oldest:
            del self.group_pingers[k]
        self.group_pingers_evicted += len(oldest)

    def _observe(self, ts: np.ndarray, addrs: dict[str, np.ndarray], svc: np.ndarray) -> np.ndarray:
        """Count probes (source and host addresses, service); the group slots touched."""
        keys = hash_cols(addrs["src_hi"], addrs["src_lo"], svc)
        host = hash_cols(addrs["dst_hi"], addrs["dst_lo"])
        return self.counter.observe(keys, host, ts, {**addrs, "service": svc},
                                    {"host_hi": addrs["dst_hi"], "host_lo": addrs["dst_lo"]})  # talked: 0 in a new row

    def _swept(self, slots: np.ndarray, inner: bool) -> np.ndarray:
        """Distinct hosts per group that were probed and never talked with."""
        return self.counter.distinct(slots, inner) - self.counter.marked(slots, "talked", inner)

    def _mark_conversations(self, b: PacketBatch) -> None:
        c = conversations(b)
        if len(c.service):
            self.counter.mark(hash_cols(c.prober_hi, c.prober_lo, c.service), hash_cols(c.target_hi, c.target_lo), "talked")

    def _record_used(self, b: PacketBatch, group: np.ndarray) -> None:
        """Unicast packets, by destination (IPv4) or its solicited-node group (IPv6, not neighbour
        discovery), while an ARP request or a solicitation is within the long window."""
        if not len(b) or float(b.ts[0]) > self.resolve_until:
            return
        nd = b.has_icmp & (b.proto == PROTO_ICMPV6) & (b.icmp_type >= ND_TYPES[0]) & (b.icmp_type <= ND_TYPES[-1])
        unicast = ~group
        v6 = np.flatnonzero((b.ipver == 6) & unicast & ~nd)
        v4 = np.flatnonzero((b.ipver == 4) & unicast)
        keys = np.concatenate([hash_cols(*solicited_group(b.dst_lo[v6])), hash_cols(b.dst_hi[v4], b.dst_lo[v4])])
        if keys.size:
            self.used.add(keys, np.concatenate([b.ts[v6], b.ts[v4]]), {"used": np.ones(keys.size, np.int64)})

    def _mark_used(self, slots: np.ndarray) -> None:
        """Solicited addresses that were then sent a packet were resolved to be used: talked."""
        c = self.counter
        svc = c.label(slots, "service")
        for slot in slots[(svc == ND_SERVICE) | (svc == ARP_SERVICE)].tolist():  # (np.isin imports numpy.ma)
            items = c.members(slot)
            hosts = hash_cols(c.item(items, "host_hi"), c.item(items, "host_lo"))
            used = hosts[self.used.table.find(hosts) >= 0]
            c.mark(np.full(used.size, c.key(slot), np.uint64), used, "talked")

    def _count_answers(self, b: PacketBatch, r: Replies) -> None:
        """Answers to a sweeper, keyed back onto its (source, service): see replies.py."""
        keys = hash_cols(r.prober_hi, r.prober_lo, r.service)
        known = self.counter.groups.find(keys) >= 0
        if known.any():
            u = r.kind[known] == UNREACHABLE
            self.answers.add(keys[known], b.ts[r.rows[known]], {"replied": ~u, "unreachable": u})

    def _finding(self, slot: int, threshold: int, window: float, inner: bool) -> Finding:
        c = self.counter
        svc = int(c.label(slot, "service"))
        proto, port = svc // 65536, svc % 65536
        items = c.members(slot, inner)
        swept = items[c.item(items, "talked") == 0]
        hosts = sorted((addr_str(h, lo) for h, lo in zip(c.item(swept, "host_hi"), c.item(swept, "host_lo"))), key=_addr_sort)
        src = c.src(slot)
        is_icmp = proto in (1, 58) or svc == ARP_SERVICE  # no port
        what = f"ICMP type {port}" if is_icmp else f"{proto_name(proto)} port {port}"
        method = {}
        if svc == ND_SERVICE:  # hosts are the targets' solicited-node groups
            what, method = "neighbour solicitation", {"method": "ND"}
        elif svc == ARP_SERVICE:
            what, method = "ARP request", {"method": "ARP"}
        return Finding(
            type=self.name, identifier=(src,), ts=c.last_seen(slot),  # one sweep per source, as port_scan's
            message=f"Possible host sweep from {src} ({what})",
            src_ip=src, dest_port=None if is_icmp else port, proto="ARP" if svc == ARP_SERVICE else proto_name(proto),
            evidence={"distinct_hosts": len(swept), "window_s": window, "threshold": threshold,
                      "mode": "short window" if inner else "long window (slow sweep)", "service": what,
                      "probes": c.item_hits(swept), "conversations": int(len(items) - len(swept)),
                      "monitored": int((c.item(items, "monitored") != 0).sum()),
                      **c.seen(slot), "sample_hosts": hosts[:SAMPLE],
                      "answers": self._answers(c.key(slot), c.last_seen(slot)), **method},
        )

    def near_misses(self, now: float) -> list[dict[str, Any]]:
        """Sources at >= half a threshold on one service, in either window (hosts probed and
        never talked with, as of the last expiry step)."""
        c = self.counter
        occ = c.occupied()
        swept = {inner: self._swept(occ, inner) for inner in (True, False)}
        keep = (swept[True] < self.cfg.threshold) & (swept[False] < self.slow_threshold)  # not alerted
        out = []
        for inner, limit, window in ((True, self.cfg.threshold, self.window), (False, self.slow_threshold, self.cfg.slow_window)):
            slots, figure = near(occ[keep], swept[inner][keep], limit)
            for s, n in zip(slots.tolist(), figure.tolist()):
                svc = int(c.label(s, "service"))
                port = None if svc // 65536 in (1, 58) or svc == ARP_SERVICE else svc % 65536
                out.append(near_miss(self.name, c.src(s), n, limit, "hosts", window, dest_port=port))
        return best_near_misses(out)

    def _answers(self, key: int, now: float) -> dict[str, int]:
        slot = self.answers.table.find(np.array([key], np.uint64))
        if slot[0] < 0:
            return {"replied": 0, "unreachable": 0}
        return {m: int(self.answers.totals(slot, now, m)[0]) for m in ("replied", "unreachable")}

    def expire(self, now: float) -> None:
        self.group_pingers = {k: t for k, t in self.group_pingers.items() if now - t <= self.window}
        self.counter.expire(now)  # a held crossing keeps its hosts' hashes; expired hosts count as swept
        self.used.expire(now)
        self.answers.expire(now)

    def stats(self) -> dict[str, int]:
        return {**self.counter.stats("host_sweep"), **self.used.stats("host_sweep_used"), **self.answers.stats("host_sweep_answers"),
                "host_sweep_group_pingers_evicted": self.group_pingers_evicted}


def _one_per_source(found: list[Finding]) -> list[Finding]:
    """A sweep of several services at once (nmap -p 22,80,443 over a subnet) is one sweep, spoken
    for by the service with the most hosts; `services` lists each service swept in this slice."""
    return one_per_source(found, "distinct_hosts", "services", lambda f: {
        "service": f.evidence["service"], "distinct_hosts": f.evidence["distinct_hosts"], "mode": f.evidence["mode"]})


def _addr_sort(text: str) -> tuple[int, str]:
    ip = ipaddress.ip_address(text)
    return ip.version, f"{int(ip):040d}"


SPEC = DetectorSpec(
    name=HostSweep.name, config=HostSweepConfig,
    signature=Signature(9000002, "WIREWATCH host sweep", "Attempted Information Leak", 3),
    conversation=True,
    build=lambda cfg, shared: HostSweep(cfg.detect.host_sweep, cfg.general.time_window, shared.gate),
    tunables=(Tunable("threshold", "distinct_hosts", (4, 40, 2),
                      "the slow-sweep window's threshold follows threshold (unless slow_threshold is set)",
                      slow="slow_threshold"),),
    figure="distinct_hosts",
    rises=(Rise("answers.replied", 1, 2, "hosts answered it"),),
)
