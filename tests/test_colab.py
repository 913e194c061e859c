"""Every chapter opens on Colab: the launch button's notebooks, the guarded first cell, and the
records found outside the checkout, as after ``pip install git+...`` on Colab."""

import importlib.util
import json
import os
import re
import subprocess
import sys
import sysconfig
import types
from pathlib import Path

import pytest

jupytext = pytest.importorskip("jupytext")  # the book extra
yaml = pytest.importorskip("yaml")

from spine import book, colab  # noqa: E402  (needs the book extra too)
from spine.errors import ConfigError  # noqa: E402

from books import default_book, shown  # noqa: E402,F401  (default_book: a fixture)

ROOT = Path(__file__).resolve().parents[1]
CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))
URL = f"{CONFIG['repository']['url']}@{CONFIG['repository']['branch']}"
COLAB = ROOT / CONFIG["repository"]["path_to_book"]


def first_cell(notebook: Path) -> str:
    return jupytext.read(notebook).cells[0].source


def colab_copy(source: Path) -> Path:
    return COLAB / source.relative_to(ROOT).with_suffix(".ipynb")


def test_the_repository_is_one_setting_of_config_that_only_the_colab_copies_spell_out():
    assert book.repository(ROOT) == URL
    assert {first_cell(source) for source in book.chapters(ROOT)} == {first_cell(book.chapters(ROOT)[0])}
    for source in book.chapters(ROOT):
        assert book.REPOSITORY in first_cell(source) and CONFIG["repository"]["url"] not in source.read_text(encoding="utf-8")
        assert f'REPOSITORY = "{URL}"' in first_cell(colab_copy(source)), source.name
    assert CONFIG["launch_buttons"]["colab_url"] == "https://colab.research.google.com"


def test_colab_notebooks_are_the_chapters_without_outputs(tmp_path):
    """The Colab buttons open colab/notebooks/<chapter>.ipynb; regenerate with spine.book.colab_notebooks('.')."""
    fresh = book.colab_notebooks(ROOT, tmp_path)
    assert sorted(path.name for path in (COLAB / "notebooks").glob("*.ipynb")) == sorted(path.name for path in fresh)
    for path in fresh:
        committed, expected = jupytext.read(COLAB / "notebooks" / path.name), jupytext.read(path)
        assert [(c.cell_type, c.source, c.metadata.get("tags")) for c in committed.cells] == \
               [(c.cell_type, c.source, c.metadata.get("tags")) for c in expected.cells], \
            f"colab/notebooks/{path.name} differs from its chapter: run spine.book.colab_notebooks('.')"
        assert all(not c.get("outputs") for c in committed.cells)


def test_every_chapter_reads_the_records_through_spine_colab_records():
    for source in book.chapters(ROOT):
        parameters = jupytext.read(source).cells[1]
        assert "parameters" in parameters.metadata["tags"], source.name
        assert re.search(r'^store = records\("results"\)', parameters.source, re.M), source.name
        assert '"../' not in parameters.source, f"{source.name}: a path relative to the checkout"


def test_records_are_the_checkouts_where_spine_runs_from_one_else_the_installed_copy(monkeypatch, tmp_path):
    assert colab.records("results") == str(ROOT / "results")
    package = tmp_path / "site-packages" / "spine"
    monkeypatch.setattr(colab, "PACKAGE", package)
    monkeypatch.setattr(colab, "SHIPPED", package / "_records")
    with pytest.raises(ConfigError, match="holds no results"):
        colab.records("results")
    (package / "_records" / "results").mkdir(parents=True)
    assert colab.records("results") == str(package / "_records" / "results")


@pytest.fixture
def pip(monkeypatch):
    """Records pip commands instead of running them."""
    calls, real_run = [], subprocess.run

    def run(command, *args, **kwargs):
        if command[1:3] == ["-m", "pip"]:
            return calls.append(command)
        return real_run(command, *args, **kwargs)  # TensorFlow starts processes of its own

    monkeypatch.setattr(subprocess, "run", run)
    return calls


def run_cell(cell: str, monkeypatch, spine_installed: bool):
    """Execute the cell as a fresh Colab kernel would: ``google.colab`` importable, and ``spine``
    importable or not."""
    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "spine" and not spine_installed else real_find_spec(name, *a))
    namespace = {}
    exec(compile(cell, "<first cell>", "exec"), namespace)
    return namespace


def test_where_spine_is_installed_the_cell_installs_nothing_and_prints_nothing(pip, monkeypatch, capsys):
    namespace = run_cell(first_cell(colab_copy(book.chapters(ROOT)[0])), monkeypatch, spine_installed=True)
    assert pip == [] and capsys.readouterr().out == ""
    assert namespace["records"] is colab.records


def test_on_colab_the_cell_installs_spine_without_tensorflow_and_names_the_device(pip, monkeypatch, capsys):
    run_cell(first_cell(colab_copy(book.chapters(ROOT)[0])), monkeypatch, spine_installed=False)
    (command,) = pip
    assert command[:4] == [sys.executable, "-m", "pip", "install"]
    (package,) = [arg for arg in command if arg.startswith("spine")]
    assert package == f"spine[book] @ git+{URL}"  # no cpu/gpu extra: Colab's TF stays
    printed = capsys.readouterr().out
    assert printed.startswith("TensorFlow ") and "will use the CPU" in printed  # this machine has no GPU


def test_setup_fetches_spider_when_asked_and_warns_of_two_tensorflows(monkeypatch, caplog):
    from spine.data import fetch

    fetched = []
    monkeypatch.setattr(fetch, "fetch_spider", lambda *a, **k: fetched.append(True))
    monkeypatch.setattr(colab, "tensorflow_packages", lambda: ["tensorflow", "tensorflow-cpu"])
    assert "will use" in colab.setup(fetch_spider=True)
    assert fetched == [True] and "several TensorFlow packages" in caplog.text


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
