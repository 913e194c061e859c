"""The default book (``spine book``: the records, nothing trained), built once per test session
for the tests that read it, since it takes minutes: import ``default_book`` as a fixture."""

import functools
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
from bs4 import BeautifulSoup

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def default_book(tmp_path_factory) -> Path:
    """A folder with the executed chapters (``<chapter>.ipynb``), the pages (``html/``) and what
    ``spine book`` printed (``output.txt``, stdout and stderr as a terminal interleaves them; its
    seconds in ``seconds.txt``)."""
    return _build(tmp_path_factory.getbasetemp())


@functools.cache  # one build, whichever test module asks first
def _build(temporary: Path) -> Path:
    """``spine book`` as on a fresh clone, without the real data beside the checkout; the chapters
    and pages are copied, since the phantom build of tests/test_book.py overwrites them."""
    folder = temporary / "default-book"
    folder.mkdir()
    environment = dict(os.environ, SPINE_SHARED_DATA=str(folder / "no-shared-data"))
    started = time.perf_counter()
    done = subprocess.run([Path(sys.executable).with_name("spine"), "book"], cwd=ROOT, env=environment,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT)  # bytes: text mode would turn \r into \n
    (folder / "seconds.txt").write_text(f"{time.perf_counter() - started:.0f}\n")
    (folder / "output.txt").write_bytes(done.stdout)
    assert done.returncode == 0, done.stdout.decode()
    for notebook in (ROOT / "notebooks").glob("*.ipynb"):
        shutil.copy(notebook, folder)
    shutil.copytree(ROOT / "_build" / "html", folder / "html")
    return folder


def book_copy(folder: Path) -> Path:
    """The book's sources copied into ``folder`` (the records linked, not copied): a build there
    writes nothing into the checkout, so it can run beside the default book's, which does."""
    shutil.copytree(ROOT, folder, ignore=shutil.ignore_patterns(".git", ".venv", "_build", "results", "colab",
                                                               "*.ipynb", "__pycache__", "*.egg-info", ".cache"))
    (folder / "results").symlink_to(ROOT / "results", target_is_directory=True)
    return folder


def shown(notebook: Path) -> list[str]:
    """What a notebook's outputs show a reader, figures aside: each table as its rows of cell
    texts (pandas' styled tables carry random ids), each Markdown output as written."""
    seen = []
    for cell in nbformat.read(notebook, as_version=4).cells:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if "text/html" in data:
                for table in BeautifulSoup(data["text/html"], "html.parser").find_all("table"):
                    seen.append("table: " + " | ".join(" ".join(row.get_text(" ").split()) for row in table.find_all("tr")))
            elif "text/markdown" in data:
                seen.append(data["text/markdown"])
    return seen


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
