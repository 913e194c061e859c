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
records. Every page says which in its first line (``spine.book_data.banner``).

What a person sees: a progress line per chapter and the path of the log (``_build/book.log``),
where the kernels' and libraries' output goes; the chapters' outputs carry none of it.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import yaml

from spine.errors import ConfigError, SpineError

ROOT_FILES = ("_config.yml", "_toc.yml")
COLAB_FOLDER = "colab"
LOG = Path("_build") / "book.log"  # under the book's root: the kernels' and libraries' output
LOG_TAIL = 20  # lines of the log shown when a chapter fails
REPOSITORY = "<repository.url@branch of _config.yml>"  # in each chapter's first cell; the Colab copies get the URL
# The kernels' environment. The inline backend: a headless MPLBACKEND (Agg) would keep every figure
# out of the pages. tqdm.auto warns on import in a kernel without ipywidgets, and a page shows no
# progress bar anyway.
KERNEL_ENVIRONMENT = {"MPLBACKEND": "module://matplotlib_inline.backend_inline", "TF_CPP_MIN_LOG_LEVEL": "3",
                      "PYTHONWARNINGS": "ignore:IProgress not found"}
# Output written below Python (TensorFlow's C++ start-up lines) goes to the kernel's stderr, which
# is the log, instead of into the notebook.
KERNEL_ARGUMENTS = ["--IPKernelApp.capture_fd_output=False"]


class BookError(SpineError):
    """A chapter, or the HTML build, failed: the message names it and ends with the log's last lines."""


def chapters(root=".") -> list[Path]:
    """The notebook sources named in ``_toc.yml``, in order."""
    root = Path(root)
    toc = yaml.safe_load((root / "_toc.yml").read_text())
    files = [entry["file"] for part in toc.get("parts", []) for entry in part.get("chapters", [])]
    return [root / f"{name}.py" for name in files if name.startswith("notebooks/")]


def repository(root=".") -> str:
    """The one repository setting, ``repository.url`` at ``repository.branch`` in ``_config.yml``:
    the pages' Colab buttons open it, and the Colab copies install spine from it."""
    settings = yaml.safe_load((Path(root) / "_config.yml").read_text())["repository"]
    return f"{settings['url']}@{settings['branch']}"


def colab_notebooks(root=".", target=None) -> list[Path]:
    """Write each chapter, without outputs, to ``<target>/notebooks/<name>.ipynb`` (``target``:
    ``colab/`` of ``root``), its first cell installing spine from :func:`repository`: where the
    pages' Colab buttons point (``repository.path_to_book: colab`` in ``_config.yml``), since a build
    overwrites the ``.ipynb`` beside each source with its executed copy."""
    import jupytext

    root = Path(root)
    target = Path(target or root / COLAB_FOLDER)
    url = repository(root)
    written = []
    for source in chapters(root):
        notebook = jupytext.read(source)
        notebook.cells[0].source = notebook.cells[0].source.replace(REPOSITORY, url)
        for number, cell in enumerate(notebook.cells):  # stable ids: a regenerated copy differs only where its source does
            cell.id = f"cell-{number}"
        written.append(target / source.relative_to(root).with_suffix(".ipynb"))
        written[-1].parent.mkdir(parents=True, exist_ok=True)
        jupytext.write(notebook, written[-1], fmt="ipynb")
    return written


def execute(source: Path, parameters: dict) -> Path:
    """Pair ``source`` to a fresh ``.ipynb`` and execute it in place with papermill."""
    import jupytext
    import papermill

    notebook = source.with_suffix(".ipynb")
    jupytext.write(jupytext.read(source), notebook, fmt="ipynb")
    papermill.execute_notebook(str(notebook), str(notebook), parameters=parameters, cwd=str(source.parent),
                               progress_bar=False, kernel_name="python3", extra_arguments=KERNEL_ARGUMENTS)
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
    from spine.book_data import RECORDS_PROFILE

    return "book" if str(data).startswith("phantom") else RECORDS_PROFILE


def build(root=".", *, data=None, profile=None, store="results", max_new_runs=None,
          real_data=None, only=None, html=True) -> Path:
    """Execute the chapters (all, or those whose name contains one of ``only``) and render HTML.

    ``data=None`` or ``"recorded"`` (the default) shows the real-data records of ``store`` and
    trains nothing; ``"phantom"`` re-executes the study on the phantom at ``profile`` (default
    ``book``), training what the store lacks (at most ``max_new_runs`` per chapter); a data folder
    reads, and fills, its records at ``profile`` (default ``cpu``).

    Prints a line per chapter (time and status) and the log's path on stderr; everything else the
    kernels and libraries print goes to the log (``_build/book.log``). A failure raises
    :class:`BookError` naming the chapter, its cell and the log's last lines."""
    root = Path(root).resolve()
    missing = [name for name in ROOT_FILES if not (root / name).is_file()]
    if missing:
        raise ConfigError(f"{root}: not the book's root (missing {', '.join(missing)})")
    sources = [source for source in chapters(root) if not only or any(key in source.stem for key in only)]
    log_path = root / LOG
    log_path.parent.mkdir(exist_ok=True)
    with _output_to(log_path) as terminal, _environment(KERNEL_ENVIRONMENT):
        parameters = _parameters(data, profile, store, max_new_runs, real_data)  # imports TensorFlow: logged
        for source in sources:
            with _step(source.stem, terminal):
                try:
                    execute(source, parameters)
                except Exception as error:  # noqa: BLE001  (any failure is the chapter's, shown with the log)
                    raise BookError(_failure(source.relative_to(root), error, log_path)) from error
        if html:
            jupyter_book = Path(sys.executable).with_name("jupyter-book")
            with _step("HTML", terminal):
                try:
                    subprocess.run([str(jupyter_book), "build", str(root), "--warningiserror", "--keep-going",
                                    "--quiet"], check=True)
                except subprocess.CalledProcessError as error:
                    raise BookError(_failure("the HTML build (jupyter-book)", error, log_path)) from error
        print(f"log: {log_path}", file=terminal)
    return root / "_build" / "html" / "index.html"


def _parameters(data, profile, store, max_new_runs, real_data) -> dict:
    """The chapters' papermill parameters, paths absolute: the chapters run in ``notebooks/``."""
    from spine.data import resolve_source
    from spine.training.store import RECORDED

    data = data or RECORDED
    profile = profile or default_profile(data)
    if str(data) == RECORDED:
        max_new_runs = 0  # the records are read, never trained
    elif not str(data).startswith("phantom"):
        data = Path(resolve_source(data)).resolve()
        real_data = real_data or data  # a book built on real data shows it in the real-data sections too
    return {"data": str(data), "profile": profile, "store": str(Path(store).resolve()),
            "max_new_runs": max_new_runs, "real_data": str(Path(real_data).resolve()) if real_data else None}


@contextmanager
def _step(name: str, terminal):
    """One progress line: the step's name, then ``ok`` or ``failed``, and its time."""
    from tqdm import tqdm

    with tqdm(desc=f"{name:<18} running", bar_format="{desc}  {elapsed}", file=terminal) as bar:
        try:
            yield
        except BaseException:
            bar.set_description_str(f"{name:<18} failed ")
            raise
        bar.set_description_str(f"{name:<18} ok     ")


@contextmanager
def _output_to(log_path: Path):
    """Send everything written to stdout and stderr, by this process and the kernels it starts, to
    ``log_path``; yield a stream to the terminal (the former stderr) for the progress lines."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = {fd: os.dup(fd) for fd in (1, 2)}
    terminal = os.fdopen(os.dup(saved[2]), "w", buffering=1)
    with open(log_path, "w") as log_file:
        for fd in saved:
            os.dup2(log_file.fileno(), fd)
        try:
            yield terminal
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            for fd, copy in saved.items():
                os.dup2(copy, fd)
                os.close(copy)
            terminal.close()


@contextmanager
def _environment(values: dict):
    """``os.environ`` updated with ``values`` (what the kernels inherit), then restored."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name)
            else:
                os.environ[name] = value


def _failure(what, error, log_path: Path) -> str:
    """What failed (for a chapter, the cell and its error), then the last lines of the log."""
    cell = getattr(error, "exec_count", None)
    if cell is not None:  # papermill's PapermillExecutionError: a cell raised
        first_line = (error.source.strip().splitlines() or [""])[0]
        with open(log_path, "a") as log_file:
            log_file.write(_plain("\n".join(error.traceback)) + "\n")
        problem = f"cell In [{cell}] (`{first_line}`): {error.ename}: {error.evalue}"
    else:
        problem = f"{type(error).__name__}: {error}"
    tail = log_path.read_text(errors="replace").splitlines()[-LOG_TAIL:]
    return "\n".join([f"{what} failed at {problem}", f"last {len(tail)} lines of {log_path}:", *tail])


def _plain(text: str) -> str:
    """``text`` without terminal colour codes (papermill keeps the kernel's)."""
    return re.sub(r"\x1b\[[0-9;]*m", "", text)
