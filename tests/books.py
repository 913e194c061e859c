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
