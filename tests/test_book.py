"""The book: every chapter executes with papermill at the smoke profile and renders with Jupyter
Book 1 (warnings are errors), and each chapter's page carries its tables and figures and never an
empty section (no ``None``, no table without rows, no sentence ending in a colon with nothing after).
The default book (``spine book``: the records) is built too, as a person runs it: a line per
chapter, chapters whose outputs carry no library warnings, and a failing chapter named with its cell.

The real-data sections run when the real slices are present (``real_data``), and are skipped
by the chapters themselves otherwise.
"""

import re

import nbformat
import pytest
from bs4 import BeautifulSoup

from spine import book

from books import default_book  # noqa: F401  (a fixture)
from conftest import ROOT, T2SPACE_SLICES

NO_FIGURE = {"02_architectures"}  # a chapter of tables


@pytest.fixture(scope="module")
def html(tmp_path_factory):
    real = T2SPACE_SLICES if T2SPACE_SLICES.is_dir() else None
    index = book.build(ROOT, data="phantom", profile="smoke", store=tmp_path_factory.mktemp("book-store"),
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


@pytest.mark.slow
@pytest.mark.parametrize("source", book.chapters(ROOT), ids=lambda p: p.stem)
def test_default_book_page_has_tables_and_no_empty_section(default_book, source):
    page = (default_book / "html" / "notebooks" / f"{source.stem}.html").read_text(encoding="utf-8")
    assert "<table" in page, f"{source.stem}: no table"
    assert page_problems(page) == []


# What the kernels and libraries print, which belongs in the log and never in a page.
NOISE = re.compile(r"oneDNN|absl|TF_CPP|IProgress|TqdmWarning|Kernel is running|cpu_feature_guard|Traceback")


@pytest.mark.slow
def test_spine_book_prints_a_line_per_chapter_and_the_log(default_book):
    # What a terminal shows: tqdm redraws a line after a carriage return.
    printed = [line.split("\r")[-1].rstrip() for line in (default_book / "output.txt").read_bytes().decode().split("\n")[:-1]]
    assert len(printed) <= 40, "\n".join(printed)
    assert not NOISE.search("\n".join(printed))
    for source in book.chapters(ROOT):
        assert any(re.search(rf"{source.stem} +ok +\d\d:\d\d$", line) for line in printed), source.stem
    assert printed[-2:] == [f"log: {ROOT / book.LOG}", str(ROOT / "_build" / "html" / "index.html")]


@pytest.mark.slow
@pytest.mark.parametrize("source", book.chapters(ROOT), ids=lambda p: p.stem)
def test_chapter_outputs_carry_no_library_warnings(default_book, source):
    executed = nbformat.read(default_book / f"{source.stem}.ipynb", as_version=4)
    streams = [output.get("text", "") for cell in executed.cells for output in cell.get("outputs", [])
               if output.output_type in ("stream", "error")]
    assert not [text for text in streams if NOISE.search(text)]


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


# What may follow a sentence that ends in a colon: the thing it announces.
CONTENT = {"table", "figure", "img", "ul", "ol", "dl", "pre", "blockquote", "div"}


def page_problems(page: str) -> list[str]:
    """What a rendered page shows empty: a text equal to ``None`` (outside code a reader can
    unfold), a table without body rows, a paragraph ending in a colon followed by nothing (the
    page's end, a heading, a new section, another paragraph, or a code cell with no visible output)."""
    soup = BeautifulSoup(page, "html.parser")
    article = soup.find("article") or soup
    problems = [f"text 'None' in <{text.parent.name}>" for text in article.find_all(string=True)
                if text.strip() == "None" and not text.find_parent(class_="cell_input")]  # code may say None
    problems += [f"table without rows after {_text(table.find_previous('p'))[-60:]!r}"
                 for table in article.find_all("table") if not table.select("tbody tr")]
    for paragraph in article.find_all("p"):
        if _text(paragraph).endswith(":"):
            following = paragraph.find_next_sibling()
            if following is None or following.name not in CONTENT or not _shows_something(following):
                problems.append(f"nothing after {_text(paragraph)[-60:]!r}")
    return problems


def _text(element) -> str:
    return " ".join(element.get_text(" ").split()) if element is not None else ""


def _shows_something(element) -> bool:
    """A list or table shows itself; a code cell only its output (an image, a table, or text)."""
    if "cell" not in (element.get("class") or []):
        return True
    outputs = element.select(".cell_output")
    return any(output.find(["img", "table"]) or _text(output) for output in outputs)


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
    assert seen[0]["data"] == "phantom" and seen[0]["real_data"] is None and seen[0]["profile"] == "book"
    seen.clear()
    book.build(ROOT, only=["01_"], html=False, max_new_runs=5)  # the default book: the records, never trained
    assert (seen[0]["data"], seen[0]["profile"], seen[0]["max_new_runs"]) == ("recorded", "cpu", 0)
