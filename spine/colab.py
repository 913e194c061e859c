"""Running a chapter on Colab: what each chapter's first cell calls once it has installed spine.

The cell itself only installs the package, from the repository of ``_config.yml``, with no
TensorFlow extra, so Colab's own GPU build of TensorFlow is left as it is (``spine[cpu]``
would add ``tensorflow-cpu``, a second package owning the same ``tensorflow`` module). Where
spine is already importable the cell does nothing.
"""

from __future__ import annotations

import logging
from importlib import metadata

log = logging.getLogger(__name__)
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
