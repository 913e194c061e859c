"""Every chapter opens on Colab: the launch button's notebooks, the guarded first cell, and where
the records are found. The copies run on spine installed from a wheel are in ``test_default_book.py``."""

import importlib.util
import re
import subprocess
import sys
import types
from pathlib import Path

import pytest

jupytext = pytest.importorskip("jupytext")  # the book extra
yaml = pytest.importorskip("yaml")

from spine import book, colab  # noqa: E402  (needs the book extra too)
from spine.errors import ConfigError  # noqa: E402

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


