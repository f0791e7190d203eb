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

from collections import OrderedDict

import numpy as np

from .addr import addr_str
from .decode import PacketBatch, tunnel_names
from .detect.base import Finding

DEFAULT_CAP = 65_536


class TunnelEvidence:
    def __init__(self, cap: int = DEFAULT_CAP):
        self.cap = cap
        self.evicted = 0
        self._seen: OrderedDict[tuple[str, str], int] = OrderedDict()  # (role, address) -> tunnel code
        self.packets: dict[str, int] = {}  # tunnelled packets by their layers, e.g. "mpls/gre"

    def observe(self, batch: PacketBatch) -> None:
        """Remember the tunnel of every address that sent or received a tunnelled packet."""
        code = batch.tunnel
        if not len(code) or not code.any():
            return
        rows = np.flatnonzero(code)
        for c, count in zip(*np.unique(code[rows], return_counts=True)):
            name = "/".join(tunnel_names(int(c)))
            self.packets[name] = self.packets.get(name, 0) + int(count)
        for role, hi, lo in (("src", batch.src_hi, batch.src_lo), ("dst", batch.dst_hi, batch.dst_lo)):
            keys = np.stack([hi[rows], lo[rows], code[rows].astype(np.uint64)], axis=1)
            for h, low, c in np.unique(keys, axis=0).tolist():
                self._remember((role, addr_str(h, low)), int(c))

    def _remember(self, key: tuple[str, str], code: int) -> None:
        self._seen[key] = code
        self._seen.move_to_end(key)
        if len(self._seen) > self.cap:
            self._seen.popitem(last=False)
            self.evicted += 1

    def annotate(self, findings: list[Finding]) -> list[Finding]:
        """Add `tunnel` to the evidence of findings about hosts seen inside a tunnel."""
        if not self._seen:
            return findings
        for f in findings:
            if f.src_ip:
                code = self._seen.get(("src", f.src_ip))
            else:  # floods from many sources name only the victim
                code = self._seen.get(("dst", f.dest_ip)) if f.dest_ip else None
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
