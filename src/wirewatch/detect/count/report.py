"""When a key over its threshold is reported (the Gate), the near misses below it, and the
helpers that describe evidence (addresses, first and last seen)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ...addr import addr_str
from ...schema import format_ts
from .table import KeyTable

NEAR = 0.5  # a near miss: a key at or above this fraction of its threshold (and below 1)
NEAR_MISSES = 5  # at most this many per detector, highest fraction first


class Gate:
    """The report gate: a key that stays above its threshold is reported at most once per
    `interval` of packet time (the time it was last reported is kept in the table's
    `reported` column); the alert manager then decides between a new alert and a suppressed
    duplicate.

    `every_evaluation` is `wirewatch tune`'s recording pass: keys are still marked reported
    (a detector may read that) but every key over the threshold is passed at every
    evaluation, so the peak of its figure is seen. A detector is handed its gate when it is
    built (`Shared.gate`), so tune configures its detectors without patching modules.
    """

    def __init__(self, every_evaluation: bool = False):
        self.every_evaluation = every_evaluation

    def due(self, table: KeyTable, slots: np.ndarray, now: float, interval: float,
            col: str = "reported") -> np.ndarray:
        """The slots that may report now; marks them reported."""
        ok = self._unreported(table, slots, now, interval, col)
        table.cols[col][slots[ok]] = now
        return slots if self.every_evaluation else slots[ok]

    def would_pass(self, table: KeyTable, slots: np.ndarray, now: float, interval: float,
                   col: str = "reported") -> np.ndarray:
        """The slots `due` would return now, marking nothing: a detector with a costlier test
        of its own runs it on these only, then asks `due`."""
        return slots if self.every_evaluation else slots[self._unreported(table, slots, now, interval, col)]

    @staticmethod
    def _unreported(table: KeyTable, slots: np.ndarray, now: float, interval: float, col: str) -> np.ndarray:
        rep = table.cols[col][slots]
        return (rep == 0) | (now - rep >= interval)


COOLDOWN = Gate()  # what read and monitor use
EVERY_EVALUATION = Gate(every_evaluation=True)  # tune's recording pass


def src_of(table: KeyTable, slot: int) -> str:
    c = table.cols
    return addr_str(c["src_hi"][slot], c["src_lo"][slot])


def dst_of(table: KeyTable, slot: int) -> str:
    c = table.cols
    return addr_str(c["dst_hi"][slot], c["dst_lo"][slot])


def times(first: float, last: float) -> dict[str, str]:
    return {"first_seen": format_ts(first), "last_seen": format_ts(last)}


def top(slots: np.ndarray, figure: np.ndarray, n: int) -> np.ndarray:
    """Positions (into slots / figure) of the n largest figures, largest first; equal
    figures by slot, so the order is deterministic."""
    return np.lexsort((slots, -figure))[:n]


def near(slots: np.ndarray, figure: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """The slots whose figure is a near miss of `threshold` (NEAR <= figure / threshold < 1),
    the NEAR_MISSES highest first, with their figures."""
    if threshold <= 0 or not len(slots):
        return slots[:0], figure[:0]
    figure = np.asarray(figure)
    ok = (figure >= NEAR * threshold) & (figure < threshold)
    slots, figure = slots[ok], figure[ok]
    best = top(slots, figure, NEAR_MISSES)
    return slots[best], figure[best]


def near_miss(detector: str, src: str | None, figure: float, threshold: float, unit: str, window: float,
              dest_ip: str | None = None, dest_port: int | None = None) -> dict[str, Any]:
    """One entry of a stats record's `near_misses` (README "Alert record", stats records).
    `src` None: a victim-keyed view (syn_flood, distributed_scan, traffic_burst's many
    sources) with no single source; `dest_ip` then names the key, and the text says "to" it."""
    fig = int(figure) if float(figure).is_integer() else round(float(figure), 1)
    thr = int(threshold) if float(threshold).is_integer() else float(threshold)
    out: dict[str, Any] = {"detector": detector}
    if src is not None:
        out["src_ip"] = src
    if dest_ip is not None:
        out["dest_ip"] = dest_ip
    if dest_port is not None:
        out["dest_port"] = int(dest_port)
    if src is not None:
        who = src
    else:
        assert dest_ip is not None, "a near miss names its source or its victim"
        who = f"to {dest_ip}" + ("" if dest_port is None else f" port {int(dest_port)}")
    out.update(figure=fig, threshold=thr, fraction=round(float(figure) / float(threshold), 4), unit=unit,
               window=float(window), text=f"{who}: {fig} of {thr} {unit} in {float(window):g} s")
    return out


def best_near_misses(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A detector's near misses from several windows or views: each key (source, destination,
    port) once, at its highest fraction; the NEAR_MISSES highest first."""
    best: dict[tuple[Any, ...], dict[str, Any]] = {}
    for e in entries:
        k = (e.get("src_ip"), e.get("dest_ip"), e.get("dest_port"), e["unit"])
        if k not in best or e["fraction"] > best[k]["fraction"]:
            best[k] = e
    return sorted(best.values(), key=lambda e: (-e["fraction"], e["text"]))[:NEAR_MISSES]
