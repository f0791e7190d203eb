"""Compiled versions of the measured hot path (decode, detector-state loops).

Each compiled module has a numpy reference next to the code that uses it (decode.py,
detect/count/kernels.py) that gives the same results; the reference runs when the extension
was not built (no C compiler at install time) or when WIREWATCH_PURE_NUMPY=1.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType


def load(name: str) -> ModuleType | None:
    """The compiled module wirewatch.native.<name>, or None to use the numpy reference."""
    if os.environ.get("WIREWATCH_PURE_NUMPY"):
        return None
    try:
        return importlib.import_module(f"{__name__}.{name}")
    except ImportError:
        return None


MODULES = ("_decode", "_kernels", "_pcapwalk")
HEAP_TRIM = 32 * 1024 * 1024  # freed heap kept for the next slice's temporaries (glibc's default: 128 KiB)
HEAP_MMAP_THRESHOLD = 4 * 1024 * 1024  # allocations below this come from the heap, not mappings of their own


def keep_heap() -> bool:
    """Keep freed memory in the process heap between slices instead of handing it back to the
    kernel and faulting it in again (native/kernels.c keep_heap; glibc only). Once per process
    is enough; the numpy reference leaves the allocator's defaults."""
    kernels = load("_kernels")
    return bool(kernels is not None and kernels.keep_heap(HEAP_TRIM, HEAP_MMAP_THRESHOLD))


def active() -> bool:
    """True when every compiled module is in use."""
    return all(load(name) is not None for name in MODULES)


def warning() -> str | None:
    """A one-line warning when the compiled modules are missing (not when the user turned
    them off with WIREWATCH_PURE_NUMPY)."""
    if active() or os.environ.get("WIREWATCH_PURE_NUMPY"):
        return None
    return ("wirewatch: the compiled hot path (wirewatch.native) is not built, running the numpy reference "
            "(about 2.5x slower); install gcc and the Python headers, then reinstall (make setup)")
