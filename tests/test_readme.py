"""The README's figures are the ones the records, the cards and the benchmark tables give today."""

from pathlib import Path

import pytest

from spine import readme

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.real
def test_the_readme_figures_are_current(t2space_slices):
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    start = text.index(readme.README_BEGIN) + len(readme.README_BEGIN)
    written = text[start:text.index(readme.README_END)]
    expected = "\n" + readme.readme_block(ROOT / "results", t2space_slices, ROOT / "benchmarks" / "results")
    assert written == expected, "README figures are stale: run spine.readme.update_readme (see the README)"
