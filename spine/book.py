"""Building the book: execute every chapter with papermill, then render with Jupyter Book 1.

Chapters are jupytext ``py:percent`` notebooks in ``notebooks/``, listed in ``_toc.yml``. Each
has a papermill ``parameters`` cell (``data``, ``profile``, ``store``, ``max_new_runs``,
``real_data``); :func:`build` writes a fresh ``.ipynb`` beside each source, executes it on a new
kernel with the given parameters (a failing cell fails the build), and runs ``jupyter-book
build`` with warnings as errors.

Which data: by default (``data="recorded"``) the study's chapters show the real-data records
committed in the store and train nothing (what must execute, the data pipeline and whole-volume
inference, runs on the phantom); ``data="phantom"`` re-executes the study on the phantom, training
what the store lacks (at most ``max_new_runs`` per chapter); a data folder reads and fills its
records. Every page says which in its first line (``spine.report.data_banner``).
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import yaml

from spine.data import resolve_source
from spine.errors import ConfigError
from spine.report import RECORDS_PROFILE
from spine.training.store import RECORDED

log = logging.getLogger(__name__)

ROOT_FILES = ("_config.yml", "_toc.yml")
COLAB_FOLDER = "colab"


def chapters(root=".") -> list[Path]:
    """The notebook sources named in ``_toc.yml``, in order."""
    root = Path(root)
    toc = yaml.safe_load((root / "_toc.yml").read_text())
    files = [entry["file"] for part in toc.get("parts", []) for entry in part.get("chapters", [])]
    return [root / f"{name}.py" for name in files if name.startswith("notebooks/")]


def colab_notebooks(root=".") -> list[Path]:
    """Write each chapter, without outputs, to ``colab/notebooks/<name>.ipynb``: where the pages' Colab
    buttons point (``repository.path_to_book: colab`` in ``_config.yml``), since a build
    overwrites the ``.ipynb`` beside each source with its executed copy."""
    import jupytext

    root = Path(root)
    written = []
    for source in chapters(root):
        target = root / COLAB_FOLDER / source.relative_to(root).with_suffix(".ipynb")
        target.parent.mkdir(parents=True, exist_ok=True)
        notebook = jupytext.read(source)
        for number, cell in enumerate(notebook.cells):  # stable ids: a regenerated copy differs only where its source does
            cell.id = f"cell-{number}"
        jupytext.write(notebook, target, fmt="ipynb")
        written.append(target)
    return written


def execute(source: Path, parameters: dict) -> Path:
    """Pair ``source`` to a fresh ``.ipynb`` and execute it in place with papermill."""
    import jupytext
    import papermill

    notebook = source.with_suffix(".ipynb")
    jupytext.write(jupytext.read(source), notebook, fmt="ipynb")
    papermill.execute_notebook(str(notebook), str(notebook), parameters=parameters, cwd=str(source.parent),
                               progress_bar=False, kernel_name="python3")
    _remove_injected_parameters(notebook)
    return notebook


def _remove_injected_parameters(notebook: Path) -> None:
    """Keep papermill's injected cell out of the page: each chapter's provenance table already
    says which data, profile and seeds made its results."""
    import nbformat

    executed = nbformat.read(notebook, as_version=4)
    for cell in executed.cells:
        tags = cell.metadata.setdefault("tags", [])
        if "injected-parameters" in tags and "remove-cell" not in tags:
            tags.append("remove-cell")
    nbformat.write(executed, notebook)


def default_profile(data) -> str:
    """The profile a book on ``data`` uses unless told: ``book`` on the phantom, else the real-data
    records' (``cpu``)."""
    return "book" if str(data).startswith("phantom") else RECORDS_PROFILE


def build(root=".", *, data=RECORDED, profile=None, store="results", max_new_runs=None,
          real_data=None, only=None, html=True) -> Path:
    """Execute the chapters (all, or those whose name contains one of ``only``) and render HTML.

    ``data="recorded"`` (the default) shows the real-data records of ``store`` and trains nothing;
    ``"phantom"`` re-executes the study on the phantom at ``profile`` (default ``book``), training
    what the store lacks (at most ``max_new_runs`` per chapter); a data folder reads, and fills, its
    records at ``profile`` (default ``cpu``)."""
    root = Path(root).resolve()
    missing = [name for name in ROOT_FILES if not (root / name).is_file()]
    if missing:
        raise ConfigError(f"{root}: not the book's root (missing {', '.join(missing)})")
    profile = profile or default_profile(data)
    if str(data) == RECORDED:
        max_new_runs = 0  # the records are read, never trained
    elif not str(data).startswith("phantom"):
        data = Path(resolve_source(data)).resolve()  # the chapters run in notebooks/, not where the path was given
        real_data = real_data or data  # a book built on real data shows it in the real-data sections too
    parameters = {"data": str(data), "profile": profile, "store": str(Path(store).resolve()),
                  "max_new_runs": max_new_runs, "real_data": str(Path(real_data).resolve()) if real_data else None}
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    # The kernels inherit this environment: a headless MPLBACKEND (Agg) would keep every figure
    # out of the notebooks' outputs, so the chapters always get the notebook's inline backend.
    backend = os.environ.get("MPLBACKEND")
    os.environ["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"
    try:
        for source in chapters(root):
            if only and not any(key in source.stem for key in only):
                continue
            log.info("executing %s", source.relative_to(root))
            execute(source, parameters)
    finally:
        if backend is None:
            os.environ.pop("MPLBACKEND")
        else:
            os.environ["MPLBACKEND"] = backend
    if html:
        jupyter_book = Path(sys.executable).with_name("jupyter-book")
        subprocess.run([str(jupyter_book), "build", str(root), "--warningiserror", "--keep-going", "--quiet"],
                       check=True)
    return root / "_build" / "html" / "index.html"
