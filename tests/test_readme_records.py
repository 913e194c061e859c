"""The README's figures follow from what a fresh clone holds: the records, the cards and the
benchmark tables, without the real data beside the checkout (tests/test_readme.py checks them
with it, where it is there)."""

from pathlib import Path

from spine import readme
from spine.training.store import recorded_source

ROOT = Path(__file__).resolve().parents[1]
# Measured on the real volumes themselves, so left out without them (spine.readme._coverage_lines).
NEEDS_THE_VOLUMES = "`spine.transfer.lateral_coverage`"


def paragraphs(text: str) -> list[str]:
    return [paragraph.strip() for paragraph in text.split("\n\n") if paragraph.strip()]


def test_the_readme_figures_follow_from_the_records_without_the_data(tmp_path, monkeypatch):
    monkeypatch.setenv("SPINE_SHARED_DATA", str(tmp_path / "none"))
    monkeypatch.chdir(tmp_path)  # nothing found beside the working folder either
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    written = text[text.index(readme.README_BEGIN) + len(readme.README_BEGIN):text.index(readme.README_END)]
    store = ROOT / "results"
    block = readme.readme_block(store, recorded_source(store), ROOT / "benchmarks" / "results")
    assert paragraphs(block) == [paragraph for paragraph in paragraphs(written) if NEEDS_THE_VOLUMES not in paragraph], \
        "README figures are stale: run spine.readme.update_readme (see the README)"
