"""Every chapter opens on Colab: the launch button's notebooks, and the guarded first cell."""

import importlib.util
import subprocess
import sys
import types
from pathlib import Path

import pytest

jupytext = pytest.importorskip("jupytext")  # the book extra
yaml = pytest.importorskip("yaml")

from spine import book  # noqa: E402  (needs the book extra too)

ROOT = Path(__file__).resolve().parents[1]
CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text())


def first_cell(source: Path) -> str:
    return jupytext.read(source).cells[0].source


def test_every_chapter_opens_with_the_same_guarded_cell_installing_from_the_configured_repository():
    cells = {first_cell(source) for source in book.chapters(ROOT)}
    assert len(cells) == 1
    (cell,) = cells
    assert f"git+{CONFIG['repository']['url']}" in cell
    assert CONFIG["launch_buttons"]["colab_url"] == "https://colab.research.google.com"


def test_colab_notebooks_are_the_chapters_without_outputs():
    """The Colab buttons open colab/<chapter>.ipynb; regenerate with spine.book.colab_notebooks('.')."""
    for source in book.chapters(ROOT):
        committed = ROOT / CONFIG["repository"]["path_to_book"] / source.relative_to(ROOT).with_suffix(".ipynb")
        assert committed.is_file(), f"{committed} missing: run spine.book.colab_notebooks('.')"
        expected, actual = jupytext.read(source), jupytext.read(committed)
        assert [(c.cell_type, c.source, c.metadata.get("tags")) for c in actual.cells] == \
               [(c.cell_type, c.source, c.metadata.get("tags")) for c in expected.cells], \
            f"{committed} differs from {source}: run spine.book.colab_notebooks('.')"
        assert all(not c.get("outputs") for c in actual.cells)


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
    exec(compile(cell, "<first cell>", "exec"), {})


def test_the_cell_does_nothing_where_spine_is_installed(pip, monkeypatch, capsys):
    run_cell(first_cell(book.chapters(ROOT)[0]), monkeypatch, spine_installed=True)
    assert pip == [] and capsys.readouterr().out == ""


def test_on_colab_the_cell_installs_spine_without_tensorflow_and_names_the_device(pip, monkeypatch, capsys):
    run_cell(first_cell(book.chapters(ROOT)[0]), monkeypatch, spine_installed=False)
    (command,) = pip
    assert command[:4] == [sys.executable, "-m", "pip", "install"]
    (package,) = [arg for arg in command if arg.startswith("spine")]
    assert package == f"spine[book] @ git+{CONFIG['repository']['url']}"  # no cpu/gpu extra: Colab's TF stays
    printed = capsys.readouterr().out
    assert printed.startswith("TensorFlow ") and "will use the CPU" in printed  # this machine has no GPU


def test_setup_fetches_spider_when_asked_and_warns_of_two_tensorflows(monkeypatch, caplog):
    from spine import colab
    from spine.data import fetch

    fetched = []
    monkeypatch.setattr(fetch, "fetch_spider", lambda *a, **k: fetched.append(True))
    monkeypatch.setattr(colab, "tensorflow_packages", lambda: ["tensorflow", "tensorflow-cpu"])
    assert "will use" in colab.setup(fetch_spider=True)
    assert fetched == [True] and "several TensorFlow packages" in caplog.text
