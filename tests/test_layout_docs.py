"""The layout the docs draw is the layout of the code: every package of src/therapy_scheduler is named in
the README's layout block and in docs/ARCHITECTURE.md, and neither names a package that does not exist."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "therapy_scheduler"


def _packages() -> set[str]:
    return {p.parent.name for p in PACKAGE.glob("*/__init__.py")}


def _named(block: str) -> set[str]:
    return set(re.findall(r"(?:^|\s)([a-z_]+)/(?=\s)", block, flags=re.M))


def _readme_block() -> str:
    text = (ROOT / "README.md").read_text()
    layout = text[text.index("## Project layout") :]
    return layout.split("```")[1]


def _architecture_block() -> str:
    text = (ROOT / "docs" / "ARCHITECTURE.md").read_text()
    return text.split("```")[1]


def test_readme_layout_names_every_package() -> None:
    named = _named(_readme_block()) - {"src", "tests", "bench"}
    assert named == _packages()


def test_architecture_names_every_package() -> None:
    named = _named(_architecture_block()) - {"therapy_scheduler", "rules", "queries", "routes"}
    assert named == _packages()
