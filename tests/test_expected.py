"""Expected-output tests (Zeek-style pcap + expected log): every corpus pcap's alerts, in full,
against a committed file in tests/expected/. A change in what wirewatch reports shows up as a
diff in review. After an intended change, regenerate with:

    WIREWATCH_UPDATE_EXPECTED=1 .venv/bin/python -m pytest tests/test_expected.py
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from conftest import CORPUS, run_file

EXPECTED = Path(__file__).parent / "expected"
PCAPS = sorted(p["file"] for p in json.loads((CORPUS / "labels.json").read_text())["pcaps"])
# captures recorded for one detection each, outside the labelled corpus (their recording scripts beside them)
CAPTURES = Path(__file__).parent / "captures"
RECORDED = sorted(p.name for p in CAPTURES.glob("*.pcap.xz"))
UPDATE = bool(os.environ.get("WIREWATCH_UPDATE_EXPECTED"))


def alerts_of(name: str, folder: Path = CORPUS) -> str:
    found, _ = run_file(str(folder / name), {"detect.blacklist.files": [str(CORPUS / "blacklist.txt")],
                                             "general.sensor": "expected-sensor"})
    return "".join(json.dumps(a, sort_keys=True) + "\n" for a in found)


@pytest.mark.parametrize("name", PCAPS + [f"captures/{n}" for n in RECORDED])
def test_alerts_match_the_committed_file(name):
    path = EXPECTED / (name.removesuffix(".xz").removesuffix(".pcap") + ".jsonl")
    got = alerts_of(name, CORPUS.parent if name.startswith("captures/") else CORPUS)
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(got)
    assert path.exists(), f"{path} missing: run with WIREWATCH_UPDATE_EXPECTED=1 to create it"
    assert got == path.read_text(), f"alerts of {name} changed: diff against {path}"
