"""The results store: one folder per finished run, named by the run's hash.

``<store>/<run_id>/`` holds ``config.json`` (what determined the run), ``metrics.json``
(validation and test summaries, intervals, conventions), ``per_image.csv`` and
``per_patient.csv`` (test metrics per image and per patient), ``predictions.npz`` (the test label
maps), ``history.csv`` (per epoch), ``environment.json`` (versions, code version, hardware,
precision, wall time) and ``model.keras`` (the weights selected on validation; kept out of git).
Beside the runs, ``folds/`` holds the cross-validation manifests and ``inputs/`` each fold's test
inputs and references (SPIDER-derived, CC BY 4.0), written once per fold. A folder without
``metrics.json`` is an unfinished run that ``--resume`` continues.
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from spine.data.io import atomic_path
from spine.errors import ConfigError
from spine.training.config import RunConfig

DEFAULT_STORE = Path("results")
RECORD_FILES = ("config.json", "metrics.json", "per_image.csv", "per_patient.csv", "history.csv", "environment.json",
                "predictions.npz")


@dataclass
class Record:
    """A finished run read back from the store."""

    path: Path
    config: RunConfig
    metrics: dict

    @property
    def model_path(self) -> Path:
        return self.path / "model.keras"

    def per_image(self) -> pd.DataFrame:
        return pd.read_csv(self.path / "per_image.csv")

    def history(self) -> pd.DataFrame:
        return pd.read_csv(self.path / "history.csv")

    def per_patient(self) -> pd.DataFrame:
        """Test metrics per patient (records of format 2 on; older ones have per-image rows only)."""
        return pd.read_csv(self.path / "per_patient.csv", dtype={"patient": str})

    def predictions(self) -> dict:
        """The stored test label maps (``labels``, ``case_ids``), records of format 2 on."""
        with np.load(self.path / "predictions.npz") as stored:
            return {name: stored[name] for name in stored.files}


def run_dir(store, config: RunConfig) -> Path:
    return Path(store) / config.run_id


def write_json(path, payload) -> None:
    """Atomic JSON (NaN written as null, so the files are valid JSON for any reader)."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(_nan_to_none(payload), indent=2, sort_keys=False) + "\n")


def _nan_to_none(value):
    if isinstance(value, dict):
        return {k: _nan_to_none(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_nan_to_none(v) for v in value]
    if isinstance(value, float) and value != value:
        return None
    return value


def read_json(path) -> dict:
    return json.loads(Path(path).read_text())


def is_finished(path) -> bool:
    return (Path(path) / "metrics.json").is_file()


def load_record(path) -> Record:
    path = Path(path)
    if not is_finished(path):
        raise ConfigError(f"{path}: not a finished run (no metrics.json)")
    config = RunConfig.from_dict(read_json(path / "config.json"))
    return Record(path, _locate_data(config, path.parent), read_json(path / "metrics.json"))


def _locate_data(config: RunConfig, store: Path) -> RunConfig:
    """A relative data path in a record is relative to where the run was started, usually the
    folder that holds the store (``spine study ... --out results`` from the repository): when the
    path does not exist from here, the store's parent is tried, so that a chapter running in
    ``notebooks/`` finds the data of a committed record."""
    data = Path(config.data)
    if config.data == "phantom" or config.data.startswith("phantom:") or data.is_absolute() or data.exists():
        return config
    beside = store.resolve().parent / data
    return dataclasses.replace(config, data=str(beside.resolve())) if beside.exists() else config


def find_record(store, config: RunConfig) -> Record | None:
    path = run_dir(store, config)
    return load_record(path) if is_finished(path) else None


def records(store) -> list[Record]:
    """Every finished run in the store."""
    store = Path(store)
    if not store.is_dir():
        return []
    return [load_record(p) for p in sorted(store.iterdir()) if is_finished(p)]


def check_writable(store) -> Path:
    """Create the store if needed; a store that cannot be written is a one-line error."""
    store = Path(store)
    try:
        store.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"{store}: cannot create the results folder ({exc.strerror})") from None
    if not os.access(store, os.W_OK):
        raise ConfigError(f"{store}: the results folder is not writable")
    return store


def environment(wall_seconds: float) -> dict:
    """Versions and hardware of this run, for its record."""
    import keras
    import numpy
    import tensorflow as tf

    import spine

    return {
        "spine": spine.__version__, "python": platform.python_version(), "tensorflow": tf.__version__,
        "keras": keras.__version__, "numpy": numpy.__version__, "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(), "cpu_count": os.cpu_count(),
        "gpus": [d.name for d in tf.config.list_physical_devices("GPU")],
        "wall_seconds": round(wall_seconds, 1),
    }
