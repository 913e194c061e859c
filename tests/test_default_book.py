"""The default book as a person runs it (``spine book`` in the checkout: the records, nothing
trained): a line per chapter, pages with their tables and no empty section, outputs without library
warnings; and its Colab copies, run on spine installed from a wheel, showing what the book shows.

Every test that writes into the checkout's ``_build`` or ``notebooks/`` lives here, so that CI's
``pytest -n 2 --dist loadfile`` runs them on one worker, in turn (the phantom book of
``test_book.py`` builds in a copy).
"""

import json
import os
import re
import subprocess
import sys
import sysconfig
from pathlib import Path

import nbformat
import pytest

jupytext = pytest.importorskip("jupytext")  # the book extra

from spine import book  # noqa: E402

from books import default_book, page_problems, shown  # noqa: E402,F401  (default_book: a fixture)
from conftest import ROOT  # noqa: E402
from test_colab import COLAB, colab_copy  # noqa: E402

# What the kernels and libraries print, which belongs in the log and never in a page.
NOISE = re.compile(r"oneDNN|absl|TF_CPP|IProgress|TqdmWarning|Kernel is running|cpu_feature_guard|Traceback")


@pytest.mark.slow
@pytest.mark.parametrize("source", book.chapters(ROOT), ids=lambda p: p.stem)
def test_default_book_page_has_tables_and_no_empty_section(default_book, source):
    page = (default_book / "html" / "notebooks" / f"{source.stem}.html").read_text(encoding="utf-8")
    assert "<table" in page, f"{source.stem}: no table"
    assert page_problems(page) == []


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


# Executed whole on the installed package: every record reaches a chapter through records() in its
# parameters cell (checked for every copy below), so one chapter per kind of record suffices: the
# study's runs with their predictions and test inputs (05), the benchmark tables (10).
EXECUTED = ("05_comparison", "10_performance")


@pytest.fixture(scope="module")
def colab_python(tmp_path_factory):
    """A Python as on Colab once the first cell has run: spine installed from a wheel built from
    this checkout (not editable), the other packages this venv's, ``google.colab`` a stand-in."""
    folder = tmp_path_factory.mktemp("colab")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                    "-w", folder / "wheel", ROOT], check=True, capture_output=True)
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", folder / "venv"], check=True)
    python = folder / "venv" / "bin" / "python"
    subprocess.run([sys.executable, "-m", "pip", "--python", python, "install", "-q", "--no-deps",
                    *(folder / "wheel").glob("spine-*.whl")], check=True, capture_output=True)
    site = Path(subprocess.check_output([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                        encoding="utf-8").strip())
    (site / "colab-dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")  # after spine's own folder
    (site / "google" / "colab").mkdir(parents=True)
    (site / "google" / "colab" / "__init__.py").write_text('"""A stand-in for Colab\'s module."""\n')
    return python


def colab_run(python: Path, *args, cwd: Path):
    """Run ``python`` in ``cwd`` outside the checkout, as a Colab kernel runs: no real data beside it."""
    environment = {name: value for name, value in os.environ.items() if name not in ("PYTHONPATH", "MPLBACKEND")}
    environment.update(PATH=f"{python.parent}{os.pathsep}{environment['PATH']}", SPINE_SHARED_DATA=str(cwd / "none"))
    return subprocess.run([python, *args], cwd=cwd, env=environment, check=True, capture_output=True, encoding="utf-8")


@pytest.mark.slow
def test_every_colab_copy_finds_the_records_installed_with_spine(colab_python, tmp_path):
    """The first two cells of every copy, on the installed package: the parameters point into it."""
    cells = [cell for source in book.chapters(ROOT) for cell in jupytext.read(colab_copy(source)).cells[:2]]
    cells.append(jupytext.reads("import json, spine\nprint(json.dumps([spine.__file__, store, measurements]))",
                                fmt="py:percent").cells[0])
    for number, cell in enumerate(cells):
        cell.id = f"cell-{number}"  # unique in the one notebook they make
    notebook = jupytext.reads("", fmt="py:percent")
    notebook.cells = cells
    jupytext.write(notebook, tmp_path / "first-cells.ipynb", fmt="ipynb")
    colab_run(colab_python, "-m", "papermill", "-k", "python3", "first-cells.ipynb", "out.ipynb", cwd=tmp_path)
    printed = json.loads(json.loads((tmp_path / "out.ipynb").read_text(encoding="utf-8"))["cells"][-1]["outputs"][0]["text"][0])
    package = Path(printed[0]).parent
    assert package.is_relative_to(colab_python.parents[1]), f"spine imported from {package}, not the wheel"
    assert printed[1:] == [str(package / "_records" / "results"), str(package / "_records" / "benchmarks" / "results")]


@pytest.mark.slow
@pytest.mark.parametrize("chapter", EXECUTED)
def test_a_colab_copy_shows_what_the_book_shows(colab_python, default_book, tmp_path, chapter):
    colab_run(colab_python, "-m", "papermill", "-k", "python3", str(COLAB / "notebooks" / f"{chapter}.ipynb"),
              "out.ipynb", cwd=tmp_path)
    in_book = shown(default_book / f"{chapter}.ipynb")
    assert any(output.startswith("table: ") for output in in_book), f"{chapter}: the book shows no table"
    assert shown(tmp_path / "out.ipynb") == in_book
