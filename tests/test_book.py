"""The book: every chapter executes with papermill at the smoke profile and renders with Jupyter
Book 1 (warnings are errors), and each chapter's page carries its tables and figures.

The real-data sections run when the real slices are present (``real_data``), and are skipped
by the chapters themselves otherwise.
"""

import re

import pytest

from spine import book

from conftest import ROOT, T2SPACE_SLICES

pytestmark = pytest.mark.slow
NO_FIGURE = {"02_architectures"}  # a chapter of tables


@pytest.fixture(scope="module")
def html(tmp_path_factory):
    real = T2SPACE_SLICES if T2SPACE_SLICES.is_dir() else None
    index = book.build(ROOT, data="phantom", profile="smoke", store=tmp_path_factory.mktemp("book-store"),
                       max_new_runs=1, real_data=real)
    assert index.is_file()
    return index.parent


@pytest.mark.parametrize("source", book.chapters(ROOT), ids=lambda p: p.stem)
def test_chapter_page_has_tables_and_figures(html, source):
    page = (html / "notebooks" / f"{source.stem}.html").read_text()
    assert "<table" in page, f"{source.stem}: no table"
    if source.stem not in NO_FIGURE:
        assert re.search(r'<img [^>]*src="[^"]+\.png"', page), f"{source.stem}: no figure"
    assert "Traceback (most recent call last)" not in page


def test_every_chapter_has_a_parameters_cell():
    for source in book.chapters(ROOT):
        text = source.read_text()
        assert re.search(r'^# %% tags=\["parameters"', text, re.M), source.name
        for name in ("data", "profile", "store", "max_new_runs", "real_data"):
            assert re.search(rf"^{name} = ", text, re.M), f"{source.name}: parameter {name}"


def test_data_paths_reach_the_chapters_absolute(monkeypatch, tmp_path):
    """The chapters run in notebooks/: a relative data path given on the command line must reach
    them resolved, and a real source also fills the real-data sections."""
    seen = []
    monkeypatch.setattr(book, "execute", lambda source, parameters: seen.append(parameters))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "slices").mkdir()
    book.build(ROOT, data="slices", profile="smoke", store="store", only=["01_"], html=False)
    assert seen[0]["data"] == seen[0]["real_data"] == str(tmp_path / "slices")
    assert seen[0]["store"] == str(tmp_path / "store")
    seen.clear()
    book.build(ROOT, data="phantom", only=["01_"], html=False)
    assert seen[0]["data"] == "phantom" and seen[0]["real_data"] is None
