"""The book: every chapter executes with papermill at the smoke profile and renders with Jupyter
Book 1 (warnings are errors), and each chapter's page carries its tables and figures and never an
empty section (no ``None``, no table without rows, no sentence ending in a colon with nothing after);
a failing chapter is named with its cell. The default book is tested in ``test_default_book.py``.

The real-data sections run when the real slices are present (``real_data``), and are skipped
by the chapters themselves otherwise.
"""

import re

import pytest

from spine import book

from books import book_copy, page_problems
from conftest import ROOT, T2SPACE_SLICES

NO_FIGURE = {"02_architectures"}  # a chapter of tables


@pytest.fixture(scope="module")
def html(tmp_path_factory):
    """The phantom book at the smoke profile, built in a copy of the sources (beside the default book)."""
    real = T2SPACE_SLICES if T2SPACE_SLICES.is_dir() else None
    root = book_copy(tmp_path_factory.mktemp("phantom-book") / "root")
    index = book.build(root, data="phantom", profile="smoke", store=tmp_path_factory.mktemp("book-store"),
                       max_new_runs=1, real_data=real)
    assert index.is_file()
    return index.parent


@pytest.mark.slow
@pytest.mark.parametrize("source", book.chapters(ROOT), ids=lambda p: p.stem)
def test_chapter_page_has_tables_and_figures(html, source):
    page = (html / "notebooks" / f"{source.stem}.html").read_text(encoding="utf-8")
    assert "<table" in page, f"{source.stem}: no table"
    if source.stem not in NO_FIGURE:
        assert re.search(r'<img [^>]*src="[^"]+\.png"', page), f"{source.stem}: no figure"
    assert "Traceback (most recent call last)" not in page


@pytest.mark.slow
@pytest.mark.parametrize("source", book.chapters(ROOT), ids=lambda p: p.stem)
def test_chapter_page_has_no_empty_section(html, source):
    assert page_problems((html / "notebooks" / f"{source.stem}.html").read_text(encoding="utf-8")) == []


def test_a_failing_chapter_is_named_with_its_cell_and_the_log(tmp_path, capfd):
    (tmp_path / "_config.yml").write_text("title: t\n")
    (tmp_path / "_toc.yml").write_text("format: jb-book\nroot: intro\nparts:\n- chapters:\n  - file: notebooks/01_broken\n")
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "notebooks" / "01_broken.py").write_text(
        "# ---\n# jupyter:\n#   kernelspec:\n#     display_name: Python 3\n#     language: python\n#     name: python3\n# ---\n\n"
        '# %% tags=["parameters"]\ndata = None\n\n# %%\nimport sys\nraise ValueError("no such record")\n')
    with pytest.raises(book.BookError) as raised:
        book.build(tmp_path, data="phantom", store=tmp_path / "store", html=False)
    message = str(raised.value)
    assert message.startswith("notebooks/01_broken.py failed at cell In [3] (`import sys`): ValueError: no such record")
    assert "ValueError" in message.splitlines()[-1] and f"lines of {tmp_path / book.LOG}:" in message
    printed = capfd.readouterr()
    assert re.fullmatch(r"01_broken +failed +\d\d:\d\d", printed.err.split("\r")[-1].strip()), printed.err


PAGE = """<article class="bd-article"><section><h1>Title</h1>{}</section></article>"""
CELL = """<div class="cell tag_remove-input"><div class="cell_output docutils container">{}</div></div>"""
TABLE = "<table><thead><tr><th>a</th></tr></thead><tbody>{}</tbody></table>"


@pytest.mark.parametrize("body, problem", [
    ("<p>The runs:</p>" + CELL.format(TABLE.format("<tr><td>1</td></tr>")), None),
    ("<p>Two layers:</p><ul><li>one</li></ul>", None),
    ("<p>The maps:</p>" + CELL.format('<img src="a.png">'), None),
    ("<p>A sentence.</p><p>Another one.</p>", None),
    ('<p>The code:</p><div class="cell tag_hide-input"><div class="cell_input"><pre><span>x</span> = '
     '<span class="kc">None</span></pre></div><div class="cell_output">x is unset</div></div>', None),
    ("<p>The split of the seed-0 runs:</p><section><h2>Next</h2></section>", "nothing after"),
    ("<p>The split of the seed-0 runs:</p>", "nothing after"),
    ("<p>The runs:</p><p>Next sentence.</p>", "nothing after"),
    ("<p>The runs:</p>" + CELL.format(""), "nothing after"),
    ("<p>The runs:</p>" + CELL.format(TABLE.format("")), "table without rows"),
    ("<p>The runs:</p>" + CELL.format(TABLE.format("<tr><td>None</td></tr>")), "text 'None'"),
    ("<p>The runs:</p>" + CELL.format("<pre>None</pre>"), "text 'None'"),
])
def test_page_problems_finds_each_kind_of_empty_section(body, problem):
    """Hand-made pages in Jupyter Book's markup: the check passes the sound ones and names the fault."""
    found = page_problems(PAGE.format(body))
    assert (found == []) if problem is None else (len(found) == 1 and found[0].startswith(problem)), found


def test_every_chapter_has_a_parameters_cell():
    for source in book.chapters(ROOT):
        text = source.read_text(encoding="utf-8")
        assert re.search(r'^# %% tags=\["parameters"', text, re.M), source.name
        for name in ("data", "profile", "store", "max_new_runs", "real_data"):
            assert re.search(rf"^{name} = ", text, re.M), f"{source.name}: parameter {name}"


