"""README stays true: every CLI option and config key is documented, and CI runs its test command."""

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


def test_config_tables_match_the_defaults():
    block = README.split("<!-- config-keys:")[1].split("-->", 1)[1].split("<!-- /config-keys -->")[0]
    assert block.strip() == config.markdown().strip(), "regenerate README's config tables from config.markdown()"


def _block(marker: str) -> str:
    return README.split(f"<!-- {marker}:")[1].split("-->", 1)[1].split(f"<!-- /{marker} -->")[0]


def test_signature_table_matches_the_registry():
    assert _block("signatures").strip() == registry.signatures_markdown(), \
        "regenerate README's signature table from registry.signatures_markdown()"


def test_detection_table_has_one_row_per_registered_detector():
    table = README.split("## Detections")[1].split("\n\n| type |")[1].split("\n\n")[0]
    rows = [line.split("|")[1].strip().strip("`") for line in table.splitlines()[2:]]
    assert sorted(rows) == sorted(registry.names()), "README's detection table: one row per registered detector"
