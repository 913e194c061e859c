"""The README's figures are the ones the records, the cards and the benchmark tables give today."""

from pathlib import Path

import pytest

from spine import report

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.real
def test_the_readme_figures_are_current(t2space_slices):
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    start = text.index(report.README_BEGIN) + len(report.README_BEGIN)
    written = text[start:text.index(report.README_END)]
    expected = "\n" + report.readme_block(ROOT / "results", t2space_slices, ROOT / "benchmarks" / "results")
    assert written == expected, "README figures are stale: run spine.report.update_readme (see the README)"
