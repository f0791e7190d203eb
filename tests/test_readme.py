"""README stays true: every CLI option and config key is documented, and CI runs its test command.

README's generated blocks (the config tables, the signature table) are rewritten from the
code by `python tests/test_readme.py` (run it after adding a detector or a setting)."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from wirewatch import config
from wirewatch.cli import build_parser
from wirewatch.detect import registry

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def test_every_cli_command_and_option_is_in_readme():
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    missing = []
    for name, p in sub.choices.items():
        if f"wirewatch {name}" not in README:
            missing.append(f"command {name}")
        for action in p._actions:
            for opt in action.option_strings:
                if opt.startswith("--") and opt != "--help" and f"`{opt}" not in README:
                    missing.append(f"{name} {opt}")
    assert missing == []


def test_every_config_key_is_in_readme():
    missing = []
    for section, cls in config.sections().items():
        if f"[{section}]" not in README:
            missing.append(section)
        for f in dataclasses.fields(cls):
            if f"`{f.name}`" not in README:
                missing.append(f"{section}.{f.name}")
    assert missing == []


def test_ci_runs_the_test_command_readme_gives():
    assert "make test" in README
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def generated() -> dict[str, str]:
    """README's generated blocks, by marker: what each must hold."""
    return {"config-keys": config.markdown().strip(), "signatures": registry.signatures_markdown().strip()}


def _block(marker: str, text: str = README) -> str:
    return text.split(f"<!-- {marker}:")[1].split("-->", 1)[1].split(f"<!-- /{marker} -->")[0]


def test_config_tables_match_the_defaults():
    assert _block("config-keys").strip() == generated()["config-keys"], \
        "regenerate README's config tables: python tests/test_readme.py"


def test_signature_table_matches_the_registry():
    assert _block("signatures").strip() == generated()["signatures"], \
        "regenerate README's signature table: python tests/test_readme.py"


def rewrite(text: str) -> str:
    """`text` (README) with every generated block holding what the code says."""
    for marker, body in generated().items():
        old = _block(marker, text)
        if old.strip() != body:
            text = text.replace(f"-->{old}<!-- /{marker} -->", f"-->\n{body}\n<!-- /{marker} -->", 1)
    return text


def test_rewrite_fills_a_stale_block_and_leaves_a_current_one_alone():
    """`python tests/test_readme.py`'s rewrite, on a README whose blocks are all current (made
    here: its first assertion was `rewrite(README) == README or README is stale`, true whatever
    rewrite did to a stale README; README itself is checked by the two tests above)."""
    current = rewrite(README)
    assert all(_block(m, current).strip() == b for m, b in generated().items())
    assert rewrite(current) == current  # nothing to do: nothing changes, not even whitespace
    stale = current.replace(_block("signatures", current), "\n| old | table |\n", 1)
    assert stale != current and rewrite(stale) == current  # the stale block only, and all of it


def test_detection_table_has_one_row_per_registered_detector():
    table = README.split("## Detections")[1].split("\n\n| type |")[1].split("\n\n")[0]
    rows = [line.split("|")[1].strip().strip("`") for line in table.splitlines()[2:]]
    assert sorted(rows) == sorted(registry.names()), "README's detection table: one row per registered detector"


if __name__ == "__main__":
    fresh = rewrite(README)
    if fresh != README:
        (ROOT / "README.md").write_text(fresh)
    print("README.md: generated blocks", "rewritten" if fresh != README else "already current")
