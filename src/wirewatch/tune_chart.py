"""`wirewatch tune --png FILE`: alerts against threshold, one panel per threshold, the value in
effect marked. matplotlib is an optional dependency (`pip install 'wirewatch[chart]'`),
imported only here."""

from __future__ import annotations

import math
from typing import Any

from .config import ConfigError

COLUMNS = 2


def write_png(doc: dict[str, Any], path: str) -> None:
    """Draw every threshold of a tune document (tune_report's JSON) into one PNG file."""
    try:
        import matplotlib

        matplotlib.use("Agg")  # no display: a file only
        import matplotlib.pyplot as plt
        from matplotlib.ticker import MaxNLocator
    except ImportError:
        raise ConfigError("--png needs matplotlib (pip install 'wirewatch[chart]')") from None
    thresholds = doc["thresholds"]
    if not thresholds:
        raise ConfigError("--png: no threshold to chart (the selected detector has none)")
    rows = math.ceil(len(thresholds) / COLUMNS)
    cols = min(COLUMNS, len(thresholds))
    fig, axes = plt.subplots(rows, cols, figsize=(5.5 * cols, 3.2 * rows), squeeze=False)
    for ax, t in zip(axes.flat, thresholds):
        xs = [r["value"] for r in t["rows"]]
        ys = [r["alerts"] for r in t["rows"]]
        ax.step(xs, ys, where="post", color="#1f77b4")
        ax.plot(xs, ys, "o", color="#1f77b4", markersize=3)
        ax.axvline(t["current"], color="#d62728", linestyle="--", label=f"in effect: {t['current']:g}")
        ax.set_title(f"{t['detector']}.{t['key']}" + (" (approximate)" if t["approximate"] else ""), fontsize=10)
        ax.set_xlabel(f"threshold ({t['figure']})")
        ax.set_ylabel("alerts")
        ax.set_ylim(0, max(1, *ys) * 1.1)
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))  # alerts are counted
        ax.legend(fontsize=8)
    for ax in list(axes.flat)[len(thresholds):]:
        ax.set_visible(False)
    fig.tight_layout()
    try:
        fig.savefig(path, format="png", dpi=100)
    except OSError as exc:
        raise ConfigError(f"--png {path}: {exc.strerror or exc}") from None
    finally:
        plt.close(fig)
