"""native/__init__.py: the compiled hot path is used when built, the numpy reference when
asked for (WIREWATCH_PURE_NUMPY) or when a module is missing, and a missing build is said."""

from __future__ import annotations

import os
import subprocess
import sys

from wirewatch import native


def test_every_compiled_module_loads_in_a_built_checkout(monkeypatch):
    monkeypatch.delenv("WIREWATCH_PURE_NUMPY", raising=False)
    for name in native.MODULES:
        mod = native.load(name)
        assert mod is not None and mod.__name__ == f"wirewatch.native.{name}"
    assert native.active() and native.warning() is None


def test_pure_numpy_turns_them_off_without_a_warning(monkeypatch):
    monkeypatch.setenv("WIREWATCH_PURE_NUMPY", "1")
    assert [native.load(n) for n in native.MODULES] == [None, None, None]
    assert not native.active() and native.warning() is None


def test_a_missing_module_falls_back_and_is_said_once_in_one_line(monkeypatch):
    monkeypatch.delenv("WIREWATCH_PURE_NUMPY", raising=False)
    assert native.load("_no_such_module") is None
    monkeypatch.setattr(native, "MODULES", ("_decode", "_no_such_module"))
    assert not native.active()
    text = native.warning()
    assert text is not None and "\n" not in text and "make setup" in text and "numpy reference" in text


KEEP_HEAP_CHILD = """
import resource, sys
import numpy as np
from wirewatch import native
kept = native.keep_heap() if sys.argv[1] == "keep" else None
def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
x = np.ones(1 << 18)
del x
start = faults()
for _ in range(100):
    a = np.ones(1 << 18)  # 2 MiB, freed again at once, as a slice's temporaries are
    b = a * 2
    del a, b
print(kept, faults() - start)
"""


def test_keep_heap_stops_temporaries_from_faulting_in_again():
    """Engine() calls native.keep_heap(): with glibc's defaults each 2 MiB temporary is mapped
    afresh (512 page faults each, ~100,000 in this loop); kept in the heap, it is faulted once.
    The numpy reference (WIREWATCH_PURE_NUMPY=1) keeps the allocator's defaults: keep_heap is
    False there and the temporaries fault as without it (each setting is run here, whichever the
    suite runs under)."""
    def run(mode: str, pure: bool) -> tuple[str, int]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("MALLOC_", "WIREWATCH_PURE_NUMPY"))}
        out = subprocess.run([sys.executable, "-c", KEEP_HEAP_CHILD, mode], capture_output=True, text=True, check=True,
                             env=env | ({"WIREWATCH_PURE_NUMPY": "1"} if pure else {})).stdout.split()
        return out[0], int(out[1])

    kept, few = run("keep", pure=False)
    _, many = run("default", pure=False)
    assert kept == "True"
    assert few < 2_000 < 50_000 < many
    kept, faults = run("keep", pure=True)
    assert kept == "False" and faults > 50_000
