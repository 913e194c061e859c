"""Running a chapter on Colab: what each chapter's first two cells call once spine is installed.

The first cell only installs the package, from the repository of ``_config.yml``, with no
TensorFlow extra, so Colab's own GPU build of TensorFlow is left as it is (``spine[cpu]``
would add ``tensorflow-cpu``, a second package owning the same ``tensorflow`` module). Where
spine is already importable it installs nothing. The parameters cell finds the recorded runs
with :func:`records`: in the checkout spine runs from, else in the copy installed with spine
(``setup.py`` ships ``results/`` and ``benchmarks/results/`` as package data), so a chapter shows
the same records on Colab as in the book.
"""

from __future__ import annotations

import logging
from importlib import metadata
from pathlib import Path

from spine.errors import ConfigError

log = logging.getLogger(__name__)
PACKAGE = Path(__file__).resolve().parent
SHIPPED = PACKAGE / "_records"  # where setup.py puts the repository's record folders in a built package
# Packages that each install the ``tensorflow`` module: two of them overwrite each other.
TENSORFLOW_PACKAGES = ("tensorflow", "tensorflow-cpu", "tensorflow-intel", "tf-nightly")


def setup(fetch_spider: bool = False) -> str:
    """Download SPIDER if asked (then give ``data = "spider"``); return the line that says
    which device TensorFlow will use."""
    if fetch_spider:
        from spine.data import fetch

        fetch.fetch_spider()
    installed = tensorflow_packages()
    if len(installed) > 1:
        log.warning("several TensorFlow packages are installed (%s); they overwrite each other's "
                    "files: keep one, e.g. `pip uninstall -y tensorflow-cpu` on Colab", ", ".join(installed))
    return device_line()


def records(folder: str) -> str:
    """The repository's ``folder`` (``results``, ``benchmarks/results``): the checkout's where spine
    is imported from one (an editable install), else the copy shipped in the installed package."""
    checkout = PACKAGE.parent
    if (checkout / "_toc.yml").is_file():
        return str(checkout / folder)
    if not (SHIPPED / folder).is_dir():
        raise ConfigError(f"{SHIPPED / folder}: this install of spine holds no {folder}; "
                          f"install it from the repository, or pass the folder as a parameter")
    return str(SHIPPED / folder)


def tensorflow_packages() -> list[str]:
    """The installed distributions that provide the ``tensorflow`` module."""
    names = {(dist.metadata["Name"] or "").lower() for dist in metadata.distributions()}
    return sorted(names & set(TENSORFLOW_PACKAGES))


def device_line() -> str:
    import tensorflow as tf

    from spine.training import device

    found = device.gpus()
    where = f"the GPU: {', '.join(found)}" if found else "the CPU (no GPU; on Colab: Runtime > Change runtime type)"
    return f"TensorFlow {tf.__version__} will use {where}; training precision {device.resolve_precision('auto')}"
