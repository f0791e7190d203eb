"""Detectors, one module each; detect/registry.py lists them (and says how to add one).

count/ is the counting framework they share (bounded tables, windows, kernels), classify/
the packet classifiers (probes, answers, handshakes)."""

from __future__ import annotations

from .base import Detector, DetectorSpec, Finding, Signature
from .registry import DETECTORS, default_detectors

__all__ = ["DETECTORS", "Detector", "DetectorSpec", "Finding", "Signature", "default_detectors"]
