"""Which tunnel an alert's hosts were seen in: the `tunnel` evidence.

The decoder analyses a tunnelled packet as its inner packet and records the outer layers in
the batch's `tunnel` column (decode.tunnel_names). Detectors aggregate by address and never
look at that column, so the engine remembers, per inner source and per inner destination
address, the layers of the latest tunnelled packet it saw them in, and adds `tunnel` to a
finding whose source it knows (or, for a finding that names only its victim, whose
destination it knows): the layer's name ("vxlan"),
or the names outermost first when tunnels nest (["mpls", "gre"]).

The memory is bounded (least recently seen addresses go first, and are counted). A capture
without tunnels costs one `any()` per batch, and its alerts carry no `tunnel` key.
"""

from __future__ import annotations

import itertools

import numpy as np

from .addr import addr_cols
from .decode import PacketBatch, tunnel_names
from .detect.base import Finding

Key = tuple[int, int, int]  # (role: 0 source / 1 destination, address hi, address lo)


class TunnelEvidence:
    def __init__(self, cap: int):
        self.cap = cap
        self.evicted = 0
        self._seen: dict[Key, int] = {}  # insertion order = least recently seen first
        self.packets: dict[str, int] = {}  # tunnelled packets by their layers, e.g. "mpls/gre"

    def observe(self, batch: PacketBatch) -> None:
        """Remember, per address that sent or received a tunnelled packet, the layers of the
        last such packet of the batch (one dict update per distinct address, no text)."""
        code = batch.tunnel
        if not len(code) or not code.any():
            return
        rows = np.flatnonzero(code)
        for c, count in zip(*np.unique(code[rows], return_counts=True)):
            name = "/".join(tunnel_names(int(c)))
            self.packets[name] = self.packets.get(name, 0) + int(count)
        last = rows[::-1]  # np.unique's first index over reversed rows = each address's last packet
        for role, hi, lo in ((0, batch.src_hi, batch.src_lo), (1, batch.dst_hi, batch.dst_lo)):
            _, first = np.unique(np.stack([hi[last], lo[last]], axis=1), axis=0, return_index=True)
            pick = last[np.sort(first)[::-1]]  # in packet order, so the latest ends up most recent
            keys = [(role, h, low) for h, low in zip(hi[pick].tolist(), lo[pick].tolist())]
            for k in keys:
                self._seen.pop(k, None)
            self._seen.update(zip(keys, code[pick].tolist()))
        self._evict()

    def _evict(self) -> None:
        excess = len(self._seen) - self.cap
        if excess > 0:
            for k in list(itertools.islice(self._seen, excess)):
                del self._seen[k]
            self.evicted += excess

    def reconfigure(self, cap: int) -> None:
        """A new `decode.tunnel_addresses` (SIGHUP): a smaller cap evicts at once."""
        self.cap = cap
        self._evict()

    def annotate(self, findings: list[Finding]) -> list[Finding]:
        """Add `tunnel` to the evidence of findings about hosts seen inside a tunnel."""
        if not self._seen:
            return findings
        for f in findings:
            if f.src_ip:
                code = self._seen.get((0, *addr_cols(f.src_ip)))
            else:  # floods from many sources name only the victim
                code = self._seen.get((1, *addr_cols(f.dest_ip))) if f.dest_ip else None
            if code and "tunnel" not in f.evidence:
                names = tunnel_names(code)
                f.evidence["tunnel"] = names[0] if len(names) == 1 else names
        return findings
    def stats(self) -> dict[str, int]:
        """Tunnelled packets by layers, addresses held and evicted; empty until a tunnel is
        seen (summaries of captures without tunnels stay as they were)."""
        if not self.packets:
            return {}
        return {**{f"tunnel_packets_{name}": n for name, n in sorted(self.packets.items())},
                "tunnel_addresses": len(self._seen), "tunnel_addresses_evicted": self.evicted}
